//! The fake's HTTP routes (see the module documentation for the shapes).
// Handlers answer early with the error response itself; boxing it buys nothing in a fake.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};

use super::query::{self, View};
use super::{google_error, FakeMessage, Fault, Mailbox, Recorded, Shared, State as FakeState};

pub(super) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/gmail/v1/users/{user}/profile", get(profile))
        .route("/gmail/v1/users/{user}/threads", get(threads_list))
        .route("/gmail/v1/users/{user}/threads/{id}", get(thread_get))
        .route("/gmail/v1/users/{user}/messages/{id}", get(message_get))
        .route("/gmail/v1/users/{user}/history", get(history_list))
        .route(
            "/gmail/v1/users/{user}/messages/{message}/attachments/{id}",
            get(attachment_get),
        )
        .with_state(shared)
}

fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    reqwest::Url::parse(&format!("http://fake/?{raw}"))
        .map(|url| {
            url.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn params<'a>(query: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    query
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn not_found() -> Response {
    google_error(
        404,
        "Requested entity was not found.",
        "notFound",
        "NOT_FOUND",
    )
}

fn bad_request(message: &str) -> Response {
    google_error(400, message, "invalidArgument", "INVALID_ARGUMENT")
}

/// Records the call, applies injected faults and the authorisation; the mailbox's key.
fn admit(
    shared: &Shared,
    state: &mut FakeState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    user: &str,
) -> Result<String, Response> {
    let token_user = shared.book.user_of_headers(headers);
    state.requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: pairs(uri.query()),
        user: token_user.clone(),
    });
    if !state.faults.is_empty() {
        let fault = state.faults.remove(0);
        state.faults_served += 1;
        return Err(match fault {
            Fault::UserRateLimit => crate::google::rate_limited("userRateLimitExceeded"),
            Fault::TooManyRequests => crate::google::too_many_requests(0),
            Fault::Unavailable => google_error(
                503,
                "The service is currently unavailable.",
                "backendError",
                "UNAVAILABLE",
            ),
        });
    }
    let Some(token_user) = token_user else {
        return Err(crate::google::unauthorized());
    };
    let token_user = token_user.to_ascii_lowercase();
    if user != "me" && !user.eq_ignore_ascii_case(&token_user) {
        return Err(google_error(
            403,
            &format!("Delegation denied for {token_user}"),
            "forbidden",
            "PERMISSION_DENIED",
        ));
    }
    if !state.mailboxes.contains_key(&token_user) {
        return Err(google_error(
            400,
            "Mail service not enabled",
            "failedPrecondition",
            "FAILED_PRECONDITION",
        ));
    }
    Ok(token_user)
}

async fn profile(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Response {
    let mut state = shared.lock();
    let key = match admit(&shared, &mut state, &method, &uri, &headers, &user) {
        Ok(key) => key,
        Err(response) => return response,
    };
    let mailbox = &state.mailboxes[&key];
    Json(json!({
        "emailAddress": mailbox.email,
        "messagesTotal": mailbox.threads.values().map(Vec::len).sum::<usize>(),
        "threadsTotal": mailbox.threads.len(),
        "historyId": mailbox.history_id.to_string(),
    }))
    .into_response()
}

fn view(message: &FakeMessage) -> View<'_> {
    View {
        from: &message.from,
        to: &message.to,
        subject: &message.subject,
        labels: message.labels.iter().map(String::as_str).collect(),
        message_id: &message.message_id,
        text: &message.text,
        has_attachment: message.has_attachment,
    }
}

/// A page token: the offset, bound to the search and the token epoch.
fn page_token(offset: usize, search: &str, epoch: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{epoch}|{offset}|{search}"))
}

fn read_token(token: &str, search: &str, epoch: u64) -> Option<usize> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut fields = text.splitn(3, '|');
    let token_epoch: u64 = fields.next()?.parse().ok()?;
    let offset = fields.next()?.parse().ok()?;
    (token_epoch == epoch && fields.next()? == search).then_some(offset)
}

fn max_results(query: &[(String, String)], default: usize) -> Result<usize, Response> {
    match param(query, "maxResults") {
        None => Ok(default),
        Some(value) => value
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| bad_request("Invalid maxResults")),
    }
}

async fn threads_list(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(user): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut state = shared.lock();
    let key = match admit(&shared, &mut state, &method, &uri, &headers, &user) {
        Ok(key) => key,
        Err(response) => return response,
    };
    let query = pairs(raw.as_deref());
    let limit = match max_results(&query, 100) {
        Ok(limit) => limit,
        Err(response) => return response,
    };
    let q = param(&query, "q").unwrap_or_default();
    let label_ids: Vec<&str> = params(&query, "labelIds");
    let spam_trash = param(&query, "includeSpamTrash") == Some("true");
    let search = format!("{q}\u{1f}{}\u{1f}{spam_trash}", label_ids.join(","));
    let parsed = if q.trim().is_empty() {
        None
    } else {
        match query::parse(q) {
            Ok(parsed) => Some(parsed),
            Err(error) => return bad_request(&format!("Invalid query: {error}")),
        }
    };
    let offset = match param(&query, "pageToken") {
        None => 0,
        Some(token) => match read_token(token, &search, state.token_epoch) {
            Some(offset) => offset,
            None => return bad_request("Invalid pageToken"),
        },
    };
    let mailbox = &state.mailboxes[&key];
    let mut found: Vec<(i64, &String, &Vec<FakeMessage>)> = mailbox
        .threads
        .iter()
        .filter(|(_, messages)| {
            let labels: BTreeSet<&str> = messages
                .iter()
                .flat_map(|m| m.labels.iter().map(String::as_str))
                .collect();
            label_ids.iter().all(|l| labels.contains(l))
                && messages.iter().any(|m| {
                    (spam_trash || (!m.labels.contains("SPAM") && !m.labels.contains("TRASH")))
                        && parsed.as_ref().is_none_or(|q| q.matches(&view(m)))
                })
        })
        .map(|(id, messages)| {
            let newest = messages.iter().map(|m| m.internal_date).max().unwrap_or(0);
            (newest, id, messages)
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(a.1)));
    let total = found.len();
    let page: Vec<Value> = found
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(_, id, messages)| {
            json!({"id": id, "snippet": snippet(messages.last()), "historyId": thread_history_id(messages)})
        })
        .collect();
    let mut body = json!({"resultSizeEstimate": total});
    if !page.is_empty() {
        body["threads"] = Value::Array(page);
    }
    if offset + limit < total {
        body["nextPageToken"] = json!(page_token(offset + limit, &search, state.token_epoch));
    }
    Json(body).into_response()
}

fn snippet(message: Option<&FakeMessage>) -> String {
    message
        .map(|m| {
            m.text
                .chars()
                .take(100)
                .collect::<String>()
                .replace('\n', " ")
        })
        .unwrap_or_default()
}

fn thread_history_id(messages: &[FakeMessage]) -> String {
    messages
        .iter()
        .map(|m| m.history_id)
        .max()
        .unwrap_or(0)
        .to_string()
}

fn message_json(message: &FakeMessage, format: &str) -> Value {
    let mut value = json!({
        "id": message.id,
        "threadId": message.thread_id,
        "labelIds": message.labels.iter().collect::<Vec<_>>(),
        "snippet": snippet(Some(message)),
        "historyId": message.history_id.to_string(),
        "internalDate": message.internal_date.to_string(),
        "sizeEstimate": message.text.len() + 512,
    });
    match format {
        "minimal" => {}
        "metadata" => {
            let mut payload = message.payload.clone();
            if let Some(object) = payload.as_object_mut() {
                object.remove("parts");
                object.remove("body");
            }
            value["payload"] = payload;
        }
        _ => value["payload"] = message.payload.clone(),
    }
    value
}

fn format_of(query: &[(String, String)]) -> Result<&str, Response> {
    match param(query, "format").unwrap_or("full") {
        format @ ("full" | "metadata" | "minimal") => Ok(format),
        _ => Err(bad_request("Invalid format")),
    }
}

async fn thread_get(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((user, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut state = shared.lock();
    let key = match admit(&shared, &mut state, &method, &uri, &headers, &user) {
        Ok(key) => key,
        Err(response) => return response,
    };
    let query = pairs(raw.as_deref());
    let format = match format_of(&query) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let Some(messages) = state.mailboxes[&key].threads.get(&id) else {
        return not_found();
    };
    let mut ordered = messages.clone();
    ordered.sort_by_key(|m| m.internal_date);
    Json(json!({
        "id": id,
        "snippet": snippet(ordered.last()),
        "historyId": thread_history_id(&ordered),
        "messages": ordered.iter().map(|m| message_json(m, format)).collect::<Vec<_>>(),
    }))
    .into_response()
}

fn find_message<'a>(mailbox: &'a Mailbox, id: &str) -> Option<&'a FakeMessage> {
    mailbox.threads.values().flatten().find(|m| m.id == id)
}

async fn message_get(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((user, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut state = shared.lock();
    let key = match admit(&shared, &mut state, &method, &uri, &headers, &user) {
        Ok(key) => key,
        Err(response) => return response,
    };
    let query = pairs(raw.as_deref());
    let format = match format_of(&query) {
        Ok(format) => format,
        Err(response) => return response,
    };
    match find_message(&state.mailboxes[&key], &id) {
        Some(message) => Json(message_json(message, format)).into_response(),
        None => not_found(),
    }
}

async fn attachment_get(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path((user, message, id)): Path<(String, String, String)>,
) -> Response {
    let mut state = shared.lock();
    let key = match admit(&shared, &mut state, &method, &uri, &headers, &user) {
        Ok(key) => key,
        Err(response) => return response,
    };
    let Some(bytes) = find_message(&state.mailboxes[&key], &message).and_then(|m| m.apart.get(&id))
    else {
        return not_found();
    };
    Json(json!({"size": bytes.len(), "data": URL_SAFE.encode(bytes)})).into_response()
}

async fn history_list(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Path(user): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let mut state = shared.lock();
    let key = match admit(&shared, &mut state, &method, &uri, &headers, &user) {
        Ok(key) => key,
        Err(response) => return response,
    };
    let query = pairs(raw.as_deref());
    let limit = match max_results(&query, 100) {
        Ok(limit) => limit,
        Err(response) => return response,
    };
    let Some(start) = param(&query, "startHistoryId").and_then(|v| v.parse::<u64>().ok()) else {
        return bad_request("Invalid startHistoryId");
    };
    let types: Vec<&str> = params(&query, "historyTypes");
    let label = param(&query, "labelId");
    let mailbox = &state.mailboxes[&key];
    if start < mailbox.history_floor {
        return not_found();
    }
    let search = format!(
        "{start}\u{1f}{}\u{1f}{}",
        types.join(","),
        label.unwrap_or_default()
    );
    let offset = match param(&query, "pageToken") {
        None => 0,
        Some(token) => match read_token(token, &search, state.token_epoch) {
            Some(offset) => offset,
            None => return bad_request("Invalid pageToken"),
        },
    };
    let records: Vec<&super::HistoryEntry> = mailbox
        .history
        .iter()
        .filter(|r| r.id > start)
        .filter(|r| types.is_empty() || types.contains(&r.kind))
        .filter(|r| label.is_none_or(|l| r.labels_after.iter().any(|x| x == l)))
        .collect();
    let page: Vec<Value> = records
        .iter()
        .skip(offset)
        .take(limit)
        .map(|record| {
            let message = json!({"id": record.message_id, "threadId": record.thread_id,
                "labelIds": record.labels_after});
            let mut value = json!({"id": record.id.to_string(),
                "messages": [{"id": record.message_id, "threadId": record.thread_id}]});
            match record.kind {
                "messageAdded" => value["messagesAdded"] = json!([{"message": message}]),
                "messageDeleted" => value["messagesDeleted"] = json!([{"message": message}]),
                "labelAdded" => {
                    value["labelsAdded"] =
                        json!([{"message": message, "labelIds": record.changed_labels}])
                }
                _ => {
                    value["labelsRemoved"] =
                        json!([{"message": message, "labelIds": record.changed_labels}])
                }
            }
            value
        })
        .collect();
    let mut body = json!({"historyId": mailbox.history_id.to_string()});
    if !page.is_empty() {
        body["history"] = Value::Array(page);
    }
    if offset + limit < records.len() {
        body["nextPageToken"] = json!(page_token(offset + limit, &search, state.token_epoch));
    }
    Json(body).into_response()
}
