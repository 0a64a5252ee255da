//! The embedded backend: one SQLite file, so a laptop needs no AWS account and data
//! survives a restart. WAL mode and a busy timeout let `tributary-local serve` and the CLI
//! share the file. Statements are short, so they run inline under a mutex rather than on
//! a blocking thread: a point read costs microseconds, less than a thread hand-off.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use crate::sqlite::Immediate;

use super::{
    check_transaction, decode_cursor, encode_cursor, now_epoch_seconds, Attributes, Index, Item,
    Key, Page, Query, StoreError, Table, WriteOp,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at INTEGER,
    gsi1pk TEXT,
    gsi1sk TEXT,
    attributes TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;
";

const COLUMNS: &str = "pk, sk, version, expires_at, gsi1pk, gsi1sk, attributes";

pub struct EmbeddedTable {
    connection: Mutex<Connection>,
}

impl EmbeddedTable {
    /// Opens (creating if needed) the store in `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(backend)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(backend)?;
        connection.execute_batch(SCHEMA).map_err(backend)?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    /// Deletes expired items, as DynamoDB's TTL sweeper would. Reads never need it.
    pub fn purge_expired(&self) -> Result<usize, StoreError> {
        self.lock()?
            .execute(
                "DELETE FROM items WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                params![now_epoch_seconds()],
            )
            .map_err(backend)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.connection
            .lock()
            .map_err(|_| StoreError::Backend("embedded store lock poisoned".into()))
    }
}

fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// A row before its attributes are parsed: key, version, expiry, GSI1 key, attributes JSON.
type RawItem = (Key, u64, Option<i64>, Option<Key>, String);

fn read_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawItem> {
    let key = Key::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?);
    let gsi1 = match (
        row.get::<_, Option<String>>(4)?,
        row.get::<_, Option<String>>(5)?,
    ) {
        (Some(pk), Some(sk)) => Some(Key::new(pk, sk)),
        _ => None,
    };
    Ok((
        key,
        row.get::<_, i64>(2)? as u64,
        row.get(3)?,
        gsi1,
        row.get(6)?,
    ))
}

fn to_item((key, version, expires_at, gsi1, attributes): RawItem) -> Result<Item, StoreError> {
    let attributes: Attributes =
        serde_json::from_str(&attributes).map_err(|e| StoreError::Corrupt {
            pk: key.pk.clone(),
            sk: key.sk.clone(),
            reason: e.to_string(),
        })?;
    Ok(Item {
        key,
        version,
        expires_at,
        gsi1,
        attributes,
    })
}

fn live_version(connection: &Connection, key: &Key, now: i64) -> Result<Option<u64>, StoreError> {
    connection
        .prepare_cached(
            "SELECT version FROM items WHERE pk = ?1 AND sk = ?2
             AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![key.pk, key.sk, now], |row| row.get::<_, i64>(0))
                .optional()
        })
        .map(|version| version.map(|v| v as u64))
        .map_err(backend)
}

/// The row's attributes as JSON and its GSI1 key columns.
fn columns(item: &Item) -> Result<(String, Option<&str>, Option<&str>), StoreError> {
    let attributes =
        serde_json::to_string(&item.attributes).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(match &item.gsi1 {
        Some(key) => (attributes, Some(key.pk.as_str()), Some(key.sk.as_str())),
        None => (attributes, None, None),
    })
}

fn write_item(connection: &Connection, item: &Item, version: u64) -> Result<(), StoreError> {
    let (attributes, gsi1pk, gsi1sk) = columns(item)?;
    connection
        .prepare_cached(&format!(
            "INSERT OR REPLACE INTO items ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        ))
        .and_then(|mut statement| {
            statement.execute(params![
                item.key.pk,
                item.key.sk,
                version as i64,
                item.expires_at,
                gsi1pk,
                gsi1sk,
                attributes
            ])
        })
        .map(|_| ())
        .map_err(backend)
}

/// Rewrites an existing row. When its expiry and GSI1 key stay as they are (nearly every
/// update: a URL's state, a job's counters), only the row's page changes; INSERT OR
/// REPLACE deletes and re-inserts, rewriting the expiry and GSI1 index pages as well, and
/// each page costs WAL writes on every commit.
fn update_item(connection: &Connection, item: &Item, version: u64) -> Result<(), StoreError> {
    let (attributes, gsi1pk, gsi1sk) = columns(item)?;
    let updated = connection
        .prepare_cached(
            "UPDATE items SET version = ?3, attributes = ?4
             WHERE pk = ?1 AND sk = ?2 AND expires_at IS ?5 AND gsi1pk IS ?6 AND gsi1sk IS ?7",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                item.key.pk,
                item.key.sk,
                version as i64,
                attributes,
                item.expires_at,
                gsi1pk,
                gsi1sk
            ])
        })
        .map_err(backend)?;
    if updated == 1 {
        Ok(())
    } else {
        write_item(connection, item, version)
    }
}

/// Applies one write with its condition; the caller owns the transaction.
fn apply(connection: &Connection, op: &WriteOp, now: i64) -> Result<(), StoreError> {
    match op {
        WriteOp::Put(item) => write_item(connection, item, item.version),
        WriteOp::PutIfAbsent(item) => match live_version(connection, &item.key, now)? {
            Some(_) => Err(StoreError::ConditionFailed),
            None => write_item(connection, item, item.version),
        },
        WriteOp::UpdateIfVersion { item, expected } => {
            match live_version(connection, &item.key, now)? {
                Some(version) if version == *expected => {
                    update_item(connection, item, expected + 1)
                }
                _ => Err(StoreError::ConditionFailed),
            }
        }
        WriteOp::DeleteIfVersion { key, expected } => match live_version(connection, key, now)? {
            Some(version) if version == *expected => {
                apply(connection, &WriteOp::Delete(key.clone()), now)
            }
            _ => Err(StoreError::ConditionFailed),
        },
        WriteOp::Delete(key) => connection
            .prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
            .and_then(|mut statement| statement.execute(params![key.pk, key.sk]))
            .map(|_| ())
            .map_err(backend),
    }
}

impl EmbeddedTable {
    fn run(&self, ops: &[WriteOp]) -> Result<(), StoreError> {
        check_transaction(ops)?;
        let now = now_epoch_seconds();
        let connection = self.lock()?;
        let transaction = Immediate::begin(&connection).map_err(backend)?;
        for op in ops {
            apply(&transaction, op, now)?;
        }
        transaction.commit().map_err(backend)
    }

    fn query_rows(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        let now = now_epoch_seconds();
        let fetch = query.limit as i64 + 1;
        let prefix_len = query.sk_prefix.chars().count() as i64;
        let connection = self.lock()?;
        let rows = match query.index {
            Index::Primary => {
                let after = match &query.cursor {
                    Some(cursor) => decode_cursor(cursor, 2)?.swap_remove(1),
                    None => String::new(),
                };
                let mut statement = connection
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM items
                         WHERE pk = ?1 AND sk >= ?2 AND substr(sk, 1, ?3) = ?2 AND sk > ?4
                           AND (expires_at IS NULL OR expires_at > ?5)
                         ORDER BY sk LIMIT ?6"
                    ))
                    .map_err(backend)?;
                let rows = statement
                    .query_map(
                        params![query.pk, query.sk_prefix, prefix_len, after, now, fetch],
                        read_item,
                    )
                    .map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
            }
            Index::Gsi1 => {
                // Ties on gsi1sk are broken by the primary key, as DynamoDB's index does.
                let (after_sk, after_pk, after_primary_sk) = match &query.cursor {
                    Some(cursor) => {
                        let parts = decode_cursor(cursor, 4)?;
                        (parts[3].clone(), parts[0].clone(), parts[1].clone())
                    }
                    None => (String::new(), String::new(), String::new()),
                };
                let mut statement = connection
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM items
                         WHERE gsi1pk = ?1 AND gsi1sk >= ?2 AND substr(gsi1sk, 1, ?3) = ?2
                           AND (gsi1sk, pk, sk) > (?4, ?5, ?6)
                           AND (expires_at IS NULL OR expires_at > ?7)
                         ORDER BY gsi1sk, pk, sk LIMIT ?8"
                    ))
                    .map_err(backend)?;
                let rows = statement
                    .query_map(
                        params![
                            query.pk,
                            query.sk_prefix,
                            prefix_len,
                            after_sk,
                            after_pk,
                            after_primary_sk,
                            now,
                            fetch
                        ],
                        read_item,
                    )
                    .map_err(backend)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(backend)?
            }
        };
        rows.into_iter().map(to_item).collect()
    }
}

fn cursor_for(item: &Item, index: Index) -> String {
    match (index, &item.gsi1) {
        (Index::Gsi1, Some(gsi1)) => {
            encode_cursor(&[&item.key.pk, &item.key.sk, &gsi1.pk, &gsi1.sk])
        }
        _ => encode_cursor(&[&item.key.pk, &item.key.sk]),
    }
}

#[async_trait]
impl Table for EmbeddedTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let connection = self.lock()?;
        let row = connection
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM items WHERE pk = ?1 AND sk = ?2
                 AND (expires_at IS NULL OR expires_at > ?3)"
            ))
            .and_then(|mut statement| {
                statement
                    .query_row(params![key.pk, key.sk, now_epoch_seconds()], read_item)
                    .optional()
            })
            .map_err(backend)?;
        row.map(to_item).transpose()
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.run(&[WriteOp::Put(item)])
    }

    async fn put_if_absent(&self, item: Item) -> Result<(), StoreError> {
        self.run(&[WriteOp::PutIfAbsent(item)])
    }

    async fn update_if_version(&self, item: Item, expected: u64) -> Result<(), StoreError> {
        self.run(&[WriteOp::UpdateIfVersion { item, expected }])
    }

    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.run(&[WriteOp::Delete(key.clone())])
    }

    async fn query(&self, mut query: Query) -> Result<Page, StoreError> {
        query.limit = query.limit.clamp(1, super::MAX_PAGE_SIZE);
        let mut items = self.query_rows(&query)?;
        let next = if items.len() > query.limit {
            items.truncate(query.limit);
            items.last().map(|last| cursor_for(last, query.index))
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.run(&ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> EmbeddedTable {
        EmbeddedTable::open(Path::new(":memory:")).unwrap()
    }

    fn item(value: i64, expires_at: i64, gsi1: Option<Key>) -> Item {
        let mut attributes = Attributes::new();
        attributes.insert("v".into(), value.into());
        let item = Item::new(Key::new("P", "S"), attributes).with_expiry(Some(expires_at));
        match gsi1 {
            Some(gsi1) => item.with_gsi1(gsi1),
            None => item,
        }
    }

    async fn on_gsi1(table: &EmbeddedTable) -> Vec<Item> {
        table
            .query(Query::new("G", "").on(Index::Gsi1).limit(10))
            .await
            .unwrap()
            .items
    }

    /// Updates take the row-only path when expiry and GSI1 key stay, and the full rewrite
    /// when either changes: the indexes must follow both ways.
    #[tokio::test]
    async fn updates_keep_the_indexes_right_whether_or_not_indexed_columns_change() {
        let table = table();
        let later = now_epoch_seconds() + 3600;
        let gsi1 = Some(Key::new("G", "1"));
        table.put(item(1, later, gsi1.clone())).await.unwrap();
        table
            .update_if_version(item(2, later, gsi1.clone()), 1)
            .await
            .unwrap();
        let listed = on_gsi1(&table).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].version, &listed[0].attributes["v"]),
            (2, &2.into())
        );

        table
            .update_if_version(item(3, later, None), 2)
            .await
            .unwrap();
        assert!(on_gsi1(&table).await.is_empty(), "the GSI1 key was dropped");
        let read = table.get(&Key::new("P", "S")).await.unwrap().unwrap();
        assert_eq!((read.version, read.gsi1), (3, None));

        table
            .update_if_version(item(4, now_epoch_seconds() - 1, None), 3)
            .await
            .unwrap();
        assert_eq!(
            table.get(&Key::new("P", "S")).await.unwrap(),
            None,
            "expired"
        );
        assert_eq!(
            table.purge_expired().unwrap(),
            1,
            "the expiry index has the row"
        );
    }
}
