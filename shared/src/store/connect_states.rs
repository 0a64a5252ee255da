//! One-time state of the provider-connection flow (`/integrations/{provider}/login` →
//! `/callback`): the PKCE verifier, who started it for which workspace, and where to go
//! after. Stored under the state (256 random bits) for 10 minutes; taken once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{decode_item, now_epoch_seconds, record_attributes, Item, Key, StoreError, Table};

pub const CONNECT_STATE_TTL_SECS: i64 = 600;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectState {
    pub provider: String,
    pub workspace_id: String,
    pub user_id: String,
    pub pkce_verifier: String,
    /// A same-site relative path (checked when the flow started).
    pub redirect_to: Option<String>,
    pub created_at: i64,
}

/// Never prints the verifier.
impl std::fmt::Debug for ConnectState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectState")
            .field("provider", &self.provider)
            .field("workspace_id", &self.workspace_id)
            .field("user_id", &self.user_id)
            .field("redirect_to", &self.redirect_to)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

fn state_key(state: &str) -> Key {
    Key::new(format!("CSTATE#{state}"), "STATE")
}

#[derive(Clone)]
pub struct ConnectStates {
    table: Arc<dyn Table>,
}

impl ConnectStates {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    pub async fn save(&self, state: &str, value: &ConnectState) -> Result<(), StoreError> {
        let key = state_key(state);
        let attributes = record_attributes(value, &key)?;
        let item = Item::new(key, attributes)
            .with_expiry(Some(now_epoch_seconds() + CONNECT_STATE_TTL_SECS));
        self.table.put_if_absent(item).await
    }

    /// The state, once: a replayed, expired or unknown state is `None`.
    pub async fn take(&self, state: &str) -> Result<Option<ConnectState>, StoreError> {
        match self.table.take(&state_key(state)).await? {
            Some(item) => Ok(Some(decode_item(item)?.0)),
            None => Ok(None),
        }
    }
}
