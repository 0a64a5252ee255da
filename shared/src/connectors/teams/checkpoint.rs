//! Where a Teams pull stands: the delta link of every channel synced so far (the whole
//! `@odata.deltaLink` URL, opaque), and the pass under way: the channels it covers (found
//! when it began), the channel it is at and that channel's next delta page.
//!
//! `{"v":1, "delta":{"<team>/<channel>":"https://graph…/delta?$deltatoken=…"},
//!   "pass":{"channels":[{team_id,team_name,channel_id,channel_name}], "at":0, "next":null}}`

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connectors::ConnectorError;

const VERSION: u64 = 1;
/// Longest link accepted from a stored checkpoint.
const MAX_LINK_CHARS: usize = 8192;

/// A channel a pass reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRef {
    pub team_id: String,
    pub team_name: String,
    pub channel_id: String,
    pub channel_name: String,
}

impl ChannelRef {
    /// `<team>/<channel>`: the key of its delta link, the prefix of its threads' ids.
    pub fn key(&self) -> String {
        format!("{}/{}", self.team_id, self.channel_id)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pass {
    pub channels: Vec<ChannelRef>,
    /// Index of the channel being read; those before it are done for this pass.
    pub at: usize,
    /// That channel's next delta page (`@odata.nextLink`); `None`: its first page.
    pub next: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub v: u64,
    /// Channel key → the delta link its next pass starts from.
    #[serde(default)]
    pub delta: BTreeMap<String, String>,
    #[serde(default)]
    pub pass: Option<Pass>,
}

impl Checkpoint {
    pub fn new() -> Self {
        Self {
            v: VERSION,
            ..Self::default()
        }
    }

    /// `None` (the first pull) is a fresh checkpoint.
    pub fn read(value: Option<&Value>) -> Result<Self, ConnectorError> {
        let Some(value) = value else {
            return Ok(Self::new());
        };
        let bad = |message: String| ConnectorError::Checkpoint(message);
        let checkpoint: Self =
            serde_json::from_value(value.clone()).map_err(|e| bad(format!("malformed: {e}")))?;
        if checkpoint.v != VERSION {
            return Err(bad(format!("version {} is not {VERSION}", checkpoint.v)));
        }
        let links = checkpoint
            .delta
            .values()
            .chain(checkpoint.pass.iter().filter_map(|p| p.next.as_ref()));
        for link in links {
            if link.is_empty() || link.len() > MAX_LINK_CHARS {
                return Err(bad("a delta link is empty or too long".into()));
            }
        }
        if let Some(pass) = &checkpoint.pass {
            if pass.at > pass.channels.len() {
                return Err(bad("the pass is past its last channel".into()));
            }
        }
        Ok(checkpoint)
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trips_and_refuses_foreign_checkpoints() {
        let mut checkpoint = Checkpoint::new();
        checkpoint
            .delta
            .insert("t/c".into(), "https://graph.example/delta?$deltatoken=1".into());
        checkpoint.pass = Some(Pass {
            channels: vec![ChannelRef {
                team_id: "t".into(),
                team_name: "T".into(),
                channel_id: "c".into(),
                channel_name: "C".into(),
            }],
            at: 0,
            next: None,
        });
        assert_eq!(
            Checkpoint::read(Some(&checkpoint.to_value())).ok(),
            Some(checkpoint)
        );
        assert_eq!(Checkpoint::read(None).ok(), Some(Checkpoint::new()));
        for bad in [
            json!({"v": 9}),
            json!("jira"),
            json!({"v": 1, "delta": {"t/c": ""}}),
            json!({"v": 1, "pass": {"channels": [], "at": 2, "next": null}}),
        ] {
            assert!(Checkpoint::read(Some(&bad)).is_err(), "{bad}");
        }
    }
}
