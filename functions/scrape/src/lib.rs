//! `scrape`: `POST /scrape` fetches one page synchronously (SSRF guard on, redirects
//! checked hop by hop) and answers with its markdown, HTML and links as asked.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tributary::auth::scopes;
use tributary::crawl::engine::CrawlEngine;
use tributary::crawl::job::checked_url;
use tributary::web::{ApiError, ApiJson, Authenticated};

pub fn protected_routes(engine: Arc<CrawlEngine>) -> Router {
    Router::new()
        .route("/scrape", post(scrape))
        .with_state(engine)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Format {
    Markdown,
    Html,
    Links,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScrapeRequest {
    url: String,
    formats: Option<Vec<Format>>,
    only_main_content: Option<bool>,
}

async fn scrape(
    State(engine): State<Arc<CrawlEngine>>,
    caller: Authenticated,
    ApiJson(request): ApiJson<ScrapeRequest>,
) -> Result<Json<Value>, ApiError> {
    caller.require_scope(scopes::CRAWLS_WRITE)?;
    let formats = request.formats.unwrap_or_else(|| vec![Format::Markdown]);
    if formats.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_formats",
            "give at least one of: markdown, html, links",
        ));
    }
    let url = checked_url(&request.url, engine.fetcher().policy())?;
    let scraped = engine
        .scrape(&url, request.only_main_content.unwrap_or(true))
        .await?;
    let page = scraped.page;
    let mut body = json!({
        "url": url.as_str(),
        "metadata": {
            "title": page.metadata.title,
            "description": page.metadata.description,
            "language": page.metadata.language,
            "canonical_url": page.metadata.canonical_url,
            "status_code": scraped.fetched.status,
            "final_url": scraped.fetched.final_url.as_str(),
        },
    });
    if formats.contains(&Format::Markdown) {
        body["markdown"] = json!(page.markdown);
    }
    if formats.contains(&Format::Html) {
        body["html"] = json!(scraped.html);
    }
    if formats.contains(&Format::Links) {
        body["links"] = json!(page
            .links
            .iter()
            .map(|link| link.as_str())
            .collect::<Vec<_>>());
    }
    Ok(Json(body))
}
