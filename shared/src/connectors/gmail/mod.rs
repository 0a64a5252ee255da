//! Gmail: one document per thread, kept current by Gmail's change feed.
//!
//! Files: `config.rs` (what a connector is configured with), `client.rs` (the API calls of
//! one mailbox, quota pacing, why no batch endpoint), `checkpoint.rs` (where a pull
//! resumes), `convert.rs` (MIME trees and threads as markdown), `pull.rs` (the passes).
//!
//! Mailboxes: with service-account credentials (domain-wide delegation) every address in
//! `user_emails` (else the credentials' `subject`) is synced with tokens minted for that
//! user; with a `google` connection, the connected user (`me`). Source ids are
//! `<userId>:<threadId>` (thread ids are per mailbox).
//!
//! Passes (DESIGN §3), one mailbox after the other, one page per batch:
//! - first sync of a mailbox: `users.getProfile` → its `historyId` is stored *first*, then
//!   `threads.list` pages (the scope: `query`, `labels`, SPAM/TRASH) are fetched thread by
//!   thread (`threads.get?format=full`) into documents;
//! - later syncs: `users.history.list` from the stored `historyId` with
//!   `historyTypes=messageAdded,messageDeleted,labelAdded,labelRemoved`; every thread a
//!   record touches is fetched again. A thread that is gone (404), whose every message is
//!   deleted or carries an excluded label (TRASH, SPAM), or that no longer matches the
//!   labels or the query, is reported in `Batch.deleted`; the last page's `historyId` is
//!   where the next pass starts (Google's guidance);
//! - a 404 on `history.list` (the `historyId` expired: Gmail keeps about a week) starts a
//!   full listing again from a fresh `getProfile`. Nothing is deleted by it: documents are
//!   re-delivered (unchanged ones skipped by content hash) and the engine's prune, which
//!   runs only after a complete run, removes what the slim listing no longer has.
//!
//! The slim listing (`list_ids`) is `threads.list` with the same scope, ids only, across
//! every mailbox; it may hold threads the connector leaves out (labels excluded by ID
//! cannot be searched away), which is safe: the prune only removes what it lacks.

mod checkpoint;
mod client;
mod config;
mod convert;
mod pull;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::Value;
use url::Url;

use crate::connectors::google::{self, GoogleAuth, GMAIL_READONLY};
use crate::connectors::kit::SourceAuth;
use crate::connectors::registry::{ConnectionProvider, CredentialKind};
use crate::connectors::{Batch, BuildContext, Connector, ConnectorError, IdPage, Source};
use crate::http::{GuardedClient, RetryPolicy};
pub use client::{MailboxClient, QuotaPacer, DEFAULT_UNITS_PER_MINUTE, GET_CONCURRENCY};
pub use config::GmailConfig;

/// The kind's name (`SourceKind::Gmail`, `Document::source`).
pub(crate) const SOURCE: &str = "gmail";
/// Where Gmail lives unless the deployment says otherwise (`TRIBUTARY_API_URL_GMAIL`).
pub const DEFAULT_API_BASE: &str = "https://gmail.googleapis.com/gmail/v1";
/// Ids per page of the slim listing (`threads.list` allows 500).
const LIST_PAGE_SIZE: usize = 500;
const CREDENTIAL_KINDS: &[CredentialKind] =
    &[CredentialKind::Connection, CredentialKind::ServiceAccount];
const PROVIDER: ConnectionProvider = ConnectionProvider::Only("google");
/// The `userId` of the connected user.
const ME: &str = "me";

/// The registry's description of this source (`GET /sources`, creation, builds).
pub fn source() -> Source {
    Source::new::<GmailConfig>(SOURCE, "Gmail", build)
        .accepting(CREDENTIAL_KINDS)
        .with_provider(PROVIDER)
}

impl crate::connectors::registry::SourceConfig for GmailConfig {
    fn check(&self) -> Result<(), ConnectorError> {
        self.validate()
    }
}

fn build(context: BuildContext) -> Result<Box<dyn Connector>, ConnectorError> {
    let config = context.typed_config::<GmailConfig>()?;
    let api_base = context.api_base(SOURCE, DEFAULT_API_BASE)?;
    let connector = GmailConnector::new(
        &context.connector_id,
        config,
        context.auth,
        context.http,
        context.retry,
        api_base,
    )?;
    Ok(Box::new(connector))
}

pub struct GmailConnector {
    /// `connector:<id>`, the id space of this connector's documents.
    scope: String,
    config: GmailConfig,
    /// One client per mailbox, in configuration order.
    mailboxes: Vec<MailboxClient>,
}

impl std::fmt::Debug for GmailConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmailConnector")
            .field("scope", &self.scope)
            .field("mailboxes", &self.mailboxes.len())
            .finish_non_exhaustive()
    }
}

impl GmailConnector {
    /// `api_base` is Gmail's `…/gmail/v1` root (deployment configuration). Requests are
    /// paced at [`DEFAULT_UNITS_PER_MINUTE`] quota units per mailbox.
    pub fn new(
        connector_id: &str,
        config: GmailConfig,
        auth: impl Into<SourceAuth>,
        http: GuardedClient,
        retry: RetryPolicy,
        api_base: Url,
    ) -> Result<Self, ConnectorError> {
        Self::with_quota(
            connector_id,
            config,
            auth,
            http,
            retry,
            api_base,
            Some(DEFAULT_UNITS_PER_MINUTE),
        )
    }

    /// [`GmailConnector::new`] with another pace (`None`: unpaced, for fakes and benches).
    pub fn with_quota(
        connector_id: &str,
        config: GmailConfig,
        auth: impl Into<SourceAuth>,
        http: GuardedClient,
        retry: RetryPolicy,
        api_base: Url,
        units_per_minute: Option<u32>,
    ) -> Result<Self, ConnectorError> {
        if connector_id.trim().is_empty() {
            return Err(ConnectorError::Config("the connector id is empty".into()));
        }
        config.validate()?;
        let auth = GoogleAuth::new(auth.into(), http.clone(), &[GMAIL_READONLY]);
        let users: Vec<Option<String>> = if !config.user_emails.is_empty() {
            config.user_emails.iter().cloned().map(Some).collect()
        } else if auth.is_delegated() {
            let subject = auth.default_subject().ok_or_else(|| {
                ConnectorError::Config(
                    "a service account needs user_emails or a subject to act as".into(),
                )
            })?;
            vec![Some(subject.to_owned())]
        } else {
            vec![None]
        };
        let mut mailboxes = Vec::with_capacity(users.len());
        for user in users {
            let for_user = auth.for_user(user.as_deref())?;
            let user_id = user.unwrap_or_else(|| ME.to_owned());
            let api = google::api_client(
                "Gmail",
                connector_id,
                &user_id,
                api_base.clone(),
                for_user,
                http.clone(),
                retry.clone(),
            );
            let pacer = units_per_minute.map(|units| Arc::new(QuotaPacer::new(units)));
            mailboxes.push(MailboxClient::new(user_id, api, pacer));
        }
        Ok(Self {
            scope: format!("connector:{connector_id}"),
            config,
            mailboxes,
        })
    }

    fn users(&self) -> Vec<String> {
        self.mailboxes.iter().map(|m| m.user().to_owned()).collect()
    }
}

/// `<userId>:<threadId>`.
fn source_id(user: &str, thread_id: &str) -> String {
    format!("{user}:{thread_id}")
}

/// The slim listing's cursor: the mailbox index and its `threads.list` page token.
#[derive(serde::Serialize, serde::Deserialize)]
struct ListCursor {
    at: usize,
    token: Option<String>,
}

#[async_trait::async_trait]
impl Connector for GmailConnector {
    fn source(&self) -> &'static str {
        SOURCE
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        let (q, include_spam_trash) = self.config.list_scope();
        for mailbox in &self.mailboxes {
            mailbox.profile().await?;
            // A query Gmail cannot parse is a configuration error, found now.
            mailbox
                .threads(
                    q.as_deref(),
                    &self.config.labels,
                    include_spam_trash,
                    1,
                    None,
                )
                .await?;
        }
        Ok(())
    }

    async fn pull(&self, checkpoint: Option<&Value>) -> Result<Batch, ConnectorError> {
        pull::pull(self, checkpoint).await
    }

    async fn list_ids(&self, cursor: Option<&str>) -> Result<IdPage, ConnectorError> {
        let cursor: ListCursor = match cursor {
            None => ListCursor { at: 0, token: None },
            Some(text) => serde_json::from_str(text).map_err(|_| {
                ConnectorError::Checkpoint("not a Gmail listing cursor; list again".into())
            })?,
        };
        let Some(mailbox) = self.mailboxes.get(cursor.at) else {
            return Err(ConnectorError::Checkpoint(
                "the listing cursor names a mailbox no longer configured; list again".into(),
            ));
        };
        let (q, include_spam_trash) = self.config.list_scope();
        let page = mailbox
            .threads(
                q.as_deref(),
                &self.config.labels,
                include_spam_trash,
                LIST_PAGE_SIZE,
                cursor.token.as_deref(),
            )
            .await?
            .ok_or_else(|| {
                ConnectorError::Checkpoint("Gmail refused the listing's page token; list again".into())
            })?;
        let source_ids = page
            .threads
            .iter()
            .map(|thread| source_id(mailbox.user(), &thread.id))
            .collect();
        let next = match page.next_page_token {
            Some(token) => Some(ListCursor {
                at: cursor.at,
                token: Some(token),
            }),
            None if cursor.at + 1 < self.mailboxes.len() => Some(ListCursor {
                at: cursor.at + 1,
                token: None,
            }),
            None => None,
        };
        Ok(IdPage {
            source_ids,
            next: next
                .map(|next| serde_json::to_string(&next))
                .transpose()
                .map_err(|e| ConnectorError::Protocol(format!("cannot write a cursor: {e}")))?,
        })
    }
}
