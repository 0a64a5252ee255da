//! The fake Drive's world: users, shared drives, files (folders, Google Docs/Sheets/Slides,
//! binaries), who sees what, and the change log every mutation appends to.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

pub const FOLDER: &str = "application/vnd.google-apps.folder";
pub const DOC: &str = "application/vnd.google-apps.document";
pub const SHEET: &str = "application/vnd.google-apps.spreadsheet";
pub const SLIDES: &str = "application/vnd.google-apps.presentation";
pub const DRAWING: &str = "application/vnd.google-apps.drawing";

/// A permission as Drive's `permissions` resource has it.
#[derive(Clone, Debug, PartialEq)]
pub struct Permission {
    pub id: String,
    /// `user`, `group`, `domain` or `anyone`.
    pub kind: String,
    pub email: Option<String>,
    pub domain: Option<String>,
    pub role: String,
}

impl Permission {
    pub fn user(email: &str, role: &str) -> Self {
        Self {
            id: format!("perm-{}", email.replace(['@', '.'], "-")),
            kind: "user".into(),
            email: Some(email.into()),
            domain: None,
            role: role.into(),
        }
    }

    pub fn domain(domain: &str) -> Self {
        Self {
            id: format!("perm-domain-{domain}"),
            kind: "domain".into(),
            email: None,
            domain: Some(domain.into()),
            role: "reader".into(),
        }
    }

    pub fn anyone() -> Self {
        Self {
            id: "anyoneWithLink".into(),
            kind: "anyone".into(),
            email: None,
            domain: None,
            role: "reader".into(),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "kind": "drive#permission",
            "id": self.id,
            "type": self.kind,
            "role": self.role,
        });
        if let Some(email) = &self.email {
            value["emailAddress"] = json!(email);
        }
        if let Some(domain) = &self.domain {
            value["domain"] = json!(domain);
        }
        value
    }
}

#[derive(Clone, Debug)]
pub struct FakeFile {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub parents: Vec<String>,
    /// Set for items of a shared drive.
    pub drive_id: Option<String>,
    /// My Drive items: the owner (shared-drive items have none).
    pub owner: Option<String>,
    pub trashed: bool,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub version: u64,
    /// A binary's bytes, a Doc's markdown, a Slides deck's text.
    pub content: Vec<u8>,
    /// A spreadsheet's sheets: title and rows.
    pub sheets: Vec<(String, Vec<Vec<String>>)>,
    pub permissions: Vec<Permission>,
    pub revision: u64,
}

impl FakeFile {
    pub fn is_google(&self) -> bool {
        self.mime_type.starts_with("application/vnd.google-apps.")
    }

    pub fn md5(&self) -> Option<String> {
        (!self.is_google()).then(|| {
            use sha2::Digest as _;
            // A stand-in with the shape of an MD5 (32 hex chars) derived from the bytes.
            hex::encode(&sha2::Sha256::digest(&self.content)[..16])
        })
    }
}

#[derive(Clone, Debug)]
pub struct FakeSharedDrive {
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
}

/// One entry of the change log: `file_id` changed at `seq`; who could see it before.
#[derive(Clone, Debug)]
pub struct ChangeEntry {
    pub seq: u64,
    pub file_id: String,
    pub drive_id: Option<String>,
    pub time: DateTime<Utc>,
    pub seen_before: BTreeSet<String>,
}

#[derive(Debug)]
pub struct World {
    pub users: Vec<String>,
    pub domain: String,
    pub drives: BTreeMap<String, FakeSharedDrive>,
    pub files: BTreeMap<String, FakeFile>,
    /// Each user's My Drive root folder id.
    pub roots: BTreeMap<String, String>,
    pub changes: Vec<ChangeEntry>,
    pub seq: u64,
    pub clock: DateTime<Utc>,
    next_id: u64,
}

pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

pub fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl World {
    pub fn new(users: &[&str]) -> Self {
        let mut world = Self {
            users: users.iter().map(|u| u.to_string()).collect(),
            domain: users
                .first()
                .and_then(|u| u.split_once('@'))
                .map(|(_, d)| d.to_owned())
                .unwrap_or_else(|| "example.com".into()),
            drives: BTreeMap::new(),
            files: BTreeMap::new(),
            roots: BTreeMap::new(),
            changes: Vec::new(),
            seq: 1,
            clock: base_time(),
            next_id: 1,
        };
        for user in users {
            let id = world.new_id("root");
            world.roots.insert(user.to_string(), id.clone());
            world.files.insert(
                id.clone(),
                FakeFile {
                    id,
                    name: "My Drive".into(),
                    mime_type: FOLDER.into(),
                    parents: Vec::new(),
                    drive_id: None,
                    owner: Some(user.to_string()),
                    trashed: false,
                    created: base_time(),
                    modified: base_time(),
                    version: 1,
                    content: Vec::new(),
                    sheets: Vec::new(),
                    permissions: Vec::new(),
                    revision: 1,
                },
            );
        }
        world
    }

    /// Drive-like ids: 33 characters of `[A-Za-z0-9_-]`, unique and ordered by creation.
    pub fn new_id(&mut self, kind: &str) -> String {
        let n = self.next_id;
        self.next_id += 1;
        let stem = format!("1{kind}{n:08}");
        format!("{stem:x<33}").chars().take(33).collect()
    }

    pub fn tick(&mut self) -> DateTime<Utc> {
        self.clock += Duration::seconds(7);
        self.clock
    }

    /// Whether `user` can see `file` (ignoring trash): its owner, a member of its shared
    /// drive, or someone it (or a folder above it) is shared with.
    pub fn visible(&self, user: &str, file: &FakeFile) -> bool {
        let mut current = Some(file);
        let mut depth = 0;
        while let Some(item) = current {
            if item.owner.as_deref() == Some(user) {
                return true;
            }
            if let Some(drive) = item.drive_id.as_ref().and_then(|d| self.drives.get(d)) {
                if drive.members.iter().any(|m| m == user) {
                    return true;
                }
            }
            if item.permissions.iter().any(|p| {
                p.email.as_deref() == Some(user)
                    || p.kind == "anyone"
                    || (p.kind == "domain" && user.ends_with(&format!("@{}", self.domain)))
            }) {
                return true;
            }
            depth += 1;
            if depth > 64 {
                return false;
            }
            current = item.parents.first().and_then(|p| self.files.get(p));
        }
        false
    }

    pub fn viewers(&self, file_id: &str) -> BTreeSet<String> {
        match self.files.get(file_id) {
            Some(file) => self
                .users
                .iter()
                .filter(|u| self.visible(u, file))
                .cloned()
                .collect(),
            None => BTreeSet::new(),
        }
    }

    /// Appends a change for `file_id` (call before the mutation with the viewers then).
    pub fn record(&mut self, file_id: &str, seen_before: BTreeSet<String>) {
        let drive_id = self.files.get(file_id).and_then(|f| f.drive_id.clone());
        let time = self.tick();
        self.changes.push(ChangeEntry {
            seq: self.seq,
            file_id: file_id.to_owned(),
            drive_id,
            time,
            seen_before,
        });
        self.seq += 1;
    }

    /// A mutation of one file that leaves a change behind; `content` says whether it is an
    /// edit (new version and modifiedTime).
    pub fn mutate(&mut self, file_id: &str, edit: bool, change: impl FnOnce(&mut FakeFile)) {
        let before = self.viewers(file_id);
        let now = self.tick();
        if let Some(file) = self.files.get_mut(file_id) {
            change(file);
            file.version += 1;
            if edit {
                file.modified = now;
                file.revision += 1;
            }
        }
        self.record(file_id, before);
    }

    /// Every file below `folder` (any depth), folders included.
    pub fn descendants(&self, folder: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut queue = vec![folder.to_owned()];
        while let Some(next) = queue.pop() {
            for file in self.files.values() {
                if file.parents.contains(&next) {
                    out.push(file.id.clone());
                    if file.mime_type == FOLDER {
                        queue.push(file.id.clone());
                    }
                }
            }
        }
        out
    }

    /// The file resource as `user` sees it (every field; masks are applied later).
    pub fn resource(&self, file: &FakeFile, user: &str, base_url: &str) -> Value {
        let kind_path = match file.mime_type.as_str() {
            DOC => "document/d",
            SHEET => "spreadsheets/d",
            SLIDES => "presentation/d",
            FOLDER => "drive/folders",
            _ => "file/d",
        };
        let mut value = json!({
            "kind": "drive#file",
            "id": file.id,
            "name": file.name,
            "mimeType": file.mime_type,
            "parents": file.parents,
            "trashed": file.trashed,
            "explicitlyTrashed": file.trashed,
            "createdTime": rfc3339(&file.created),
            "modifiedTime": rfc3339(&file.modified),
            "version": file.version.to_string(),
            "webViewLink": format!("{base_url}/{kind_path}/{}/view", file.id),
            "permissionIds": file.permissions.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        });
        if let Some(owner) = &file.owner {
            value["owners"] = json!([{
                "kind": "drive#user",
                "displayName": display_name(owner),
                "emailAddress": owner,
                "me": owner == user,
            }]);
            value["ownedByMe"] = json!(owner == user);
            // My Drive items carry their permissions (when the caller may share them).
            if owner == user || file.permissions.iter().any(|p| p.role == "writer") {
                let mut permissions = vec![Permission::user(owner, "owner").to_json()];
                permissions.extend(file.permissions.iter().map(Permission::to_json));
                value["permissions"] = Value::Array(permissions);
            }
        }
        if let Some(drive) = &file.drive_id {
            value["driveId"] = json!(drive);
        }
        if !file.is_google() {
            value["size"] = json!(file.content.len().to_string());
            value["md5Checksum"] = json!(file.md5());
            value["headRevisionId"] = json!(format!("rev{}", file.revision));
        }
        value
    }
}

pub fn display_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    let mut chars = local.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

/// Applies a Drive `fields` mask (`nextPageToken,files(id,name,owners(emailAddress))`) to
/// a response; `None` or `*` keeps everything.
pub fn apply_mask(value: &Value, mask: Option<&str>) -> Value {
    match mask.map(str::trim) {
        None | Some("") | Some("*") => value.clone(),
        Some(mask) => select(value, &parse_mask(mask)),
    }
}

#[derive(Debug)]
struct Field {
    name: String,
    children: Vec<Field>,
}

fn parse_mask(mask: &str) -> Vec<Field> {
    fn parse(chars: &[char], at: &mut usize) -> Vec<Field> {
        let mut fields = Vec::new();
        let mut name = String::new();
        while *at < chars.len() {
            let c = chars[*at];
            *at += 1;
            match c {
                ',' => {
                    if !name.trim().is_empty() {
                        fields.push(path_field(name.trim(), Vec::new()));
                    }
                    name.clear();
                }
                '(' => {
                    let children = parse(chars, at);
                    fields.push(path_field(name.trim(), children));
                    name.clear();
                }
                ')' => break,
                c => name.push(c),
            }
        }
        if !name.trim().is_empty() {
            fields.push(path_field(name.trim(), Vec::new()));
        }
        fields
    }
    let chars: Vec<char> = mask.chars().collect();
    parse(&chars, &mut 0)
}

/// `a/b(c)` (and the Sheets API's `a.b(c)`) is `a(b(c))`.
fn path_field(path: &str, children: Vec<Field>) -> Field {
    match path.split_once(['/', '.']) {
        Some((head, rest)) => Field {
            name: head.to_owned(),
            children: vec![path_field(rest, children)],
        },
        None => Field {
            name: path.to_owned(),
            children,
        },
    }
}

fn select(value: &Value, fields: &[Field]) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| select(v, fields)).collect()),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for field in fields {
                if field.name == "*" {
                    return value.clone();
                }
                if let Some(inner) = map.get(&field.name) {
                    let picked = if field.children.is_empty() {
                        inner.clone()
                    } else {
                        select(inner, &field.children)
                    };
                    out.insert(field.name.clone(), picked);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}
