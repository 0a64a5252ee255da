//! The `Table` contract, run against the embedded backend and DynamoDB on moto.

use std::sync::Arc;

use serde_json::json;
use tributary::store::dynamodb::create_table;
use tributary::store::{
    now_epoch_seconds, Attributes, DynamoTable, EmbeddedTable, Index, Item, Key, Query, StoreError,
    Table, WriteOp,
};
use tributary_e2e::moto;

fn attrs(value: serde_json::Value) -> Attributes {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn item(pk: &str, sk: &str, value: serde_json::Value) -> Item {
    Item::new(Key::new(pk, sk), attrs(value))
}

pub fn embedded_table() -> (Arc<dyn Table>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(moto::unique_name("tributary-store"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.sqlite");
    (Arc::new(EmbeddedTable::open(&path).unwrap()), path)
}

pub async fn dynamo_table() -> Arc<dyn Table> {
    let client = moto::dynamodb_client().await;
    let name = moto::unique_name("tributary");
    create_table(&client, &name).await.unwrap();
    Arc::new(DynamoTable::new(client, name))
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() { super::$case(super::embedded_table().0).await })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() { super::$case(super::dynamo_table().await).await })*
        }
    };
}

contract!(
    get_of_a_missing_item_is_none,
    put_then_get_round_trips_every_attribute_type,
    put_replaces,
    put_if_absent_refuses_a_live_item_and_keeps_it,
    put_if_absent_takes_the_place_of_an_expired_item,
    expired_items_are_invisible_to_get_and_query,
    update_if_version_bumps_and_refuses_stale_versions,
    update_if_version_refuses_a_missing_item,
    delete_removes_and_is_idempotent,
    query_by_prefix_pages_in_key_order,
    query_on_gsi1_pages_in_index_order,
    a_bad_cursor_is_refused,
    transact_writes_all_or_nothing,
    transact_applies_every_write,
    race_two_put_if_absent_one_wins,
    race_two_updates_at_one_version_one_wins,
    reserved_attribute_names_are_refused,
    take_hands_an_item_to_exactly_one_caller,
);

async fn take_hands_an_item_to_exactly_one_caller(table: Arc<dyn Table>) {
    assert_eq!(table.take(&Key::new("ONCE", "1")).await.unwrap(), None);
    table
        .put(item("ONCE", "1", json!({"secret": "s"})))
        .await
        .unwrap();
    let takers = (0..4).map(|_| {
        let table = table.clone();
        tokio::spawn(async move { table.take(&Key::new("ONCE", "1")).await.unwrap() })
    });
    let taken: Vec<Item> = futures::future::join_all(takers)
        .await
        .into_iter()
        .filter_map(|joined| joined.unwrap())
        .collect();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attributes, attrs(json!({"secret": "s"})));
    assert_eq!(table.get(&Key::new("ONCE", "1")).await.unwrap(), None);
    let expired = item("ONCE", "2", json!({})).with_expiry(Some(now_epoch_seconds() - 1));
    table.put(expired).await.unwrap();
    assert_eq!(table.take(&Key::new("ONCE", "2")).await.unwrap(), None);
}

async fn get_of_a_missing_item_is_none(table: Arc<dyn Table>) {
    assert_eq!(table.get(&Key::new("A", "missing")).await.unwrap(), None);
}

async fn put_then_get_round_trips_every_attribute_type(table: Arc<dyn Table>) {
    let expires = now_epoch_seconds() + 3600;
    let written = item(
        "USER#1",
        "PROFILE",
        json!({
            "name": "Ada", "count": 42, "ratio": 0.5, "negative": -7, "active": true,
            "nothing": null, "tags": ["a", "b"], "nested": {"deep": {"x": 1}}, "empty": ""
        }),
    )
    .with_expiry(Some(expires))
    .with_gsi1(Key::new("G", "g1"));
    table.put(written.clone()).await.unwrap();
    let read = table.get(&written.key).await.unwrap().unwrap();
    assert_eq!(read, written);
}

async fn put_replaces(table: Arc<dyn Table>) {
    table.put(item("A", "1", json!({"v": 1}))).await.unwrap();
    table.put(item("A", "1", json!({"w": 2}))).await.unwrap();
    let read = table.get(&Key::new("A", "1")).await.unwrap().unwrap();
    assert_eq!(read.attributes, attrs(json!({"w": 2})));
}

async fn put_if_absent_refuses_a_live_item_and_keeps_it(table: Arc<dyn Table>) {
    table
        .put_if_absent(item("A", "1", json!({"first": true})))
        .await
        .unwrap();
    let second = table
        .put_if_absent(item("A", "1", json!({"second": true})))
        .await;
    assert!(
        matches!(second, Err(StoreError::ConditionFailed)),
        "{second:?}"
    );
    let read = table.get(&Key::new("A", "1")).await.unwrap().unwrap();
    assert_eq!(read.attributes, attrs(json!({"first": true})));
}

async fn put_if_absent_takes_the_place_of_an_expired_item(table: Arc<dyn Table>) {
    let expired = item("A", "1", json!({"old": true})).with_expiry(Some(now_epoch_seconds() - 10));
    table.put(expired).await.unwrap();
    table
        .put_if_absent(item("A", "1", json!({"new": true})))
        .await
        .unwrap();
    let read = table.get(&Key::new("A", "1")).await.unwrap().unwrap();
    assert_eq!(read.attributes, attrs(json!({"new": true})));
}

async fn expired_items_are_invisible_to_get_and_query(table: Arc<dyn Table>) {
    let past = Some(now_epoch_seconds() - 1);
    let future = Some(now_epoch_seconds() + 3600);
    table
        .put(item("A", "DOC#1", json!({})).with_expiry(past))
        .await
        .unwrap();
    table
        .put(item("A", "DOC#2", json!({})).with_expiry(future))
        .await
        .unwrap();
    assert_eq!(table.get(&Key::new("A", "DOC#1")).await.unwrap(), None);
    let page = table.query(Query::new("A", "DOC#")).await.unwrap();
    let keys: Vec<_> = page.items.iter().map(|i| i.key.sk.as_str()).collect();
    assert_eq!(keys, ["DOC#2"]);
    let updated = table
        .update_if_version(item("A", "DOC#1", json!({"revived": true})), 1)
        .await;
    assert!(
        matches!(updated, Err(StoreError::ConditionFailed)),
        "{updated:?}"
    );
}

async fn update_if_version_bumps_and_refuses_stale_versions(table: Arc<dyn Table>) {
    table.put(item("A", "1", json!({"n": 1}))).await.unwrap();
    table
        .update_if_version(item("A", "1", json!({"n": 2})), 1)
        .await
        .unwrap();
    let read = table.get(&Key::new("A", "1")).await.unwrap().unwrap();
    assert_eq!((read.version, read.attributes), (2, attrs(json!({"n": 2}))));
    let stale = table
        .update_if_version(item("A", "1", json!({"n": 3})), 1)
        .await;
    assert!(
        matches!(stale, Err(StoreError::ConditionFailed)),
        "{stale:?}"
    );
    let read = table.get(&Key::new("A", "1")).await.unwrap().unwrap();
    assert_eq!((read.version, read.attributes), (2, attrs(json!({"n": 2}))));
}

async fn update_if_version_refuses_a_missing_item(table: Arc<dyn Table>) {
    let result = table.update_if_version(item("A", "1", json!({})), 1).await;
    assert!(
        matches!(result, Err(StoreError::ConditionFailed)),
        "{result:?}"
    );
    assert_eq!(table.get(&Key::new("A", "1")).await.unwrap(), None);
}

async fn delete_removes_and_is_idempotent(table: Arc<dyn Table>) {
    table.put(item("A", "1", json!({}))).await.unwrap();
    table.put(item("A", "2", json!({}))).await.unwrap();
    table.delete(&Key::new("A", "1")).await.unwrap();
    table.delete(&Key::new("A", "1")).await.unwrap();
    assert_eq!(table.get(&Key::new("A", "1")).await.unwrap(), None);
    assert!(table.get(&Key::new("A", "2")).await.unwrap().is_some());
}

async fn collect_pages(table: &Arc<dyn Table>, query: Query) -> (Vec<Vec<Key>>, Vec<Item>) {
    let mut pages = Vec::new();
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = table.query(query.clone().after(cursor)).await.unwrap();
        pages.push(page.items.iter().map(|i| i.key.clone()).collect());
        all.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (pages, all),
        }
    }
}

async fn query_by_prefix_pages_in_key_order(table: Arc<dyn Table>) {
    for n in (0..25).rev() {
        table
            .put(item("A", &format!("DOC#{n:02}"), json!({"n": n})))
            .await
            .unwrap();
    }
    table.put(item("A", "OTHER#1", json!({}))).await.unwrap();
    table.put(item("A", "DOC", json!({}))).await.unwrap();
    table.put(item("B", "DOC#00", json!({}))).await.unwrap();
    let (pages, all) = collect_pages(&table, Query::new("A", "DOC#").limit(10)).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5]);
    let keys: Vec<String> = all.iter().map(|i| i.key.sk.clone()).collect();
    let expected: Vec<String> = (0..25).map(|n| format!("DOC#{n:02}")).collect();
    assert_eq!(keys, expected);
    assert!(all.iter().all(|i| i.key.pk == "A"));
}

async fn query_on_gsi1_pages_in_index_order(table: Arc<dyn Table>) {
    for n in 0..7 {
        let written = item(&format!("TOKEN#{n}"), "T", json!({"n": n}))
            .with_gsi1(Key::new("USER#u", format!("APITOKEN#{}", 6 - n)));
        table.put(written).await.unwrap();
    }
    table
        .put(item("TOKEN#x", "T", json!({})).with_gsi1(Key::new("USER#other", "APITOKEN#0")))
        .await
        .unwrap();
    let query = Query::new("USER#u", "APITOKEN#").on(Index::Gsi1).limit(3);
    let (pages, all) = collect_pages(&table, query).await;
    assert_eq!(pages.iter().map(Vec::len).sum::<usize>(), 7);
    assert!(pages.iter().all(|page| page.len() <= 3));
    let order: Vec<i64> = all
        .iter()
        .map(|i| i.attributes["n"].as_i64().unwrap())
        .collect();
    assert_eq!(order, [6, 5, 4, 3, 2, 1, 0]);
}

async fn a_bad_cursor_is_refused(table: Arc<dyn Table>) {
    let result = table
        .query(Query::new("A", "").after(Some("not-a-cursor!".into())))
        .await;
    assert!(
        matches!(result, Err(StoreError::InvalidCursor)),
        "{result:?}"
    );
}

async fn transact_writes_all_or_nothing(table: Arc<dyn Table>) {
    table
        .put(item("A", "taken", json!({"owner": 1})))
        .await
        .unwrap();
    let result = table
        .transact(vec![
            WriteOp::PutIfAbsent(item("A", "free", json!({}))),
            WriteOp::PutIfAbsent(item("A", "taken", json!({"owner": 2}))),
        ])
        .await;
    assert!(
        matches!(result, Err(StoreError::ConditionFailed)),
        "{result:?}"
    );
    assert_eq!(table.get(&Key::new("A", "free")).await.unwrap(), None);
    let taken = table.get(&Key::new("A", "taken")).await.unwrap().unwrap();
    assert_eq!(taken.attributes, attrs(json!({"owner": 1})));
}

async fn transact_applies_every_write(table: Arc<dyn Table>) {
    table.put(item("A", "old", json!({}))).await.unwrap();
    table
        .put(item("A", "versioned", json!({"n": 1})))
        .await
        .unwrap();
    table
        .transact(vec![
            WriteOp::PutIfAbsent(item("A", "new", json!({}))),
            WriteOp::UpdateIfVersion {
                item: item("A", "versioned", json!({"n": 2})),
                expected: 1,
            },
            WriteOp::Delete(Key::new("A", "old")),
        ])
        .await
        .unwrap();
    assert!(table.get(&Key::new("A", "new")).await.unwrap().is_some());
    assert_eq!(table.get(&Key::new("A", "old")).await.unwrap(), None);
    let versioned = table
        .get(&Key::new("A", "versioned"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(versioned.version, 2);
}

/// Runs the contenders concurrently; each returns its number when its write wins.
async fn race<F, Fut>(
    contenders: std::ops::RangeInclusive<i64>,
    write: F,
) -> Vec<Result<i64, StoreError>>
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>> + Send + 'static,
{
    let tasks = contenders.map(|n| {
        let attempt = write(n);
        tokio::spawn(async move { attempt.await.map(|_| n) })
    });
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.unwrap())
        .collect()
}

fn single_winner(results: &[Result<i64, StoreError>]) -> i64 {
    let winners: Vec<i64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .filter(|r| r.is_err())
        .all(|r| matches!(r, Err(StoreError::ConditionFailed))));
    winners[0]
}

async fn race_two_put_if_absent_one_wins(table: Arc<dyn Table>) {
    let results = race(1..=2, |n| {
        let table = table.clone();
        async move {
            table
                .put_if_absent(item("RACE", "1", json!({"winner": n})))
                .await
        }
    })
    .await;
    let winner = single_winner(&results);
    let stored = table.get(&Key::new("RACE", "1")).await.unwrap().unwrap();
    assert_eq!(stored.attributes["winner"], json!(winner));
}

async fn race_two_updates_at_one_version_one_wins(table: Arc<dyn Table>) {
    table.put(item("RACE", "1", json!({"n": 0}))).await.unwrap();
    let results = race(1..=2, |n| {
        let table = table.clone();
        async move {
            table
                .update_if_version(item("RACE", "1", json!({"n": n})), 1)
                .await
        }
    })
    .await;
    let winner = single_winner(&results);
    let stored = table.get(&Key::new("RACE", "1")).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.attributes["n"].clone()),
        (2, json!(winner))
    );
}

async fn reserved_attribute_names_are_refused(table: Arc<dyn Table>) {
    let result = table.put(item("A", "1", json!({"version": 9}))).await;
    assert!(matches!(result, Err(StoreError::ReservedAttribute(name)) if name == "version"));
    assert_eq!(table.get(&Key::new("A", "1")).await.unwrap(), None);
}

#[tokio::test]
async fn embedded_store_survives_a_reopen() {
    let (table, path) = embedded_table();
    table
        .put(item("A", "1", json!({"kept": true})))
        .await
        .unwrap();
    drop(table);
    let reopened = EmbeddedTable::open(&path).unwrap();
    let read = reopened.get(&Key::new("A", "1")).await.unwrap().unwrap();
    assert_eq!(read.attributes, attrs(json!({"kept": true})));
}

#[tokio::test]
async fn embedded_purge_deletes_only_expired_items() {
    let dir = std::env::temp_dir().join(moto::unique_name("tributary-store"));
    std::fs::create_dir_all(&dir).unwrap();
    let table = EmbeddedTable::open(&dir.join("store.sqlite")).unwrap();
    let now = now_epoch_seconds();
    table
        .put(item("A", "old", json!({})).with_expiry(Some(now - 5)))
        .await
        .unwrap();
    table
        .put(item("A", "live", json!({})).with_expiry(Some(now + 500)))
        .await
        .unwrap();
    table.put(item("A", "forever", json!({}))).await.unwrap();
    assert_eq!(table.purge_expired().unwrap(), 1);
    let page = table.query(Query::new("A", "")).await.unwrap();
    let keys: Vec<_> = page.items.iter().map(|i| i.key.sk.as_str()).collect();
    assert_eq!(keys, ["forever", "live"]);
}
