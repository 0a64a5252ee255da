//! Access tokens of workspace connections, refreshed so that concurrent syncs — in one
//! process or in many Lambdas — never race (the Nango pattern, with the store's
//! conditional writes instead of a Redis lock):
//!
//! 1. A token valid beyond the margin is used as is.
//! 2. Otherwise the caller claims the connection's refresh lock with a conditional write on
//!    the item's version. Exactly one caller wins; it calls the provider and stores the new
//!    access token *and* the rotated refresh token in one conditional write that also
//!    clears the lock.
//! 3. Losers re-read the item (bounded wait with backoff) until the winner's write shows
//!    up or the lock expires (a crashed winner), then use the token or claim it themselves.
//! 4. In one process, callers for the same connection also queue on one in-flight refresh
//!    (single-flight) and see the winner's result on their re-read.
//!
//! `invalid_grant` marks the connection `needs_reauth`; from then on every caller fails
//! fast with [`ConnectorError::Unauthorized`] without calling the provider.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::providers::{Integrations, ProviderConfig};
use super::tokens::{TokenClient, TokenError, TokenSet};
use crate::connectors::kit::{AccessToken, AccessTokenSource, ConnectionResolver};
use crate::connectors::ConnectorError;
use crate::store::connections::{
    ConnectionRecord, ConnectionStatus, ConnectionView, Connections, StoredTokens,
};
use crate::store::{StoreError, Table};
use crate::time::now_epoch_seconds;
use crate::vault::{Vault, VaultError};

pub const REFRESH_MARGIN: &str = "TRIBUTARY_INTEGRATION_REFRESH_MARGIN_SECS";
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Conditional writes retried this often when the item changes between read and write.
const WRITE_ATTEMPTS: usize = 5;

/// How refreshes are timed.
#[derive(Clone, Debug)]
pub struct RefreshPolicy {
    /// Refresh when the token expires within this (capped at half the token's lifetime,
    /// so a provider issuing short-lived tokens is not asked on every call).
    pub margin: Duration,
    /// How long a claimed refresh lock holds; longer than a token request can take.
    pub lock_ttl: Duration,
    /// A token request's own timeout (below `lock_ttl`).
    pub request_timeout: Duration,
    /// How long a caller waits for another's refresh before giving up.
    pub wait: Duration,
    /// First and largest pause between re-reads while waiting.
    pub first_poll: Duration,
    pub max_poll: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            margin: DEFAULT_REFRESH_MARGIN,
            lock_ttl: Duration::from_secs(30),
            request_timeout: Duration::from_secs(15),
            wait: Duration::from_secs(35),
            first_poll: Duration::from_millis(25),
            max_poll: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("no integration provider is called `{0}`")]
    UnknownProvider(String),
    #[error("this workspace has no {0} connection")]
    NotConnected(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the connection's tokens cannot be sealed or opened: {0}")]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl ConnectionError {
    /// A stable snake_case code for the HTTP edge.
    pub fn code(&self) -> &'static str {
        match self {
            ConnectionError::UnknownProvider(_) => "unknown_provider",
            ConnectionError::NotConnected(_) => "not_connected",
            ConnectionError::Store(_) => "store_unavailable",
            ConnectionError::Vault(_) => "vault_error",
            ConnectionError::Token(TokenError::InvalidGrant(_)) => "invalid_grant",
            ConnectionError::Token(TokenError::Refused(_)) => "provider_refused",
            ConnectionError::Token(TokenError::Unavailable(_)) => "provider_unavailable",
            ConnectionError::Token(TokenError::Protocol(_)) => "provider_protocol_error",
        }
    }
}

fn store_unavailable(error: StoreError) -> ConnectorError {
    ConnectorError::Unavailable(format!("the connection store: {error}"))
}

fn reconnect_hint(provider: &str) -> String {
    format!("reconnect it at /integrations/{provider}/login")
}

/// The refresh margin for this record: the configured one, capped at half the token's
/// lifetime when both ends are known.
fn effective_margin(record: &ConnectionRecord, margin: Duration) -> i64 {
    let margin = i64::try_from(margin.as_secs()).unwrap_or(i64::MAX);
    match (record.expires_at, record.issued_at) {
        (Some(expires), Some(issued)) if expires > issued => margin.min((expires - issued) / 2),
        _ => margin,
    }
}

/// When the record's token should be refreshed (None: never by time, only on a 401).
fn refresh_after(record: &ConnectionRecord, margin: Duration) -> Option<i64> {
    record
        .expires_at
        .map(|expires| expires - effective_margin(record, margin))
}

/// One refresh at a time per (workspace, provider) in this process.
type Flight = Arc<tokio::sync::Mutex<()>>;
type Flights = Mutex<HashMap<(String, String), Weak<tokio::sync::Mutex<()>>>>;

struct Shared {
    connections: Connections,
    vault: Vault,
    client: TokenClient,
    integrations: Integrations,
    policy: RefreshPolicy,
    /// One in-flight refresh per connection in this process.
    flights: Flights,
}

impl Shared {
    fn flight(&self, workspace_id: &str, provider: &str) -> Flight {
        let mut flights = match self.flights.lock() {
            Ok(flights) => flights,
            Err(poisoned) => poisoned.into_inner(),
        };
        let key = (workspace_id.to_owned(), provider.to_owned());
        if let Some(flight) = flights.get(&key).and_then(Weak::upgrade) {
            return flight;
        }
        flights.retain(|_, flight| flight.strong_count() > 0);
        let flight = Arc::new(tokio::sync::Mutex::new(()));
        flights.insert(key, Arc::downgrade(&flight));
        flight
    }
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    refresh_after: Option<i64>,
}

/// One connection's access token: an [`AccessTokenSource`] for a sync.
pub struct ConnectionTokens {
    shared: Arc<Shared>,
    provider: Arc<ProviderConfig>,
    workspace_id: String,
    /// Names this source as the refresh lock's holder.
    holder: String,
    flight: Flight,
    cached: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for ConnectionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionTokens")
            .field("workspace_id", &self.workspace_id)
            .field("provider", &self.provider.name)
            .finish_non_exhaustive()
    }
}

impl ConnectionTokens {
    fn name(&self) -> &str {
        &self.provider.name
    }

    fn cache(&self) -> Option<Cached> {
        self.cached.lock().ok().and_then(|cached| cached.clone())
    }

    fn remember(&self, record: &ConnectionRecord, token: &AccessToken) {
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some(Cached {
                token: token.clone(),
                refresh_after: refresh_after(record, self.shared.policy.margin),
            });
        }
    }

    fn forget(&self) {
        if let Ok(mut cached) = self.cached.lock() {
            *cached = None;
        }
    }

    fn unusable(&self, record: &ConnectionRecord) -> ConnectorError {
        let name = self.name();
        let hint = reconnect_hint(name);
        ConnectorError::Unauthorized(match record.status {
            ConnectionStatus::NeedsReauth => format!(
                "the {name} connection of this workspace needs to be reconnected ({}); {hint}",
                record
                    .last_error
                    .as_deref()
                    .unwrap_or("the provider refused its refresh token")
            ),
            ConnectionStatus::Revoked => {
                format!("the {name} connection of this workspace was revoked; {hint}")
            }
            ConnectionStatus::Active => format!("the {name} connection is unusable; {hint}"),
        })
    }

    /// The current record; a missing or unusable connection fails here, before any
    /// provider call.
    async fn load(&self) -> Result<ConnectionRecord, ConnectorError> {
        let record = self
            .shared
            .connections
            .get(&self.workspace_id, self.name())
            .await
            .map_err(store_unavailable)?
            .ok_or_else(|| {
                ConnectorError::Unauthorized(format!(
                    "this workspace has no {} connection; {}",
                    self.name(),
                    reconnect_hint(self.name())
                ))
            })?;
        if record.status != ConnectionStatus::Active {
            self.forget();
            return Err(self.unusable(&record));
        }
        Ok(record)
    }

    fn open(&self, record: &ConnectionRecord) -> Result<StoredTokens, ConnectorError> {
        record.open_tokens(&self.shared.vault).map_err(|error| {
            ConnectorError::Config(format!(
                "the stored {} connection cannot be opened: {error}",
                self.name()
            ))
        })
    }

    /// A token that is fresh and (for a 401) not the rejected one, refreshing if needed.
    async fn fresh_token(
        &self,
        rejected: Option<&AccessToken>,
    ) -> Result<AccessToken, ConnectorError> {
        let _flight = self.flight.lock().await;
        let policy = &self.shared.policy;
        let deadline = Instant::now() + policy.wait;
        let mut poll = policy.first_poll;
        loop {
            let now = now_epoch_seconds();
            let record = self.load().await?;
            let tokens = self.open(&record)?;
            let is_rejected = rejected.is_some_and(|r| r.expose() == tokens.access_token);
            let due = refresh_after(&record, policy.margin).is_some_and(|at| now >= at);
            if !is_rejected && !due {
                let token = AccessToken::new(tokens.access_token);
                self.remember(&record, &token);
                return Ok(token);
            }
            let Some(refresh_token) = tokens.refresh_token.clone() else {
                return self
                    .without_refresh_token(record, tokens, is_rejected, now)
                    .await;
            };
            if record.is_locked(now) && record.refresh_lock_holder.as_ref() != Some(&self.holder) {
                // Someone else is refreshing: wait for their write, then re-read.
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ConnectorError::Unavailable(format!(
                        "another process is refreshing the {} token and did not finish in time",
                        self.name()
                    )));
                }
                tokio::time::sleep(poll.min(left)).await;
                poll = (poll * 2).min(policy.max_poll);
                continue;
            }
            let mut claim = record.clone();
            claim.refresh_lock_until =
                Some(now + i64::try_from(policy.lock_ttl.as_secs()).unwrap_or(30));
            claim.refresh_lock_holder = Some(self.holder.clone());
            match self.shared.connections.compare_and_swap(&claim).await {
                Ok(claimed) => return self.refresh_claimed(claimed, &refresh_token).await,
                // Changed since read (another claim or refresh): read again.
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(store_unavailable(error)),
            }
        }
    }

    /// An expired or rejected token with nothing to refresh it with.
    async fn without_refresh_token(
        &self,
        record: ConnectionRecord,
        tokens: StoredTokens,
        is_rejected: bool,
        now: i64,
    ) -> Result<AccessToken, ConnectorError> {
        let expired = record.expires_at.is_some_and(|at| at <= now);
        if !is_rejected && !expired {
            // Due soon but still valid: use it while it lasts.
            return Ok(AccessToken::new(tokens.access_token));
        }
        let name = self.name();
        if expired {
            let mut next = record;
            next.status = ConnectionStatus::NeedsReauth;
            next.set_error("the access token expired and the provider gave no refresh token");
            next.updated_at = now;
            self.write_best_effort(next).await;
        }
        Err(ConnectorError::Unauthorized(format!(
            "the {name} access token {} and the connection has no refresh token; {}",
            if expired { "expired" } else { "was refused" },
            reconnect_hint(name)
        )))
    }

    /// Holding the lock on `claimed`: ask the provider, store the outcome.
    async fn refresh_claimed(
        &self,
        claimed: ConnectionRecord,
        refresh_token: &str,
    ) -> Result<AccessToken, ConnectorError> {
        let started = now_epoch_seconds();
        let result = self
            .shared
            .client
            .refresh_with_timeout(
                &self.provider,
                refresh_token,
                self.shared.policy.request_timeout,
            )
            .await;
        let now = now_epoch_seconds();
        match result {
            Ok(set) => self.store_refreshed(claimed, set, refresh_token, now).await,
            Err(TokenError::InvalidGrant(message)) => {
                tracing::warn!(
                    workspace_id = %self.workspace_id,
                    provider = %self.name(),
                    error = %message,
                    "the provider refused the refresh token: the connection needs reauthorisation"
                );
                let mut next = claimed;
                next.status = ConnectionStatus::NeedsReauth;
                next.set_error(&format!(
                    "the provider refused the refresh token: {message}"
                ));
                self.release(next, refresh_token, now).await?;
                self.forget();
                Err(ConnectorError::Unauthorized(format!(
                    "the {} connection of this workspace needs to be reconnected (the provider refused its refresh token: {message}); {}",
                    self.name(),
                    reconnect_hint(self.name())
                )))
            }
            Err(error) => {
                tracing::warn!(
                    workspace_id = %self.workspace_id,
                    provider = %self.name(),
                    %error,
                    elapsed_secs = now - started,
                    "refreshing a connection token failed"
                );
                let mut next = claimed;
                next.set_error(&error.to_string());
                self.release(next, refresh_token, now).await?;
                Err(match error {
                    TokenError::Unavailable(message) => ConnectorError::Unavailable(format!(
                        "refreshing the {} token: {message}",
                        self.name()
                    )),
                    TokenError::Refused(message) => ConnectorError::Unauthorized(format!(
                        "the {} token endpoint refused the refresh: {message}",
                        self.name()
                    )),
                    other => ConnectorError::Protocol(other.to_string()),
                })
            }
        }
    }

    /// New access token + rotated refresh token + cleared lock, in one conditional write.
    async fn store_refreshed(
        &self,
        claimed: ConnectionRecord,
        set: TokenSet,
        used_refresh_token: &str,
        now: i64,
    ) -> Result<AccessToken, ConnectorError> {
        let tokens = StoredTokens {
            access_token: set.access_token.clone(),
            // No refresh token in the answer: the old one stays valid (no rotation).
            refresh_token: set
                .refresh_token
                .clone()
                .or_else(|| Some(used_refresh_token.to_owned())),
        };
        let mut next = claimed;
        next.seal_tokens(&self.shared.vault, &tokens)
            .map_err(|error| ConnectorError::Config(error.to_string()))?;
        next.expires_at = set.expires_at;
        next.issued_at = Some(now);
        if !set.scopes.is_empty() {
            next.scopes = set.scopes.clone();
        }
        next.status = ConnectionStatus::Active;
        next.last_refresh_at = Some(now);
        next.last_error = None;
        let stored = self.release(next, used_refresh_token, now).await?;
        tracing::info!(
            workspace_id = %self.workspace_id,
            provider = %self.name(),
            rotated = set.refresh_token.is_some(),
            "refreshed a connection token"
        );
        let token = AccessToken::new(set.access_token);
        if let Some(stored) = stored {
            self.remember(&stored, &token);
        }
        Ok(token)
    }

    /// Writes `next` (lock cleared) over the claimed version. Should the item have changed
    /// meanwhile (our lock expired and someone claimed it), the write is re-applied to the
    /// current item as long as it still holds the refresh token we used — nobody else
    /// refreshed — so a rotated refresh token is never lost; if someone else did refresh,
    /// their tokens stay. Returns the stored record, or None when someone else's stayed.
    async fn release(
        &self,
        mut next: ConnectionRecord,
        used_refresh_token: &str,
        now: i64,
    ) -> Result<Option<ConnectionRecord>, ConnectorError> {
        next.refresh_lock_until = None;
        next.refresh_lock_holder = None;
        next.updated_at = now;
        for _ in 0..WRITE_ATTEMPTS {
            match self.shared.connections.compare_and_swap(&next).await {
                Ok(stored) => return Ok(Some(stored)),
                Err(StoreError::ConditionFailed) => {}
                Err(error) => return Err(store_unavailable(error)),
            }
            let Some(current) = self
                .shared
                .connections
                .get(&self.workspace_id, self.name())
                .await
                .map_err(store_unavailable)?
            else {
                return Ok(None);
            };
            let still_ours = self
                .open(&current)
                .ok()
                .and_then(|tokens| tokens.refresh_token)
                .is_some_and(|token| token == used_refresh_token);
            if !still_ours {
                tracing::warn!(
                    workspace_id = %self.workspace_id,
                    provider = %self.name(),
                    "the connection changed during a refresh; keeping the stored tokens"
                );
                return Ok(None);
            }
            let mut retry = current;
            retry.tokens_sealed = next.tokens_sealed.clone();
            retry.expires_at = next.expires_at;
            retry.issued_at = next.issued_at;
            retry.scopes = next.scopes.clone();
            retry.status = next.status;
            retry.last_refresh_at = next.last_refresh_at;
            retry.last_error = next.last_error.clone();
            retry.refresh_lock_until = None;
            retry.refresh_lock_holder = None;
            retry.updated_at = now;
            next = retry;
        }
        Err(ConnectorError::Unavailable(format!(
            "the {} connection kept changing during a refresh",
            self.name()
        )))
    }

    async fn write_best_effort(&self, next: ConnectionRecord) {
        if let Err(error) = self.shared.connections.compare_and_swap(&next).await {
            tracing::info!(%error, provider = %self.name(), "could not record the connection's state");
        }
    }
}

#[async_trait::async_trait]
impl AccessTokenSource for ConnectionTokens {
    async fn access_token(&self) -> Result<AccessToken, ConnectorError> {
        if let Some(cached) = self.cache() {
            let now = now_epoch_seconds();
            if cached.refresh_after.is_none_or(|at| now < at) {
                return Ok(cached.token);
            }
        }
        self.fresh_token(None).await
    }

    async fn refresh_rejected(
        &self,
        rejected: &AccessToken,
    ) -> Result<AccessToken, ConnectorError> {
        if self.cache().is_some_and(|cached| &cached.token == rejected) {
            self.forget();
        }
        self.fresh_token(Some(rejected)).await
    }
}

/// The workspace connections of one cold start: resolves connector credentials of type
/// `connection`, stores new connections, lists and disconnects them.
#[derive(Clone)]
pub struct ConnectionService {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ConnectionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionService")
            .field("providers", &self.shared.integrations.names())
            .finish_non_exhaustive()
    }
}

impl ConnectionService {
    pub fn new(
        integrations: Integrations,
        table: Arc<dyn Table>,
        vault: Vault,
        client: TokenClient,
        policy: RefreshPolicy,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                connections: Connections::new(table),
                vault,
                client,
                integrations,
                policy,
                flights: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn integrations(&self) -> &Integrations {
        &self.shared.integrations
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<ProviderConfig>> {
        self.shared.integrations.get(name)
    }

    pub fn token_client(&self) -> &TokenClient {
        &self.shared.client
    }

    pub fn connections(&self) -> &Connections {
        &self.shared.connections
    }

    pub fn policy(&self) -> &RefreshPolicy {
        &self.shared.policy
    }

    fn configured(&self, provider: &str) -> Result<&Arc<ProviderConfig>, ConnectionError> {
        self.provider(provider)
            .ok_or_else(|| ConnectionError::UnknownProvider(provider.to_owned()))
    }

    /// Stores `tokens` as the workspace's (active) connection to `provider`, replacing
    /// any earlier one (a reconnect clears `needs_reauth`).
    pub async fn connect(
        &self,
        workspace_id: &str,
        provider: &str,
        tokens: TokenSet,
    ) -> Result<ConnectionRecord, ConnectionError> {
        let config = self.configured(provider)?;
        let scopes = if tokens.scopes.is_empty() {
            config.scopes.clone()
        } else {
            tokens.scopes.clone()
        };
        let record = ConnectionRecord::new(
            &self.shared.vault,
            workspace_id,
            provider,
            &tokens.stored(),
            scopes,
            tokens.expires_at,
            tokens.account.clone(),
            now_epoch_seconds(),
        )?;
        let stored = self.shared.connections.put(&record).await?;
        tracing::info!(workspace_id, provider, "stored a provider connection");
        Ok(stored)
    }

    /// Revokes the grant at the provider where it has a revocation endpoint (best effort:
    /// a failure is logged, never with a token) and deletes the connection. `Ok(false)`
    /// when there was none.
    pub async fn disconnect(
        &self,
        workspace_id: &str,
        provider: &str,
    ) -> Result<bool, ConnectionError> {
        let config = self.configured(provider)?;
        let Some(record) = self.shared.connections.get(workspace_id, provider).await? else {
            return Ok(false);
        };
        match record.open_tokens(&self.shared.vault) {
            Ok(tokens) => match self.shared.client.revoke(config, &tokens).await {
                Ok(true) => tracing::info!(workspace_id, provider, "revoked at the provider"),
                Ok(false) => {
                    tracing::info!(
                        workspace_id,
                        provider,
                        "the provider has no revocation endpoint"
                    )
                }
                Err(error) => {
                    tracing::warn!(workspace_id, provider, %error, "revoking at the provider failed")
                }
            },
            Err(error) => {
                tracing::warn!(workspace_id, provider, %error, "cannot open the tokens to revoke")
            }
        }
        self.shared
            .connections
            .delete(workspace_id, provider)
            .await?;
        Ok(true)
    }

    /// The workspace's connections as the API shows them.
    pub async fn list(&self, workspace_id: &str) -> Result<Vec<ConnectionView>, ConnectionError> {
        Ok(self
            .shared
            .connections
            .list(workspace_id)
            .await?
            .iter()
            .map(ConnectionRecord::view)
            .collect())
    }

    pub async fn get(
        &self,
        workspace_id: &str,
        provider: &str,
    ) -> Result<Option<ConnectionView>, ConnectionError> {
        Ok(self
            .shared
            .connections
            .get(workspace_id, provider)
            .await?
            .map(|record| record.view()))
    }

    /// The token source of an existing, usable connection.
    pub async fn tokens(
        &self,
        workspace_id: &str,
        provider: &str,
    ) -> Result<ConnectionTokens, ConnectorError> {
        let config = self.provider(provider).ok_or_else(|| {
            ConnectorError::Unauthorized(format!(
                "no integration provider `{provider}` is configured here"
            ))
        })?;
        let mut holder = [0u8; 12];
        getrandom::fill(&mut holder)
            .map_err(|error| ConnectorError::Unavailable(format!("no randomness: {error}")))?;
        let tokens = ConnectionTokens {
            shared: Arc::clone(&self.shared),
            provider: Arc::clone(config),
            workspace_id: workspace_id.to_owned(),
            holder: hex::encode(holder),
            flight: self.shared.flight(workspace_id, provider),
            cached: Mutex::new(None),
        };
        // Fail at resolve time, not at the first request, when it cannot work.
        tokens.load().await?;
        Ok(tokens)
    }
}

#[async_trait::async_trait]
impl ConnectionResolver for ConnectionService {
    async fn token_source(
        &self,
        workspace_id: &str,
        provider: &str,
    ) -> Result<Arc<dyn AccessTokenSource>, ConnectorError> {
        Ok(Arc::new(self.tokens(workspace_id, provider).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::connections::ConnectionAccount;

    fn record(issued_at: Option<i64>, expires_at: Option<i64>) -> ConnectionRecord {
        let vault =
            Vault::from_hex("6f1c2b3a5d6e7f8091a2b3c4d5e6f7080f1e2d3c4b5a69788796a5b4c3d2e1f0")
                .unwrap();
        let mut record = ConnectionRecord::new(
            &vault,
            "w",
            "google",
            &StoredTokens {
                access_token: "a".into(),
                refresh_token: None,
            },
            Vec::new(),
            expires_at,
            ConnectionAccount::default(),
            1_000,
        )
        .unwrap();
        record.issued_at = issued_at;
        record
    }

    #[test]
    fn the_margin_is_capped_at_half_a_short_lifetime() {
        let margin = Duration::from_secs(300);
        // An hour-long token is refreshed five minutes early.
        assert_eq!(
            refresh_after(&record(Some(1_000), Some(4_600)), margin),
            Some(4_300)
        );
        // A 60-second token (shorter than the margin) at half its life, not on every call.
        assert_eq!(
            refresh_after(&record(Some(1_000), Some(1_060)), margin),
            Some(1_030)
        );
        // Unknown issue time: the full margin; unknown expiry: only on a 401.
        assert_eq!(refresh_after(&record(None, Some(1_060)), margin), Some(760));
        assert_eq!(refresh_after(&record(Some(1_000), None), margin), None);
    }
}
