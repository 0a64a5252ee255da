//! The fake Teams API's handlers, in Graph's shapes.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::super::{Caller, Shared};
use super::{FakeChannel, FakeMessage, TeamsWorld};
use crate::microsoft::graph_error;

type Params = Query<HashMap<String, String>>;

/// The routes under `/v1.0`.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/teams", get(teams))
        .route("/me/joinedTeams", get(joined_teams))
        .route("/teams/{team}", get(team))
        .route("/teams/{team}/channels", get(channels))
        .route("/teams/{team}/channels/{channel}/messages", get(messages))
        .route(
            "/teams/{team}/channels/{channel}/messages/delta",
            get(delta),
        )
        .route(
            "/teams/{team}/channels/{channel}/messages/{message}/replies",
            get(replies),
        )
}

fn not_found(what: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{what} not found."),
    )
}

fn bad_request(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn top(params: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, Response> {
    match params.get("$top") {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(bad_request(&format!(
                "Invalid page size requested: {text}. The maximum is {max}."
            ))),
        },
    }
}

/// `{"@odata.context", "value", "@odata.nextLink"?}` with `$skiptoken` offsets.
fn offset_page(
    context: &str,
    items: Vec<Value>,
    params: &HashMap<String, String>,
    next_base: &str,
    size: usize,
) -> Response {
    let start = params
        .get("$skiptoken")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0);
    let end = (start + size).min(items.len());
    let mut body = json!({
        "@odata.context": context,
        "@odata.count": items.len(),
        "value": items.get(start..end).unwrap_or_default(),
    });
    if end < items.len() {
        let joiner = if next_base.contains('?') { '&' } else { '?' };
        body["@odata.nextLink"] = json!(format!("{next_base}{joiner}$top={size}&$skiptoken={end}"));
    }
    Json(body).into_response()
}

fn gate(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Caller, Response> {
    shared.gate("GET", uri, headers)
}

fn protected(world: &TeamsWorld, caller: &Caller) -> Result<(), Response> {
    if caller.app_only() && !world.protected_api {
        return Err(graph_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Invoked API requires Protected API access in application-only context when not using Resource Specific Consent. Visit https://docs.microsoft.com/en-us/graph/teams-protected-apis for more details.",
        ));
    }
    Ok(())
}

fn team_json(team: &super::FakeTeam) -> Value {
    json!({"id": team.id, "displayName": team.name, "description": null, "isArchived": false})
}

async fn teams(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    if let Err(response) = gate(&shared, &uri, &headers) {
        return response;
    }
    let items: Vec<Value> = shared.teams().teams.iter().map(team_json).collect();
    let base = shared.graph_base();
    offset_page(
        &format!("{base}/$metadata#teams"),
        items,
        &q,
        &format!("{base}/teams"),
        20,
    )
}

async fn joined_teams(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let caller = match gate(&shared, &uri, &headers) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if caller.app_only() {
        return bad_request("/me request is only valid with delegated authentication flow.");
    }
    let items: Vec<Value> = shared.teams().teams.iter().map(team_json).collect();
    let base = shared.graph_base();
    offset_page(
        &format!("{base}/$metadata#teams"),
        items,
        &q,
        &format!("{base}/me/joinedTeams"),
        20,
    )
}

async fn team(
    State(shared): State<Shared>,
    Path(team): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = gate(&shared, &uri, &headers) {
        return response;
    }
    let world = shared.teams();
    match world.teams.iter().find(|t| t.id == team) {
        Some(found) => Json(team_json(found)).into_response(),
        None => not_found("Team"),
    }
}

async fn channels(
    State(shared): State<Shared>,
    Path(team): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    if let Err(response) = gate(&shared, &uri, &headers) {
        return response;
    }
    let world = shared.teams();
    let Some(found) = world.teams.iter().find(|t| t.id == team) else {
        return not_found("Team");
    };
    let items: Vec<Value> = found
        .channels
        .iter()
        .map(|c| json!({"id": c.id, "displayName": c.name, "membershipType": "standard"}))
        .collect();
    let base = shared.graph_base();
    offset_page(
        &format!("{base}/$metadata#teams('{team}')/channels"),
        items,
        &q,
        &format!("{base}/teams/{team}/channels"),
        100,
    )
}

fn message_json(team: &str, channel: &str, m: &FakeMessage) -> Value {
    let deleted = m.deleted.is_some();
    let web_url = format!(
        "https://teams.microsoft.com/l/message/{}/{}?groupId={team}",
        url_escape(channel),
        m.id
    );
    json!({
        "id": m.id,
        "replyToId": m.reply_to,
        "etag": m.modified.timestamp_millis().to_string(),
        "messageType": m.message_type,
        "createdDateTime": m.created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "lastModifiedDateTime": m.modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "lastEditedDateTime": null,
        "deletedDateTime": m.deleted.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "subject": m.subject,
        "summary": null,
        "importance": "normal",
        "locale": "en-us",
        "webUrl": web_url,
        "channelIdentity": {"teamId": team, "channelId": channel},
        "from": if deleted { Value::Null } else { json!({"application": null, "device": null,
            "user": {"@odata.type": "#microsoft.graph.teamworkUserIdentity",
                     "id": format!("user-{}", m.author.to_lowercase().replace(' ', "-")),
                     "displayName": m.author, "userIdentityType": "aadUser"}}) },
        "body": {"contentType": "html", "content": if deleted { String::new() } else { m.html.clone() }},
        "attachments": if deleted { Vec::new() } else { m.attachments.iter().enumerate().map(|(n, (name, url))| json!({
            "id": format!("att-{n}"), "contentType": "reference", "contentUrl": url, "content": null,
            "name": name, "thumbnailUrl": null})).collect::<Vec<_>>() },
        "mentions": if deleted { Vec::new() } else { m.mentions.iter().map(|(id, name)| json!({
            "id": id, "mentionText": name.split(' ').next().unwrap_or_default(),
            "mentioned": {"application": null, "device": null, "conversation": null,
                          "user": {"id": format!("user-{id}"), "displayName": name, "userIdentityType": "aadUser"}}})).collect::<Vec<_>>() },
        "reactions": [],
    })
}

/// An id in a path: Graph writes channel ids (`19:…@thread.tacv2`) as they are.
fn url_escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace('/', "%2F")
        .replace('?', "%3F")
        .replace('#', "%23")
        .replace(' ', "%20")
}

/// The channel, after the gate and the protected-API check.
fn channel_of<'w>(
    world: &'w TeamsWorld,
    caller: &Caller,
    team: &str,
    channel: &str,
) -> Result<&'w FakeChannel, Response> {
    protected(world, caller)?;
    world
        .channel(team, channel)
        .ok_or_else(|| not_found("Channel"))
}

async fn messages(
    State(shared): State<Shared>,
    Path((team, channel)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let caller = match gate(&shared, &uri, &headers) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let world = shared.teams();
    let found = match channel_of(&world, &caller, &team, &channel) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let size = match top(&q, 20, 50) {
        Ok(size) => size,
        Err(response) => return response,
    };
    // Newest first, as Graph lists them.
    let mut roots: Vec<&FakeMessage> = found
        .messages
        .iter()
        .filter(|m| m.reply_to.is_none())
        .collect();
    roots.sort_by_key(|m| std::cmp::Reverse(m.created));
    let items = roots
        .iter()
        .map(|m| message_json(&team, &channel, m))
        .collect();
    let base = shared.graph_base();
    let path = format!(
        "{base}/teams/{team}/channels/{}/messages",
        url_escape(&channel)
    );
    offset_page(
        &format!("{base}/$metadata#teams('{team}')/channels('{channel}')/messages"),
        items,
        &q,
        &path,
        size,
    )
}

async fn replies(
    State(shared): State<Shared>,
    Path((team, channel, message)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let caller = match gate(&shared, &uri, &headers) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let world = shared.teams();
    let found = match channel_of(&world, &caller, &team, &channel) {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !found
        .messages
        .iter()
        .any(|m| m.id == message && m.reply_to.is_none())
    {
        return not_found("Message");
    }
    let size = match top(&q, 20, 50) {
        Ok(size) => size,
        Err(response) => return response,
    };
    let items = replies_of(found, &message)
        .map(|m| message_json(&team, &channel, m))
        .collect();
    let base = shared.graph_base();
    let path = format!(
        "{base}/teams/{team}/channels/{}/messages/{message}/replies",
        url_escape(&channel)
    );
    offset_page(&format!("{base}/$metadata#replies"), items, &q, &path, size)
}

fn replies_of<'c>(
    channel: &'c FakeChannel,
    root: &'c str,
) -> impl Iterator<Item = &'c FakeMessage> {
    channel
        .messages
        .iter()
        .filter(move |m| m.reply_to.as_deref() == Some(root))
}

/// `$deltatoken=<since>` or `$skiptoken=<since>.<upto>.<after>`: roots whose thread
/// changed in `(since, upto]`, after `after`, oldest change first.
async fn delta(
    State(shared): State<Shared>,
    Path((team, channel)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let caller = match gate(&shared, &uri, &headers) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let world = shared.teams();
    let found = match channel_of(&world, &caller, &team, &channel) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let size = match top(&q, 20, 50) {
        Ok(size) => size,
        Err(response) => return response,
    };
    let (since, upto, after) = match (q.get("$deltatoken"), q.get("$skiptoken")) {
        (Some(token), None) => match token.parse::<u64>() {
            Ok(since) => (since, world.seq, 0),
            Err(_) => return bad_request("Invalid delta token."),
        },
        (None, Some(token)) => {
            let parts: Vec<Option<u64>> = token.split('.').map(|p| p.parse().ok()).collect();
            match parts.as_slice() {
                [Some(since), Some(upto), Some(after)] => (*since, *upto, *after),
                _ => return bad_request("Invalid skip token."),
            }
        }
        _ => (0, world.seq, 0),
    };
    if since > 0 && since < world.delta_floor {
        return graph_error(
            StatusCode::GONE,
            "resyncRequired",
            "Resync required. Replace any local items with the server's version (including deletes).",
        );
    }
    let mut roots: Vec<&FakeMessage> = found
        .messages
        .iter()
        .filter(|m| m.reply_to.is_none() && m.seq > since.max(after) && m.seq <= upto)
        .filter(|m| since > 0 || m.deleted.is_none())
        .collect();
    roots.sort_by_key(|m| m.seq);
    let page: Vec<&FakeMessage> = roots.iter().take(size).copied().collect();
    let expand = q.get("$expand").is_some_and(|e| e == "replies");
    let value: Vec<Value> = page
        .iter()
        .map(|root| {
            let mut json = message_json(&team, &channel, root);
            if expand {
                let all: Vec<&FakeMessage> = replies_of(found, &root.id).collect();
                let embedded: Vec<Value> = all
                    .iter()
                    .take(world.expand_limit)
                    .map(|m| message_json(&team, &channel, m))
                    .collect();
                json["replies"] = json!(embedded);
                json["replies@odata.count"] = json!(all.len());
                if all.len() > world.expand_limit {
                    json["replies@odata.nextLink"] = json!(format!(
                        "{}/teams/{team}/channels/{}/messages/{}/replies?$skiptoken={}",
                        shared.graph_base(),
                        url_escape(&channel),
                        root.id,
                        world.expand_limit
                    ));
                }
            }
            json
        })
        .collect();
    let base = format!(
        "{}/teams/{team}/channels/{}/messages/delta",
        shared.graph_base(),
        url_escape(&channel)
    );
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#Collection(chatMessage)", shared.graph_base()),
        "value": value,
    });
    let expand_param = if expand { "&$expand=replies" } else { "" };
    match page.last() {
        Some(last) if roots.len() > page.len() => {
            body["@odata.nextLink"] = json!(format!(
                "{base}?$top={size}{expand_param}&$skiptoken={since}.{upto}.{}",
                last.seq
            ));
        }
        _ => {
            body["@odata.deltaLink"] = json!(format!(
                "{base}?$top={size}{expand_param}&$deltatoken={upto}"
            ));
        }
    }
    Json(body).into_response()
}
