//! Where a provider's API lives. A deployment setting, never connector configuration: a
//! host a user could pick would receive the workspace's provider token (a Google or
//! Microsoft connection is shared by the whole workspace). Tests and the local stack point
//! sources at fakes with `TRIBUTARY_API_URL_<NAME>`.

use std::collections::HashMap;

use url::Url;

use super::super::ConnectorError;

/// The prefix of the variables that override an API's base URL, e.g.
/// `TRIBUTARY_API_URL_GOOGLE_DRIVE`.
pub const API_URL_PREFIX: &str = "TRIBUTARY_API_URL_";

/// Base URLs by API name (`google_drive`, `gmail`, ...), over each source's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiBases {
    bases: HashMap<String, Url>,
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ApiBaseError {
    pub variable: String,
    pub reason: String,
}

impl ApiBases {
    pub fn new() -> Self {
        Self::default()
    }

    /// `name`'s API at `base` instead of its default.
    pub fn with(mut self, name: &str, base: Url) -> Self {
        self.bases.insert(name.to_ascii_lowercase(), base);
        self
    }

    /// Every `TRIBUTARY_API_URL_<NAME>` of the environment; an unparsable URL refuses the
    /// start (a typo must not silently send tokens to the real provider, nor elsewhere).
    pub fn from_env() -> Result<Self, ApiBaseError> {
        Self::from_vars(std::env::vars())
    }

    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ApiBaseError> {
        let mut bases = Self::new();
        for (variable, value) in vars {
            let Some(name) = variable.strip_prefix(API_URL_PREFIX) else {
                continue;
            };
            if name.is_empty() || value.trim().is_empty() {
                continue;
            }
            let base = parse_base(value.trim()).map_err(|reason| ApiBaseError {
                variable: variable.clone(),
                reason,
            })?;
            bases = bases.with(name, base);
        }
        Ok(bases)
    }

    /// The configured base of `name`, else `default`.
    pub fn base(&self, name: &str, default: &str) -> Result<Url, ConnectorError> {
        match self.bases.get(&name.to_ascii_lowercase()) {
            Some(base) => Ok(base.clone()),
            None => parse_base(default).map_err(ConnectorError::Config),
        }
    }
}

/// An absolute http(s) URL without credentials, query or fragment.
fn parse_base(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|error| format!("not a URL: {error}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err("expected an http(s) URL with a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a base URL carries no credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a base URL has no query or fragment".into());
    }
    if url.scheme() == "http" && !crate::connectors::is_loopback(&url) {
        return Err("plain http only on loopback".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_configured_base_overrides_the_default_and_others_keep_theirs() {
        let bases = ApiBases::from_vars(vars(&[
            (
                "TRIBUTARY_API_URL_GOOGLE_DRIVE",
                "http://127.0.0.1:4000/drive/v3",
            ),
            ("UNRELATED", "x"),
        ]))
        .expect("valid");
        let drive = bases.base("google_drive", "https://www.googleapis.com/drive/v3");
        assert_eq!(
            drive.ok().map(String::from),
            Some("http://127.0.0.1:4000/drive/v3".to_owned())
        );
        let gmail = bases.base("gmail", "https://gmail.googleapis.com/gmail/v1");
        assert_eq!(
            gmail.ok().map(String::from),
            Some("https://gmail.googleapis.com/gmail/v1".to_owned())
        );
    }

    #[test]
    fn a_bad_base_refuses_the_start() {
        for bad in [
            "not a url",
            "ftp://example.com",
            "http://example.com/api",
            "https://user:pw@example.com",
            "https://example.com/?a=1",
        ] {
            let error = ApiBases::from_vars(vars(&[("TRIBUTARY_API_URL_GMAIL", bad)])).err();
            assert!(
                error.is_some_and(|e| e.variable == "TRIBUTARY_API_URL_GMAIL"),
                "{bad}"
            );
        }
    }
}
