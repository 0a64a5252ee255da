//! The fake's sites, drives, items, pages and their change sequence; mutations for tests.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::microsoft::CONNECTED_USER;

#[derive(Clone, Debug)]
pub struct FakeSite {
    pub id: String,
    pub host: String,
    /// Server-relative, `/sites/Eng`.
    pub path: String,
    pub display_name: String,
    pub locked: bool,
    pub denied: bool,
    pub pages: Vec<FakePage>,
    /// The page list answers 400 to `$expand=canvasLayout` (as Graph sometimes does).
    pub refuse_list_expand: bool,
}

impl FakeSite {
    pub fn web_url(&self) -> String {
        format!(
            "https://{}{}",
            self.host,
            if self.path == "/" { "" } else { &self.path }
        )
    }
}

#[derive(Clone, Debug)]
pub struct FakePage {
    pub id: String,
    pub name: String,
    pub title: String,
    pub version: u64,
    pub modified: String,
    pub canvas: Value,
    pub deleted: bool,
}

#[derive(Clone, Debug)]
pub struct FakeDrive {
    pub id: String,
    pub name: String,
    pub site: Option<String>,
    /// A OneDrive's user (lower-cased).
    pub owner: Option<String>,
    pub root: String,
}

#[derive(Clone, Debug)]
pub struct FakeItem {
    pub id: String,
    pub drive: String,
    pub parent: Option<String>,
    pub name: String,
    pub folder: bool,
    pub content: Vec<u8>,
    pub mime: String,
    pub created: String,
    pub modified: String,
    pub author: (String, String),
    pub editor: (String, String),
    pub deleted: bool,
    /// The change sequence of the item's latest change.
    pub seq: u64,
    /// Bumps on every change (eTag); `content_version` only on content changes (cTag).
    pub version: u64,
    pub content_version: u64,
    pub permissions: Vec<Value>,
}

/// A file to add.
#[derive(Clone, Debug)]
pub struct NewFile {
    pub name: String,
    pub content: Vec<u8>,
    pub mime: String,
    pub author: (String, String),
}

impl NewFile {
    pub fn new(name: &str, content: &[u8]) -> Self {
        Self {
            name: name.to_owned(),
            content: content.to_vec(),
            mime: guess_mime(name).to_owned(),
            author: ("Adele Vance".into(), CONNECTED_USER.into()),
        }
    }

    pub fn by(mut self, name: &str, email: &str) -> Self {
        self.author = (name.to_owned(), email.to_owned());
        self
    }
}

fn guess_mime(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("pdf") => "application/pdf",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("txt") => "text/plain",
        Some("md") => "text/markdown",
        Some("html") => "text/html",
        Some("csv") => "text/csv",
        _ => "application/octet-stream",
    }
}

/// A download as it reached the download origin.
#[derive(Clone, Debug)]
pub struct DownloadRecord {
    pub path: String,
    pub authorization: Option<String>,
}

/// An enumeration in progress: the item ids it serves and the token it ends with.
#[derive(Clone, Debug)]
pub(super) struct Session {
    pub(super) drive: String,
    pub(super) ids: Vec<String>,
    pub(super) end_token: u64,
    pub(super) initial: bool,
}

/// Sites, drives, items and their changes.
#[derive(Default)]
pub struct DrivesWorld {
    pub sites: Vec<FakeSite>,
    pub drives: Vec<FakeDrive>,
    pub items: BTreeMap<String, FakeItem>,
    pub(super) users: HashMap<String, String>,
    pub(super) sessions: Vec<Session>,
    seq: u64,
    counter: u64,
    /// Delta tokens below this answer 410 `resyncRequired`.
    pub(super) token_floor: u64,
    /// Where `/content` redirects to (another origin); empty: this server's `_download`.
    pub download_base: String,
    pub downloads: Vec<DownloadRecord>,
    pub content_fetches: HashMap<String, u32>,
}

fn time(minutes: u64) -> String {
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z").expect("time");
    (base + chrono::Duration::minutes(minutes as i64))
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl DrivesWorld {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    fn guid(&mut self) -> String {
        let n = self.next();
        format!("{n:08x}-1370-44e7-a1f5-{n:012x}")
    }

    /// A site at `https://{host}{path}`; returns its Graph id.
    pub fn add_site(&mut self, host: &str, path: &str, name: &str) -> String {
        let id = format!("{host},{},{}", self.guid(), self.guid());
        self.sites.push(FakeSite {
            id: id.clone(),
            host: host.to_owned(),
            path: path.to_owned(),
            display_name: name.to_owned(),
            locked: false,
            denied: false,
            pages: Vec::new(),
            refuse_list_expand: false,
        });
        id
    }

    fn add_drive(&mut self, name: &str, site: Option<String>, owner: Option<String>) -> String {
        let n = self.next();
        let id = format!("b!drv{n:04}Zx9");
        let root = format!("01ROOT{n:06}");
        let seq = self.bump();
        self.items.insert(
            root.clone(),
            FakeItem {
                id: root.clone(),
                drive: id.clone(),
                parent: None,
                name: "root".into(),
                folder: true,
                content: Vec::new(),
                mime: String::new(),
                created: time(0),
                modified: time(0),
                author: ("System".into(), String::new()),
                editor: ("System".into(), String::new()),
                deleted: false,
                seq,
                version: 1,
                content_version: 1,
                permissions: Vec::new(),
            },
        );
        self.drives.push(FakeDrive {
            id: id.clone(),
            name: name.to_owned(),
            site,
            owner,
            root,
        });
        id
    }

    /// A document library of a site.
    pub fn add_library(&mut self, site: &str, name: &str) -> String {
        self.add_drive(name, Some(site.to_owned()), None)
    }

    /// A user's OneDrive.
    pub fn add_user_drive(&mut self, upn: &str) -> String {
        let id = self.add_drive("OneDrive", None, Some(upn.to_ascii_lowercase()));
        self.users.insert(upn.to_ascii_lowercase(), id.clone());
        id
    }

    pub fn drive(&self, id: &str) -> Option<&FakeDrive> {
        self.drives.iter().find(|d| d.id == id)
    }

    pub fn site(&self, id: &str) -> Option<&FakeSite> {
        self.sites.iter().find(|s| s.id == id)
    }

    pub(super) fn site_mut(&mut self, id: &str) -> Option<&mut FakeSite> {
        self.sites.iter_mut().find(|s| s.id == id)
    }

    pub fn root_of(&self, drive: &str) -> String {
        self.drive(drive).map(|d| d.root.clone()).expect("a drive")
    }

    fn insert(
        &mut self,
        drive: &str,
        parent: Option<&str>,
        name: &str,
        folder: bool,
        file: Option<NewFile>,
    ) -> String {
        let n = self.next();
        let id = format!("01ITEM{n:07}");
        let parent = parent
            .map(str::to_owned)
            .unwrap_or_else(|| self.root_of(drive));
        let seq = self.bump();
        let (content, mime, author) = match file {
            Some(f) => (f.content, f.mime, f.author),
            None => (
                Vec::new(),
                String::new(),
                ("Adele Vance".into(), CONNECTED_USER.into()),
            ),
        };
        self.items.insert(
            id.clone(),
            FakeItem {
                id: id.clone(),
                drive: drive.to_owned(),
                parent: Some(parent),
                name: name.to_owned(),
                folder,
                content,
                mime,
                created: time(seq),
                modified: time(seq),
                editor: author.clone(),
                author,
                deleted: false,
                seq,
                version: 1,
                content_version: 1,
                permissions: Vec::new(),
            },
        );
        id
    }

    pub fn add_folder(&mut self, drive: &str, parent: Option<&str>, name: &str) -> String {
        self.insert(drive, parent, name, true, None)
    }

    pub fn add_file(&mut self, drive: &str, parent: Option<&str>, file: NewFile) -> String {
        let name = file.name.clone();
        self.insert(drive, parent, &name, false, Some(file))
    }

    fn change(&mut self, id: &str, apply: impl FnOnce(&mut FakeItem)) {
        let seq = self.bump();
        let item = self.items.get_mut(id).expect("an item");
        apply(item);
        item.seq = seq;
        item.version += 1;
    }

    pub fn edit(&mut self, id: &str, content: &[u8]) {
        let at = time(self.seq + 1);
        self.change(id, |item| {
            item.content = content.to_vec();
            item.content_version += 1;
            item.modified = at;
        });
    }

    pub fn rename(&mut self, id: &str, name: &str) {
        let name = name.to_owned();
        self.change(id, |item| item.name = name);
    }

    pub fn move_to(&mut self, id: &str, parent: &str) {
        let parent = parent.to_owned();
        self.change(id, |item| item.parent = Some(parent));
    }

    /// A metadata-only change (a column edited, a view): eTag moves, content does not.
    pub fn touch(&mut self, id: &str) {
        self.change(id, |_| {});
    }

    pub fn set_permissions(&mut self, id: &str, permissions: Vec<Value>) {
        self.change(id, |item| item.permissions = permissions);
    }

    /// A copy keeps the original's `lastModifiedDateTime` (the pitfall of filtering by it).
    pub fn copy(&mut self, id: &str, parent: &str, name: &str) -> String {
        let original = self.items.get(id).cloned().expect("an item");
        let drive = original.drive.clone();
        let new_id = self.insert(
            &drive,
            Some(parent),
            name,
            false,
            Some(NewFile {
                name: name.into(),
                content: original.content.clone(),
                mime: original.mime.clone(),
                author: original.author.clone(),
            }),
        );
        let item = self.items.get_mut(&new_id).expect("the copy");
        item.modified = original.modified.clone();
        item.created = original.created.clone();
        new_id
    }

    fn subtree(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![id.to_owned()];
        while let Some(current) = stack.pop() {
            for child in self
                .items
                .values()
                .filter(|i| i.parent.as_deref() == Some(current.as_str()))
            {
                stack.push(child.id.clone());
                out.push(child.id.clone());
            }
        }
        out
    }

    /// Deletes an item (a folder with everything below it: each reported deleted).
    pub fn delete(&mut self, id: &str) {
        for child in self.subtree(id) {
            if !self.items[&child].deleted {
                self.change(&child, |item| item.deleted = true);
            }
        }
        self.change(id, |item| item.deleted = true);
    }

    /// Restores a deleted item (and what was below it) from the recycle bin.
    pub fn restore(&mut self, id: &str) {
        self.change(id, |item| item.deleted = false);
        for child in self.subtree(id) {
            self.change(&child, |item| item.deleted = false);
        }
    }

    /// Every delta token issued so far answers 410 `resyncRequired`.
    pub fn expire_delta_tokens(&mut self) {
        self.token_floor = self.seq + 1;
    }

    pub fn lock_site(&mut self, site: &str, locked: bool) {
        self.site_mut(site).expect("a site").locked = locked;
    }

    pub fn deny_site(&mut self, site: &str, denied: bool) {
        self.site_mut(site).expect("a site").denied = denied;
    }

    pub fn refuse_page_list_expand(&mut self, site: &str) {
        self.site_mut(site).expect("a site").refuse_list_expand = true;
    }

    /// A modern page; `canvas` is its `canvasLayout`.
    pub fn add_page(&mut self, site: &str, name: &str, title: &str, canvas: Value) -> String {
        let id = self.guid();
        let at = time(self.bump());
        self.site_mut(site).expect("a site").pages.push(FakePage {
            id: id.clone(),
            name: name.to_owned(),
            title: title.to_owned(),
            version: 1,
            modified: at,
            canvas,
            deleted: false,
        });
        id
    }

    pub fn edit_page(&mut self, site: &str, page: &str, canvas: Value) {
        let at = time(self.bump());
        let site = self.site_mut(site).expect("a site");
        let page = site
            .pages
            .iter_mut()
            .find(|p| p.id == page)
            .expect("a page");
        page.canvas = canvas;
        page.version += 1;
        page.modified = at;
    }

    pub fn delete_page(&mut self, site: &str, page: &str) {
        let site = self.site_mut(site).expect("a site");
        site.pages.retain(|p| p.id != page);
    }

    /// `count` files in folders of 100 below the drive's root; their ids.
    pub fn populate(&mut self, drive: &str, count: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(count);
        let mut folder = String::new();
        for index in 0..count {
            if index % 100 == 0 {
                folder = self.add_folder(drive, None, &format!("Batch {}", index / 100));
            }
            let name = if index % 2 == 0 {
                format!("File {index}.txt")
            } else {
                format!("File {index}.pdf")
            };
            let body = format!("content of file {index} — {}", "lorem ipsum ".repeat(8));
            ids.push(self.add_file(drive, Some(&folder), NewFile::new(&name, body.as_bytes())));
        }
        ids
    }

    /// The folder path of an item (`/A/b.txt`).
    pub fn path_of(&self, id: &str) -> String {
        let mut names = Vec::new();
        let mut current = self.items.get(id);
        while let Some(item) = current {
            if item.parent.is_none() {
                break;
            }
            names.push(item.name.clone());
            current = item.parent.as_ref().and_then(|p| self.items.get(p));
        }
        names.reverse();
        format!("/{}", names.join("/"))
    }

    /// The item's JSON as Graph gives it (every field; the routes apply `$select`).
    pub(super) fn item_json(&self, item: &FakeItem, graph_base: &str) -> Value {
        let drive = self.drive(&item.drive);
        if item.deleted {
            // ODB omits the name and cTag of a deleted item.
            return json!({
                "id": item.id,
                "deleted": {"state": "deleted"},
                "parentReference": {"driveId": item.drive, "driveType": "documentLibrary"},
                "folder": if item.folder { Some(json!({"childCount": 0})) } else { None },
                "file": if item.folder { None } else { Some(json!({})) },
            });
        }
        let site = drive
            .and_then(|d| d.site.as_deref())
            .and_then(|s| self.site(s));
        let web_base = match (site, drive) {
            (Some(site), Some(drive)) => {
                format!("{}/{}", site.web_url(), drive.name.replace(' ', "%20"))
            }
            (_, Some(drive)) => format!(
                "https://contoso-my.sharepoint.com/personal/{}/Documents",
                drive
                    .owner
                    .clone()
                    .unwrap_or_default()
                    .replace(['@', '.'], "_")
            ),
            _ => graph_base.to_owned(),
        };
        let mut value = json!({
            "id": item.id,
            "name": item.name,
            "eTag": format!("\"{{{}}},{}\"", item.id, item.version),
            "cTag": format!("\"c:{{{}}},{}\"", item.id, item.content_version),
            "createdDateTime": item.created,
            "lastModifiedDateTime": item.modified,
            "webUrl": format!("{web_base}{}", self.path_of(&item.id).replace(' ', "%20")),
            "size": item.content.len(),
            "createdBy": {"user": {"displayName": item.author.0, "email": item.author.1}},
            "lastModifiedBy": {"user": {"displayName": item.editor.0, "email": item.editor.1}},
            "parentReference": {"driveId": item.drive, "driveType": if site.is_some() { "documentLibrary" } else { "business" }},
        });
        if let Some(parent) = &item.parent {
            value["parentReference"]["id"] = json!(parent);
        } else {
            value["root"] = json!({});
            value["name"] = json!("root");
        }
        if item.folder {
            let children = self
                .items
                .values()
                .filter(|i| i.parent.as_deref() == Some(item.id.as_str()) && !i.deleted)
                .count();
            value["folder"] = json!({"childCount": children});
        } else {
            let hash = Sha256::digest(&item.content);
            value["file"] = json!({
                "mimeType": item.mime,
                "hashes": {"quickXorHash": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &hash[..20])},
            });
        }
        value
    }
}
