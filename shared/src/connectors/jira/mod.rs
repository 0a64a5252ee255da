//! Jira Cloud: issues as documents (REST API v3).
//!
//! Calls (developer.atlassian.com, Jira Cloud platform REST API v3):
//! - `GET /rest/api/3/search/jql` — enhanced JQL search, paged by an opaque `nextPageToken`
//!   with `isLast`; asked for ids only (`fields=id`), which gives the largest pages. The
//!   endpoint wants a *bounded* query (one with a search restriction), so a scope without
//!   any filter becomes `project IS NOT EMPTY`.
//! - `POST /rest/api/3/issue/bulkfetch` — up to 100 issues by id with the fields we render;
//!   issues Jira cannot return come back in `issueErrors` (`{id, errorMessage}`), issues
//!   that vanished or are hidden are simply absent.
//! - `GET /rest/api/3/issue/{id}/comment?startAt=..` — every comment when the page embedded
//!   in the `comment` field is incomplete (`comments.len() < total`).
//! - `GET /rest/api/3/attachment/content/{id}` — opt-in text attachments; Jira answers with
//!   a redirect to the media service, which is followed without our credentials.
//! - `GET /rest/api/3/myself` — the credential check.
//!
//! Sync passes (DESIGN §3): a pass fixes its window when it starts,
//! `<scope> AND updated >= "<yyyy-MM-dd HH:mm>" ORDER BY updated ASC, id ASC` (no `updated`
//! clause on the very first pass), and pages through it. Jira reads JQL dates in the
//! account's time zone and we have no time-zone database, so the window start is written
//! in the fixed offset that Jira itself put on the newest `updated` value seen (that
//! offset *is* the account's offset at that instant), minus `overlap_minutes`. The
//! checkpoint is `{"v":1, "window_since", "next_page_token", "max_updated"}`; issues
//! re-delivered by the overlap are skipped downstream by content hash.

mod checkpoint;
mod client;
mod config;
mod convert;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde_json::Value;

use super::document::Document;
use super::kit::{ApiClient, Governor, SourceAuth, ThrottleShape};
use super::{Batch, Connector, ConnectorError, DocumentFailure, IdPage};
use crate::http::{GuardedClient, RetryPolicy};
use checkpoint::{resume, Checkpoint, Newest, CHECKPOINT_VERSION};
use client::{json_body, SearchFailure, SearchPage};
use convert::{id_of, labels_of};

pub use super::convert::adf_to_markdown;
pub use config::JiraConfig;

const SOURCE: &str = "jira";
/// Page size of the slim listing (ids only; Jira allows up to 5000).
const LIST_PAGE_SIZE: usize = 1000;

/// The registry's description of this source (`GET /sources`, creation, builds).
pub fn source() -> super::Source {
    use super::registry::{ConnectionProvider, CredentialKind};
    super::Source::new::<JiraConfig>(SOURCE, "Jira Cloud", |context| {
        let config = context.typed_config::<JiraConfig>()?;
        let connector = JiraConnector::new(
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

impl super::registry::SourceConfig for JiraConfig {
    fn check(&self) -> Result<(), ConnectorError> {
        self.validate()
    }
}

pub struct JiraConnector {
    /// `connector:<id>`, the id space of this connector's documents.
    scope: String,
    config: JiraConfig,
    /// The base URL without a trailing slash.
    base: String,
    scope_jql: String,
    /// Authorisation, governor (standard 429 shape), retries, Jira's error messages.
    api: ApiClient,
}

impl std::fmt::Debug for JiraConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraConnector")
            .field("scope", &self.scope)
            .field("base", &self.base)
            .field("credentials", self.api.auth())
            .finish_non_exhaustive()
    }
}

impl JiraConnector {
    /// `connector_id` scopes document ids:
    /// `Document::stable_id(&format!("connector:{connector_id}"), &issue_id)`.
    pub fn new(
        connector_id: &str,
        config: JiraConfig,
        auth: impl Into<SourceAuth>,
        http: GuardedClient,
        retry: RetryPolicy,
    ) -> Result<Self, ConnectorError> {
        if connector_id.trim().is_empty() {
            return Err(ConnectorError::Config("the connector id is empty".into()));
        }
        config.validate()?;
        let base = config.base_url.as_str().trim_end_matches('/').to_owned();
        // One rate state per site and connector: Atlassian limits are per user.
        // Throttle waits stay within the retry budget, as before the kit: a longer wait
        // defers the sync (ConnectorError::RateLimited) instead of holding the invocation.
        let governor = Governor::shared_with_budget(
            SOURCE,
            &format!("{base}#{connector_id}"),
            ThrottleShape::Standard,
            retry.budget,
        );
        let api = ApiClient::new("Jira", http, config.base_url.clone(), auth.into())
            .with_retry(retry)
            .with_governor(governor)
            .with_error_messages(client::jira_error_messages);
        Ok(Self {
            scope: format!("connector:{connector_id}"),
            base,
            scope_jql: config.scope_jql(),
            config,
            api,
        })
    }
}

#[async_trait::async_trait]
impl Connector for JiraConnector {
    fn source(&self) -> &'static str {
        SOURCE
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        const WHAT: &str = "the current-user check";
        let url = self.url("/rest/api/3/myself")?;
        let response = self.get(&url, WHAT).await?;
        let me = json_body(response)?;
        if me.get("accountId").and_then(Value::as_str).is_none() {
            return Err(ConnectorError::Protocol(format!(
                "{WHAT}: no accountId in the answer"
            )));
        }
        let jql = format!("{} ORDER BY updated ASC, id ASC", self.scope_jql);
        match self.search(&jql, "id", 1, None).await {
            Ok(_) => Ok(()),
            Err(SearchFailure::Rejected(messages)) => Err(ConnectorError::Config(format!(
                "Jira rejected the JQL: {messages}"
            ))),
            Err(SearchFailure::Other(error)) => Err(error),
        }
    }

    async fn pull(&self, checkpoint: Option<&Value>) -> Result<Batch, ConnectorError> {
        let state = checkpoint.map(Checkpoint::parse).transpose()?;
        let mut newest = Newest::from_checkpoint(
            state
                .as_ref()
                .and_then(|state| state.max_updated.as_deref()),
        );
        let (window, token) = resume(state, self.config.overlap_minutes())?;
        let page = self.window_page(window.as_deref(), token).await?;
        let ids: Vec<String> = page.issues.into_iter().map(|(id, _)| id).collect();
        let pulled = self.issues(&ids, &mut newest).await?;
        let done = page.next.is_none();
        let checkpoint = Checkpoint {
            v: CHECKPOINT_VERSION,
            // A finished pass forgets its window: the next one starts from `max_updated`.
            window_since: if done { None } else { window },
            next_page_token: page.next,
            max_updated: newest.raw(),
        };
        tracing::debug!(
            listed = ids.len(),
            documents = pulled.documents.len(),
            failures = pulled.failures.len(),
            skipped = pulled.skipped,
            done,
            "Jira batch"
        );
        Ok(Batch {
            documents: pulled.documents,
            failures: pulled.failures,
            checkpoint: checkpoint.to_value(),
            done,
            skipped: Vec::new(),
            deleted: Vec::new(),
        })
    }

    async fn list_ids(&self, cursor: Option<&str>) -> Result<IdPage, ConnectorError> {
        let jql = format!("{} ORDER BY id ASC", self.scope_jql);
        // Labels are asked for only to apply the client-side skip, as `pull` does.
        let fields = if self.config.skip_labels.is_empty() {
            "id"
        } else {
            "id,labels"
        };
        match self.search(&jql, fields, LIST_PAGE_SIZE, cursor).await {
            Ok(page) => Ok(IdPage {
                source_ids: page
                    .issues
                    .into_iter()
                    .filter(|(_, labels)| !self.config.skips(labels))
                    .map(|(id, _)| id)
                    .collect(),
                next: page.next,
            }),
            Err(SearchFailure::Rejected(messages)) if cursor.is_some() => {
                Err(ConnectorError::Checkpoint(format!(
                    "Jira refused the listing cursor; list again from the start ({messages})"
                )))
            }
            Err(SearchFailure::Rejected(messages)) => Err(ConnectorError::Config(format!(
                "Jira rejected the JQL: {messages}"
            ))),
            Err(SearchFailure::Other(error)) => Err(error),
        }
    }
}

/// The documents of one page of issue ids.
#[derive(Default)]
struct Pulled {
    documents: Vec<Document>,
    failures: Vec<DocumentFailure>,
    /// Left out by `skip_labels` (the JQL let them through, e.g. labels differing in case).
    skipped: usize,
}

impl JiraConnector {
    /// One page of the window's search; a refused page token restarts the window.
    async fn window_page(
        &self,
        window: Option<&str>,
        token: Option<String>,
    ) -> Result<SearchPage, ConnectorError> {
        let jql = self.window_jql(window);
        let batch_size = self.config.batch_size();
        let page = match self.search(&jql, "id", batch_size, token.as_deref()).await {
            Err(SearchFailure::Rejected(_)) if token.is_some() => {
                // Page tokens expire; the window's start is known, so start it again.
                tracing::warn!("Jira refused the page token; restarting the sync window");
                self.search(&jql, "id", batch_size, None).await
            }
            other => other,
        };
        match page {
            Ok(page) => Ok(page),
            Err(SearchFailure::Rejected(messages)) => Err(ConnectorError::Config(format!(
                "Jira rejected the JQL: {messages}"
            ))),
            Err(SearchFailure::Other(error)) => Err(error),
        }
    }

    /// The issues `ids` fetched and converted in order, each one's `updated` offered to
    /// `newest` (skipped ones too, so the next window starts after them).
    async fn issues(&self, ids: &[String], newest: &mut Newest) -> Result<Pulled, ConnectorError> {
        let mut pulled = Pulled::default();
        if ids.is_empty() {
            return Ok(pulled);
        }
        let (issues, issue_errors) = self.bulk_fetch(ids).await?;
        pulled.failures.extend(issue_errors);
        let mut by_id: HashMap<String, Value> = issues
            .into_iter()
            .filter_map(|issue| id_of(&issue).map(|id| (id, issue)))
            .collect();
        for id in ids {
            let Some(raw) = by_id.remove(id) else {
                // Deleted or hidden since the search, or reported in issueErrors.
                continue;
            };
            if let Some(updated) = raw
                .get("fields")
                .and_then(|fields| fields.get("updated"))
                .and_then(Value::as_str)
            {
                newest.offer(updated);
            }
            if self.config.skips(&labels_of(raw.get("fields"))) {
                pulled.skipped += 1;
                continue;
            }
            match self.convert(&raw).await? {
                Ok(document) => pulled.documents.push(document),
                Err(error) => pulled.failures.push(DocumentFailure {
                    source_id: id.clone(),
                    error,
                }),
            }
        }
        Ok(pulled)
    }
}
