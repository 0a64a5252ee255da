//! Where a pull resumes: the provider's cursor of the next page. Stored by the sync engine
//! between batches (and across invocations), so it is versioned.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connectors::ConnectorError;

const VERSION: u64 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u64,
    /// The next page's cursor; `None` before the first page.
    pub cursor: Option<String>,
}

impl Checkpoint {
    pub fn at(cursor: Option<String>) -> Self {
        Self {
            version: VERSION,
            cursor,
        }
    }

    /// `None` (a fresh pull) is the start.
    pub fn read(value: Option<&Value>) -> Result<Self, ConnectorError> {
        let Some(value) = value else {
            return Ok(Self::at(None));
        };
        let checkpoint: Self = serde_json::from_value(value.clone())
            .map_err(|error| ConnectorError::Checkpoint(error.to_string()))?;
        if checkpoint.version != VERSION {
            return Err(ConnectorError::Checkpoint(format!(
                "version {} is not {VERSION}",
                checkpoint.version
            )));
        }
        Ok(checkpoint)
    }

    pub fn to_value(&self) -> Value {
        serde_json::json!({"version": self.version, "cursor": self.cursor})
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_checkpoint_round_trips_and_a_foreign_one_is_refused() {
        let checkpoint = Checkpoint::at(Some("c2".into()));
        assert_eq!(
            Checkpoint::read(Some(&checkpoint.to_value())).ok(),
            Some(checkpoint)
        );
        assert_eq!(Checkpoint::read(None).ok(), Some(Checkpoint::at(None)));
        assert!(Checkpoint::read(Some(&json!({"version": 9, "cursor": null}))).is_err());
        assert!(Checkpoint::read(Some(&json!("jira"))).is_err());
    }
}
