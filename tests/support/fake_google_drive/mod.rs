//! A fake Google Drive (v3) with the Sheets v4 reads, on loopback, answering the calls the
//! Google Drive connector makes the way Google documents them:
//!
//! - `GET /drive/v3/files` (`q`, `corpora` user|drive|allDrives, `driveId`,
//!   `includeItemsFromAllDrives`, `supportsAllDrives`, `pageSize` ≤ 1000, opaque
//!   `pageToken`/`nextPageToken`, `fields` masks) → `{kind, files, nextPageToken?}`;
//! - `GET /drive/v3/files/{id}` (`fields`, `supportsAllDrives`; `alt=media` streams a
//!   binary's bytes, a Docs Editors file answers 403 `fileNotDownloadable`);
//! - `GET /drive/v3/files/{id}/export?mimeType=` (Docs → text/markdown|text/plain, Sheets →
//!   text/csv of the first sheet only, Slides → text/plain; 10 MB cap,
//!   `exportSizeLimitExceeded`);
//! - `GET /drive/v3/files/{id}/permissions`, `GET /drive/v3/drives`;
//! - `GET /drive/v3/changes/startPageToken` → `{startPageToken}` and
//!   `GET /drive/v3/changes?pageToken=` → `{changes: [{kind, changeType, fileId, time,
//!   removed, file?, driveId?}], nextPageToken | newStartPageToken}`: each file once, at its
//!   latest change, in its current state; `removed` when the caller no longer sees it;
//!   shared-drive items only with `includeItemsFromAllDrives` + `supportsAllDrives`. A
//!   token older than [`FakeGoogleDrive::expire_change_tokens`] answers 400 `invalid`
//!   (location `pageToken`), as Drive answers a token it rejects;
//! - `GET /v4/spreadsheets/{id}` and `GET /v4/spreadsheets/{id}/values:batchGet?ranges=`.
//!
//! Errors are Google's `{"error": {code, message, errors: [{domain, reason, message,
//! location?, locationType?}]}}`. Every request needs a bearer token the [`TokenBook`]
//! knows (401 `authError` otherwise); the token's user is the caller, who sees the files
//! they own, those shared with them (or with a folder above) and their shared drives'.
//! Faults: 403 rate limits (`userRateLimitExceeded`/`rateLimitExceeded`), 429 with
//! `Retry-After`, 5xx.

// Handlers short-circuit with the axum `Response` they answer; boxing it would buy nothing
// in a test fake.
#![allow(clippy::result_large_err)]

mod query;
mod routes;
pub mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use axum::Router;
use chrono::{DateTime, Utc};

use crate::google::TokenBook;
pub use routes::EXPORT_LIMIT_BYTES;
use state::FakeFile;
pub use state::{Permission, World, DOC, DRAWING, FOLDER, SHEET, SLIDES};

/// A request as it reached the fake.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The caller, when the token was good.
    pub user: Option<String>,
}

impl Recorded {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Default)]
struct Control {
    requests: Vec<Recorded>,
    rate_limit_next: u32,
    rate_limit_reason: String,
    too_many_next: u32,
    retry_after_secs: u64,
    fail_next: u32,
    fail_status: u16,
    /// Change tokens below this are refused.
    change_floor: u64,
    /// Bumped to invalidate every listing page token.
    epoch: u64,
    exports: HashMap<String, u32>,
    downloads: HashMap<String, u32>,
}

#[derive(Clone)]
pub(crate) struct Shared {
    world: Arc<Mutex<World>>,
    control: Arc<Mutex<Control>>,
    book: TokenBook,
    base_url: Arc<Mutex<String>>,
}

pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://query.invalid/?{query}"))
        .map(|url| {
            url.query_pairs()
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn base_url(&self) -> String {
        self.base_url
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn epoch(&self) -> u64 {
        self.control().epoch
    }

    fn change_floor(&self) -> u64 {
        self.control().change_floor
    }

    fn count_export(&self, id: &str) {
        *self.control().exports.entry(id.to_owned()).or_default() += 1;
    }

    fn count_download(&self, id: &str) {
        *self.control().downloads.entry(id.to_owned()).or_default() += 1;
    }

    /// Records the request, plays the scripted faults, then identifies the caller.
    fn gate(&self, uri: &Uri, headers: &HeaderMap) -> Result<String, Response> {
        let user = self.book.user_of_headers(headers);
        let mut control = self.control();
        control.requests.push(Recorded {
            path: uri.path().to_owned(),
            query: parse_query(uri.query().unwrap_or_default()),
            user: user.clone(),
        });
        if control.rate_limit_next > 0 {
            control.rate_limit_next -= 1;
            return Err(crate::google::rate_limited(&control.rate_limit_reason));
        }
        if control.too_many_next > 0 {
            control.too_many_next -= 1;
            return Err(crate::google::too_many_requests(control.retry_after_secs));
        }
        if control.fail_next > 0 {
            control.fail_next -= 1;
            let status = axum::http::StatusCode::from_u16(control.fail_status)
                .unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE);
            return Err(routes::google_error(
                status,
                "backendError",
                "Backend Error",
                None,
            ));
        }
        user.ok_or_else(crate::google::unauthorized)
    }
}

/// A file to add: `NewFile::doc("Plan", "# Plan").under(&folder)`.
#[derive(Clone, Debug)]
pub struct NewFile {
    name: String,
    mime_type: String,
    content: Vec<u8>,
    sheets: Vec<(String, Vec<Vec<String>>)>,
    parent: Option<String>,
    owner: Option<String>,
    drive: Option<String>,
    modified: Option<DateTime<Utc>>,
    permissions: Vec<Permission>,
}

impl NewFile {
    fn new(name: &str, mime_type: &str, content: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            mime_type: mime_type.into(),
            content,
            sheets: Vec::new(),
            parent: None,
            owner: None,
            drive: None,
            modified: None,
            permissions: Vec::new(),
        }
    }

    pub fn folder(name: &str) -> Self {
        Self::new(name, FOLDER, Vec::new())
    }

    /// A Google Doc whose markdown export is `markdown`.
    pub fn doc(name: &str, markdown: &str) -> Self {
        Self::new(name, DOC, markdown.as_bytes().to_vec())
    }

    pub fn slides(name: &str, text: &str) -> Self {
        Self::new(name, SLIDES, text.as_bytes().to_vec())
    }

    pub fn sheet(name: &str, sheets: &[(&str, &[&[&str]])]) -> Self {
        let mut file = Self::new(name, SHEET, Vec::new());
        file.sheets = sheets
            .iter()
            .map(|(title, rows)| {
                let rows = rows
                    .iter()
                    .map(|row| row.iter().map(|c| c.to_string()).collect())
                    .collect();
                (title.to_string(), rows)
            })
            .collect();
        file
    }

    pub fn binary(name: &str, mime_type: &str, bytes: &[u8]) -> Self {
        Self::new(name, mime_type, bytes.to_vec())
    }

    pub fn drawing(name: &str) -> Self {
        Self::new(name, DRAWING, Vec::new())
    }

    pub fn under(mut self, parent: &str) -> Self {
        self.parent = Some(parent.into());
        self
    }

    pub fn owner(mut self, user: &str) -> Self {
        self.owner = Some(user.into());
        self
    }

    pub fn in_drive(mut self, drive: &str) -> Self {
        self.drive = Some(drive.into());
        self
    }

    /// Keeps an old `modifiedTime` (an upload that preserves the file's mtime).
    pub fn modified_at(mut self, time: DateTime<Utc>) -> Self {
        self.modified = Some(time);
        self
    }

    pub fn shared_with(mut self, permission: Permission) -> Self {
        self.permissions.push(permission);
        self
    }
}

/// What a test sees of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub parents: Vec<String>,
    pub drive_id: Option<String>,
    pub owner: Option<String>,
    pub trashed: bool,
}

/// A fake Drive; the server stops when this is dropped.
pub struct FakeGoogleDrive {
    shared: Shared,
    base_url: String,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGoogleDrive {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl FakeGoogleDrive {
    /// A Drive with these users (each with an empty My Drive); tokens come from `book`.
    pub async fn start(book: TokenBook, users: &[&str]) -> Self {
        let shared = Shared {
            world: Arc::new(Mutex::new(World::new(users))),
            control: Arc::new(Mutex::new(Control {
                fail_status: 503,
                rate_limit_reason: "userRateLimitExceeded".into(),
                ..Control::default()
            })),
            book,
            base_url: Arc::default(),
        };
        let router = Router::new()
            .route("/drive/v3/files", get(routes::files_list))
            .route("/drive/v3/files/{id}", get(routes::files_get))
            .route("/drive/v3/files/{id}/export", get(routes::files_export))
            .route(
                "/drive/v3/files/{id}/permissions",
                get(routes::permissions_list),
            )
            .route("/drive/v3/drives", get(routes::drives_list))
            .route("/drive/v3/drives/{id}", get(routes::drives_get))
            .route(
                "/drive/v3/changes/startPageToken",
                get(routes::start_page_token),
            )
            .route("/drive/v3/changes", get(routes::changes_list))
            .route("/v4/spreadsheets/{id}", get(routes::spreadsheet_get))
            .route(
                "/v4/spreadsheets/{id}/values:batchGet",
                get(routes::values_batch_get),
            )
            .fallback(|| async {
                routes::google_error(
                    axum::http::StatusCode::NOT_FOUND,
                    "notFound",
                    "Not Found",
                    None,
                )
                .into_response()
            })
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        *shared.base_url.lock().expect("base url") = base_url.clone();
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let handle = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("fake Drive");
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

    /// What `TRIBUTARY_API_URL_GOOGLE_DRIVE` would be.
    pub fn drive_base(&self) -> reqwest::Url {
        reqwest::Url::parse(&format!("{}/drive/v3", self.base_url)).expect("a URL")
    }

    /// What `TRIBUTARY_API_URL_GOOGLE_SHEETS` would be.
    pub fn sheets_base(&self) -> reqwest::Url {
        reqwest::Url::parse(&format!("{}/v4", self.base_url)).expect("a URL")
    }

    pub fn root_of(&self, user: &str) -> String {
        self.shared
            .world()
            .roots
            .get(user)
            .cloned()
            .expect("a user")
    }

    pub fn create_shared_drive(&self, name: &str, members: &[&str]) -> String {
        let mut world = self.shared.world();
        let id = world.new_id("drive");
        world.drives.insert(
            id.clone(),
            state::FakeSharedDrive {
                id: id.clone(),
                name: name.into(),
                members: members.iter().map(|m| m.to_string()).collect(),
            },
        );
        id
    }

    /// Adds a file (in its owner's My Drive root, or its shared drive's, unless `under` says).
    pub fn add(&self, new: NewFile) -> String {
        let mut world = self.shared.world();
        add_to(&mut world, new)
    }

    /// `n` files of every kind (Docs, Sheets, Slides, PDFs, text) in folders of 100 under
    /// `parent`, owned by `owner`; returns the ids of the files (not the folders).
    pub fn populate(&self, owner: &str, parent: &str, n: usize) -> Vec<String> {
        let mut world = self.shared.world();
        let mut ids = Vec::with_capacity(n);
        let mut folder = parent.to_owned();
        for index in 0..n {
            if index % 100 == 0 {
                folder = add_to(
                    &mut world,
                    NewFile::folder(&format!("Batch {}", index / 100))
                        .owner(owner)
                        .under(parent),
                );
            }
            let name = format!("File {index:05}");
            let new = match index % 5 {
                0 => NewFile::doc(&name, &format!("# {name}\n\nBody of document {index}.\n")),
                1 => NewFile::sheet(&name, &[("Data", &[&["n", "square"], &["2", "4"]])]),
                2 => NewFile::slides(&name, &format!("Slide deck {index}")),
                3 => NewFile::binary(
                    &format!("{name}.pdf"),
                    "application/pdf",
                    format!("%PDF-1.4 document {index}").as_bytes(),
                ),
                _ => NewFile::binary(
                    &format!("{name}.txt"),
                    "text/plain",
                    format!("plain text {index}\n").as_bytes(),
                ),
            };
            ids.push(add_to(&mut world, new.owner(owner).under(&folder)));
        }
        ids
    }

    fn mutate(&self, id: &str, edit: bool, change: impl FnOnce(&mut FakeFile)) {
        self.shared.world().mutate(id, edit, change);
    }

    /// New content (a Doc's markdown, a binary's bytes): new version and modifiedTime.
    pub fn edit(&self, id: &str, content: &str) {
        self.mutate(id, true, |file| file.content = content.as_bytes().to_vec());
    }

    pub fn edit_sheets(&self, id: &str, sheets: &[(&str, &[&[&str]])]) {
        let new = NewFile::sheet("", sheets).sheets;
        self.mutate(id, true, move |file| file.sheets = new);
    }

    pub fn rename(&self, id: &str, name: &str) {
        self.mutate(id, false, |file| file.name = name.into());
    }

    pub fn move_to(&self, id: &str, parent: &str) {
        let drive = {
            let world = self.shared.world();
            world
                .files
                .get(parent)
                .and_then(|p| p.drive_id.clone())
                .or_else(|| world.drives.contains_key(parent).then(|| parent.to_owned()))
        };
        self.mutate(id, false, |file| {
            file.parents = vec![parent.into()];
            file.drive_id = drive;
        });
    }

    /// Trash does not touch `modifiedTime`; neither does a restore.
    pub fn trash(&self, id: &str) {
        self.mutate(id, false, |file| file.trashed = true);
    }

    pub fn restore(&self, id: &str) {
        self.mutate(id, false, |file| file.trashed = false);
    }

    pub fn share(&self, id: &str, permission: Permission) {
        self.mutate(id, false, |file| file.permissions.push(permission));
    }

    pub fn unshare(&self, id: &str, email: &str) {
        self.mutate(id, false, |file| {
            file.permissions
                .retain(|p| p.email.as_deref() != Some(email))
        });
    }

    /// Someone opened the file: a change with nothing changed (Drive lists view-only touches).
    pub fn touch_view(&self, id: &str) {
        let mut world = self.shared.world();
        let viewers = world.viewers(id);
        world.record(id, viewers);
    }

    /// Deletes the file (and, for a folder, everything below it) for good.
    pub fn delete(&self, id: &str) {
        let mut world = self.shared.world();
        let mut gone = world.descendants(id);
        gone.push(id.to_owned());
        for file_id in gone {
            let before = world.viewers(&file_id);
            world.files.remove(&file_id);
            world.record(&file_id, before);
        }
    }

    /// The next `n` API requests answer 403 with this `usageLimits` reason.
    pub fn rate_limit_next(&self, n: u32, reason: &str) {
        let mut control = self.shared.control();
        control.rate_limit_next = n;
        control.rate_limit_reason = reason.into();
    }

    /// The next `n` API requests answer 429 with `Retry-After: seconds`.
    pub fn too_many_next(&self, n: u32, seconds: u64) {
        let mut control = self.shared.control();
        control.too_many_next = n;
        control.retry_after_secs = seconds;
    }

    pub fn fail_next(&self, n: u32, status: u16) {
        let mut control = self.shared.control();
        control.fail_next = n;
        control.fail_status = status;
    }

    /// Every change page token handed out so far is refused from now on (400 `invalid`).
    pub fn expire_change_tokens(&self) {
        let seq = self.shared.world().seq;
        self.shared.control().change_floor = seq;
    }

    /// Every files.list/permissions/drives page token handed out so far is refused.
    pub fn expire_page_tokens(&self) {
        self.shared.control().epoch += 1;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.control().requests.clone()
    }

    pub fn clear_requests(&self) {
        let mut control = self.shared.control();
        control.requests.clear();
        control.exports.clear();
        control.downloads.clear();
    }

    /// Exports (files.export, Sheets values) and alt=media downloads of a file so far.
    pub fn fetches_of(&self, id: &str) -> u32 {
        let control = self.shared.control();
        control.exports.get(id).copied().unwrap_or(0)
            + control.downloads.get(id).copied().unwrap_or(0)
    }

    /// Every exported or downloaded file so far.
    pub fn fetches(&self) -> u32 {
        let control = self.shared.control();
        control.exports.values().sum::<u32>() + control.downloads.values().sum::<u32>()
    }

    pub fn files(&self) -> Vec<FileInfo> {
        let world = self.shared.world();
        world
            .files
            .values()
            .filter(|file| !world.roots.values().any(|root| *root == file.id))
            .map(|file| FileInfo {
                id: file.id.clone(),
                name: file.name.clone(),
                mime_type: file.mime_type.clone(),
                parents: file.parents.clone(),
                drive_id: file.drive_id.clone(),
                owner: file.owner.clone(),
                trashed: file.trashed,
            })
            .collect()
    }

    /// Every file below `folder`, at any depth.
    pub fn descendants(&self, folder: &str) -> Vec<String> {
        self.shared.world().descendants(folder)
    }
}

fn add_to(world: &mut World, new: NewFile) -> String {
    let kind = if new.mime_type == FOLDER {
        "fold"
    } else {
        "file"
    };
    let id = world.new_id(kind);
    let parent_drive = new.parent.as_ref().and_then(|parent| {
        world
            .files
            .get(parent)
            .and_then(|p| p.drive_id.clone())
            .or_else(|| world.drives.contains_key(parent).then(|| parent.clone()))
    });
    let drive = new.drive.clone().or(parent_drive);
    let parent = match (&new.parent, &drive, &new.owner) {
        (Some(parent), _, _) => parent.clone(),
        (None, Some(drive), _) => drive.clone(),
        (None, None, Some(owner)) => world.roots.get(owner).cloned().unwrap_or_default(),
        (None, None, None) => world
            .users
            .first()
            .and_then(|u| world.roots.get(u))
            .cloned()
            .unwrap_or_default(),
    };
    let owner = match &drive {
        Some(_) => None,
        None => new.owner.clone().or_else(|| {
            world
                .files
                .get(&parent)
                .and_then(|p| p.owner.clone())
                .or_else(|| world.users.first().cloned())
        }),
    };
    let now = world.tick();
    world.files.insert(
        id.clone(),
        FakeFile {
            id: id.clone(),
            name: new.name,
            mime_type: new.mime_type,
            parents: vec![parent],
            drive_id: drive,
            owner,
            trashed: false,
            created: now,
            modified: new.modified.unwrap_or(now),
            version: 1,
            content: new.content,
            sheets: new.sheets,
            permissions: new.permissions,
            revision: 1,
        },
    );
    world.record(&id, Default::default());
    id
}
