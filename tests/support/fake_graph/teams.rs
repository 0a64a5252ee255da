//! Teams, channels and channel messages (list, replies, delta). Filled in by the Teams
//! source's work.

use axum::Router;

use super::Shared;

/// Teams, channels, messages and their changes.
#[derive(Default)]
pub struct TeamsWorld {}

/// The routes under `/v1.0`.
pub fn routes() -> Router<Shared> {
    Router::new()
}
