//! The slim listing the engine's prune reads: every file in scope of every drive (a fresh
//! delta enumeration with few fields, one page per call) and every site page. A site or
//! drive that cannot be read makes the listing fail: the prune is skipped, never run on a
//! partial listing.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::checkpoint::{folder_path, under, DriveState};
use super::client::{ItemsPage, PagesPage, Refusal};
use super::convert::{file_source_id, DriveItem, LIST_SELECT};
use super::*;

/// Items per delta page of the listing.
const LIST_TOP: usize = 500;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListCursor {
    drives: VecDeque<String>,
    sites: VecDeque<String>,
    link: Option<String>,
    root: Option<String>,
    folders: BTreeMap<String, (String, String)>,
    /// Files whose parent was not seen yet: (id, parent, name), settled at the drive's end.
    pending: Vec<(String, String, String)>,
}

fn unreadable(label: &str, refusal: &Refusal, app_only: bool) -> ConnectorError {
    ConnectorError::Unavailable(format!(
        "{label} could not be listed, so nothing is deleted this time: {}",
        refusal.describe(app_only)
    ))
}

impl SharepointConnector {
    pub(super) async fn list_page(&self, cursor: Option<&str>) -> Result<IdPage, ConnectorError> {
        let mut state = match cursor {
            None => return self.list_start().await,
            Some(raw) => serde_json::from_str::<ListCursor>(raw)
                .map_err(|_| ConnectorError::Checkpoint("an unreadable listing cursor".into()))?,
        };
        let mut ids = Vec::new();
        if let Some(drive) = state.drives.front().cloned() {
            self.list_drive_page(&mut state, &drive, &mut ids).await?;
        } else if let Some(site) = state.sites.front().cloned() {
            match self.graph.pages_page(&site, state.link.as_deref(), false).await? {
                PagesPage::Page { pages, next } => {
                    ids.extend(
                        pages
                            .iter()
                            .filter_map(|p| p.get("id").and_then(Value::as_str))
                            .map(|id| pages::page_source_id(&site, id)),
                    );
                    state.link = next;
                    if state.link.is_none() {
                        state.sites.pop_front();
                    }
                }
                PagesPage::Refused(refusal) => {
                    return Err(unreadable(&format!("the pages of site {site}"), &refusal, self.app_only))
                }
                PagesPage::ExpandRefused => {
                    return Err(ConnectorError::Protocol("the page list refused a plain listing".into()))
                }
            }
        }
        let next = if state.drives.is_empty() && state.sites.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&state).map_err(|e| ConnectorError::Protocol(e.to_string()))?)
        };
        Ok(IdPage { source_ids: ids, next })
    }

    /// Resolves every site and user drive; any refusal fails the listing.
    async fn list_start(&self) -> Result<IdPage, ConnectorError> {
        let mut state = ListCursor::default();
        for site_ref in &self.sites {
            let site = self
                .graph
                .site(site_ref)
                .await?
                .map_err(|r| unreadable(&site_ref.label(), &r, self.app_only))?;
            let drives = self
                .graph
                .site_drives(&site.id)
                .await?
                .map_err(|r| unreadable(&site_ref.label(), &r, self.app_only))?;
            for drive in drives {
                let name = drive.name.clone().unwrap_or_default();
                if self.config.drive_selected(&drive.id, &name) && !state.drives.contains(&drive.id) {
                    state.drives.push_back(drive.id);
                }
            }
            if self.config.include_site_pages && !state.sites.contains(&site.id) {
                state.sites.push_back(site.id);
            }
        }
        let owners: Vec<Option<&str>> = self
            .users
            .iter()
            .map(|u| Some(u.as_str()))
            .chain(self.me.then_some(None))
            .collect();
        for owner in owners {
            let drive = self
                .graph
                .user_drive(owner)
                .await?
                .map_err(|r| unreadable(&format!("user:{}", owner.unwrap_or("me")), &r, self.app_only))?;
            if !state.drives.contains(&drive.id) {
                state.drives.push_back(drive.id);
            }
        }
        let next = if state.drives.is_empty() && state.sites.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&state).map_err(|e| ConnectorError::Protocol(e.to_string()))?)
        };
        Ok(IdPage { source_ids: Vec::new(), next })
    }

    async fn list_drive_page(
        &self,
        state: &mut ListCursor,
        drive_id: &str,
        ids: &mut Vec<String>,
    ) -> Result<(), ConnectorError> {
        let page = self
            .graph
            .delta_page(drive_id, state.link.as_deref(), LIST_SELECT, LIST_TOP)
            .await?;
        let (items, next) = match page {
            ItemsPage::Page { items, next, .. } => (items, next),
            ItemsPage::Resync => {
                return Err(ConnectorError::Unavailable(format!(
                    "drive {drive_id}'s listing expired midway; deletions wait for the next sync"
                )))
            }
            ItemsPage::Refused(refusal) => {
                return Err(unreadable(&format!("drive:{drive_id}"), &refusal, self.app_only))
            }
        };
        let items: Vec<DriveItem> = items
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(|e| ConnectorError::Protocol(format!("a driveItem: {e}"))))
            .collect::<Result<_, _>>()?;
        for item in items.iter().filter(|i| i.is_container() && !i.is_file() && !i.is_deleted()) {
            if item.root.is_some() {
                state.root = Some(item.id.clone());
            } else if let Some(parent) = item.parent_id() {
                state.folders.insert(item.id.clone(), (parent.to_owned(), item.name().to_owned()));
            }
        }
        for item in items.iter().filter(|i| i.is_file() && !i.is_deleted()) {
            if !self.config.extension_allowed(item.name()) {
                continue;
            }
            if self.folders.is_empty() {
                ids.push(file_source_id(drive_id, &item.id));
            } else if let Some(parent) = item.parent_id() {
                state
                    .pending
                    .push((item.id.clone(), parent.to_owned(), item.name().to_owned()));
            }
        }
        match next {
            Some(next) => state.link = Some(next),
            None => {
                // The whole tree is known now: settle the files below the configured folders.
                let drive = DriveState {
                    root: state.root.take(),
                    folders: std::mem::take(&mut state.folders),
                    ..DriveState::default()
                };
                for (id, parent, _) in std::mem::take(&mut state.pending) {
                    let path = folder_path(drive.root.as_deref(), &drive.folders, &parent);
                    if path.is_some_and(|p| under(&p, &self.folders)) {
                        ids.push(file_source_id(drive_id, &id));
                    }
                }
                state.link = None;
                state.drives.pop_front();
            }
        }
        Ok(())
    }
}
