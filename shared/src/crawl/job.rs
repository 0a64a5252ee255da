//! What a crawl or batch scrape is asked to do: the request bodies of `POST /crawls` and
//! `POST /batch/scrape`, validated once into a [`CrawlSpec`] that the job carries.

use serde::{Deserialize, Serialize};

use super::scope::{Scope, ScopeError, ScopeOptions};
use super::ssrf::{parse_url, NetworkPolicy, SsrfError};
use crate::sinks::{SinkConfig, SinkEnvironment, SinkError, SinkRequest, SinkSecret};

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 10_000;
pub const DEFAULT_MAX_DEPTH: u32 = 10;
pub const MAX_DEPTH: u32 = 100;
pub const MAX_BATCH_URLS: usize = 1_000;
const MAX_URL_CHARS: usize = 2_048;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Follows links from one seed (and its sitemap).
    Crawl,
    /// Fetches exactly the given URLs, following no links.
    Batch,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrawlSpec {
    pub kind: JobKind,
    /// Normalised seed URLs: one for a crawl, every URL of a batch.
    pub seeds: Vec<String>,
    pub limit: u32,
    pub max_depth: u32,
    pub scope: ScopeOptions,
    pub ignore_sitemap: bool,
    pub ignore_query_params: bool,
    pub only_main_content: bool,
    pub sink: Option<SinkConfig>,
    /// The sink's own credential, sealed for the job (`CrawlEngine::start` seals it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink_secret_sealed: Option<String>,
    /// The credential as the request gave it, until `start` seals it; never stored.
    #[serde(skip)]
    pub sink_secret: Option<SinkSecret>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("`{url}` is not a usable URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("`{url}`: only http and https URLs can be fetched")]
    UnsupportedScheme { url: String },
    #[error("`{url}`: {source}")]
    UrlNotAllowed { url: String, source: SsrfError },
    #[error("limit must be between 1 and {MAX_LIMIT}")]
    Limit,
    #[error("max_depth must be between 0 and {MAX_DEPTH}")]
    Depth,
    #[error("give between 1 and {MAX_BATCH_URLS} urls")]
    BatchSize,
    #[error(transparent)]
    Scope(#[from] ScopeError),
    #[error("sink: {0}")]
    Sink(#[from] SinkError),
}

/// `POST /crawls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlRequest {
    pub url: String,
    pub limit: Option<i64>,
    pub max_depth: Option<i64>,
    #[serde(default)]
    pub include_paths: Vec<String>,
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    #[serde(default)]
    pub allow_subdomains: bool,
    #[serde(default)]
    pub allow_external: bool,
    #[serde(default)]
    pub ignore_sitemap: bool,
    #[serde(default)]
    pub ignore_query_params: bool,
    pub only_main_content: Option<bool>,
    pub sink: Option<SinkRequest>,
}

/// `POST /batch/scrape`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchScrapeRequest {
    pub urls: Vec<String>,
    pub only_main_content: Option<bool>,
    pub sink: Option<SinkRequest>,
}

/// A user-supplied URL: well formed, http(s), allowed by the network policy.
pub fn checked_url(raw: &str, policy: &NetworkPolicy) -> Result<url::Url, SpecError> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(SpecError::InvalidUrl {
            url: raw.chars().take(80).collect(),
            reason: format!("longer than {MAX_URL_CHARS} characters"),
        });
    }
    parse_url(raw.trim(), policy).map_err(|error| match error {
        SsrfError::ForbiddenAddress { .. } => SpecError::UrlNotAllowed {
            url: raw.to_owned(),
            source: error,
        },
        SsrfError::UnsupportedScheme(_) => SpecError::UnsupportedScheme {
            url: raw.to_owned(),
        },
        other => SpecError::InvalidUrl {
            url: raw.to_owned(),
            reason: other.to_string(),
        },
    })
}

fn bounded(value: Option<i64>, default: u32, min: i64, max: u32) -> Option<u32> {
    match value {
        None => Some(default),
        Some(value) if (min..=i64::from(max)).contains(&value) => u32::try_from(value).ok(),
        Some(_) => None,
    }
}

/// The sink's shape (and its own credential, when given); whether the operator's credential
/// may stand in is checked when the job starts, for its owner.
fn check_sink(
    sink: Option<SinkRequest>,
    sinks: &SinkEnvironment,
    policy: &NetworkPolicy,
) -> Result<(Option<SinkConfig>, Option<SinkSecret>), SpecError> {
    let Some(request) = sink else {
        return Ok((None, None));
    };
    let (config, secret) = request.into_parts();
    match &secret {
        Some(secret) => drop(crate::sinks::build(&config, Some(secret), "", sinks)?),
        None => crate::sinks::check_config(&config, sinks)?,
    }
    if let Some(endpoint) = config.endpoint() {
        policy
            .check_url(endpoint)
            .map_err(|source| SpecError::UrlNotAllowed {
                url: endpoint.to_string(),
                source,
            })?;
    }
    Ok((Some(config), secret))
}

impl CrawlRequest {
    pub fn validate(
        self,
        policy: &NetworkPolicy,
        sinks: &SinkEnvironment,
    ) -> Result<CrawlSpec, SpecError> {
        let seed = checked_url(&self.url, policy)?;
        let limit = bounded(self.limit, DEFAULT_LIMIT, 1, MAX_LIMIT).ok_or(SpecError::Limit)?;
        let max_depth =
            bounded(self.max_depth, DEFAULT_MAX_DEPTH, 0, MAX_DEPTH).ok_or(SpecError::Depth)?;
        let scope = ScopeOptions {
            include_paths: self.include_paths,
            exclude_paths: self.exclude_paths,
            allow_subdomains: self.allow_subdomains,
            allow_external: self.allow_external,
        };
        // Compiling now turns a bad pattern into a 400 instead of a failed job.
        Scope::new(&seed, &scope)?;
        let (sink, sink_secret) = check_sink(self.sink, sinks, policy)?;
        let seed = super::normalize::normalize(&seed, self.ignore_query_params).unwrap_or(seed);
        Ok(CrawlSpec {
            kind: JobKind::Crawl,
            seeds: vec![seed.to_string()],
            limit,
            max_depth,
            scope,
            ignore_sitemap: self.ignore_sitemap,
            ignore_query_params: self.ignore_query_params,
            only_main_content: self.only_main_content.unwrap_or(true),
            sink,
            sink_secret_sealed: None,
            sink_secret,
        })
    }
}

impl BatchScrapeRequest {
    pub fn validate(
        self,
        policy: &NetworkPolicy,
        sinks: &SinkEnvironment,
    ) -> Result<CrawlSpec, SpecError> {
        if self.urls.is_empty() || self.urls.len() > MAX_BATCH_URLS {
            return Err(SpecError::BatchSize);
        }
        let mut seeds: Vec<String> = Vec::with_capacity(self.urls.len());
        for raw in &self.urls {
            let url = checked_url(raw, policy)?;
            let url = super::normalize::normalize(&url, false).unwrap_or(url);
            if !seeds.contains(&url.to_string()) {
                seeds.push(url.to_string());
            }
        }
        let (sink, sink_secret) = check_sink(self.sink, sinks, policy)?;
        Ok(CrawlSpec {
            kind: JobKind::Batch,
            limit: u32::try_from(seeds.len()).unwrap_or(MAX_LIMIT),
            seeds,
            max_depth: 0,
            scope: ScopeOptions {
                allow_external: true,
                ..ScopeOptions::default()
            },
            ignore_sitemap: true,
            ignore_query_params: false,
            only_main_content: self.only_main_content.unwrap_or(true),
            sink,
            sink_secret_sealed: None,
            sink_secret,
        })
    }
}
