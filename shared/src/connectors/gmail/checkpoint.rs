//! Where a Gmail pull stands: per mailbox, either a full listing under way (the
//! `historyId` read from `users.getProfile` *before* its first page, and the next
//! `threads.list` page) or a history cursor (`users.history.list` from `historyId`, and the
//! next history page within this pass); plus which mailbox the current pass is at.
//!
//! `{"v":1, "at":0, "mailboxes":[{"user":"a@example.com","email":"a@example.com",
//!   "phase":{"listing":{"history_id":"123","page_token":null}}}]}`

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connectors::ConnectorError;

pub(super) const VERSION: u64 = 1;
/// Longest page token or history id accepted from a stored checkpoint.
const MAX_TOKEN_CHARS: usize = 4096;

/// What one mailbox is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum Phase {
    /// The full listing (`threads.list`); `history_id` is where the change feed resumes
    /// once it completes (read before the first page, so nothing changed meanwhile is lost).
    Listing {
        history_id: String,
        page_token: Option<String>,
    },
    /// Reading the change feed from `start` (`users.history.list`), at `page_token`.
    History {
        start: String,
        page_token: Option<String>,
    },
    /// Up to date as of `history_id`: the next pass reads the change feed from there.
    Synced { history_id: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Mailbox {
    /// The `userId` the connector calls with (an email, or `me`).
    pub(super) user: String,
    /// The mailbox's address (from `users.getProfile`).
    pub(super) email: Option<String>,
    pub(super) phase: Phase,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Checkpoint {
    pub(super) v: u64,
    /// The mailbox (index into the configured users) the current pass is at; those before
    /// it are done for this pass.
    pub(super) at: usize,
    pub(super) mailboxes: Vec<Mailbox>,
}

impl Checkpoint {
    pub(super) fn new() -> Self {
        Self {
            v: VERSION,
            at: 0,
            mailboxes: Vec::new(),
        }
    }

    /// `None` (the very first pull) is a fresh checkpoint.
    pub(super) fn parse(value: Option<&Value>) -> Result<Self, ConnectorError> {
        let Some(value) = value else {
            return Ok(Self::new());
        };
        let bad = |message: String| ConnectorError::Checkpoint(message);
        match value.get("v").and_then(Value::as_u64) {
            Some(VERSION) => {}
            Some(other) => return Err(bad(format!("unknown version {other}"))),
            None => return Err(bad("no version".into())),
        }
        let checkpoint: Checkpoint =
            serde_json::from_value(value.clone()).map_err(|e| bad(format!("malformed: {e}")))?;
        for mailbox in &checkpoint.mailboxes {
            let tokens: Vec<&str> = match &mailbox.phase {
                Phase::Listing {
                    history_id,
                    page_token,
                } => [Some(history_id.as_str()), page_token.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect(),
                Phase::History { start, page_token } => {
                    [Some(start.as_str()), page_token.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect()
                }
                Phase::Synced { history_id } => vec![history_id.as_str()],
            };
            if tokens
                .iter()
                .any(|token| token.is_empty() || token.len() > MAX_TOKEN_CHARS)
            {
                return Err(bad("a page token or history id is empty or too long".into()));
            }
            let history_ids = match &mailbox.phase {
                Phase::Listing { history_id, .. } | Phase::Synced { history_id } => history_id,
                Phase::History { start, .. } => start,
            };
            if history_ids.parse::<u64>().is_err() {
                return Err(bad("a history id is not a number".into()));
            }
        }
        Ok(checkpoint)
    }

    pub(super) fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The stored state of `user`'s mailbox (`None`: never synced).
    pub(super) fn mailbox(&self, user: &str) -> Option<&Mailbox> {
        self.mailboxes.iter().find(|m| m.user == user)
    }

    /// Replaces (or adds) `user`'s state; mailboxes no longer configured are dropped.
    pub(super) fn set(&mut self, mailbox: Mailbox, configured: &[String]) {
        self.mailboxes.retain(|m| m.user != mailbox.user);
        self.mailboxes.push(mailbox);
        self.mailboxes.retain(|m| configured.contains(&m.user));
        self.mailboxes
            .sort_by_key(|m| configured.iter().position(|u| *u == m.user));
    }
}
