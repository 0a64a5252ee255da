//! The Google Drive connector's configuration: which drives and folders, whose My Drives,
//! which file types, how large a file may be.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::kit::files::default_max_file_bytes;
use super::super::{ConnectorError, DEFAULT_BATCH_SIZE};

const MAX_BATCH_SIZE: usize = 200;
/// Drive ids are URL-safe base64-like strings; anything else is not one.
const MAX_ID_CHARS: usize = 200;
const MAX_LIST: usize = 100;
/// Larger files than this are never downloaded whatever the configuration says.
pub(super) const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// What a Google Drive connector syncs. With no drive, shared drive or folder named, it
/// syncs the My Drive of every user it acts as and every shared drive they can read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleDriveConfig {
    /// The files each user owns in their My Drive. Default: true unless shared drives or
    /// folders are named.
    #[serde(default)]
    pub include_my_drives: Option<bool>,
    /// Every shared drive the (first) user is a member of. Default: like `include_my_drives`.
    #[serde(default)]
    pub include_shared_drives: Option<bool>,
    /// These shared drives, by id or URL (`https://drive.google.com/drive/folders/<id>`).
    #[serde(default)]
    pub shared_drive_ids: Vec<String>,
    /// These folders and everything below them, by id or URL.
    #[serde(default)]
    pub folder_ids: Vec<String>,
    /// Service account only: the users whose My Drives are synced (domain-wide delegation,
    /// one token per user). Without it, the credentials' `subject`.
    #[serde(default, alias = "user_emails")]
    pub my_drive_emails: Vec<String>,
    /// Only these mime types (`application/pdf`, or a family `image/*`); all when empty.
    #[serde(default)]
    pub include_mime_types: Vec<String>,
    /// Never these mime types (same forms), applied after `include_mime_types`.
    #[serde(default)]
    pub exclude_mime_types: Vec<String>,
    /// Larger binary files are skipped (counted, not failed). Default 50 MiB.
    #[serde(default = "default_max_file_bytes")]
    #[schemars(range(min = 1, max = 536870912))]
    pub max_file_bytes: u64,
    /// Files (or changes) per pull: default 50, 1..=200.
    #[serde(default)]
    #[schemars(range(min = 1, max = 200))]
    pub batch_size: Option<usize>,
}

impl GoogleDriveConfig {
    pub fn validate(&self) -> Result<(), ConnectorError> {
        let invalid = |message: String| Err(ConnectorError::Config(message));
        for (field, list) in [
            ("shared_drive_ids", &self.shared_drive_ids),
            ("folder_ids", &self.folder_ids),
            ("my_drive_emails", &self.my_drive_emails),
            ("include_mime_types", &self.include_mime_types),
            ("exclude_mime_types", &self.exclude_mime_types),
        ] {
            if list.len() > MAX_LIST {
                return invalid(format!("{field} has more than {MAX_LIST} entries"));
            }
        }
        for raw in self.shared_drive_ids.iter().chain(&self.folder_ids) {
            if drive_id(raw).is_none() {
                return invalid(format!(
                    "{raw:?} is neither a Drive id nor a drive.google.com folder URL"
                ));
            }
        }
        for email in &self.my_drive_emails {
            if !is_email(email) {
                return invalid(format!("{email:?} is not an email address"));
            }
        }
        for mime in self
            .include_mime_types
            .iter()
            .chain(&self.exclude_mime_types)
        {
            if !is_mime_pattern(mime) {
                return invalid(format!(
                    "{mime:?} is not a mime type (type/subtype or type/*)"
                ));
            }
        }
        if self.max_file_bytes == 0 || self.max_file_bytes > MAX_FILE_BYTES {
            return invalid(format!(
                "max_file_bytes must be within 1..={MAX_FILE_BYTES}"
            ));
        }
        if let Some(size) = self.batch_size {
            if !(1..=MAX_BATCH_SIZE).contains(&size) {
                return invalid(format!("batch_size must be within 1..={MAX_BATCH_SIZE}"));
            }
        }
        if !self.include_my_drives() && !self.include_shared_drives()
            && self.shared_drive_ids.is_empty()
            && self.folder_ids.is_empty()
        {
            return invalid("nothing to sync: no My Drive, shared drive or folder".into());
        }
        Ok(())
    }

    fn names_a_scope(&self) -> bool {
        !self.shared_drive_ids.is_empty() || !self.folder_ids.is_empty()
    }

    pub(super) fn include_my_drives(&self) -> bool {
        self.include_my_drives.unwrap_or(!self.names_a_scope())
    }

    pub(super) fn include_shared_drives(&self) -> bool {
        self.include_shared_drives.unwrap_or(!self.names_a_scope())
    }

    pub(super) fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    /// The configured shared drive ids (URLs resolved), in order, without repeats.
    pub(super) fn shared_drives(&self) -> Vec<String> {
        unique(self.shared_drive_ids.iter().filter_map(|raw| drive_id(raw)))
    }

    pub(super) fn folders(&self) -> Vec<String> {
        unique(self.folder_ids.iter().filter_map(|raw| drive_id(raw)))
    }

    pub(super) fn emails(&self) -> Vec<String> {
        unique(
            self.my_drive_emails
                .iter()
                .map(|email| email.trim().to_ascii_lowercase()),
        )
    }

    /// Whether a file of this mime type is synced.
    pub(super) fn mime_allowed(&self, mime: &str) -> bool {
        let included = self.include_mime_types.is_empty()
            || self.include_mime_types.iter().any(|p| mime_matches(p, mime));
        included && !self.exclude_mime_types.iter().any(|p| mime_matches(p, mime))
    }
}

fn unique(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

pub(super) fn mime_matches(pattern: &str, mime: &str) -> bool {
    let pattern = pattern.trim().to_ascii_lowercase();
    let mime = mime.to_ascii_lowercase();
    match pattern.strip_suffix("/*") {
        Some(family) => mime.split('/').next() == Some(family),
        None => pattern == mime,
    }
}

fn is_mime_pattern(value: &str) -> bool {
    let Some((kind, sub)) = value.trim().split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    token(kind) && (sub == "*" || token(sub))
}

fn is_email(value: &str) -> bool {
    let value = value.trim();
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !value.chars().any(|c| c.is_whitespace() || c.is_control())
                && value.len() <= 254
        }
        None => false,
    }
}

pub(super) fn is_drive_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ID_CHARS
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A Drive id from an id or a `drive.google.com` URL: `/drive/folders/<id>`,
/// `/drive/u/<n>/folders/<id>`, `/file/d/<id>/...`, `/open?id=<id>`.
pub fn drive_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if is_drive_id(raw) {
        return Some(raw.to_owned());
    }
    let url = url::Url::parse(raw).ok()?;
    if url.scheme() != "https" || url.host_str() != Some("drive.google.com") {
        return None;
    }
    if let Some((_, id)) = url.query_pairs().find(|(key, _)| key == "id") {
        return is_drive_id(&id).then(|| id.into_owned());
    }
    let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let id = segments
        .windows(2)
        .find(|pair| pair[0] == "folders" || pair[0] == "d")
        .map(|pair| pair[1])?;
    is_drive_id(id).then(|| id.to_owned())
}
