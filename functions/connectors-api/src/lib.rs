//! `connectors-api`: create (validates the configuration, tests the connection, seals the
//! credentials), list, get, update and delete a workspace's connectors, trigger a sync and
//! list its runs. Credentials and webhook secrets are write-only: never returned.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tributary::auth::scopes;
use tributary::connectors::{ConnectorError, Credentials, Source};
use tributary::sinks::{SinkRequest, SinkSecret};
use tributary::store::connectors::{ConnectorRecord, SourceKind, WebhookSettings};
use tributary::store::{now_epoch_seconds, StoreError};
use tributary::sync::{SyncEngine, SyncError, SyncMessage};
use tributary::web::{display_name, rfc3339, ApiError, ApiJson, ApiQuery, Authenticated};
use tributary::webhooks::WebhookScheme;

const MIN_WEBHOOK_SECRET_CHARS: usize = 16;
const MAX_SCHEDULE_MINUTES: u32 = 7 * 24 * 60;

pub fn protected_routes(engine: Arc<SyncEngine>) -> Router {
    Router::new()
        .route("/connectors", post(create).get(list))
        .route("/connectors/{id}", get(read).patch(update).delete(remove))
        .route("/connectors/test", post(test_new))
        .route("/connectors/{id}/test", post(test_update))
        .route("/connectors/{id}/sync", post(trigger))
        .route("/connectors/{id}/runs", get(runs))
        .route("/sources", get(sources))
        .with_state(engine)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    pub scheme: WebhookScheme,
    pub secret: String,
}

/// `POST /connectors` (and `tributary-local connectors create --file`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub name: String,
    pub source: SourceKind,
    pub config: Value,
    pub credentials: Credentials,
    pub sink: SinkRequest,
    pub schedule_minutes: Option<u32>,
    pub webhook: Option<WebhookRequest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRequest {
    name: Option<String>,
    config: Option<Value>,
    credentials: Option<Credentials>,
    sink: Option<SinkRequest>,
    /// `null` clears the schedule; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    schedule_minutes: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    webhook: Option<Option<WebhookRequest>>,
    /// Set by `POST /connectors/{id}/test`: test the connection even if nothing in it changed.
    #[serde(skip)]
    test_connection: bool,
}

impl UpdateRequest {
    fn with_reconnect(mut self) -> Self {
        self.test_connection = true;
        self
    }
}

/// Distinguishes an explicit `null` (Some(None)) from an absent field (None).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// A connector as the API shows it: never its credentials or webhook secret.
pub fn view(record: &ConnectorRecord) -> Value {
    json!({
        "id": record.id,
        "name": record.name,
        "source": record.source,
        "config": record.config,
        "sink": record.sink,
        "schedule_minutes": record.schedule_minutes,
        "webhook": record.webhook.as_ref().map(|webhook| json!({
            "scheme": webhook.scheme,
            "url": format!("/webhooks/{}/{}", record.source.as_str(), record.id),
        })),
        "created_at": rfc3339(record.created_at),
        "updated_at": rfc3339(record.updated_at),
        "last_scheduled_at": record.last_scheduled_at.map(rfc3339),
    })
}

fn connector_error(error: ConnectorError) -> ApiError {
    let message = error.to_string();
    match error {
        ConnectorError::Config(_) => ApiError::bad_request("invalid_config", message),
        ConnectorError::Unauthorized(_) => ApiError::bad_request("invalid_credentials", message),
        ConnectorError::Unavailable(_)
        | ConnectorError::RateLimited { .. }
        | ConnectorError::Protocol(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "source_unavailable", message)
        }
        ConnectorError::Checkpoint(_) => ApiError::internal(message),
    }
}

fn sync_error(error: SyncError) -> ApiError {
    match error {
        SyncError::Store(error) => error.into(),
        SyncError::Connector(error) => connector_error(error),
        SyncError::Forbidden(reason) => ApiError::bad_request("url_not_allowed", reason),
        other => ApiError::internal(other),
    }
}

/// The source's configuration, parsed and validated (no network).
fn checked_config(source: SourceKind, config: Value) -> Result<Value, ApiError> {
    source.source().validate(config).map_err(connector_error)
}

/// Refuses credentials the source does not take (their kind, a connection's provider).
fn checked_credentials(source: &Source, credentials: &Credentials) -> Result<(), ApiError> {
    source
        .check_credentials(credentials)
        .map_err(|error| ApiError::bad_request(error.code(), error.to_string()))
}

/// The origin (scheme, host, port) of the source's `base_url`, which the stored credentials
/// belong to.
fn source_origin(config: &Value) -> Option<url::Origin> {
    let raw = config.get("base_url")?.as_str()?;
    Some(url::Url::parse(raw).ok()?.origin())
}

fn checked_schedule(minutes: Option<u32>) -> Result<Option<u32>, ApiError> {
    match minutes {
        Some(m) if !(1..=MAX_SCHEDULE_MINUTES).contains(&m) => Err(ApiError::bad_request(
            "invalid_schedule",
            format!("schedule_minutes must be between 1 and {MAX_SCHEDULE_MINUTES}"),
        )),
        other => Ok(other),
    }
}

fn sealed_webhook(
    engine: &SyncEngine,
    id: &str,
    webhook: Option<WebhookRequest>,
) -> Result<Option<WebhookSettings>, ApiError> {
    let Some(webhook) = webhook else {
        return Ok(None);
    };
    if webhook.secret.chars().count() < MIN_WEBHOOK_SECRET_CHARS {
        return Err(ApiError::bad_request(
            "invalid_webhook",
            format!("the webhook secret needs at least {MIN_WEBHOOK_SECRET_CHARS} characters"),
        ));
    }
    let secret_sealed = engine
        .vault()
        .seal(webhook.secret.as_bytes(), &format!("webhook:{id}"))
        .map_err(ApiError::internal)?;
    Ok(Some(WebhookSettings {
        scheme: webhook.scheme,
        secret_sealed,
    }))
}

fn seal_credentials(
    engine: &SyncEngine,
    id: &str,
    credentials: &Credentials,
) -> Result<String, ApiError> {
    let plaintext = serde_json::to_vec(credentials).map_err(ApiError::internal)?;
    engine
        .vault()
        .seal(&plaintext, id)
        .map_err(ApiError::internal)
}

/// Seals the sink's own credential for this connector.
fn seal_sink_secret(
    engine: &SyncEngine,
    record: &ConnectorRecord,
    secret: &SinkSecret,
) -> Result<String, ApiError> {
    tributary::sinks::seal_secret(engine.vault(), secret, &record.sink_owner())
        .map_err(ApiError::internal)
}

fn sink_credentials_required(message: &str) -> ApiError {
    ApiError::bad_request("sink_credentials_required", message)
}

/// Applies a PATCHed sink: a new credential is sealed; without one, the stored credential
/// is kept only while it still goes to the same place (never sent to a new host).
fn update_sink(
    engine: &SyncEngine,
    record: &mut ConnectorRecord,
    request: SinkRequest,
) -> Result<(), ApiError> {
    let (sink, secret) = request.into_parts();
    let same_target = sink.credential_target() == record.sink.credential_target();
    record.sink = sink;
    match secret {
        Some(secret) => record.sink_secret_sealed = Some(seal_sink_secret(engine, record, &secret)?),
        None if record.sink_secret_sealed.is_some() && !same_target => {
            return Err(sink_credentials_required(
                "the sink now points at another host: give its credential (\"api_key\" or \"secret\") again",
            ))
        }
        None if record.sink.credential_target().is_none() => record.sink_secret_sealed = None,
        None => {}
    }
    Ok(())
}

/// Validates the sink and runs the source's connection test with these credentials.
async fn check_connection(
    engine: &SyncEngine,
    record: &ConnectorRecord,
    credentials: Credentials,
) -> Result<(), ApiError> {
    engine
        .sinks()
        .build_stored(
            &record.sink,
            record.sink_secret_sealed.as_deref(),
            &record.sink_owner(),
        )
        .map_err(|error| ApiError::bad_request(error.code(), error.to_string()))?;
    engine
        .check_endpoints(record)
        .map_err(|error| ApiError::bad_request("url_not_allowed", error.to_string()))?;
    let connector = engine
        .build_connector(record, credentials)
        .await
        .map_err(sync_error)?;
    connector.test_connection().await.map_err(connector_error)
}

async fn create(
    State(engine): State<Arc<SyncEngine>>,
    caller: Authenticated,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let principal = caller.require_scope(scopes::CONNECTORS_WRITE)?;
    let record = create_connector(&engine, &principal.tenant_id, request).await?;
    Ok((StatusCode::CREATED, Json(view(&record))))
}

/// Validates, tests the connection, seals the secrets and stores a new connector; nothing
/// is stored when any step fails.
pub async fn create_connector(
    engine: &SyncEngine,
    workspace_id: &str,
    request: CreateRequest,
) -> Result<ConnectorRecord, ApiError> {
    let record = prepared_connector(engine, workspace_id, request).await?;
    engine.connectors.create(&record).await?;
    tracing::info!(connector_id = %record.id, source = record.source.as_str(), "connector created");
    Ok(record)
}

/// The connector a create request describes, validated, with its connection tested and
/// its secrets sealed, not stored.
async fn prepared_connector(
    engine: &SyncEngine,
    workspace_id: &str,
    request: CreateRequest,
) -> Result<ConnectorRecord, ApiError> {
    checked_credentials(&request.source.source(), &request.credentials)?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_epoch_seconds();
    let (sink, sink_secret) = request.sink.into_parts();
    let mut record = ConnectorRecord {
        name: display_name(&request.name)?,
        config: checked_config(request.source, request.config)?,
        schedule_minutes: checked_schedule(request.schedule_minutes)?,
        webhook: sealed_webhook(engine, &id, request.webhook)?,
        credentials_sealed: String::new(),
        id: id.clone(),
        workspace_id: workspace_id.to_owned(),
        source: request.source,
        sink,
        sink_secret_sealed: None,
        created_at: now,
        updated_at: now,
        last_scheduled_at: None,
        item_version: 1,
    };
    if let Some(secret) = &sink_secret {
        record.sink_secret_sealed = Some(seal_sink_secret(engine, &record, secret)?);
    }
    check_connection(engine, &record, request.credentials.clone()).await?;
    record.credentials_sealed = seal_credentials(engine, &id, &request.credentials)?;
    Ok(record)
}

/// `POST /connectors/test`: the create body checked and its connection tested, nothing
/// stored (a console's "Test connection" before saving).
async fn test_new(
    State(engine): State<Arc<SyncEngine>>,
    caller: Authenticated,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<Json<Value>, ApiError> {
    let principal = caller.require_scope(scopes::CONNECTORS_WRITE)?;
    let record = prepared_connector(&engine, &principal.tenant_id, request).await?;
    Ok(Json(connection_works(&record)))
}

fn connection_works(record: &ConnectorRecord) -> Value {
    json!({
        "ok": true,
        "source": record.source,
        "message": format!("{} answered: the connection works", record.source.source().title),
    })
}

async fn owned(
    engine: &SyncEngine,
    caller: &Authenticated,
    id: &str,
) -> Result<ConnectorRecord, ApiError> {
    engine
        .connectors
        .get(&caller.0.tenant_id, id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "connector_not_found",
                "no such connector",
            )
        })
}

async fn list(
    State(engine): State<Arc<SyncEngine>>,
    caller: Authenticated,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let principal = caller.require_scope(scopes::CONNECTORS_READ)?;
    let limit = params.limit.unwrap_or(50).clamp(1, 100);
    let (records, next) = engine
        .connectors
        .list(&principal.tenant_id, limit, params.cursor)
        .await?;
    Ok(Json(json!({
        "items": records.iter().map(view).collect::<Vec<_>>(),
        "next": next,
    })))
}

async fn read(
    State(engine): State<Arc<SyncEngine>>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_scope(scopes::CONNECTORS_READ)?;
    Ok(Json(view(&owned(&engine, &caller, &id).await?)))
}

async fn update(
    State(engine): State<Arc<SyncEngine>>,
    caller: Authenticated,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.require_scope(scopes::CONNECTORS_WRITE)?;
    let record = owned(&engine, &caller, &id).await?;
    let (mut record, config_changed) = updated_record(&engine, record, request).await?;
    record.updated_at = now_epoch_seconds();
    engine.connectors.update(&record).await.map_err(conflict)?;
    record.item_version += 1;
    if config_changed {
        // A wider scope (another project or space) must be read from the start.
        engine.connectors.reset_checkpoint(&id).await?;
    }
    Ok(Json(view(&record)))
}

/// `POST /connectors/{id}/test`: a `PATCH` body applied to the stored connector and its
/// connection tested, nothing stored.
async fn test_update(
    State(engine): State<Arc<SyncEngine>>,
    caller: Authenticated,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.require_scope(scopes::CONNECTORS_WRITE)?;
    let record = owned(&engine, &caller, &id).await?;
    let (record, _) = updated_record(&engine, record, request.with_reconnect()).await?;
    Ok(Json(connection_works(&record)))
}

/// The stored connector with a `PATCH` applied and, when config, credentials or sink
/// change, its connection tested; and whether the config changed.
async fn updated_record(
    engine: &SyncEngine,
    mut record: ConnectorRecord,
    request: UpdateRequest,
) -> Result<(ConnectorRecord, bool), ApiError> {
    let id = record.id.clone();
    if let Some(name) = request.name {
        record.name = display_name(&name)?;
    }
    if let Some(minutes) = request.schedule_minutes {
        record.schedule_minutes = checked_schedule(minutes)?;
    }
    if let Some(webhook) = request.webhook {
        record.webhook = sealed_webhook(engine, &id, webhook)?;
    }
    let reconnect = request.test_connection
        || request.config.is_some()
        || request.credentials.is_some()
        || request.sink.is_some();
    let config_changed = request.config.is_some();
    if let Some(config) = request.config {
        let config = checked_config(record.source, config)?;
        if request.credentials.is_none() && source_origin(&config) != source_origin(&record.config)
        {
            // The sealed credentials were given for the old host: never send them elsewhere.
            return Err(ApiError::bad_request(
                "credentials_required",
                "changing base_url to another origin (scheme, host or port) needs the credentials in the same request",
            ));
        }
        record.config = config;
    }
    if let Some(sink) = request.sink {
        update_sink(engine, &mut record, sink)?;
    }
    if reconnect {
        let credentials = match request.credentials {
            Some(credentials) => {
                checked_credentials(&record.source.source(), &credentials)?;
                record.credentials_sealed = seal_credentials(engine, &id, &credentials)?;
                credentials
            }
            None => {
                let plaintext = engine
                    .vault()
                    .open(&record.credentials_sealed, &id)
                    .map_err(ApiError::internal)?;
                serde_json::from_slice(&plaintext).map_err(ApiError::internal)?
            }
        };
        check_connection(engine, &record, credentials).await?;
    }
    Ok((record, config_changed))
}

/// `GET /sources`: every source, its configuration's JSON Schema and the credentials it takes.
async fn sources(caller: Authenticated) -> Result<Json<Value>, ApiError> {
    caller.require_scope(scopes::CONNECTORS_READ)?;
    let items: Vec<Value> = tributary::connectors::registry::all()
        .iter()
        .map(|source| source.describe())
        .collect();
    Ok(Json(json!({ "items": items })))
}

fn conflict(error: StoreError) -> ApiError {
    match error {
        StoreError::ConditionFailed => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "the connector changed concurrently; read it again",
        ),
        other => other.into(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct DeleteParams {
    /// Also remove the connector's documents from its sink.
    #[serde(default)]
    purge: bool,
}

/// `DELETE /connectors/{id}[?purge=true]`: the connector and all its sync state; with
/// `purge`, its documents in the sink first.
async fn remove(
    State(engine): State<Arc<SyncEngine>>,
    caller: Authenticated,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<DeleteParams>,
) -> Result<StatusCode, ApiError> {
    caller.require_scope(scopes::CONNECTORS_WRITE)?;
    let record = owned(&engine, &caller, &id).await?;
    engine
        .delete_connector(&record, params.purge)
        .await
        .map_err(|error| match error {
            SyncError::Store(error) => conflict(error),
            SyncError::Sink(error) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "sink_unavailable",
                format!("the connector's documents could not be removed: {error}"),
            ),
            other => sync_error(other),
        })?;
    tracing::info!(connector_id = %id, purge = params.purge, "connector deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn trigger(
    State(engine): State<Arc<SyncEngine>>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_scope(scopes::CONNECTORS_WRITE)?;
    let record = owned(&engine, &caller, &id).await?;
    engine
        .queues
        .enqueue(record.source, &SyncMessage::new(&id, "manual"))
        .await
        .map_err(sync_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": id, "queued": true})),
    ))
}

async fn runs(
    State(engine): State<Arc<SyncEngine>>,
    caller: Authenticated,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Value>, ApiError> {
    caller.require_scope(scopes::CONNECTORS_READ)?;
    let record = owned(&engine, &caller, &id).await?;
    let limit = params.limit.unwrap_or(20).clamp(1, 100);
    let (runs, next) = engine
        .connectors
        .runs(&record.id, limit, params.cursor)
        .await?;
    let items: Vec<Value> = runs
        .iter()
        .map(|run| {
            json!({
                "id": run.id,
                "trigger": run.trigger,
                "status": run.status,
                "counts": run.counts,
                "errors": run.errors,
                "invocations": run.invocations,
                "pruned": run.pruned,
                "started_at": rfc3339(run.started_at),
                "finished_at": run.finished_at.map(rfc3339),
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "next": next})))
}

#[cfg(test)]
mod tests {
    use tributary::connectors::registry::{ConnectionProvider, CredentialKind};

    use super::*;

    fn connection(provider: &str) -> Credentials {
        Credentials::Connection {
            provider: provider.into(),
        }
    }

    #[test]
    fn a_credentials_kind_the_source_does_not_take_is_a_400_naming_the_accepted_kinds() {
        let source = SourceKind::Jira
            .source()
            .accepting(&[CredentialKind::Basic, CredentialKind::Bearer]);
        let error = checked_credentials(&source, &connection("google")).err();
        let error = error.expect("refused");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.code, "credentials_kind_not_accepted");
        assert!(error.message.contains("basic, bearer"), "{}", error.message);
    }

    #[test]
    fn a_connection_to_another_provider_than_the_sources_is_a_400() {
        let source = SourceKind::Jira
            .source()
            .accepting(&[CredentialKind::Connection])
            .with_provider(ConnectionProvider::Only("google"));
        assert!(checked_credentials(&source, &connection("google")).is_ok());
        let error = checked_credentials(&source, &connection("dropbox")).err();
        let error = error.expect("refused");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.code, "connection_provider_not_accepted");
        assert!(error.message.contains("google"), "{}", error.message);
    }

    #[test]
    fn a_service_account_key_that_is_not_one_is_a_400_invalid_credentials() {
        let source = SourceKind::Jira
            .source()
            .accepting(&[CredentialKind::ServiceAccount]);
        let key = |email: &str, pem: &str| -> Credentials {
            serde_json::from_value(json!({
                "type": "service_account",
                "key": {"type": "service_account", "client_email": email, "private_key": pem,
                        "project_id": "p"},
                "subject": "admin@example.com"
            }))
            .expect("a key file parses")
        };
        let pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(checked_credentials(&source, &key("sa@p.iam.gserviceaccount.com", pem)).is_ok());
        for bad in [
            key("not-an-email", pem),
            key("sa@p.iam.gserviceaccount.com", "secret"),
        ] {
            let error = checked_credentials(&source, &bad).expect_err("refused");
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert_eq!(error.code, "invalid_credentials");
            assert!(!error.message.contains("AAAA"), "{}", error.message);
        }
        let refused = checked_credentials(&source, &connection("google")).err();
        assert_eq!(
            refused.map(|e| e.code),
            Some("credentials_kind_not_accepted")
        );
    }

    #[test]
    fn client_credentials_need_exactly_one_of_a_secret_and_a_certificate() {
        let source = SourceKind::Jira
            .source()
            .accepting(&[CredentialKind::ClientCredentials]);
        let parse = |body: serde_json::Value| -> Credentials {
            serde_json::from_value(body).expect("parses")
        };
        let cert = json!({"certificate": "-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n",
                          "private_key": "-----BEGIN PRIVATE KEY-----\nS3CR\n-----END PRIVATE KEY-----\n"});
        let secret = parse(
            json!({"type": "client_credentials", "client_id": "app", "client_secret": "s3cr3t-v"}),
        );
        assert!(checked_credentials(&source, &secret).is_ok());
        let certificate =
            parse(json!({"type": "client_credentials", "client_id": "app", "certificate": cert}));
        assert!(checked_credentials(&source, &certificate).is_ok());
        for bad in [
            json!({"type": "client_credentials", "client_id": "app"}),
            json!({"type": "client_credentials", "client_id": "", "client_secret": "s3cr3t-v"}),
            json!({"type": "client_credentials", "client_id": "app", "client_secret": "s3cr3t-v", "certificate": cert}),
            json!({"type": "client_credentials", "client_id": "app",
                   "certificate": {"certificate": "not a pem", "private_key": "-----BEGIN PRIVATE KEY-----\nS3CR"}}),
        ] {
            let error = checked_credentials(&source, &parse(bad)).expect_err("refused");
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert_eq!(error.code, "invalid_credentials");
            assert!(
                !error.message.contains("s3cr3t") && !error.message.contains("S3CR"),
                "{}",
                error.message
            );
        }
    }
}
