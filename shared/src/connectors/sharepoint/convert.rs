//! Graph's driveItem and permission resources, and how a file becomes a document: metadata,
//! the ACL from permissions, the fingerprint that says whether anything a document shows
//! changed.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::super::document::Document;

/// The driveItem fields every delta page asks for (`deleted`, `root` and `folder` for the
/// tree; the rest for documents and fingerprints).
pub(super) const ITEM_SELECT: &str = "id,name,deleted,file,folder,root,package,parentReference,\
size,eTag,cTag,lastModifiedDateTime,createdDateTime,webUrl,createdBy,lastModifiedBy";
/// The slim listing's fields.
pub(super) const LIST_SELECT: &str = "id,name,deleted,file,folder,root,parentReference";

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub(super) struct Hashes {
    #[serde(default, rename = "quickXorHash")]
    pub(super) quick_xor: Option<String>,
    #[serde(default, rename = "sha256Hash")]
    pub(super) sha256: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct FileFacet {
    #[serde(default)]
    pub(super) mime_type: Option<String>,
    #[serde(default)]
    pub(super) hashes: Option<Hashes>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct ParentReference {
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) drive_id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct Identity {
    #[serde(default)]
    pub(super) display_name: Option<String>,
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    pub(super) login_name: Option<String>,
    #[serde(default)]
    pub(super) id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct IdentitySet {
    #[serde(default)]
    pub(super) user: Option<Identity>,
    #[serde(default)]
    pub(super) site_user: Option<Identity>,
    #[serde(default)]
    pub(super) group: Option<Identity>,
    #[serde(default)]
    pub(super) site_group: Option<Identity>,
    #[serde(default)]
    pub(super) application: Option<Identity>,
}

/// A driveItem (the fields of [`ITEM_SELECT`]).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct DriveItem {
    pub(super) id: String,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) deleted: Option<Value>,
    #[serde(default)]
    pub(super) file: Option<FileFacet>,
    #[serde(default)]
    pub(super) folder: Option<Value>,
    #[serde(default)]
    pub(super) root: Option<Value>,
    #[serde(default)]
    pub(super) package: Option<Value>,
    #[serde(default)]
    pub(super) parent_reference: Option<ParentReference>,
    #[serde(default)]
    pub(super) size: Option<u64>,
    #[serde(default)]
    pub(super) e_tag: Option<String>,
    #[serde(default)]
    pub(super) c_tag: Option<String>,
    #[serde(default)]
    pub(super) last_modified_date_time: Option<String>,
    #[serde(default)]
    pub(super) created_date_time: Option<String>,
    #[serde(default)]
    pub(super) web_url: Option<String>,
    #[serde(default)]
    pub(super) created_by: Option<IdentitySet>,
    #[serde(default)]
    pub(super) last_modified_by: Option<IdentitySet>,
}

impl DriveItem {
    pub(super) fn is_deleted(&self) -> bool {
        self.deleted.is_some()
    }

    /// Folders and packages (OneNote notebooks) hold items; the root is one too.
    pub(super) fn is_container(&self) -> bool {
        self.folder.is_some() || self.root.is_some() || self.package.is_some()
    }

    pub(super) fn is_file(&self) -> bool {
        self.file.is_some()
    }

    pub(super) fn parent_id(&self) -> Option<&str> {
        self.parent_reference.as_ref()?.id.as_deref()
    }

    pub(super) fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// What identifies the bytes: the content hash, else the content tag, else the
    /// entity tag (which also moves on metadata edits), else time and size.
    pub(super) fn content_key(&self) -> String {
        let hashes = self.file.as_ref().and_then(|f| f.hashes.as_ref());
        if let Some(hash) = hashes.and_then(|h| h.quick_xor.clone().or(h.sha256.clone())) {
            return format!("h:{hash}");
        }
        if let Some(tag) = &self.c_tag {
            return format!("c:{tag}");
        }
        if let Some(tag) = &self.e_tag {
            return format!("e:{tag}");
        }
        format!(
            "t:{}:{}",
            self.last_modified_date_time.as_deref().unwrap_or_default(),
            self.size.unwrap_or_default()
        )
    }

    /// What a document shows, hashed: an unchanged fingerprint is not downloaded again
    /// (delta also reports views, metadata-only edits, sharing changes).
    pub(super) fn fingerprint(&self, path: &str, acl: &[String]) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.content_key().as_str(),
            self.name(),
            path,
            self.web_url.as_deref().unwrap_or_default(),
            &acl.join(","),
            &author(self.created_by.as_ref()).0.unwrap_or_default(),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hex::encode(&hasher.finalize()[..8])
    }
}

/// (display name, email) of an identity set's user.
pub(super) fn author(set: Option<&IdentitySet>) -> (Option<String>, Option<String>) {
    let Some(set) = set else {
        return (None, None);
    };
    let user = set
        .user
        .as_ref()
        .or(set.site_user.as_ref())
        .or(set.application.as_ref());
    match user {
        Some(user) => (
            user.display_name.clone(),
            user.email.clone().map(|e| e.to_ascii_lowercase()),
        ),
        None => (None, None),
    }
}

/// A driveItem permission (`grantedToV2`, `grantedToIdentitiesV2`, `link`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct Permission {
    #[serde(default, rename = "grantedToV2")]
    pub(super) granted_to: Option<IdentitySet>,
    #[serde(default, rename = "grantedToIdentitiesV2")]
    pub(super) granted_to_identities: Vec<IdentitySet>,
    #[serde(default)]
    pub(super) link: Option<SharingLink>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub(super) struct SharingLink {
    #[serde(default)]
    pub(super) scope: Option<String>,
}

/// ACL principals: `user:<email>` (users, site users), `group:<email or name>` (Entra and
/// SharePoint groups), `anyone` (anonymous links), `domain:<tenant>` (organisation links);
/// sorted, without repeats.
pub(super) fn acl_of(permissions: &[Permission], tenant: &str) -> Vec<String> {
    let mut acl = Vec::new();
    for permission in permissions {
        let sets = permission
            .granted_to
            .iter()
            .chain(&permission.granted_to_identities);
        for set in sets {
            if let Some(email) = set
                .user
                .as_ref()
                .or(set.site_user.as_ref())
                .and_then(|u| u.email.as_ref())
            {
                acl.push(format!("user:{}", email.to_ascii_lowercase()));
            }
            for group in [&set.group, &set.site_group].into_iter().flatten() {
                let name = group
                    .email
                    .clone()
                    .or(group.login_name.clone())
                    .or(group.display_name.clone())
                    .or(group.id.clone());
                if let Some(name) = name {
                    acl.push(format!("group:{}", name.to_ascii_lowercase()));
                }
            }
        }
        match permission.link.as_ref().and_then(|l| l.scope.as_deref()) {
            Some("anonymous") => acl.push("anyone".to_owned()),
            Some("organization") => acl.push(format!("domain:{}", tenant.to_ascii_lowercase())),
            _ => {}
        }
    }
    acl.sort();
    acl.dedup();
    acl
}

/// An RFC 3339 time as UTC seconds (`2024-05-01T08:00:07Z`).
pub(super) fn utc(time: Option<&str>) -> Option<String> {
    let parsed = DateTime::parse_from_rfc3339(time?).ok()?;
    Some(
        parsed
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// Where a document lives: its site (if any) and library.
#[derive(Clone, Debug, Default)]
pub(super) struct Place<'a> {
    pub(super) site_name: Option<&'a str>,
    pub(super) site_url: Option<&'a str>,
    pub(super) library: &'a str,
    pub(super) drive_id: &'a str,
    /// The OneDrive's owner, for user drives.
    pub(super) owner: Option<&'a str>,
}

/// `<drive id>:<item id>`: item ids are unique within a drive only.
pub(super) fn file_source_id(drive_id: &str, item_id: &str) -> String {
    format!("{drive_id}:{item_id}")
}

/// The document of a file, without content yet.
pub(super) fn document(
    scope: &str,
    item: &DriveItem,
    place: &Place<'_>,
    path: &str,
    acl: Vec<String>,
) -> Document {
    let mut metadata = Map::new();
    metadata.insert("kind".into(), json!("file"));
    if let Some(site) = place.site_name {
        metadata.insert("site".into(), json!(site));
    }
    if let Some(url) = place.site_url {
        metadata.insert("site_url".into(), json!(url));
    }
    metadata.insert("library".into(), json!(place.library));
    metadata.insert("drive_id".into(), json!(place.drive_id));
    if let Some(owner) = place.owner {
        metadata.insert("drive_owner".into(), json!(owner));
    }
    metadata.insert("item_id".into(), json!(item.id));
    metadata.insert("path".into(), json!(path));
    if let Some(url) = &item.web_url {
        metadata.insert("web_url".into(), json!(url));
    }
    let (author_name, author_email) = author(item.created_by.as_ref());
    if let Some(name) = author_name {
        metadata.insert("author".into(), json!(name));
    }
    if let Some(email) = author_email {
        metadata.insert("author_email".into(), json!(email));
    }
    let (editor, editor_email) = author(item.last_modified_by.as_ref());
    if let Some(name) = editor {
        metadata.insert("modified_by".into(), json!(name));
    }
    if let Some(email) = editor_email {
        metadata.insert("modified_by_email".into(), json!(email));
    }
    if let Some(modified) = utc(item.last_modified_date_time.as_deref()) {
        metadata.insert("modified_time".into(), json!(modified));
    }
    if let Some(created) = utc(item.created_date_time.as_deref()) {
        metadata.insert("created_time".into(), json!(created));
    }
    if let Some(size) = item.size {
        metadata.insert("size".into(), json!(size));
    }
    if let Some(mime) = item.file.as_ref().and_then(|f| f.mime_type.as_ref()) {
        metadata.insert("mime_type".into(), json!(mime));
    }
    let source_id = file_source_id(place.drive_id, &item.id);
    Document {
        id: Document::stable_id(scope, &source_id),
        source: super::SOURCE.to_owned(),
        source_id,
        title: Some(item.name().to_owned()),
        url: item.web_url.clone(),
        markdown: String::new(),
        metadata,
        updated_at: utc(item.last_modified_date_time.as_deref())
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned()),
        acl,
        file: None,
    }
}
