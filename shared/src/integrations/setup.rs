//! Building the connection service from the environment, once per cold start.

use std::sync::Arc;
use std::time::Duration;

use super::providers::{integrations_from, Integrations, INTEGRATIONS};
use super::refresh::{ConnectionService, RefreshPolicy, REFRESH_MARGIN};
use super::tokens::{TokenClient, DEFAULT_TIMEOUT};
use crate::config::ConfigError;
use crate::http::policy::NetworkPolicy;
use crate::http::{ClientOptions, GuardedClient};
use crate::store::Table;
use crate::vault::Vault;

/// Longest refresh margin accepted (seconds).
const MAX_MARGIN_SECS: u64 = 3600;

/// The enabled providers (`TRIBUTARY_INTEGRATIONS`, `TRIBUTARY_INTEGRATION_<NAME>_*`).
pub fn integrations_config_from(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Integrations, ConfigError> {
    integrations_from(lookup).map_err(|error| ConfigError::Invalid {
        name: INTEGRATIONS,
        reason: error.to_string(),
    })
}

pub fn integrations_config_from_env() -> Result<Integrations, ConfigError> {
    integrations_config_from(|name| std::env::var(name).ok())
}

/// `TRIBUTARY_INTEGRATION_REFRESH_MARGIN_SECS` (default 300, at most 3600).
pub fn refresh_policy_from(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<RefreshPolicy, ConfigError> {
    let mut policy = RefreshPolicy::default();
    if let Some(raw) = lookup(REFRESH_MARGIN).filter(|value| !value.trim().is_empty()) {
        let secs = raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|secs| *secs <= MAX_MARGIN_SECS)
            .ok_or_else(|| ConfigError::Invalid {
                name: REFRESH_MARGIN,
                reason: format!("`{raw}`: expected whole seconds from 0 to {MAX_MARGIN_SECS}"),
            })?;
        policy.margin = Duration::from_secs(secs);
    }
    Ok(policy)
}

pub fn refresh_policy_from_env() -> Result<RefreshPolicy, ConfigError> {
    refresh_policy_from(|name| std::env::var(name).ok())
}

/// The client for token endpoints. Like the sign-in back channel it talks only to
/// endpoints the operator configured (https, or http on loopback, checked at cold start),
/// so private addresses are allowed (an on-premises identity provider); it follows no
/// redirects and times out before a refresh lock does.
pub fn token_http_client() -> Result<GuardedClient, ConfigError> {
    let options = ClientOptions {
        timeout: DEFAULT_TIMEOUT,
        connect_timeout: Duration::from_secs(5),
        max_redirects: 0,
        ..ClientOptions::default()
    };
    GuardedClient::new(Arc::new(NetworkPolicy::allow_private()), &options).map_err(|error| {
        ConfigError::Invalid {
            name: INTEGRATIONS,
            reason: format!("cannot build the token client: {error}"),
        }
    })
}

/// The connection service over `table`, when any integration is configured (None when
/// `TRIBUTARY_INTEGRATIONS` is unset or empty).
pub fn connections_from_env(
    table: Arc<dyn Table>,
    vault: Vault,
    http: GuardedClient,
) -> Result<Option<ConnectionService>, ConfigError> {
    connections_from(|name| std::env::var(name).ok(), table, vault, http)
}

/// [`connections_from_env`] with an injectable variable lookup (tests).
pub fn connections_from(
    lookup: impl Fn(&str) -> Option<String>,
    table: Arc<dyn Table>,
    vault: Vault,
    http: GuardedClient,
) -> Result<Option<ConnectionService>, ConfigError> {
    let integrations = integrations_config_from(&lookup)?;
    if integrations.is_empty() {
        return Ok(None);
    }
    let policy = refresh_policy_from(&lookup)?;
    let client = TokenClient::new(http).with_timeout(policy.request_timeout);
    Ok(Some(ConnectionService::new(
        integrations,
        table,
        vault,
        client,
        policy,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_defaults_and_bounds() {
        assert_eq!(
            refresh_policy_from(|_| None).unwrap().margin,
            Duration::from_secs(300)
        );
        let set = |value: &'static str| {
            move |name: &str| (name == REFRESH_MARGIN).then(|| value.to_owned())
        };
        assert_eq!(
            refresh_policy_from(set("60")).unwrap().margin,
            Duration::from_secs(60)
        );
        for bad in ["-1", "abc", "3601"] {
            let error = refresh_policy_from(set(bad)).unwrap_err().to_string();
            assert!(error.contains(REFRESH_MARGIN), "{error}");
        }
    }
}
