//! The DynamoDB backend. Non-key attributes are stored as top-level DynamoDB attributes
//! (via serde_dynamo) so items stay readable in the console and in exports.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ScalarAttributeType,
    TimeToLiveSpecification, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;

use super::{
    check_transaction, decode_cursor, encode_cursor, now_epoch_seconds, Attributes, Index, Item,
    Key, Page, Query, StoreError, Table, WriteOp, MAX_PAGE_SIZE,
};

type DynamoItem = HashMap<String, AttributeValue>;

const GSI1: &str = "gsi1";
const LIVE: &str = "attribute_not_exists(#expires_at) OR #expires_at > :now";
const ABSENT: &str = "attribute_not_exists(#pk) OR #expires_at <= :now";
const AT_VERSION: &str =
    "#version = :expected AND (attribute_not_exists(#expires_at) OR #expires_at > :now)";

#[derive(Clone)]
pub struct DynamoTable {
    client: Client,
    table_name: String,
}

impl DynamoTable {
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Self {
            client,
            table_name: table_name.into(),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table_name
    }
}

/// Creates a table shaped like the one in `template.yaml` (for tests and local emulators).
pub async fn create_table(client: &Client, table_name: &str) -> Result<(), StoreError> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
    };
    let gsi1 = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key("gsi1pk", KeyType::Hash).map_err(build_error)?)
        .key_schema(key("gsi1sk", KeyType::Range).map_err(build_error)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_error)?;
    client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk").map_err(build_error)?)
        .attribute_definitions(attribute("sk").map_err(build_error)?)
        .attribute_definitions(attribute("gsi1pk").map_err(build_error)?)
        .attribute_definitions(attribute("gsi1sk").map_err(build_error)?)
        .key_schema(key("pk", KeyType::Hash).map_err(build_error)?)
        .key_schema(key("sk", KeyType::Range).map_err(build_error)?)
        .global_secondary_indexes(gsi1)
        .send()
        .await
        .map_err(sdk_error)?;
    client
        .update_time_to_live()
        .table_name(table_name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expires_at")
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(())
}

fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn sdk_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Backend(DisplayErrorContext(&error).to_string())
}

fn string(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn number(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key_attributes(key: &Key) -> DynamoItem {
    HashMap::from([
        ("pk".into(), string(&key.pk)),
        ("sk".into(), string(&key.sk)),
    ])
}

fn to_dynamo(item: &Item, version: u64) -> Result<DynamoItem, StoreError> {
    let mut attributes: DynamoItem = serde_dynamo::to_item(&item.attributes)
        .map_err(|e| StoreError::Backend(format!("cannot encode item: {e}")))?;
    attributes.extend(key_attributes(&item.key));
    attributes.insert("version".into(), number(version));
    if let Some(expires_at) = item.expires_at {
        attributes.insert("expires_at".into(), number(expires_at));
    }
    if let Some(gsi1) = &item.gsi1 {
        attributes.insert("gsi1pk".into(), string(&gsi1.pk));
        attributes.insert("gsi1sk".into(), string(&gsi1.sk));
    }
    Ok(attributes)
}

fn take_string(attributes: &mut DynamoItem, name: &str) -> Option<String> {
    match attributes.remove(name) {
        Some(AttributeValue::S(value)) => Some(value),
        _ => None,
    }
}

fn take_number<T: std::str::FromStr>(attributes: &mut DynamoItem, name: &str) -> Option<T> {
    match attributes.remove(name) {
        Some(AttributeValue::N(value)) => value.parse().ok(),
        _ => None,
    }
}

fn from_dynamo(mut attributes: DynamoItem) -> Result<Item, StoreError> {
    let pk = take_string(&mut attributes, "pk").unwrap_or_default();
    let sk = take_string(&mut attributes, "sk").unwrap_or_default();
    let corrupt = |reason: String| StoreError::Corrupt {
        pk: pk.clone(),
        sk: sk.clone(),
        reason,
    };
    let version = take_number(&mut attributes, "version")
        .ok_or_else(|| corrupt("missing numeric `version`".into()))?;
    let expires_at = take_number(&mut attributes, "expires_at");
    let gsi1 = match (
        take_string(&mut attributes, "gsi1pk"),
        take_string(&mut attributes, "gsi1sk"),
    ) {
        (Some(pk), Some(sk)) => Some(Key::new(pk, sk)),
        _ => None,
    };
    let attributes: Attributes =
        serde_dynamo::from_item(attributes).map_err(|e| corrupt(e.to_string()))?;
    Ok(Item {
        key: Key::new(pk, sk),
        version,
        expires_at,
        gsi1,
        attributes,
    })
}

/// The condition of a write, as expression, names and values.
struct Condition {
    expression: &'static str,
    names: HashMap<String, String>,
    values: DynamoItem,
}

fn condition_for(op: &WriteOp, now: i64) -> Option<Condition> {
    let names = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(placeholder, name)| (placeholder.to_string(), name.to_string()))
            .collect()
    };
    match op {
        WriteOp::PutIfAbsent(_) => Some(Condition {
            expression: ABSENT,
            names: names(&[("#pk", "pk"), ("#expires_at", "expires_at")]),
            values: HashMap::from([(":now".into(), number(now))]),
        }),
        WriteOp::UpdateIfVersion { expected, .. } | WriteOp::DeleteIfVersion { expected, .. } => {
            Some(Condition {
                expression: AT_VERSION,
                names: names(&[("#version", "version"), ("#expires_at", "expires_at")]),
                values: HashMap::from([
                    (":expected".into(), number(expected)),
                    (":now".into(), number(now)),
                ]),
            })
        }
        WriteOp::Put(_) | WriteOp::Delete(_) => None,
    }
}

fn deleted_key(op: &WriteOp) -> Option<&Key> {
    match op {
        WriteOp::Delete(key) | WriteOp::DeleteIfVersion { key, .. } => Some(key),
        _ => None,
    }
}

fn written_item(op: &WriteOp) -> Option<Result<DynamoItem, StoreError>> {
    match op {
        WriteOp::Put(item) | WriteOp::PutIfAbsent(item) => Some(to_dynamo(item, item.version)),
        WriteOp::UpdateIfVersion { item, expected } => Some(to_dynamo(item, expected + 1)),
        WriteOp::Delete(_) | WriteOp::DeleteIfVersion { .. } => None,
    }
}

impl DynamoTable {
    async fn write_one(&self, op: WriteOp) -> Result<(), StoreError> {
        check_transaction(std::slice::from_ref(&op))?;
        let now = now_epoch_seconds();
        let condition = condition_for(&op, now);
        let result =
            match (deleted_key(&op), written_item(&op)) {
                (Some(key), _) => {
                    let mut request = self
                        .client
                        .delete_item()
                        .table_name(&self.table_name)
                        .set_key(Some(key_attributes(key)));
                    if let Some(condition) = condition {
                        request = request
                            .condition_expression(condition.expression)
                            .set_expression_attribute_names(Some(condition.names))
                            .set_expression_attribute_values(Some(condition.values));
                    }
                    request.send().await.map(|_| ()).map_err(|error| {
                        match error.as_service_error() {
                            Some(service) if service.is_conditional_check_failed_exception() => {
                                StoreError::ConditionFailed
                            }
                            _ => sdk_error(error),
                        }
                    })
                }
                (_, Some(item)) => {
                    let mut request = self
                        .client
                        .put_item()
                        .table_name(&self.table_name)
                        .set_item(Some(item?));
                    if let Some(condition) = condition {
                        request = request
                            .condition_expression(condition.expression)
                            .set_expression_attribute_names(Some(condition.names))
                            .set_expression_attribute_values(Some(condition.values));
                    }
                    request.send().await.map(|_| ()).map_err(|error| {
                        match error.as_service_error() {
                            Some(service) if service.is_conditional_check_failed_exception() => {
                                StoreError::ConditionFailed
                            }
                            _ => sdk_error(error),
                        }
                    })
                }
                (_, None) => Ok(()),
            };
        result
    }

    fn transact_item(&self, op: &WriteOp, now: i64) -> Result<TransactWriteItem, StoreError> {
        let condition = condition_for(op, now);
        let builder = TransactWriteItem::builder();
        let built = match (deleted_key(op), written_item(op)) {
            (Some(key), _) => {
                let mut delete = Delete::builder()
                    .table_name(&self.table_name)
                    .set_key(Some(key_attributes(key)));
                if let Some(condition) = condition {
                    delete = delete
                        .condition_expression(condition.expression)
                        .set_expression_attribute_names(Some(condition.names))
                        .set_expression_attribute_values(Some(condition.values));
                }
                builder.delete(delete.build().map_err(build_error)?)
            }
            (_, item) => {
                let mut put = Put::builder()
                    .table_name(&self.table_name)
                    .set_item(item.transpose()?);
                if let Some(condition) = condition {
                    put = put
                        .condition_expression(condition.expression)
                        .set_expression_attribute_names(Some(condition.names))
                        .set_expression_attribute_values(Some(condition.values));
                }
                builder.put(put.build().map_err(build_error)?)
            }
        };
        Ok(built.build())
    }

    async fn query_page(
        &self,
        query: &Query,
        limit: usize,
        start: Option<DynamoItem>,
    ) -> Result<(Vec<Item>, Option<DynamoItem>), StoreError> {
        let (pk_name, sk_name, index_name) = match query.index {
            Index::Primary => ("pk", "sk", None),
            Index::Gsi1 => ("gsi1pk", "gsi1sk", Some(GSI1)),
        };
        let mut names = HashMap::from([
            ("#p".to_string(), pk_name.to_string()),
            ("#expires_at".to_string(), "expires_at".to_string()),
        ]);
        let mut values = HashMap::from([
            (":p".to_string(), string(&query.pk)),
            (":now".to_string(), number(now_epoch_seconds())),
        ]);
        // DynamoDB rejects an empty string in begins_with, and it would match everything anyway.
        let key_condition = if query.sk_prefix.is_empty() {
            "#p = :p"
        } else {
            names.insert("#s".into(), sk_name.into());
            values.insert(":s".into(), string(&query.sk_prefix));
            "#p = :p AND begins_with(#s, :s)"
        };
        let output = self
            .client
            .query()
            .table_name(&self.table_name)
            .set_index_name(index_name.map(str::to_owned))
            .consistent_read(query.index == Index::Primary)
            .key_condition_expression(key_condition)
            .filter_expression(LIVE)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .limit(limit as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        let items = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_dynamo)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, output.last_evaluated_key))
    }
}

fn start_key(cursor: &str, index: Index) -> Result<DynamoItem, StoreError> {
    let names: &[&str] = match index {
        Index::Primary => &["pk", "sk"],
        Index::Gsi1 => &["pk", "sk", "gsi1pk", "gsi1sk"],
    };
    let parts = decode_cursor(cursor, names.len())?;
    Ok(names
        .iter()
        .zip(parts)
        .map(|(name, value)| (name.to_string(), AttributeValue::S(value)))
        .collect())
}

fn cursor_from(last_key: &DynamoItem, index: Index) -> Result<String, StoreError> {
    let names: &[&str] = match index {
        Index::Primary => &["pk", "sk"],
        Index::Gsi1 => &["pk", "sk", "gsi1pk", "gsi1sk"],
    };
    let parts = names
        .iter()
        .map(|name| match last_key.get(*name) {
            Some(AttributeValue::S(value)) => Ok(value.as_str()),
            _ => Err(StoreError::Backend(format!(
                "LastEvaluatedKey lacks string `{name}`"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(encode_cursor(&parts))
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(key_attributes(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        let item = output.item.map(from_dynamo).transpose()?;
        Ok(item.filter(|item| !item.is_expired(now_epoch_seconds())))
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.write_one(WriteOp::Put(item)).await
    }

    async fn put_if_absent(&self, item: Item) -> Result<(), StoreError> {
        self.write_one(WriteOp::PutIfAbsent(item)).await
    }

    async fn update_if_version(&self, item: Item, expected: u64) -> Result<(), StoreError> {
        self.write_one(WriteOp::UpdateIfVersion { item, expected })
            .await
    }

    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.write_one(WriteOp::Delete(key.clone())).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE_SIZE);
        let mut start = query
            .cursor
            .as_deref()
            .map(|cursor| start_key(cursor, query.index))
            .transpose()?;
        let mut items = Vec::new();
        // The filter on expiry runs after `Limit`, so a page can come back short: keep going.
        loop {
            let (mut page, last_key) = self.query_page(&query, limit - items.len(), start).await?;
            items.append(&mut page);
            match last_key {
                Some(last_key) if items.len() < limit => start = Some(last_key),
                Some(last_key) => {
                    return Ok(Page {
                        items,
                        next: Some(cursor_from(&last_key, query.index)?),
                    })
                }
                None => return Ok(Page { items, next: None }),
            }
        }
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        check_transaction(&ops)?;
        let now = now_epoch_seconds();
        let items = ops
            .iter()
            .map(|op| self.transact_item(op, now))
            .collect::<Result<Vec<_>, _>>()?;
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| {
                let condition_failed = error
                    .as_service_error()
                    .and_then(|service| match service {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(cancelled) => Some(cancelled),
                        _ => None,
                    })
                    .is_some_and(|cancelled| {
                        // A conflict with a concurrent transaction on the same item is,
                        // to an optimistic writer, the same news: re-read and retry.
                        cancelled.cancellation_reasons().iter().any(|reason| {
                            matches!(
                                reason.code(),
                                Some("ConditionalCheckFailed" | "TransactionConflict")
                            )
                        })
                    });
                if condition_failed {
                    StoreError::ConditionFailed
                } else {
                    sdk_error(error)
                }
            })
    }
}
