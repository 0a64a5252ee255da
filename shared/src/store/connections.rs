//! Workspace provider connections (DESIGN §2): `WS#<ws>`/`CONN#<provider>`, one per
//! workspace and provider. The access and refresh tokens are one blob sealed by the vault
//! and bound to the workspace and provider; every change is a conditional write on the
//! item's version, which is also what serialises token refreshes across processes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{decode_item, record_attributes, Item, Key, Query, StoreError, Table};
use crate::vault::{Vault, VaultError};

/// Create-or-replace retries this often when the item changes under it.
const REPLACE_ATTEMPTS: usize = 5;
/// Longest stored `last_error` (characters).
pub const MAX_ERROR_CHARS: usize = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    /// The provider refused the refresh token (`invalid_grant`): the user must reconnect;
    /// nothing calls the provider for it until then.
    NeedsReauth,
    /// Revoked (at the provider or by us): unusable until reconnected.
    Revoked,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::NeedsReauth => "needs_reauth",
            ConnectionStatus::Revoked => "revoked",
        }
    }
}

/// Non-secret facts about the account the connection authorises (shown in the API).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectionAccount {
    /// The provider's id of the authorising user or account (Slack `authed_user.id`,
    /// Dropbox `account_id`, Notion owner user id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    /// The provider-side workspace, team, tenant or guild (Slack team, Notion workspace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_name: Option<String>,
    /// The bot identity the token acts as (Slack `bot_user_id`, Notion `bot_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<String>,
}

impl ConnectionAccount {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// The secret part of a connection (sealed at rest; never serialised for the API).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTokens {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredTokens(..)")
    }
}

/// What the sealed tokens are bound to: a blob copied to another workspace or provider
/// does not open.
pub fn sealing_owner(workspace_id: &str, provider: &str) -> String {
    format!("ws:{workspace_id}/conn:{provider}")
}

/// The stored connection. Its `Serialize` is the storage format (sealed tokens included):
/// the API shows [`ConnectionView`] instead.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    pub workspace_id: String,
    pub provider: String,
    pub status: ConnectionStatus,
    pub scopes: Vec<String>,
    /// When the access token expires (epoch seconds); None: the provider did not say.
    /// (`expires_at` is the store's item TTL: the attribute has another name.)
    #[serde(rename = "token_expires_at")]
    pub expires_at: Option<i64>,
    /// [`StoredTokens`] sealed by the vault for [`sealing_owner`].
    pub tokens_sealed: String,
    /// When the stored access token was issued (epoch seconds): with `expires_at`, its
    /// lifetime, which caps the refresh margin for short-lived tokens.
    #[serde(default)]
    pub issued_at: Option<i64>,
    #[serde(default)]
    pub account: ConnectionAccount,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default)]
    pub last_refresh_at: Option<i64>,
    /// Why the last refresh failed (the provider's message, bounded; never a token).
    #[serde(default)]
    pub last_error: Option<String>,
    /// A refresh is in progress until then (epoch seconds); see `integrations::refresh`.
    #[serde(default)]
    pub refresh_lock_until: Option<i64>,
    /// Who holds the refresh lock (a random id per token source).
    #[serde(default)]
    pub refresh_lock_holder: Option<String>,
    #[serde(skip)]
    pub item_version: u64,
}

impl std::fmt::Debug for ConnectionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRecord")
            .field("workspace_id", &self.workspace_id)
            .field("provider", &self.provider)
            .field("status", &self.status)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .field("account", &self.account)
            .field("last_refresh_at", &self.last_refresh_at)
            .field("last_error", &self.last_error)
            .field("refresh_lock_until", &self.refresh_lock_until)
            .field("item_version", &self.item_version)
            .finish_non_exhaustive()
    }
}

impl ConnectionRecord {
    /// A new active connection holding `tokens` sealed for its owner.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vault: &Vault,
        workspace_id: &str,
        provider: &str,
        tokens: &StoredTokens,
        scopes: Vec<String>,
        expires_at: Option<i64>,
        account: ConnectionAccount,
        now: i64,
    ) -> Result<Self, VaultError> {
        let mut record = Self {
            workspace_id: workspace_id.to_owned(),
            provider: provider.to_owned(),
            status: ConnectionStatus::Active,
            scopes,
            expires_at,
            tokens_sealed: String::new(),
            issued_at: Some(now),
            account,
            created_at: now,
            updated_at: now,
            last_refresh_at: None,
            last_error: None,
            refresh_lock_until: None,
            refresh_lock_holder: None,
            item_version: 0,
        };
        record.seal_tokens(vault, tokens)?;
        Ok(record)
    }

    pub fn open_tokens(&self, vault: &Vault) -> Result<StoredTokens, VaultError> {
        let plain = vault.open(
            &self.tokens_sealed,
            &sealing_owner(&self.workspace_id, &self.provider),
        )?;
        serde_json::from_slice(&plain).map_err(|_| VaultError::Open)
    }

    pub fn seal_tokens(&mut self, vault: &Vault, tokens: &StoredTokens) -> Result<(), VaultError> {
        let plain = serde_json::to_vec(tokens).map_err(|_| VaultError::Open)?;
        self.tokens_sealed =
            vault.seal(&plain, &sealing_owner(&self.workspace_id, &self.provider))?;
        Ok(())
    }

    /// Whether another refresher holds the lock at `now`.
    pub fn is_locked(&self, now: i64) -> bool {
        self.refresh_lock_until.is_some_and(|until| until > now)
    }

    /// Records a failure message, bounded and printable.
    pub fn set_error(&mut self, message: &str) {
        self.last_error = Some(bounded(message));
    }

    pub fn view(&self) -> ConnectionView {
        ConnectionView {
            provider: self.provider.clone(),
            status: self.status,
            scopes: self.scopes.clone(),
            expires_at: self.expires_at.map(crate::time::rfc3339),
            account: self.account.clone(),
            last_refresh_at: self.last_refresh_at.map(crate::time::rfc3339),
            last_error: self.last_error.clone(),
            created_at: crate::time::rfc3339(self.created_at),
            updated_at: crate::time::rfc3339(self.updated_at),
        }
    }
}

/// A message cut to [`MAX_ERROR_CHARS`] printable characters.
pub fn bounded(message: &str) -> String {
    message
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_CHARS)
        .collect()
}

/// A connection as `GET /integrations` shows it: never a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectionView {
    pub provider: String,
    pub status: ConnectionStatus,
    pub scopes: Vec<String>,
    /// RFC 3339; null when the provider gave no expiry.
    pub expires_at: Option<String>,
    pub account: ConnectionAccount,
    pub last_refresh_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

pub fn connection_key(workspace_id: &str, provider: &str) -> Key {
    Key::new(format!("WS#{workspace_id}"), format!("CONN#{provider}"))
}

fn connection_item(record: &ConnectionRecord) -> Result<Item, StoreError> {
    let key = connection_key(&record.workspace_id, &record.provider);
    Ok(Item::new(key.clone(), record_attributes(record, &key)?))
}

fn decode(item: Item) -> Result<ConnectionRecord, StoreError> {
    let (mut record, version): (ConnectionRecord, u64) = decode_item(item)?;
    record.item_version = version;
    Ok(record)
}

#[derive(Clone)]
pub struct Connections {
    table: Arc<dyn Table>,
}

impl Connections {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    pub async fn get(
        &self,
        workspace_id: &str,
        provider: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        match self
            .table
            .get(&connection_key(workspace_id, provider))
            .await?
        {
            Some(item) => decode(item).map(Some),
            None => Ok(None),
        }
    }

    /// Every connection of a workspace, in provider order.
    pub async fn list(&self, workspace_id: &str) -> Result<Vec<ConnectionRecord>, StoreError> {
        let mut records = Vec::new();
        let mut cursor = None;
        loop {
            // `CONN#` does not prefix `CONNECTOR#`: connectors in the same partition stay out.
            let page = self
                .table
                .query(
                    Query::new(format!("WS#{workspace_id}"), "CONN#")
                        .limit(100)
                        .after(cursor),
                )
                .await?;
            for item in page.items {
                records.push(decode(item)?);
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(records),
            }
        }
    }

    /// Stores `record` as the workspace's connection to its provider, creating it or
    /// replacing whatever is there (a reconnect). The replacement is a conditional write
    /// on the current version, so a refresh in flight against the old item cannot
    /// overwrite it afterwards. Returns the stored record (with its version).
    pub async fn put(&self, record: &ConnectionRecord) -> Result<ConnectionRecord, StoreError> {
        let mut stored = record.clone();
        for _ in 0..REPLACE_ATTEMPTS {
            let current = self.get(&record.workspace_id, &record.provider).await?;
            let result = match &current {
                None => {
                    stored.item_version = 1;
                    self.table.put_if_absent(connection_item(&stored)?).await
                }
                Some(current) => {
                    stored.created_at = current.created_at.min(record.created_at);
                    stored.item_version = current.item_version + 1;
                    self.table
                        .update_if_version(connection_item(&stored)?, current.item_version)
                        .await
                }
            };
            match result {
                Ok(()) => return Ok(stored),
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::ConditionFailed)
    }

    /// Replaces the record if its version is still `record.item_version`; returns the
    /// record with its new version. [`StoreError::ConditionFailed`] when it changed.
    pub async fn compare_and_swap(
        &self,
        record: &ConnectionRecord,
    ) -> Result<ConnectionRecord, StoreError> {
        self.table
            .update_if_version(connection_item(record)?, record.item_version)
            .await?;
        let mut stored = record.clone();
        stored.item_version += 1;
        Ok(stored)
    }

    /// Removes the connection; removing a missing one is not an error.
    pub async fn delete(&self, workspace_id: &str, provider: &str) -> Result<(), StoreError> {
        self.table
            .delete(&connection_key(workspace_id, provider))
            .await
    }
}

#[cfg(all(test, feature = "embedded"))]
mod tests {
    use super::*;
    use crate::store::EmbeddedTable;

    const KEY: &str = "6f1c2b3a5d6e7f8091a2b3c4d5e6f7080f1e2d3c4b5a69788796a5b4c3d2e1f0";

    fn table() -> Arc<dyn Table> {
        let dir = std::env::temp_dir().join(format!(
            "tributary-connections-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Arc::new(EmbeddedTable::open(&dir.join("store.sqlite")).unwrap())
    }

    fn record(vault: &Vault, ws: &str, provider: &str, access: &str) -> ConnectionRecord {
        ConnectionRecord::new(
            vault,
            ws,
            provider,
            &StoredTokens {
                access_token: access.into(),
                refresh_token: Some(format!("refresh-{access}")),
            },
            vec!["files.read".into()],
            Some(2_000_000_000),
            ConnectionAccount {
                workspace_name: Some("Acme".into()),
                ..Default::default()
            },
            1_700_000_000,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn put_get_list_replace_and_delete() {
        let vault = Vault::from_hex(KEY).unwrap();
        let table = table();
        let connections = Connections::new(Arc::clone(&table));
        // A connector in the same partition must not show up as a connection.
        table
            .put(Item::new(
                Key::new("WS#w1", "CONNECTOR#c1"),
                serde_json::Map::new(),
            ))
            .await
            .unwrap();

        let stored = connections
            .put(&record(&vault, "w1", "google", "a1"))
            .await
            .unwrap();
        assert_eq!(stored.item_version, 1);
        connections
            .put(&record(&vault, "w1", "slack", "s1"))
            .await
            .unwrap();
        connections
            .put(&record(&vault, "w2", "google", "other"))
            .await
            .unwrap();

        let got = connections.get("w1", "google").await.unwrap().unwrap();
        assert_eq!(got.item_version, 1);
        assert_eq!(got.open_tokens(&vault).unwrap().access_token, "a1");
        let listed: Vec<String> = connections
            .list("w1")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.provider)
            .collect();
        assert_eq!(listed, ["google", "slack"]);

        // Replacing bumps the version, so a CAS against the old version fails.
        let replaced = connections
            .put(&record(&vault, "w1", "google", "a2"))
            .await
            .unwrap();
        assert_eq!(replaced.item_version, 2);
        let mut stale = got.clone();
        stale.status = ConnectionStatus::NeedsReauth;
        assert!(matches!(
            connections.compare_and_swap(&stale).await,
            Err(StoreError::ConditionFailed)
        ));
        let mut fresh = connections.get("w1", "google").await.unwrap().unwrap();
        assert_eq!(fresh.open_tokens(&vault).unwrap().access_token, "a2");
        fresh.status = ConnectionStatus::NeedsReauth;
        let swapped = connections.compare_and_swap(&fresh).await.unwrap();
        assert_eq!(swapped.item_version, 3);
        assert_eq!(
            connections
                .get("w1", "google")
                .await
                .unwrap()
                .unwrap()
                .status,
            ConnectionStatus::NeedsReauth
        );

        connections.delete("w1", "google").await.unwrap();
        connections.delete("w1", "google").await.unwrap();
        assert!(connections.get("w1", "google").await.unwrap().is_none());
        assert!(connections.get("w2", "google").await.unwrap().is_some());
    }

    #[test]
    fn tokens_are_sealed_for_their_owner_and_never_in_the_view() {
        let vault = Vault::from_hex(KEY).unwrap();
        let mut record = record(&vault, "w1", "google", "secret-access");
        let stored = serde_json::to_string(&record).unwrap();
        assert!(!stored.contains("secret-access"), "{stored}");
        let view = serde_json::to_string(&record.view()).unwrap();
        assert!(
            !view.contains("tokens_sealed") && !view.contains("v1:"),
            "{view}"
        );
        assert!(view.contains("\"status\":\"active\""), "{view}");
        assert!(!format!("{record:?}").contains(&record.tokens_sealed));

        // Moved to another workspace, the blob does not open.
        record.workspace_id = "w2".into();
        assert_eq!(record.open_tokens(&vault), Err(VaultError::Open));
    }
}
