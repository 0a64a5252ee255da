//! API tokens, keyed by the SHA-256 of the token so a lookup needs only the presented
//! token, and indexed on GSI1 by owner for listing and revocation by id.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Index, Item, Key, Page, Query, StoreError, Table};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    pub id: String,
    /// Hex SHA-256 of the plaintext token; the plaintext is never stored.
    pub token_hash: String,
    pub user_id: String,
    pub tenant_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    #[serde(skip)]
    pub item_version: u64,
}

fn token_key(token_hash: &str) -> Key {
    Key::new(format!("APITOKEN#{token_hash}"), "TOKEN")
}

fn owner_key(user_id: &str, token_id: &str) -> Key {
    Key::new(format!("USER#{user_id}"), format!("APITOKEN#{token_id}"))
}

fn to_item(record: &ApiTokenRecord) -> Result<Item, StoreError> {
    let key = token_key(&record.token_hash);
    let mut attributes = match serde_json::to_value(record) {
        Ok(serde_json::Value::Object(attributes)) => attributes,
        _ => {
            return Err(StoreError::Corrupt {
                pk: key.pk,
                sk: key.sk,
                reason: "an API token must serialise to an object".into(),
            })
        }
    };
    // `expires_at` is the item's TTL attribute, owned by the store.
    attributes.remove("expires_at");
    Ok(Item::new(key, attributes)
        .with_expiry(record.expires_at)
        .with_gsi1(owner_key(&record.user_id, &record.id)))
}

fn from_item(item: Item) -> Result<ApiTokenRecord, StoreError> {
    let mut attributes = item.attributes;
    attributes.insert("expires_at".into(), item.expires_at.into());
    let mut record: ApiTokenRecord = serde_json::from_value(serde_json::Value::Object(attributes))
        .map_err(|error| StoreError::Corrupt {
            pk: item.key.pk.clone(),
            sk: item.key.sk.clone(),
            reason: error.to_string(),
        })?;
    record.item_version = item.version;
    Ok(record)
}

#[derive(Clone)]
pub struct ApiTokens {
    table: Arc<dyn Table>,
}

impl ApiTokens {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    pub async fn create(&self, record: &ApiTokenRecord) -> Result<(), StoreError> {
        self.table.put_if_absent(to_item(record)?).await
    }

    /// The live (unexpired, unrevoked) token with this hash.
    pub async fn by_hash(&self, token_hash: &str) -> Result<Option<ApiTokenRecord>, StoreError> {
        self.table
            .get(&token_key(token_hash))
            .await?
            .map(from_item)
            .transpose()
    }

    pub async fn list_for_user(
        &self,
        user_id: &str,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(Vec<ApiTokenRecord>, Option<String>), StoreError> {
        let Page { items, next } = self
            .table
            .query(
                Query::new(format!("USER#{user_id}"), "APITOKEN#")
                    .on(Index::Gsi1)
                    .limit(limit)
                    .after(cursor),
            )
            .await?;
        let records = items.into_iter().map(from_item).collect::<Result<_, _>>()?;
        Ok((records, next))
    }

    pub async fn find_for_user(
        &self,
        user_id: &str,
        token_id: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        let owner = owner_key(user_id, token_id);
        let page = self
            .table
            .query(Query::new(owner.pk, owner.sk).on(Index::Gsi1).limit(2))
            .await?;
        // The prefix query could match a longer id; only an exact id counts.
        page.items
            .into_iter()
            .map(from_item)
            .find(|record| record.as_ref().map_or(true, |r| r.id == token_id))
            .transpose()
    }

    pub async fn revoke(&self, record: &ApiTokenRecord) -> Result<(), StoreError> {
        self.table.delete(&token_key(&record.token_hash)).await
    }

    /// Revokes every token of the user ("sign out everywhere"); returns how many.
    pub async fn revoke_all_for_user(&self, user_id: &str) -> Result<usize, StoreError> {
        let mut revoked = 0;
        // Deleting while paging would shift the cursor: collect first, then delete.
        let mut records = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = self.list_for_user(user_id, 100, cursor).await?;
            records.extend(page);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        for record in &records {
            self.revoke(record).await?;
            revoked += 1;
        }
        Ok(revoked)
    }

    /// Records use at most once per `interval` seconds, so checks stay read-mostly; losing
    /// a race to another check is fine, the other one wrote the same fact.
    pub async fn touch(
        &self,
        record: &ApiTokenRecord,
        now: i64,
        interval: i64,
    ) -> Result<(), StoreError> {
        if record.last_used_at.is_some_and(|at| now - at < interval) {
            return Ok(());
        }
        let mut touched = record.clone();
        touched.last_used_at = Some(now);
        match self
            .table
            .update_if_version(to_item(&touched)?, record.item_version)
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(error) => Err(error),
        }
    }
}
