//! Microsoft Teams: one document per channel thread (root message + replies), kept current
//! from each channel's Graph delta feed.
//!
//! A pass finds the channels (the configured teams, else every team the credentials see;
//! the `channels` filter), then reads each channel's delta page by page, one page per pull:
//! the first pass a full round (`…/messages/delta`, which covers the last eight months),
//! later passes from the stored `@odata.deltaLink`. A root that comes back is rebuilt with
//! its replies (expanded in the page, or read with `…/replies` when they do not all fit):
//! a new, edited or deleted reply changes the root, so the thread's document follows. A
//! root with `deletedDateTime` is deleted from the sink by the feed (`Batch::deleted`); a
//! deleted reply leaves the rebuilt thread. A delta link Graph refuses (410, or 400 on the
//! token) starts that channel over with a full round; the engine's prune after the
//! completed sync, backed by the slim listing of every live root, removes what is gone.
//! Channels that vanish are dropped from the checkpoint and their threads pruned.

mod checkpoint;
mod client;
mod config;
mod convert;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::connectors::microsoft::{self, GraphAuth};
use crate::connectors::registry::{ConnectionProvider, CredentialKind};
use crate::connectors::{
    Batch, BuildContext, Connector, ConnectorError, DocumentFailure, IdPage, Source,
};
use crate::http::{GuardedClient, RetryPolicy};
use checkpoint::{ChannelRef, Checkpoint, Pass};
use client::{DeltaAnswer, TeamsApi};
pub use client::messages_refused;
pub use config::TeamsConfig;
use convert::{thread_document, thread_id, Message};

/// The kind's name (`SourceKind::Teams`, `Document::source`).
pub(crate) const SOURCE: &str = "teams";
const CREDENTIAL_KINDS: &[CredentialKind] =
    &[CredentialKind::Connection, CredentialKind::ClientCredentials];
const PROVIDER: ConnectionProvider = ConnectionProvider::Only("microsoft");

/// The registry's description of this source (`GET /sources`, creation, builds).
pub fn source() -> Source {
    Source::new::<TeamsConfig>(SOURCE, "Microsoft Teams", build)
        .accepting(CREDENTIAL_KINDS)
        .with_provider(PROVIDER)
}

fn build(context: BuildContext) -> Result<Box<dyn Connector>, ConnectorError> {
    let config = context.typed_config::<TeamsConfig>()?;
    let graph = GraphAuth::from_context(&context, config.tenant_id.as_ref())?;
    let base = microsoft::graph_base(&context)?;
    let connector = TeamsConnector::new(
        &context.connector_id,
        config,
        graph,
        context.http,
        context.retry,
        base,
    )?;
    Ok(Box::new(connector))
}

#[derive(Debug)]
pub struct TeamsConnector {
    /// `connector:<id>`, the id space of this connector's documents.
    scope: String,
    config: TeamsConfig,
    api: TeamsApi,
    /// The channels found once per connector (one sync), for pulls and the slim listing.
    channels: tokio::sync::Mutex<Option<Vec<ChannelRef>>>,
}

/// Where the slim listing is: a channel (index) and its next page.
#[derive(Serialize, Deserialize)]
struct ListCursor {
    at: usize,
    next: Option<String>,
}

impl TeamsConnector {
    pub fn new(
        connector_id: &str,
        config: TeamsConfig,
        graph: GraphAuth,
        http: GuardedClient,
        retry: RetryPolicy,
        graph_base: Url,
    ) -> Result<Self, ConnectorError> {
        use crate::connectors::registry::SourceConfig as _;
        config.check()?;
        if connector_id.trim().is_empty() {
            return Err(ConnectorError::Config("the connector id is empty".into()));
        }
        let api = microsoft::api_client(
            "Microsoft Teams",
            connector_id,
            graph_base,
            graph.auth,
            http,
            retry,
        );
        Ok(Self {
            scope: format!("connector:{connector_id}"),
            config,
            api: TeamsApi::new(api, graph.app_only),
            channels: tokio::sync::Mutex::new(None),
        })
    }

    /// The channels in scope, sorted by team then channel id.
    async fn channels(&self) -> Result<Vec<ChannelRef>, ConnectorError> {
        let mut cached = self.channels.lock().await;
        if let Some(channels) = cached.as_ref() {
            return Ok(channels.clone());
        }
        let mut teams = if self.config.teams.is_empty() {
            self.api.teams().await?
        } else {
            let mut teams = Vec::new();
            for id in &self.config.teams {
                teams.push(self.api.team(id).await?);
            }
            teams
        };
        teams.sort_by(|a, b| a.id.cmp(&b.id));
        let mut channels = Vec::new();
        for team in teams {
            let mut found = self.api.channels(&team.id).await?;
            found.sort_by(|a, b| a.id.cmp(&b.id));
            for channel in found {
                let name = channel.display_name.clone().unwrap_or_default();
                if self.config.wants_channel(&channel.id, &name) {
                    channels.push(ChannelRef {
                        team_id: team.id.clone(),
                        team_name: team.display_name.clone().unwrap_or_default(),
                        channel_id: channel.id,
                        channel_name: name,
                    });
                }
            }
        }
        *cached = Some(channels.clone());
        Ok(channels)
    }

    /// A new pass over the channels; delta links of channels no longer there are dropped.
    async fn start_pass(&self, checkpoint: &mut Checkpoint) -> Result<Pass, ConnectorError> {
        let channels = self.channels().await?;
        let keys: HashSet<String> = channels.iter().map(ChannelRef::key).collect();
        checkpoint.delta.retain(|key, _| keys.contains(key));
        Ok(Pass {
            channels,
            at: 0,
            next: None,
        })
    }

    /// One delta page of `channel`: from the pass's next link, else its delta link, else a
    /// full round; a refused link starts a full round at once.
    async fn delta_page(
        &self,
        checkpoint: &mut Checkpoint,
        pass: &Pass,
        channel: &ChannelRef,
    ) -> Result<(Vec<Message>, Option<String>, Option<String>), ConnectorError> {
        let where_ = format!("{} › {}", channel.team_name, channel.channel_name);
        let start = self.api.delta_start(
            &channel.team_id,
            &channel.channel_id,
            self.config.batch_size,
        )?;
        let url = match (&pass.next, checkpoint.delta.get(&channel.key())) {
            (Some(next), _) => self.api.link(next)?,
            (None, Some(delta)) => self.api.link(delta)?,
            (None, None) => start.clone(),
        };
        let fresh_round = url == start;
        match self.api.delta_page(url, &where_).await? {
            DeltaAnswer::Page { roots, next, delta } => Ok((roots, next, delta)),
            DeltaAnswer::Expired if !fresh_round => {
                checkpoint.delta.remove(&channel.key());
                match self.api.delta_page(start, &where_).await? {
                    DeltaAnswer::Page { roots, next, delta } => Ok((roots, next, delta)),
                    DeltaAnswer::Expired => Err(refused_round(&where_)),
                }
            }
            DeltaAnswer::Expired => Err(refused_round(&where_)),
        }
    }

    /// The replies of `root`: those in the page, or all of them when the page had a part.
    async fn replies_of(
        &self,
        channel: &ChannelRef,
        root: &Message,
    ) -> Result<Vec<Message>, ConnectorError> {
        if !self.config.include_replies {
            return Ok(Vec::new());
        }
        if root.replies_next_link.is_none() {
            let mut replies = root.replies.clone();
            replies.sort_by(|a, b| a.created_date_time.cmp(&b.created_date_time));
            return Ok(replies);
        }
        self.api
            .replies(&channel.team_id, &channel.channel_id, &root.id)
            .await
    }

    async fn batch_of(
        &self,
        channel: &ChannelRef,
        roots: Vec<Message>,
    ) -> (Vec<crate::connectors::document::Document>, Vec<DocumentFailure>, Vec<String>) {
        let mut documents = Vec::new();
        let mut failures = Vec::new();
        let mut deleted = Vec::new();
        let mut seen = HashSet::new();
        // A root can come back twice in a round; its last state is the one to keep.
        for root in roots.into_iter().rev() {
            if !seen.insert(root.id.clone()) {
                continue;
            }
            if root.deleted_date_time.is_some() {
                deleted.push(thread_id(channel, &root.id));
                continue;
            }
            if !root.is_content() {
                continue;
            }
            match self.replies_of(channel, &root).await {
                Ok(replies) => {
                    documents.push(thread_document(&self.scope, channel, &root, &replies))
                }
                Err(error) if error.is_transient() => {
                    failures.push(DocumentFailure {
                        source_id: thread_id(channel, &root.id),
                        error: format!("its replies could not be read: {error}"),
                    });
                }
                Err(error) => failures.push(DocumentFailure {
                    source_id: thread_id(channel, &root.id),
                    error: error.to_string(),
                }),
            }
        }
        documents.reverse();
        (documents, failures, deleted)
    }
}

fn refused_round(where_: &str) -> ConnectorError {
    ConnectorError::Protocol(format!(
        "Teams refused a fresh delta round of {where_}"
    ))
}

#[async_trait::async_trait]
impl Connector for TeamsConnector {
    fn source(&self) -> &'static str {
        SOURCE
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        let channels = self.channels().await?;
        let Some(first) = channels.first() else {
            return Err(ConnectorError::Config(
                "no channel of the selected teams matches the configuration".into(),
            ));
        };
        // The permission that reading messages needs is the one most often missing.
        let url = self
            .api
            .delta_start(&first.team_id, &first.channel_id, 1)?;
        let where_ = format!("{} › {}", first.team_name, first.channel_name);
        self.api.delta_page(url, &where_).await.map(|_| ())
    }

    async fn pull(&self, checkpoint: Option<&Value>) -> Result<Batch, ConnectorError> {
        let mut checkpoint = Checkpoint::read(checkpoint)?;
        let mut pass = match checkpoint.pass.take() {
            Some(pass) => pass,
            None => self.start_pass(&mut checkpoint).await?,
        };
        let Some(channel) = pass.channels.get(pass.at).cloned() else {
            return Ok(Batch {
                documents: Vec::new(),
                failures: Vec::new(),
                skipped: Vec::new(),
                deleted: Vec::new(),
                checkpoint: checkpoint.to_value(),
                done: true,
            });
        };
        let (roots, next, delta) = self.delta_page(&mut checkpoint, &pass, &channel).await?;
        let (documents, failures, deleted) = self.batch_of(&channel, roots).await;
        match next {
            Some(next) => pass.next = Some(next),
            None => {
                match delta {
                    Some(delta) => {
                        checkpoint.delta.insert(channel.key(), delta);
                    }
                    None => tracing::warn!(
                        "a delta round ended without a delta link: the next pass reads it in full"
                    ),
                }
                pass.at += 1;
                pass.next = None;
            }
        }
        let done = pass.at >= pass.channels.len();
        checkpoint.pass = (!done).then_some(pass);
        Ok(Batch {
            documents,
            failures,
            skipped: Vec::new(),
            deleted,
            checkpoint: checkpoint.to_value(),
            done,
        })
    }

    async fn list_ids(&self, cursor: Option<&str>) -> Result<IdPage, ConnectorError> {
        let cursor: ListCursor = match cursor {
            None => ListCursor { at: 0, next: None },
            Some(text) => serde_json::from_str(text).map_err(|_| {
                ConnectorError::Checkpoint("not a Teams listing cursor; list again".into())
            })?,
        };
        let channels = self.channels().await?;
        let Some(channel) = channels.get(cursor.at) else {
            return Ok(IdPage::default());
        };
        let (roots, next) = self
            .api
            .roots_page(&channel.team_id, &channel.channel_id, cursor.next.as_deref())
            .await?;
        let source_ids = roots
            .iter()
            .filter(|root| root.is_content())
            .map(|root| thread_id(channel, &root.id))
            .collect();
        let next = match next {
            Some(next) => Some(ListCursor {
                at: cursor.at,
                next: Some(next),
            }),
            None if cursor.at + 1 < channels.len() => Some(ListCursor {
                at: cursor.at + 1,
                next: None,
            }),
            None => None,
        };
        Ok(IdPage {
            source_ids,
            next: next
                .map(|cursor| serde_json::to_string(&cursor))
                .transpose()
                .map_err(|error| ConnectorError::Protocol(error.to_string()))?,
        })
    }
}
