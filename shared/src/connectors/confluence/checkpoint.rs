//! Where a Confluence pull stands: `{"v": 1, "window_since", "next", "max_modified"}`.

use chrono::{DateTime, FixedOffset, NaiveDateTime, SecondsFormat};
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use super::super::ConnectorError;
use super::ConfluenceConnector;

/// The CQL date format used for the window (minutes: CQL has no seconds).
const CQL_DATE_FORMAT: &str = "%Y-%m-%d %H:%M";
const CHECKPOINT_VERSION: u64 = 1;

/// Where a pull starts.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Checkpoint {
    /// The lower bound of this pass (`None`: everything), as written in the CQL.
    pub(super) window_since: Option<String>,
    /// The next page of the current pass; `None` starts a pass.
    pub(super) next: Option<Url>,
    /// The newest `version.when` seen so far, with the source's offset.
    pub(super) max_modified: Option<DateTime<FixedOffset>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckpoint {
    v: u64,
    #[serde(default)]
    window_since: Option<String>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    max_modified: Option<String>,
}

impl Checkpoint {
    pub(super) fn to_value(&self) -> Value {
        json!({
            "v": CHECKPOINT_VERSION,
            "window_since": self.window_since,
            "next": self.next.as_ref().map(Url::as_str),
            "max_modified": self
                .max_modified
                .map(|at| at.to_rfc3339_opts(SecondsFormat::AutoSi, false)),
        })
    }
}

/// The start of the window after a pass whose newest modification was `max_modified`,
/// written in that timestamp's own offset and rounded down to the minute.
pub(super) fn window_start(
    max_modified: DateTime<FixedOffset>,
    overlap: chrono::Duration,
) -> String {
    (max_modified - overlap).format(CQL_DATE_FORMAT).to_string()
}

impl ConfluenceConnector {
    pub(super) fn parse_checkpoint(&self, value: &Value) -> Result<Checkpoint, ConnectorError> {
        let raw: RawCheckpoint = serde_json::from_value(value.clone())
            .map_err(|error| ConnectorError::Checkpoint(error.to_string()))?;
        if raw.v != CHECKPOINT_VERSION {
            return Err(ConnectorError::Checkpoint(format!(
                "unknown checkpoint version {}",
                raw.v
            )));
        }
        let window_since = match raw.window_since {
            None => None,
            Some(since) => {
                let parsed = NaiveDateTime::parse_from_str(&since, CQL_DATE_FORMAT)
                    .map_err(|_| ConnectorError::Checkpoint("window_since is not a date".into()))?;
                if parsed.format(CQL_DATE_FORMAT).to_string() != since {
                    return Err(ConnectorError::Checkpoint(
                        "window_since is not a canonical date".into(),
                    ));
                }
                Some(since)
            }
        };
        let next = match raw.next {
            None => None,
            Some(next) => match Url::parse(&next) {
                Ok(url) if self.is_api_url(&url) => Some(url),
                _ => {
                    return Err(ConnectorError::Checkpoint(
                        "next is not a link into this site's REST API".into(),
                    ))
                }
            },
        };
        let max_modified = match raw.max_modified {
            None => None,
            Some(at) => Some(DateTime::parse_from_rfc3339(&at).map_err(|_| {
                ConnectorError::Checkpoint("max_modified is not an RFC 3339 time".into())
            })?),
        };
        Ok(Checkpoint {
            window_since,
            next,
            max_modified,
        })
    }
}
