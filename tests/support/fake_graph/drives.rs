//! The drive API of SharePoint document libraries and OneDrive (sites, drives, driveItems,
//! delta, content, permissions, site pages). Filled in by the SharePoint source's work.

use axum::Router;

use super::Shared;

/// Sites, drives, items and their changes.
#[derive(Default)]
pub struct DrivesWorld {}

/// The routes under `/v1.0`.
pub fn routes() -> Router<Shared> {
    Router::new()
}
