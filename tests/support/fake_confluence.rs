//! A fake Confluence Cloud on loopback, answering the REST API v1 the way Atlassian documents
//! it, for the Confluence connector's tests.
//!
//! What it reproduces:
//! - everything lives under `/wiki`; every call needs HTTP Basic (account email + API token),
//!   else 401 with a JSON error body (`statusCode`, `message`);
//! - `GET /wiki/rest/api/content/search?cql=…&limit=…&start=…&expand=…` runs the CQL subset
//!   the connector sends, for real: `type`, `space`, `label`, `id`/`content` with `=`, `!=`,
//!   `in`, `not in`; `lastmodified`/`created` with `>=`, `>`, `<=`, `<` and the documented
//!   date formats (`"yyyy-MM-dd HH:mm"`, `"yyyy/MM/dd HH:mm"`, `"yyyy-MM-dd"`,
//!   `"yyyy/MM/dd"`) read in the account's time zone (UTC+02:00); clauses joined by `and`;
//!   `order by <field> [asc|desc]`. Anything else is a 400 "Could not parse cql";
//! - fields are only present when expanded (`body.storage`, `version`, `space`, `ancestors`,
//!   `metadata.labels`); `version.when` is written with the account's offset (+02:00);
//! - pages of results carry `_links.base` (`<site>/wiki`), `_links.context` (`/wiki`) and,
//!   while more results remain, `_links.next`, relative to the base
//!   (`/rest/api/content/search?…&start=…`); `limit` is capped (50 with a body, else 250);
//! - `GET /wiki/rest/api/space?limit=…`, `GET /wiki/rest/api/space/{key}` (404 when unknown);
//! - `GET /wiki/rest/api/content/{id}/child/attachment` (`extensions.mediaType`,
//!   `extensions.fileSize`, `_links.download` relative to the base); a download answers a
//!   302 to a tokenised media URL, as Cloud does.
//!
//! Knobs: [`FakeConfluence::set_burst_429`], [`FakeConfluence::fail_next`],
//! [`FakeConfluence::malformed`], [`FakeConfluence::delete_page`],
//! [`FakeConfluence::update_page`]; every request is recorded ([`FakeConfluence::requests`]).
//! Dropping the fake stops it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone};
use reqwest::Url;
use serde_json::{json, Value};
use tributary::connectors::Credentials;

pub const EMAIL: &str = "sync-bot@example.com";
pub const API_TOKEN: &str = "ATATT3xFfGF0-fake-confluence-api-token-0123456789";
/// Space keys and names; content is spread unevenly over them.
pub const SPACES: [(&str, &str); 3] = [
    ("ENG", "Engineering"),
    ("OPS", "Operations"),
    ("HR", "People Team"),
];
/// The account's time zone.
pub const UTC_OFFSET_SECONDS: i32 = 2 * 3600;
/// The first content id; ids go up by 3.
pub const FIRST_ID: u64 = 98_304;
/// Size of the `big.log` attachment of every tenth item (+5).
pub const BIG_ATTACHMENT_BYTES: usize = 4_000;

const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT_WITH_BODY: usize = 50;
const MAX_LIMIT: usize = 250;
const AUTHORS: [&str; 4] = [
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Edsger Dijkstra",
];

#[derive(Clone, Debug)]
pub struct FakeAttachment {
    pub filename: String,
    pub media_type: String,
    pub content: Vec<u8>,
}

/// One page or blog post.
#[derive(Clone, Debug)]
pub struct FakeContent {
    pub id: String,
    /// `page` or `blogpost`.
    pub kind: &'static str,
    pub space_key: &'static str,
    pub space_name: &'static str,
    pub title: String,
    pub labels: Vec<String>,
    pub parent: Option<String>,
    pub created: DateTime<FixedOffset>,
    pub modified: DateTime<FixedOffset>,
    pub version: u64,
    pub author: &'static str,
    pub body: String,
    pub attachments: Vec<FakeAttachment>,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub status: u16,
}

impl RecordedRequest {
    /// A query parameter, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        query_map(self.query.as_deref()).remove(name)
    }
}

struct Inner {
    base_url: String,
    contents: BTreeMap<u64, FakeContent>,
    burst_429: u32,
    burst_started: bool,
    failures: u32,
    failure_status: u16,
    /// Requests that never answer (the client's timeout must fire).
    stalls: u32,
    requests: Vec<RecordedRequest>,
    /// Where attachment downloads redirect instead of the media URL (SSRF tests).
    attachment_redirect: Option<String>,
}

type Shared = Arc<Mutex<Inner>>;

/// The fake Confluence. Dropping it stops it.
pub struct FakeConfluence {
    base_url: String,
    shared: Shared,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for FakeConfluence {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl FakeConfluence {
    /// A site with `count` pieces of content (about one in six a blog post).
    pub async fn start(count: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let base_url = format!("http://{address}");
        let shared = Arc::new(Mutex::new(Inner {
            base_url: base_url.clone(),
            contents: generate(count),
            burst_429: 0,
            stalls: 0,
            burst_started: false,
            failures: 0,
            failure_status: 503,
            requests: Vec::new(),
            attachment_redirect: None,
        }));
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let handle = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("fake confluence");
        });
        Self {
            base_url,
            shared,
            handle,
        }
    }

    /// The site root (`http://127.0.0.1:<port>/`); the API is under `/wiki/rest/api`.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("{}/", self.base_url)).expect("base url")
    }

    pub fn credentials(&self) -> Credentials {
        Credentials::Basic {
            email: EMAIL.into(),
            api_token: API_TOKEN.into(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.shared)
    }

    /// Every piece of content, by id.
    pub fn contents(&self) -> Vec<FakeContent> {
        self.lock().contents.values().cloned().collect()
    }

    pub fn content(&self, id: &str) -> Option<FakeContent> {
        self.lock().contents.get(&numeric(id)?).cloned()
    }

    /// The ids of the content `keep` accepts.
    pub fn ids_where(&self, keep: impl Fn(&FakeContent) -> bool) -> BTreeSet<String> {
        self.lock()
            .contents
            .values()
            .filter(|content| keep(content))
            .map(|content| content.id.clone())
            .collect()
    }

    /// The next `n` requests get 429; the first says `Retry-After: 1`, the others `0`.
    /// Attachment downloads answer `302 Location: <location>` (a hostile site).
    pub fn redirect_attachments_to(&self, location: &str) {
        lock(&self.shared).attachment_redirect = Some(location.to_owned());
    }

    /// The next `n` requests never answer.
    pub fn stall_next(&self, n: u32) {
        lock(&self.shared).stalls = n;
    }

    pub fn set_burst_429(&self, n: u32) {
        let mut inner = self.lock();
        inner.burst_429 = n;
        inner.burst_started = false;
    }

    /// The next `n` requests get `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut inner = self.lock();
        inner.failures = n;
        inner.failure_status = status;
    }

    /// Gives the content a storage body that is not well-formed XML.
    pub fn malformed(&self, id: &str) {
        let mut inner = self.lock();
        let content = numeric(id)
            .and_then(|id| inner.contents.get_mut(&id))
            .expect("known content");
        content.body = format!(
            "<p>broken {} <ac:structured-macro ac:name=\"code\"><ac:plain-text-body>\
             <![CDATA[never closed",
            content.id
        );
    }

    pub fn delete_page(&self, id: &str) {
        let mut inner = self.lock();
        let id = numeric(id).expect("numeric id");
        inner.contents.remove(&id).expect("known content");
    }

    /// A new version, modified a minute after the newest content.
    pub fn update_page(&self, id: &str, body: &str) {
        let mut inner = self.lock();
        let newest = inner
            .contents
            .values()
            .map(|content| content.modified)
            .max()
            .expect("some content");
        let content = numeric(id)
            .and_then(|id| inner.contents.get_mut(&id))
            .expect("known content");
        content.body = body.to_owned();
        content.version += 1;
        content.modified = newest + Duration::minutes(1);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn numeric(id: &str) -> Option<u64> {
    id.parse().ok()
}

fn offset() -> FixedOffset {
    FixedOffset::east_opt(UTC_OFFSET_SECONDS).expect("offset")
}

// ---------------------------------------------------------------------------------------
// Content

fn generate(count: usize) -> BTreeMap<u64, FakeContent> {
    let start = offset()
        .with_ymd_and_hms(2024, 3, 1, 8, 0, 0)
        .single()
        .expect("start time");
    let mut pages_by_space: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    let mut contents = BTreeMap::new();
    for i in 0..count {
        let id = FIRST_ID + 3 * i as u64;
        let kind = if i % 6 == 5 { "blogpost" } else { "page" };
        let (space_key, space_name) = match i % 7 {
            0..=2 => SPACES[0],
            3 | 4 => SPACES[1],
            _ => SPACES[2],
        };
        let mut labels = Vec::new();
        if i % 9 == 4 {
            labels.push("draft".to_owned());
        }
        if i % 4 == 1 {
            labels.push("howto".to_owned());
        }
        if i % 11 == 0 {
            labels.push("runbook".to_owned());
        }
        let title = if kind == "page" {
            format!("{space_name} page {i:04}")
        } else {
            format!("{space_name} news {i:04}")
        };
        let parent = if kind == "page" {
            let siblings = pages_by_space.entry(space_key).or_default();
            let parent = (!siblings.is_empty()).then(|| siblings[(siblings.len() - 1) / 3].clone());
            siblings.push((id.to_string(), title.clone()));
            parent
        } else {
            None
        };
        let created = start + Duration::seconds(90 * i as i64);
        let modified = created
            + Duration::minutes(((i * 37) % 50) as i64)
            + Duration::seconds((i % 60) as i64);
        let mut attachments = Vec::new();
        if i % 10 == 0 {
            attachments.push(FakeAttachment {
                filename: "notes.txt".into(),
                media_type: "text/plain".into(),
                content: format!("Notes for item {i}: attachment-marker-{i}\n").into_bytes(),
            });
            attachments.push(FakeAttachment {
                filename: "diagram.png".into(),
                media_type: "image/png".into(),
                content: [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 2040]].concat(),
            });
        } else if i % 10 == 5 {
            attachments.push(FakeAttachment {
                filename: "big.log".into(),
                media_type: "text/plain".into(),
                content: vec![b'x'; BIG_ATTACHMENT_BYTES],
            });
        }
        let body = storage_body(
            i,
            space_key,
            parent.as_ref().map(|(_, title)| title.as_str()),
        );
        contents.insert(
            id,
            FakeContent {
                id: id.to_string(),
                kind,
                space_key,
                space_name,
                title,
                labels,
                parent: parent.map(|(id, _)| id),
                created,
                modified,
                version: 1 + (i % 5) as u64,
                author: AUTHORS[i % AUTHORS.len()],
                body,
                attachments,
            },
        );
    }
    contents
}

/// A storage-format body with the usual constructs, varied by `i`.
fn storage_body(i: usize, space_key: &str, parent_title: Option<&str>) -> String {
    let mut body = format!(
        "<h2>Overview</h2><p>Item {i} carries body-marker-{i} &amp; friends&nbsp;&mdash; \
         written in <strong>{space_key}</strong>.</p>"
    );
    if let Some(title) = parent_title {
        body.push_str(&format!(
            "<p>Part of <ac:link><ri:page ri:space-key=\"{space_key}\" \
             ri:content-title=\"{title}\" /><ac:plain-text-link-body><![CDATA[the parent page]]>\
             </ac:plain-text-link-body></ac:link>.</p>"
        ));
    }
    match i % 4 {
        0 => {
            let language = ["rust", "python", "bash"][(i / 4) % 3];
            body.push_str(&format!(
                "<ac:structured-macro ac:name=\"code\" ac:schema-version=\"1\" \
                 ac:macro-id=\"m-{i}\"><ac:parameter ac:name=\"language\">{language}\
                 </ac:parameter><ac:plain-text-body><![CDATA[let item_{i} = {i}; // 1 < 2 && 3 > 2]]>\
                 </ac:plain-text-body></ac:structured-macro>"
            ));
        }
        1 => {
            let panel = ["info", "note", "warning", "tip"][(i / 4) % 4];
            body.push_str(&format!(
                "<ac:structured-macro ac:name=\"{panel}\" ac:schema-version=\"1\">\
                 <ac:rich-text-body><p>Panel for item {i}.</p></ac:rich-text-body>\
                 </ac:structured-macro>"
            ));
        }
        2 => {
            body.push_str(&format!(
                "<table data-layout=\"default\"><colgroup><col style=\"width: 200.0px;\" />\
                 <col style=\"width: 200.0px;\" /></colgroup><tbody><tr><th><p><strong>Key\
                 </strong></p></th><th><p><strong>Value</strong></p></th></tr><tr><td><p>item\
                 </p></td><td><p>{i}</p></td></tr><tr><td><p>space</p></td><td><p>{space_key}\
                 </p></td></tr></tbody></table>"
            ));
        }
        _ => {
            body.push_str(&format!(
                "<ac:task-list><ac:task><ac:task-id>{i}</ac:task-id><ac:task-status>\
                 incomplete</ac:task-status><ac:task-body>follow up on {i}</ac:task-body>\
                 </ac:task></ac:task-list><ac:structured-macro ac:name=\"vendor-widget\">\
                 <ac:parameter ac:name=\"mode\">compact</ac:parameter><ac:rich-text-body>\
                 <p>Widget body {i}</p></ac:rich-text-body></ac:structured-macro>"
            ));
        }
    }
    if i.is_multiple_of(5) {
        body.push_str(&format!(
            "<p><ac:image ac:alt=\"diagram {i}\"><ri:attachment ri:filename=\"diagram.png\" />\
             </ac:image></p>"
        ));
    }
    if i.is_multiple_of(3) {
        body.push_str("<ac:structured-macro ac:name=\"toc\" ac:schema-version=\"1\" />");
    }
    body.push_str(&format!(
        "<ul><li>first point</li><li>second point <em>{i}</em></li></ul>"
    ));
    body
}

fn when(at: &DateTime<FixedOffset>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, false)
}

fn webui(content: &FakeContent) -> String {
    let title = content.title.replace(' ', "+");
    if content.kind == "page" {
        format!("/spaces/{}/pages/{}/{title}", content.space_key, content.id)
    } else {
        format!(
            "/spaces/{}/blog/{}/{}",
            content.space_key,
            content.created.format("%Y/%m/%d"),
            content.id
        )
    }
}

// ---------------------------------------------------------------------------------------
// HTTP

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let stall = {
        let mut inner = lock(&shared);
        let stall = inner.stalls > 0;
        inner.stalls = inner.stalls.saturating_sub(1);
        stall
    };
    if stall {
        std::future::pending::<()>().await;
    }
    let mut inner = lock(&shared);
    let response = inner.respond(&method, &uri, authorization.as_deref());
    inner.requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        authorization,
        status: response.status().as_u16(),
    });
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "statusCode": status.as_u16(), "message": message })),
    )
        .into_response()
}

fn query_map(query: Option<&str>) -> HashMap<String, String> {
    Url::parse(&format!(
        "http://fake.invalid/?{}",
        query.unwrap_or_default()
    ))
    .map(|url| url.query_pairs().into_owned().collect())
    .unwrap_or_default()
}

impl Inner {
    fn respond(&mut self, method: &Method, uri: &Uri, authorization: Option<&str>) -> Response {
        if self.burst_429 > 0 {
            self.burst_429 -= 1;
            let retry_after = if self.burst_started { "0" } else { "1" };
            self.burst_started = true;
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded.");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(retry_after));
            return response;
        }
        if self.failures > 0 {
            self.failures -= 1;
            let status = StatusCode::from_u16(self.failure_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return error(status, "Scripted failure.");
        }
        if method != Method::GET {
            return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
        }
        let path = uri.path();
        let query = query_map(uri.query());
        if let Some(rest) = path.strip_prefix("/media/") {
            return self.media(rest, &query);
        }
        let expected = format!("Basic {}", STANDARD.encode(format!("{EMAIL}:{API_TOKEN}")));
        if authorization != Some(expected.as_str()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "Client must be authenticated to access this resource.",
            );
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["wiki", "rest", "api", "content", "search"] => self.search(&query),
            ["wiki", "rest", "api", "space"] => self.spaces(&query),
            ["wiki", "rest", "api", "space", key] => self.space(key),
            ["wiki", "rest", "api", "content", id, "child", "attachment"] => {
                self.attachments(id, &query)
            }
            ["wiki", "download", "attachments", id, filename] => self.download(id, filename),
            _ => error(StatusCode::NOT_FOUND, &format!("null for uri: {uri}")),
        }
    }

    fn wiki_base(&self) -> String {
        format!("{}/wiki", self.base_url)
    }

    fn search(&self, query: &HashMap<String, String>) -> Response {
        let Some(cql) = query.get("cql") else {
            return error(
                StatusCode::BAD_REQUEST,
                "The CQL query parameter is required.",
            );
        };
        let parsed = match parse_cql(cql) {
            Ok(parsed) => parsed,
            Err(reason) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "com.atlassian.confluence.api.service.exceptions.BadRequestException: \
                         Could not parse cql : {cql} ({reason})"
                    ),
                )
            }
        };
        let expand: BTreeSet<&str> = query
            .get("expand")
            .map(|expand| {
                expand
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let cap = if expand.iter().any(|e| e.starts_with("body")) {
            MAX_LIMIT_WITH_BODY
        } else {
            MAX_LIMIT
        };
        let limit = query
            .get("limit")
            .and_then(|limit| limit.parse::<usize>().ok())
            .unwrap_or(DEFAULT_LIMIT)
            .min(cap);
        let start = query
            .get("start")
            .and_then(|start| start.parse::<usize>().ok())
            .unwrap_or(0);

        let mut matching: Vec<&FakeContent> = self
            .contents
            .values()
            .filter(|content| parsed.clauses.iter().all(|clause| clause.matches(content)))
            .collect();
        if let Some((field, descending)) = &parsed.order {
            matching.sort_by(|a, b| {
                let ordering = match field.as_str() {
                    "lastmodified" => a.modified.cmp(&b.modified),
                    "created" => a.created.cmp(&b.created),
                    "title" => a.title.cmp(&b.title),
                    _ => std::cmp::Ordering::Equal,
                }
                .then_with(|| numeric(&a.id).cmp(&numeric(&b.id)));
                if *descending {
                    ordering.reverse()
                } else {
                    ordering
                }
            });
        }
        let total = matching.len();
        let results: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(limit)
            .map(|content| self.render(content, &expand))
            .collect();
        let mut links = json!({
            "base": self.wiki_base(),
            "context": "/wiki",
            "self": format!("{}/rest/api/content/search", self.wiki_base()),
        });
        if start + limit < total {
            let mut next = Url::parse("http://fake.invalid/rest/api/content/search").expect("url");
            {
                let mut pairs = next.query_pairs_mut();
                let mut keys: Vec<&String> = query.keys().filter(|key| *key != "start").collect();
                keys.sort();
                for key in keys {
                    pairs.append_pair(key, &query[key]);
                }
                pairs.append_pair("start", &(start + limit).to_string());
            }
            links["next"] = json!(format!(
                "{}?{}",
                next.path(),
                next.query().unwrap_or_default()
            ));
        }
        Json(json!({
            "results": results,
            "start": start,
            "limit": limit,
            "size": results.len(),
            "_links": links,
        }))
        .into_response()
    }

    fn render(&self, content: &FakeContent, expand: &BTreeSet<&str>) -> Value {
        let mut value = json!({
            "id": content.id,
            "type": content.kind,
            "status": "current",
            "title": content.title,
            "_links": {
                "webui": webui(content),
                "tinyui": format!("/x/{}", content.id),
                "self": format!("{}/rest/api/content/{}", self.wiki_base(), content.id),
            },
        });
        let mut expandable = serde_json::Map::new();
        if expand.contains("space") {
            value["space"] = self.space_json(content.space_key, content.space_name);
        } else {
            expandable.insert(
                "space".into(),
                json!(format!("/rest/api/space/{}", content.space_key)),
            );
        }
        if expand.contains("version") {
            value["version"] = json!({
                "by": {
                    "type": "known",
                    "accountId": format!("5b10ac8d82e05b22cc7d4e{:02}", content.author.len()),
                    "accountType": "atlassian",
                    "displayName": content.author,
                    "publicName": content.author,
                },
                "when": when(&content.modified),
                "friendlyWhen": "a while ago",
                "number": content.version,
                "minorEdit": false,
            });
        } else {
            expandable.insert("version".into(), json!(""));
        }
        if expand.contains("ancestors") {
            let mut chain = Vec::new();
            let mut parent = content.parent.clone();
            while let Some(id) = parent {
                let Some(ancestor) = numeric(&id).and_then(|id| self.contents.get(&id)) else {
                    break;
                };
                chain.push(json!({
                    "id": ancestor.id,
                    "type": ancestor.kind,
                    "status": "current",
                    "title": ancestor.title,
                }));
                parent = ancestor.parent.clone();
            }
            chain.reverse();
            value["ancestors"] = Value::Array(chain);
        } else {
            expandable.insert("ancestors".into(), json!(""));
        }
        if expand.contains("body.storage") {
            value["body"] = json!({
                "storage": { "value": content.body, "representation": "storage" },
                "_expandable": { "view": "", "export_view": "", "styled_view": "" },
            });
        } else {
            expandable.insert("body".into(), json!(""));
        }
        if expand.contains("metadata.labels") {
            let labels: Vec<Value> = content
                .labels
                .iter()
                .enumerate()
                .map(|(n, label)| {
                    json!({ "prefix": "global", "name": label, "id": format!("{}{n}", content.id), "label": label })
                })
                .collect();
            value["metadata"] = json!({
                "labels": { "results": labels, "start": 0, "limit": 200, "size": content.labels.len() },
            });
        } else {
            expandable.insert("metadata".into(), json!(""));
        }
        value["_expandable"] = Value::Object(expandable);
        value
    }

    fn space_json(&self, key: &str, name: &str) -> Value {
        let id = SPACES.iter().position(|(k, _)| *k == key).unwrap_or(0) + 163_841;
        json!({
            "id": id,
            "key": key,
            "name": name,
            "type": "global",
            "status": "current",
            "_links": { "webui": format!("/spaces/{key}") },
        })
    }

    fn spaces(&self, query: &HashMap<String, String>) -> Response {
        let limit = query
            .get("limit")
            .and_then(|limit| limit.parse::<usize>().ok())
            .unwrap_or(DEFAULT_LIMIT);
        let results: Vec<Value> = SPACES
            .iter()
            .take(limit)
            .map(|(key, name)| self.space_json(key, name))
            .collect();
        let mut links = json!({ "base": self.wiki_base(), "context": "/wiki" });
        if limit < SPACES.len() {
            links["next"] = json!(format!("/rest/api/space?limit={limit}&start={limit}"));
        }
        Json(json!({
            "results": results,
            "start": 0,
            "limit": limit,
            "size": results.len(),
            "_links": links,
        }))
        .into_response()
    }

    fn space(&self, key: &str) -> Response {
        match SPACES.iter().find(|(k, _)| *k == key) {
            Some((key, name)) => Json(self.space_json(key, name)).into_response(),
            None => error(
                StatusCode::NOT_FOUND,
                &format!("No space found with key : {key}"),
            ),
        }
    }

    fn attachments(&self, id: &str, query: &HashMap<String, String>) -> Response {
        let Some(content) = numeric(id).and_then(|id| self.contents.get(&id)) else {
            return error(
                StatusCode::NOT_FOUND,
                &format!("No content found with id : {id}"),
            );
        };
        let limit = query
            .get("limit")
            .and_then(|limit| limit.parse::<usize>().ok())
            .unwrap_or(DEFAULT_LIMIT)
            .clamp(1, MAX_LIMIT);
        let start = query
            .get("start")
            .and_then(|start| start.parse::<usize>().ok())
            .unwrap_or(0);
        let results: Vec<Value> = content
            .attachments
            .iter()
            .enumerate()
            .skip(start)
            .take(limit)
            .map(|(n, attachment)| {
                let filename = encode_segment(&attachment.filename);
                json!({
                    "id": format!("att{}{n}", content.id),
                    "type": "attachment",
                    "status": "current",
                    "title": attachment.filename,
                    "metadata": { "mediaType": attachment.media_type, "comment": "" },
                    "extensions": {
                        "mediaType": attachment.media_type,
                        "fileSize": attachment.content.len(),
                        "comment": "",
                    },
                    "_links": {
                        "webui": format!("/pages/viewpageattachments.action?pageId={}", content.id),
                        "download": format!(
                            "/download/attachments/{}/{filename}?version=1&modificationDate=1709272800000&api=v2",
                            content.id
                        ),
                    },
                })
            })
            .collect();
        let mut links = json!({ "base": self.wiki_base(), "context": "/wiki" });
        if start + limit < content.attachments.len() {
            links["next"] = json!(format!(
                "/rest/api/content/{}/child/attachment?limit={limit}&start={}",
                content.id,
                start + limit
            ));
        }
        Json(json!({
            "results": results,
            "start": start,
            "limit": limit,
            "size": results.len(),
            "_links": links,
        }))
        .into_response()
    }

    /// As on Cloud: a redirect to a short-lived media URL.
    fn download(&self, id: &str, filename: &str) -> Response {
        let filename = decode_segment(filename);
        let known = numeric(id)
            .and_then(|id| self.contents.get(&id))
            .is_some_and(|content| content.attachments.iter().any(|a| a.filename == filename));
        if !known {
            return error(StatusCode::NOT_FOUND, "No attachment found.");
        }
        let location = self.attachment_redirect.clone().unwrap_or_else(|| {
            format!(
                "{}/media/{id}/{}?token=media-{id}",
                self.base_url,
                encode_segment(&filename)
            )
        });
        let mut response = StatusCode::FOUND.into_response();
        if let Ok(location) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }

    fn media(&self, rest: &str, query: &HashMap<String, String>) -> Response {
        let Some((id, filename)) = rest.split_once('/') else {
            return error(StatusCode::NOT_FOUND, "Not found.");
        };
        if query.get("token").map(String::as_str) != Some(format!("media-{id}").as_str()) {
            return error(StatusCode::FORBIDDEN, "Bad media token.");
        }
        let filename = decode_segment(filename);
        let attachment = numeric(id)
            .and_then(|id| self.contents.get(&id))
            .and_then(|content| content.attachments.iter().find(|a| a.filename == filename));
        match attachment {
            Some(attachment) => (
                [(header::CONTENT_TYPE, attachment.media_type.clone())],
                attachment.content.clone(),
            )
                .into_response(),
            None => error(StatusCode::NOT_FOUND, "Not found."),
        }
    }
}

fn encode_segment(segment: &str) -> String {
    let mut url = Url::parse("http://fake.invalid/").expect("url");
    url.path_segments_mut().expect("segments").push(segment);
    url.path().trim_start_matches('/').to_owned()
}

fn decode_segment(segment: &str) -> String {
    Url::parse(&format!("http://fake.invalid/?s={segment}"))
        .ok()
        .and_then(|url| {
            url.query_pairs()
                .next()
                .map(|(_, value)| value.into_owned())
        })
        .unwrap_or_else(|| segment.to_owned())
}

// ---------------------------------------------------------------------------------------
// The CQL subset

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
}

fn tokenize(cql: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = cql.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            ',' => {
                chars.next();
                tokens.push(Token::Comma);
            }
            '"' | '\'' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated string".into()),
                        Some('\\') => match chars.next() {
                            Some(escaped) => value.push(escaped),
                            None => return Err("dangling escape".into()),
                        },
                        Some(q) if q == c => break,
                        Some(other) => value.push(other),
                    }
                }
                tokens.push(Token::Str(value));
            }
            '=' | '~' => {
                chars.next();
                tokens.push(Token::Op(if c == '=' { "=" } else { "~" }));
            }
            '!' | '>' | '<' => {
                chars.next();
                let with_equals = chars.peek() == Some(&'=');
                if with_equals {
                    chars.next();
                }
                tokens.push(Token::Op(match (c, with_equals) {
                    ('!', true) => "!=",
                    ('>', true) => ">=",
                    ('>', false) => ">",
                    ('<', true) => "<=",
                    ('<', false) => "<",
                    _ => return Err("unexpected '!'".into()),
                }));
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '~' | '/') => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/') {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(tokens)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    In,
    NotIn,
    Ge,
    Gt,
    Le,
    Lt,
}

#[derive(Debug)]
enum Clause {
    /// `type`, `space`, `id`: the content's one value is (not) among `values`.
    Field {
        field: &'static str,
        negated: bool,
        values: Vec<String>,
    },
    /// `label`: any label among `values` (negated: none).
    Label { negated: bool, values: Vec<String> },
    Date {
        field: &'static str,
        op: Op,
        at: DateTime<FixedOffset>,
    },
}

impl Clause {
    fn matches(&self, content: &FakeContent) -> bool {
        match self {
            Clause::Field {
                field,
                negated,
                values,
            } => {
                let own = match *field {
                    "type" => content.kind,
                    "space" => content.space_key,
                    _ => content.id.as_str(),
                };
                values.iter().any(|value| value.eq_ignore_ascii_case(own)) != *negated
            }
            Clause::Label { negated, values } => {
                let any = content
                    .labels
                    .iter()
                    .any(|label| values.iter().any(|value| value.eq_ignore_ascii_case(label)));
                any != *negated
            }
            Clause::Date { field, op, at } => {
                let own = if *field == "created" {
                    content.created
                } else {
                    content.modified
                };
                match op {
                    Op::Ge => own >= *at,
                    Op::Gt => own > *at,
                    Op::Le => own <= *at,
                    Op::Lt => own < *at,
                    _ => false,
                }
            }
        }
    }
}

struct Query {
    clauses: Vec<Clause>,
    order: Option<(String, bool)>,
}

/// A CQL date in the account's time zone.
fn parse_date(value: &str) -> Result<DateTime<FixedOffset>, String> {
    let naive = ["%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .or_else(|| {
            ["%Y-%m-%d", "%Y/%m/%d"]
                .iter()
                .find_map(|format| NaiveDate::parse_from_str(value, format).ok())
                .and_then(|date| date.and_hms_opt(0, 0, 0))
        })
        .ok_or_else(|| format!("unsupported date {value:?}"))?;
    offset()
        .from_local_datetime(&naive)
        .single()
        .ok_or_else(|| format!("invalid date {value:?}"))
}

fn parse_cql(cql: &str) -> Result<Query, String> {
    let tokens = tokenize(cql)?;
    let mut position = 0;
    let mut clauses = Vec::new();
    let mut order = None;
    let word = |token: Option<&Token>| match token {
        Some(Token::Word(word)) => Some(word.to_ascii_lowercase()),
        _ => None,
    };
    loop {
        let field = word(tokens.get(position)).ok_or("expected a field")?;
        position += 1;
        if field == "order" {
            if word(tokens.get(position)).as_deref() != Some("by") {
                return Err("expected BY".into());
            }
            let field = word(tokens.get(position + 1)).ok_or("expected an order field")?;
            if !matches!(field.as_str(), "lastmodified" | "created" | "title" | "id") {
                return Err(format!("cannot order by {field}"));
            }
            position += 2;
            let descending = match word(tokens.get(position)).as_deref() {
                Some("asc") => {
                    position += 1;
                    false
                }
                Some("desc") => {
                    position += 1;
                    true
                }
                _ => false,
            };
            order = Some((field, descending));
            if position != tokens.len() {
                return Err("unexpected text after ORDER BY".into());
            }
            break;
        }
        let op = match tokens.get(position) {
            Some(Token::Op("=")) => Op::Eq,
            Some(Token::Op("!=")) => Op::Ne,
            Some(Token::Op(">=")) => Op::Ge,
            Some(Token::Op(">")) => Op::Gt,
            Some(Token::Op("<=")) => Op::Le,
            Some(Token::Op("<")) => Op::Lt,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("not") => {
                if word(tokens.get(position + 1)).as_deref() != Some("in") {
                    return Err("expected IN after NOT".into());
                }
                position += 1;
                Op::NotIn
            }
            _ => return Err(format!("expected an operator after {field}")),
        };
        position += 1;
        let values = if matches!(op, Op::In | Op::NotIn) {
            if tokens.get(position) != Some(&Token::Open) {
                return Err("expected a list".into());
            }
            position += 1;
            let mut values = Vec::new();
            loop {
                match tokens.get(position) {
                    Some(Token::Str(value)) | Some(Token::Word(value)) => {
                        values.push(value.clone())
                    }
                    _ => return Err("expected a value".into()),
                }
                position += 1;
                match tokens.get(position) {
                    Some(Token::Comma) => position += 1,
                    Some(Token::Close) => {
                        position += 1;
                        break;
                    }
                    _ => return Err("expected , or )".into()),
                }
            }
            values
        } else {
            let value = match tokens.get(position) {
                Some(Token::Str(value)) | Some(Token::Word(value)) => value.clone(),
                _ => return Err("expected a value".into()),
            };
            position += 1;
            vec![value]
        };
        let clause = match field.as_str() {
            "type" | "space" | "space.key" | "id" | "content" => {
                let negated = match op {
                    Op::Eq | Op::In => false,
                    Op::Ne | Op::NotIn => true,
                    _ => return Err(format!("{field} does not support that operator")),
                };
                let field = match field.as_str() {
                    "type" => "type",
                    "space" | "space.key" => "space",
                    _ => "id",
                };
                Clause::Field {
                    field,
                    negated,
                    values,
                }
            }
            "label" => {
                let negated = match op {
                    Op::Eq | Op::In => false,
                    Op::Ne | Op::NotIn => true,
                    _ => return Err("label does not support that operator".into()),
                };
                Clause::Label { negated, values }
            }
            "lastmodified" | "created" => {
                if !matches!(op, Op::Ge | Op::Gt | Op::Le | Op::Lt) {
                    return Err(format!("{field} needs a comparison"));
                }
                Clause::Date {
                    field: if field == "created" {
                        "created"
                    } else {
                        "lastmodified"
                    },
                    op,
                    at: parse_date(&values[0])?,
                }
            }
            other => return Err(format!("unsupported field {other}")),
        };
        clauses.push(clause);
        match word(tokens.get(position)).as_deref() {
            None if position == tokens.len() => break,
            Some("and") => position += 1,
            Some("order") => {}
            Some("or") => return Err("OR is not supported by this fake".into()),
            _ => return Err("expected AND, ORDER BY or the end".into()),
        }
    }
    Ok(Query { clauses, order })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cql_the_connector_sends() {
        let query = parse_cql(
            "type in (page, blogpost) and space in (\"ENG\", \"HR\") and label not in (\"draft\") \
             and lastmodified >= \"2024-03-01 09:55\" order by lastmodified asc",
        )
        .unwrap();
        assert_eq!(query.clauses.len(), 4);
        assert_eq!(query.order, Some(("lastmodified".into(), false)));
        assert!(parse_cql("type = page order by created asc").is_ok());
        assert!(parse_cql("type = page or space = ENG").is_err());
        assert!(parse_cql("text ~ \"x\"").is_err());
        assert!(parse_cql("lastmodified >= \"yesterday\"").is_err());
    }
}
