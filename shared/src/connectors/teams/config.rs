//! The Teams connector's configuration: what `POST /connectors` takes as `config` (its JSON
//! Schema is what `GET /sources` shows). There is no base URL: Graph's host is deployment
//! configuration (`TRIBUTARY_API_URL_GRAPH`).

use serde::{Deserialize, Serialize};

use crate::connectors::microsoft::TenantId;
use crate::connectors::registry::SourceConfig;
use crate::connectors::ConnectorError;

/// Graph's largest page of channel messages (`$top`).
pub const MAX_BATCH_SIZE: usize = 50;
/// Longest team id, channel id or name accepted in a filter.
const MAX_FILTER_CHARS: usize = 256;

fn default_batch_size() -> usize {
    MAX_BATCH_SIZE
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    /// The Entra tenant (GUID or domain); required with client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    /// Team ids to read; empty: every team the app (or the connected user) can see.
    #[serde(default)]
    pub teams: Vec<String>,
    /// Channel names or ids to read (in every selected team); empty: every channel.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Replies are part of each thread's document.
    #[serde(default = "default_true")]
    pub include_replies: bool,
    /// Root messages per page of the change feed (1 to 50).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

impl TeamsConfig {
    /// Whether a channel passes the `channels` filter.
    pub fn wants_channel(&self, id: &str, name: &str) -> bool {
        self.channels.is_empty()
            || self
                .channels
                .iter()
                .any(|wanted| wanted == id || wanted.eq_ignore_ascii_case(name))
    }
}

impl SourceConfig for TeamsConfig {
    fn check(&self) -> Result<(), ConnectorError> {
        let invalid = |message: String| Err(ConnectorError::Config(message));
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return invalid(format!("batch_size must be between 1 and {MAX_BATCH_SIZE}"));
        }
        for team in &self.teams {
            // Team ids are group GUIDs; they become path segments.
            let guid_like = !team.is_empty()
                && team.len() <= 64
                && team.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            if !guid_like {
                return invalid(format!("teams: {team:?} is not a team id (a GUID)"));
            }
        }
        for channel in &self.channels {
            if channel.trim().is_empty() || channel.len() > MAX_FILTER_CHARS {
                return invalid("channels: names or ids, 1 to 256 characters".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: serde_json::Value) -> Result<TeamsConfig, ConnectorError> {
        let config: TeamsConfig = serde_json::from_value(value)
            .map_err(|error| ConnectorError::Config(error.to_string()))?;
        config.check().map(|()| config)
    }

    #[test]
    fn defaults_filters_and_refusals() {
        let config = parse(json!({})).expect("valid");
        assert_eq!(config.batch_size, MAX_BATCH_SIZE);
        assert!(config.include_replies);
        assert!(config.wants_channel("19:x@thread.tacv2", "General"));
        let config = parse(json!({"tenant_id": "contoso.onmicrosoft.com",
            "teams": ["a1b2c3d4-0000-1111-2222-333344445555"], "channels": ["general"]}))
        .expect("valid");
        assert!(config.wants_channel("19:x@thread.tacv2", "General"));
        assert!(!config.wants_channel("19:y@thread.tacv2", "Random"));
        for bad in [
            json!({"batch_size": 0}),
            json!({"batch_size": 51}),
            json!({"teams": ["../me"]}),
            json!({"channels": [""]}),
            json!({"tenant_id": "a/b"}),
            json!({"base_url": "https://graph.microsoft.com"}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad} accepted");
        }
    }
}
