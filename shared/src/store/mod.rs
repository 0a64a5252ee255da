//! The one table of DESIGN §2, behind a trait with a DynamoDB and an embedded backend.
//!
//! Items carry their own optimistic-locking `version` and optional `expires_at` (epoch
//! seconds). DynamoDB deletes expired items lazily (up to days later), so every read filters
//! them and every "absent" condition treats an expired item as absent; both backends follow
//! that rule, which the contract suite checks.

pub mod api_tokens;
pub mod connect_states;
#[cfg(feature = "sync")]
pub mod connections;
#[cfg(feature = "sync")]
pub mod connectors;
#[cfg(feature = "crawl")]
pub mod crawls;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod oauth;
pub mod users;

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::Value;

pub use api_tokens::{ApiTokenRecord, ApiTokens};
#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoTable;
#[cfg(feature = "embedded")]
pub use embedded::EmbeddedTable;
pub use users::{NewUser, User, UserError, UserStatus, Users};

/// Non-key attributes of an item.
pub type Attributes = serde_json::Map<String, Value>;

/// Attribute names the backends use themselves; repositories must not use them.
pub const RESERVED_ATTRIBUTES: [&str; 6] =
    ["pk", "sk", "version", "expires_at", "gsi1pk", "gsi1sk"];

/// Most items a single transaction may write (DynamoDB's TransactWriteItems limit).
pub const MAX_TRANSACTION_OPS: usize = 100;

/// Largest page a query returns.
pub const MAX_PAGE_SIZE: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub key: Key,
    /// Starts at 1; `update_if_version` stores `expected + 1`.
    pub version: u64,
    /// Epoch seconds after which the item no longer exists for readers.
    pub expires_at: Option<i64>,
    /// Secondary key for the `gsi1` index (`gsi1pk`, `gsi1sk`).
    pub gsi1: Option<Key>,
    pub attributes: Attributes,
}

impl Item {
    pub fn new(key: Key, attributes: Attributes) -> Self {
        Self {
            key,
            version: 1,
            expires_at: None,
            gsi1: None,
            attributes,
        }
    }

    pub fn with_expiry(mut self, expires_at: Option<i64>) -> Self {
        self.expires_at = expires_at;
        self
    }

    pub fn with_gsi1(mut self, gsi1: Key) -> Self {
        self.gsi1 = Some(gsi1);
        self
    }

    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    #[cfg_attr(not(any(feature = "dynamodb", feature = "embedded")), allow(dead_code))]
    fn check_attribute_names(&self) -> Result<(), StoreError> {
        match self
            .attributes
            .keys()
            .find(|name| RESERVED_ATTRIBUTES.contains(&name.as_str()))
        {
            Some(name) => Err(StoreError::ReservedAttribute(name.clone())),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    /// `pk` + `sk`, strongly consistent.
    Primary,
    /// `gsi1pk` + `gsi1sk`, eventually consistent on DynamoDB.
    Gsi1,
}

#[derive(Clone, Debug)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    pub sk_prefix: String,
    pub limit: usize,
    /// The `next` of a previous page.
    pub cursor: Option<String>,
}

impl Query {
    pub fn new(pk: impl Into<String>, sk_prefix: impl Into<String>) -> Self {
        Self {
            index: Index::Primary,
            pk: pk.into(),
            sk_prefix: sk_prefix.into(),
            limit: 100,
            cursor: None,
        }
    }

    pub fn on(mut self, index: Index) -> Self {
        self.index = index;
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.clamp(1, MAX_PAGE_SIZE);
        self
    }

    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
}

/// At most `limit` items in key order; `next` is set when more may follow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<String>,
}

#[derive(Clone, Debug)]
pub enum WriteOp {
    Put(Item),
    PutIfAbsent(Item),
    UpdateIfVersion {
        item: Item,
        expected: u64,
    },
    Delete(Key),
    /// Deletes a live item only while it still has version `expected`.
    DeleteIfVersion {
        key: Key,
        expected: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("condition failed: the item already exists, is missing or has another version")]
    ConditionFailed,
    #[error("invalid pagination cursor")]
    InvalidCursor,
    #[error("attribute name `{0}` is reserved by the store")]
    ReservedAttribute(String),
    #[error("a transaction holds 1 to {MAX_TRANSACTION_OPS} writes, got {0}")]
    TransactionSize(usize),
    #[error("item {pk}/{sk} is corrupt: {reason}")]
    Corrupt {
        pk: String,
        sk: String,
        reason: String,
    },
    #[error("store backend error: {0}")]
    Backend(String),
}

#[async_trait]
pub trait Table: Send + Sync + 'static {
    /// The item, unless it is missing or expired.
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError>;
    /// Writes the item as given, replacing any other.
    async fn put(&self, item: Item) -> Result<(), StoreError>;
    /// Writes the item only when no live item has its key.
    async fn put_if_absent(&self, item: Item) -> Result<(), StoreError>;
    /// Replaces a live item whose version is `expected`; the stored version becomes `expected + 1`.
    async fn update_if_version(&self, item: Item, expected: u64) -> Result<(), StoreError>;
    /// Removes the item; removing a missing item is not an error.
    async fn delete(&self, key: &Key) -> Result<(), StoreError>;
    /// Live items whose partition key is `pk` and sort key starts with `sk_prefix`.
    async fn query(&self, query: Query) -> Result<Page, StoreError>;
    /// All writes or none, each with its own condition.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;

    /// Reads and deletes an item so that exactly one caller gets it (one-time values such
    /// as OAuth state and login codes); `None` when missing, expired or taken by another.
    async fn take(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let Some(item) = self.get(key).await? else {
            return Ok(None);
        };
        let delete = WriteOp::DeleteIfVersion {
            key: key.clone(),
            expected: item.version,
        };
        match self.transact(vec![delete]).await {
            Ok(()) => Ok(Some(item)),
            Err(StoreError::ConditionFailed) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// A record's attributes: the record must serialise to a JSON object.
#[cfg_attr(not(feature = "crawl"), allow(dead_code))]
pub(crate) fn record_attributes<T: serde::Serialize>(
    value: &T,
    key: &Key,
) -> Result<Attributes, StoreError> {
    match serde_json::to_value(value) {
        Ok(Value::Object(attributes)) => Ok(attributes),
        _ => Err(StoreError::Corrupt {
            pk: key.pk.clone(),
            sk: key.sk.clone(),
            reason: "must serialise to an object".into(),
        }),
    }
}

/// The record an item holds, with the item's version.
pub(crate) fn decode_item<T: serde::de::DeserializeOwned>(
    item: Item,
) -> Result<(T, u64), StoreError> {
    let version = item.version;
    serde_json::from_value(Value::Object(item.attributes))
        .map(|record| (record, version))
        .map_err(|error| StoreError::Corrupt {
            pk: item.key.pk,
            sk: item.key.sk,
            reason: error.to_string(),
        })
}

/// Every record of a page, and the page's cursor.
#[cfg_attr(not(feature = "sync"), allow(dead_code))]
pub(crate) fn decode_page<T: serde::de::DeserializeOwned>(
    page: Page,
) -> Result<(Vec<T>, Option<String>), StoreError> {
    let records = page
        .items
        .into_iter()
        .map(|item| decode_item(item).map(|(record, _)| record))
        .collect::<Result<_, _>>()?;
    Ok((records, page.next))
}

pub use crate::time::now_epoch_seconds;

#[cfg_attr(not(any(feature = "dynamodb", feature = "embedded")), allow(dead_code))]
fn check_transaction(ops: &[WriteOp]) -> Result<(), StoreError> {
    if ops.is_empty() || ops.len() > MAX_TRANSACTION_OPS {
        return Err(StoreError::TransactionSize(ops.len()));
    }
    for op in ops {
        match op {
            WriteOp::Put(item)
            | WriteOp::PutIfAbsent(item)
            | WriteOp::UpdateIfVersion { item, .. } => item.check_attribute_names()?,
            WriteOp::Delete(_) | WriteOp::DeleteIfVersion { .. } => {}
        }
    }
    Ok(())
}

/// Cursors are opaque to callers: base64url of a JSON array of key strings.
#[cfg_attr(not(any(feature = "dynamodb", feature = "embedded")), allow(dead_code))]
fn encode_cursor(parts: &[&str]) -> String {
    let json = serde_json::to_vec(parts).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

#[cfg_attr(not(any(feature = "dynamodb", feature = "embedded")), allow(dead_code))]
fn decode_cursor(cursor: &str, expected_parts: usize) -> Result<Vec<String>, StoreError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::InvalidCursor)?;
    let parts: Vec<String> =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
    if parts.len() == expected_parts {
        Ok(parts)
    } else {
        Err(StoreError::InvalidCursor)
    }
}
