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

use std::collections::HashMap;

use chrono::{DateTime, Duration as TimeDelta, FixedOffset, NaiveDateTime, SecondsFormat, Utc};
use reqwest::header::ACCEPT;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use url::Url;

use super::document::Document;
use super::{
    is_loopback, Batch, Connector, ConnectorError, Credentials, DocumentFailure, IdPage,
    DEFAULT_BATCH_SIZE,
};
use crate::http::{send_with_retry, GuardedClient, HttpError, RetryPolicy};

const SOURCE: &str = "jira";
const CHECKPOINT_VERSION: u64 = 1;
const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 1024 * 1024;
const MAX_ATTACHMENT_BYTES: u64 = 10 * 1024 * 1024;
const DEFAULT_OVERLAP_MINUTES: u32 = 5;
const MAX_OVERLAP_MINUTES: u32 = 1440;
/// `issue/bulkfetch` takes at most 100 issues when it returns multi-value fields.
const MAX_BATCH_SIZE: usize = 100;
/// Page size of the slim listing (ids only; Jira allows up to 5000).
const LIST_PAGE_SIZE: usize = 1000;
const COMMENT_PAGE_SIZE: usize = 100;
/// A guard against a comment endpoint that never reaches its `total`.
const MAX_COMMENT_PAGES: usize = 500;
const MAX_JQL_CHARS: usize = 4000;
const MAX_LABEL_CHARS: usize = 255;
const MAX_TOKEN_CHARS: usize = 8192;
const MAX_ERROR_CHARS: usize = 500;
/// JQL's date-time literal.
const JQL_DATE_FORMAT: &str = "%Y-%m-%d %H:%M";
/// Jira's timestamps, e.g. `2024-05-01T10:15:30.123+0200`.
const JIRA_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.f%z";

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    /// `https://<site>.atlassian.net` (plain http only for loopback hosts, i.e. tests).
    pub base_url: Url,
    /// An extra JQL filter, ANDed with the rest (no `ORDER BY`).
    #[serde(default)]
    pub jql: Option<String>,
    /// Project keys, `[A-Z][A-Z0-9_]{0,9}`.
    #[serde(default)]
    pub project_keys: Vec<String>,
    /// Issues carrying any of these labels are left out (in JQL and again client-side).
    #[serde(default)]
    pub skip_labels: Vec<String>,
    #[serde(default = "yes")]
    pub include_comments: bool,
    /// Opt-in: append `text/*` and `application/json` attachments up to
    /// `max_attachment_bytes` as fenced blocks.
    #[serde(default)]
    pub attachments: bool,
    /// Default 1 MiB, at most 10 MiB.
    #[serde(default)]
    pub max_attachment_bytes: Option<u64>,
    /// Default 5, at most 1440.
    #[serde(default)]
    pub overlap_minutes: Option<u32>,
    /// Default 50, 1..=100.
    #[serde(default)]
    pub batch_size: Option<usize>,
}

impl JiraConfig {
    pub fn validate(&self) -> Result<(), ConnectorError> {
        let invalid = |message: String| Err(ConnectorError::Config(message));
        let url = &self.base_url;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(url) => {}
            "http" => return invalid("base_url must use https".into()),
            other => return invalid(format!("base_url has an unsupported scheme {other:?}")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return invalid("base_url has no host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return invalid("base_url must not carry credentials".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return invalid("base_url must not have a query or a fragment".into());
        }
        for key in &self.project_keys {
            if !is_project_key(key) {
                return invalid(format!(
                    "project key {key:?} is not of the form [A-Z][A-Z0-9_]{{0,9}}"
                ));
            }
        }
        if let Some(jql) = &self.jql {
            let trimmed = jql.trim();
            if trimmed.is_empty() {
                return invalid("jql is empty".into());
            }
            if trimmed.chars().count() > MAX_JQL_CHARS {
                return invalid(format!("jql is longer than {MAX_JQL_CHARS} characters"));
            }
            check_jql_shape(trimmed).map_err(ConnectorError::Config)?;
        }
        for label in &self.skip_labels {
            if label.is_empty()
                || label.chars().count() > MAX_LABEL_CHARS
                || label.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return invalid(format!(
                    "skip label {label:?} is not a Jira label (1..={MAX_LABEL_CHARS} characters, no spaces)"
                ));
            }
        }
        if let Some(bytes) = self.max_attachment_bytes {
            if bytes == 0 || bytes > MAX_ATTACHMENT_BYTES {
                return invalid(format!(
                    "max_attachment_bytes must be within 1..={MAX_ATTACHMENT_BYTES}"
                ));
            }
        }
        if let Some(minutes) = self.overlap_minutes {
            if minutes > MAX_OVERLAP_MINUTES {
                return invalid(format!(
                    "overlap_minutes must be at most {MAX_OVERLAP_MINUTES}"
                ));
            }
        }
        if let Some(size) = self.batch_size {
            if !(1..=MAX_BATCH_SIZE).contains(&size) {
                return invalid(format!("batch_size must be within 1..={MAX_BATCH_SIZE}"));
            }
        }
        Ok(())
    }

    fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    fn overlap_minutes(&self) -> u32 {
        self.overlap_minutes.unwrap_or(DEFAULT_OVERLAP_MINUTES)
    }

    fn max_attachment_bytes(&self) -> u64 {
        self.max_attachment_bytes
            .unwrap_or(DEFAULT_MAX_ATTACHMENT_BYTES)
    }

    /// The configured scope as JQL, without ordering; always bounded.
    fn scope_jql(&self) -> String {
        let mut clauses = Vec::new();
        if !self.project_keys.is_empty() {
            let keys: Vec<String> = self.project_keys.iter().map(|k| jql_string(k)).collect();
            clauses.push(format!("(project in ({}))", keys.join(", ")));
        }
        if let Some(jql) = &self.jql {
            clauses.push(format!("({})", jql.trim()));
        }
        if !self.skip_labels.is_empty() {
            let labels: Vec<String> = self.skip_labels.iter().map(|l| jql_string(l)).collect();
            clauses.push(format!(
                "(labels IS EMPTY OR labels NOT IN ({}))",
                labels.join(", ")
            ));
        }
        if clauses.is_empty() {
            // The enhanced search refuses unbounded queries; every issue has a project.
            clauses.push("(project IS NOT EMPTY)".into());
        }
        clauses.join(" AND ")
    }

    /// Whether the labels hit `skip_labels` (case-insensitively, erring on leaving out).
    fn skips(&self, labels: &[String]) -> bool {
        labels.iter().any(|label| {
            self.skip_labels
                .iter()
                .any(|skip| skip.to_lowercase() == label.to_lowercase())
        })
    }
}

fn is_project_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some('A'..='Z'))
        && key.len() <= 10
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `KEY-123`.
fn is_issue_key(key: &str) -> bool {
    match key.rsplit_once('-') {
        Some((project, number)) => {
            let mut chars = project.chars();
            matches!(chars.next(), Some('A'..='Z'))
                && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

fn is_numeric_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.chars().all(|c| c.is_ascii_digit())
}

/// A JQL string literal.
fn jql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Checks the shape of a user JQL filter outside its string literals: no `ORDER BY` (the
/// connector orders), balanced parentheses and closed quotes (so that, wrapped in
/// parentheses and ANDed, it cannot reach out and OR away the rest of the scope).
fn check_jql_shape(jql: &str) -> Result<(), String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut depth: usize = 0;
    for c in jql.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            current.push(c.to_ascii_lowercase());
            continue;
        }
        words.push(std::mem::take(&mut current));
        match c {
            '"' | '\'' => quote = Some(c),
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1).ok_or("jql has an unbalanced ')'")?;
            }
            _ => {}
        }
    }
    words.push(current);
    if quote.is_some() {
        return Err("jql has an unterminated string".into());
    }
    if depth != 0 {
        return Err("jql has an unbalanced '('".into());
    }
    let order_by = words
        .iter()
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .windows(2)
        .any(|pair| pair[0] == "order" && pair[1] == "by");
    if order_by {
        return Err("jql must not contain ORDER BY (the connector orders)".into());
    }
    Ok(())
}

/// A Jira timestamp (`2024-05-01T10:15:30.123+0200`, or RFC 3339).
fn parse_jira_time(value: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_str(value, JIRA_TIME_FORMAT)
        .or_else(|_| DateTime::parse_from_rfc3339(value))
        .ok()
}

fn utc_string(time: &DateTime<FixedOffset>) -> String {
    time.with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The start of the next window: `max_updated` minus the overlap, as a JQL date-time in
/// the offset Jira gave `max_updated` (the account's offset), floored to the minute.
fn window_start(max_updated: &str, overlap_minutes: u32) -> Option<String> {
    let time = parse_jira_time(max_updated)?;
    let start = time.checked_sub_signed(TimeDelta::minutes(i64::from(overlap_minutes)))?;
    Some(start.format(JQL_DATE_FORMAT).to_string())
}

fn is_jql_date(value: &str) -> bool {
    NaiveDateTime::parse_from_str(value, JQL_DATE_FORMAT)
        .is_ok_and(|time| time.format(JQL_DATE_FORMAT).to_string() == value)
}

/// Where a pull stands. Written after every batch; opaque to the engine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint {
    v: u64,
    /// The fixed start of the current pass (`None`: the pass is not windowed).
    window_since: Option<String>,
    /// The next page of the current pass (`None`: between passes).
    next_page_token: Option<String>,
    /// The newest `updated` seen so far, verbatim from Jira.
    max_updated: Option<String>,
}

impl Checkpoint {
    fn parse(value: &Value) -> Result<Self, ConnectorError> {
        let bad = |message: &str| ConnectorError::Checkpoint(message.to_owned());
        let object = value.as_object().ok_or_else(|| bad("not a JSON object"))?;
        match object.get("v").and_then(Value::as_u64) {
            Some(CHECKPOINT_VERSION) => {}
            Some(other) => {
                return Err(ConnectorError::Checkpoint(format!(
                    "unknown version {other}"
                )))
            }
            None => return Err(bad("no version")),
        }
        let checkpoint: Checkpoint = serde_json::from_value(value.clone())
            .map_err(|e| ConnectorError::Checkpoint(format!("malformed: {e}")))?;
        if let Some(since) = &checkpoint.window_since {
            // It goes into JQL: only a well-formed date-time literal is acceptable.
            if !is_jql_date(since) {
                return Err(bad("window_since is not a yyyy-MM-dd HH:mm date-time"));
            }
        }
        if let Some(token) = &checkpoint.next_page_token {
            if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
                return Err(bad("next_page_token is empty or too long"));
            }
        }
        if let Some(max) = &checkpoint.max_updated {
            if parse_jira_time(max).is_none() {
                return Err(bad("max_updated is not a Jira timestamp"));
            }
        }
        Ok(checkpoint)
    }

    fn to_value(&self) -> Value {
        json!({
            "v": CHECKPOINT_VERSION,
            "window_since": self.window_since,
            "next_page_token": self.next_page_token,
            "max_updated": self.max_updated,
        })
    }
}

/// The newest `updated` seen: parsed for comparing, verbatim for the checkpoint.
#[derive(Default)]
struct Newest(Option<(DateTime<FixedOffset>, String)>);

impl Newest {
    fn from_checkpoint(value: Option<&str>) -> Self {
        Newest(value.and_then(|raw| parse_jira_time(raw).map(|time| (time, raw.to_owned()))))
    }

    fn offer(&mut self, raw: &str) {
        if let Some(time) = parse_jira_time(raw) {
            if self.0.as_ref().is_none_or(|(newest, _)| time > *newest) {
                self.0 = Some((time, raw.to_owned()));
            }
        }
    }

    fn raw(&self) -> Option<String> {
        self.0.as_ref().map(|(_, raw)| raw.clone())
    }
}

/// One page of the issue search.
struct SearchPage {
    /// Issue ids with their labels when they were asked for.
    issues: Vec<(String, Vec<String>)>,
    next: Option<String>,
}

enum SearchFailure {
    /// 400: the JQL or the page token was refused, with Jira's messages.
    Rejected(String),
    Other(ConnectorError),
}

impl From<ConnectorError> for SearchFailure {
    fn from(error: ConnectorError) -> Self {
        SearchFailure::Other(error)
    }
}

/// An issue's fields as far as a document needs them.
struct Issue<'a> {
    id: String,
    key: String,
    summary: String,
    updated: DateTime<FixedOffset>,
    created: Option<DateTime<FixedOffset>>,
    project_key: Option<String>,
    project_name: Option<String>,
    status: Option<String>,
    issue_type: Option<String>,
    assignee: Option<String>,
    reporter: Option<String>,
    labels: Vec<String>,
    description: &'a Value,
    fields: &'a Map<String, Value>,
}

/// A text attachment read for the document.
struct AttachmentText {
    filename: String,
    language: String,
    text: String,
}

fn string_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn id_of(value: &Value) -> Option<String> {
    match value.get("id")? {
        Value::String(id) => Some(id.clone()),
        Value::Number(id) => Some(id.to_string()),
        _ => None,
    }
}

fn labels_of(fields: Option<&Value>) -> Vec<String> {
    fields
        .and_then(|fields| fields.get("labels"))
        .and_then(Value::as_array)
        .map(|labels| {
            labels
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn parse_issue(issue: &Value) -> Result<Issue<'_>, String> {
    let id = id_of(issue).ok_or("the issue has no id")?;
    if !is_numeric_id(&id) {
        return Err("the issue id is not numeric".into());
    }
    let key = issue
        .get("key")
        .and_then(Value::as_str)
        .filter(|key| is_issue_key(key))
        .ok_or("the issue has no valid key")?
        .to_owned();
    let fields = issue
        .get("fields")
        .and_then(Value::as_object)
        .ok_or("the issue has no fields")?;
    let summary = fields
        .get("summary")
        .and_then(Value::as_str)
        .ok_or("the summary is not a string")?;
    let summary = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    let updated = fields
        .get("updated")
        .and_then(Value::as_str)
        .and_then(parse_jira_time)
        .ok_or("the updated field is not a timestamp")?;
    let description = fields.get("description").unwrap_or(&Value::Null);
    if !matches!(
        description,
        Value::Null | Value::Object(_) | Value::String(_)
    ) {
        return Err("the description is not a document".into());
    }
    let whole = issue.get("fields").unwrap_or(&Value::Null);
    Ok(Issue {
        id,
        key,
        summary,
        updated,
        created: fields
            .get("created")
            .and_then(Value::as_str)
            .and_then(parse_jira_time),
        project_key: string_at(whole, &["project", "key"]).map(str::to_owned),
        project_name: string_at(whole, &["project", "name"]).map(str::to_owned),
        status: string_at(whole, &["status", "name"]).map(str::to_owned),
        issue_type: string_at(whole, &["issuetype", "name"]).map(str::to_owned),
        assignee: string_at(whole, &["assignee", "displayName"]).map(str::to_owned),
        reporter: string_at(whole, &["reporter", "displayName"]).map(str::to_owned),
        labels: labels_of(Some(whole)),
        description,
        fields,
    })
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Jira's error messages (`errorMessages` and `errors`) from an error body.
fn jira_messages(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return String::new();
    };
    let mut messages: Vec<String> = value
        .get("errorMessages")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(errors) = value.get("errors").and_then(Value::as_object) {
        for (field, message) in errors {
            if let Some(message) = message.as_str() {
                messages.push(format!("{field}: {message}"));
            }
        }
    }
    truncate(&messages.join("; "), MAX_ERROR_CHARS)
}

async fn error_messages(response: reqwest::Response) -> String {
    jira_messages(&response.text().await.unwrap_or_default())
}

fn status_error(status: StatusCode, what: &str, messages: &str) -> ConnectorError {
    let detail = if messages.is_empty() {
        format!("Jira answered {status} to {what}")
    } else {
        format!("Jira answered {status} to {what}: {messages}")
    };
    match status.as_u16() {
        401 | 403 => ConnectorError::Unauthorized(detail),
        408 | 429 | 500..=599 => ConnectorError::Unavailable(detail),
        _ => ConnectorError::Protocol(detail),
    }
}

fn transport_error(error: impl Into<HttpError>, what: &str) -> ConnectorError {
    let error = error.into();
    if error.is_refusal() {
        ConnectorError::Config(format!("{what}: {error}"))
    } else if error.is_decode() || refused_hop(&error) {
        ConnectorError::Protocol(format!("{what}: {error}"))
    } else {
        ConnectorError::Unavailable(format!("{what}: {error}"))
    }
}

/// A redirect the guarded client would not follow (network policy, hop filter, loop).
fn refused_hop(error: &HttpError) -> bool {
    error.is_refusal()
        || matches!(
            error,
            HttpError::TooManyRedirects | HttpError::BadRedirect(_)
        )
}

/// A successful answer's JSON body, or the error its status means.
async fn json_body(response: reqwest::Response, what: &str) -> Result<Value, ConnectorError> {
    let status = response.status();
    if !status.is_success() {
        return Err(status_error(status, what, &error_messages(response).await));
    }
    let text = response
        .text()
        .await
        .map_err(|error| transport_error(error, what))?;
    serde_json::from_str(&text)
        .map_err(|error| ConnectorError::Protocol(format!("{what}: not JSON ({error})")))
}

pub struct JiraConnector {
    /// `connector:<id>`, the id space of this connector's documents.
    scope: String,
    config: JiraConfig,
    /// The base URL without a trailing slash.
    base: String,
    scope_jql: String,
    credentials: Credentials,
    http: GuardedClient,
    retry: RetryPolicy,
}

impl std::fmt::Debug for JiraConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraConnector")
            .field("scope", &self.scope)
            .field("base", &self.base)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The registry's description of this source (`GET /sources`, creation, builds).
pub fn source() -> super::Source {
    use super::registry::{ConnectionProvider, CredentialKind};
    super::Source::new::<JiraConfig>("jira", "Jira Cloud", |context| {
        let config = context.typed_config::<JiraConfig>()?;
        let credentials = super::registry::inline_credentials(context.auth)?;
        let connector = JiraConnector::new(
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

impl super::registry::SourceConfig for JiraConfig {
    fn check(&self) -> Result<(), ConnectorError> {
        self.validate()
    }
}

impl JiraConnector {
    /// `connector_id` scopes document ids:
    /// `Document::stable_id(&format!("connector:{connector_id}"), &issue_id)`.
    pub fn new(
        connector_id: &str,
        config: JiraConfig,
        credentials: Credentials,
        http: GuardedClient,
        retry: RetryPolicy,
    ) -> Result<Self, ConnectorError> {
        if connector_id.trim().is_empty() {
            return Err(ConnectorError::Config("the connector id is empty".into()));
        }
        config.validate()?;
        Ok(Self {
            scope: format!("connector:{connector_id}"),
            base: config.base_url.as_str().trim_end_matches('/').to_owned(),
            scope_jql: config.scope_jql(),
            config,
            credentials,
            http,
            retry,
        })
    }

    fn url(&self, path: &str) -> Result<Url, ConnectorError> {
        Url::parse(&format!("{}{path}", self.base))
            .map_err(|error| ConnectorError::Config(format!("cannot build a Jira URL: {error}")))
    }

    /// An authenticated GET, retried on 408/429/5xx and timeouts.
    async fn get(&self, url: &Url, what: &str) -> Result<reqwest::Response, ConnectorError> {
        send_with_retry(
            || {
                self.credentials
                    .apply(self.http.get(url.clone()))
                    .header(ACCEPT, "application/json")
            },
            &self.retry,
        )
        .await
        .map_err(|error| transport_error(error, what))
    }

    fn window_jql(&self, window_since: Option<&str>) -> String {
        match window_since {
            Some(since) => format!(
                "{} AND updated >= {} ORDER BY updated ASC, id ASC",
                self.scope_jql,
                jql_string(since)
            ),
            None => format!("{} ORDER BY updated ASC, id ASC", self.scope_jql),
        }
    }

    async fn search(
        &self,
        jql: &str,
        fields: &str,
        max_results: usize,
        token: Option<&str>,
    ) -> Result<SearchPage, SearchFailure> {
        const WHAT: &str = "the issue search";
        let mut url = self.url("/rest/api/3/search/jql")?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("jql", jql);
            query.append_pair("fields", fields);
            query.append_pair("maxResults", &max_results.to_string());
            if let Some(token) = token {
                query.append_pair("nextPageToken", token);
            }
        }
        let response = self.get(&url, WHAT).await?;
        if response.status() == StatusCode::BAD_REQUEST {
            return Err(SearchFailure::Rejected(error_messages(response).await));
        }
        let body = json_body(response, WHAT).await?;
        let protocol = |message: &str| {
            SearchFailure::Other(ConnectorError::Protocol(format!("{WHAT}: {message}")))
        };
        let issues = match body.get("issues") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(issues)) => issues
                .iter()
                .map(|issue| {
                    id_of(issue)
                        .filter(|id| is_numeric_id(id))
                        .map(|id| (id, labels_of(issue.get("fields"))))
                        .ok_or_else(|| protocol("an issue without a numeric id"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(protocol("issues is not a list")),
        };
        let next = match body.get("nextPageToken") {
            None | Some(Value::Null) => None,
            Some(Value::String(token)) if !token.is_empty() && token.len() <= MAX_TOKEN_CHARS => {
                Some(token.clone())
            }
            Some(_) => return Err(protocol("nextPageToken is not a usable string")),
        };
        let last = match body.get("isLast") {
            None | Some(Value::Null) => next.is_none(),
            Some(Value::Bool(last)) => *last,
            Some(_) => return Err(protocol("isLast is not a boolean")),
        };
        if !last && next.is_none() {
            return Err(protocol("more pages follow but there is no nextPageToken"));
        }
        Ok(SearchPage {
            issues,
            next: if last { None } else { next },
        })
    }

    fn issue_fields(&self) -> Vec<&'static str> {
        let mut fields = vec![
            "summary",
            "description",
            "labels",
            "updated",
            "created",
            "project",
            "status",
            "issuetype",
            "assignee",
            "reporter",
        ];
        if self.config.include_comments {
            fields.push("comment");
        }
        if self.config.attachments {
            fields.push("attachment");
        }
        fields
    }

    /// `POST issue/bulkfetch` (read-only, so retried like a GET).
    async fn bulk_fetch(
        &self,
        ids: &[String],
    ) -> Result<(Vec<Value>, Vec<DocumentFailure>), ConnectorError> {
        const WHAT: &str = "the bulk issue fetch";
        let url = self.url("/rest/api/3/issue/bulkfetch")?;
        let body = json!({ "issueIdsOrKeys": ids, "fields": self.issue_fields() });
        let response = send_with_retry(
            || {
                self.credentials
                    .apply(self.http.post(url.clone()))
                    .header(ACCEPT, "application/json")
                    .json(&body)
            },
            &self.retry,
        )
        .await
        .map_err(|error| transport_error(error, WHAT))?;
        let mut value = json_body(response, WHAT).await?;
        let issues = match value.get_mut("issues").map(Value::take) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(issues)) => issues,
            Some(_) => {
                return Err(ConnectorError::Protocol(format!(
                    "{WHAT}: issues is not a list"
                )))
            }
        };
        let failures = value
            .get("issueErrors")
            .and_then(Value::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|error| {
                        let id = id_of(error)?;
                        let message = error
                            .get("errorMessage")
                            .and_then(Value::as_str)
                            .unwrap_or("no message");
                        Some(DocumentFailure {
                            source_id: id,
                            error: format!(
                                "Jira could not return the issue: {}",
                                truncate(message, MAX_ERROR_CHARS)
                            ),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((issues, failures))
    }

    /// Every comment of the issue: the embedded page, or all pages of the comment endpoint
    /// when the embedded one is incomplete. `Ok(Err(_))`: this issue fails.
    async fn comments(
        &self,
        issue: &Issue<'_>,
    ) -> Result<Result<Vec<Value>, String>, ConnectorError> {
        const WHAT: &str = "the comment listing";
        let embedded = issue.fields.get("comment").unwrap_or(&Value::Null);
        let comments: Vec<Value> = embedded
            .get("comments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let total = embedded.get("total").and_then(Value::as_u64).unwrap_or(0);
        if comments.len() as u64 >= total {
            return Ok(Ok(comments));
        }
        let mut all = Vec::new();
        let mut start_at: u64 = 0;
        for _ in 0..MAX_COMMENT_PAGES {
            let mut url = self.url(&format!("/rest/api/3/issue/{}/comment", issue.id))?;
            url.query_pairs_mut()
                .append_pair("startAt", &start_at.to_string())
                .append_pair("maxResults", &COMMENT_PAGE_SIZE.to_string())
                .append_pair("orderBy", "created");
            let response = self.get(&url, WHAT).await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Ok(Err("the issue's comments are gone (404)".into()));
            }
            let page = json_body(response, WHAT).await?;
            let batch = match page.get("comments") {
                Some(Value::Array(batch)) => batch.clone(),
                _ => {
                    return Err(ConnectorError::Protocol(format!(
                        "{WHAT}: comments is not a list"
                    )))
                }
            };
            let total = page.get("total").and_then(Value::as_u64).unwrap_or(0);
            if batch.is_empty() {
                break;
            }
            start_at += batch.len() as u64;
            all.extend(batch);
            if start_at >= total {
                break;
            }
        }
        Ok(Ok(all))
    }

    /// The text attachments that fit, in a stable order.
    async fn attachments(&self, issue: &Issue<'_>) -> Result<Vec<AttachmentText>, ConnectorError> {
        let limit = self.config.max_attachment_bytes();
        let mut candidates: Vec<(String, String, String)> = issue
            .fields
            .get("attachment")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|attachment| {
                        let id = id_of(attachment).filter(|id| is_numeric_id(id))?;
                        let filename = attachment.get("filename")?.as_str()?.to_owned();
                        let mime = attachment.get("mimeType")?.as_str()?;
                        let size = attachment.get("size")?.as_u64()?;
                        let language = text_language(mime)?;
                        (size <= limit).then_some((filename, id, language))
                    })
                    .collect()
            })
            .unwrap_or_default();
        candidates.sort();
        let mut texts = Vec::new();
        for (filename, id, language) in candidates {
            let Some(bytes) = self.download(&id, limit).await? else {
                continue;
            };
            match String::from_utf8(bytes) {
                Ok(text) => texts.push(AttachmentText {
                    filename,
                    language,
                    text,
                }),
                Err(_) => {
                    tracing::info!(issue = %issue.key, attachment = %id, "attachment is not UTF-8; left out");
                }
            }
        }
        Ok(texts)
    }

    /// An attachment's bytes, or `None` when it cannot or should not be read. Jira
    /// redirects to the media service with a short-lived token in the URL; the guarded
    /// client follows the redirect without our credentials, only to https (or loopback)
    /// targets the network policy allows. A refused hop leaves the attachment out.
    async fn download(&self, id: &str, limit: u64) -> Result<Option<Vec<u8>>, ConnectorError> {
        const WHAT: &str = "an attachment download";
        let url = self.url(&format!("/rest/api/3/attachment/content/{id}"))?;
        let safe_hop =
            |next: &Url| next.scheme() == "https" || (next.scheme() == "http" && is_loopback(next));
        let sent = send_with_retry(
            || {
                self.credentials
                    .apply(self.http.get(url.clone()))
                    .header(ACCEPT, "*/*")
                    .drop_auth_on_redirect()
                    .only_hops(safe_hop)
            },
            &self.retry,
        )
        .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) if refused_hop(&error) => {
                tracing::warn!(attachment = %id, %error, "attachment redirect refused; left out");
                return Ok(None);
            }
            Err(error) => return Err(transport_error(error, WHAT)),
        };
        let status = response.status();
        if !status.is_success() {
            let error = status_error(status, WHAT, "");
            if error.is_transient() {
                return Err(error);
            }
            tracing::warn!(attachment = %id, %status, "attachment not readable; left out");
            return Ok(None);
        }
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Ok(None);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| transport_error(error, WHAT))?
        {
            if (body.len() + chunk.len()) as u64 > limit {
                return Ok(None);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    /// The document of one issue; `Ok(Err(_))` when this issue cannot be converted.
    async fn convert(&self, raw: &Value) -> Result<Result<Document, String>, ConnectorError> {
        let issue = match parse_issue(raw) {
            Ok(issue) => issue,
            Err(error) => return Ok(Err(error)),
        };
        let comments = if self.config.include_comments {
            match self.comments(&issue).await? {
                Ok(comments) => comments,
                Err(error) => return Ok(Err(error)),
            }
        } else {
            Vec::new()
        };
        let attachments = if self.config.attachments {
            self.attachments(&issue).await?
        } else {
            Vec::new()
        };
        Ok(Ok(self.document(&issue, &comments, &attachments)))
    }

    fn document(
        &self,
        issue: &Issue<'_>,
        comments: &[Value],
        attachments: &[AttachmentText],
    ) -> Document {
        let title = format!("{}: {}", issue.key, issue.summary);
        let updated = utc_string(&issue.updated);
        let created = issue.created.as_ref().map(utc_string);

        let mut markdown = format!("# {title}\n\n");
        let project = match (&issue.project_key, &issue.project_name) {
            (Some(key), Some(name)) if key != name => format!("{key} ({name})"),
            (Some(key), _) => key.clone(),
            (None, Some(name)) => name.clone(),
            (None, None) => "unknown".into(),
        };
        let mut facts = vec![
            format!("- **Project:** {project}"),
            format!(
                "- **Type:** {}",
                issue.issue_type.as_deref().unwrap_or("unknown")
            ),
            format!(
                "- **Status:** {}",
                issue.status.as_deref().unwrap_or("unknown")
            ),
            format!(
                "- **Assignee:** {}",
                issue.assignee.as_deref().unwrap_or("Unassigned")
            ),
            format!(
                "- **Reporter:** {}",
                issue.reporter.as_deref().unwrap_or("unknown")
            ),
        ];
        if !issue.labels.is_empty() {
            facts.push(format!("- **Labels:** {}", issue.labels.join(", ")));
        }
        if let Some(created) = &created {
            facts.push(format!("- **Created:** {created}"));
        }
        facts.push(format!("- **Updated:** {updated}"));
        markdown.push_str(&facts.join("\n"));
        markdown.push('\n');

        let description = adf_to_markdown(issue.description);
        if !description.is_empty() {
            markdown.push('\n');
            markdown.push_str(&description);
            markdown.push('\n');
        }

        if !comments.is_empty() {
            markdown.push_str("\n## Comments\n");
            for comment in comments {
                let author = string_at(comment, &["author", "displayName"]).unwrap_or("Unknown");
                let when = comment
                    .get("created")
                    .and_then(Value::as_str)
                    .and_then(parse_jira_time)
                    .map(|time| utc_string(&time))
                    .unwrap_or_else(|| "unknown date".into());
                markdown.push_str(&format!("\n### {author} · {when}\n"));
                let body = adf_to_markdown(comment.get("body").unwrap_or(&Value::Null));
                if !body.is_empty() {
                    markdown.push('\n');
                    markdown.push_str(&body);
                    markdown.push('\n');
                }
            }
        }

        if !attachments.is_empty() {
            markdown.push_str("\n## Attachments\n");
            for attachment in attachments {
                let fence = fence_for(&attachment.text, '`');
                let text = attachment.text.trim_end_matches(['\n', '\r']);
                markdown.push_str(&format!(
                    "\n### {}\n\n{fence}{}\n{text}\n{fence}\n",
                    one_line(&attachment.filename),
                    attachment.language
                ));
            }
        }

        let mut metadata = Map::new();
        metadata.insert("key".into(), json!(issue.key));
        metadata.insert("project".into(), json!(issue.project_key));
        metadata.insert("status".into(), json!(issue.status));
        metadata.insert("issue_type".into(), json!(issue.issue_type));
        metadata.insert("labels".into(), json!(issue.labels));
        metadata.insert("created".into(), json!(created));
        metadata.insert("updated".into(), json!(updated));
        metadata.insert("assignee".into(), json!(issue.assignee));
        metadata.insert("reporter".into(), json!(issue.reporter));

        Document {
            id: Document::stable_id(&self.scope, &issue.id),
            source: SOURCE.into(),
            source_id: issue.id.clone(),
            title: Some(title),
            url: Some(format!("{}/browse/{}", self.base, issue.key)),
            markdown,
            metadata,
            updated_at: updated,
            acl: Vec::new(),
        }
    }
}

/// The fence language of an attachment we read, or `None` for types we leave out.
fn text_language(mime: &str) -> Option<String> {
    let essence = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" {
        return Some("json".into());
    }
    let subtype = essence.strip_prefix("text/")?;
    Some(match subtype {
        "plain" => "text".into(),
        other if other.chars().all(|c| c.is_ascii_alphanumeric()) => other.into(),
        _ => String::new(),
    })
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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
        let me = json_body(response, WHAT).await?;
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
        let (window, token) = match state {
            // The very first pass: everything in scope.
            None => (None, None),
            // Within a pass.
            Some(Checkpoint {
                window_since,
                next_page_token: Some(token),
                ..
            }) => (window_since, Some(token)),
            // A pass that lost its place: restart its window.
            Some(Checkpoint {
                window_since: Some(since),
                next_page_token: None,
                ..
            }) => (Some(since), None),
            // Between passes: a new window from the newest update seen, minus the overlap.
            Some(Checkpoint {
                window_since: None,
                next_page_token: None,
                max_updated,
                ..
            }) => {
                let since = match max_updated {
                    Some(max) => Some(
                        window_start(&max, self.config.overlap_minutes()).ok_or_else(|| {
                            ConnectorError::Checkpoint("max_updated is out of range".into())
                        })?,
                    ),
                    None => None,
                };
                (since, None)
            }
        };

        let jql = self.window_jql(window.as_deref());
        let batch_size = self.config.batch_size();
        let page = match self.search(&jql, "id", batch_size, token.as_deref()).await {
            Err(SearchFailure::Rejected(_)) if token.is_some() => {
                // Page tokens expire; the window's start is known, so start it again.
                tracing::warn!("Jira refused the page token; restarting the sync window");
                self.search(&jql, "id", batch_size, None).await
            }
            other => other,
        };
        let page = match page {
            Ok(page) => page,
            Err(SearchFailure::Rejected(messages)) => {
                return Err(ConnectorError::Config(format!(
                    "Jira rejected the JQL: {messages}"
                )))
            }
            Err(SearchFailure::Other(error)) => return Err(error),
        };

        let ids: Vec<String> = page.issues.into_iter().map(|(id, _)| id).collect();
        let mut documents = Vec::new();
        let mut failures = Vec::new();
        let mut skipped = 0usize;
        if !ids.is_empty() {
            let (issues, issue_errors) = self.bulk_fetch(&ids).await?;
            failures.extend(issue_errors);
            let mut by_id: HashMap<String, Value> = issues
                .into_iter()
                .filter_map(|issue| id_of(&issue).map(|id| (id, issue)))
                .collect();
            for id in &ids {
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
                    skipped += 1;
                    continue;
                }
                match self.convert(&raw).await? {
                    Ok(document) => documents.push(document),
                    Err(error) => failures.push(DocumentFailure {
                        source_id: id.clone(),
                        error,
                    }),
                }
            }
        }

        let done = page.next.is_none();
        let checkpoint = if done {
            Checkpoint {
                v: CHECKPOINT_VERSION,
                window_since: None,
                next_page_token: None,
                max_updated: newest.raw(),
            }
        } else {
            Checkpoint {
                v: CHECKPOINT_VERSION,
                window_since: window,
                next_page_token: page.next,
                max_updated: newest.raw(),
            }
        };
        tracing::debug!(
            listed = ids.len(),
            documents = documents.len(),
            failures = failures.len(),
            skipped,
            done,
            "Jira batch"
        );
        Ok(Batch {
            documents,
            failures,
            checkpoint: checkpoint.to_value(),
            done,
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

// ---------------------------------------------------------------------------------------
// Atlassian Document Format → markdown
// ---------------------------------------------------------------------------------------

/// Nesting deeper than this is flattened to plain text (no unbounded recursion).
const MAX_ADF_DEPTH: usize = 48;

/// Markdown for an ADF document (or any ADF node). Paragraphs, headings, bullet, ordered
/// and task lists (nested), code blocks with their language, blockquotes, rules, hard
/// breaks, marks (strong, em, code, link, strike), mentions, emoji, dates, status lozenges,
/// inline and block cards as links, tables as pipe tables, panels as blockquotes, media as
/// placeholders; unknown nodes give their text content. Never panics.
pub fn adf_to_markdown(adf: &Value) -> String {
    match adf {
        Value::String(text) => text.trim().to_owned(),
        Value::Array(nodes) => join_blocks(render_blocks(nodes, 0)),
        Value::Object(_) => join_blocks(render_block(adf, 0)),
        _ => String::new(),
    }
}

fn node_type(node: &Value) -> &str {
    node.get("type").and_then(Value::as_str).unwrap_or_default()
}

fn children(node: &Value) -> &[Value] {
    node.get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn attr<'a>(node: &'a Value, name: &str) -> Option<&'a Value> {
    node.get("attrs")?.get(name)
}

fn attr_str<'a>(node: &'a Value, name: &str) -> Option<&'a str> {
    attr(node, name)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn is_inline(kind: &str) -> bool {
    matches!(
        kind,
        "text"
            | "hardBreak"
            | "mention"
            | "emoji"
            | "inlineCard"
            | "date"
            | "status"
            | "mediaInline"
            | "placeholder"
            | "inlineExtension"
    )
}

fn is_list(kind: &str) -> bool {
    matches!(
        kind,
        "bulletList" | "orderedList" | "taskList" | "decisionList"
    )
}

fn join_blocks(blocks: Vec<String>) -> String {
    blocks
        .into_iter()
        .filter(|block| !block.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Blocks of a node list; runs of inline nodes between blocks become paragraphs.
fn render_blocks(nodes: &[Value], depth: usize) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut inline_run: Vec<&Value> = Vec::new();
    let flush = |run: &mut Vec<&Value>, blocks: &mut Vec<String>| {
        if !run.is_empty() {
            let text = render_inline_refs(run, depth);
            let text = text.trim();
            if !text.is_empty() {
                blocks.push(text.to_owned());
            }
            run.clear();
        }
    };
    for node in nodes {
        if is_inline(node_type(node)) {
            inline_run.push(node);
        } else {
            flush(&mut inline_run, &mut blocks);
            blocks.extend(render_block(node, depth));
        }
    }
    flush(&mut inline_run, &mut blocks);
    blocks
}

fn render_block(node: &Value, depth: usize) -> Vec<String> {
    if depth > MAX_ADF_DEPTH {
        let text = plain_text(node);
        return if text.is_empty() { vec![] } else { vec![text] };
    }
    let next = depth + 1;
    let kind = node_type(node);
    let block = match kind {
        "doc" | "layoutSection" | "layoutColumn" | "bodiedExtension" | "listItem" | "tableRow"
        | "tableCell" | "tableHeader" => {
            return render_blocks(children(node), next);
        }
        "paragraph" => render_inline(children(node), next).trim().to_owned(),
        "heading" => {
            let level = attr(node, "level")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 6) as usize;
            let text = single_line(&render_inline(children(node), next));
            if text.is_empty() {
                String::new()
            } else {
                format!("{} {text}", "#".repeat(level))
            }
        }
        "bulletList" | "orderedList" | "taskList" | "decisionList" => render_list(node, next),
        "codeBlock" => {
            let code: String = children(node)
                .iter()
                .filter_map(|child| child.get("text").and_then(Value::as_str))
                .collect();
            let language: String = attr_str(node, "language")
                .unwrap_or_default()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '#' | '_' | '.'))
                .take(32)
                .collect();
            let fence = fence_for(&code, '`');
            format!(
                "{fence}{language}\n{}\n{fence}",
                code.trim_end_matches(['\n', '\r'])
            )
        }
        "blockquote" => quote(&join_blocks(render_blocks(children(node), next))),
        "panel" => {
            let mut blocks = Vec::new();
            let label = match attr_str(node, "panelType") {
                Some("info") => Some("Info"),
                Some("note") => Some("Note"),
                Some("warning") => Some("Warning"),
                Some("success") => Some("Success"),
                Some("error") => Some("Error"),
                Some("tip") => Some("Tip"),
                _ => None,
            };
            if let Some(label) = label {
                blocks.push(format!("**{label}:**"));
            }
            blocks.extend(render_blocks(children(node), next));
            quote(&join_blocks(blocks))
        }
        "expand" | "nestedExpand" => {
            let mut blocks = Vec::new();
            if let Some(title) = attr_str(node, "title") {
                blocks.push(format!("**{}**", single_line(title)));
            }
            blocks.extend(render_blocks(children(node), next));
            join_blocks(blocks)
        }
        "rule" => "---".to_owned(),
        "table" => render_table(node, next),
        "mediaSingle" | "mediaGroup" => {
            let mut blocks = Vec::new();
            for child in children(node) {
                match node_type(child) {
                    "media" | "mediaInline" => blocks.push(media_placeholder(child)),
                    "caption" => {
                        let caption = single_line(&render_inline(children(child), next));
                        if !caption.is_empty() {
                            blocks.push(format!("*{caption}*"));
                        }
                    }
                    _ => blocks.extend(render_block(child, next)),
                }
            }
            join_blocks(blocks)
        }
        "media" => media_placeholder(node),
        "blockCard" | "embedCard" => card_link(node).unwrap_or_default(),
        "extension" => String::new(),
        kind if is_inline(kind) => render_inline(std::slice::from_ref(node), next)
            .trim()
            .to_owned(),
        _ => plain_text(node),
    };
    if block.trim().is_empty() {
        vec![]
    } else {
        vec![block]
    }
}

/// A list of any kind, nested lists indented under their item.
fn render_list(node: &Value, depth: usize) -> String {
    if depth > MAX_ADF_DEPTH {
        return plain_text(node);
    }
    let kind = node_type(node);
    let mut number = attr(node, "order")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .min(999_999_999);
    let mut lines: Vec<String> = Vec::new();
    for item in children(node) {
        let item_kind = node_type(item);
        if is_list(item_kind) {
            // A list directly inside a list (task lists nest this way): indent it.
            let nested = render_list(item, depth + 1);
            lines.extend(nested.lines().map(|line| indent_line(line, "  ")));
            continue;
        }
        let marker = match kind {
            "orderedList" => {
                let marker = format!("{number}. ");
                number = number.saturating_add(1);
                marker
            }
            "taskList" if attr_str(item, "state") == Some("DONE") => "- [x] ".to_owned(),
            "taskList" => "- [ ] ".to_owned(),
            _ => "- ".to_owned(),
        };
        let body = match item_kind {
            "taskItem" | "decisionItem" => render_blocks(children(item), depth + 1).join("\n\n"),
            "listItem" => {
                let mut body = String::new();
                for child in children(item) {
                    let rendered = join_blocks(render_block(child, depth + 1));
                    if rendered.is_empty() {
                        continue;
                    }
                    if !body.is_empty() {
                        body.push_str(if is_list(node_type(child)) {
                            "\n"
                        } else {
                            "\n\n"
                        });
                    }
                    body.push_str(&rendered);
                }
                body
            }
            _ => join_blocks(render_block(item, depth + 1)),
        };
        let indent = " ".repeat(marker.len());
        if body.is_empty() {
            lines.push(marker.trim_end().to_owned());
            continue;
        }
        for (index, line) in body.lines().enumerate() {
            if index == 0 {
                lines.push(format!("{marker}{line}"));
            } else {
                lines.push(indent_line(line, &indent));
            }
        }
    }
    lines.join("\n")
}

fn indent_line(line: &str, indent: &str) -> String {
    if line.is_empty() {
        String::new()
    } else {
        format!("{indent}{line}")
    }
}

fn quote(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    text.lines()
        .map(|line| {
            if line.is_empty() {
                ">".to_owned()
            } else {
                format!("> {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Newlines (and hard breaks) to spaces.
fn single_line(text: &str) -> String {
    text.replace("\\\n", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn render_table(node: &Value, depth: usize) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for row in children(node) {
        if node_type(row) != "tableRow" {
            continue;
        }
        let mut cells = Vec::new();
        for cell in children(row) {
            let text = join_blocks(render_blocks(children(cell), depth + 1))
                .replace("\\\n", "<br>")
                .replace("\n\n", "<br>")
                .replace('\n', "<br>")
                .replace('|', "\\|");
            cells.push(text.trim().to_owned());
            let span = attr(cell, "colspan")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 64);
            for _ in 1..span {
                cells.push(String::new());
            }
        }
        rows.push(cells);
    }
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    if width == 0 {
        return String::new();
    }
    let line = |cells: &[String]| {
        let mut padded: Vec<&str> = cells.iter().map(String::as_str).collect();
        padded.resize(width, "");
        format!("| {} |", padded.join(" | "))
    };
    let mut lines = vec![line(&rows[0])];
    lines.push(format!("|{}", " --- |".repeat(width)));
    lines.extend(rows[1..].iter().map(|row| line(row)));
    lines.join("\n")
}

fn media_placeholder(node: &Value) -> String {
    let alt = attr_str(node, "alt").map(single_line);
    if attr_str(node, "type") == Some("external") {
        if let Some(url) = attr_str(node, "url").and_then(safe_href) {
            return format!(
                "![{}]({url})",
                escape_brackets(alt.as_deref().unwrap_or("image"))
            );
        }
    }
    match alt {
        Some(alt) => format!("[media: {}]", escape_brackets(&alt)),
        None => "[media]".to_owned(),
    }
}

/// An inline or block card: its URL as a link (or its JSON-LD name and URL).
fn card_link(node: &Value) -> Option<String> {
    if let Some(url) = attr_str(node, "url") {
        let href = safe_href(url)?;
        return Some(format!("[{}]({href})", escape_brackets(url)));
    }
    let data = attr(node, "data")?;
    let url = data.get("url").and_then(Value::as_str)?;
    let href = safe_href(url)?;
    let name = data
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.trim().is_empty())
        .unwrap_or(url);
    Some(format!("[{}]({href})", escape_brackets(&single_line(name))))
}

/// A link target we are willing to emit: http(s), mailto or relative; spaces and
/// parentheses wrapped in `<…>`.
fn safe_href(href: &str) -> Option<String> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let lower = href.to_ascii_lowercase();
    let allowed = lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:")
        || lower.starts_with('/')
        || lower.starts_with('#');
    if !allowed || href.chars().any(char::is_control) {
        return None;
    }
    if href.contains([' ', '(', ')', '<', '>']) {
        Some(format!(
            "<{}>",
            href.replace('<', "%3C").replace('>', "%3E")
        ))
    } else {
        Some(href.to_owned())
    }
}

fn escape_brackets(text: &str) -> String {
    text.replace('[', "\\[").replace(']', "\\]")
}

/// The shortest fence of `mark` longer than any run of it in `text` (at least three).
fn fence_for(text: &str, mark: char) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == mark {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    std::iter::repeat_n(mark, (longest + 1).max(3)).collect()
}

#[derive(Clone, Default, PartialEq)]
struct Marks {
    strong: bool,
    em: bool,
    strike: bool,
    code: bool,
    link: Option<String>,
}

impl Marks {
    fn of(node: &Value) -> Self {
        let mut marks = Marks::default();
        for mark in node
            .get("marks")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            match node_type(mark) {
                "strong" => marks.strong = true,
                "em" => marks.em = true,
                "strike" => marks.strike = true,
                "code" => marks.code = true,
                "link" => marks.link = attr_str(mark, "href").and_then(safe_href),
                _ => {}
            }
        }
        marks
    }

    fn apply(&self, text: &str) -> String {
        let core = text.trim();
        if core.is_empty() {
            return text.to_owned();
        }
        let lead = &text[..text.len() - text.trim_start().len()];
        let trail = &text[text.trim_end().len()..];
        let mut out = if self.code {
            code_span(core)
        } else {
            core.to_owned()
        };
        if self.strike {
            out = format!("~~{out}~~");
        }
        if self.em {
            out = format!("*{out}*");
        }
        if self.strong {
            out = format!("**{out}**");
        }
        if let Some(href) = &self.link {
            let label = if self.code {
                out
            } else {
                escape_brackets(&out)
            };
            out = format!("[{label}]({href})");
        }
        format!("{lead}{out}{trail}")
    }
}

fn code_span(text: &str) -> String {
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
    let fence = "`".repeat(longest + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

fn render_inline(nodes: &[Value], depth: usize) -> String {
    let refs: Vec<&Value> = nodes.iter().collect();
    render_inline_refs(&refs, depth)
}

/// Inline content; adjacent text with the same marks is merged before the marks are
/// written, so `**a****b**` never happens.
fn render_inline_refs(nodes: &[&Value], depth: usize) -> String {
    let mut out = String::new();
    let mut pending: Option<(String, Marks)> = None;
    for node in nodes {
        if node_type(node) == "text" {
            let text = node.get("text").and_then(Value::as_str).unwrap_or_default();
            let marks = Marks::of(node);
            match &mut pending {
                Some((buffer, current)) if *current == marks => buffer.push_str(text),
                _ => {
                    if let Some((buffer, current)) = pending.take() {
                        out.push_str(&current.apply(&buffer));
                    }
                    pending = Some((text.to_owned(), marks));
                }
            }
            continue;
        }
        if let Some((buffer, current)) = pending.take() {
            out.push_str(&current.apply(&buffer));
        }
        out.push_str(&render_inline_node(node, depth));
    }
    if let Some((buffer, current)) = pending.take() {
        out.push_str(&current.apply(&buffer));
    }
    out
}

fn render_inline_node(node: &Value, depth: usize) -> String {
    match node_type(node) {
        "hardBreak" => "\\\n".to_owned(),
        "mention" => {
            let text = attr_str(node, "text").unwrap_or("user");
            if text.starts_with('@') {
                text.to_owned()
            } else {
                format!("@{text}")
            }
        }
        "emoji" => attr_str(node, "text")
            .or_else(|| attr_str(node, "shortName"))
            .unwrap_or_default()
            .to_owned(),
        "inlineCard" => card_link(node).unwrap_or_default(),
        "date" => {
            let millis = match attr(node, "timestamp") {
                Some(Value::String(text)) => text.trim().parse::<i64>().ok(),
                Some(Value::Number(number)) => number.as_i64(),
                _ => None,
            };
            millis
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .map(|time| time.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        }
        "status" => attr_str(node, "text")
            .map(|text| format!("[{}]", escape_brackets(&single_line(text))))
            .unwrap_or_default(),
        "mediaInline" => media_placeholder(node),
        "placeholder" | "inlineExtension" => String::new(),
        _ if depth > MAX_ADF_DEPTH => plain_text(node),
        _ => {
            // An unknown inline node: its inline content, else its text.
            let content = children(node);
            if content.is_empty() {
                plain_text(node)
            } else {
                render_inline(content, depth + 1)
            }
        }
    }
}

/// The text content of a node, without recursion (for unknown and too deep nodes).
fn plain_text(node: &Value) -> String {
    let mut pieces: Vec<&str> = Vec::new();
    let mut stack: Vec<&Value> = vec![node];
    while let Some(current) = stack.pop() {
        match node_type(current) {
            "text" => {
                if let Some(text) = current.get("text").and_then(Value::as_str) {
                    pieces.push(text);
                }
            }
            "mention" | "emoji" | "status" => {
                if let Some(text) = attr_str(current, "text") {
                    pieces.push(" ");
                    pieces.push(text);
                    pieces.push(" ");
                }
            }
            "hardBreak" => pieces.push(" "),
            _ => {
                if !is_inline(node_type(current)) {
                    pieces.push(" ");
                }
                stack.extend(children(current).iter().rev());
            }
        }
    }
    pieces
        .concat()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(content: Value) -> Value {
        json!({"version": 1, "type": "doc", "content": content})
    }

    fn text(value: &str) -> Value {
        json!({"type": "text", "text": value})
    }

    fn marked(value: &str, marks: Value) -> Value {
        json!({"type": "text", "text": value, "marks": marks})
    }

    fn paragraph(content: Value) -> Value {
        json!({"type": "paragraph", "content": content})
    }

    fn item(content: Value) -> Value {
        json!({"type": "listItem", "content": content})
    }

    fn config() -> JiraConfig {
        serde_json::from_value(json!({"base_url": "https://example.atlassian.net"})).unwrap()
    }

    #[test]
    fn paragraphs_headings_and_marks() {
        let adf = doc(json!([
            {"type": "heading", "attrs": {"level": 2}, "content": [text("Overview")]},
            paragraph(json!([
                text("Hello "),
                marked("bold", json!([{"type": "strong"}])),
                text(", "),
                marked("it", json!([{"type": "em"}])),
                text(", "),
                marked("gone", json!([{"type": "strike"}])),
                text(", "),
                marked("x()", json!([{"type": "code"}])),
                text(" and "),
                marked("a link", json!([{"type": "link", "attrs": {"href": "https://example.com/a"}}])),
                text("."),
            ])),
            paragraph(json!([])),
            {"type": "rule"},
            paragraph(json!([text("line one"), {"type": "hardBreak"}, text("line two")])),
        ]));
        assert_eq!(
            adf_to_markdown(&adf),
            "## Overview\n\nHello **bold**, *it*, ~~gone~~, `x()` and \
             [a link](https://example.com/a).\n\n---\n\nline one\\\nline two"
        );
    }

    #[test]
    fn adjacent_runs_merge_and_whitespace_stays_outside_marks() {
        let strong = json!([{"type": "strong"}]);
        let adf = paragraph(json!([
            marked("two ", strong.clone()),
            marked("parts ", strong),
            text("end"),
        ]));
        assert_eq!(adf_to_markdown(&adf), "**two parts** end");
        let nested = paragraph(json!([marked(
            "both",
            json!([{"type": "strong"}, {"type": "em"}, {"type": "link", "attrs": {"href": "https://x.test/"}}])
        )]));
        assert_eq!(adf_to_markdown(&nested), "[***both***](https://x.test/)");
    }

    #[test]
    fn unsafe_links_keep_only_their_text() {
        let adf = paragraph(json!([marked(
            "click",
            json!([{"type": "link", "attrs": {"href": "javascript:alert(1)"}}])
        )]));
        assert_eq!(adf_to_markdown(&adf), "click");
        let spaced = paragraph(json!([marked(
            "doc",
            json!([{"type": "link", "attrs": {"href": "https://x.test/a b(c)"}}])
        )]));
        assert_eq!(adf_to_markdown(&spaced), "[doc](<https://x.test/a b(c)>)");
    }

    #[test]
    fn nested_and_ordered_lists() {
        let adf = doc(json!([
            {"type": "bulletList", "content": [
                item(json!([
                    paragraph(json!([text("one")])),
                    {"type": "orderedList", "attrs": {"order": 3}, "content": [
                        item(json!([paragraph(json!([text("three")]))])),
                        item(json!([
                            paragraph(json!([text("four")])),
                            {"type": "codeBlock", "attrs": {"language": "sh"}, "content": [text("ls -la")]},
                        ])),
                    ]},
                ])),
                item(json!([paragraph(json!([text("two")]))])),
            ]},
        ]));
        assert_eq!(
            adf_to_markdown(&adf),
            "- one\n  3. three\n  4. four\n\n     ```sh\n     ls -la\n     ```\n- two"
        );
    }

    #[test]
    fn task_lists() {
        let adf = doc(json!([
            {"type": "taskList", "attrs": {"localId": "a"}, "content": [
                {"type": "taskItem", "attrs": {"localId": "1", "state": "DONE"}, "content": [text("done")]},
                {"type": "taskItem", "attrs": {"localId": "2", "state": "TODO"}, "content": [text("todo")]},
                {"type": "taskList", "attrs": {"localId": "b"}, "content": [
                    {"type": "taskItem", "attrs": {"localId": "3", "state": "TODO"}, "content": [text("sub")]},
                ]},
            ]},
        ]));
        assert_eq!(adf_to_markdown(&adf), "- [x] done\n- [ ] todo\n  - [ ] sub");
    }

    #[test]
    fn code_blocks_pick_a_longer_fence() {
        let adf = doc(json!([
            {"type": "codeBlock", "attrs": {"language": "rust"}, "content": [text("fn main() {}\n")]},
            {"type": "codeBlock", "content": [text("```\nnested\n```")]},
            {"type": "codeBlock", "attrs": {"language": "x\n```evil"}, "content": [text("y")]},
        ]));
        assert_eq!(
            adf_to_markdown(&adf),
            "```rust\nfn main() {}\n```\n\n````\n```\nnested\n```\n````\n\n```xevil\ny\n```"
        );
        let inline = paragraph(json!([marked("a`b", json!([{"type": "code"}]))]));
        assert_eq!(adf_to_markdown(&inline), "``a`b``");
    }

    #[test]
    fn blockquotes_and_panels() {
        let adf = doc(json!([
            {"type": "blockquote", "content": [
                paragraph(json!([text("quoted")])),
                paragraph(json!([text("twice")])),
            ]},
            {"type": "panel", "attrs": {"panelType": "warning"}, "content": [
                paragraph(json!([text("careful")])),
            ]},
        ]));
        assert_eq!(
            adf_to_markdown(&adf),
            "> quoted\n>\n> twice\n\n> **Warning:**\n>\n> careful"
        );
    }

    #[test]
    fn mentions_emoji_cards_dates_status_and_media() {
        let adf = doc(json!([
            paragraph(json!([
                {"type": "mention", "attrs": {"id": "abc", "text": "@Ada Lovelace"}},
                text(" "),
                {"type": "mention", "attrs": {"id": "def", "text": "Grace"}},
                text(" "),
                {"type": "emoji", "attrs": {"shortName": ":grinning:", "text": "😀"}},
                {"type": "emoji", "attrs": {"shortName": ":awthanks:"}},
                text(" "),
                {"type": "inlineCard", "attrs": {"url": "https://example.atlassian.net/browse/PROJ-1"}},
                text(" "),
                {"type": "date", "attrs": {"timestamp": "1714557600000"}},
                text(" "),
                {"type": "status", "attrs": {"text": "IN PROGRESS", "color": "blue"}},
            ])),
            {"type": "blockCard", "attrs": {"url": "https://example.com/spec"}},
            {"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [
                {"type": "media", "attrs": {"id": "f1", "type": "file", "collection": "c", "alt": "diagram.png"}},
            ]},
            {"type": "mediaGroup", "content": [
                {"type": "media", "attrs": {"id": "f2", "type": "file", "collection": "c"}},
                {"type": "media", "attrs": {"type": "external", "url": "https://img.test/x.png"}},
            ]},
        ]));
        assert_eq!(
            adf_to_markdown(&adf),
            "@Ada Lovelace @Grace 😀:awthanks: \
             [https://example.atlassian.net/browse/PROJ-1](https://example.atlassian.net/browse/PROJ-1) \
             2024-05-01 [IN PROGRESS]\n\n\
             [https://example.com/spec](https://example.com/spec)\n\n\
             [media: diagram.png]\n\n[media]\n\n![image](https://img.test/x.png)"
        );
    }

    #[test]
    fn tables_become_pipe_tables() {
        let cell = |kind: &str, value: &str| json!({"type": kind, "attrs": {}, "content": [paragraph(json!([text(value)]))]});
        let adf = doc(json!([
            {"type": "table", "attrs": {"isNumberColumnEnabled": false}, "content": [
                {"type": "tableRow", "content": [cell("tableHeader", "Name"), cell("tableHeader", "Value")]},
                {"type": "tableRow", "content": [cell("tableCell", "a|b"), cell("tableCell", "1")]},
                {"type": "tableRow", "content": [
                    {"type": "tableCell", "attrs": {"colspan": 2}, "content": [
                        paragraph(json!([text("wide")])),
                        paragraph(json!([text("cell")])),
                    ]},
                ]},
            ]},
        ]));
        assert_eq!(
            adf_to_markdown(&adf),
            "| Name | Value |\n| --- | --- |\n| a\\|b | 1 |\n| wide<br>cell |  |"
        );
    }

    #[test]
    fn unknown_nodes_give_their_text() {
        let adf = doc(json!([
            {"type": "somethingNew", "content": [
                paragraph(json!([text("inner")])),
                {"type": "weirdInline", "text": "ignored", "content": [text("kept")]},
            ]},
            paragraph(json!([{"type": "futureInline", "content": [text("inline text")]}])),
            {"type": "expand", "attrs": {"title": "Details"}, "content": [paragraph(json!([text("hidden")]))]},
        ]));
        assert_eq!(
            adf_to_markdown(&adf),
            "inner kept\n\ninline text\n\n**Details**\n\nhidden"
        );
    }

    #[test]
    fn never_panics_on_garbage_or_depth() {
        for garbage in [
            json!(null),
            json!(42),
            json!("plain text"),
            json!([1, "two", null]),
            json!({"type": 7, "content": "nope"}),
            json!({"type": "heading", "attrs": {"level": -3}, "content": [{"type": "text"}]}),
            json!({"type": "orderedList", "attrs": {"order": u64::MAX}, "content": [item(json!([paragraph(json!([text("x")]))])), item(json!([]))]}),
            json!({"type": "table", "content": [{"type": "tableRow", "content": [{"type": "tableCell", "attrs": {"colspan": 1_000_000}}]}]}),
            json!({"type": "text", "text": "  ", "marks": [{"type": "strong"}]}),
            json!({"type": "date", "attrs": {"timestamp": "99999999999999999999"}}),
            json!({"type": "paragraph", "content": [{"type": "text", "text": "é ", "marks": [{"type": "em"}]}]}),
        ] {
            let _ = adf_to_markdown(&garbage);
        }
        assert_eq!(adf_to_markdown(&json!("plain text")), "plain text");
        // Very deep nesting is flattened rather than recursed. (Built by hand: `json!`
        // would serialise the nested value again at every level.)
        let wrap = |kind: &str, child: Value| {
            let mut node = Map::new();
            node.insert("type".into(), Value::String(kind.into()));
            node.insert("content".into(), Value::Array(vec![child]));
            Value::Object(node)
        };
        let mut deep = paragraph(json!([text("bottom")]));
        for _ in 0..2_000 {
            deep = wrap("blockquote", deep);
        }
        let markdown = adf_to_markdown(&deep);
        assert!(markdown.contains("bottom"));
        let mut list = wrap(
            "bulletList",
            item(json!([paragraph(json!([text("leaf")]))])),
        );
        for _ in 0..500 {
            list = wrap("bulletList", wrap("listItem", list));
        }
        assert!(adf_to_markdown(&list).contains("leaf"));
        let mut inline = text("deep inline");
        for _ in 0..2_000 {
            inline = wrap("futureInline", inline);
        }
        let inline = wrap("paragraph", inline);
        assert_eq!(adf_to_markdown(&inline), "deep inline");
        // Avoid a recursive drop of the deep values in the test thread's small stack.
        std::mem::forget(deep);
        std::mem::forget(list);
        std::mem::forget(inline);
    }

    #[test]
    fn config_defaults_and_validation() {
        let config = config();
        assert!(config.validate().is_ok());
        assert!(config.include_comments);
        assert!(!config.attachments);
        assert_eq!(config.batch_size(), 50);
        assert_eq!(config.overlap_minutes(), 5);
        assert_eq!(config.max_attachment_bytes(), 1024 * 1024);

        let invalid = |patch: Value| {
            let mut value = json!({"base_url": "https://example.atlassian.net"});
            for (key, field) in patch.as_object().unwrap() {
                value[key] = field.clone();
            }
            match serde_json::from_value::<JiraConfig>(value) {
                Ok(config) => config.validate().is_err(),
                Err(_) => true,
            }
        };
        assert!(invalid(json!({"base_url": "http://example.atlassian.net"})));
        assert!(invalid(json!({"base_url": "ftp://example.atlassian.net"})));
        assert!(invalid(
            json!({"base_url": "https://user:pw@example.atlassian.net"})
        ));
        assert!(invalid(
            json!({"base_url": "https://example.atlassian.net/?x=1"})
        ));
        assert!(!invalid(json!({"base_url": "http://127.0.0.1:8080"})));
        assert!(!invalid(json!({"base_url": "http://localhost:8080/"})));
        assert!(invalid(json!({"project_keys": ["proj"]})));
        assert!(invalid(json!({"project_keys": ["P-1"]})));
        assert!(invalid(json!({"project_keys": ["ABCDEFGHIJK"]})));
        assert!(!invalid(
            json!({"project_keys": ["A", "AB_1", "ABCDEFGHIJ"]})
        ));
        assert!(invalid(json!({"jql": "  "})));
        assert!(invalid(json!({"jql": "status = Done order  by created"})));
        assert!(!invalid(json!({"jql": "summary ~ \"order by\""})));
        assert!(invalid(json!({"skip_labels": ["two words"]})));
        assert!(invalid(json!({"skip_labels": [""]})));
        assert!(invalid(json!({"batch_size": 0})));
        assert!(invalid(json!({"batch_size": 101})));
        assert!(!invalid(json!({"batch_size": 100})));
        assert!(invalid(json!({"overlap_minutes": 1441})));
        assert!(invalid(json!({"max_attachment_bytes": 0})));
        assert!(invalid(
            json!({"max_attachment_bytes": 10 * 1024 * 1024 + 1})
        ));
        assert!(invalid(json!({"unknown_field": true})));
    }

    #[test]
    fn scope_jql_is_quoted_and_bounded() {
        let mut config = config();
        assert_eq!(config.scope_jql(), "(project IS NOT EMPTY)");
        config.project_keys = vec!["PROJ".into(), "OR".into()];
        config.jql = Some(" status = Done ".into());
        config.skip_labels = vec!["secret".into(), "we\"ird\\".into()];
        assert_eq!(
            config.scope_jql(),
            "(project in (\"PROJ\", \"OR\")) AND (status = Done) AND \
             (labels IS EMPTY OR labels NOT IN (\"secret\", \"we\\\"ird\\\\\"))"
        );
        assert!(config.skips(&["Secret".into()]));
        assert!(!config.skips(&["public".into()]));
    }

    #[test]
    fn window_start_keeps_jiras_offset() {
        assert_eq!(
            window_start("2024-05-01T10:15:30.123+0200", 5).as_deref(),
            Some("2024-05-01 10:10")
        );
        assert_eq!(
            window_start("2024-05-01T00:03:00.000+02:00", 5).as_deref(),
            Some("2024-04-30 23:58")
        );
        assert_eq!(
            window_start("2024-03-10T01:00:59.999-0500", 0).as_deref(),
            Some("2024-03-10 01:00")
        );
        assert_eq!(
            window_start("2024-05-01T08:15:30Z", 1440).as_deref(),
            Some("2024-04-30 08:15")
        );
        assert_eq!(window_start("yesterday", 5), None);
    }

    fn connector() -> JiraConnector {
        JiraConnector::new(
            "c1",
            config(),
            Credentials::Basic {
                email: "a@example.com".into(),
                api_token: "t".into(),
            },
            crate::http::GuardedClient::with_policy(
                crate::http::policy::NetworkPolicy::allow_private(),
            )
            .unwrap(),
            RetryPolicy::default(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn bad_checkpoints_are_refused_before_any_call() {
        let connector = connector();
        for checkpoint in [
            json!({"v": 2, "window_since": null, "next_page_token": null, "max_updated": null}),
            json!({"window_since": null}),
            json!("v1"),
            json!({"v": 1, "window_since": "2024-05-01 10:10\" OR project = X", "next_page_token": "t", "max_updated": null}),
            json!({"v": 1, "window_since": null, "next_page_token": null, "max_updated": "soon"}),
            json!({"v": 1, "window_since": null, "next_page_token": "", "max_updated": null}),
            json!({"v": 1, "window_since": null, "next_page_token": null, "max_updated": null, "extra": 1}),
            json!({"v": 1, "window_since": 5, "next_page_token": null, "max_updated": null}),
        ] {
            match connector.pull(Some(&checkpoint)).await {
                Err(ConnectorError::Checkpoint(_)) => {}
                other => panic!("{checkpoint} gave {other:?}"),
            }
        }
    }

    #[test]
    fn checkpoints_round_trip() {
        let checkpoint = Checkpoint {
            v: 1,
            window_since: Some("2024-05-01 10:10".into()),
            next_page_token: Some("abc".into()),
            max_updated: Some("2024-05-01T10:15:30.123+0200".into()),
        };
        assert_eq!(
            Checkpoint::parse(&checkpoint.to_value()).unwrap(),
            checkpoint
        );
        let between = Checkpoint {
            v: 1,
            ..Checkpoint::default()
        };
        assert_eq!(
            between.to_value(),
            json!({"v": 1, "window_since": null, "next_page_token": null, "max_updated": null})
        );
    }

    #[test]
    fn issues_convert_to_documents() {
        let connector = connector();
        let raw = json!({
            "id": "10042",
            "key": "PROJ-43",
            "fields": {
                "summary": "Fix the\nlogin",
                "updated": "2024-05-01T10:15:30.123+0200",
                "created": "2024-04-01T09:00:00.000+0200",
                "labels": ["backend"],
                "project": {"key": "PROJ", "name": "Project"},
                "status": {"name": "Done"},
                "issuetype": {"name": "Bug"},
                "assignee": null,
                "reporter": {"displayName": "Bob"},
                "description": doc(json!([paragraph(json!([text("Body")]))])),
            }
        });
        let issue = parse_issue(&raw).unwrap();
        let comments = vec![json!({
            "author": {"displayName": "Ada"},
            "created": "2024-05-01T11:00:00.000+0200",
            "body": doc(json!([paragraph(json!([text("Looks good")]))])),
        })];
        let document = connector.document(&issue, &comments, &[]);
        assert_eq!(document.id, Document::stable_id("connector:c1", "10042"));
        assert_eq!(document.title.as_deref(), Some("PROJ-43: Fix the login"));
        assert_eq!(
            document.url.as_deref(),
            Some("https://example.atlassian.net/browse/PROJ-43")
        );
        assert_eq!(document.updated_at, "2024-05-01T08:15:30Z");
        assert_eq!(document.metadata["created"], json!("2024-04-01T07:00:00Z"));
        assert_eq!(document.metadata["assignee"], Value::Null);
        assert_eq!(
            document.markdown,
            "# PROJ-43: Fix the login\n\n- **Project:** PROJ (Project)\n- **Type:** Bug\n\
             - **Status:** Done\n- **Assignee:** Unassigned\n- **Reporter:** Bob\n\
             - **Labels:** backend\n- **Created:** 2024-04-01T07:00:00Z\n\
             - **Updated:** 2024-05-01T08:15:30Z\n\nBody\n\n## Comments\n\n\
             ### Ada · 2024-05-01T09:00:00Z\n\nLooks good\n"
        );
        for garbage in [
            json!({"id": "1", "key": "PROJ-1", "fields": {"summary": 4, "updated": "2024-05-01T10:15:30.123+0200"}}),
            json!({"id": "1", "key": "PROJ-1", "fields": {"summary": "s", "updated": "later"}}),
            json!({"id": "1", "key": "../x", "fields": {"summary": "s", "updated": "2024-05-01T10:15:30.123+0200"}}),
            json!({"id": "x/1", "key": "PROJ-1", "fields": {}}),
            json!({"id": "1", "key": "PROJ-1", "fields": {"summary": "s", "updated": "2024-05-01T10:15:30.123+0200", "description": 5}}),
        ] {
            assert!(parse_issue(&garbage).is_err(), "{garbage}");
        }
    }

    #[test]
    fn helpers() {
        assert!(check_jql_shape("a = b ORDER BY c").is_err());
        assert!(check_jql_shape("a = b order\nby c").is_err());
        assert!(check_jql_shape("summary ~ 'order by'").is_ok());
        assert!(check_jql_shape("border = by").is_ok());
        assert!(check_jql_shape("a = 1) OR (b = 2").is_err());
        assert!(check_jql_shape("(a = 1").is_err());
        assert!(check_jql_shape("summary ~ \"x").is_err());
        assert!(check_jql_shape("summary ~ \"a) OR (\\\" b\" AND (c in (1, 2))").is_ok());
        assert_eq!(
            text_language("text/plain; charset=utf-8").as_deref(),
            Some("text")
        );
        assert_eq!(text_language("application/json").as_deref(), Some("json"));
        assert_eq!(text_language("text/csv").as_deref(), Some("csv"));
        assert_eq!(text_language("image/png"), None);
        assert_eq!(
            jira_messages(r#"{"errorMessages":["bad jql"],"errors":{"jql":"nope"}}"#),
            "bad jql; jql: nope"
        );
        assert_eq!(truncate("abcdef", 3), "abc…");
    }
}
