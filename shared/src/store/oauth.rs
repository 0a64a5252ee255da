//! One-time values of the sign-in flow: the OAuth state (PKCE verifier, nonce, expected
//! issuer, post-login path; 10 minutes) and the login code that hands the session to the
//! browser after the callback (2 minutes). Both are taken, never read twice.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{now_epoch_seconds, Item, Key, StoreError, Table};

pub const STATE_TTL_SECS: i64 = 600;
pub const LOGIN_CODE_TTL_SECS: i64 = 120;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    pub provider: String,
    pub pkce_verifier: String,
    pub nonce: String,
    /// The issuer the ID token must come from (OIDC providers).
    pub issuer: Option<String>,
    pub redirect_to: String,
    pub created_at: i64,
}

fn state_key(state: &str) -> Key {
    Key::new(format!("OSTATE#{state}"), "STATE")
}

fn used_key(state: &str) -> Key {
    Key::new(format!("OSTATE#{state}"), "USED")
}

/// Codes are stored hashed: the store never holds something that can be redeemed.
fn code_key(code: &str) -> Key {
    Key::new(
        format!("LOGINCODE#{}", hex::encode(Sha256::digest(code.as_bytes()))),
        "CODE",
    )
}

fn to_item<T: Serialize>(key: Key, value: &T, ttl: i64) -> Result<Item, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(attributes)) => {
            Ok(Item::new(key, attributes).with_expiry(Some(now_epoch_seconds() + ttl)))
        }
        _ => Err(StoreError::Backend(
            "a one-time value must serialise to an object".into(),
        )),
    }
}

fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::Object(item.attributes)).map_err(|error| {
        StoreError::Corrupt {
            pk: item.key.pk,
            sk: item.key.sk,
            reason: error.to_string(),
        }
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct LoginCode {
    user_id: String,
}

#[derive(Clone)]
pub struct SignInValues {
    table: Arc<dyn Table>,
}

impl SignInValues {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    pub async fn save_state(&self, state: &str, value: &LoginState) -> Result<(), StoreError> {
        self.table
            .put_if_absent(to_item(state_key(state), value, STATE_TTL_SECS)?)
            .await
    }

    /// The state, once: a replayed or expired state is `None`. A taken state leaves a
    /// marker (same TTL) so a replay can be told from an expired or forged state.
    pub async fn take_state(&self, state: &str) -> Result<Option<LoginState>, StoreError> {
        let Some(item) = self.table.take(&state_key(state)).await? else {
            return Ok(None);
        };
        let used = Item::new(used_key(state), super::Attributes::new())
            .with_expiry(Some(now_epoch_seconds() + STATE_TTL_SECS));
        match self.table.put_if_absent(used).await {
            Ok(()) | Err(StoreError::ConditionFailed) => {}
            // Only the replay's wording depends on the marker: the sign-in goes on.
            Err(error) => tracing::warn!(%error, "could not record the used sign-in state"),
        }
        from_item(item).map(Some)
    }

    /// Whether `state` was taken by an earlier callback (within its TTL).
    pub async fn was_used(&self, state: &str) -> Result<bool, StoreError> {
        Ok(self.table.get(&used_key(state)).await?.is_some())
    }

    pub async fn save_login_code(&self, code: &str, user_id: &str) -> Result<(), StoreError> {
        let value = LoginCode {
            user_id: user_id.to_owned(),
        };
        self.table
            .put_if_absent(to_item(code_key(code), &value, LOGIN_CODE_TTL_SECS)?)
            .await
    }

    /// The user the code was issued for, once.
    pub async fn redeem_login_code(&self, code: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .table
            .take(&code_key(code))
            .await?
            .map(from_item::<LoginCode>)
            .transpose()?
            .map(|code| code.user_id))
    }
}
