//! Where a Google Drive sync stands. A pass is a queue of [`Task`]s worked off one page per
//! pull; between passes the queue is empty and each feed holds the change page token the
//! next pass reads from (captured *before* the first listing, so nothing that changes
//! during it is missed).
//!
//! ```json
//! {"v": 1,
//!  "feeds": [{"user": "ada@example.com", "token": "1234"}],
//!  "tasks": [{"kind": "folder", "id": "..."}], "page_token": null,
//!  "folders": {"<folder id>": "<parent id>"},
//!  "seen": [["<file id>", "<fingerprint>"]]}
//! ```
//!
//! `folders` is the tree of folders below the configured `folder_ids` (for folder scope
//! in the change feed); `seen` the fingerprints of the files delivered last (bounded), so
//! a change that altered nothing a document shows (a view) is not exported again.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::ConnectorError;
use super::config::is_drive_id;

pub(super) const CHECKPOINT_VERSION: u64 = 1;
const MAX_TOKEN_CHARS: usize = 4096;
/// Fingerprints kept: enough for the working set of a feed, small enough for a checkpoint
/// item (≈ 60 bytes each).
pub(super) const MAX_SEEN: usize = 2000;
const MAX_TASKS: usize = 20_000;
const MAX_FOLDERS: usize = 20_000;

/// One user's change feed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Feed {
    /// `None`: the connected account (or the service account's default subject).
    pub(super) user: Option<String>,
    pub(super) token: String,
}

/// One listing step source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum Task {
    /// The files a user owns in their My Drive.
    MyDrive { user: Option<String> },
    /// The shared drives the reader is a member of (each becomes a `SharedDrive`).
    DiscoverDrives,
    SharedDrive { id: String },
    /// One folder's children; sub-folders become `Folder` tasks.
    Folder { id: String },
    /// One page of feed `index`'s changes.
    Changes { index: usize },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Checkpoint {
    pub(super) v: u64,
    pub(super) feeds: Vec<Feed>,
    pub(super) tasks: VecDeque<Task>,
    /// The next page of the head task (a `files.list`/`drives.list` page token).
    pub(super) page_token: Option<String>,
    #[serde(default)]
    pub(super) folders: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) seen: VecDeque<(String, String)>,
}

impl Checkpoint {
    pub(super) fn parse(value: &Value) -> Result<Self, ConnectorError> {
        let bad = |message: &str| ConnectorError::Checkpoint(message.to_owned());
        match value.get("v").and_then(Value::as_u64) {
            Some(CHECKPOINT_VERSION) => {}
            Some(other) => return Err(bad(&format!("unknown version {other}"))),
            None => return Err(bad("no version")),
        }
        let checkpoint: Checkpoint = serde_json::from_value(value.clone())
            .map_err(|e| ConnectorError::Checkpoint(format!("malformed: {e}")))?;
        let token_ok = |t: &str| !t.is_empty() && t.len() <= MAX_TOKEN_CHARS;
        if checkpoint.feeds.iter().any(|feed| !token_ok(&feed.token)) {
            return Err(bad("a feed token is empty or too long"));
        }
        if checkpoint.page_token.as_deref().is_some_and(|t| !token_ok(t)) {
            return Err(bad("page_token is empty or too long"));
        }
        if checkpoint.tasks.len() > MAX_TASKS || checkpoint.folders.len() > MAX_FOLDERS {
            return Err(bad("too many tasks or folders"));
        }
        for task in &checkpoint.tasks {
            match task {
                Task::SharedDrive { id } | Task::Folder { id } if !is_drive_id(id) => {
                    return Err(bad("a task names an invalid id"))
                }
                Task::Changes { index } if *index >= checkpoint.feeds.len() => {
                    return Err(bad("a task names a feed that does not exist"))
                }
                _ => {}
            }
        }
        if checkpoint.seen.len() > MAX_SEEN {
            return Err(bad("too many fingerprints"));
        }
        Ok(checkpoint)
    }

    pub(super) fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The fingerprint of the last delivery of `file_id`, if still remembered.
    pub(super) fn fingerprint(&self, file_id: &str) -> Option<&str> {
        self.seen
            .iter()
            .rev()
            .find(|(id, _)| id == file_id)
            .map(|(_, fp)| fp.as_str())
    }

    pub(super) fn remember(&mut self, file_id: &str, fingerprint: String) {
        self.forget(file_id);
        self.seen.push_back((file_id.to_owned(), fingerprint));
        while self.seen.len() > MAX_SEEN {
            self.seen.pop_front();
        }
    }

    pub(super) fn forget(&mut self, file_id: &str) {
        self.seen.retain(|(id, _)| id != file_id);
    }
}

/// The folder tree below the configured roots: whether an id is a root or below one.
pub(super) fn below_roots(folders: &BTreeMap<String, String>, roots: &[String], id: &str) -> bool {
    let mut current = id;
    for _ in 0..64 {
        if roots.iter().any(|root| root == current) {
            return true;
        }
        match folders.get(current) {
            Some(parent) => current = parent,
            None => return false,
        }
    }
    false
}

/// Drops folders no longer below a root (their subtree moved out of scope).
pub(super) fn prune_folders(folders: &mut BTreeMap<String, String>, roots: &[String]) {
    let keep: HashMap<String, bool> = folders
        .keys()
        .map(|id| (id.clone(), below_roots(folders, roots, id)))
        .collect();
    folders.retain(|id, _| keep.get(id).copied().unwrap_or(false));
}
