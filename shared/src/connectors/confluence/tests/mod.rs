//! The Confluence connector's unit tests, by concern.

mod checkpoint;
mod client;
mod config;

use serde_json::json;

use super::ConfluenceConfig;

pub(super) fn config() -> ConfluenceConfig {
    serde_json::from_value(json!({"base_url": "https://example.atlassian.net"})).unwrap()
}
