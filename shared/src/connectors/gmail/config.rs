//! The Gmail connector's configuration: what `POST /connectors` takes as `config` (its JSON
//! Schema is what `GET /sources` shows). The API's base URL is deployment configuration
//! (`TRIBUTARY_API_URL_GMAIL`), never connector configuration: a host a user could pick
//! would receive the workspace's Google token.

use serde::{Deserialize, Serialize};

use crate::connectors::ConnectorError;

/// Threads per batch: the `maxResults` of a `threads.list` page (Gmail allows 500; a batch
/// is delivered and checkpointed as one unit, so it stays small).
pub const MAX_BATCH_SIZE: usize = 100;
/// The largest text attachment read into a document (`max_attachment_bytes` cap).
pub const MAX_ATTACHMENT_BYTES: u64 = 10 * 1024 * 1024;
/// Mailboxes one connector may sync through delegation.
pub const MAX_USERS: usize = 500;
/// Longest Gmail search query accepted.
const MAX_QUERY_CHARS: usize = 2_000;

fn default_batch_size() -> usize {
    crate::connectors::DEFAULT_BATCH_SIZE
}

fn default_exclude_labels() -> Vec<String> {
    vec!["SPAM".to_owned(), "TRASH".to_owned()]
}

fn default_max_attachment_bytes() -> u64 {
    1024 * 1024
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GmailConfig {
    /// Mailboxes to sync by impersonation (service-account credentials with domain-wide
    /// delegation). Empty: the service account's `subject`, or the connected user.
    #[serde(default)]
    pub user_emails: Vec<String>,
    /// Gmail search syntax (`from:billing@example.com newer_than:1y`), ANDed with the
    /// label scope.
    #[serde(default)]
    pub query: Option<String>,
    /// Label IDs a thread must carry, all of them (`INBOX`, `IMPORTANT`, `Label_12`).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Label IDs whose messages do not count (default `SPAM`, `TRASH`): a thread whose
    /// every message carries one of them is left out, and removed when it gets there.
    #[serde(default = "default_exclude_labels")]
    pub exclude_labels: Vec<String>,
    /// Append text-like attachments (txt, md, csv, html, json) to the thread's document.
    #[serde(default)]
    pub include_attachments: bool,
    /// Larger text attachments are listed by name only (1 byte to 10 MiB; default 1 MiB).
    #[serde(default = "default_max_attachment_bytes")]
    pub max_attachment_bytes: u64,
    /// Threads per batch (1 to 100).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

impl GmailConfig {
    pub fn validate(&self) -> Result<(), ConnectorError> {
        let invalid = |message: String| Err(ConnectorError::Config(message));
        if self.user_emails.len() > MAX_USERS {
            return invalid(format!("at most {MAX_USERS} user_emails"));
        }
        for (index, email) in self.user_emails.iter().enumerate() {
            if !is_email(email) {
                return invalid(format!("user_emails[{index}] is not an email address"));
            }
            if self.user_emails[..index]
                .iter()
                .any(|other| other.eq_ignore_ascii_case(email))
            {
                return invalid(format!("user_emails[{index}] is listed twice"));
            }
        }
        if let Some(query) = &self.query {
            if query.trim().is_empty() {
                return invalid("query is empty (leave it out to sync everything)".into());
            }
            if query.chars().count() > MAX_QUERY_CHARS || query.chars().any(char::is_control) {
                return invalid(format!(
                    "query must be one line of at most {MAX_QUERY_CHARS} characters"
                ));
            }
        }
        for (field, labels) in [
            ("labels", &self.labels),
            ("exclude_labels", &self.exclude_labels),
        ] {
            if let Some(bad) = labels.iter().find(|label| !is_label_id(label)) {
                return invalid(format!("{field}: {bad:?} is not a Gmail label ID"));
            }
        }
        if let Some(both) = self
            .labels
            .iter()
            .find(|label| self.exclude_labels.contains(label))
        {
            return invalid(format!("{both} is both required and excluded"));
        }
        if !(1..=MAX_ATTACHMENT_BYTES).contains(&self.max_attachment_bytes) {
            return invalid(format!(
                "max_attachment_bytes must be between 1 and {MAX_ATTACHMENT_BYTES}"
            ));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return invalid(format!("batch_size must be between 1 and {MAX_BATCH_SIZE}"));
        }
        Ok(())
    }

    /// Whether a message with these label IDs is left out.
    pub fn excludes(&self, label_ids: &[String]) -> bool {
        label_ids
            .iter()
            .any(|label| self.exclude_labels.contains(label))
    }

    /// The `threads.list` scope: `q` and `includeSpamTrash`. SPAM and TRASH are Gmail's
    /// default exclusion; when only one of them is excluded the other is let in and the
    /// excluded one searched away. Other excluded labels cannot be named by ID in a search,
    /// so the listing may hold threads the connector then leaves out (a superset is safe:
    /// the prune only removes documents the listing lacks).
    pub fn list_scope(&self) -> (Option<String>, bool) {
        let spam = self.exclude_labels.iter().any(|l| l == "SPAM");
        let trash = self.exclude_labels.iter().any(|l| l == "TRASH");
        let mut terms: Vec<String> = Vec::new();
        if let Some(query) = &self.query {
            terms.push(format!("({})", query.trim()));
        }
        let include_spam_trash = !(spam && trash);
        if include_spam_trash {
            if spam {
                terms.push("-in:spam".into());
            }
            if trash {
                terms.push("-in:trash".into());
            }
        }
        let q = (!terms.is_empty()).then(|| terms.join(" "));
        (q, include_spam_trash)
    }
}

fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && value.len() <= 254
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | '\\' | '?' | '#' | '%'))
        && !domain.contains('@')
}

/// System label IDs are upper case (`INBOX`, `CATEGORY_SOCIAL`); user labels are
/// `Label_<n>`. Nothing that would need escaping in a query or a URL.
fn is_label_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 100
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}
