//! `crawl-start`: `POST /crawls` (follow links from a seed) and `POST /batch/scrape` (fetch
//! a list of URLs). Validates the request, records the job and enqueues its seeds; the
//! pages are fetched by `crawl-page`.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tributary::auth::scopes;
use tributary::crawl::engine::CrawlEngine;
use tributary::crawl::job::{BatchScrapeRequest, CrawlRequest, CrawlSpec};
use tributary::sinks::SinkRequest;
use tributary::web::{ApiError, ApiJson, Authenticated};

/// A batch of 1000 URLs does not fit the default 16 KiB body limit.
const MAX_BATCH_BODY_BYTES: usize = 1024 * 1024;

pub fn protected_routes(engine: Arc<CrawlEngine>) -> Router {
    Router::new()
        .route("/crawls", post(start_crawl))
        .route(
            "/batch/scrape",
            post(start_batch).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)),
        )
        .with_state(engine)
}

async fn start_crawl(
    State(engine): State<Arc<CrawlEngine>>,
    caller: Authenticated,
    ApiJson(request): ApiJson<CrawlRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_scope(scopes::CRAWLS_WRITE)?;
    let spec = request.validate(engine.fetcher().policy(), engine.sinks())?;
    start(&engine, &caller, spec).await
}

async fn start_batch(
    State(engine): State<Arc<CrawlEngine>>,
    caller: Authenticated,
    ApiJson(request): ApiJson<BatchScrapeRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_scope(scopes::CRAWLS_WRITE)?;
    let spec = request.validate(engine.fetcher().policy(), engine.sinks())?;
    start(&engine, &caller, spec).await
}

async fn start(
    engine: &CrawlEngine,
    caller: &Authenticated,
    spec: CrawlSpec,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let job = engine.start(&caller.0, spec).await?;
    let body = json!({
        "id": job.id,
        "status": job.status,
        "status_url": format!("/crawls/{}", job.id),
    });
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// The event EventBridge Scheduler sends `crawl-schedule`: a stored crawl and its owner.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledCrawl {
    pub user_id: String,
    pub tenant_id: String,
    pub crawl: CrawlRequest,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("the stored crawl is invalid: {0}")]
    Spec(#[from] tributary::crawl::job::SpecError),
    #[error(transparent)]
    Engine(#[from] tributary::crawl::engine::EngineError),
    /// A schedule's input sits in plain text in the template and EventBridge: a sink
    /// credential there would not be a secret. The operator pins the URL instead.
    #[error(
        "a scheduled crawl's sink must not carry its credential (it would be stored in plain \
         text in the schedule); pin the sink URL for the operator's credential instead"
    )]
    PlaintextSinkCredential,
}

/// Starts the stored crawl as its owner (a new job each time; documents keep their ids,
/// so the sink sees updates, not duplicates).
pub async fn start_scheduled(
    engine: &CrawlEngine,
    scheduled: ScheduledCrawl,
) -> Result<tributary::store::crawls::CrawlJob, ScheduleError> {
    if scheduled
        .crawl
        .sink
        .as_ref()
        .is_some_and(SinkRequest::has_credential)
    {
        return Err(ScheduleError::PlaintextSinkCredential);
    }
    let spec = scheduled
        .crawl
        .validate(engine.fetcher().policy(), engine.sinks())?;
    let owner = tributary::auth::Principal {
        user_id: scheduled.user_id,
        tenant_id: scheduled.tenant_id,
        scopes: vec![scopes::CRAWLS_WRITE.into()],
        token_kind: tributary::auth::TokenKind::Session,
        token_id: None,
    };
    Ok(engine.start(&owner, spec).await?)
}
