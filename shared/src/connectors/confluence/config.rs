//! The Confluence connector's configuration: its stored shape, validation and the CQL
//! scope it stands for.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use super::super::{is_loopback, ConnectorError};

const DEFAULT_BATCH_SIZE: usize = 25;
const MAX_BATCH_SIZE: usize = 100;
const DEFAULT_OVERLAP_MINUTES: u32 = 5;
/// A week: a larger overlap is a misconfiguration rather than caution.
const MAX_OVERLAP_MINUTES: u32 = 7 * 24 * 60;
const DEFAULT_MAX_ATTACHMENT_BYTES: u64 = 1024 * 1024;

fn yes() -> bool {
    true
}

/// What a Confluence connector syncs: the pages (and blog posts) of one Confluence Cloud
/// site, narrowed by spaces and labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfluenceConfig {
    /// The site root, `https://<site>.atlassian.net` (without `/wiki`); the API is under
    /// `/wiki/rest/api`. Plain http only for loopback hosts (tests).
    pub base_url: Url,
    /// Only these spaces, by key (all visible spaces when empty).
    #[serde(default)]
    pub space_keys: Vec<String>,
    /// Content carrying any of these labels is left out.
    #[serde(default)]
    pub exclude_labels: Vec<String>,
    /// Sync blog posts as well as pages.
    #[serde(default = "yes")]
    pub include_blog_posts: bool,
    /// Opt-in: list each page's attachments into its metadata and append the text of
    /// `text/*` ones no larger than `max_attachment_bytes`.
    #[serde(default)]
    pub attachments: bool,
    /// Largest attachment whose text is appended, in bytes (default 1 MiB).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_attachment_bytes: Option<u64>,
    /// Minutes before the newest modification seen that the next pass starts (default 5,
    /// at most a week).
    #[serde(default)]
    #[schemars(range(max = 10080))]
    pub overlap_minutes: Option<u32>,
    /// Results per pull (default 25, 1..=100).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub batch_size: Option<usize>,
}

impl ConfluenceConfig {
    pub fn validate(&self) -> Result<(), ConnectorError> {
        validate_base_url(&self.base_url)?;
        for key in &self.space_keys {
            if key.is_empty()
                || key.len() > 255
                || key
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | '/'))
            {
                return Err(ConnectorError::Config(format!("invalid space key {key:?}")));
            }
        }
        for label in &self.exclude_labels {
            if label.is_empty()
                || label.len() > 255
                || label
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\'))
            {
                return Err(ConnectorError::Config(format!("invalid label {label:?}")));
            }
        }
        if let Some(size) = self.batch_size {
            if !(1..=MAX_BATCH_SIZE).contains(&size) {
                return Err(ConnectorError::Config(format!(
                    "batch_size must be between 1 and {MAX_BATCH_SIZE}"
                )));
            }
        }
        if self
            .overlap_minutes
            .is_some_and(|m| m > MAX_OVERLAP_MINUTES)
        {
            return Err(ConnectorError::Config(format!(
                "overlap_minutes must be at most {MAX_OVERLAP_MINUTES}"
            )));
        }
        if self.max_attachment_bytes == Some(0) {
            return Err(ConnectorError::Config(
                "max_attachment_bytes must be positive".into(),
            ));
        }
        Ok(())
    }

    pub(super) fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    pub(super) fn overlap(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(
            self.overlap_minutes.unwrap_or(DEFAULT_OVERLAP_MINUTES),
        ))
    }

    pub(super) fn max_attachment_bytes(&self) -> u64 {
        self.max_attachment_bytes
            .unwrap_or(DEFAULT_MAX_ATTACHMENT_BYTES)
    }

    /// The scope of the sync: content types, spaces and excluded labels.
    pub(super) fn scope_cql(&self) -> String {
        let mut clauses = vec![if self.include_blog_posts {
            "type in (page, blogpost)".to_owned()
        } else {
            "type = page".to_owned()
        }];
        if !self.space_keys.is_empty() {
            clauses.push(format!("space in ({})", cql_list(&self.space_keys)));
        }
        if !self.exclude_labels.is_empty() {
            clauses.push(format!("label not in ({})", cql_list(&self.exclude_labels)));
        }
        clauses.join(" and ")
    }
}

pub(super) fn validate_base_url(url: &Url) -> Result<(), ConnectorError> {
    if url.host().is_none() {
        return Err(ConnectorError::Config("base_url has no host".into()));
    }
    let loopback = is_loopback(url);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(ConnectorError::Config(
                "base_url must be an https URL".into(),
            ))
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConnectorError::Config(
            "base_url must not carry credentials".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
        return Err(ConnectorError::Config(
            "base_url must be the site root, e.g. https://example.atlassian.net (without /wiki)"
                .into(),
        ));
    }
    Ok(())
}

/// A CQL string literal.
pub(super) fn cql_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

pub(super) fn cql_list(values: &[String]) -> String {
    values
        .iter()
        .map(|value| cql_string(value))
        .collect::<Vec<_>>()
        .join(", ")
}
