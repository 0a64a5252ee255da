//! The Jira connector's unit tests, by concern.

mod checkpoint;
mod config;
mod convert;

use serde_json::json;

use super::{JiraConfig, JiraConnector};
use crate::connectors::Credentials;
use crate::http::RetryPolicy;

pub(super) fn config() -> JiraConfig {
    serde_json::from_value(json!({"base_url": "https://example.atlassian.net"})).unwrap()
}

pub(super) fn connector() -> JiraConnector {
    JiraConnector::new(
        "c1",
        config(),
        Credentials::Basic {
            email: "a@example.com".into(),
            api_token: "t".into(),
        },
        crate::http::GuardedClient::with_policy(
            crate::http::policy::NetworkPolicy::allow_private(),
        )
        .unwrap(),
        RetryPolicy::default(),
    )
    .unwrap()
}
