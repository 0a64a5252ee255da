//! `crawl-status`: `GET /crawls/{id}` (status, counters and the finished pages, a page at
//! a time) and `DELETE /crawls/{id}` (cancel: no new page is fetched; in-flight ones finish).
//! A job is visible only to its own tenant; to anyone else it does not exist.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tributary::auth::scopes;
use tributary::crawl::engine::CrawlEngine;
use tributary::store::crawls::{CrawlJob, CrawlStoreError, CrawlUrl};
use tributary::web::{rfc3339, ApiError, ApiQuery, Authenticated};

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 200;

pub fn protected_routes(engine: Arc<CrawlEngine>) -> Router {
    Router::new()
        .route("/crawls/{id}", get(status).delete(cancel))
        .with_state(engine)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct ResultView {
    url: String,
    state: Value,
    depth: u32,
    reason: Option<String>,
    status_code: Option<u16>,
    final_url: Option<String>,
    title: Option<String>,
    description: Option<String>,
    language: Option<String>,
    document_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    markdown: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    markdown_truncated: bool,
}

impl From<CrawlUrl> for ResultView {
    fn from(url: CrawlUrl) -> Self {
        Self {
            state: json!(url.state),
            url: url.url,
            depth: url.depth,
            reason: url.reason,
            status_code: url.status_code,
            final_url: url.final_url,
            title: url.title,
            description: url.description,
            language: url.language,
            document_id: url.document_id,
            markdown: url.markdown,
            markdown_truncated: url.markdown_truncated,
        }
    }
}

fn job_view(job: &CrawlJob) -> Value {
    json!({
        "id": job.id,
        "kind": job.spec.kind,
        "status": job.status,
        "url": job.spec.seeds.first(),
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
        "finished_at": job.finished_at.map(rfc3339),
        "counters": job.counters,
        "pending": job.counters.pending(),
        "end_reason": job.end_reason,
    })
}

/// The caller's tenant's job, or 404 (never 403: ids of other tenants are not confirmed).
async fn owned_job(
    engine: &CrawlEngine,
    caller: &Authenticated,
    id: &str,
) -> Result<CrawlJob, ApiError> {
    match engine.jobs().get(id).await? {
        Some(job) if job.tenant_id == caller.0.tenant_id => Ok(job),
        _ => Err(CrawlStoreError::NotFound.into()),
    }
}

async fn status(
    State(engine): State<Arc<CrawlEngine>>,
    caller: Authenticated,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<Value>, ApiError> {
    caller.require_scope(scopes::CRAWLS_READ)?;
    let job = owned_job(&engine, &caller, &id).await?;
    let limit = params
        .limit
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let (results, next) = engine.jobs().results(&job.id, limit, params.cursor).await?;
    let mut body = job_view(&job);
    body["results"] = json!(results
        .into_iter()
        .map(ResultView::from)
        .collect::<Vec<_>>());
    body["next"] = json!(next);
    Ok(Json(body))
}

async fn cancel(
    State(engine): State<Arc<CrawlEngine>>,
    caller: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_scope(scopes::CRAWLS_WRITE)?;
    let job = owned_job(&engine, &caller, &id).await?;
    let job = engine.jobs().cancel(&job.id).await?;
    tracing::info!(crawl_id = %job.id, "crawl cancelled");
    Ok(Json(job_view(&job)))
}
