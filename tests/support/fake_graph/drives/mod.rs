//! The drive API of SharePoint document libraries and OneDrive, as Graph v1.0 answers it:
//! sites by path and id, a site's drives, user drives and `/me/drive` (delegated only),
//! driveItems in a tree, `root/delta` with `$top` paging (`@odata.nextLink`) and
//! `@odata.deltaLink` tokens (each changed item once, at its latest state; removed items
//! with the `deleted` facet, a deleted folder's descendants too), 410 `resyncRequired` for
//! an expired token, `/content` answering 302 to a download URL on another origin (a
//! second loopback server that records whether a bearer token reached it), permissions,
//! site pages with `canvasLayout`, locked (423) and refused (403) sites.
//!
//! Tokens are change sequence numbers: a deltaLink's token is the world's sequence when
//! its enumeration started; an enumeration is a snapshot of the changed item ids, served
//! page by page at the items' current state.

mod routes;
mod sites;
mod world;

pub use world::{DownloadRecord, DrivesWorld, NewFile};

use axum::Router;

use super::{FakeGraph, Shared};

/// The routes under `/v1.0`.
pub fn routes() -> Router<Shared> {
    routes::router()
}

/// Test controls and mutations of the drive world.
impl FakeGraph {
    /// Starts the download server (another origin) the first time; returns the world.
    pub fn drives(&self) -> std::sync::MutexGuard<'_, DrivesWorld> {
        self.shared().drives()
    }

    /// Starts the second (download) origin; call once before syncing files.
    pub async fn start_downloads(&self) {
        let base = routes::start_download_server(self.shared().clone()).await;
        self.drives().download_base = base;
    }
}
