//! The gmail connector's configuration: what `POST /connectors` takes as `config` (its
//! JSON Schema is what `GET /sources` shows).

use serde::{Deserialize, Serialize};
use url::Url;

use crate::connectors::registry::SourceConfig;
use crate::connectors::{is_loopback, ConnectorError, DEFAULT_BATCH_SIZE};

/// The provider's page size limit.
pub const MAX_BATCH_SIZE: usize = 100;

fn default_batch_size() -> usize {
    DEFAULT_BATCH_SIZE
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GmailConfig {
    /// The API's base URL (plain http only for loopback hosts, i.e. tests).
    pub base_url: Url,
    /// Documents per batch (1 to 100).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

impl SourceConfig for GmailConfig {
    fn check(&self) -> Result<(), ConnectorError> {
        let invalid = |message: &str| Err(ConnectorError::Config(message.to_owned()));
        let url = &self.base_url;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(url) => {}
            _ => return invalid("base_url must use https"),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return invalid("base_url must not carry credentials");
        }
        if url.query().is_some() || url.fragment().is_some() {
            return invalid("base_url must not have a query or a fragment");
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return invalid("batch_size must be between 1 and 100");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: serde_json::Value) -> Result<GmailConfig, ConnectorError> {
        let config: GmailConfig = serde_json::from_value(value)
            .map_err(|error| ConnectorError::Config(error.to_string()))?;
        config.check().map(|()| config)
    }

    #[test]
    fn a_config_needs_an_https_base_url_and_a_sane_batch_size() {
        let config = parse(json!({"base_url": "https://api.example.com"})).expect("valid");
        assert_eq!(config.batch_size, DEFAULT_BATCH_SIZE);
        assert!(
            parse(json!({"base_url": "http://127.0.0.1:9"})).is_ok(),
            "loopback"
        );
        for bad in [
            json!({"base_url": "http://api.example.com"}),
            json!({"base_url": "https://user:pw@api.example.com"}),
            json!({"base_url": "https://api.example.com", "batch_size": 0}),
            json!({"base_url": "https://api.example.com", "surprise": true}),
            json!({}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad} accepted");
        }
    }
}
