//! `GET /openapi.json`: an OpenAPI 3.1 description of the whole HTTP API.
//!
//! Built from [`OPERATIONS`], the one table of every route the functions serve; the e2e suite
//! probes the assembled router (every method of every path) and checks that it serves
//! exactly the operations listed here, so the table cannot drift from the code.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// Who may call an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No token: sign-in, OAuth redirects, provider webhooks (signed), the console itself.
    Public,
    /// A session or API token carrying this scope.
    Scope(&'static str),
    /// Any valid session or API token.
    Token,
}

/// One method on one path.
#[derive(Clone, Copy, Debug)]
pub struct Operation {
    pub method: &'static str,
    /// As the router spells it, `{name}` for a path parameter.
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// The JSON request body's required fields, when the operation takes one.
    pub body: Option<&'static [&'static str]>,
    /// What a success returns.
    pub success: Success,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Success {
    Json(u16),
    Html,
    Asset,
    Redirect(u16),
    Empty,
}

const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    access: Access,
    success: Success,
) -> Operation {
    Operation {
        method,
        path,
        tag,
        summary,
        access,
        body: None,
        success,
    }
}

const fn with_body(operation: Operation, required: &'static [&'static str]) -> Operation {
    Operation {
        body: Some(required),
        ..operation
    }
}

use Access::{Public, Scope, Token};
use Success::{Asset, Empty, Html, Json, Redirect};

/// Every route of the HTTP API, in the order the README introduces them.
pub const OPERATIONS: &[Operation] = &[
    op(
        "get",
        "/",
        "console",
        "The admin console page",
        Public,
        Html,
    ),
    op(
        "get",
        "/assets/{file}",
        "console",
        "A console asset by its hashed name",
        Public,
        Asset,
    ),
    op(
        "get",
        "/openapi.json",
        "console",
        "This description",
        Public,
        Json(200),
    ),
    with_body(
        op(
            "post",
            "/auth/register",
            "accounts",
            "Create an account with email and password",
            Public,
            Json(201),
        ),
        &["email", "password"],
    ),
    with_body(
        op(
            "post",
            "/auth/login",
            "accounts",
            "Sign in with email and password: a session token",
            Public,
            Json(200),
        ),
        &["email", "password"],
    ),
    op(
        "get",
        "/auth/verify-email",
        "accounts",
        "The page an email-verification link opens",
        Public,
        Html,
    ),
    with_body(
        op(
            "post",
            "/auth/verify-email",
            "accounts",
            "Confirm an email address with the emailed token",
            Public,
            Json(200),
        ),
        &["token"],
    ),
    op(
        "post",
        "/auth/verify-email/request",
        "accounts",
        "Send a verification email",
        Token,
        Json(202),
    ),
    op(
        "post",
        "/auth/logout",
        "accounts",
        "Revoke the calling session",
        Token,
        Empty,
    ),
    op(
        "get",
        "/me",
        "accounts",
        "The signed-in user and the token's scopes",
        Scope("profile:read"),
        Json(200),
    ),
    op(
        "get",
        "/auth/providers",
        "sign-in",
        "The configured OAuth/OIDC sign-in providers (no secrets)",
        Public,
        Json(200),
    ),
    op(
        "get",
        "/auth/oauth/{provider}/login",
        "sign-in",
        "Start signing in with a provider (PKCE, state, nonce)",
        Public,
        Redirect(302),
    ),
    op(
        "get",
        "/auth/oauth/{provider}/callback",
        "sign-in",
        "The provider's redirect back: a one-time session code",
        Public,
        Redirect(303),
    ),
    with_body(
        op(
            "post",
            "/auth/session",
            "sign-in",
            "Exchange the one-time code for a session token",
            Public,
            Json(200),
        ),
        &["code"],
    ),
    with_body(
        op(
            "post",
            "/api-tokens",
            "api-tokens",
            "Create an API token (shown once)",
            Scope("tokens:write"),
            Json(201),
        ),
        &["name"],
    ),
    op(
        "get",
        "/api-tokens",
        "api-tokens",
        "List the caller's API tokens",
        Scope("tokens:read"),
        Json(200),
    ),
    op(
        "delete",
        "/api-tokens/{id}",
        "api-tokens",
        "Revoke an API token",
        Scope("tokens:write"),
        Empty,
    ),
    with_body(
        op(
            "post",
            "/scrape",
            "crawl",
            "Fetch one page as markdown and metadata",
            Scope("crawls:write"),
            Json(200),
        ),
        &["url"],
    ),
    with_body(
        op(
            "post",
            "/crawls",
            "crawl",
            "Start a crawl of a site",
            Scope("crawls:write"),
            Json(202),
        ),
        &["url"],
    ),
    with_body(
        op(
            "post",
            "/batch/scrape",
            "crawl",
            "Start a batch scrape of a list of URLs",
            Scope("crawls:write"),
            Json(202),
        ),
        &["urls"],
    ),
    op(
        "get",
        "/crawls/{id}",
        "crawl",
        "A crawl's status, counters and results (paged)",
        Scope("crawls:read"),
        Json(200),
    ),
    op(
        "delete",
        "/crawls/{id}",
        "crawl",
        "Cancel a crawl",
        Scope("crawls:write"),
        Json(200),
    ),
    op(
        "get",
        "/sources",
        "connectors",
        "The sources, each with its config and credentials JSON Schemas",
        Scope("connectors:read"),
        Json(200),
    ),
    with_body(
        op(
            "post",
            "/connectors",
            "connectors",
            "Create a connector",
            Scope("connectors:write"),
            Json(201),
        ),
        &["source", "name", "config", "credentials", "sink"],
    ),
    op(
        "get",
        "/connectors",
        "connectors",
        "List connectors with their last run",
        Scope("connectors:read"),
        Json(200),
    ),
    op(
        "get",
        "/connectors/{id}",
        "connectors",
        "A connector",
        Scope("connectors:read"),
        Json(200),
    ),
    with_body(
        op(
            "patch",
            "/connectors/{id}",
            "connectors",
            "Change a connector (config, credentials, sink, schedule)",
            Scope("connectors:write"),
            Json(200),
        ),
        &[],
    ),
    op(
        "delete",
        "/connectors/{id}",
        "connectors",
        "Delete a connector and its checkpoint",
        Scope("connectors:write"),
        Empty,
    ),
    with_body(
        op(
            "post",
            "/connectors/test",
            "connectors",
            "Test a new connector's connection; stores nothing",
            Scope("connectors:write"),
            Json(200),
        ),
        &["source", "config", "credentials"],
    ),
    with_body(
        op(
            "post",
            "/connectors/{id}/test",
            "connectors",
            "Test a connector with changes applied; stores nothing",
            Scope("connectors:write"),
            Json(200),
        ),
        &[],
    ),
    op(
        "post",
        "/connectors/{id}/sync",
        "connectors",
        "Queue a sync now",
        Scope("connectors:write"),
        Json(202),
    ),
    op(
        "get",
        "/connectors/{id}/runs",
        "connectors",
        "A connector's run history with per-document failures",
        Scope("connectors:read"),
        Json(200),
    ),
    op(
        "post",
        "/webhooks/{source}/{connector_id}",
        "connectors",
        "A provider's change notification (signed); queues a sync",
        Public,
        Json(202),
    ),
    op(
        "get",
        "/integrations",
        "connections",
        "The workspace's provider connections and the providers configured",
        Scope("connectors:read"),
        Json(200),
    ),
    op(
        "get",
        "/integrations/{provider}/login",
        "connections",
        "Start connecting a provider by OAuth",
        Scope("connectors:write"),
        Redirect(302),
    ),
    op(
        "get",
        "/integrations/{provider}/callback",
        "connections",
        "The provider's redirect back; stores the sealed tokens",
        Public,
        Redirect(303),
    ),
    op(
        "delete",
        "/integrations/{provider}",
        "connections",
        "Disconnect a provider",
        Scope("connectors:write"),
        Empty,
    ),
];

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let item = paths
            .entry(operation.path)
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(item) = item {
            item.insert(operation.method.to_owned(), operation_object(operation));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tributary",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Sign-in, API tokens, provider connections, connectors that sync \
                documents into a RAG sink, and Firecrawl-style crawl and scrape. Every error \
                is a JSON body with a stable `code` and a human `message`.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A session token (POST /auth/login, /auth/session) or an \
                        API token (`trb_…`). Scopes: profile:read, tokens:read, tokens:write, \
                        connectors:read, connectors:write, crawls:read, crawls:write.",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": { "type": "string", "description": "Stable, for programs" },
                        "message": { "type": "string", "description": "For people" },
                    },
                },
            },
        },
    })
}

fn operation_object(operation: &Operation) -> Value {
    let mut object = json!({
        "tags": [operation.tag],
        "summary": operation.summary,
        "operationId": operation_id(operation),
        "responses": responses(operation),
    });
    let parameters = path_parameters(operation.path);
    if !parameters.is_empty() {
        object["parameters"] = Value::Array(parameters);
    }
    match operation.access {
        Public => object["security"] = json!([]),
        Token => object["security"] = json!([{ "bearer": [] }]),
        Scope(scope) => {
            object["security"] = json!([{ "bearer": [scope] }]);
            object["x-required-scope"] = json!(scope);
        }
    }
    if let Some(required) = operation.body {
        object["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": {
                "type": "object",
                "required": required,
            } } },
        });
    }
    object
}

/// `get /connectors/{id}/runs` → `get_connectors_id_runs`.
fn operation_id(operation: &Operation) -> String {
    let words: Vec<&str> = operation
        .path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    match words.as_slice() {
        [] => format!("{}_root", operation.method),
        words => format!("{}_{}", operation.method, words.join("_")),
    }
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "schema": { "type": "string" },
            })
        })
        .collect()
}

fn responses(operation: &Operation) -> Value {
    let error = json!({
        "description": "An error",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    });
    let (status, success) = match operation.success {
        Json(status) => (
            status,
            json!({ "description": "Success", "content": { "application/json": { "schema": {} } } }),
        ),
        Html => (
            200,
            json!({ "description": "An HTML page", "content": { "text/html": {} } }),
        ),
        Asset => (
            200,
            json!({ "description": "The asset, cached for a year" }),
        ),
        Redirect(status) => (
            status,
            json!({ "description": "A redirect to the next step of the flow" }),
        ),
        Empty => (204, json!({ "description": "Done" })),
    };
    let mut responses = Map::new();
    responses.insert(status.to_string(), success);
    responses.insert("default".into(), error);
    Value::Object(responses)
}

pub async fn openapi_json() -> Response {
    let mut response = axum::Json(document()).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_listed_once_with_an_id_of_its_own() {
        let mut seen = std::collections::BTreeSet::new();
        let mut ids = std::collections::BTreeSet::new();
        for operation in OPERATIONS {
            assert!(
                seen.insert((operation.method, operation.path)),
                "{operation:?}"
            );
            assert!(ids.insert(operation_id(operation)), "{operation:?}");
        }
        let document = document();
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(
            document["paths"]["/connectors/{id}/runs"]["get"]["parameters"][0]["name"],
            "id"
        );
        assert_eq!(
            document["paths"]["/connectors"]["post"]["security"][0]["bearer"][0],
            "connectors:write"
        );
    }
}
