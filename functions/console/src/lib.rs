//! `console`: the admin web page, `GET /` and `GET /assets/{file}`, and the HTTP API's
//! OpenAPI description, `GET /openapi.json`.
//!
//! The page's sources in `console/` (repository root) are compiled into the binary as they
//! are: no JavaScript build step. Each asset is served under a name carrying a hash of its
//! content, so it can be cached for a year; `index.html` names the current hashes and is
//! never cached, so a deploy takes effect on the next load.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use tributary::web::ApiError;

pub mod openapi;

/// Scripts and styles only from this origin, no inline code, calls only to this API, never
/// framed. The OAuth buttons navigate (not a form post), so `form-action` can stay `'self'`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
pub const NOT_CACHED: &str = "no-store";

const INDEX_TEMPLATE: &str = include_str!("../../../console/index.html");
const SOURCES: [(&str, &str, &str); 3] = [
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../../console/app.css"),
    ),
    // Named by the page, so browsers do not ask for a /favicon.ico that is not there.
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../../console/favicon.svg"),
    ),
];
/// Hex characters of the SHA-256 kept in a hashed name: 48 bits tell deploys apart.
const HASH_CHARS: usize = 12;

pub struct Asset {
    /// `app.<hash>.js`
    pub hashed_name: String,
    pub content_type: &'static str,
    pub body: &'static str,
}

pub struct Console {
    pub index_html: String,
    pub assets: Vec<Asset>,
}

/// `app.js` → `app.<first 12 hex of sha256>.js`.
fn hashed_name(name: &str, body: &str) -> String {
    let digest = hex::encode(Sha256::digest(body.as_bytes()));
    let hash = &digest[..HASH_CHARS];
    match name.rsplit_once('.') {
        Some((stem, extension)) => format!("{stem}.{hash}.{extension}"),
        None => format!("{name}.{hash}"),
    }
}

impl Console {
    fn build() -> Self {
        let mut index_html = INDEX_TEMPLATE.to_owned();
        let assets = SOURCES
            .iter()
            .map(|(name, content_type, body)| {
                let hashed_name = hashed_name(name, body);
                index_html = index_html.replace(&format!("{{{{{name}}}}}"), &hashed_name);
                Asset {
                    hashed_name,
                    content_type,
                    body,
                }
            })
            .collect();
        Self { index_html, assets }
    }

    pub fn asset(&self, hashed_name: &str) -> Option<&Asset> {
        self.assets
            .iter()
            .find(|asset| asset.hashed_name == hashed_name)
    }
}

pub static CONSOLE: LazyLock<Console> = LazyLock::new(Console::build);

pub fn routes() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
        .route("/openapi.json", get(openapi::openapi_json))
}

fn page_headers(content_type: &'static str, cache: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let fixed: [(HeaderName, &'static str); 7] = [
        (CONTENT_TYPE, content_type),
        (CACHE_CONTROL, cache),
        (
            HeaderName::from_static("content-security-policy"),
            CONTENT_SECURITY_POLICY,
        ),
        (HeaderName::from_static("x-content-type-options"), "nosniff"),
        (HeaderName::from_static("referrer-policy"), "no-referrer"),
        (HeaderName::from_static("x-frame-options"), "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
}

async fn index() -> Response {
    (
        page_headers("text/html; charset=utf-8", NOT_CACHED),
        CONSOLE.index_html.clone(),
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    match CONSOLE.asset(&file) {
        Some(asset) => (page_headers(asset.content_type, IMMUTABLE), asset.body).into_response(),
        // An old hash after a deploy, or a guess: say so rather than serve other bytes.
        None => ApiError::not_found("no such console asset")
            .with_code("asset_not_found")
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_every_hashed_asset_and_no_placeholder_is_left() {
        let console = Console::build();
        for asset in &console.assets {
            assert!(
                console
                    .index_html
                    .contains(&format!("/assets/{}", asset.hashed_name)),
                "{}",
                asset.hashed_name
            );
        }
        assert!(!console.index_html.contains("{{"));
    }

    #[test]
    fn hashed_names_change_with_the_content() {
        assert_ne!(hashed_name("app.js", "a"), hashed_name("app.js", "b"));
        let name = hashed_name("app.js", "a");
        assert!(name.starts_with("app.") && name.ends_with(".js"));
        assert_eq!(name.len(), "app..js".len() + HASH_CHARS);
    }
}
