//! One step of a pass (a listing page or a page of changes), turning files into documents,
//! and the slim listing.

use serde::{Deserialize, Serialize};

use super::*;

const NOT_FOLDER: &str = "mimeType != 'application/vnd.google-apps.folder'";

/// The slim listing's cursor: the tasks left and the head task's page.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListCursor {
    tasks: std::collections::VecDeque<Task>,
    page_token: Option<String>,
}

/// A Drive query string literal.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl GoogleDriveConnector {
    /// The files.list request of a listing task: (user, corpora, driveId, q).
    fn listing_query(&self, task: &Task) -> Option<(Option<String>, &'static str, Option<String>, String)> {
        let reader = self.reader().user.clone();
        match task {
            Task::MyDrive { user } => Some((
                user.clone(),
                "user",
                None,
                format!("'me' in owners and trashed = false and {NOT_FOLDER}"),
            )),
            Task::SharedDrive { id } => Some((
                reader,
                "drive",
                Some(id.clone()),
                format!("trashed = false and {NOT_FOLDER}"),
            )),
            Task::Folder { id } => Some((
                reader,
                "allDrives",
                None,
                format!("{} in parents and trashed = false", literal(id)),
            )),
            Task::DiscoverDrives | Task::Changes { .. } => None,
        }
    }

    pub(super) async fn step(
        &self,
        state: &mut Checkpoint,
        work: &mut Work,
    ) -> Result<(), ConnectorError> {
        let Some(task) = state.tasks.front().cloned() else {
            return Ok(());
        };
        match task {
            Task::Changes { index } => self.changes_step(state, index, work).await,
            Task::DiscoverDrives => {
                let token = state.page_token.clone();
                let (ids, next) = match self.reader().drives_page(token.as_deref()).await? {
                    Some(page) => page,
                    None => {
                        // A refused token: the discovery starts over (drives are few).
                        state.page_token = None;
                        return Ok(());
                    }
                };
                for id in ids {
                    let task = Task::SharedDrive { id: id.clone() };
                    if !self.shared_drives.contains(&id) && !state.tasks.contains(&task) {
                        state.tasks.push_back(task);
                    }
                }
                advance(state, next);
                Ok(())
            }
            listing => self.listing_step(state, &listing, work).await,
        }
    }

    async fn listing_step(
        &self,
        state: &mut Checkpoint,
        task: &Task,
        work: &mut Work,
    ) -> Result<(), ConnectorError> {
        let Some((user, corpora, drive, q)) = self.listing_query(task) else {
            return Ok(());
        };
        let api = self.api_of(&user)?;
        let token = state.page_token.clone();
        let page = api
            .files_page(
                corpora,
                drive.as_deref(),
                &q,
                self.config.batch_size(),
                FILE_FIELDS,
                token.as_deref(),
            )
            .await?;
        let Some(page) = page else {
            // Listing page tokens can be refused; this task's listing starts over (what it
            // delivers twice is unchanged downstream).
            tracing::warn!("Drive refused a listing page token; restarting that listing");
            state.page_token = None;
            return Ok(());
        };
        let mut candidates = Vec::new();
        for file in page.files {
            if file.is_folder() {
                if let Task::Folder { id } = task {
                    state.folders.insert(file.id.clone(), id.clone());
                    let sub = Task::Folder {
                        id: file.id.clone(),
                    };
                    if !state.tasks.contains(&sub) {
                        state.tasks.push_back(sub);
                    }
                }
                continue;
            }
            if self.in_scope(&file, &user, state) {
                candidates.push(file);
            }
        }
        // A listing always delivers (the first sync, a relisting, a folder moved in).
        self.produce(api, candidates, false, state, work).await?;
        advance(state, page.next);
        Ok(())
    }

    async fn changes_step(
        &self,
        state: &mut Checkpoint,
        index: usize,
        work: &mut Work,
    ) -> Result<(), ConnectorError> {
        let api = &self.users[index];
        let viewer = api.user.clone();
        let token = state.feeds[index].token.clone();
        // The reader's feed covers shared drives too; the others' only their My Drives.
        let page = api
            .changes_page(&token, index == 0, self.config.batch_size())
            .await?;
        let (changes, next, new_start) = match page {
            ChangesPage::Page {
                changes,
                next,
                new_start,
            } => (changes, next, new_start),
            ChangesPage::Rejected => {
                // Start over from a full relisting; the prune after it is complete removes
                // what is gone. What was already delivered is unchanged downstream.
                let previous = std::mem::take(state);
                *state = self.fresh_pass(Some(previous)).await?;
                return Box::pin(self.step(state, work)).await;
            }
        };
        // Folders first, so files moved into a folder that moved in are seen in scope.
        if !self.folder_roots.is_empty() {
            for change in &changes {
                if let Some(folder) = change.file.as_ref().filter(|f| f.is_folder()) {
                    self.track_folder(state, folder);
                } else if change.removed {
                    if let Some(id) = &change.file_id {
                        state.folders.remove(id);
                    }
                }
            }
            prune_folders(&mut state.folders, &self.folder_roots);
        }
        let mut candidates = Vec::new();
        for change in changes {
            if change.change_type.as_deref() == Some("drive") {
                continue;
            }
            let Some(file_id) = change
                .file_id
                .clone()
                .or_else(|| change.file.as_ref().map(|f| f.id.clone()))
            else {
                continue;
            };
            match change.file {
                Some(file) if !change.removed => {
                    if file.is_folder() || self.owned_elsewhere(&file, &viewer) {
                        continue;
                    }
                    if self.in_scope(&file, &viewer, state) {
                        candidates.push(file);
                    } else {
                        tombstone(state, work, &file_id);
                    }
                }
                _ => {
                    if !self.seen_by_another(&file_id, &viewer, state).await? {
                        tombstone(state, work, &file_id);
                    }
                }
            }
        }
        self.produce(api, candidates, true, state, work).await?;
        match next {
            Some(next) => state.feeds[index].token = next,
            None => {
                if let Some(start) = new_start {
                    state.feeds[index].token = start;
                }
                state.tasks.pop_front();
                state.page_token = None;
            }
        }
        Ok(())
    }

    /// A folder's change: in or out of the scoped tree; one newly in is listed.
    fn track_folder(&self, state: &mut Checkpoint, folder: &DriveFile) {
        if self.folder_roots.contains(&folder.id) {
            return;
        }
        let parent = folder
            .parents
            .iter()
            .find(|p| below_roots(&state.folders, &self.folder_roots, p))
            .cloned();
        match parent.filter(|_| !folder.trashed) {
            Some(parent) => {
                let known = state.folders.insert(folder.id.clone(), parent).is_some();
                if !known {
                    state.tasks.push_back(Task::Folder {
                        id: folder.id.clone(),
                    });
                }
            }
            None => {
                state.folders.remove(&folder.id);
            }
        }
    }

    /// A file gone from `viewer`'s view may still be in scope for another configured user
    /// (a share withdrawn from one of them): asked before deleting.
    async fn seen_by_another(
        &self,
        file_id: &str,
        viewer: &Option<String>,
        state: &Checkpoint,
    ) -> Result<bool, ConnectorError> {
        for api in self.users.iter().filter(|api| api.user != *viewer) {
            if let Some(file) = api.file(file_id, FILE_FIELDS).await? {
                if self.in_scope(&file, &api.user, state) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Converts files (several at once, results in order) and records their fingerprints.
    async fn produce(
        &self,
        api: &UserApi,
        files: Vec<DriveFile>,
        skip_unchanged: bool,
        state: &mut Checkpoint,
        work: &mut Work,
    ) -> Result<(), ConnectorError> {
        let known: Vec<Option<String>> = files
            .iter()
            .map(|file| {
                skip_unchanged
                    .then(|| state.fingerprint(&file.id).map(str::to_owned))
                    .flatten()
            })
            .collect();
        let results: Vec<Result<(String, Converted), ConnectorError>> =
            futures::stream::iter(files.into_iter().zip(known))
                .map(|(file, known)| async move {
                    let id = file.id.clone();
                    self.convert(api, file, known.as_deref())
                        .await
                        .map(|converted| (id, converted))
                })
                .buffered(CONCURRENCY)
                .collect()
                .await;
        for result in results {
            let (id, converted) = result?;
            match converted {
                Converted::Document(document, fingerprint) => {
                    state.remember(&id, fingerprint);
                    work.documents.push(*document);
                }
                Converted::Skipped(skipped, fingerprint) => {
                    state.remember(&id, fingerprint);
                    work.skipped.push(skipped);
                }
                Converted::Failed(failure) => {
                    state.forget(&id);
                    work.failures.push(failure);
                }
                Converted::Unchanged => {}
            }
        }
        Ok(())
    }

    async fn convert(
        &self,
        api: &UserApi,
        file: DriveFile,
        known: Option<&str>,
    ) -> Result<Converted, ConnectorError> {
        let failed = |error: String| {
            Converted::Failed(DocumentFailure {
                source_id: file.id.clone(),
                error,
            })
        };
        let acl = match &file.permissions {
            Some(permissions) => acl_of(permissions),
            None if file.drive_id.is_some() => match api.permissions(&file.id).await? {
                Ok(permissions) => acl_of(&permissions),
                Err(message) => return Ok(failed(format!("permissions: {message}"))),
            },
            None => Vec::new(),
        };
        let fingerprint = file.fingerprint(&acl);
        if known == Some(fingerprint.as_str()) {
            return Ok(Converted::Unchanged);
        }
        let Some(export) = file.export() else {
            return Ok(Converted::Unchanged);
        };
        let path = self.path(api, &file).await?;
        let mut document = convert::document(&self.scope, &file, &path, acl);
        match export {
            Export::Markdown(mime) => match api.export(&file.id, mime).await? {
                Ok(text) => document.markdown = text,
                Err(message) => return Ok(failed(format!("export: {message}"))),
            },
            Export::PlainText => match api.export(&file.id, "text/plain").await? {
                Ok(text) => document.markdown = text,
                Err(message) => return Ok(failed(format!("export: {message}"))),
            },
            Export::Sheets => match api.sheets(&file.id).await? {
                Ok(sheets) => document.markdown = convert::sheets_markdown(&file.name, &sheets),
                Err(reason) => match api.export(&file.id, "text/csv").await? {
                    Ok(csv) => {
                        tracing::warn!(%reason, "Sheets API refused; first sheet only (CSV export)");
                        document.markdown = format!(
                            "# {}\n\n{}",
                            file.name,
                            files::to_markdown(files::TextKind::Csv, &csv)
                        );
                        document
                            .metadata
                            .insert("sheets".into(), Value::String("first_only".into()));
                    }
                    Err(message) => return Ok(failed(format!("export: {message}"))),
                },
            },
            Export::Media => {
                if let Some(size) = file.size().filter(|size| *size > self.limits.max_file_bytes) {
                    return Ok(Converted::Skipped(
                        files::too_large(&file.id, size, &self.limits),
                        fingerprint,
                    ));
                }
                match api.media(&file, &self.limits).await? {
                    Ok(Downloaded::File(body)) => {
                        let content = files::into_content(body)
                            .await
                            .map_err(ConnectorError::from)?;
                        document = content.into_document(document);
                    }
                    Ok(Downloaded::TooLarge { size }) => {
                        return Ok(Converted::Skipped(
                            files::too_large(&file.id, size, &self.limits),
                            fingerprint,
                        ))
                    }
                    Err(message) => return Ok(failed(format!("download: {message}"))),
                }
            }
        }
        Ok(Converted::Document(Box::new(document), fingerprint))
    }

    /// `/My Drive/Projects/Plan` or `/<shared drive>/Specs/API spec`: folder names up the
    /// first parent chain (cached), as far as the user can see.
    async fn path(&self, api: &UserApi, file: &DriveFile) -> Result<String, ConnectorError> {
        let mut names = vec![file.name.clone()];
        let mut current = file.parents.first().cloned();
        for _ in 0..MAX_PATH_DEPTH {
            let Some(id) = current.take() else { break };
            let cached = self
                .names
                .lock()
                .ok()
                .and_then(|names| names.get(&id).cloned());
            let entry = match cached {
                Some(entry) => Some(entry),
                None => {
                    let fetched = if file.drive_id.as_deref() == Some(id.as_str()) {
                        api.drive_name(&id).await?.map(|name| (name, None))
                    } else {
                        api.file(&id, "id,name,parents,driveId")
                            .await?
                            .map(|folder| (folder.name, folder.parents.first().cloned()))
                    };
                    if let (Some(entry), Ok(mut names)) = (&fetched, self.names.lock()) {
                        names.insert(id.clone(), entry.clone());
                    }
                    fetched
                }
            };
            let Some((name, parent)) = entry else { break };
            names.push(name);
            current = parent;
        }
        names.reverse();
        Ok(format!("/{}", names.join("/")))
    }

    /// One page of the slim listing: every file in scope, by id.
    pub(super) async fn list_page(&self, cursor: Option<&str>) -> Result<IdPage, ConnectorError> {
        let mut state = match cursor {
            None => ListCursor {
                tasks: self.listing_tasks().into(),
                page_token: None,
            },
            Some(raw) => serde_json::from_str(raw)
                .map_err(|_| ConnectorError::Checkpoint("an unreadable listing cursor".into()))?,
        };
        let mut ids = Vec::new();
        if let Some(task) = state.tasks.front().cloned() {
            if task == Task::DiscoverDrives {
                let Some((drives, next)) = self.reader().drives_page(state.page_token.as_deref()).await? else {
                    return Err(refused());
                };
                for id in drives {
                    let task = Task::SharedDrive { id: id.clone() };
                    if !self.shared_drives.contains(&id) && !state.tasks.contains(&task) {
                        state.tasks.push_back(task);
                    }
                }
                list_advance(&mut state, next);
            } else if let Some((user, corpora, drive, q)) = self.listing_query(&task) {
                let api = self.api_of(&user)?;
                let page = api
                    .files_page(corpora, drive.as_deref(), &q, LIST_PAGE_SIZE, LIST_FIELDS, state.page_token.as_deref())
                    .await?
                    .ok_or_else(refused)?;
                for file in page.files {
                    if file.is_folder() {
                        if let Task::Folder { .. } = task {
                            let sub = Task::Folder { id: file.id.clone() };
                            if !state.tasks.contains(&sub) {
                                state.tasks.push_back(sub);
                            }
                        }
                        continue;
                    }
                    if !file.trashed && file.export().is_some() && self.config.mime_allowed(&file.mime_type) {
                        ids.push(file.id);
                    }
                }
                list_advance(&mut state, page.next);
            } else {
                state.tasks.pop_front();
            }
        }
        let next = if state.tasks.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&state).map_err(|e| ConnectorError::Protocol(e.to_string()))?)
        };
        Ok(IdPage { source_ids: ids, next })
    }
}

fn refused() -> ConnectorError {
    ConnectorError::Checkpoint("Drive refused the listing cursor; list again from the start".into())
}

fn advance(state: &mut Checkpoint, next: Option<String>) {
    match next {
        Some(next) => state.page_token = Some(next),
        None => {
            state.tasks.pop_front();
            state.page_token = None;
        }
    }
}

fn list_advance(state: &mut ListCursor, next: Option<String>) {
    match next {
        Some(next) => state.page_token = Some(next),
        None => {
            state.tasks.pop_front();
            state.page_token = None;
        }
    }
}

fn tombstone(state: &mut Checkpoint, work: &mut Work, file_id: &str) {
    state.forget(file_id);
    if !work.deleted.iter().any(|id| id == file_id) {
        work.deleted.push(file_id.to_owned());
    }
}
