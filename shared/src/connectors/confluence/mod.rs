//! Confluence Cloud: pages and blog posts through the REST API v1 CQL content search, their
//! storage format (XHTML with `ac:`/`ri:` elements) turned into markdown.
//!
//! A sync is a series of *passes*. A pass runs one CQL query,
//! `<scope> [and lastmodified >= "yyyy-MM-dd HH:mm"] order by lastmodified asc`, and pages
//! through it by following `_links.next` exactly as Confluence returns it (never an offset of
//! our own); each `pull` fetches one page of results with
//! `expand=body.storage,version,space,ancestors,metadata.labels` and the checkpoint keeps the
//! next link. When a pass ends the next one starts from the newest `version.when` seen minus
//! an overlap (5 minutes unless configured), so edits made while a pass ran are caught by the
//! following one; re-delivering the overlap is harmless since document ids are stable.
//!
//! CQL reads dates in the user's time zone while the API prints `version.when` with that
//! zone's offset: the window is written with the offset of the newest timestamp seen (a
//! fixed offset; no time zone database).
//!
//! Checkpoint: `{"v": 1, "window_since": "yyyy-MM-dd HH:mm" | null, "next": url | null,
//! "max_modified": RFC 3339 with the source's offset | null}`.

mod api;
mod checkpoint;
mod client;
mod config;
mod convert;
#[cfg(test)]
mod tests;

use chrono::{DateTime, FixedOffset};
use futures::StreamExt;
use serde_json::Value;
use url::Url;

use super::document::Document;
use super::kit::{ApiClient, Governor, SourceAuth, ThrottleShape};
use super::{Batch, Connector, ConnectorError, DocumentFailure, IdPage};
use crate::http::{GuardedClient, RetryPolicy};
use api::{Content, SearchPage};
use checkpoint::{window_start, Checkpoint};
use client::{expect_success, shape};

pub use super::convert::storage_to_markdown;
pub use config::ConfluenceConfig;

/// `Document::source` of everything this connector produces.
pub const SOURCE: &str = "confluence";

/// Results per page of the slim listing (no expansions, so pages are cheap).
const LIST_PAGE_SIZE: usize = 200;
/// Pages of one batch whose attachments are listed at the same time.
const ATTACHMENT_CONCURRENCY: usize = 4;
const EXPAND: &str = "body.storage,version,space,ancestors,metadata.labels";

/// The registry's description of this source (`GET /sources`, creation, builds).
pub fn source() -> super::Source {
    use super::registry::{ConnectionProvider, CredentialKind};
    super::Source::new::<ConfluenceConfig>("confluence", "Confluence Cloud", |context| {
        let config = context.typed_config::<ConfluenceConfig>()?;
        let connector = ConfluenceConnector::new(
            &context.connector_id,
            config,
            context.auth,
            context.http,
            context.retry,
        )?;
        Ok(Box::new(connector))
    })
    .accepting(&[
        CredentialKind::Basic,
        CredentialKind::Bearer,
        CredentialKind::Connection,
    ])
    // Atlassian takes any OAuth 2.0 (3LO) bearer token, e.g. from the generic `oauth2` preset.
    .with_provider(ConnectionProvider::Any)
}

impl super::registry::SourceConfig for ConfluenceConfig {
    fn check(&self) -> Result<(), ConnectorError> {
        self.validate()
    }
}

pub struct ConfluenceConnector {
    scope: String,
    config: ConfluenceConfig,
    /// Authorisation, governor (standard 429 shape) and retries.
    api: ApiClient,
    /// `<base_url>/wiki`, without a trailing slash.
    wiki_root: String,
}

impl std::fmt::Debug for ConfluenceConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfluenceConnector")
            .field("scope", &self.scope)
            .field("config", &self.config)
            .field("credentials", self.api.auth())
            .finish_non_exhaustive()
    }
}

impl ConfluenceConnector {
    pub fn new(
        connector_id: &str,
        config: ConfluenceConfig,
        auth: impl Into<SourceAuth>,
        http: GuardedClient,
        retry: RetryPolicy,
    ) -> Result<Self, ConnectorError> {
        if connector_id.trim().is_empty() {
            return Err(ConnectorError::Config("the connector id is empty".into()));
        }
        config.validate()?;
        let wiki_root = format!("{}wiki", config.base_url);
        // One rate state per site and connector: Atlassian limits are per user.
        // Throttle waits stay within the retry budget, as before the kit: a longer wait
        // defers the sync (ConnectorError::RateLimited) instead of holding the invocation.
        let governor = Governor::shared_with_budget(
            SOURCE,
            &format!("{wiki_root}#{connector_id}"),
            ThrottleShape::Standard,
            retry.budget,
        );
        let api = ApiClient::new("Confluence", http, config.base_url.clone(), auth.into())
            .with_retry(retry)
            .with_governor(governor)
            .with_error_messages(client::confluence_message);
        Ok(Self {
            scope: format!("connector:{connector_id}"),
            config,
            api,
            wiki_root,
        })
    }
}

#[async_trait::async_trait]
impl Connector for ConfluenceConnector {
    fn source(&self) -> &'static str {
        SOURCE
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        let mut url = self.api_url(&["space"]);
        url.query_pairs_mut().append_pair("limit", "1");
        let response = self.send(&url, true).await?;
        if response.status == reqwest::StatusCode::NOT_FOUND {
            return Err(ConnectorError::Config(format!(
                "no Confluence REST API at {}/rest/api",
                self.wiki_root
            )));
        }
        let response = expect_success(response, "space listing")?;
        let listing: Value = serde_json::from_slice(response.body()).map_err(|_| {
            ConnectorError::Protocol(
                "the space listing is not JSON: is base_url a Confluence site?".into(),
            )
        })?;
        if !listing.get("results").is_some_and(Value::is_array) {
            return Err(ConnectorError::Protocol(
                "the space listing has no results".into(),
            ));
        }
        for key in &self.config.space_keys {
            let url = self.api_url(&["space", key]);
            let response = self.send(&url, true).await?;
            if response.status == reqwest::StatusCode::NOT_FOUND {
                return Err(ConnectorError::Config(format!(
                    "space {key:?} does not exist or is not visible to these credentials"
                )));
            }
            expect_success(response, "space lookup")?;
        }
        Ok(())
    }

    async fn pull(&self, checkpoint: Option<&Value>) -> Result<Batch, ConnectorError> {
        let state = match checkpoint {
            None => Checkpoint::default(),
            Some(value) => self.parse_checkpoint(value)?,
        };
        let url = match &state.next {
            Some(next) => with_expand(next.clone()),
            None => self.search_url(
                &self.pull_cql(state.window_since.as_deref()),
                self.config.batch_size(),
                Some(EXPAND),
            ),
        };
        let page: SearchPage = self.get_json(&url, "content search").await?;
        let links_base = self.links_base(page.links.base.as_deref());

        let mut max_modified = state.max_modified;
        let (documents, failures) = self.documents(page.results, &links_base, &mut max_modified);
        let documents = if self.config.attachments {
            self.with_attachments(documents).await?
        } else {
            documents
        };

        let next = match page.links.next.as_deref() {
            Some(next) => Some(self.resolve_next(&links_base, next)?),
            None => None,
        };
        let done = next.is_none();
        let checkpoint = match next {
            Some(next) => Checkpoint {
                window_since: state.window_since,
                next: Some(next),
                max_modified,
            },
            None => Checkpoint {
                window_since: match max_modified {
                    Some(max) => Some(window_start(max, self.config.overlap())),
                    None => state.window_since,
                },
                next: None,
                max_modified,
            },
        };
        tracing::info!(
            documents = documents.len(),
            failures = failures.len(),
            done,
            "confluence batch pulled"
        );
        Ok(Batch {
            documents,
            failures,
            checkpoint: checkpoint.to_value(),
            done,
            skipped: Vec::new(),
            deleted: Vec::new(),
        })
    }

    async fn list_ids(&self, cursor: Option<&str>) -> Result<IdPage, ConnectorError> {
        let url = match cursor {
            Some(cursor) => match Url::parse(cursor) {
                Ok(url) if self.is_api_url(&url) => url,
                _ => {
                    return Err(ConnectorError::Checkpoint(
                        "the listing cursor is not a link into this site's REST API".into(),
                    ))
                }
            },
            None => self.search_url(&self.list_cql(), LIST_PAGE_SIZE, None),
        };
        let page: SearchPage = self.get_json(&url, "content listing").await?;
        let links_base = self.links_base(page.links.base.as_deref());
        let source_ids = page.results.iter().filter_map(content_id).collect();
        let next = match page.links.next.as_deref() {
            Some(next) => Some(self.resolve_next(&links_base, next)?.into()),
            None => None,
        };
        Ok(IdPage { source_ids, next })
    }
}

impl ConfluenceConnector {
    /// The search results as documents (or failures), each one's `version.when` offered to
    /// `max_modified`.
    fn documents(
        &self,
        results: Vec<Value>,
        links_base: &str,
        max_modified: &mut Option<DateTime<FixedOffset>>,
    ) -> (Vec<Document>, Vec<DocumentFailure>) {
        let mut documents = Vec::with_capacity(results.len());
        let mut failures = Vec::new();
        for raw in results {
            let Some(id) = content_id(&raw) else {
                tracing::warn!("a search result without an id was skipped");
                continue;
            };
            let when = raw
                .pointer("/version/when")
                .and_then(Value::as_str)
                .and_then(|when| DateTime::parse_from_rfc3339(when).ok());
            if let Some(when) = when {
                if max_modified.is_none_or(|max| when > max) {
                    *max_modified = Some(when);
                }
            }
            let converted = serde_json::from_value::<Content>(raw)
                .map_err(|error| format!("unreadable content: {}", shape(&error)))
                .and_then(|content| self.document(&content, links_base));
            match converted {
                Ok(document) => documents.push(document),
                Err(error) => {
                    tracing::warn!(source_id = %id, %error, "confluence content skipped");
                    failures.push(DocumentFailure {
                        source_id: id,
                        error,
                    });
                }
            }
        }
        (documents, failures)
    }

    /// The documents with their attachments, a few pages at a time.
    async fn with_attachments(
        &self,
        documents: Vec<Document>,
    ) -> Result<Vec<Document>, ConnectorError> {
        let results: Vec<Result<Document, ConnectorError>> =
            futures::stream::iter(documents.into_iter().map(|mut document| async move {
                self.add_attachments(&mut document).await?;
                Ok(document)
            }))
            .buffered(ATTACHMENT_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

/// The next link with our expansions, should the server have left them out.
fn with_expand(mut url: Url) -> Url {
    if !url.query_pairs().any(|(key, _)| key == "expand") {
        url.query_pairs_mut().append_pair("expand", EXPAND);
    }
    url
}

/// Content ids are strings in the v1 API; accept numbers too.
fn content_id(raw: &Value) -> Option<String> {
    match raw.get("id")? {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}
