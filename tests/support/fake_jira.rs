//! A fake Jira Cloud on loopback, answering the REST API v3 calls the Jira connector makes
//! the way Atlassian documents them.
//!
//! - `GET /rest/api/3/myself` → `{accountId, displayName, emailAddress, timeZone, ..}`.
//! - `GET /rest/api/3/search/jql?jql=..&fields=..&maxResults=..&nextPageToken=..` →
//!   `{issues: [{id, key, fields?}], nextPageToken?, isLast}`. The JQL subset the connector
//!   sends is really evaluated: `AND`/`OR`/`NOT`/parentheses, `field in (..)`,
//!   `field not in (..)`, `field is [not] empty`, `=`, `!=`, `~` and date comparisons
//!   (`updated >= "yyyy-MM-dd HH:mm"`, read in the account's zone, fixed at +02:00), and
//!   `ORDER BY` over `updated`, `created`, `id`, `key`. Like the enhanced search, a query
//!   without any restriction is refused (400, "unbounded"). Page tokens are opaque, bound
//!   to their JQL, and can be expired with [`FakeJira::expire_page_tokens`] (400).
//! - `POST /rest/api/3/issue/bulkfetch {issueIdsOrKeys, fields}` → `{issues, issueErrors}`,
//!   at most 100 ids, issues in ascending id order, unknown or deleted ones left out.
//! - `GET /rest/api/3/issue/{idOrKey}/comment?startAt=..&maxResults=..` → a page of
//!   comments `{startAt, maxResults, total, comments}`. The `comment` field embedded in
//!   an issue carries the first [`EMBEDDED_COMMENTS`] only, and the endpoint serves at
//!   most [`COMMENT_PAGE_LIMIT`] per page, so long threads need several calls.
//! - `GET /rest/api/3/attachment/content/{id}` → 303 to `/media/file/{id}?token=..`, which
//!   serves the bytes without authentication (like Atlassian's media service).
//!
//! Every API call needs `Authorization: Basic base64(EMAIL:API_TOKEN)` (401 otherwise), or
//! a bearer token that [`FakeJira::accept_bearer`]'s check accepts (an OAuth connection).
//! Errors are Jira's `{"errorMessages": [..], "errors": {}}`.
//!
//! Issues are generated deterministically: ids 10000.., keys PROJ-1.., `updated` rising by
//! 30 s every second issue (so pairs tie and the `id` tie-break matters) with a +0200
//! offset, ADF descriptions with lists, code, links and tables, comment threads (every
//! 40th issue has [`LONG_THREAD`] comments, every 3rd otherwise two), labels (every 10th issue from the 4th is
//! labelled `secret`), and text, JSON, image and oversized attachments on every 50th.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tributary::connectors::Credentials;

pub const EMAIL: &str = "sync-bot@example.com";
pub const API_TOKEN: &str = "fake-jira-api-token-7c1e5b";
pub const PROJECT: &str = "PROJ";
pub const ACCOUNT_ID: &str = "5b10ac8d82e05b22cc7d4ef5";
/// Comments embedded in an issue's `comment` field.
pub const EMBEDDED_COMMENTS: usize = 5;
/// The most comments the comment endpoint returns per page.
pub const COMMENT_PAGE_LIMIT: usize = 5;
/// Comments on every 40th issue (three pages of the comment endpoint).
pub const LONG_THREAD: usize = 11;
/// The declared size of the oversized attachment.
pub const HUGE_ATTACHMENT_BYTES: u64 = 5 * 1024 * 1024;
const FIRST_ID: u64 = 10_000;
const MAX_BULK: usize = 100;
const MAX_SEARCH_RESULTS: usize = 5000;

/// The account's time zone, as Jira writes it into timestamps.
fn zone() -> FixedOffset {
    FixedOffset::east_opt(2 * 3600).expect("+02:00")
}

fn base_time() -> DateTime<FixedOffset> {
    zone()
        .with_ymd_and_hms(2024, 5, 1, 8, 0, 0)
        .single()
        .expect("base time")
}

/// Jira's timestamp format: `2024-05-01T10:15:30.000+0200`.
pub fn jira_time(time: &DateTime<FixedOffset>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
}

#[derive(Clone, Debug)]
struct Comment {
    id: u64,
    author: &'static str,
    created: DateTime<FixedOffset>,
    text: String,
}

#[derive(Clone, Debug)]
struct Attachment {
    id: u64,
    filename: String,
    mime_type: String,
    /// Declared size (`size` field).
    size: u64,
    /// Served bytes (`None`: generated as `size` bytes on demand).
    content: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
struct Issue {
    id: u64,
    key: String,
    summary: String,
    status: &'static str,
    issue_type: &'static str,
    labels: Vec<String>,
    created: DateTime<FixedOffset>,
    updated: DateTime<FixedOffset>,
    assignee: Option<&'static str>,
    reporter: &'static str,
    description: Value,
    comments: Vec<Comment>,
    attachments: Vec<Attachment>,
}

/// What a test can see of an issue.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueInfo {
    pub id: String,
    pub key: String,
    pub summary: String,
    pub status: String,
    pub labels: Vec<String>,
    pub comments: usize,
    /// As Jira writes it (`…+0200`).
    pub updated: String,
}

/// A request as it reached the fake.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Decoded query parameters.
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub body: String,
}

impl Recorded {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

struct Inner {
    issues: BTreeMap<u64, Issue>,
    malformed: HashSet<u64>,
    issue_errors: HashSet<u64>,
    /// The newest `updated` handed out; edits move past it.
    clock: DateTime<FixedOffset>,
    burst_429: u32,
    retry_after_secs: u64,
    fail_next: u32,
    fail_status: u16,
    token_epoch: u64,
    requests: Vec<Recorded>,
    /// Listing searches (`ORDER BY id`) served before every further one fails with 500.
    listing_pages_before_failure: Option<u32>,
    /// Searches that never answer (the client's timeout must fire).
    stall_next: u32,
    /// Every search answers after this long (a slow site, to interrupt a sync mid-way).
    page_delay: std::time::Duration,
    /// Where attachment downloads redirect instead of the media service (SSRF tests).
    attachment_redirect: Option<String>,
    /// Serialised issues by (id, requested fields): building them is what a big pull
    /// spends its time on in an unoptimised test build. Dropped when an issue changes.
    rendered: HashMap<(u64, String), String>,
    /// Which bearer tokens are valid (none unless a test says).
    bearer_check: Option<BearerCheck>,
}

type BearerCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    base_url: Arc<Mutex<String>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn base_url(&self) -> String {
        self.base_url
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records the request and plays the scripted failures, then checks the credentials.
    fn gate(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &str,
    ) -> Option<Response> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let mut inner = self.lock();
        inner.requests.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: parse_query(uri.query().unwrap_or_default()),
            authorization: authorization.clone(),
            body: body.to_owned(),
        });
        if inner.burst_429 > 0 {
            inner.burst_429 -= 1;
            let retry_after = inner.retry_after_secs.to_string();
            return Some(
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, retry_after)],
                    Json(errors(&["Rate limit exceeded."])),
                )
                    .into_response(),
            );
        }
        if inner.fail_next > 0 {
            inner.fail_next -= 1;
            let status =
                StatusCode::from_u16(inner.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return Some((status, Json(errors(&["Service unavailable."]))).into_response());
        }
        let bearer_check = inner.bearer_check.clone();
        drop(inner);
        let bearer = authorization
            .as_deref()
            .and_then(|value| value.strip_prefix("Bearer "));
        if let (Some(token), Some(check)) = (bearer, bearer_check) {
            if check(token) {
                return None;
            }
        }
        let expected = format!("Basic {}", STANDARD.encode(format!("{EMAIL}:{API_TOKEN}")));
        if authorization.as_deref() != Some(expected.as_str()) {
            return Some(
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Basic realm=\"protected-area\"")],
                    Json(errors(&[
                        "You are not authenticated. Authentication required to perform this operation.",
                    ])),
                )
                    .into_response(),
            );
        }
        None
    }
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://query.invalid/?{query}"))
        .map(|url| {
            url.query_pairs()
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn errors(messages: &[&str]) -> Value {
    json!({"errorMessages": messages, "errors": {}})
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(errors(&[message]))).into_response()
}

/// A fake Jira Cloud site; the server stops when this is dropped.
pub struct FakeJira {
    shared: Shared,
    base_url: String,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for FakeJira {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl FakeJira {
    /// A site with `issue_count` generated issues.
    pub async fn start(issue_count: usize) -> Self {
        let issues: BTreeMap<u64, Issue> = (0..issue_count)
            .map(|index| {
                let issue = generate(index);
                (issue.id, issue)
            })
            .collect();
        let clock = issues
            .values()
            .map(|issue| issue.updated)
            .max()
            .unwrap_or_else(base_time);
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                issues,
                malformed: HashSet::new(),
                issue_errors: HashSet::new(),
                clock,
                burst_429: 0,
                retry_after_secs: 0,
                fail_next: 0,
                fail_status: 503,
                token_epoch: 0,
                requests: Vec::new(),
                listing_pages_before_failure: None,
                stall_next: 0,
                page_delay: std::time::Duration::ZERO,
                attachment_redirect: None,
                rendered: HashMap::new(),
                bearer_check: None,
            })),
            base_url: Arc::default(),
        };
        let router = Router::new()
            .route("/rest/api/3/myself", get(myself))
            .route("/rest/api/3/search/jql", get(search))
            .route("/rest/api/3/issue/bulkfetch", post(bulk_fetch))
            .route("/rest/api/3/issue/{id}/comment", get(comments))
            .route(
                "/rest/api/3/attachment/content/{id}",
                get(attachment_content),
            )
            .route("/media/file/{id}", get(media))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let base_url = format!("http://{address}");
        *shared.base_url.lock().expect("base url") = base_url.clone();
        // No Nagle delay between a request's writes and the answer's (loopback latency).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let handle = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("fake Jira");
        });
        Self {
            shared,
            base_url,
            handle,
        }
    }

    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The credentials the fake accepts.
    pub fn credentials(&self) -> Credentials {
        Credentials::Basic {
            email: EMAIL.into(),
            api_token: API_TOKEN.into(),
        }
    }

    /// From now on `Authorization: Bearer <token>` is accepted when `check(token)` says so
    /// (the recorded requests show which token was sent).
    pub fn accept_bearer(&self, check: impl Fn(&str) -> bool + Send + Sync + 'static) {
        self.shared.lock().bearer_check = Some(Arc::new(check));
    }

    /// The next `n` API requests get 429 with `Retry-After` (0 s unless
    /// [`FakeJira::set_retry_after`] says otherwise).
    pub fn set_burst_429(&self, n: u32) {
        self.shared.lock().burst_429 = n;
    }

    pub fn set_retry_after(&self, seconds: u64) {
        self.shared.lock().retry_after_secs = seconds;
    }

    /// The next `n` API requests fail with `status` (a 5xx).
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut inner = self.shared.lock();
        inner.fail_next = n;
        inner.fail_status = status;
    }

    /// The issue's fields come back as garbage from `issue/bulkfetch`.
    pub fn malformed(&self, issue_id: u64) {
        self.shared.lock().malformed.insert(issue_id);
    }

    /// `issue/bulkfetch` lists the issue in `issueErrors` instead of returning it.
    pub fn issue_error(&self, issue_id: u64) {
        self.shared.lock().issue_errors.insert(issue_id);
    }

    pub fn delete_issue(&self, issue_id: u64) {
        let mut inner = self.shared.lock();
        inner.issues.remove(&issue_id);
        inner.rendered.retain(|(id, _), _| *id != issue_id);
    }

    /// Changes the summary and moves `updated` past every timestamp handed out so far;
    /// returns the new `updated` as Jira writes it.
    pub fn update_issue(&self, issue_id: u64, summary: &str) -> String {
        let mut inner = self.shared.lock();
        let updated = inner.clock + Duration::seconds(61);
        inner.clock = updated;
        let issue = inner.issues.get_mut(&issue_id).expect("no such issue");
        issue.summary = summary.to_owned();
        issue.updated = updated;
        inner.rendered.retain(|(id, _), _| *id != issue_id);
        jira_time(&updated)
    }

    /// Attachment downloads answer `303 Location: <location>` (a hostile source).
    pub fn redirect_attachments_to(&self, location: &str) {
        self.shared.lock().attachment_redirect = Some(location.to_owned());
    }

    /// Every search request answers after `delay`.
    pub fn set_page_delay(&self, delay: std::time::Duration) {
        self.shared.lock().page_delay = delay;
    }

    /// The next `n` searches never answer.
    pub fn stall_next(&self, n: u32) {
        self.shared.lock().stall_next = n;
    }

    /// Listing searches (ordered by id, as `list_ids` sends them) succeed `pages` more times,
    /// then fail with 500 for good: a listing that breaks midway.
    pub fn break_listing_after(&self, pages: u32) {
        self.shared.lock().listing_pages_before_failure = Some(pages);
    }

    /// Every page token handed out so far stops working (400), as when they expire.
    pub fn expire_page_tokens(&self) {
        self.shared.lock().token_epoch += 1;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// The current issues, in id order.
    pub fn issues(&self) -> Vec<IssueInfo> {
        self.shared
            .lock()
            .issues
            .values()
            .map(|issue| IssueInfo {
                id: issue.id.to_string(),
                key: issue.key.clone(),
                summary: issue.summary.clone(),
                status: issue.status.to_owned(),
                labels: issue.labels.clone(),
                comments: issue.comments.len(),
                updated: jira_time(&issue.updated),
            })
            .collect()
    }
}

// --- generated data -----------------------------------------------------------------------

const TOPICS: [&str; 6] = [
    "Login fails on Safari",
    "Export to CSV is slow",
    "Dark mode colours",
    "Retry webhook deliveries",
    "Upgrade the database driver",
    "Document the API limits",
];
const PEOPLE: [&str; 3] = ["Ada Lovelace", "Grace Hopper", "Alan Turing"];

fn generate(index: usize) -> Issue {
    let number = index as u64 + 1;
    let id = FIRST_ID + index as u64;
    let key = format!("{PROJECT}-{number}");
    let updated = base_time() + Duration::seconds(30 * (index as i64 / 2));
    let created = base_time() - Duration::days(30) + Duration::minutes(index as i64);
    let mut labels = Vec::new();
    if index.is_multiple_of(4) {
        labels.push("backend".to_owned());
    }
    if index % 5 == 1 {
        labels.push("frontend".to_owned());
    }
    if index % 10 == 3 {
        labels.push("secret".to_owned());
    }
    let comment_count = if index.is_multiple_of(40) {
        LONG_THREAD
    } else if index.is_multiple_of(3) {
        2
    } else {
        0
    };
    let comments = (0..comment_count)
        .map(|n| Comment {
            id: 100_000 + id * 100 + n as u64,
            author: PEOPLE[(index + n) % PEOPLE.len()],
            created: created + Duration::hours(n as i64 + 1),
            text: format!("Comment {} on {key}", n + 1),
        })
        .collect();
    let attachments = if index.is_multiple_of(50) {
        let base = 900_000 + id * 10;
        vec![
            Attachment {
                id: base + 1,
                filename: "notes.txt".into(),
                mime_type: "text/plain".into(),
                size: 0,
                content: Some(
                    format!("Notes for {key}\n```\nnot a fence break\n```\n").into_bytes(),
                ),
            },
            Attachment {
                id: base + 2,
                filename: "data.json".into(),
                mime_type: "application/json".into(),
                size: 0,
                content: Some(format!("{{\"key\": \"{key}\", \"ok\": true}}").into_bytes()),
            },
            Attachment {
                id: base + 3,
                filename: "diagram.png".into(),
                mime_type: "image/png".into(),
                size: 0,
                content: Some(vec![0x89, b'P', b'N', b'G', 0, 1, 2]),
            },
            Attachment {
                id: base + 4,
                filename: "huge.log".into(),
                mime_type: "text/plain".into(),
                size: HUGE_ATTACHMENT_BYTES,
                content: None,
            },
        ]
        .into_iter()
        .map(|mut attachment| {
            if let Some(content) = &attachment.content {
                attachment.size = content.len() as u64;
            }
            attachment
        })
        .collect()
    } else {
        Vec::new()
    };
    Issue {
        id,
        key: key.clone(),
        summary: format!("{} #{number}", TOPICS[index % TOPICS.len()]),
        status: ["To Do", "In Progress", "Done"][index % 3],
        issue_type: ["Task", "Bug", "Story"][index % 3],
        labels,
        created,
        updated,
        assignee: index
            .is_multiple_of(2)
            .then_some(PEOPLE[index % PEOPLE.len()]),
        reporter: PEOPLE[(index + 1) % PEOPLE.len()],
        description: if index % 9 == 8 {
            Value::Null
        } else {
            description(index, &key)
        },
        comments,
        attachments,
    }
}

fn text(value: &str) -> Value {
    json!({"type": "text", "text": value})
}

fn paragraph(content: Value) -> Value {
    json!({"type": "paragraph", "content": content})
}

fn description(index: usize, key: &str) -> Value {
    let mut content = vec![
        paragraph(json!([
            text("Steps for "),
            {"type": "text", "text": key, "marks": [{"type": "strong"}]},
            text(", see "),
            {"type": "text", "text": "the runbook", "marks": [{"type": "link", "attrs": {"href": "https://wiki.example.com/runbook"}}]},
            text("."),
        ])),
        json!({"type": "bulletList", "content": [
            {"type": "listItem", "content": [
                paragraph(json!([text("Open the app")])),
                {"type": "orderedList", "attrs": {"order": 1}, "content": [
                    {"type": "listItem", "content": [paragraph(json!([text("Sign in")]))]},
                    {"type": "listItem", "content": [paragraph(json!([text("Click export")]))]},
                ]},
            ]},
            {"type": "listItem", "content": [paragraph(json!([text("Wait")]))]},
        ]}),
        json!({"type": "codeBlock", "attrs": {"language": "rust"}, "content": [
            text(&format!("fn issue_{index}() -> u32 {{ {index} }}")),
        ]}),
    ];
    if index.is_multiple_of(5) {
        content.push(json!({"type": "table", "attrs": {}, "content": [
            {"type": "tableRow", "content": [
                {"type": "tableHeader", "attrs": {}, "content": [paragraph(json!([text("Browser")]))]},
                {"type": "tableHeader", "attrs": {}, "content": [paragraph(json!([text("Result")]))]},
            ]},
            {"type": "tableRow", "content": [
                {"type": "tableCell", "attrs": {}, "content": [paragraph(json!([text("Safari")]))]},
                {"type": "tableCell", "attrs": {}, "content": [paragraph(json!([text("fails")]))]},
            ]},
        ]}));
    }
    json!({"version": 1, "type": "doc", "content": content})
}

// --- JSON shapes --------------------------------------------------------------------------

fn user(name: &str) -> Value {
    let account = format!("5b10ac8d82e05b22cc{:06x}", name.len() * 7919);
    json!({
        "accountId": account,
        "accountType": "atlassian",
        "displayName": name,
        "active": true,
        "timeZone": "Europe/Berlin",
    })
}

fn comment_json(base: &str, issue: &Issue, comment: &Comment) -> Value {
    json!({
        "self": format!("{base}/rest/api/3/issue/{}/comment/{}", issue.id, comment.id),
        "id": comment.id.to_string(),
        "author": user(comment.author),
        "updateAuthor": user(comment.author),
        "body": {"version": 1, "type": "doc", "content": [paragraph(json!([text(&comment.text)]))]},
        "created": jira_time(&comment.created),
        "updated": jira_time(&comment.created),
        "jsdPublic": true,
    })
}

fn field_json(base: &str, issue: &Issue, field: &str) -> Option<Value> {
    Some(match field {
        "summary" => json!(issue.summary),
        "description" => issue.description.clone(),
        "labels" => json!(issue.labels),
        "updated" => json!(jira_time(&issue.updated)),
        "created" => json!(jira_time(&issue.created)),
        "project" => json!({
            "self": format!("{base}/rest/api/3/project/10000"),
            "id": "10000",
            "key": PROJECT,
            "name": "Project",
            "projectTypeKey": "software",
        }),
        "status" => {
            json!({"name": issue.status, "id": "3", "statusCategory": {"key": "indeterminate"}})
        }
        "issuetype" => json!({"id": "10001", "name": issue.issue_type, "subtask": false}),
        "assignee" => issue.assignee.map(user).unwrap_or(Value::Null),
        "reporter" => user(issue.reporter),
        "comment" => json!({
            "self": format!("{base}/rest/api/3/issue/{}/comment", issue.id),
            "comments": issue.comments.iter().take(EMBEDDED_COMMENTS)
                .map(|comment| comment_json(base, issue, comment)).collect::<Vec<_>>(),
            "maxResults": EMBEDDED_COMMENTS,
            "total": issue.comments.len(),
            "startAt": 0,
        }),
        "attachment" => json!(issue
            .attachments
            .iter()
            .map(|attachment| json!({
                "self": format!("{base}/rest/api/3/attachment/{}", attachment.id),
                "id": attachment.id.to_string(),
                "filename": attachment.filename,
                "author": user(issue.reporter),
                "created": jira_time(&issue.created),
                "size": attachment.size,
                "mimeType": attachment.mime_type,
                "content": format!("{base}/rest/api/3/attachment/content/{}", attachment.id),
            }))
            .collect::<Vec<_>>()),
        _ => return None,
    })
}

fn issue_json(base: &str, issue: &Issue, fields: &[String]) -> Value {
    let mut map = serde_json::Map::new();
    for field in fields {
        if let Some(value) = field_json(base, issue, field) {
            map.insert(field.clone(), value);
        }
    }
    json!({
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": issue.id.to_string(),
        "self": format!("{base}/rest/api/3/issue/{}", issue.id),
        "key": issue.key,
        "fields": map,
    })
}

fn garbage_json(base: &str, issue: &Issue) -> Value {
    json!({
        "id": issue.id.to_string(),
        "self": format!("{base}/rest/api/3/issue/{}", issue.id),
        "key": issue.key,
        "fields": {
            "summary": {"unexpected": ["structure"]},
            "updated": "last tuesday",
            "description": 12345,
            "labels": "not-a-list",
        },
    })
}

// --- handlers -----------------------------------------------------------------------------

async fn myself(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = shared.gate(&method, &uri, &headers, "") {
        return refused;
    }
    let base = shared.base_url();
    Json(json!({
        "self": format!("{base}/rest/api/3/user?accountId={ACCOUNT_ID}"),
        "accountId": ACCOUNT_ID,
        "accountType": "atlassian",
        "emailAddress": EMAIL,
        "displayName": "Sync Bot",
        "active": true,
        "timeZone": "Europe/Berlin",
        "locale": "en_US",
    }))
    .into_response()
}

fn page_token(epoch: u64, jql: &str, offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{epoch}:{offset}:{}", jql_digest(jql)))
}

fn jql_digest(jql: &str) -> String {
    hex(&Sha256::digest(jql.as_bytes())[..8])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The offset a token stands for, if it is current and was issued for this JQL.
fn read_page_token(token: &str, epoch: u64, jql: &str) -> Option<usize> {
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut parts = decoded.splitn(3, ':');
    let token_epoch: u64 = parts.next()?.parse().ok()?;
    let offset: usize = parts.next()?.parse().ok()?;
    let digest = parts.next()?;
    (token_epoch == epoch && digest == jql_digest(jql)).then_some(offset)
}

async fn search(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = shared.gate(&method, &uri, &headers, "") {
        return refused;
    }
    let (stall, delay) = {
        let mut inner = shared.lock();
        let stall = inner.stall_next > 0;
        inner.stall_next = inner.stall_next.saturating_sub(1);
        (stall, inner.page_delay)
    };
    if stall {
        std::future::pending::<()>().await;
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let params = parse_query(uri.query().unwrap_or_default());
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let Some(jql) = param("jql") else {
        return bad_request("The jql parameter is required.");
    };
    if jql.ends_with("ORDER BY id ASC") {
        let mut inner = shared.lock();
        if let Some(left) = inner.listing_pages_before_failure.as_mut() {
            if *left == 0 {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(errors(&["The listing broke."])),
                )
                    .into_response();
            }
            *left -= 1;
        }
    }
    let query = match parse_jql(&jql) {
        Ok(query) => query,
        Err(message) => return bad_request(&message),
    };
    if query.filter.is_none() {
        return bad_request(
            "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.",
        );
    }
    let max_results = match param("maxResults") {
        None => 50,
        Some(value) => match value.parse::<usize>() {
            Ok(value) => value.clamp(1, MAX_SEARCH_RESULTS),
            Err(_) => return bad_request("maxResults must be a number."),
        },
    };
    let fields: Vec<String> = param("fields")
        .unwrap_or_default()
        .split(',')
        .map(|field| field.trim().to_owned())
        .filter(|field| !field.is_empty() && field != "id")
        .collect();

    let inner = shared.lock();
    let offset = match param("nextPageToken") {
        None => 0,
        Some(token) => match read_page_token(&token, inner.token_epoch, &jql) {
            Some(offset) => offset,
            None => return bad_request("The provided next page token is invalid or expired."),
        },
    };
    let mut matches: Vec<&Issue> = Vec::new();
    for issue in inner.issues.values() {
        match query.filter.as_ref().map(|filter| filter.eval(issue)) {
            Some(Ok(true)) | None => matches.push(issue),
            Some(Ok(false)) => {}
            Some(Err(message)) => return bad_request(&message),
        }
    }
    matches.sort_by(|a, b| {
        for (field, ascending) in &query.order {
            let ordering = match field.as_str() {
                "updated" => a.updated.cmp(&b.updated),
                "created" => a.created.cmp(&b.created),
                _ => a.id.cmp(&b.id),
            };
            let ordering = if *ascending {
                ordering
            } else {
                ordering.reverse()
            };
            if ordering.is_ne() {
                return ordering;
            }
        }
        a.id.cmp(&b.id)
    });
    let base = shared.base_url();
    let end = (offset + max_results).min(matches.len());
    let page: Vec<Value> = matches
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(|issue| {
            let mut value = issue_json(&base, issue, &fields);
            if fields.is_empty() {
                if let Some(object) = value.as_object_mut() {
                    object.remove("fields");
                }
            }
            value
        })
        .collect();
    let is_last = end >= matches.len();
    let mut body = json!({"issues": page, "isLast": is_last});
    if !is_last {
        body["nextPageToken"] = json!(page_token(inner.token_epoch, &jql, end));
    }
    Json(body).into_response()
}

async fn bulk_fetch(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    if let Some(refused) = shared.gate(&method, &uri, &headers, &text) {
        return refused;
    }
    let Ok(request) = serde_json::from_str::<Value>(&text) else {
        return bad_request("Unexpected character in the request body.");
    };
    let Some(ids) = request.get("issueIdsOrKeys").and_then(Value::as_array) else {
        return bad_request("issueIdsOrKeys is required.");
    };
    if ids.is_empty() || ids.len() > MAX_BULK {
        return bad_request("issueIdsOrKeys must list between 1 and 100 issues.");
    }
    let fields: Vec<String> = match request.get("fields") {
        None => [
            "summary",
            "description",
            "labels",
            "updated",
            "created",
            "status",
        ]
        .map(str::to_owned)
        .to_vec(),
        Some(Value::Array(fields)) => fields
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => return bad_request("fields must be a list."),
    };
    let mut inner = shared.lock();
    let base = shared.base_url();
    let mut wanted: Vec<u64> = Vec::new();
    for id in ids {
        let Some(id) = id.as_str() else {
            return bad_request("issueIdsOrKeys must be strings.");
        };
        let found = match id.parse::<u64>() {
            Ok(id) => inner.issues.get(&id),
            Err(_) => inner
                .issues
                .values()
                .find(|issue| issue.key.eq_ignore_ascii_case(id)),
        };
        if let Some(issue) = found {
            if !wanted.contains(&issue.id) {
                wanted.push(issue.id);
            }
        }
    }
    wanted.sort_unstable();
    let fields_key = fields.join(",");
    let mut issues: Vec<String> = Vec::new();
    let mut issue_errors = Vec::new();
    for id in wanted {
        if inner.issue_errors.contains(&id) {
            issue_errors.push(json!({
                "id": id.to_string(),
                "errorMessage": "Something went wrong while retrieving the issue. Try again later.",
            }));
            continue;
        }
        let Some(issue) = inner.issues.get(&id) else {
            continue;
        };
        if inner.malformed.contains(&id) {
            issues.push(garbage_json(&base, issue).to_string());
            continue;
        }
        let cache_key = (id, fields_key.clone());
        let rendered = match inner.rendered.get(&cache_key) {
            Some(rendered) => rendered.clone(),
            None => {
                let rendered = issue_json(&base, issue, &fields).to_string();
                inner.rendered.insert(cache_key, rendered.clone());
                rendered
            }
        };
        issues.push(rendered);
    }
    let body = format!(
        "{{\"issues\":[{}],\"issueErrors\":{}}}",
        issues.join(","),
        Value::Array(issue_errors)
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn comments(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = shared.gate(&method, &uri, &headers, "") {
        return refused;
    }
    let params = parse_query(uri.query().unwrap_or_default());
    let number = |name: &str, default: usize| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let start_at = number("startAt", 0);
    let max_results = number("maxResults", 50).clamp(1, COMMENT_PAGE_LIMIT);
    let inner = shared.lock();
    let issue = match id.parse::<u64>() {
        Ok(id) => inner.issues.get(&id),
        Err(_) => inner.issues.values().find(|issue| issue.key == id),
    };
    let Some(issue) = issue else {
        return (
            StatusCode::NOT_FOUND,
            Json(errors(&[
                "Issue does not exist or you do not have permission to see it.",
            ])),
        )
            .into_response();
    };
    let base = shared.base_url();
    let page: Vec<Value> = issue
        .comments
        .iter()
        .skip(start_at)
        .take(max_results)
        .map(|comment| comment_json(&base, issue, comment))
        .collect();
    Json(json!({
        "startAt": start_at,
        "maxResults": max_results,
        "total": issue.comments.len(),
        "comments": page,
    }))
    .into_response()
}

fn find_attachment(inner: &Inner, id: u64) -> Option<Attachment> {
    inner
        .issues
        .values()
        .flat_map(|issue| issue.attachments.iter())
        .find(|attachment| attachment.id == id)
        .cloned()
}

async fn attachment_content(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = shared.gate(&method, &uri, &headers, "") {
        return refused;
    }
    let exists = id
        .parse::<u64>()
        .ok()
        .and_then(|id| find_attachment(&shared.lock(), id))
        .is_some();
    if !exists {
        return (
            StatusCode::NOT_FOUND,
            Json(errors(&["The attachment does not exist."])),
        )
            .into_response();
    }
    let redirect = shared.lock().attachment_redirect.clone();
    let location =
        redirect.unwrap_or_else(|| format!("/media/file/{id}?token=media-{id}&client=fake"));
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(&location).expect("location"),
        )],
    )
        .into_response()
}

/// The media service: no Jira credentials, a token in the URL instead.
async fn media(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let mut inner = shared.lock();
    inner.requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: parse_query(uri.query().unwrap_or_default()),
        authorization,
        body: String::new(),
    });
    let token_ok = parse_query(uri.query().unwrap_or_default())
        .iter()
        .any(|(key, value)| key == "token" && *value == format!("media-{id}"));
    let attachment = id
        .parse::<u64>()
        .ok()
        .and_then(|id| find_attachment(&inner, id));
    drop(inner);
    let (true, Some(attachment)) = (token_ok, attachment) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let bytes = attachment
        .content
        .unwrap_or_else(|| vec![b'x'; attachment.size as usize]);
    (
        [(header::CONTENT_TYPE, attachment.mime_type)],
        Bytes::from(bytes),
    )
        .into_response()
}

// --- a small JQL --------------------------------------------------------------------------

struct Query {
    filter: Option<Expr>,
    /// (field, ascending)
    order: Vec<(String, bool)>,
}

#[derive(Debug)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Clause {
        field: String,
        op: Op,
        values: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
    Ge,
    Gt,
    Le,
    Lt,
    Contains,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Sym(&'static str),
}

fn tokenize(jql: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = jql.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let mut value = String::new();
            i += 1;
            loop {
                let Some(&next) = chars.get(i) else {
                    return Err("Error in the JQL Query: unterminated string.".into());
                };
                i += 1;
                if next == c {
                    break;
                }
                if next == '\\' {
                    let escaped = chars
                        .get(i)
                        .ok_or("Error in the JQL Query: dangling escape.")?;
                    i += 1;
                    value.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => *other,
                    });
                } else {
                    value.push(next);
                }
            }
            tokens.push(Token::Str(value));
        } else if let Some(symbol) = ["!=", ">=", "<=", "(", ")", ",", "=", ">", "<", "~"]
            .into_iter()
            .find(|symbol| chars[i..].starts_with(&symbol.chars().collect::<Vec<_>>()))
        {
            tokens.push(Token::Sym(symbol));
            i += symbol.len();
        } else if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':') {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.' | '/' | ':'))
            {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            return Err(format!(
                "Error in the JQL Query: the character '{c}' is a reserved JQL character."
            ));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let found = self.keyword(word);
        if found {
            self.at += 1;
        }
        found
    }

    fn eat_sym(&mut self, symbol: &str) -> bool {
        let found = matches!(self.peek(), Some(Token::Sym(s)) if *s == symbol);
        if found {
            self.at += 1;
        }
        found
    }

    fn error<T>(&self, expected: &str) -> Result<T, String> {
        Err(format!(
            "Error in the JQL Query: Expecting {expected} but got {:?}.",
            self.peek()
        ))
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat_keyword("OR") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.eat_keyword("AND") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat_keyword("NOT") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat_sym("(") {
            let inner = self.or()?;
            if !self.eat_sym(")") {
                return self.error("')'");
            }
            return Ok(inner);
        }
        self.clause()
    }

    fn value(&mut self) -> Result<String, String> {
        match self.peek().cloned() {
            Some(Token::Word(word)) | Some(Token::Str(word)) => {
                self.at += 1;
                Ok(word)
            }
            _ => self.error("a value"),
        }
    }

    fn clause(&mut self) -> Result<Expr, String> {
        let field = match self.peek().cloned() {
            Some(Token::Word(word)) => word.to_ascii_lowercase(),
            Some(Token::Str(word)) => word.to_ascii_lowercase(),
            _ => return self.error("a field name"),
        };
        self.at += 1;
        let field = match field.as_str() {
            "type" => "issuetype".to_owned(),
            "issuekey" => "key".to_owned(),
            other => other.to_owned(),
        };
        if !matches!(
            field.as_str(),
            "project"
                | "labels"
                | "status"
                | "issuetype"
                | "key"
                | "id"
                | "updated"
                | "created"
                | "summary"
        ) {
            return Err(format!(
                "Field '{field}' does not exist or you do not have permission to view it."
            ));
        }
        let (op, values) = if self.eat_keyword("IS") {
            let not = self.eat_keyword("NOT");
            if !(self.eat_keyword("EMPTY") || self.eat_keyword("NULL")) {
                return self.error("EMPTY");
            }
            (if not { Op::IsNotEmpty } else { Op::IsEmpty }, vec![])
        } else if self.eat_keyword("NOT") {
            if !self.eat_keyword("IN") {
                return self.error("IN");
            }
            (Op::NotIn, self.list()?)
        } else if self.eat_keyword("IN") {
            (Op::In, self.list()?)
        } else {
            let op = match self.peek() {
                Some(Token::Sym("=")) => Op::Eq,
                Some(Token::Sym("!=")) => Op::Ne,
                Some(Token::Sym(">=")) => Op::Ge,
                Some(Token::Sym(">")) => Op::Gt,
                Some(Token::Sym("<=")) => Op::Le,
                Some(Token::Sym("<")) => Op::Lt,
                Some(Token::Sym("~")) => Op::Contains,
                _ => return self.error("an operator"),
            };
            self.at += 1;
            (op, vec![self.value()?])
        };
        Ok(Expr::Clause { field, op, values })
    }

    fn list(&mut self) -> Result<Vec<String>, String> {
        if !self.eat_sym("(") {
            return self.error("'('");
        }
        let mut values = vec![self.value()?];
        while self.eat_sym(",") {
            values.push(self.value()?);
        }
        if !self.eat_sym(")") {
            return self.error("')'");
        }
        Ok(values)
    }
}

fn parse_jql(jql: &str) -> Result<Query, String> {
    let mut parser = Parser {
        tokens: tokenize(jql)?,
        at: 0,
    };
    let filter = if parser.peek().is_none() || parser.keyword("ORDER") {
        None
    } else {
        Some(parser.or()?)
    };
    let mut order = Vec::new();
    if parser.eat_keyword("ORDER") {
        if !parser.eat_keyword("BY") {
            return parser.error("BY");
        }
        loop {
            let field = match parser.peek().cloned() {
                Some(Token::Word(word)) => word.to_ascii_lowercase(),
                _ => return parser.error("a field to order by"),
            };
            parser.at += 1;
            if !matches!(
                field.as_str(),
                "updated" | "created" | "id" | "key" | "issuekey"
            ) {
                return Err(format!("Not able to sort using field '{field}'."));
            }
            let ascending = if parser.eat_keyword("DESC") {
                false
            } else {
                parser.eat_keyword("ASC");
                true
            };
            order.push((field, ascending));
            if !parser.eat_sym(",") {
                break;
            }
        }
    }
    if parser.peek().is_some() {
        return parser.error("the end of the query");
    }
    Ok(Query { filter, order })
}

/// A JQL date literal, in the account's zone.
fn jql_instant(value: &str) -> Result<DateTime<FixedOffset>, String> {
    let naive = NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y/%m/%d %H:%M"))
        .or_else(|_| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .or_else(|_| NaiveDate::parse_from_str(value, "%Y/%m/%d"))
                .map(|date| date.and_hms_opt(0, 0, 0).unwrap_or_default())
        })
        .map_err(|_| {
            format!(
                "Date value '{value}' for field 'updated' is invalid. Valid formats include: \
                 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd'."
            )
        })?;
    zone()
        .from_local_datetime(&naive)
        .single()
        .ok_or_else(|| format!("Date value '{value}' does not exist."))
}

impl Expr {
    fn eval(&self, issue: &Issue) -> Result<bool, String> {
        match self {
            Expr::And(a, b) => Ok(a.eval(issue)? && b.eval(issue)?),
            Expr::Or(a, b) => Ok(a.eval(issue)? || b.eval(issue)?),
            Expr::Not(inner) => Ok(!inner.eval(issue)?),
            Expr::Clause { field, op, values } => {
                let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
                // The field's values on this issue (labels can have many).
                let current: Vec<String> = match field.as_str() {
                    "project" => vec![PROJECT.to_owned(), "Project".to_owned()],
                    "labels" => issue.labels.clone(),
                    "status" => vec![issue.status.to_owned()],
                    "issuetype" => vec![issue.issue_type.to_owned()],
                    "key" => vec![issue.key.clone()],
                    "id" => vec![issue.id.to_string()],
                    "summary" => vec![issue.summary.clone()],
                    _ => vec![],
                };
                if matches!(field.as_str(), "updated" | "created") {
                    let time = if field == "updated" {
                        issue.updated
                    } else {
                        issue.created
                    };
                    let Some(value) = values.first() else {
                        return Ok(matches!(op, Op::IsNotEmpty));
                    };
                    let bound = jql_instant(value)?;
                    return match op {
                        Op::Ge => Ok(time >= bound),
                        Op::Gt => Ok(time > bound),
                        Op::Le => Ok(time <= bound),
                        Op::Lt => Ok(time < bound),
                        Op::Eq => Ok(time == bound),
                        Op::Ne => Ok(time != bound),
                        _ => Err(format!("The operator is not supported by field '{field}'.")),
                    };
                }
                let any_of = |wanted: &[String]| {
                    current
                        .iter()
                        .any(|have| wanted.iter().any(|want| same(have, want)))
                };
                Ok(match op {
                    Op::Eq => any_of(values),
                    Op::In => any_of(values),
                    // Like Jira, negative operators do not match issues without a value.
                    Op::Ne | Op::NotIn => !current.is_empty() && !any_of(values),
                    Op::IsEmpty => current.is_empty(),
                    Op::IsNotEmpty => !current.is_empty(),
                    Op::Contains => {
                        let needle = values.first().map(|v| v.to_lowercase()).unwrap_or_default();
                        current
                            .iter()
                            .any(|have| have.to_lowercase().contains(&needle))
                    }
                    Op::Ge | Op::Gt | Op::Le | Op::Lt => {
                        return Err(format!("The operator is not supported by field '{field}'."))
                    }
                })
            }
        }
    }
}
