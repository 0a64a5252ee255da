//! The fake drive API's handlers (Graph's shapes: `@odata.context`, `value`,
//! `@odata.nextLink`, `@odata.deltaLink`, Graph error bodies) and the download origin.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::super::{parse_query, Shared};
use super::world::{DownloadRecord, DrivesWorld, FakeItem, FakeSite, Session};
use crate::microsoft::graph_error;

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/sites/{*rest}", get(super::sites::sites))
        .route("/drives/{drive}/root/delta", get(delta))
        .route("/drives/{drive}/items/{item}/content", get(content))
        .route("/drives/{drive}/items/{item}/children", get(children))
        .route("/drives/{drive}/items/{item}/permissions", get(permissions))
        .route("/users/{user}/drive", get(user_drive))
        .route("/me/drive", get(me_drive))
        .route("/_download/{drive}/{item}", get(download))
}

/// The download origin: a second loopback server; returns its base URL.
pub(super) async fn start_download_server(shared: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let router = Router::new()
        .route("/download/{drive}/{item}", get(download))
        .with_state(shared);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}/download")
}

pub(super) fn not_found(what: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "itemNotFound",
        &format!("The resource could not be found: {what}."),
    )
}

pub(super) fn site_refusal(site: &FakeSite) -> Option<Response> {
    if site.locked {
        return Some(graph_error(
            StatusCode::LOCKED,
            "resourceLocked",
            "The site is locked and cannot be accessed.",
        ));
    }
    if site.denied {
        return Some(graph_error(
            StatusCode::FORBIDDEN,
            "accessDenied",
            "Access denied. You do not have permission to perform this action.",
        ));
    }
    None
}

fn drive_refusal(world: &DrivesWorld, drive: &str) -> Option<Response> {
    let Some(found) = world.drive(drive) else {
        return Some(not_found("drive"));
    };
    found
        .site
        .as_deref()
        .and_then(|s| world.site(s))
        .and_then(site_refusal)
}

/// `$select` applied (ids and facets that say what an item is always stay).
pub(super) fn select(value: Value, fields: Option<&str>) -> Value {
    let (Some(fields), Value::Object(map)) = (fields, &value) else {
        return value;
    };
    let keep: Vec<&str> = fields.split(',').map(str::trim).collect();
    let mut out = serde_json::Map::new();
    for (key, field) in map {
        if key == "id" || key.starts_with('@') || keep.contains(&key.as_str()) {
            out.insert(key.clone(), field.clone());
        }
    }
    Value::Object(out)
}

pub(super) fn query(uri: &Uri) -> HashMap<String, String> {
    parse_query(uri.query().unwrap_or_default())
        .into_iter()
        .collect()
}

fn link_query(q: &HashMap<String, String>) -> String {
    let mut out = String::new();
    for key in ["$select", "$top"] {
        if let Some(value) = q.get(key) {
            out.push_str(&format!("&{key}={}", url_encode(value)));
        }
    }
    out
}

fn url_encode(value: &str) -> String {
    serde_urlencoded::to_string([("k", value)])
        .map(|s| s.trim_start_matches("k=").to_owned())
        .unwrap_or_default()
}

/// Non-deleted items of a drive, parents before children (breadth first), root first.
fn tree_order(world: &DrivesWorld, drive: &str) -> Vec<String> {
    let mut children: HashMap<&str, Vec<&FakeItem>> = HashMap::new();
    for item in world
        .items
        .values()
        .filter(|i| i.drive == drive && !i.deleted)
    {
        if let Some(parent) = &item.parent {
            children.entry(parent.as_str()).or_default().push(item);
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|i| i.seq);
    }
    let Some(root) = world.drive(drive).map(|d| d.root.clone()) else {
        return Vec::new();
    };
    let mut out = vec![root.clone()];
    let mut index = 0;
    while index < out.len() {
        let current = out[index].clone();
        if let Some(list) = children.get(current.as_str()) {
            out.extend(list.iter().map(|i| i.id.clone()));
        }
        index += 1;
    }
    out
}

async fn delta(
    State(shared): State<Shared>,
    Path(drive): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = shared.gate("GET", &uri, &headers) {
        return response;
    }
    let base = shared.graph_base();
    let q = query(&uri);
    let mut world = shared.drives();
    if let Some(refusal) = drive_refusal(&world, &drive) {
        return refusal;
    }
    let top: usize = q
        .get("$top")
        .and_then(|t| t.parse().ok())
        .unwrap_or(200)
        .clamp(1, 1000);
    let (session, offset) = match q.get("token").map(String::as_str) {
        Some(token) if token.starts_with('s') => {
            let parsed = token[1..]
                .split_once('.')
                .and_then(|(s, o)| Some((s.parse::<usize>().ok()?, o.parse::<usize>().ok()?)));
            match parsed.filter(|(s, _)| world.sessions.get(*s).is_some_and(|x| x.drive == drive)) {
                Some(found) => found,
                None => {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        "invalidRequest",
                        "Invalid nextLink token.",
                    )
                }
            }
        }
        Some(token) => {
            let Ok(since) = token.parse::<u64>() else {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "invalidRequest",
                    "Invalid delta token.",
                );
            };
            if since < world.token_floor {
                let mut response = graph_error(StatusCode::GONE, "resyncRequired", "Resync required. Replace any local items with the server's version (including deletes) if you're sure that the service was up to date with your local changes when you last sync'd.");
                if let Ok(location) =
                    HeaderValue::from_str(&format!("{base}/drives/{drive}/root/delta"))
                {
                    response.headers_mut().insert(header::LOCATION, location);
                }
                return response;
            }
            let mut changed: Vec<&FakeItem> = world
                .items
                .values()
                .filter(|i| i.drive == drive && i.seq > since && i.parent.is_some())
                .collect();
            changed.sort_by_key(|i| i.seq);
            let ids = changed.iter().map(|i| i.id.clone()).collect();
            let end_token = world.seq();
            world.sessions.push(Session {
                drive: drive.clone(),
                ids,
                end_token,
                initial: false,
            });
            (world.sessions.len() - 1, 0)
        }
        None => {
            let ids = tree_order(&world, &drive);
            let end_token = world.seq();
            world.sessions.push(Session {
                drive: drive.clone(),
                ids,
                end_token,
                initial: true,
            });
            (world.sessions.len() - 1, 0)
        }
    };
    let current = world.sessions[session].clone();
    let fields = q.get("$select").map(String::as_str);
    let value: Vec<Value> = current
        .ids
        .iter()
        .skip(offset)
        .take(top)
        .filter_map(|id| world.items.get(id))
        .filter(|item| !(current.initial && item.deleted))
        .map(|item| select(world.item_json(item, &base), fields))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{base}/$metadata#Collection(driveItem)"),
        "value": value,
    });
    let carry = link_query(&q);
    if offset + top < current.ids.len() {
        body["@odata.nextLink"] = json!(format!(
            "{base}/drives/{drive}/root/delta?token=s{session}.{}{carry}",
            offset + top
        ));
    } else {
        body["@odata.deltaLink"] = json!(format!(
            "{base}/drives/{drive}/root/delta?token={}{carry}",
            current.end_token
        ));
    }
    Json(body).into_response()
}

async fn children(
    State(shared): State<Shared>,
    Path((drive, item)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = shared.gate("GET", &uri, &headers) {
        return response;
    }
    let base = shared.graph_base();
    let q = query(&uri);
    let world = shared.drives();
    if let Some(refusal) = drive_refusal(&world, &drive) {
        return refusal;
    }
    if !world
        .items
        .get(&item)
        .is_some_and(|i| i.drive == drive && !i.deleted)
    {
        return not_found("item");
    }
    let top: usize = q
        .get("$top")
        .and_then(|t| t.parse().ok())
        .unwrap_or(200)
        .clamp(1, 1000);
    let offset: usize = q
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut list: Vec<&FakeItem> = world
        .items
        .values()
        .filter(|i| i.parent.as_deref() == Some(item.as_str()) && !i.deleted)
        .collect();
    list.sort_by_key(|i| i.seq);
    let fields = q.get("$select").map(String::as_str);
    let value: Vec<Value> = list
        .iter()
        .skip(offset)
        .take(top)
        .map(|i| select(world.item_json(i, &base), fields))
        .collect();
    let mut body = json!({"@odata.context": format!("{base}/$metadata#drives('{drive}')/items('{item}')/children"), "value": value});
    if offset + top < list.len() {
        body["@odata.nextLink"] = json!(format!(
            "{base}/drives/{drive}/items/{item}/children?$skiptoken={}{}",
            offset + top,
            link_query(&q)
        ));
    }
    Json(body).into_response()
}

async fn permissions(
    State(shared): State<Shared>,
    Path((drive, item)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = shared.gate("GET", &uri, &headers) {
        return response;
    }
    let base = shared.graph_base();
    let world = shared.drives();
    if let Some(refusal) = drive_refusal(&world, &drive) {
        return refusal;
    }
    match world.items.get(&item).filter(|i| i.drive == drive && !i.deleted) {
        Some(found) => Json(json!({
            "@odata.context": format!("{base}/$metadata#drives('{drive}')/items('{item}')/permissions"),
            "value": found.permissions,
        }))
        .into_response(),
        None => not_found("item"),
    }
}

/// 302 to a pre-authenticated URL on the download origin.
async fn content(
    State(shared): State<Shared>,
    Path((drive, item)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = shared.gate("GET", &uri, &headers) {
        return response;
    }
    let base = shared.graph_base();
    let mut world = shared.drives();
    if let Some(refusal) = drive_refusal(&world, &drive) {
        return refusal;
    }
    let Some(found) = world
        .items
        .get(&item)
        .filter(|i| i.drive == drive && !i.deleted && !i.folder)
    else {
        return not_found("item");
    };
    let version = found.content_version;
    *world.content_fetches.entry(item.clone()).or_default() += 1;
    let origin = if world.download_base.is_empty() {
        format!("{base}/_download")
    } else {
        world.download_base.clone()
    };
    let location = format!("{origin}/{drive}/{item}?tempauth=v{version}.signed");
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The pre-authenticated download (no bearer needed; one arriving is recorded).
async fn download(
    State(shared): State<Shared>,
    Path((drive, item)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut world = shared.drives();
    world.downloads.push(DownloadRecord {
        path: uri.path().to_owned(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    match world
        .items
        .get(&item)
        .filter(|i| i.drive == drive && !i.deleted)
    {
        Some(found) => {
            let mime = HeaderValue::from_str(&found.mime)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            ([(header::CONTENT_TYPE, mime)], found.content.clone()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn drive_json(world: &DrivesWorld, id: &str, base: &str) -> Value {
    let drive = world.drive(id);
    json!({
        "@odata.context": format!("{base}/$metadata#drives/$entity"),
        "id": id,
        "name": drive.map(|d| d.name.clone()),
        "driveType": "business",
        "owner": {"user": {"email": drive.and_then(|d| d.owner.clone()), "displayName": drive.and_then(|d| d.owner.clone())}},
    })
}

async fn user_drive(
    State(shared): State<Shared>,
    Path(user): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = shared.gate("GET", &uri, &headers) {
        return response;
    }
    let base = shared.graph_base();
    let world = shared.drives();
    match world.users.get(&user.to_ascii_lowercase()) {
        Some(id) => Json(drive_json(&world, id, &base)).into_response(),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "User's mysite not found.",
        ),
    }
}

async fn me_drive(State(shared): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let caller = match shared.gate("GET", &uri, &headers) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if caller.app_only() {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        );
    }
    let base = shared.graph_base();
    let world = shared.drives();
    match world.users.get(&caller.principal.to_ascii_lowercase()) {
        Some(id) => Json(drive_json(&world, id, &base)).into_response(),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "User's mysite not found.",
        ),
    }
}
