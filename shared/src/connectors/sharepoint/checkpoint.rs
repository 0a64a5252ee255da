//! Where a SharePoint/OneDrive sync stands. A pass is a queue of [`Task`]s worked off one
//! step per pull: resolve every site and user drive, then one delta page per pull for each
//! drive, the subtrees of folders that were renamed or moved, and each site's pages.
//! Between passes the queue is empty and every drive holds its whole `@odata.deltaLink`.
//!
//! ```json
//! {"v": 1, "tasks": [{"kind": "delta", "drive": "b!x"}],
//!  "drives": [{"id": "b!x", "name": "Documents", "site": "<site id>", "owner": null,
//!              "link": "https://graph.microsoft.com/v1.0/drives/b!x/root/delta?token=..",
//!              "root": "<root item id>", "folders": {"<id>": ["<parent id>", "<name>"]}}],
//!  "sites": [{"id": "<site id>", "name": "Engineering", "url": "https://.."}],
//!  "page_link": null, "seen": [["<source id>", "<fingerprint>"]]}
//! ```
//!
//! `link` is the drive's next page while it is enumerated (`@odata.nextLink`), its
//! `@odata.deltaLink` after; `folders` the drive's folder tree (delta gives no paths, so
//! paths are names up this tree); `seen` the fingerprints of the last deliveries (bounded).

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::ConnectorError;

pub(super) const CHECKPOINT_VERSION: u64 = 1;
const MAX_LINK_CHARS: usize = 8192;
/// Fingerprints kept (≈ 80 bytes each).
pub(super) const MAX_SEEN: usize = 2000;
const MAX_TASKS: usize = 20_000;
pub(super) const MAX_FOLDERS: usize = 20_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum Task {
    /// Every configured site's id and libraries, every user drive.
    Resolve,
    /// One delta page of a drive (from its `link`, or a fresh enumeration).
    Delta { drive: String },
    /// The children of a folder whose path changed (files below get new paths, or leave
    /// the configured folders); `link` is the next page.
    Subtree {
        drive: String,
        folder: String,
        #[serde(default)]
        link: Option<String>,
    },
    /// One page of a site's pages (`page_link` holds the next).
    Pages { site: String },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DriveState {
    pub(super) id: String,
    pub(super) name: String,
    /// The site id of a document library; `None` for a OneDrive.
    #[serde(default)]
    pub(super) site: Option<String>,
    /// A OneDrive's user (`me` for the signed-in user's).
    #[serde(default)]
    pub(super) owner: Option<String>,
    #[serde(default)]
    pub(super) link: Option<String>,
    /// Whether `link` is a nextLink of an enumeration in progress.
    #[serde(default)]
    pub(super) paging: bool,
    /// Whether a deltaLink was ever reached (before that, nothing of this drive was
    /// delivered, so out-of-scope files need no tombstones).
    #[serde(default)]
    pub(super) synced: bool,
    #[serde(default)]
    pub(super) root: Option<String>,
    #[serde(default)]
    pub(super) folders: BTreeMap<String, (String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteState {
    /// The configured reference it was resolved from (`site:<url or id>`).
    #[serde(default)]
    pub(super) key: String,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Checkpoint {
    pub(super) v: u64,
    pub(super) tasks: VecDeque<Task>,
    #[serde(default)]
    pub(super) drives: Vec<DriveState>,
    #[serde(default)]
    pub(super) sites: Vec<SiteState>,
    /// The next page of the head `Pages` task.
    #[serde(default)]
    pub(super) page_link: Option<String>,
    /// The head `Pages` task reads each page on its own (the list refused `$expand`).
    #[serde(default)]
    pub(super) page_fallback: bool,
    #[serde(default)]
    pub(super) seen: VecDeque<(String, String)>,
}

impl Checkpoint {
    pub(super) fn new() -> Self {
        Self {
            v: CHECKPOINT_VERSION,
            ..Self::default()
        }
    }

    pub(super) fn parse(value: &Value) -> Result<Self, ConnectorError> {
        let bad = |message: &str| ConnectorError::Checkpoint(message.to_owned());
        match value.get("v").and_then(Value::as_u64) {
            Some(CHECKPOINT_VERSION) => {}
            Some(other) => return Err(bad(&format!("unknown version {other}"))),
            None => return Err(bad("no version")),
        }
        let checkpoint: Checkpoint = serde_json::from_value(value.clone())
            .map_err(|e| ConnectorError::Checkpoint(format!("malformed: {e}")))?;
        let link_ok = |l: &Option<String>| l.as_ref().is_none_or(|l| !l.is_empty() && l.len() <= MAX_LINK_CHARS);
        if !checkpoint.drives.iter().all(|d| link_ok(&d.link)) || !link_ok(&checkpoint.page_link) {
            return Err(bad("a link is empty or too long"));
        }
        if checkpoint.tasks.len() > MAX_TASKS
            || checkpoint.seen.len() > MAX_SEEN
            || checkpoint.drives.iter().any(|d| d.folders.len() > MAX_FOLDERS)
        {
            return Err(bad("too many tasks, fingerprints or folders"));
        }
        for task in &checkpoint.tasks {
            let known = match task {
                Task::Delta { drive } => checkpoint.drive(drive).is_some(),
                Task::Subtree { drive, link, .. } => {
                    checkpoint.drive(drive).is_some() && link_ok(link)
                }
                Task::Pages { site } => checkpoint.site(site).is_some(),
                Task::Resolve => true,
            };
            if !known {
                return Err(bad("a task names a drive or site that is not there"));
            }
        }
        Ok(checkpoint)
    }

    pub(super) fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    pub(super) fn drive(&self, id: &str) -> Option<&DriveState> {
        self.drives.iter().find(|d| d.id == id)
    }

    pub(super) fn drive_mut(&mut self, id: &str) -> Option<&mut DriveState> {
        self.drives.iter_mut().find(|d| d.id == id)
    }

    pub(super) fn site(&self, id: &str) -> Option<&SiteState> {
        self.sites.iter().find(|s| s.id == id)
    }

    pub(super) fn fingerprint(&self, source_id: &str) -> Option<&str> {
        self.seen
            .iter()
            .rev()
            .find(|(id, _)| id == source_id)
            .map(|(_, fp)| fp.as_str())
    }

    pub(super) fn remember(&mut self, source_id: &str, fingerprint: String) {
        self.forget(source_id);
        self.seen.push_back((source_id.to_owned(), fingerprint));
        while self.seen.len() > MAX_SEEN {
            self.seen.pop_front();
        }
    }

    pub(super) fn forget(&mut self, source_id: &str) {
        self.seen.retain(|(id, _)| id != source_id);
    }
}

/// A drive's folder tree: the path of a folder (`/A/B`; the root is `""`), as far as known.
pub(super) fn folder_path(
    root: Option<&str>,
    folders: &BTreeMap<String, (String, String)>,
    id: &str,
) -> Option<String> {
    let mut names = Vec::new();
    let mut current = id;
    for _ in 0..64 {
        if Some(current) == root {
            names.reverse();
            return Some(names.iter().map(|n| format!("/{n}")).collect());
        }
        let (parent, name) = folders.get(current)?;
        names.push(name.as_str());
        current = parent;
    }
    None
}

/// Whether a folder path (`/A/B`) is one of, or below one of, `roots` (lower-cased).
pub(super) fn under(path: &str, roots: &[String]) -> bool {
    let path = path.to_lowercase();
    roots.is_empty()
        || roots
            .iter()
            .any(|root| path == *root || path.starts_with(&format!("{root}/")))
}
