//! Google Drive: Docs, Sheets, Slides and files as documents, kept current from Drive's
//! change feed (Drive API v3, Sheets API v4).
//!
//! Calls (developers.google.com/workspace/drive/api/reference/rest/v3):
//! - `changes.getStartPageToken` for every user the connector reads as, **before** the
//!   first listing, so what changes while it runs is read from the feed afterwards;
//! - `files.list` (`corpora` user/drive/allDrives, `supportsAllDrives`,
//!   `includeItemsFromAllDrives`, `trashed = false`, field masks, `pageToken`): each user's
//!   owned My Drive files (`'me' in owners`), each shared drive (`drives.list` when
//!   `include_shared_drives`), each folder's children, folder by folder;
//! - `changes.list?pageToken&includeRemoved=true&supportsAllDrives=true` on every later
//!   sync until `newStartPageToken`, which is kept. A removed, trashed or out-of-scope file
//!   is deleted from the sink by the feed itself (`Batch::deleted`); a folder moving into a
//!   scoped folder is listed (its files added), one moving out drops out of the folder tree
//!   (its files go with the prune pass that follows every completed sync, which the slim
//!   listing backs). A refused page token (400/404/410) starts a full relisting from new
//!   start tokens; the prune after it removes what is gone, nothing else.
//! - content: `files.export` Docs → `text/markdown`, Slides → `text/plain`; Sheets through
//!   the Sheets API (`spreadsheets.get` + `values:batchGet`), **every sheet** as a markdown
//!   table under `## <sheet>` (Drive's CSV export is the first sheet only; it is the
//!   fallback when the Sheets API refuses, marked `metadata.sheets = "first_only"`);
//!   other files `alt=media` into a spool (`kit::files`), capped by `max_file_bytes`.
//!   A change whose fingerprint (name, parents, content checksum/revision/modifiedTime,
//!   owners, ACL) matches the last delivery is not exported again: Drive also reports
//!   views and touches.
//! - ACL from `permissions` (`permissions.list` for shared-drive items, whose file
//!   resources carry none): `user:<email>`, `group:<email>`, `domain:<domain>`, `anyone`.
//!
//! Users: a `google` connection reads as the connected account; a service account acts
//! for its `subject` and every `my_drive_emails` user (domain-wide delegation). The first
//! of them (the subject, else the first email) reads shared drives and folders; each
//! user's My Drive is read through that user's own feed.

mod checkpoint;
mod client;
mod config;
mod convert;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use serde_json::Value;
use url::Url;

use super::document::Document;
use super::google::{self, GoogleAuth, DRIVE_READONLY};
use super::kit::files::{self, Downloaded, FileLimits};
use super::kit::SourceAuth;
use super::{Batch, Connector, ConnectorError, DocumentFailure, IdPage, SkippedFile};
use crate::http::{GuardedClient, RetryPolicy};
use checkpoint::{below_roots, prune_folders, Checkpoint, Feed, Task, CHECKPOINT_VERSION};
use client::{ChangesPage, UserApi};
use convert::{acl_of, DriveFile, Export, FILE_FIELDS};

pub use config::{drive_id, GoogleDriveConfig};

pub const SOURCE: &str = "google_drive";
pub const DEFAULT_API_BASE: &str = "https://www.googleapis.com/drive/v3";
/// The Sheets API (every sheet of a spreadsheet); `TRIBUTARY_API_URL_GOOGLE_SHEETS`.
pub const DEFAULT_SHEETS_BASE: &str = "https://sheets.googleapis.com/v4";
/// Files exported or downloaded at once within a pull.
const CONCURRENCY: usize = 8;
const LIST_PAGE_SIZE: usize = 1000;
const LIST_FIELDS: &str = "id,name,mimeType,parents,trashed,driveId,owners(emailAddress,me)";
const MAX_PATH_DEPTH: usize = 32;

/// The registry's description of this source.
pub fn source() -> super::Source {
    use super::registry::{ConnectionProvider, CredentialKind};
    super::Source::new::<GoogleDriveConfig>(SOURCE, "Google Drive", |context| {
        let config = context.typed_config::<GoogleDriveConfig>()?;
        let api_base = context.api_base(SOURCE, DEFAULT_API_BASE)?;
        let sheets_base = context.api_base("google_sheets", DEFAULT_SHEETS_BASE)?;
        let connector = GoogleDriveConnector::new(
            &context.connector_id,
            config,
            context.auth,
            context.http,
            context.retry,
            api_base,
        )?
        .with_sheets_base(sheets_base);
        Ok(Box::new(connector))
    })
    .accepting(&[CredentialKind::Connection, CredentialKind::ServiceAccount])
    .with_provider(ConnectionProvider::Only("google"))
}

impl super::registry::SourceConfig for GoogleDriveConfig {
    fn check(&self) -> Result<(), ConnectorError> {
        self.validate()
    }
}

pub struct GoogleDriveConnector {
    /// `connector:<id>`, the id space of this connector's documents.
    scope: String,
    connector_id: String,
    config: GoogleDriveConfig,
    auth: GoogleAuth,
    http: GuardedClient,
    retry: RetryPolicy,
    /// Every user read as; the first reads shared drives and folders.
    users: Vec<UserApi>,
    /// The users whose owned My Drive files are in scope (`None`: the connected account).
    my_drive_users: Vec<Option<String>>,
    shared_drives: Vec<String>,
    folder_roots: Vec<String>,
    limits: FileLimits,
    /// Folder id → (name, parent), for paths; shared by the pulls of one connector.
    names: Arc<Mutex<FolderNames>>,
}

impl std::fmt::Debug for GoogleDriveConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleDriveConnector")
            .field("scope", &self.scope)
            .field("users", &self.users.iter().map(|u| &u.user).collect::<Vec<_>>())
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// Folder id → (name, parent id).
type FolderNames = HashMap<String, (String, Option<String>)>;

/// What one pull gathered.
#[derive(Default)]
struct Work {
    documents: Vec<Document>,
    failures: Vec<DocumentFailure>,
    skipped: Vec<SkippedFile>,
    deleted: Vec<String>,
}

/// A file's fate in a pull.
enum Converted {
    Document(Box<Document>, String),
    Skipped(SkippedFile, String),
    Failed(DocumentFailure),
    Unchanged,
}

impl GoogleDriveConnector {
    /// `connector_id` scopes document ids; `api_base` is Drive's (deployment configuration,
    /// never the connector's).
    pub fn new(
        connector_id: &str,
        config: GoogleDriveConfig,
        auth: impl Into<SourceAuth>,
        http: GuardedClient,
        retry: RetryPolicy,
        api_base: Url,
    ) -> Result<Self, ConnectorError> {
        if connector_id.trim().is_empty() {
            return Err(ConnectorError::Config("the connector id is empty".into()));
        }
        config.validate()?;
        let auth = GoogleAuth::new(auth.into(), http.clone(), &[DRIVE_READONLY]);
        let emails = config.emails();
        let (viewers, my_drive_users): (Vec<Option<String>>, Vec<Option<String>>) =
            if auth.is_delegated() {
                let subject = auth.default_subject().map(|s| s.trim().to_ascii_lowercase());
                let mut viewers: Vec<Option<String>> = subject.iter().cloned().map(Some).collect();
                for email in &emails {
                    if !viewers.contains(&Some(email.clone())) {
                        viewers.push(Some(email.clone()));
                    }
                }
                if viewers.is_empty() {
                    return Err(ConnectorError::Config(
                        "a service account needs a subject or my_drive_emails to act as".into(),
                    ));
                }
                let owners = if emails.is_empty() {
                    subject.into_iter().map(Some).collect()
                } else {
                    emails.into_iter().map(Some).collect()
                };
                (viewers, owners)
            } else {
                if !emails.is_empty() {
                    return Err(ConnectorError::Config(
                        "my_drive_emails needs service-account credentials (domain-wide delegation)"
                            .into(),
                    ));
                }
                (vec![None], vec![None])
            };
        let mut connector = Self {
            scope: format!("connector:{connector_id}"),
            connector_id: connector_id.to_owned(),
            shared_drives: config.shared_drives(),
            folder_roots: config.folders(),
            limits: FileLimits::new(config.max_file_bytes),
            my_drive_users: if config.include_my_drives() {
                my_drive_users
            } else {
                Vec::new()
            },
            config,
            auth,
            http,
            retry,
            users: Vec::new(),
            names: Arc::default(),
        };
        let sheets = Url::parse(DEFAULT_SHEETS_BASE)
            .map_err(|error| ConnectorError::Config(error.to_string()))?;
        connector.users = viewers
            .into_iter()
            .map(|user| connector.user_api(user, &api_base, &sheets))
            .collect::<Result<_, _>>()?;
        Ok(connector)
    }

    /// Where the Sheets API is (tests: the fake's).
    pub fn with_sheets_base(mut self, sheets_base: Url) -> Self {
        let users: Result<Vec<UserApi>, ConnectorError> = self
            .users
            .iter()
            .map(|api| self.user_api(api.user.clone(), api.drive.base(), &sheets_base))
            .collect();
        if let Ok(users) = users {
            self.users = users;
        }
        self
    }

    fn user_api(
        &self,
        user: Option<String>,
        drive_base: &Url,
        sheets_base: &Url,
    ) -> Result<UserApi, ConnectorError> {
        let auth = self.auth.for_user(user.as_deref())?;
        let label = user.clone().unwrap_or_else(|| "connected".into());
        let client = |title: &'static str, base: &Url| {
            google::api_client(
                title,
                &self.connector_id,
                &label,
                base.clone(),
                auth.clone(),
                self.http.clone(),
                self.retry.clone(),
            )
        };
        Ok(UserApi {
            drive: client("Google Drive", drive_base),
            sheets: client("Google Sheets", sheets_base),
            user,
        })
    }

    fn reader(&self) -> &UserApi {
        &self.users[0]
    }

    fn api_of(&self, user: &Option<String>) -> Result<&UserApi, ConnectorError> {
        self.users
            .iter()
            .find(|api| api.user == *user)
            .ok_or_else(|| ConnectorError::Checkpoint("a task names an unknown user".into()))
    }

    /// The listing of a whole pass, in order.
    fn listing_tasks(&self) -> Vec<Task> {
        let mut tasks: Vec<Task> = self
            .my_drive_users
            .iter()
            .map(|user| Task::MyDrive { user: user.clone() })
            .collect();
        if self.config.include_shared_drives() {
            tasks.push(Task::DiscoverDrives);
        }
        tasks.extend(
            self.shared_drives
                .iter()
                .map(|id| Task::SharedDrive { id: id.clone() }),
        );
        tasks.extend(
            self.folder_roots
                .iter()
                .map(|id| Task::Folder { id: id.clone() }),
        );
        tasks
    }

    /// A new pass: every feed's start token first, then the listing.
    async fn fresh_pass(&self, previous: Option<Checkpoint>) -> Result<Checkpoint, ConnectorError> {
        let mut feeds = Vec::with_capacity(self.users.len());
        for api in &self.users {
            feeds.push(Feed {
                user: api.user.clone(),
                token: api.start_page_token().await?,
            });
        }
        Ok(Checkpoint {
            v: CHECKPOINT_VERSION,
            feeds,
            tasks: self.listing_tasks().into(),
            page_token: None,
            folders: Default::default(),
            seen: previous.map(|p| p.seen).unwrap_or_default(),
        })
    }

    fn feeds_match(&self, state: &Checkpoint) -> bool {
        state.feeds.len() == self.users.len()
            && state
                .feeds
                .iter()
                .zip(&self.users)
                .all(|(feed, api)| feed.user == api.user)
    }

    /// Whether a file (as `viewer` reports it) is in the configured scope.
    fn in_scope(&self, file: &DriveFile, viewer: &Option<String>, state: &Checkpoint) -> bool {
        if file.trashed
            || file.is_folder()
            || file.export().is_none()
            || !self.config.mime_allowed(&file.mime_type)
        {
            return false;
        }
        let in_folders = !self.folder_roots.is_empty()
            && file
                .parents
                .iter()
                .any(|parent| below_roots(&state.folders, &self.folder_roots, parent));
        match &file.drive_id {
            None => in_folders || self.owned_in_scope(file, viewer),
            Some(drive) => {
                in_folders
                    || self.config.include_shared_drives()
                    || self.shared_drives.contains(drive)
            }
        }
    }

    fn owned_in_scope(&self, file: &DriveFile, viewer: &Option<String>) -> bool {
        file.owners.iter().any(|owner| {
            (owner.me && self.my_drive_users.contains(viewer))
                || owner.email_address.as_ref().is_some_and(|email| {
                    self.my_drive_users
                        .contains(&Some(email.to_ascii_lowercase()))
                })
        })
    }

    /// A My Drive file owned by another configured user: that user's feed reports it (with
    /// the owner's view of its permissions), so this one leaves it alone.
    fn owned_elsewhere(&self, file: &DriveFile, viewer: &Option<String>) -> bool {
        self.auth.is_delegated()
            && file.drive_id.is_none()
            && file.owner_emails().iter().any(|email| {
                Some(email) != viewer.as_ref() && self.my_drive_users.contains(&Some(email.clone()))
            })
    }
}

#[async_trait::async_trait]
impl Connector for GoogleDriveConnector {
    fn source(&self) -> &'static str {
        SOURCE
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        for api in &self.users {
            api.start_page_token().await?;
        }
        let reader = self.reader();
        for id in &self.shared_drives {
            if reader.drive_name(id).await?.is_none() {
                return Err(ConnectorError::Config(format!(
                    "shared drive {id} was not found (or is not shared with the reader)"
                )));
            }
        }
        for id in &self.folder_roots {
            match reader.file(id, "id,mimeType").await? {
                Some(folder) if folder.is_folder() => {}
                Some(_) => return Err(ConnectorError::Config(format!("{id} is not a folder"))),
                None => {
                    return Err(ConnectorError::Config(format!(
                        "folder {id} was not found (or is not shared with the reader)"
                    )))
                }
            }
        }
        Ok(())
    }

    async fn pull(&self, checkpoint: Option<&Value>) -> Result<Batch, ConnectorError> {
        let parsed = checkpoint.map(Checkpoint::parse).transpose()?;
        let mut state = match parsed {
            Some(state) if self.feeds_match(&state) => state,
            // The users changed (or the very first sync): a new pass.
            other => self.fresh_pass(other).await?,
        };
        if state.tasks.is_empty() {
            // Between passes: this sync reads every feed.
            state.tasks = (0..state.feeds.len())
                .map(|index| Task::Changes { index })
                .collect();
        }
        let mut work = Work::default();
        self.step(&mut state, &mut work).await?;
        let done = state.tasks.is_empty();
        tracing::debug!(
            documents = work.documents.len(),
            deleted = work.deleted.len(),
            failures = work.failures.len(),
            skipped = work.skipped.len(),
            done,
            "Google Drive batch"
        );
        Ok(Batch {
            documents: work.documents,
            failures: work.failures,
            skipped: work.skipped,
            deleted: work.deleted,
            checkpoint: state.to_value(),
            done,
        })
    }

    async fn list_ids(&self, cursor: Option<&str>) -> Result<IdPage, ConnectorError> {
        self.list_page(cursor).await
    }
}

mod pass;
