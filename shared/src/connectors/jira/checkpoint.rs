//! Where a Jira pull stands (`{"v":1, "window_since", "next_page_token", "max_updated"}`),
//! and the time handling of its windows.

use chrono::{DateTime, Duration as TimeDelta, FixedOffset, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::super::ConnectorError;

pub(super) const CHECKPOINT_VERSION: u64 = 1;
pub(super) const MAX_TOKEN_CHARS: usize = 8192;
/// JQL's date-time literal.
const JQL_DATE_FORMAT: &str = "%Y-%m-%d %H:%M";
/// Jira's timestamps, e.g. `2024-05-01T10:15:30.123+0200`.
const JIRA_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.f%z";

/// A Jira timestamp (`2024-05-01T10:15:30.123+0200`, or RFC 3339).
pub(super) fn parse_jira_time(value: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_str(value, JIRA_TIME_FORMAT)
        .or_else(|_| DateTime::parse_from_rfc3339(value))
        .ok()
}

pub(super) fn utc_string(time: &DateTime<FixedOffset>) -> String {
    time.with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The start of the next window: `max_updated` minus the overlap, as a JQL date-time in
/// the offset Jira gave `max_updated` (the account's offset), floored to the minute.
pub(super) fn window_start(max_updated: &str, overlap_minutes: u32) -> Option<String> {
    let time = parse_jira_time(max_updated)?;
    let start = time.checked_sub_signed(TimeDelta::minutes(i64::from(overlap_minutes)))?;
    Some(start.format(JQL_DATE_FORMAT).to_string())
}

pub(super) fn is_jql_date(value: &str) -> bool {
    NaiveDateTime::parse_from_str(value, JQL_DATE_FORMAT)
        .is_ok_and(|time| time.format(JQL_DATE_FORMAT).to_string() == value)
}

/// Where a pull stands. Written after every batch; opaque to the engine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Checkpoint {
    pub(super) v: u64,
    /// The fixed start of the current pass (`None`: the pass is not windowed).
    pub(super) window_since: Option<String>,
    /// The next page of the current pass (`None`: between passes).
    pub(super) next_page_token: Option<String>,
    /// The newest `updated` seen so far, verbatim from Jira.
    pub(super) max_updated: Option<String>,
}

impl Checkpoint {
    pub(super) fn parse(value: &Value) -> Result<Self, ConnectorError> {
        let bad = |message: &str| ConnectorError::Checkpoint(message.to_owned());
        let object = value.as_object().ok_or_else(|| bad("not a JSON object"))?;
        match object.get("v").and_then(Value::as_u64) {
            Some(CHECKPOINT_VERSION) => {}
            Some(other) => {
                return Err(ConnectorError::Checkpoint(format!(
                    "unknown version {other}"
                )))
            }
            None => return Err(bad("no version")),
        }
        let checkpoint: Checkpoint = serde_json::from_value(value.clone())
            .map_err(|e| ConnectorError::Checkpoint(format!("malformed: {e}")))?;
        if let Some(since) = &checkpoint.window_since {
            // It goes into JQL: only a well-formed date-time literal is acceptable.
            if !is_jql_date(since) {
                return Err(bad("window_since is not a yyyy-MM-dd HH:mm date-time"));
            }
        }
        if let Some(token) = &checkpoint.next_page_token {
            if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
                return Err(bad("next_page_token is empty or too long"));
            }
        }
        if let Some(max) = &checkpoint.max_updated {
            if parse_jira_time(max).is_none() {
                return Err(bad("max_updated is not a Jira timestamp"));
            }
        }
        Ok(checkpoint)
    }

    pub(super) fn to_value(&self) -> Value {
        json!({
            "v": CHECKPOINT_VERSION,
            "window_since": self.window_since,
            "next_page_token": self.next_page_token,
            "max_updated": self.max_updated,
        })
    }
}

/// Where a pull resumes: the window's start (`None`: unwindowed) and the page token within
/// it (`None`: the window's first page).
pub(super) fn resume(
    state: Option<Checkpoint>,
    overlap_minutes: u32,
) -> Result<(Option<String>, Option<String>), ConnectorError> {
    Ok(match state {
        // The very first pass: everything in scope.
        None => (None, None),
        // Within a pass.
        Some(Checkpoint {
            window_since,
            next_page_token: Some(token),
            ..
        }) => (window_since, Some(token)),
        // A pass that lost its place: restart its window.
        Some(Checkpoint {
            window_since: Some(since),
            next_page_token: None,
            ..
        }) => (Some(since), None),
        // Between passes: a new window from the newest update seen, minus the overlap.
        Some(Checkpoint {
            window_since: None,
            next_page_token: None,
            max_updated,
            ..
        }) => {
            let since = match max_updated {
                Some(max) => Some(window_start(&max, overlap_minutes).ok_or_else(|| {
                    ConnectorError::Checkpoint("max_updated is out of range".into())
                })?),
                None => None,
            };
            (since, None)
        }
    })
}

/// The newest `updated` seen: parsed for comparing, verbatim for the checkpoint.
#[derive(Default)]
pub(super) struct Newest(Option<(DateTime<FixedOffset>, String)>);

impl Newest {
    pub(super) fn from_checkpoint(value: Option<&str>) -> Self {
        Newest(value.and_then(|raw| parse_jira_time(raw).map(|time| (time, raw.to_owned()))))
    }

    pub(super) fn offer(&mut self, raw: &str) {
        if let Some(time) = parse_jira_time(raw) {
            if self.0.as_ref().is_none_or(|(newest, _)| time > *newest) {
                self.0 = Some((time, raw.to_owned()));
            }
        }
    }

    pub(super) fn raw(&self) -> Option<String> {
        self.0.as_ref().map(|(_, raw)| raw.clone())
    }
}
