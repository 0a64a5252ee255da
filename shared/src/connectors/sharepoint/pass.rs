//! One step of a pass: resolving sites and drives, a delta page, a moved folder's subtree,
//! a page of site pages; and turning files into documents.

use std::collections::BTreeSet;

use futures::StreamExt as _;
use serde_json::Value;

use super::checkpoint::{folder_path, under, DriveState, SiteState, MAX_FOLDERS};
use super::client::{ItemsPage, PagesPage, Refusal};
use super::convert::{self, acl_of, file_source_id, DriveItem, Place, ITEM_SELECT};
use super::*;
use crate::connectors::kit::files::{self, Downloaded};

/// Files downloaded at once within a pull.
const CONCURRENCY: usize = 8;

/// A file's fate in a pull.
enum Converted {
    Document(Box<Document>, String),
    Skipped(SkippedFile, String),
    Failed(DocumentFailure),
    Unchanged,
}

fn failure(source_id: String, error: String) -> DocumentFailure {
    DocumentFailure { source_id, error }
}

fn parse_items(raw: Vec<Value>) -> Result<Vec<DriveItem>, ConnectorError> {
    raw.into_iter()
        .map(|value| {
            serde_json::from_value::<DriveItem>(value)
                .map_err(|e| ConnectorError::Protocol(format!("a driveItem: {e}")))
        })
        .collect()
}

impl SharepointConnector {
    pub(super) async fn step(&self, state: &mut Checkpoint, work: &mut Work) -> Result<(), ConnectorError> {
        let Some(task) = state.tasks.front().cloned() else {
            return Ok(());
        };
        match task {
            Task::Resolve => {
                self.resolve(state, work).await?;
                state.tasks.pop_front();
                Ok(())
            }
            Task::Delta { drive } => self.delta_step(state, &drive, work, false).await,
            Task::Subtree { drive, folder, link } => {
                self.subtree_step(state, &drive, &folder, link, work).await
            }
            Task::Pages { site } => self.pages_step(state, &site, work).await,
        }
    }

    /// Every site's id and libraries and every user drive; a refused one is a failure of
    /// this run, its drives keep their state for the next.
    async fn resolve(&self, state: &mut Checkpoint, work: &mut Work) -> Result<(), ConnectorError> {
        let mut seen_drives: BTreeSet<String> = BTreeSet::new();
        let mut failed_sites: BTreeSet<String> = BTreeSet::new();
        let mut failed_owners: BTreeSet<String> = BTreeSet::new();
        let mut sites: Vec<SiteState> = Vec::new();
        let mut drives: Vec<DriveState> = Vec::new();
        let mut page_tasks = Vec::new();
        let refused = |label: String, refusal: Refusal, work: &mut Work| {
            tracing::warn!(%label, status = refusal.status, "a site or drive was refused; the others sync");
            work.failures.push(failure(label, refusal.describe(self.app_only)));
        };
        for site_ref in &self.sites {
            let site = match self.graph.site(site_ref).await? {
                Ok(site) => site,
                Err(refusal) => {
                    // A known site keeps its drives (found by the reference it came from).
                    let label = site_ref.label();
                    failed_sites.extend(state.sites.iter().filter(|s| s.key == label).map(|s| s.id.clone()));
                    refused(site_ref.label(), refusal, work);
                    continue;
                }
            };
            let site_state = SiteState {
                key: site_ref.label(),
                id: site.id.clone(),
                name: site.display_name.clone().or(site.name.clone()).unwrap_or_default(),
                url: site.web_url.clone().unwrap_or_default(),
            };
            match self.graph.site_drives(&site.id).await? {
                Ok(found) => {
                    for drive in found {
                        let name = drive.name.clone().unwrap_or_default();
                        if self.config.drive_selected(&drive.id, &name) && seen_drives.insert(drive.id.clone()) {
                            drives.push(DriveState {
                                id: drive.id,
                                name,
                                site: Some(site.id.clone()),
                                ..DriveState::default()
                            });
                        }
                    }
                    if self.config.include_site_pages {
                        page_tasks.push(Task::Pages { site: site.id.clone() });
                    }
                }
                Err(refusal) => {
                    failed_sites.insert(site.id.clone());
                    refused(site_ref.label(), refusal, work);
                }
            }
            if !sites.iter().any(|s| s.id == site_state.id) {
                sites.push(site_state);
            }
        }
        let owners: Vec<Option<&str>> = self
            .users
            .iter()
            .map(|u| Some(u.as_str()))
            .chain(self.me.then_some(None))
            .collect();
        for owner in owners {
            let label = owner.unwrap_or("me").to_owned();
            match self.graph.user_drive(owner).await? {
                Ok(drive) => {
                    if seen_drives.insert(drive.id.clone()) {
                        drives.push(DriveState {
                            id: drive.id,
                            name: drive.name.unwrap_or_else(|| "OneDrive".into()),
                            owner: Some(label),
                            ..DriveState::default()
                        });
                    }
                }
                Err(refusal) => {
                    failed_owners.insert(label.clone());
                    refused(format!("user:{label}"), refusal, work);
                }
            }
        }
        // Drives keep their delta links and folder trees; those of a refused site stay
        // (without a task) until it answers again; the rest that vanished are dropped.
        let previous = std::mem::take(&mut state.drives);
        for mut drive in drives {
            if let Some(old) = previous.iter().find(|d| d.id == drive.id) {
                drive.link = old.link.clone();
                drive.paging = old.paging;
                drive.synced = old.synced;
                drive.root = old.root.clone();
                drive.folders = old.folders.clone();
            }
            state.tasks.push_back(Task::Delta { drive: drive.id.clone() });
            state.drives.push(drive);
        }
        for old in previous {
            let kept = old.site.as_ref().is_some_and(|s| failed_sites.contains(s))
                || old.owner.as_ref().is_some_and(|o| failed_owners.contains(o));
            if kept && !seen_drives.contains(&old.id) {
                state.drives.push(old);
            }
        }
        let old_sites = std::mem::take(&mut state.sites);
        state.sites = sites;
        for old in old_sites {
            if failed_sites.contains(&old.id) && !state.sites.iter().any(|s| s.id == old.id) {
                state.sites.push(old);
            }
        }
        state.tasks.extend(page_tasks);
        state.page_link = None;
        state.page_fallback = false;
        Ok(())
    }

    fn place<'a>(&self, state: &'a Checkpoint, drive: &'a DriveState) -> Place<'a> {
        let site = drive.site.as_deref().and_then(|id| state.site(id));
        Place {
            site_name: site.map(|s| s.name.as_str()),
            site_url: site.map(|s| s.url.as_str()),
            library: &drive.name,
            drive_id: &drive.id,
            owner: drive.owner.as_deref(),
        }
    }

    /// The file's path and whether it is in scope (a file, its extension, `folder_paths`).
    fn scoped(&self, drive: &DriveState, item: &DriveItem) -> (String, bool) {
        let parent = item
            .parent_id()
            .and_then(|p| folder_path(drive.root.as_deref(), &drive.folders, p));
        let path = format!("{}/{}", parent.as_deref().unwrap_or_default(), item.name());
        let in_scope = item.is_file()
            && self.config.extension_allowed(item.name())
            && (self.folders.is_empty() || parent.as_deref().is_some_and(|p| under(p, &self.folders)));
        (path, in_scope)
    }

    async fn delta_step(
        &self,
        state: &mut Checkpoint,
        drive_id: &str,
        work: &mut Work,
        retried: bool,
    ) -> Result<(), ConnectorError> {
        let Some(drive) = state.drive(drive_id) else {
            state.tasks.pop_front();
            return Ok(());
        };
        let link = drive.link.clone();
        let page = self
            .graph
            .delta_page(drive_id, link.as_deref(), ITEM_SELECT, self.config.batch_size())
            .await?;
        let (items, next, delta) = match page {
            ItemsPage::Page { items, next, delta } => (items, next, delta),
            ItemsPage::Resync if !retried && link.is_some() => {
                if let Some(drive) = state.drive_mut(drive_id) {
                    drive.link = None;
                    drive.paging = false;
                    drive.root = None;
                    drive.folders.clear();
                }
                return Box::pin(self.delta_step(state, drive_id, work, true)).await;
            }
            ItemsPage::Resync => {
                return Err(ConnectorError::Protocol("Graph refused a fresh delta enumeration (410)".into()))
            }
            ItemsPage::Refused(refusal) => {
                work.failures.push(failure(format!("drive:{drive_id}"), refusal.describe(self.app_only)));
                state.tasks.pop_front();
                return Ok(());
            }
        };
        let items = parse_items(items)?;
        let mut subtrees = Vec::new();
        let Some(drive) = state.drive_mut(drive_id) else {
            return Ok(());
        };
        let incremental = !drive.paging && link.is_some();
        // Folders first, so the files of this page find their parents.
        for item in items.iter().filter(|i| i.is_container() && !i.is_file()) {
            if item.is_deleted() {
                drive.folders.remove(&item.id);
            } else if item.root.is_some() {
                drive.root = Some(item.id.clone());
            } else if let Some(parent) = item.parent_id() {
                let entry = (parent.to_owned(), item.name().to_owned());
                let old = drive.folders.insert(item.id.clone(), entry.clone());
                if incremental && old.is_some_and(|old| old != entry) {
                    subtrees.push(item.id.clone());
                }
            }
        }
        if drive.folders.len() > MAX_FOLDERS {
            return Err(ConnectorError::Protocol(format!(
                "drive {drive_id} has more than {MAX_FOLDERS} folders"
            )));
        }
        let drive = drive.clone();
        let mut candidates = Vec::new();
        for item in items.into_iter().filter(|i| !i.is_container() || i.is_file()) {
            let source_id = file_source_id(drive_id, &item.id);
            if item.is_deleted() {
                tombstone(state, work, &source_id);
                continue;
            }
            let (path, in_scope) = self.scoped(&drive, &item);
            if in_scope {
                candidates.push((item, path));
            } else if drive.synced {
                tombstone(state, work, &source_id);
            }
        }
        self.produce(state, &drive, candidates, work).await?;
        for folder in subtrees {
            let task = Task::Subtree { drive: drive_id.to_owned(), folder, link: None };
            if !state.tasks.contains(&task) {
                state.tasks.push_back(task);
            }
        }
        let Some(drive) = state.drive_mut(drive_id) else {
            return Ok(());
        };
        match (next, delta) {
            (Some(next), _) => {
                drive.link = Some(next);
                drive.paging = true;
            }
            (None, Some(delta)) => {
                drive.link = Some(delta);
                drive.paging = false;
                drive.synced = true;
                state.tasks.pop_front();
            }
            (None, None) => {
                return Err(ConnectorError::Protocol(
                    "a delta page has neither @odata.nextLink nor @odata.deltaLink".into(),
                ))
            }
        }
        Ok(())
    }

    /// The children of a folder whose path changed: files get their new path (or leave
    /// the configured folders); sub-folders are walked too.
    async fn subtree_step(
        &self,
        state: &mut Checkpoint,
        drive_id: &str,
        folder: &str,
        link: Option<String>,
        work: &mut Work,
    ) -> Result<(), ConnectorError> {
        let Some(drive) = state.drive(drive_id).cloned() else {
            state.tasks.pop_front();
            return Ok(());
        };
        let page = self
            .graph
            .children_page(drive_id, folder, link.as_deref(), ITEM_SELECT, self.config.batch_size())
            .await?;
        let (items, next) = match page {
            ItemsPage::Page { items, next, .. } => (parse_items(items)?, next),
            // Gone meanwhile: the delta reports what became of it.
            ItemsPage::Refused(_) | ItemsPage::Resync => {
                state.tasks.pop_front();
                return Ok(());
            }
        };
        let mut candidates = Vec::new();
        for item in items {
            if item.is_deleted() {
                continue;
            }
            if item.is_container() && !item.is_file() {
                let task = Task::Subtree { drive: drive_id.to_owned(), folder: item.id.clone(), link: None };
                if !state.tasks.contains(&task) {
                    state.tasks.push_back(task);
                }
                continue;
            }
            let (path, in_scope) = self.scoped(&drive, &item);
            if in_scope {
                candidates.push((item, path));
            } else {
                tombstone(state, work, &file_source_id(drive_id, &item.id));
            }
        }
        self.produce(state, &drive, candidates, work).await?;
        match next {
            Some(next) => {
                if let Some(Task::Subtree { link, .. }) = state.tasks.front_mut() {
                    *link = Some(next);
                }
            }
            None => {
                state.tasks.pop_front();
            }
        }
        Ok(())
    }

    async fn pages_step(&self, state: &mut Checkpoint, site_id: &str, work: &mut Work) -> Result<(), ConnectorError> {
        let Some(site) = state.site(site_id).cloned() else {
            state.tasks.pop_front();
            return Ok(());
        };
        let link = state.page_link.clone();
        let mut page = self.graph.pages_page(site_id, link.as_deref(), !state.page_fallback).await?;
        if let PagesPage::ExpandRefused = page {
            tracing::info!("the page list refused $expand=canvasLayout; reading pages one by one");
            state.page_fallback = true;
            page = self.graph.pages_page(site_id, link.as_deref(), false).await?;
        }
        let (pages, next) = match page {
            PagesPage::Page { pages, next } => (pages, next),
            PagesPage::Refused(refusal) => {
                work.failures.push(failure(format!("site:{}", site.url), format!("pages: {}", refusal.describe(self.app_only))));
                finish_pages(state);
                return Ok(());
            }
            PagesPage::ExpandRefused => {
                return Err(ConnectorError::Protocol("the page list refused a plain listing".into()))
            }
        };
        for listed in pages {
            let Some(page_id) = listed.get("id").and_then(Value::as_str).map(str::to_owned) else {
                continue;
            };
            let source_id = pages::page_source_id(site_id, &page_id);
            let fingerprint = pages::fingerprint(&listed);
            if state.fingerprint(&source_id) == Some(fingerprint.as_str()) {
                continue;
            }
            let full = if state.page_fallback || listed.get("canvasLayout").is_none() {
                match self.graph.page(site_id, &page_id).await? {
                    Ok(full) => full,
                    Err(message) => {
                        state.forget(&source_id);
                        work.failures.push(failure(source_id, message));
                        continue;
                    }
                }
            } else {
                listed
            };
            if let Some(document) = pages::document(&self.scope, &full, &site) {
                state.remember(&source_id, fingerprint);
                work.documents.push(document);
            }
        }
        match next {
            Some(next) => state.page_link = Some(next),
            None => finish_pages(state),
        }
        Ok(())
    }

    /// Converts files (several at once, results in order) and records their fingerprints.
    async fn produce(
        &self,
        state: &mut Checkpoint,
        drive: &DriveState,
        files: Vec<(DriveItem, String)>,
        work: &mut Work,
    ) -> Result<(), ConnectorError> {
        let tenant = self.tenant_label();
        let place = self.place(state, drive);
        let known: Vec<Option<String>> = files
            .iter()
            .map(|(item, _)| state.fingerprint(&file_source_id(&drive.id, &item.id)).map(str::to_owned))
            .collect();
        let results: Vec<Result<(String, Converted), ConnectorError>> =
            futures::stream::iter(files.into_iter().zip(known))
                .map(|((item, path), known)| {
                    let (place, tenant) = (place.clone(), tenant.as_str());
                    async move {
                        let id = file_source_id(&drive.id, &item.id);
                        self.convert(&place, tenant, item, &path, known.as_deref())
                            .await
                            .map(|converted| (id, converted))
                    }
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
                Converted::Failed(failed) => {
                    state.forget(&id);
                    work.failures.push(failed);
                }
                Converted::Unchanged => {}
            }
        }
        Ok(())
    }

    async fn convert(
        &self,
        place: &Place<'_>,
        tenant: &str,
        item: DriveItem,
        path: &str,
        known: Option<&str>,
    ) -> Result<Converted, ConnectorError> {
        let source_id = file_source_id(place.drive_id, &item.id);
        let acl = if self.config.include_permissions {
            match self.graph.permissions(place.drive_id, &item.id).await? {
                Ok(permissions) => acl_of(&permissions, tenant),
                Err(message) => return Ok(Converted::Failed(failure(source_id, message))),
            }
        } else {
            Vec::new()
        };
        let fingerprint = item.fingerprint(path, &acl);
        if known == Some(fingerprint.as_str()) {
            return Ok(Converted::Unchanged);
        }
        if let Some(size) = item.size.filter(|size| *size > self.limits.max_file_bytes) {
            return Ok(Converted::Skipped(files::too_large(&source_id, size, &self.limits), fingerprint));
        }
        let document = convert::document(&self.scope, &item, place, path, acl);
        match self.graph.content(place.drive_id, &item.id, item.name(), &self.limits).await? {
            Ok(Downloaded::File(body)) => {
                let content = files::into_content(body).await.map_err(ConnectorError::from)?;
                Ok(Converted::Document(Box::new(content.into_document(document)), fingerprint))
            }
            Ok(Downloaded::TooLarge { size }) => Ok(Converted::Skipped(
                files::too_large(&source_id, size, &self.limits),
                fingerprint,
            )),
            Err(message) => Ok(Converted::Failed(failure(source_id, message))),
        }
    }
}

fn finish_pages(state: &mut Checkpoint) {
    state.tasks.pop_front();
    state.page_link = None;
    state.page_fallback = false;
}

fn tombstone(state: &mut Checkpoint, work: &mut Work, source_id: &str) {
    state.forget(source_id);
    if !work.deleted.iter().any(|id| id == source_id) {
        work.deleted.push(source_id.to_owned());
    }
}
