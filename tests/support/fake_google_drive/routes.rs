//! The Drive v3 and Sheets v4 endpoints of the fake, answering like Google documents them.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::query;
use super::state::{apply_mask, FakeFile, World, DOC, FOLDER, SHEET, SLIDES};
use super::Shared;

type Params = Query<HashMap<String, String>>;

const MAX_FILES_PAGE: usize = 1000;
const MAX_CHANGES_PAGE: usize = 1000;
const MAX_PERMISSIONS_PAGE: usize = 100;
const MAX_DRIVES_PAGE: usize = 100;
/// files.export refuses larger exports (`exportSizeLimitExceeded`).
pub const EXPORT_LIMIT_BYTES: usize = 10 * 1024 * 1024;

/// Google's JSON error body (`error.errors[]` with domain/reason/location, as Drive v3).
pub fn google_error(
    status: StatusCode,
    reason: &str,
    message: &str,
    location: Option<&str>,
) -> Response {
    let mut detail = json!({"domain": "global", "reason": reason, "message": message});
    if let Some(location) = location {
        detail["location"] = json!(location);
        detail["locationType"] = json!("parameter");
    }
    let body = json!({"error": {"code": status.as_u16(), "message": message, "errors": [detail]}});
    (status, Json(body)).into_response()
}

fn not_found(id: &str) -> Response {
    google_error(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("File not found: {id}."),
        Some("fileId"),
    )
}

fn invalid(location: &str) -> Response {
    google_error(
        StatusCode::BAD_REQUEST,
        "invalid",
        "Invalid Value",
        Some(location),
    )
}

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params.get(name).is_some_and(|v| v == "true")
}

fn page_size(
    params: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, Response> {
    match params.get("pageSize") {
        None => Ok(default),
        Some(raw) => match raw.parse::<usize>() {
            Ok(0) | Err(_) => Err(invalid("pageSize")),
            Ok(n) => Ok(n.min(max)),
        },
    }
}

/// An opaque page token bound to its listing: `offset` and a digest of the request.
fn page_token(offset: usize, binding: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{offset}|{binding}"))
}

fn read_page_token(token: &str, binding: &str) -> Option<usize> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let (offset, bound) = raw.split_once('|')?;
    (bound == binding).then(|| offset.parse().ok()).flatten()
}

fn binding(params: &HashMap<String, String>, epoch: u64, user: &str) -> String {
    let mut keys: Vec<_> = params
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "pageToken" | "pageSize" | "fields"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    keys.sort();
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{epoch}#{user}#{}", keys.join("&")));
    hex::encode(&digest[..8])
}

/// The caller, or the answer refusing it (401, or a scripted fault).
fn caller(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<String, Response> {
    shared.gate(uri, headers)
}

pub async fn files_list(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let user = match caller(&shared, &uri, &headers) {
        Ok(user) => user,
        Err(response) => return response,
    };
    let size = match page_size(&params, 100, MAX_FILES_PAGE) {
        Ok(size) => size,
        Err(response) => return response,
    };
    let clauses = match query::parse(params.get("q").map(String::as_str).unwrap_or("")) {
        Ok(clauses) => clauses,
        Err(message) => {
            return google_error(StatusCode::BAD_REQUEST, "invalid", &message, Some("q"))
        }
    };
    let all_drives = flag(&params, "includeItemsFromAllDrives");
    let supports = flag(&params, "supportsAllDrives");
    let corpora = params.get("corpora").map(String::as_str).unwrap_or("user");
    let drive_id = params.get("driveId").cloned();
    if corpora == "drive" && (drive_id.is_none() || !all_drives || !supports) {
        return google_error(
            StatusCode::FORBIDDEN,
            "teamDriveIdRequiresIncludeItemsFromAllDrives",
            "The driveId parameter requires corpora=drive, includeItemsFromAllDrives=true and supportsAllDrives=true.",
            Some("driveId"),
        );
    }
    let world = shared.world();
    let epoch = shared.epoch();
    let binding = binding(&params, epoch, &user);
    let start = match params.get("pageToken") {
        None => 0,
        Some(token) => match read_page_token(token, &binding) {
            Some(offset) => offset,
            None => return invalid("pageToken"),
        },
    };
    if let Some(drive) = &drive_id {
        match world.drives.get(drive) {
            Some(found) if found.members.contains(&user) => {}
            _ => {
                return google_error(
                    StatusCode::NOT_FOUND,
                    "notFound",
                    &format!("Shared drive not found: {drive}"),
                    Some("driveId"),
                )
            }
        }
    }
    let matching: Vec<&FakeFile> = world
        .files
        .values()
        .filter(|file| !world.roots.values().any(|root| *root == file.id))
        .filter(|file| match corpora {
            "drive" => file.drive_id == drive_id,
            "allDrives" => file.drive_id.is_none() || (all_drives && supports),
            _ => file.drive_id.is_none() || (all_drives && supports),
        })
        .filter(|file| world.visible(&user, file))
        .filter(|file| query::matches(&clauses, file, &user))
        .collect();
    let base = shared.base_url();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(size)
        .map(|file| world.resource(file, &user, &base))
        .collect();
    let mut body = json!({"kind": "drive#fileList", "incompleteSearch": false, "files": page});
    if start + size < matching.len() {
        body["nextPageToken"] = json!(page_token(start + size, &binding));
    }
    drop(world);
    Json(apply_mask(&body, params.get("fields").map(String::as_str))).into_response()
}

/// `files.get`, or the bytes with `alt=media`.
pub async fn files_get(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let user = match caller(&shared, &uri, &headers) {
        Ok(user) => user,
        Err(response) => return response,
    };
    let world = shared.world();
    let id = if id == "root" {
        world.roots.get(&user).cloned().unwrap_or(id)
    } else {
        id
    };
    let Some(file) = visible_file(&world, &user, &id, flag(&params, "supportsAllDrives")) else {
        // A shared drive's root folder has the drive's id.
        if let Some(drive) = world.drives.get(&id).filter(|d| d.members.contains(&user)) {
            let body = json!({"kind": "drive#file", "id": drive.id, "name": drive.name,
                "mimeType": FOLDER, "driveId": drive.id, "trashed": false});
            return Json(apply_mask(&body, params.get("fields").map(String::as_str)))
                .into_response();
        }
        return not_found(&id);
    };
    if params.get("alt").map(String::as_str) == Some("media") {
        if file.is_google() {
            return google_error(
                StatusCode::FORBIDDEN,
                "fileNotDownloadable",
                "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
                Some("alt"),
            );
        }
        let bytes = file.content.clone();
        let mime = file.mime_type.clone();
        drop(world);
        shared.count_download(&id);
        return (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, mime),
                (header::CONTENT_LENGTH, bytes.len().to_string()),
            ],
            bytes,
        )
            .into_response();
    }
    let body = world.resource(file, &user, &shared.base_url());
    Json(apply_mask(&body, params.get("fields").map(String::as_str))).into_response()
}

fn visible_file<'a>(
    world: &'a World,
    user: &str,
    id: &str,
    supports_all_drives: bool,
) -> Option<&'a FakeFile> {
    world
        .files
        .get(id)
        .filter(|file| world.visible(user, file))
        .filter(|file| file.drive_id.is_none() || supports_all_drives)
}

pub async fn files_export(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let user = match caller(&shared, &uri, &headers) {
        Ok(user) => user,
        Err(response) => return response,
    };
    let Some(mime) = params.get("mimeType").cloned() else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "required",
            "Required parameter: mimeType",
            Some("mimeType"),
        );
    };
    let world = shared.world();
    // files.export has no supportsAllDrives parameter: shared-drive items export too.
    let Some(file) = world.files.get(&id).filter(|f| world.visible(&user, f)) else {
        return not_found(&id);
    };
    let bytes: Vec<u8> = match (file.mime_type.as_str(), mime.as_str()) {
        (DOC, "text/markdown" | "text/plain") => file.content.clone(),
        (SLIDES, "text/plain") => file.content.clone(),
        (SHEET, "text/csv") => file
            .sheets
            .first()
            .map(|(_, rows)| csv(rows))
            .unwrap_or_default()
            .into_bytes(),
        _ => {
            return google_error(
                StatusCode::BAD_REQUEST,
                "badRequest",
                "The requested conversion is not supported.",
                Some("mimeType"),
            )
        }
    };
    drop(world);
    if bytes.len() > EXPORT_LIMIT_BYTES {
        return google_error(
            StatusCode::FORBIDDEN,
            "exportSizeLimitExceeded",
            "This file is too large to be exported.",
            None,
        );
    }
    shared.count_export(&id);
    (StatusCode::OK, [(header::CONTENT_TYPE, mime)], bytes).into_response()
}

fn csv(rows: &[Vec<String>]) -> String {
    rows.iter()
        .map(|row| {
            row.iter()
                .map(|cell| {
                    if cell.contains([',', '"', '\n']) {
                        format!("\"{}\"", cell.replace('"', "\"\""))
                    } else {
                        cell.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

pub async fn permissions_list(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let user = match caller(&shared, &uri, &headers) {
        Ok(user) => user,
        Err(response) => return response,
    };
    let size = match page_size(&params, MAX_PERMISSIONS_PAGE, MAX_PERMISSIONS_PAGE) {
        Ok(size) => size,
        Err(response) => return response,
    };
    let world = shared.world();
    let Some(file) = visible_file(&world, &user, &id, flag(&params, "supportsAllDrives")) else {
        return not_found(&id);
    };
    let mut permissions: Vec<Value> = Vec::new();
    if let Some(owner) = &file.owner {
        permissions.push(super::state::Permission::user(owner, "owner").to_json());
    }
    if let Some(drive) = file.drive_id.as_ref().and_then(|d| world.drives.get(d)) {
        for member in &drive.members {
            permissions.push(super::state::Permission::user(member, "organizer").to_json());
        }
    }
    permissions.extend(file.permissions.iter().map(|p| p.to_json()));
    let binding = binding(&params, shared.epoch(), &format!("{user}/{id}"));
    let start = match params.get("pageToken") {
        None => 0,
        Some(token) => match read_page_token(token, &binding) {
            Some(offset) => offset,
            None => return invalid("pageToken"),
        },
    };
    let total = permissions.len();
    let page: Vec<Value> = permissions.into_iter().skip(start).take(size).collect();
    let mut body = json!({"kind": "drive#permissionList", "permissions": page});
    if start + size < total {
        body["nextPageToken"] = json!(page_token(start + size, &binding));
    }
    Json(apply_mask(&body, params.get("fields").map(String::as_str))).into_response()
}

pub async fn drives_list(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let user = match caller(&shared, &uri, &headers) {
        Ok(user) => user,
        Err(response) => return response,
    };
    let size = match page_size(&params, 10, MAX_DRIVES_PAGE) {
        Ok(size) => size,
        Err(response) => return response,
    };
    let world = shared.world();
    let drives: Vec<Value> = world
        .drives
        .values()
        .filter(|d| d.members.contains(&user))
        .map(|d| json!({"kind": "drive#drive", "id": d.id, "name": d.name}))
        .collect();
    let binding = binding(&params, shared.epoch(), &user);
    let start = match params.get("pageToken") {
        None => 0,
        Some(token) => match read_page_token(token, &binding) {
            Some(offset) => offset,
            None => return invalid("pageToken"),
        },
    };
    let total = drives.len();
    let page: Vec<Value> = drives.into_iter().skip(start).take(size).collect();
    let mut body = json!({"kind": "drive#driveList", "drives": page});
    if start + size < total {
        body["nextPageToken"] = json!(page_token(start + size, &binding));
    }
    Json(apply_mask(&body, params.get("fields").map(String::as_str))).into_response()
}

pub async fn drives_get(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let user = match caller(&shared, &uri, &headers) {
        Ok(user) => user,
        Err(response) => return response,
    };
    let world = shared.world();
    match world.drives.get(&id).filter(|d| d.members.contains(&user)) {
        Some(drive) => {
            let body = json!({"kind": "drive#drive", "id": drive.id, "name": drive.name});
            Json(apply_mask(&body, params.get("fields").map(String::as_str))).into_response()
        }
        None => google_error(
            StatusCode::NOT_FOUND,
            "notFound",
            &format!("Shared drive not found: {id}"),
            Some("driveId"),
        ),
    }
}

pub async fn start_page_token(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    if let Err(response) = caller(&shared, &uri, &headers) {
        return response;
    }
    let world = shared.world();
    if params.contains_key("driveId") && !flag(&params, "supportsAllDrives") {
        return google_error(
            StatusCode::FORBIDDEN,
            "teamDrivesParameterNotSupported",
            "The driveId parameter requires supportsAllDrives=true.",
            Some("driveId"),
        );
    }
    Json(json!({"kind": "drive#startPageToken", "startPageToken": world.seq.to_string()}))
        .into_response()
}

/// `changes.list`: the user's changes from the token on, each file once at its latest
/// change, with its current state (`removed` when the user no longer sees it).
pub async fn changes_list(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let user = match caller(&shared, &uri, &headers) {
        Ok(user) => user,
        Err(response) => return response,
    };
    let size = match page_size(&params, 100, MAX_CHANGES_PAGE) {
        Ok(size) => size,
        Err(response) => return response,
    };
    let Some(token) = params.get("pageToken") else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "required",
            "Required parameter: pageToken",
            Some("pageToken"),
        );
    };
    let world = shared.world();
    let from = match token.parse::<u64>() {
        Ok(seq) if seq >= shared.change_floor() && seq <= world.seq => seq,
        _ => return invalid("pageToken"),
    };
    let all_drives =
        flag(&params, "includeItemsFromAllDrives") && flag(&params, "supportsAllDrives");
    let include_removed = flag(&params, "includeRemoved");
    let drive_filter = params.get("driveId").cloned();
    // Latest entry per file at or after `from`, in log order.
    let mut latest: HashMap<&str, usize> = HashMap::new();
    for (index, entry) in world.changes.iter().enumerate() {
        if entry.seq >= from {
            latest.insert(entry.file_id.as_str(), index);
        }
    }
    let base = shared.base_url();
    let mut listed: Vec<(u64, Value)> = Vec::new();
    for (index, entry) in world.changes.iter().enumerate() {
        if entry.seq < from || latest.get(entry.file_id.as_str()) != Some(&index) {
            continue;
        }
        if drive_filter.is_some() && entry.drive_id != drive_filter {
            continue;
        }
        if entry.drive_id.is_some() && !all_drives && drive_filter.is_none() {
            continue;
        }
        let file = world.files.get(&entry.file_id);
        let sees = file.is_some_and(|f| world.visible(&user, f));
        if !sees && !entry.seen_before.contains(&user) {
            continue;
        }
        let mut change = json!({
            "kind": "drive#change",
            "changeType": "file",
            "fileId": entry.file_id,
            "time": super::state::rfc3339(&entry.time),
            "removed": !sees,
        });
        if let Some(drive) = &entry.drive_id {
            change["driveId"] = json!(drive);
        }
        match file {
            Some(file) if sees => change["file"] = world.resource(file, &user, &base),
            _ if !include_removed => continue,
            _ => {}
        }
        listed.push((entry.seq, change));
    }
    let more = listed.len() > size;
    let next_seq = listed.get(size).map(|(seq, _)| *seq);
    let page: Vec<Value> = listed.into_iter().take(size).map(|(_, c)| c).collect();
    let mut body = json!({"kind": "drive#changeList", "changes": page});
    match (more, next_seq) {
        (true, Some(seq)) => body["nextPageToken"] = json!(seq.to_string()),
        _ => body["newStartPageToken"] = json!(world.seq.to_string()),
    }
    drop(world);
    Json(apply_mask(&body, params.get("fields").map(String::as_str))).into_response()
}

/// Sheets v4 `spreadsheets.get`: the sheets' properties.
pub async fn spreadsheet_get(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let user = match caller(&shared, &uri, &headers) {
        Ok(user) => user,
        Err(response) => return response,
    };
    let world = shared.world();
    let Some(file) = world
        .files
        .get(&id)
        .filter(|f| f.mime_type == SHEET && world.visible(&user, f))
    else {
        return sheets_not_found();
    };
    let sheets: Vec<Value> = file
        .sheets
        .iter()
        .enumerate()
        .map(|(index, (title, _))| {
            json!({"properties": {"sheetId": index * 1000, "title": title, "index": index,
                "sheetType": "GRID"}})
        })
        .collect();
    let body = json!({"spreadsheetId": id, "properties": {"title": file.name}, "sheets": sheets});
    Json(apply_mask(&body, params.get("fields").map(String::as_str))).into_response()
}

fn sheets_not_found() -> Response {
    let body = json!({"error": {"code": 404, "message": "Requested entity was not found.",
        "status": "NOT_FOUND"}});
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// Sheets v4 `spreadsheets.values.batchGet` with `ranges` naming whole sheets (`'Title'`).
pub async fn values_batch_get(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let user = match caller(&shared, &uri, &headers) {
        Ok(user) => user,
        Err(response) => return response,
    };
    let ranges: Vec<String> = super::parse_query(uri.query().unwrap_or(""))
        .into_iter()
        .filter(|(k, _)| k == "ranges")
        .map(|(_, v)| v)
        .collect();
    let world = shared.world();
    let Some(file) = world
        .files
        .get(&id)
        .filter(|f| f.mime_type == SHEET && world.visible(&user, f))
    else {
        return sheets_not_found();
    };
    let mut value_ranges = Vec::new();
    for range in &ranges {
        let title = range
            .strip_prefix('\'')
            .and_then(|r| r.strip_suffix('\''))
            .map(|t| t.replace("''", "'"))
            .unwrap_or_else(|| range.clone());
        let Some((_, rows)) = file.sheets.iter().find(|(t, _)| *t == title) else {
            let body = json!({"error": {"code": 400,
                "message": format!("Unable to parse range: {range}"), "status": "INVALID_ARGUMENT"}});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        };
        let width = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let column = (b'A' + (width as u8 - 1).min(25)) as char;
        value_ranges.push(json!({
            "range": format!("'{}'!A1:{column}{}", title.replace('\'', "''"), rows.len().max(1)),
            "majorDimension": "ROWS",
            "values": rows,
        }));
    }
    shared.count_export(&id);
    Json(json!({"spreadsheetId": id, "valueRanges": value_ranges})).into_response()
}
