//! Drive's file resources and how one becomes a document: what is exported how, the
//! metadata, the ACL from permissions, the fingerprint that says whether anything a
//! document shows has changed.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::super::document::Document;
use super::super::kit::files::{to_markdown, TextKind};

pub(super) const FOLDER: &str = "application/vnd.google-apps.folder";
pub(super) const DOC: &str = "application/vnd.google-apps.document";
pub(super) const SHEET: &str = "application/vnd.google-apps.spreadsheet";
pub(super) const SLIDES: &str = "application/vnd.google-apps.presentation";
const GOOGLE_APPS: &str = "application/vnd.google-apps.";

/// The file fields every listing and change asks for.
pub(super) const FILE_FIELDS: &str = "id,name,mimeType,parents,trashed,modifiedTime,createdTime,\
version,md5Checksum,headRevisionId,size,webViewLink,driveId,\
owners(emailAddress,displayName,me),permissions(id,type,emailAddress,domain,role),permissionIds";

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct Owner {
    #[serde(default)]
    pub(super) email_address: Option<String>,
    #[serde(default)]
    pub(super) display_name: Option<String>,
    #[serde(default)]
    pub(super) me: bool,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct Permission {
    #[serde(default, rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) email_address: Option<String>,
    #[serde(default)]
    pub(super) domain: Option<String>,
    #[serde(default)]
    pub(super) role: Option<String>,
}

/// A Drive `files` resource (the fields of [`FILE_FIELDS`]).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(super) struct DriveFile {
    pub(super) id: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) mime_type: String,
    #[serde(default)]
    pub(super) parents: Vec<String>,
    #[serde(default)]
    pub(super) trashed: bool,
    pub(super) modified_time: Option<String>,
    pub(super) created_time: Option<String>,
    pub(super) version: Option<String>,
    pub(super) md5_checksum: Option<String>,
    pub(super) head_revision_id: Option<String>,
    pub(super) size: Option<String>,
    pub(super) web_view_link: Option<String>,
    pub(super) drive_id: Option<String>,
    #[serde(default)]
    pub(super) owners: Vec<Owner>,
    pub(super) permissions: Option<Vec<Permission>>,
    #[serde(default)]
    pub(super) permission_ids: Vec<String>,
}

/// How a file's content is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Export {
    /// `files.export?mimeType=` with this type, the text used as markdown.
    Markdown(&'static str),
    /// `files.export` as text/plain.
    PlainText,
    /// Every sheet through the Sheets API, one markdown table per sheet.
    Sheets,
    /// The bytes (`alt=media`), a file document (text-like files become markdown).
    Media,
}

impl DriveFile {
    pub(super) fn is_folder(&self) -> bool {
        self.mime_type == FOLDER
    }

    /// How the content is read; `None`: not a document (folders, shortcuts, forms,
    /// drawings, sites: Google types without a text export).
    pub(super) fn export(&self) -> Option<Export> {
        match self.mime_type.as_str() {
            DOC => Some(Export::Markdown("text/markdown")),
            SHEET => Some(Export::Sheets),
            SLIDES => Some(Export::PlainText),
            other if other.starts_with(GOOGLE_APPS) => None,
            _ => Some(Export::Media),
        }
    }

    pub(super) fn size(&self) -> Option<u64> {
        self.size.as_deref().and_then(|s| s.parse().ok())
    }

    pub(super) fn owner_emails(&self) -> Vec<String> {
        self.owners
            .iter()
            .filter_map(|o| o.email_address.as_ref())
            .map(|e| e.to_ascii_lowercase())
            .collect()
    }

    /// What a document shows, hashed: a change with the same fingerprint (a view, a
    /// touch) is not exported again. Content identity is `md5Checksum` or the head
    /// revision for binaries, `modifiedTime` for Google files (an edit always moves it).
    pub(super) fn fingerprint(&self, acl: &[String]) -> String {
        let mut hasher = Sha256::new();
        let content = self
            .md5_checksum
            .as_deref()
            .or(self.head_revision_id.as_deref())
            .or(self.modified_time.as_deref())
            .unwrap_or_default();
        for part in [
            self.name.as_str(),
            self.mime_type.as_str(),
            &self.parents.join(","),
            self.drive_id.as_deref().unwrap_or_default(),
            content,
            self.modified_time.as_deref().unwrap_or_default(),
            self.size.as_deref().unwrap_or_default(),
            &self.owner_emails().join(","),
            &acl.join(","),
            self.web_view_link.as_deref().unwrap_or_default(),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hex::encode(&hasher.finalize()[..8])
    }
}

/// ACL principals from Drive permissions: `user:<email>`, `group:<email>`,
/// `domain:<domain>`, `anyone`; sorted, without repeats.
pub(super) fn acl_of(permissions: &[Permission]) -> Vec<String> {
    let mut acl: Vec<String> = permissions
        .iter()
        .filter_map(|p| match p.kind.as_str() {
            "user" | "group" => p
                .email_address
                .as_ref()
                .map(|email| format!("{}:{}", p.kind, email.to_ascii_lowercase())),
            "domain" => p
                .domain
                .as_ref()
                .map(|domain| format!("domain:{}", domain.to_ascii_lowercase())),
            "anyone" => Some("anyone".to_owned()),
            _ => None,
        })
        .collect();
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

/// The document of a file, without content yet.
pub(super) fn document(
    scope: &str,
    file: &DriveFile,
    path: &str,
    acl: Vec<String>,
) -> Document {
    let mut metadata = Map::new();
    metadata.insert("path".into(), json!(path));
    metadata.insert("mime_type".into(), json!(file.mime_type));
    metadata.insert("owners".into(), json!(file.owner_emails()));
    if let Some(link) = &file.web_view_link {
        metadata.insert("web_link".into(), json!(link));
    }
    if let Some(modified) = utc(file.modified_time.as_deref()) {
        metadata.insert("modified_time".into(), json!(modified));
    }
    if let Some(created) = utc(file.created_time.as_deref()) {
        metadata.insert("created_time".into(), json!(created));
    }
    if let Some(drive) = &file.drive_id {
        metadata.insert("drive_id".into(), json!(drive));
    }
    if let Some(md5) = &file.md5_checksum {
        metadata.insert("md5_checksum".into(), json!(md5));
    }
    if file.mime_type == SHEET {
        metadata.insert("sheets".into(), json!("all"));
    }
    Document {
        id: Document::stable_id(scope, &file.id),
        source: super::SOURCE.to_owned(),
        source_id: file.id.clone(),
        title: Some(file.name.clone()),
        url: file.web_view_link.clone(),
        markdown: String::new(),
        metadata,
        updated_at: utc(file.modified_time.as_deref())
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned()),
        acl,
        file: None,
    }
}

/// A spreadsheet as markdown: `## <sheet title>` and a table per sheet, in sheet order.
pub(super) fn sheets_markdown(title: &str, sheets: &[(String, Vec<Vec<String>>)]) -> String {
    let mut out = format!("# {title}\n");
    for (name, rows) in sheets {
        out.push_str(&format!("\n## {name}\n\n"));
        if rows.iter().all(|row| row.iter().all(|cell| cell.is_empty())) {
            out.push_str("(empty)\n");
            continue;
        }
        out.push_str(&to_markdown(TextKind::Csv, &csv_text(rows)));
    }
    out
}

/// Rows as RFC 4180 CSV (for the kit's CSV-to-table conversion).
fn csv_text(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .map(|cell| {
                if cell.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", cell.replace('"', "\"\""))
                } else {
                    cell.clone()
                }
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// Values of a `valueRanges[].values` matrix as strings (numbers and booleans as written).
pub(super) fn cell_rows(values: Option<&Value>) -> Vec<Vec<String>> {
    values
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row.as_array()
                        .map(|cells| {
                            cells
                                .iter()
                                .map(|cell| match cell {
                                    Value::String(text) => text.clone(),
                                    Value::Null => String::new(),
                                    other => other.to_string(),
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A sheet title as an A1 range naming the whole sheet (`'Q1 ''24'`).
pub(super) fn sheet_range(title: &str) -> String {
    format!("'{}'", title.replace('\'', "''"))
}
