//! The Jira connector's configuration: its stored shape, validation and the JQL scope it
//! stands for.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use super::super::{is_loopback, ConnectorError, DEFAULT_BATCH_SIZE};

const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 1024 * 1024;
const MAX_ATTACHMENT_BYTES: u64 = 10 * 1024 * 1024;
const DEFAULT_OVERLAP_MINUTES: u32 = 5;
const MAX_OVERLAP_MINUTES: u32 = 1440;
/// `issue/bulkfetch` takes at most 100 issues when it returns multi-value fields.
const MAX_BATCH_SIZE: usize = 100;
const MAX_JQL_CHARS: usize = 4000;
const MAX_LABEL_CHARS: usize = 255;

fn yes() -> bool {
    true
}

/// What a Jira connector syncs: the issues of one Jira Cloud site, narrowed by projects, a
/// JQL filter and labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    /// The site, `https://<site>.atlassian.net` (plain http only for loopback hosts, i.e.
    /// tests).
    pub base_url: Url,
    /// An extra JQL filter, ANDed with the rest (no `ORDER BY`).
    #[serde(default)]
    #[schemars(length(max = 4000))]
    pub jql: Option<String>,
    /// Only these projects, by key (`[A-Z][A-Z0-9_]{0,9}`); every project when empty.
    #[serde(default)]
    pub project_keys: Vec<String>,
    /// Issues carrying any of these labels are left out (in JQL and again client-side).
    #[serde(default)]
    pub skip_labels: Vec<String>,
    /// Append each issue's comments to its document.
    #[serde(default = "yes")]
    pub include_comments: bool,
    /// Opt-in: append `text/*` and `application/json` attachments up to
    /// `max_attachment_bytes` as fenced blocks.
    #[serde(default)]
    pub attachments: bool,
    /// Largest attachment read, in bytes: default 1 MiB, at most 10 MiB.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10485760))]
    pub max_attachment_bytes: Option<u64>,
    /// Minutes before the newest update seen that the next pass starts (so edits made
    /// during a pass are caught): default 5, at most 1440.
    #[serde(default)]
    #[schemars(range(max = 1440))]
    pub overlap_minutes: Option<u32>,
    /// Issues per pull: default 50, 1..=100.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub batch_size: Option<usize>,
}

impl JiraConfig {
    pub fn validate(&self) -> Result<(), ConnectorError> {
        let invalid = |message: String| Err(ConnectorError::Config(message));
        let url = &self.base_url;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(url) => {}
            "http" => return invalid("base_url must use https".into()),
            other => return invalid(format!("base_url has an unsupported scheme {other:?}")),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return invalid("base_url has no host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return invalid("base_url must not carry credentials".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return invalid("base_url must not have a query or a fragment".into());
        }
        for key in &self.project_keys {
            if !is_project_key(key) {
                return invalid(format!(
                    "project key {key:?} is not of the form [A-Z][A-Z0-9_]{{0,9}}"
                ));
            }
        }
        if let Some(jql) = &self.jql {
            let trimmed = jql.trim();
            if trimmed.is_empty() {
                return invalid("jql is empty".into());
            }
            if trimmed.chars().count() > MAX_JQL_CHARS {
                return invalid(format!("jql is longer than {MAX_JQL_CHARS} characters"));
            }
            check_jql_shape(trimmed).map_err(ConnectorError::Config)?;
        }
        for label in &self.skip_labels {
            if label.is_empty()
                || label.chars().count() > MAX_LABEL_CHARS
                || label.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return invalid(format!(
                    "skip label {label:?} is not a Jira label (1..={MAX_LABEL_CHARS} characters, no spaces)"
                ));
            }
        }
        if let Some(bytes) = self.max_attachment_bytes {
            if bytes == 0 || bytes > MAX_ATTACHMENT_BYTES {
                return invalid(format!(
                    "max_attachment_bytes must be within 1..={MAX_ATTACHMENT_BYTES}"
                ));
            }
        }
        if let Some(minutes) = self.overlap_minutes {
            if minutes > MAX_OVERLAP_MINUTES {
                return invalid(format!(
                    "overlap_minutes must be at most {MAX_OVERLAP_MINUTES}"
                ));
            }
        }
        if let Some(size) = self.batch_size {
            if !(1..=MAX_BATCH_SIZE).contains(&size) {
                return invalid(format!("batch_size must be within 1..={MAX_BATCH_SIZE}"));
            }
        }
        Ok(())
    }

    pub(super) fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    pub(super) fn overlap_minutes(&self) -> u32 {
        self.overlap_minutes.unwrap_or(DEFAULT_OVERLAP_MINUTES)
    }

    pub(super) fn max_attachment_bytes(&self) -> u64 {
        self.max_attachment_bytes
            .unwrap_or(DEFAULT_MAX_ATTACHMENT_BYTES)
    }

    /// The configured scope as JQL, without ordering; always bounded.
    pub(super) fn scope_jql(&self) -> String {
        let mut clauses = Vec::new();
        if !self.project_keys.is_empty() {
            let keys: Vec<String> = self.project_keys.iter().map(|k| jql_string(k)).collect();
            clauses.push(format!("(project in ({}))", keys.join(", ")));
        }
        if let Some(jql) = &self.jql {
            clauses.push(format!("({})", jql.trim()));
        }
        if !self.skip_labels.is_empty() {
            let labels: Vec<String> = self.skip_labels.iter().map(|l| jql_string(l)).collect();
            clauses.push(format!(
                "(labels IS EMPTY OR labels NOT IN ({}))",
                labels.join(", ")
            ));
        }
        if clauses.is_empty() {
            // The enhanced search refuses unbounded queries; every issue has a project.
            clauses.push("(project IS NOT EMPTY)".into());
        }
        clauses.join(" AND ")
    }

    /// Whether the labels hit `skip_labels` (case-insensitively, erring on leaving out).
    pub(super) fn skips(&self, labels: &[String]) -> bool {
        labels.iter().any(|label| {
            self.skip_labels
                .iter()
                .any(|skip| skip.to_lowercase() == label.to_lowercase())
        })
    }
}

pub(super) fn is_project_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some('A'..='Z'))
        && key.len() <= 10
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A JQL string literal.
pub(super) fn jql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Checks the shape of a user JQL filter outside its string literals: no `ORDER BY` (the
/// connector orders), balanced parentheses and closed quotes (so that, wrapped in
/// parentheses and ANDed, it cannot reach out and OR away the rest of the scope).
pub(super) fn check_jql_shape(jql: &str) -> Result<(), String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut depth: usize = 0;
    for c in jql.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            current.push(c.to_ascii_lowercase());
            continue;
        }
        words.push(std::mem::take(&mut current));
        match c {
            '"' | '\'' => quote = Some(c),
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1).ok_or("jql has an unbalanced ')'")?;
            }
            _ => {}
        }
    }
    words.push(current);
    if quote.is_some() {
        return Err("jql has an unterminated string".into());
    }
    if depth != 0 {
        return Err("jql has an unbalanced '('".into());
    }
    let order_by = words
        .iter()
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .windows(2)
        .any(|pair| pair[0] == "order" && pair[1] == "by");
    if order_by {
        return Err("jql must not contain ORDER BY (the connector orders)".into());
    }
    Ok(())
}
