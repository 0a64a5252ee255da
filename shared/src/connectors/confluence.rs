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

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use chrono::{DateTime, FixedOffset, NaiveDateTime, SecondsFormat, Utc};
use futures::StreamExt;
use quick_xml::events::{BytesRef, BytesStart, Event};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use url::Url;

use super::document::Document;
use super::{Batch, Connector, ConnectorError, Credentials, DocumentFailure, IdPage};
use crate::http::{send_with_retry, GuardedClient, HttpError, RetryPolicy};

/// `Document::source` of everything this connector produces.
pub const SOURCE: &str = "confluence";

const DEFAULT_BATCH_SIZE: usize = 25;
const MAX_BATCH_SIZE: usize = 100;
const DEFAULT_OVERLAP_MINUTES: u32 = 5;
/// A week: a larger overlap is a misconfiguration rather than caution.
const MAX_OVERLAP_MINUTES: u32 = 7 * 24 * 60;
const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 1024 * 1024;
/// Results per page of the slim listing (no expansions, so pages are cheap).
const LIST_PAGE_SIZE: usize = 200;
const ATTACHMENT_PAGE_SIZE: usize = 100;
/// Pages of one batch whose attachments are listed at the same time.
const ATTACHMENT_CONCURRENCY: usize = 4;
const EXPAND: &str = "body.storage,version,space,ancestors,metadata.labels";
/// The CQL date format used for the window (minutes: CQL has no seconds).
const CQL_DATE_FORMAT: &str = "%Y-%m-%d %H:%M";
const CHECKPOINT_VERSION: u64 = 1;
/// Longest server error message quoted in an error.
const MAX_QUOTED_MESSAGE: usize = 300;

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfluenceConfig {
    /// The site root, `https://<site>.atlassian.net`; the API is under `/wiki/rest/api`.
    /// Plain http only for loopback hosts (tests).
    pub base_url: Url,
    /// Only these spaces (all visible spaces when empty).
    #[serde(default)]
    pub space_keys: Vec<String>,
    /// Content carrying any of these labels is left out.
    #[serde(default)]
    pub exclude_labels: Vec<String>,
    #[serde(default = "yes")]
    pub include_blog_posts: bool,
    /// Opt-in: list each page's attachments into its metadata and append the text of
    /// `text/*` ones no larger than `max_attachment_bytes`.
    #[serde(default)]
    pub attachments: bool,
    #[serde(default)]
    pub max_attachment_bytes: Option<u64>,
    /// How far before the newest modification seen the next pass starts (default 5).
    #[serde(default)]
    pub overlap_minutes: Option<u32>,
    /// Results per pull (default 25, 1..=100).
    #[serde(default)]
    pub batch_size: Option<usize>,
}

impl ConfluenceConfig {
    pub fn validate(&self) -> Result<(), ConnectorError> {
        validate_base_url(&self.base_url)?;
        for key in &self.space_keys {
            if key.is_empty()
                || key.len() > 255
                || key
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | '/'))
            {
                return Err(ConnectorError::Config(format!("invalid space key {key:?}")));
            }
        }
        for label in &self.exclude_labels {
            if label.is_empty()
                || label.len() > 255
                || label
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\'))
            {
                return Err(ConnectorError::Config(format!("invalid label {label:?}")));
            }
        }
        if let Some(size) = self.batch_size {
            if !(1..=MAX_BATCH_SIZE).contains(&size) {
                return Err(ConnectorError::Config(format!(
                    "batch_size must be between 1 and {MAX_BATCH_SIZE}"
                )));
            }
        }
        if self
            .overlap_minutes
            .is_some_and(|m| m > MAX_OVERLAP_MINUTES)
        {
            return Err(ConnectorError::Config(format!(
                "overlap_minutes must be at most {MAX_OVERLAP_MINUTES}"
            )));
        }
        if self.max_attachment_bytes == Some(0) {
            return Err(ConnectorError::Config(
                "max_attachment_bytes must be positive".into(),
            ));
        }
        Ok(())
    }

    fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    fn overlap(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(
            self.overlap_minutes.unwrap_or(DEFAULT_OVERLAP_MINUTES),
        ))
    }

    fn max_attachment_bytes(&self) -> u64 {
        self.max_attachment_bytes
            .unwrap_or(DEFAULT_MAX_ATTACHMENT_BYTES)
    }

    /// The scope of the sync: content types, spaces and excluded labels.
    fn scope_cql(&self) -> String {
        let mut clauses = vec![if self.include_blog_posts {
            "type in (page, blogpost)".to_owned()
        } else {
            "type = page".to_owned()
        }];
        if !self.space_keys.is_empty() {
            clauses.push(format!("space in ({})", cql_list(&self.space_keys)));
        }
        if !self.exclude_labels.is_empty() {
            clauses.push(format!("label not in ({})", cql_list(&self.exclude_labels)));
        }
        clauses.join(" and ")
    }
}

fn validate_base_url(url: &Url) -> Result<(), ConnectorError> {
    if url.host().is_none() {
        return Err(ConnectorError::Config("base_url has no host".into()));
    }
    let loopback = super::is_loopback(url);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(ConnectorError::Config(
                "base_url must be an https URL".into(),
            ))
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConnectorError::Config(
            "base_url must not carry credentials".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
        return Err(ConnectorError::Config(
            "base_url must be the site root, e.g. https://example.atlassian.net (without /wiki)"
                .into(),
        ));
    }
    Ok(())
}

/// A CQL string literal.
fn cql_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

fn cql_list(values: &[String]) -> String {
    values
        .iter()
        .map(|value| cql_string(value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a pull starts.
#[derive(Clone, Debug, Default, PartialEq)]
struct Checkpoint {
    /// The lower bound of this pass (`None`: everything), as written in the CQL.
    window_since: Option<String>,
    /// The next page of the current pass; `None` starts a pass.
    next: Option<Url>,
    /// The newest `version.when` seen so far, with the source's offset.
    max_modified: Option<DateTime<FixedOffset>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckpoint {
    v: u64,
    #[serde(default)]
    window_since: Option<String>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    max_modified: Option<String>,
}

impl Checkpoint {
    fn to_value(&self) -> Value {
        json!({
            "v": CHECKPOINT_VERSION,
            "window_since": self.window_since,
            "next": self.next.as_ref().map(Url::as_str),
            "max_modified": self
                .max_modified
                .map(|at| at.to_rfc3339_opts(SecondsFormat::AutoSi, false)),
        })
    }
}

/// The start of the window after a pass whose newest modification was `max_modified`,
/// written in that timestamp's own offset and rounded down to the minute.
fn window_start(max_modified: DateTime<FixedOffset>, overlap: chrono::Duration) -> String {
    (max_modified - overlap).format(CQL_DATE_FORMAT).to_string()
}

pub struct ConfluenceConnector {
    scope: String,
    config: ConfluenceConfig,
    credentials: Credentials,
    http: GuardedClient,
    retry: RetryPolicy,
    /// `<base_url>/wiki`, without a trailing slash.
    wiki_root: String,
}

impl std::fmt::Debug for ConfluenceConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfluenceConnector")
            .field("scope", &self.scope)
            .field("config", &self.config)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The registry's description of this source (`GET /sources`, creation, builds).
pub fn source() -> super::Source {
    use super::registry::{ConnectionProvider, CredentialKind};
    super::Source::new::<ConfluenceConfig>("confluence", "Confluence Cloud", |context| {
        let config = context.typed_config::<ConfluenceConfig>()?;
        let credentials = super::registry::inline_credentials(context.auth)?;
        let connector = ConfluenceConnector::new(
            &context.connector_id,
            config,
            credentials,
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

impl ConfluenceConnector {
    pub fn new(
        connector_id: &str,
        config: ConfluenceConfig,
        credentials: Credentials,
        http: GuardedClient,
        retry: RetryPolicy,
    ) -> Result<Self, ConnectorError> {
        if connector_id.trim().is_empty() {
            return Err(ConnectorError::Config("the connector id is empty".into()));
        }
        config.validate()?;
        let wiki_root = format!("{}wiki", config.base_url);
        Ok(Self {
            scope: format!("connector:{connector_id}"),
            config,
            credentials,
            http,
            retry,
            wiki_root,
        })
    }

    /// `<base_url>/wiki/rest/api/<segments…>`, each segment percent-encoded.
    fn api_url(&self, segments: &[&str]) -> Url {
        let mut url = self.config.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["wiki", "rest", "api"])
                .extend(segments);
        }
        url
    }

    fn search_url(&self, cql: &str, limit: usize, expand: Option<&str>) -> Url {
        let mut url = self.api_url(&["content", "search"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("cql", cql);
            query.append_pair("limit", &limit.to_string());
            if let Some(expand) = expand {
                query.append_pair("expand", expand);
            }
        }
        url
    }

    fn pull_cql(&self, window_since: Option<&str>) -> String {
        let mut cql = self.config.scope_cql();
        if let Some(since) = window_since {
            cql.push_str(&format!(" and lastmodified >= {}", cql_string(since)));
        }
        cql.push_str(" order by lastmodified asc");
        cql
    }

    fn list_cql(&self) -> String {
        // Creation order does not change when content is edited during the listing.
        format!("{} order by created asc", self.config.scope_cql())
    }

    /// True for URLs of this site's REST API (the only place credentials are sent).
    fn is_api_url(&self, url: &Url) -> bool {
        url.origin() == self.config.base_url.origin() && url.path().starts_with("/wiki/rest/api/")
    }

    fn same_site(&self, url: &Url) -> bool {
        url.origin() == self.config.base_url.origin()
    }

    /// `_links.base` of an answer, if it is a usable http(s) URL, else `<base_url>/wiki`.
    fn links_base(&self, base: Option<&str>) -> String {
        base.and_then(|base| Url::parse(base).ok())
            .filter(|base| matches!(base.scheme(), "http" | "https"))
            .map(|base| base.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_else(|| self.wiki_root.clone())
    }

    /// A `_links.next` (relative to `_links.base`) as an absolute URL of this site's API.
    fn resolve_next(&self, links_base: &str, next: &str) -> Result<Url, ConnectorError> {
        let root = match Url::parse(links_base) {
            Ok(base) if self.same_site(&base) => links_base,
            _ => self.wiki_root.as_str(),
        };
        let resolved = if next.starts_with("http://") || next.starts_with("https://") {
            Url::parse(next)
        } else if next.starts_with('/') {
            Url::parse(&format!("{root}{next}"))
        } else {
            return Err(ConnectorError::Protocol("a next link is not a path".into()));
        };
        match resolved {
            Ok(url) if self.is_api_url(&url) => Ok(url),
            _ => Err(ConnectorError::Protocol(
                "a next link points outside the site's REST API".into(),
            )),
        }
    }

    fn parse_checkpoint(&self, value: &Value) -> Result<Checkpoint, ConnectorError> {
        let raw: RawCheckpoint = serde_json::from_value(value.clone())
            .map_err(|error| ConnectorError::Checkpoint(error.to_string()))?;
        if raw.v != CHECKPOINT_VERSION {
            return Err(ConnectorError::Checkpoint(format!(
                "unknown checkpoint version {}",
                raw.v
            )));
        }
        let window_since = match raw.window_since {
            None => None,
            Some(since) => {
                let parsed = NaiveDateTime::parse_from_str(&since, CQL_DATE_FORMAT)
                    .map_err(|_| ConnectorError::Checkpoint("window_since is not a date".into()))?;
                if parsed.format(CQL_DATE_FORMAT).to_string() != since {
                    return Err(ConnectorError::Checkpoint(
                        "window_since is not a canonical date".into(),
                    ));
                }
                Some(since)
            }
        };
        let next = match raw.next {
            None => None,
            Some(next) => match Url::parse(&next) {
                Ok(url) if self.is_api_url(&url) => Some(url),
                _ => {
                    return Err(ConnectorError::Checkpoint(
                        "next is not a link into this site's REST API".into(),
                    ))
                }
            },
        };
        let max_modified = match raw.max_modified {
            None => None,
            Some(at) => Some(DateTime::parse_from_rfc3339(&at).map_err(|_| {
                ConnectorError::Checkpoint("max_modified is not an RFC 3339 time".into())
            })?),
        };
        Ok(Checkpoint {
            window_since,
            next,
            max_modified,
        })
    }

    /// One GET with retries; answers whatever status the server gave.
    async fn send(&self, url: &Url, json: bool) -> Result<reqwest::Response, ConnectorError> {
        self.send_guarded(url, json).await.map_err(transport_error)
    }

    /// [`Self::send`] with the client's own error, so a refused redirect can be told apart.
    /// Credentials go only to this site; the guarded client drops them on any hop that
    /// changes origin.
    async fn send_guarded(&self, url: &Url, json: bool) -> Result<reqwest::Response, HttpError> {
        let with_credentials = self.same_site(url);
        send_with_retry(
            || {
                let request = self.http.get(url.clone());
                let request = if json {
                    request.header(reqwest::header::ACCEPT, "application/json")
                } else {
                    request
                };
                if with_credentials {
                    self.credentials.apply(request)
                } else {
                    request
                }
            },
            &self.retry,
        )
        .await
    }

    /// GET a JSON answer of the API; any non-2xx is an error.
    async fn get_json<T: DeserializeOwned>(
        &self,
        url: &Url,
        what: &str,
    ) -> Result<T, ConnectorError> {
        let response = self.send(url, true).await?;
        let response = expect_success(response, what).await?;
        let bytes = response.bytes().await.map_err(transport_error)?;
        serde_json::from_slice(&bytes).map_err(|error| {
            ConnectorError::Protocol(format!(
                "unreadable answer to the {what}: {}",
                shape(&error)
            ))
        })
    }

    /// Turns one search result into a document (or the reason it cannot be one).
    fn document(&self, content: &Content, links_base: &str) -> Result<Document, String> {
        let storage = content
            .body
            .as_ref()
            .and_then(|body| body.storage.as_ref())
            .and_then(|storage| storage.value.as_deref())
            .ok_or_else(|| "the content has no storage-format body".to_owned())?;
        let version = content
            .version
            .as_ref()
            .ok_or_else(|| "the content has no version".to_owned())?;
        let when = version
            .when
            .as_deref()
            .and_then(|when| DateTime::parse_from_rfc3339(when).ok())
            .ok_or_else(|| "the content's version has no readable time".to_owned())?;
        let space_key = content
            .space
            .as_ref()
            .and_then(|space| space.key.as_deref());
        let context = StorageContext {
            base: &self.config.base_url,
            space_key,
            page_id: Some(&content.id),
        };
        let body = convert(storage, &context, true)
            .map_err(|error| format!("the storage format could not be converted: {error}"))?;
        let title = content
            .title
            .as_deref()
            .map(str::trim)
            .filter(|title| !title.is_empty());
        let markdown = match (title, body.is_empty()) {
            (Some(title), true) => format!("# {}", heading_text(title)),
            (Some(title), false) => format!("# {}\n\n{body}", heading_text(title)),
            (None, _) => body,
        };

        let mut metadata = Map::new();
        metadata.insert("type".into(), json!(content.kind));
        metadata.insert("space_key".into(), json!(space_key));
        metadata.insert(
            "space_name".into(),
            json!(content
                .space
                .as_ref()
                .and_then(|space| space.name.as_deref())),
        );
        metadata.insert(
            "ancestors".into(),
            json!(content
                .ancestors
                .iter()
                .filter_map(|ancestor| ancestor.title.as_deref())
                .collect::<Vec<_>>()),
        );
        metadata.insert(
            "labels".into(),
            json!(content
                .metadata
                .as_ref()
                .and_then(|metadata| metadata.labels.as_ref())
                .map(|labels| labels
                    .results
                    .iter()
                    .filter_map(|label| label.name.as_deref())
                    .collect::<Vec<_>>())
                .unwrap_or_default()),
        );
        metadata.insert("version".into(), json!(version.number));
        let updated_at = when
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true);
        metadata.insert("last_modified".into(), json!(updated_at));
        metadata.insert(
            "author".into(),
            json!(version
                .by
                .as_ref()
                .and_then(|by| by.display_name.as_deref().or(by.public_name.as_deref()))),
        );

        Ok(Document {
            id: Document::stable_id(&self.scope, &content.id),
            source: SOURCE.into(),
            source_id: content.id.clone(),
            title: title.map(str::to_owned),
            url: content
                .links
                .webui
                .as_deref()
                .filter(|webui| webui.starts_with('/'))
                .map(|webui| format!("{links_base}{webui}")),
            markdown,
            metadata,
            updated_at,
            acl: vec![],
        })
    }

    /// Lists a page's attachments into its metadata and appends the small text ones.
    async fn add_attachments(&self, document: &mut Document) -> Result<(), ConnectorError> {
        let mut url = self.api_url(&["content", &document.source_id, "child", "attachment"]);
        url.query_pairs_mut()
            .append_pair("limit", &ATTACHMENT_PAGE_SIZE.to_string());
        let mut listed = Vec::new();
        let mut texts = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let response = self.send(&url, true).await?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                // Deleted since it was listed: nothing to attach.
                break;
            }
            let response = expect_success(response, "attachment listing").await?;
            let bytes = response.bytes().await.map_err(transport_error)?;
            let page: AttachmentPage = serde_json::from_slice(&bytes).map_err(|error| {
                ConnectorError::Protocol(format!(
                    "unreadable answer to the attachment listing: {}",
                    shape(&error)
                ))
            })?;
            let base = self.links_base(page.links.base.as_deref());
            for attachment in &page.results {
                let media_type = attachment.media_type();
                let size = attachment
                    .extensions
                    .as_ref()
                    .and_then(|extensions| extensions.file_size);
                let download = attachment
                    .links
                    .download
                    .as_deref()
                    .filter(|download| download.starts_with('/'))
                    .map(|download| format!("{base}{download}"));
                listed.push(json!({
                    "title": attachment.title,
                    "media_type": media_type,
                    "size": size,
                    "url": download,
                }));
                let wanted = media_type.is_some_and(|media| media.starts_with("text/"))
                    && size.is_none_or(|size| size <= self.config.max_attachment_bytes());
                if let (true, Some(download)) = (wanted, download) {
                    if let Some(text) = self.download_text(&download).await? {
                        texts.push((attachment.title.clone(), text));
                    }
                }
            }
            next = match page.links.next.as_deref() {
                Some(link) => Some(self.resolve_next(&base, link)?),
                None => None,
            };
        }
        if !listed.is_empty() {
            document
                .metadata
                .insert("attachments".into(), Value::Array(listed));
        }
        for (title, text) in texts {
            let fence = fence_for(&text);
            document.markdown.push_str(&format!(
                "\n\n## Attachment: {}\n\n{fence}\n{}\n{fence}",
                heading_text(title.as_deref().unwrap_or("untitled")),
                text.trim_end_matches('\n')
            ));
        }
        Ok(())
    }

    /// The text of one attachment, following the download redirect (credentials go only to
    /// this site); `None` when it is gone or larger than the cap.
    async fn download_text(&self, download: &str) -> Result<Option<String>, ConnectorError> {
        let Ok(url) = Url::parse(download) else {
            return Ok(None);
        };
        if !self.same_site(&url) {
            return Ok(None);
        }
        let cap = self.config.max_attachment_bytes();
        let response = match self.send_guarded(&url, false).await {
            Ok(response) => response,
            Err(error) if refused_hop(&error) => {
                tracing::warn!(%error, "attachment redirect refused; left out");
                return Ok(None);
            }
            Err(error) => return Err(transport_error(error)),
        };
        let status = response.status();
        // A redirect the client did not follow (no usable Location) or a gone attachment.
        if status.is_redirection() || matches!(status.as_u16(), 404 | 410) {
            return Ok(None);
        }
        let mut response = expect_success(response, "attachment download").await?;
        if response.content_length().is_some_and(|length| length > cap) {
            return Ok(None);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > cap {
                return Ok(None);
            }
        }
        Ok(Some(String::from_utf8_lossy(&body).into_owned()))
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
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(ConnectorError::Config(format!(
                "no Confluence REST API at {}/rest/api",
                self.wiki_root
            )));
        }
        let response = expect_success(response, "space listing").await?;
        let bytes = response.bytes().await.map_err(transport_error)?;
        let listing: Value = serde_json::from_slice(&bytes).map_err(|_| {
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
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Err(ConnectorError::Config(format!(
                    "space {key:?} does not exist or is not visible to these credentials"
                )));
            }
            expect_success(response, "space lookup").await?;
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
        let mut documents = Vec::with_capacity(page.results.len());
        let mut failures = Vec::new();
        for raw in page.results {
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
                    max_modified = Some(when);
                }
            }
            let converted = serde_json::from_value::<Content>(raw)
                .map_err(|error| format!("unreadable content: {}", shape(&error)))
                .and_then(|content| self.document(&content, &links_base));
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

        if self.config.attachments {
            let results: Vec<Result<Document, ConnectorError>> =
                futures::stream::iter(documents.into_iter().map(|mut document| async move {
                    self.add_attachments(&mut document).await?;
                    Ok(document)
                }))
                .buffered(ATTACHMENT_CONCURRENCY)
                .collect()
                .await;
            documents = results.into_iter().collect::<Result<_, _>>()?;
        }

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

/// A redirect the guarded client would not follow (network policy, loop, bad Location).
fn refused_hop(error: &HttpError) -> bool {
    error.is_refusal()
        || matches!(
            error,
            HttpError::TooManyRedirects | HttpError::BadRedirect(_)
        )
}

fn transport_error(error: impl Into<HttpError>) -> ConnectorError {
    let error = error.into();
    if error.is_refusal() {
        ConnectorError::Config(format!("blocked by the network policy: {error}"))
    } else if refused_hop(&error) {
        ConnectorError::Protocol(error.to_string())
    } else if error.is_builder() {
        ConnectorError::Config(format!("cannot build the request: {error}"))
    } else if error.is_decode() {
        ConnectorError::Protocol(error.to_string())
    } else {
        ConnectorError::Unavailable(error.to_string())
    }
}

/// The response if it is a success, else the error its status means.
async fn expect_success(
    response: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, ConnectorError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let code = status.as_u16();
    let message = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|body| {
                body.get("message")
                    .and_then(Value::as_str)
                    .map(quote_message)
            }),
        Err(_) => None,
    };
    let detail = match message {
        Some(message) => format!("{what}: HTTP {code}: {message}"),
        None => format!("{what}: HTTP {code}"),
    };
    Err(match code {
        401 | 403 => ConnectorError::Unauthorized(detail),
        408 | 429 | 500..=599 => ConnectorError::Unavailable(detail),
        _ => ConnectorError::Protocol(detail),
    })
}

/// Where and how a JSON answer was unreadable, without quoting it (serde's messages can
/// quote values, and values can be page content).
fn shape(error: &serde_json::Error) -> String {
    let kind = match error.classify() {
        serde_json::error::Category::Io => "i/o error",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Eof => "truncated",
    };
    if error.line() == 0 {
        kind.to_owned()
    } else {
        format!("{kind} at line {} column {}", error.line(), error.column())
    }
}

fn quote_message(message: &str) -> String {
    let mut quoted: String = message.chars().take(MAX_QUOTED_MESSAGE).collect();
    if quoted.len() < message.len() {
        quoted.push('…');
    }
    quoted
}

/// A heading's text on one line.
fn heading_text(title: &str) -> String {
    title.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A code fence longer than any backtick run in `text`.
fn fence_for(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat(longest.max(2) + 1)
}

// ---------------------------------------------------------------------------------------
// The REST answers (only the fields read).

#[derive(Deserialize)]
struct SearchPage {
    #[serde(default)]
    results: Vec<Value>,
    #[serde(default, rename = "_links")]
    links: PageLinks,
}

#[derive(Default, Deserialize)]
struct PageLinks {
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(deserialize_with = "string_or_number")]
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    space: Option<Space>,
    #[serde(default)]
    version: Option<Version>,
    #[serde(default)]
    ancestors: Vec<Ancestor>,
    #[serde(default)]
    body: Option<Body>,
    #[serde(default)]
    metadata: Option<ContentMetadata>,
    #[serde(default, rename = "_links")]
    links: ContentLinks,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(id) => Ok(id),
        Value::Number(id) => Ok(id.to_string()),
        _ => Err(serde::de::Error::custom("the id is not a string")),
    }
}

#[derive(Deserialize)]
struct Space {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Version {
    #[serde(default)]
    when: Option<String>,
    #[serde(default)]
    number: Option<u64>,
    #[serde(default)]
    by: Option<User>,
}

#[derive(Deserialize)]
struct User {
    #[serde(default, rename = "displayName")]
    display_name: Option<String>,
    #[serde(default, rename = "publicName")]
    public_name: Option<String>,
}

#[derive(Deserialize)]
struct Ancestor {
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    storage: Option<StorageBody>,
}

#[derive(Deserialize)]
struct StorageBody {
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct ContentMetadata {
    #[serde(default)]
    labels: Option<Labels>,
}

#[derive(Deserialize)]
struct Labels {
    #[serde(default)]
    results: Vec<Label>,
}

#[derive(Deserialize)]
struct Label {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Default, Deserialize)]
struct ContentLinks {
    #[serde(default)]
    webui: Option<String>,
}

#[derive(Deserialize)]
struct AttachmentPage {
    #[serde(default)]
    results: Vec<Attachment>,
    #[serde(default, rename = "_links")]
    links: PageLinks,
}

#[derive(Deserialize)]
struct Attachment {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    extensions: Option<AttachmentExtensions>,
    #[serde(default)]
    metadata: Option<AttachmentMetadata>,
    #[serde(default, rename = "_links")]
    links: AttachmentLinks,
}

impl Attachment {
    fn media_type(&self) -> Option<&str> {
        self.extensions
            .as_ref()
            .and_then(|extensions| extensions.media_type.as_deref())
            .or_else(|| {
                self.metadata
                    .as_ref()
                    .and_then(|metadata| metadata.media_type.as_deref())
            })
    }
}

#[derive(Deserialize)]
struct AttachmentExtensions {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default, rename = "fileSize")]
    file_size: Option<u64>,
}

#[derive(Deserialize)]
struct AttachmentMetadata {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
}

#[derive(Default, Deserialize)]
struct AttachmentLinks {
    #[serde(default)]
    download: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Storage format → markdown.
//
// The storage format is XML (XHTML plus `ac:` and `ri:` elements, macro bodies in CDATA), so
// it is read with an XML parser into a small tree, the Confluence elements are rewritten into
// plain HTML (code macros into `<pre><code class="language-…">`, panels into blockquotes,
// `ac:link` into anchors, images into images or placeholders, unknown macros into their
// body), and htmd turns that HTML into markdown. Text keeps its XML escaping all the way to
// the HTML parser, so HTML named entities (`&nbsp;`) need no table here.

/// Deeper storage nesting is flattened (its text kept): htmd walks the tree recursively.
const MAX_STORAGE_DEPTH: usize = 64;

/// What a storage body is relative to: the site, and the page's space and id (for links to
/// pages without a space key, and to attachments).
struct StorageContext<'a> {
    base: &'a Url,
    space_key: Option<&'a str>,
    page_id: Option<&'a str>,
}

/// Converts a storage-format body to markdown. Links to pages and attachments are made
/// absolute against `base_url` (the site root). Malformed input is converted as well as it
/// can be (lost structure, never lost text); never panics.
pub fn storage_to_markdown(storage: &str, base_url: &Url) -> String {
    let context = StorageContext {
        base: base_url,
        space_key: None,
        page_id: None,
    };
    convert(storage, &context, true)
        .or_else(|_| convert(storage, &context, false))
        .unwrap_or_default()
}

/// Strict: malformed XML is an error. Otherwise the parser recovers.
fn convert(storage: &str, context: &StorageContext<'_>, strict: bool) -> Result<String, String> {
    let tree = parse_storage(storage, strict)?;
    let mut renderer = Renderer {
        context,
        tables: Vec::new(),
        out: String::with_capacity(storage.len() + 64),
    };
    renderer.children(&tree);
    html_to_markdown(&renderer.out)
}

#[derive(Debug)]
struct XmlElement {
    /// Qualified, ASCII-lowercased (`p`, `ac:structured-macro`).
    name: String,
    /// Qualified lowercased names, values with XML escapes resolved.
    attributes: Vec<(String, String)>,
    children: Vec<XmlNode>,
}

#[derive(Debug)]
enum XmlNode {
    Element(XmlElement),
    /// Text still escaped as in the source (valid HTML text).
    Markup(String),
    /// Raw text (CDATA).
    Text(String),
}

impl XmlElement {
    fn new(name: String, attributes: Vec<(String, String)>) -> Self {
        Self {
            name,
            attributes,
            children: Vec::new(),
        }
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn child(&self, name: &str) -> Option<&XmlElement> {
        self.elements().find(|element| element.name == name)
    }

    fn elements(&self) -> impl Iterator<Item = &XmlElement> {
        self.children.iter().filter_map(|child| match child {
            XmlNode::Element(element) => Some(element),
            _ => None,
        })
    }

    /// The text content, unescaped (`<br>` as a newline).
    fn text(&self) -> String {
        let mut text = String::new();
        self.collect_text(&mut text);
        text
    }

    fn collect_text(&self, out: &mut String) {
        for child in &self.children {
            match child {
                XmlNode::Element(element) if element.name == "br" => out.push('\n'),
                XmlNode::Element(element) => {
                    element.collect_text(out);
                    if matches!(element.name.as_str(), "p" | "div" | "li" | "tr") {
                        out.push('\n');
                    }
                }
                XmlNode::Markup(markup) => out.push_str(&unescape(markup)),
                XmlNode::Text(text) => out.push_str(text),
            }
        }
    }
}

fn parse_storage(storage: &str, strict: bool) -> Result<XmlElement, String> {
    let mut reader = quick_xml::Reader::from_str(storage);
    {
        let config = reader.config_mut();
        config.check_end_names = strict;
        config.allow_unmatched_ends = !strict;
        config.expand_empty_elements = false;
        config.trim_text(false);
    }
    let mut stack = vec![XmlElement::new(String::new(), Vec::new())];
    // Open elements beyond MAX_STORAGE_DEPTH: not kept, their content goes to the ancestor.
    let mut flattened = 0usize;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(error) => {
                if strict {
                    return Err(error.to_string());
                }
                let position = usize::try_from(reader.error_position()).unwrap_or(storage.len());
                if let (Some(rest), Some(top)) = (storage.get(position..), stack.last_mut()) {
                    top.children.push(XmlNode::Text(strip_tags(rest)));
                }
                break;
            }
        };
        match event {
            Event::Start(start) => {
                if stack.len() > MAX_STORAGE_DEPTH {
                    flattened += 1;
                } else {
                    stack.push(element_of(&start));
                }
            }
            Event::Empty(start) => {
                if let Some(top) = stack.last_mut() {
                    top.children.push(XmlNode::Element(element_of(&start)));
                }
            }
            Event::End(end) => {
                if flattened > 0 {
                    flattened -= 1;
                    continue;
                }
                let name = lowercase_name(end.name().as_ref());
                let Some(position) = stack.iter().rposition(|open| open.name == name) else {
                    if strict {
                        return Err(format!("unexpected end tag </{name}>"));
                    }
                    continue;
                };
                if position == 0 {
                    if strict {
                        return Err(format!("unexpected end tag </{name}>"));
                    }
                    continue;
                }
                if strict && position != stack.len() - 1 {
                    return Err(format!("mismatched end tag </{name}>"));
                }
                close_to(&mut stack, position);
            }
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    let markup = text.replace('<', "&lt;");
                    top.children.push(XmlNode::Markup(markup));
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(top) = stack.last_mut() {
                    top.children
                        .push(XmlNode::Markup(reference_markup(&reference)));
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.children.push(XmlNode::Text(data.to_string()));
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if strict && (stack.len() > 1 || flattened > 0) {
        let name = stack
            .last()
            .map(|open| open.name.clone())
            .unwrap_or_default();
        return Err(format!("unclosed element <{name}>"));
    }
    close_to(&mut stack, 1);
    Ok(stack
        .pop()
        .unwrap_or_else(|| XmlElement::new(String::new(), Vec::new())))
}

/// Closes the open elements from the top of the stack down to `position` (inclusive),
/// attaching each to its parent.
fn close_to(stack: &mut Vec<XmlElement>, position: usize) {
    while stack.len() > position.max(1) {
        if let Some(closed) = stack.pop() {
            if let Some(parent) = stack.last_mut() {
                parent.children.push(XmlNode::Element(closed));
            }
        }
    }
}

fn lowercase_name(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn element_of(start: &BytesStart<'_>) -> XmlElement {
    let attributes = start
        .attributes()
        .with_checks(false)
        .flatten()
        .map(|attribute| {
            (
                lowercase_name(attribute.key.as_ref()),
                unescape(&attribute.value).into_owned(),
            )
        })
        .collect();
    XmlElement::new(lowercase_name(start.name().as_ref()), attributes)
}

/// An entity or character reference as HTML markup (the HTML parser resolves it).
fn reference_markup(reference: &BytesRef<'_>) -> String {
    let name: &str = reference;
    let valid = match name.strip_prefix('#') {
        Some(number) => match number.strip_prefix(['x', 'X']) {
            Some(hex) => !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
            None => !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()),
        },
        None => !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
    };
    if valid {
        format!("&{name};")
    } else {
        format!("&amp;{};", escape_html(name))
    }
}

/// Rough text of a malformed tail: tags dropped, CDATA markers removed.
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    let text = text.replace("<![CDATA[", "").replace("]]>", "");
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out).into_owned()
}

/// Resolves the XML escapes, numeric references and the commonest HTML named entities;
/// anything else is left as written.
fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest
            .get(1..)
            .and_then(|tail| tail.find(';'))
            .filter(|end| *end <= 10);
        let decoded = end.and_then(|end| {
            let name = &rest[1..=end];
            decode_entity(name).map(|c| (c, end + 2))
        });
        match decoded {
            Some((c, length)) => {
                out.push(c);
                rest = &rest[length..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn decode_entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "times" => '×',
        "rarr" => '→',
        "larr" => '←',
        _ => return None,
    })
}

fn escape_html(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// HTML elements passed through (with only the attributes in [`KEPT_ATTRIBUTES`]); other
/// elements are replaced by their content.
const HTML_ELEMENTS: [&str; 52] = [
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "b",
    "em",
    "i",
    "u",
    "s",
    "del",
    "strike",
    "sub",
    "sup",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "th",
    "td",
    "caption",
    "colgroup",
    "col",
    "a",
    "img",
    "span",
    "div",
    "small",
    "big",
    "mark",
    "cite",
    "q",
    "kbd",
    "samp",
    "ins",
    "section",
    "figure",
];
const VOID_ELEMENTS: [&str; 4] = ["br", "hr", "img", "col"];
/// Never content.
const DROPPED_ELEMENTS: [&str; 9] = [
    "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "head",
];
const KEPT_ATTRIBUTES: [(&str, &str); 5] = [
    ("a", "href"),
    ("img", "src"),
    ("img", "alt"),
    ("ol", "start"),
    ("a", "title"),
];

struct TableState {
    rows: usize,
}

struct Renderer<'a> {
    context: &'a StorageContext<'a>,
    tables: Vec<TableState>,
    out: String,
}

impl Renderer<'_> {
    fn children(&mut self, element: &XmlElement) {
        for child in &element.children {
            match child {
                XmlNode::Element(element) => self.element(element),
                XmlNode::Markup(markup) => self.out.push_str(markup),
                XmlNode::Text(text) => self.out.push_str(&escape_html(text)),
            }
        }
    }

    /// Renders `f` into a separate string.
    fn capture(&mut self, f: impl FnOnce(&mut Self)) -> String {
        let saved = std::mem::take(&mut self.out);
        f(self);
        std::mem::replace(&mut self.out, saved)
    }

    fn element(&mut self, element: &XmlElement) {
        let name = element.name.as_str();
        match name {
            "ac:structured-macro" | "ac:macro" => self.macro_(element),
            "ac:link" => self.link(element),
            "ac:image" => self.image(element),
            "ac:emoticon" => self.emoticon(element),
            "ac:task-list" => {
                self.out.push_str("<ul>");
                for task in element.elements().filter(|child| child.name == "ac:task") {
                    self.task(task);
                }
                self.out.push_str("</ul>");
            }
            "ac:task" => {
                self.out.push_str("<ul>");
                self.task(element);
                self.out.push_str("</ul>");
            }
            "ac:adf-extension" => match element.child("ac:adf-fallback") {
                Some(fallback) => self.children(fallback),
                None => self.children(element),
            },
            "ac:layout" | "ac:layout-section" | "ac:layout-cell" => {
                self.out.push_str("<div>");
                self.children(element);
                self.out.push_str("</div>");
            }
            "ac:plain-text-body" | "ac:plain-text-link-body" => {
                self.plain_paragraph(&element.text());
            }
            "ac:parameter" | "ac:task-id" | "ac:task-status" | "ac:placeholder"
            | "ac:adf-attribute" => {}
            _ if name.starts_with("ri:") => {}
            _ if name.contains(':') => self.children(element),
            "time" => match element.attribute("datetime") {
                Some(datetime) => self.out.push_str(&escape_html(datetime)),
                None => self.children(element),
            },
            "table" => {
                self.tables.push(TableState { rows: 0 });
                self.out.push_str("<table>");
                self.children(element);
                self.out.push_str("</table>");
                self.tables.pop();
            }
            "tr" => {
                if let Some(table) = self.tables.last_mut() {
                    table.rows += 1;
                }
                self.out.push_str("<tr>");
                self.children(element);
                self.out.push_str("</tr>");
            }
            "th" | "td" => {
                // Markdown tables have one header row: the first row's cells are the header,
                // every other cell is data (htmd keeps only `td` in data rows).
                let cell = match self.tables.last() {
                    Some(table) if table.rows <= 1 => "th",
                    Some(_) => "td",
                    None => name,
                };
                self.out.push_str(&format!("<{cell}>"));
                self.children(element);
                self.out.push_str(&format!("</{cell}>"));
            }
            _ if DROPPED_ELEMENTS.contains(&name) => {}
            _ if HTML_ELEMENTS.contains(&name) => self.html(element),
            _ => self.children(element),
        }
    }

    fn html(&mut self, element: &XmlElement) {
        let name = element.name.as_str();
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in &element.attributes {
            if !KEPT_ATTRIBUTES.contains(&(name, key.as_str())) {
                continue;
            }
            let value = match key.as_str() {
                "href" | "src" => match self.absolute(value) {
                    Some(url) => url,
                    None => continue,
                },
                _ => value.clone(),
            };
            self.out
                .push_str(&format!(" {key}=\"{}\"", escape_html(&value)));
        }
        self.out.push('>');
        if VOID_ELEMENTS.contains(&name) {
            return;
        }
        self.children(element);
        self.out.push_str(&format!("</{name}>"));
    }

    /// An http(s) or mailto URL, relative ones resolved against the site.
    fn absolute(&self, value: &str) -> Option<String> {
        let url = self.context.base.join(value.trim()).ok()?;
        matches!(url.scheme(), "http" | "https" | "mailto").then(|| url.to_string())
    }

    fn plain_paragraph(&mut self, text: &str) {
        let text = text.trim_matches('\n');
        if text.trim().is_empty() {
            return;
        }
        self.out.push_str("<p>");
        self.out.push_str(&escape_html(text).replace('\n', "<br>"));
        self.out.push_str("</p>");
    }

    fn task(&mut self, task: &XmlElement) {
        let done = task
            .child("ac:task-status")
            .is_some_and(|status| status.text().trim() == "complete");
        self.out.push_str(if done { "<li>☑ " } else { "<li>☐ " });
        if let Some(body) = task.child("ac:task-body") {
            self.children(body);
        }
        self.out.push_str("</li>");
    }

    fn macro_(&mut self, element: &XmlElement) {
        let name = element
            .attribute("ac:name")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let parameter = |wanted: &str| {
            element
                .elements()
                .filter(|child| child.name == "ac:parameter")
                .find(|child| {
                    child
                        .attribute("ac:name")
                        .is_some_and(|key| key.eq_ignore_ascii_case(wanted))
                })
                .map(|child| child.text().trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let rich = element.child("ac:rich-text-body");
        let plain = element.child("ac:plain-text-body");
        match name.as_str() {
            "code" | "noformat" => {
                if let Some(title) = parameter("title") {
                    self.out
                        .push_str(&format!("<p><strong>{}</strong></p>", escape_html(&title)));
                }
                let language = parameter("language").filter(|language| {
                    language.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '+' | '#' | '-' | '_' | '.')
                    })
                });
                let code = plain.or(rich).map(XmlElement::text).unwrap_or_default();
                let code = code.trim_matches('\n');
                match language {
                    Some(language) => self.out.push_str(&format!(
                        "<pre><code class=\"language-{}\">",
                        language.to_ascii_lowercase()
                    )),
                    None => self.out.push_str("<pre><code>"),
                }
                self.out.push_str(&escape_html(code));
                self.out.push_str("</code></pre>");
            }
            "info" | "note" | "warning" | "tip" | "panel" | "success" | "error" => {
                let label = match name.as_str() {
                    "info" => "Info",
                    "note" => "Note",
                    "warning" => "Warning",
                    "tip" => "Tip",
                    "success" => "Success",
                    "error" => "Error",
                    _ => "",
                };
                let heading = match (label, parameter("title")) {
                    ("", Some(title)) => title,
                    ("", None) => String::new(),
                    (label, Some(title)) => format!("{label}: {title}"),
                    (label, None) => label.to_owned(),
                };
                self.out.push_str("<blockquote>");
                if !heading.is_empty() {
                    self.out.push_str(&format!(
                        "<p><strong>{}</strong></p>",
                        escape_html(&heading)
                    ));
                }
                match (rich, plain) {
                    (Some(rich), _) => self.children(rich),
                    (None, Some(plain)) => self.plain_paragraph(&plain.text()),
                    (None, None) => {}
                }
                self.out.push_str("</blockquote>");
            }
            "expand" => {
                let title = parameter("title").unwrap_or_else(|| "Details".to_owned());
                self.out
                    .push_str(&format!("<p><strong>{}</strong></p>", escape_html(&title)));
                self.body(rich, plain);
            }
            "status" => {
                if let Some(title) = parameter("title") {
                    self.out
                        .push_str(&format!("<code>{}</code>", escape_html(&title)));
                }
            }
            "jira" => {
                if let Some(key) = parameter("key") {
                    self.out.push_str(&escape_html(&key));
                }
            }
            // Anything else degrades to its body (navigation macros have none).
            _ => self.body(rich, plain),
        }
    }

    fn body(&mut self, rich: Option<&XmlElement>, plain: Option<&XmlElement>) {
        match (rich, plain) {
            (Some(rich), _) => {
                self.out.push_str("<div>");
                self.children(rich);
                self.out.push_str("</div>");
            }
            (None, Some(plain)) => self.plain_paragraph(&plain.text()),
            (None, None) => {}
        }
    }

    /// `<site>/wiki/<segments…>`.
    fn wiki_url(&self, segments: &[&str]) -> Option<String> {
        let mut url = self.context.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .push("wiki")
            .extend(segments);
        Some(url.to_string())
    }

    fn attachment_url(&self, resource: &XmlElement) -> Option<String> {
        let filename = resource.attribute("ri:filename")?;
        // An attachment of another page names that page; its id is unknown here.
        if resource.elements().next().is_some() {
            return None;
        }
        let page_id = self.context.page_id?;
        self.wiki_url(&["download", "attachments", page_id, filename])
    }

    fn link(&mut self, element: &XmlElement) {
        let resource = element
            .elements()
            .find(|child| child.name.starts_with("ri:"));
        let body = (if let Some(body) = element.child("ac:link-body") {
            Some(self.capture(|renderer| renderer.children(body)))
        } else {
            element
                .child("ac:plain-text-link-body")
                .map(|body| escape_html(body.text().trim()).into_owned())
        })
        .filter(|body| !body.trim().is_empty());

        let (href, fallback) = match resource {
            None => (None, element.attribute("ac:anchor").map(str::to_owned)),
            Some(resource) => {
                let space = resource
                    .attribute("ri:space-key")
                    .or(self.context.space_key);
                match resource.name.as_str() {
                    "ri:page" => {
                        let title = resource.attribute("ri:content-title");
                        let href = match (space, title) {
                            (Some(space), Some(title)) => self.wiki_url(&["display", space, title]),
                            _ => None,
                        };
                        (href, title.map(str::to_owned))
                    }
                    "ri:blog-post" => {
                        let title = resource.attribute("ri:content-title");
                        let day = resource.attribute("ri:posting-day");
                        let href = match (space, day, title) {
                            (Some(space), Some(day), Some(title)) => {
                                let mut segments = vec!["display", space];
                                segments.extend(day.split('/'));
                                segments.push(title);
                                self.wiki_url(&segments)
                            }
                            _ => None,
                        };
                        (href, title.map(str::to_owned))
                    }
                    "ri:attachment" => (
                        self.attachment_url(resource),
                        resource.attribute("ri:filename").map(str::to_owned),
                    ),
                    "ri:url" => (
                        resource
                            .attribute("ri:value")
                            .and_then(|value| self.absolute(value)),
                        resource.attribute("ri:value").map(str::to_owned),
                    ),
                    "ri:space" => {
                        let key = resource.attribute("ri:space-key");
                        (
                            key.and_then(|key| self.wiki_url(&["spaces", key])),
                            key.map(str::to_owned),
                        )
                    }
                    "ri:content-entity" => {
                        let id = resource.attribute("ri:content-id");
                        (
                            id.and_then(|id| {
                                let mut url =
                                    Url::parse(&self.wiki_url(&["pages", "viewpage.action"])?)
                                        .ok()?;
                                url.query_pairs_mut().append_pair("pageId", id);
                                Some(url.to_string())
                            }),
                            None,
                        )
                    }
                    "ri:user" => (None, Some("@user".to_owned())),
                    _ => (None, None),
                }
            }
        };
        let text = match (body, fallback) {
            (Some(body), _) => body,
            (None, Some(fallback)) => escape_html(&fallback).into_owned(),
            (None, None) => match &href {
                Some(href) => escape_html(href).into_owned(),
                None => return,
            },
        };
        match href {
            Some(href) => self
                .out
                .push_str(&format!("<a href=\"{}\">{text}</a>", escape_html(&href))),
            None => self.out.push_str(&text),
        }
    }

    fn image(&mut self, element: &XmlElement) {
        let resource = element
            .elements()
            .find(|child| child.name.starts_with("ri:"));
        let alt = element
            .attribute("ac:alt")
            .or(element.attribute("ac:title"))
            .map(str::trim)
            .filter(|alt| !alt.is_empty());
        let (src, name) = match resource {
            Some(resource) if resource.name == "ri:url" => (
                resource
                    .attribute("ri:value")
                    .and_then(|value| self.absolute(value)),
                None,
            ),
            Some(resource) if resource.name == "ri:attachment" => (
                self.attachment_url(resource),
                resource.attribute("ri:filename"),
            ),
            _ => (None, None),
        };
        let label = alt.or(name).unwrap_or("image");
        match src {
            Some(src) => self.out.push_str(&format!(
                "<img src=\"{}\" alt=\"{}\">",
                escape_html(&src),
                escape_html(label)
            )),
            None => self
                .out
                .push_str(&format!("<em>(image: {})</em>", escape_html(label))),
        }
    }

    fn emoticon(&mut self, element: &XmlElement) {
        if let Some(fallback) = element
            .attribute("ac:emoji-fallback")
            .filter(|fallback| !fallback.trim().is_empty())
        {
            self.out.push_str(&escape_html(fallback));
            return;
        }
        let name = element.attribute("ac:name").unwrap_or_default();
        let emoji = match name {
            "smile" => "🙂",
            "sad" => "🙁",
            "cheeky" => "😛",
            "laugh" => "😀",
            "wink" => "😉",
            "thumbs-up" => "👍",
            "thumbs-down" => "👎",
            "information" => "ℹ️",
            "tick" => "✅",
            "cross" => "❌",
            "warning" => "⚠️",
            "plus" => "➕",
            "minus" => "➖",
            "question" => "❓",
            "light-on" => "💡",
            "light-off" => "💡",
            "yellow-star" | "star_yellow" => "⭐",
            "heart" => "❤️",
            _ if name.is_empty() => return,
            _ => {
                self.out.push_str(&format!(":{}:", escape_html(name)));
                return;
            }
        };
        self.out.push_str(emoji);
    }
}

fn converter() -> &'static htmd::HtmlToMarkdown {
    static CONVERTER: OnceLock<htmd::HtmlToMarkdown> = OnceLock::new();
    CONVERTER.get_or_init(|| {
        htmd::HtmlToMarkdown::builder()
            .options(htmd::options::Options {
                bullet_list_marker: htmd::options::BulletListMarker::Dash,
                ul_bullet_spacing: 1,
                ol_number_spacing: 1,
                ..htmd::options::Options::default()
            })
            .skip_tags(DROPPED_ELEMENTS.to_vec())
            .build()
    })
}

/// htmd is third-party code fed user content: a panic loses this page, not the batch.
fn html_to_markdown(html: &str) -> Result<String, String> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| converter().convert(html))) {
        Ok(Ok(markdown)) => Ok(markdown.trim().to_owned()),
        Ok(Err(error)) => Err(format!("html to markdown failed: {error}")),
        Err(_) => Err("html to markdown panicked".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Url {
        Url::parse("https://example.atlassian.net").unwrap()
    }

    fn md(storage: &str) -> String {
        storage_to_markdown(storage, &site())
    }

    fn in_page(storage: &str) -> Result<String, String> {
        let base = site();
        let context = StorageContext {
            base: &base,
            space_key: Some("ENG"),
            page_id: Some("4242"),
        };
        convert(storage, &context, true)
    }

    fn config() -> ConfluenceConfig {
        serde_json::from_value(json!({"base_url": "https://example.atlassian.net"})).unwrap()
    }

    #[test]
    fn headings_paragraphs_and_inline_formatting() {
        let out = md(
            "<h1>Title</h1><p>Some <strong>bold</strong> and <em>italic</em> \
                      text&nbsp;here &amp; there.</p><h3>Sub</h3><p>x<br/>y</p>",
        );
        assert!(out.starts_with("# Title"), "{out}");
        assert!(
            out.contains("Some **bold** and *italic* text\u{a0}here & there."),
            "{out}"
        );
        assert!(out.contains("### Sub"), "{out}");
    }

    #[test]
    fn lists_and_task_lists() {
        let out = md("<ul><li>one</li><li>two<ul><li>nested</li></ul></li></ul>\
                      <ol><li>first</li><li>second</li></ol>\
                      <ac:task-list><ac:task><ac:task-id>1</ac:task-id>\
                      <ac:task-status>complete</ac:task-status><ac:task-body>done thing</ac:task-body>\
                      </ac:task><ac:task><ac:task-id>2</ac:task-id><ac:task-status>incomplete</ac:task-status>\
                      <ac:task-body>open thing</ac:task-body></ac:task></ac:task-list>");
        assert!(out.contains("- one"), "{out}");
        assert!(out.contains("- nested"), "{out}");
        assert!(out.contains("1. first"), "{out}");
        assert!(out.contains("2. second"), "{out}");
        assert!(out.contains("- ☑ done thing"), "{out}");
        assert!(out.contains("- ☐ open thing"), "{out}");
        assert!(!out.contains("complete"), "{out}");
    }

    #[test]
    fn code_macro_becomes_a_fenced_block_with_its_language() {
        let out = md("<p>Before</p><ac:structured-macro ac:name=\"code\" ac:schema-version=\"1\" \
                      ac:macro-id=\"abc\"><ac:parameter ac:name=\"language\">rust</ac:parameter>\
                      <ac:parameter ac:name=\"title\">Example</ac:parameter>\
                      <ac:plain-text-body><![CDATA[fn main() {\n    if a < b && c > d { println!(\"<hi>\"); }\n}]]>\
                      </ac:plain-text-body></ac:structured-macro>");
        assert!(out.contains("**Example**"), "{out}");
        assert!(
            out.contains(
                "```rust\nfn main() {\n    if a < b && c > d { println!(\"<hi>\"); }\n}\n```"
            ),
            "{out}"
        );
        let plain = md(
            "<ac:structured-macro ac:name=\"noformat\"><ac:plain-text-body>\
                        <![CDATA[raw *text*]]></ac:plain-text-body></ac:structured-macro>",
        );
        assert!(plain.contains("```\nraw *text*\n```"), "{plain}");
    }

    #[test]
    fn panels_become_blockquotes() {
        for (name, label) in [
            ("info", "Info"),
            ("note", "Note"),
            ("warning", "Warning"),
            ("tip", "Tip"),
        ] {
            let out = md(&format!(
                "<ac:structured-macro ac:name=\"{name}\"><ac:parameter ac:name=\"title\">Heads up\
                 </ac:parameter><ac:rich-text-body><p>Panel <strong>body</strong></p>\
                 </ac:rich-text-body></ac:structured-macro>"
            ));
            assert!(out.contains(&format!("> **{label}: Heads up**")), "{out}");
            assert!(out.contains("> Panel **body**"), "{out}");
        }
    }

    #[test]
    fn tables_get_a_header_row() {
        let out = md("<table><colgroup><col/><col/></colgroup><tbody>\
                      <tr><th>Key</th><th>Value</th></tr>\
                      <tr><td>a</td><td><p>1</p></td></tr>\
                      <tr><th>b</th><td>2</td></tr></tbody></table>");
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("| Key") && l.contains("Value")),
            "{out}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("| -") || l.starts_with("|-")),
            "{out}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("| a") && l.contains('1')),
            "{out}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("| b") && l.contains('2')),
            "{out}"
        );
        // No header cells at all: the first row becomes the header.
        let headless = md(
            "<table><tbody><tr><td>x</td><td>y</td></tr><tr><td>1</td><td>2</td></tr>\
                           </tbody></table>",
        );
        assert!(headless.lines().any(|l| l.starts_with("| x")), "{headless}");
        assert!(headless.lines().any(|l| l.starts_with("| 1")), "{headless}");
    }

    #[test]
    fn links_to_pages_urls_and_attachments() {
        let out = md("<p><ac:link><ri:page ri:space-key=\"DOC\" ri:content-title=\"Install Guide\"/>\
                      <ac:plain-text-link-body><![CDATA[the guide]]></ac:plain-text-link-body></ac:link>, \
                      <ac:link><ri:page ri:space-key=\"DOC\" ri:content-title=\"FAQ\"/></ac:link>, \
                      <a href=\"https://rust-lang.org/\">Rust</a>, \
                      <ac:link><ri:url ri:value=\"https://example.com/x\"/><ac:link-body><em>ext</em></ac:link-body></ac:link>, \
                      <ac:link ac:anchor=\"top\"><ac:plain-text-link-body><![CDATA[to top]]></ac:plain-text-link-body></ac:link>, \
                      <ac:link><ri:user ri:account-id=\"5b10\"/></ac:link></p>");
        assert!(
            out.contains(
                "[the guide](https://example.atlassian.net/wiki/display/DOC/Install%20Guide)"
            ),
            "{out}"
        );
        assert!(
            out.contains("[FAQ](https://example.atlassian.net/wiki/display/DOC/FAQ)"),
            "{out}"
        );
        assert!(out.contains("[Rust](https://rust-lang.org/)"), "{out}");
        assert!(out.contains("[*ext*](https://example.com/x)"), "{out}");
        assert!(out.contains("to top"), "{out}");
        assert!(out.contains("@user"), "{out}");

        // Inside a page: links without a space key use the page's space, attachments the
        // page's id.
        let page = in_page(
            "<p><ac:link><ri:page ri:content-title=\"Sibling\"/></ac:link> \
                            <ac:link><ri:attachment ri:filename=\"spec v2.pdf\"/></ac:link></p>",
        )
        .unwrap();
        assert!(
            page.contains("[Sibling](https://example.atlassian.net/wiki/display/ENG/Sibling)"),
            "{page}"
        );
        assert!(
            page.contains(
                "[spec v2.pdf](https://example.atlassian.net/wiki/download/attachments/4242/spec%20v2.pdf)"
            ),
            "{page}"
        );
    }

    #[test]
    fn images_become_images_or_placeholders() {
        let out = md("<p><ac:image ac:alt=\"Architecture\"><ri:attachment ri:filename=\"arch.png\"/>\
                      </ac:image> <ac:image><ri:url ri:value=\"https://cdn.example.com/a.png\"/></ac:image></p>");
        assert!(out.contains("(image: Architecture)"), "{out}");
        assert!(
            out.contains("![image](https://cdn.example.com/a.png)"),
            "{out}"
        );
        let page =
            in_page("<ac:image><ri:attachment ri:filename=\"arch.png\"/></ac:image>").unwrap();
        assert!(
            page.contains("![arch.png](https://example.atlassian.net/wiki/download/attachments/4242/arch.png)"),
            "{page}"
        );
    }

    #[test]
    fn unknown_macros_degrade_to_their_body() {
        let out = md("<ac:structured-macro ac:name=\"toc\"/>\
                      <ac:structured-macro ac:name=\"some-vendor-macro\"><ac:parameter ac:name=\"x\">hidden\
                      </ac:parameter><ac:rich-text-body><p>kept text</p></ac:rich-text-body></ac:structured-macro>\
                      <ac:structured-macro ac:name=\"other\"><ac:plain-text-body><![CDATA[plain kept]]>\
                      </ac:plain-text-body></ac:structured-macro>\
                      <ac:structured-macro ac:name=\"status\"><ac:parameter ac:name=\"title\">DONE</ac:parameter>\
                      </ac:structured-macro> <ac:emoticon ac:name=\"tick\"/>\
                      <ac:layout><ac:layout-section><ac:layout-cell><p>in layout</p></ac:layout-cell>\
                      </ac:layout-section></ac:layout>");
        assert!(out.contains("kept text"), "{out}");
        assert!(out.contains("plain kept"), "{out}");
        assert!(!out.contains("hidden"), "{out}");
        assert!(out.contains("`DONE`"), "{out}");
        assert!(out.contains('✅'), "{out}");
        assert!(out.contains("in layout"), "{out}");
    }

    #[test]
    fn malformed_storage_is_an_error_strictly_and_text_leniently() {
        let broken = "<p>intro</p><ac:structured-macro ac:name=\"code\"><ac:plain-text-body>\
                      <![CDATA[never closed";
        assert!(in_page(broken).is_err());
        let out = md(broken);
        assert!(out.contains("intro"), "{out}");
        assert!(out.contains("never closed"), "{out}");

        assert!(in_page("<p>a</div>").is_err());
        assert!(in_page("<p><strong>a</p></strong>").is_err());
        assert!(in_page("<p>unclosed").is_err());
        let out = md("<p><strong>a</p> b</strong> <p>tail");
        assert!(out.contains('a') && out.contains("tail"), "{out}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        let deep = "<div>".repeat(5000) + "deep text" + &"</div>".repeat(5000);
        assert!(md(&deep).contains("deep text"));
        assert!(in_page(&deep).unwrap().contains("deep text"));
        let unclosed_deep = "<ul><li>".repeat(3000) + "x";
        let _ = md(&unclosed_deep);
        for input in [
            "",
            "<",
            "&",
            "&#xZZ;",
            "&unknown;",
            "<![CDATA[",
            "]]>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<?xml version=\"1.0\"?><p>x</p>",
            "<!-- c --><p>x</p>",
            "<p a='\"'>x</p>",
            "\u{0}",
            "<ac:link><ri:page/></ac:link>",
            "<ac:image/>",
            "<table><tr><td>x</td></tr></table>",
            "<td>orphan</td>",
            "<ac:structured-macro/>",
        ] {
            let _ = md(input);
        }
        assert!(!md("<a href=\"javascript:alert(1)\">x</a>").contains("javascript"));
    }

    #[test]
    fn random_tag_soup_never_panics() {
        const FRAGMENTS: [&str; 24] = [
            "<p>",
            "</p>",
            "text",
            "&nbsp;",
            "&",
            "<![CDATA[x",
            "]]>",
            "<ac:structured-macro ac:name=\"code\">",
            "</ac:structured-macro>",
            "<ac:plain-text-body>",
            "</ac:plain-text-body>",
            "<ac:rich-text-body>",
            "</ac:rich-text-body>",
            "<table>",
            "<tr>",
            "<td>",
            "</td>",
            "</table>",
            "<ac:link>",
            "<ri:page ri:content-title=\"a\"/>",
            "</ac:link>",
            "<br/>",
            "<li>",
            "\u{1F600}",
        ];
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..2_000 {
            let mut input = String::new();
            for _ in 0..(seed % 40) {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                input.push_str(FRAGMENTS[(seed >> 33) as usize % FRAGMENTS.len()]);
            }
            seed = seed.wrapping_add(0x9E37_79B9);
            let _ = md(&input);
            let _ = in_page(&input);
        }
    }

    #[test]
    fn config_validation() {
        assert!(config().validate().is_ok());
        assert!(config().include_blog_posts);
        let mut bad = config();
        bad.base_url = Url::parse("http://example.atlassian.net").unwrap();
        assert!(matches!(bad.validate(), Err(ConnectorError::Config(_))));
        bad.base_url = Url::parse("http://127.0.0.1:8080").unwrap();
        assert!(bad.validate().is_ok());
        bad.base_url = Url::parse("https://example.atlassian.net/wiki").unwrap();
        assert!(matches!(bad.validate(), Err(ConnectorError::Config(_))));
        bad.base_url = Url::parse("https://user:pw@example.atlassian.net").unwrap();
        assert!(matches!(bad.validate(), Err(ConnectorError::Config(_))));
        let mut bad = config();
        bad.batch_size = Some(0);
        assert!(bad.validate().is_err());
        bad.batch_size = Some(101);
        assert!(bad.validate().is_err());
        let mut bad = config();
        bad.space_keys = vec!["A\"B".into()];
        assert!(bad.validate().is_err());
        let mut bad = config();
        bad.exclude_labels = vec!["two words".into()];
        assert!(bad.validate().is_err());
        assert!(serde_json::from_value::<ConfluenceConfig>(
            json!({"base_url": "https://example.atlassian.net", "surprise": 1})
        )
        .is_err());
    }

    #[test]
    fn cql_shapes() {
        let mut config = config();
        assert_eq!(config.scope_cql(), "type in (page, blogpost)");
        config.include_blog_posts = false;
        config.space_keys = vec!["ENG".into(), "OPS".into()];
        config.exclude_labels = vec!["draft".into()];
        assert_eq!(
            config.scope_cql(),
            "type = page and space in (\"ENG\", \"OPS\") and label not in (\"draft\")"
        );
        let connector = ConfluenceConnector::new(
            "c1",
            config,
            Credentials::Bearer { token: "t".into() },
            crate::http::GuardedClient::with_policy(
                crate::http::policy::NetworkPolicy::allow_private(),
            )
            .unwrap(),
            RetryPolicy::default(),
        )
        .unwrap();
        assert_eq!(
            connector.pull_cql(Some("2024-03-01 09:55")),
            "type = page and space in (\"ENG\", \"OPS\") and label not in (\"draft\") \
             and lastmodified >= \"2024-03-01 09:55\" order by lastmodified asc"
        );
        assert_eq!(cql_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn window_uses_the_source_offset_and_the_overlap() {
        let at = DateTime::parse_from_rfc3339("2024-03-01T10:00:30.123+02:00").unwrap();
        assert_eq!(
            window_start(at, chrono::Duration::minutes(5)),
            "2024-03-01 09:55"
        );
        let utc = DateTime::parse_from_rfc3339("2024-03-01T00:02:00Z").unwrap();
        assert_eq!(
            window_start(utc, chrono::Duration::minutes(5)),
            "2024-02-29 23:57"
        );
    }

    #[test]
    fn checkpoints_round_trip_and_bad_ones_are_refused() {
        let connector = ConfluenceConnector::new(
            "c1",
            config(),
            Credentials::Bearer { token: "t".into() },
            crate::http::GuardedClient::with_policy(
                crate::http::policy::NetworkPolicy::allow_private(),
            )
            .unwrap(),
            RetryPolicy::default(),
        )
        .unwrap();
        let checkpoint = Checkpoint {
            window_since: Some("2024-03-01 09:55".into()),
            next: Some(
                Url::parse(
                    "https://example.atlassian.net/wiki/rest/api/content/search?cql=x&start=25",
                )
                .unwrap(),
            ),
            max_modified: Some(DateTime::parse_from_rfc3339("2024-03-01T10:00:30+02:00").unwrap()),
        };
        let value = checkpoint.to_value();
        assert_eq!(connector.parse_checkpoint(&value).unwrap(), checkpoint);
        assert_eq!(value["max_modified"], "2024-03-01T10:00:30+02:00");
        for bad in [
            json!("x"),
            json!({}),
            json!({"v": 2}),
            json!({"v": 1, "extra": true}),
            json!({"v": 1, "window_since": "yesterday"}),
            json!({"v": 1, "window_since": "2024-3-1 9:55"}),
            json!({"v": 1, "next": "https://evil.example.com/wiki/rest/api/content/search"}),
            json!({"v": 1, "next": "https://example.atlassian.net/wiki/spaces/X"}),
            json!({"v": 1, "max_modified": "nope"}),
        ] {
            assert!(
                matches!(
                    connector.parse_checkpoint(&bad),
                    Err(ConnectorError::Checkpoint(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn next_links_resolve_against_the_links_base_and_stay_on_the_site() {
        let connector = ConfluenceConnector::new(
            "c1",
            config(),
            Credentials::Bearer { token: "t".into() },
            crate::http::GuardedClient::with_policy(
                crate::http::policy::NetworkPolicy::allow_private(),
            )
            .unwrap(),
            RetryPolicy::default(),
        )
        .unwrap();
        let base = "https://example.atlassian.net/wiki";
        assert_eq!(
            connector
                .resolve_next(base, "/rest/api/content/search?cql=a&start=25")
                .unwrap()
                .as_str(),
            "https://example.atlassian.net/wiki/rest/api/content/search?cql=a&start=25"
        );
        // A foreign base is not trusted for API calls.
        assert_eq!(
            connector
                .resolve_next(
                    "https://other.example.com/wiki",
                    "/rest/api/content/search?x=1"
                )
                .unwrap()
                .as_str(),
            "https://example.atlassian.net/wiki/rest/api/content/search?x=1"
        );
        assert!(connector
            .resolve_next(
                base,
                "https://other.example.com/wiki/rest/api/content/search"
            )
            .is_err());
        assert!(connector.resolve_next(base, "relative").is_err());
        let with = with_expand(
            Url::parse("https://example.atlassian.net/wiki/rest/api/content/search?cql=a").unwrap(),
        );
        assert!(with
            .query_pairs()
            .any(|(k, v)| k == "expand" && v == EXPAND));
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let connector = ConfluenceConnector::new(
            "c1",
            config(),
            Credentials::Basic {
                email: "a@example.com".into(),
                api_token: "very-secret-token".into(),
            },
            crate::http::GuardedClient::with_policy(
                crate::http::policy::NetworkPolicy::allow_private(),
            )
            .unwrap(),
            RetryPolicy::default(),
        )
        .unwrap();
        assert!(!format!("{connector:?}").contains("very-secret-token"));
    }
}
