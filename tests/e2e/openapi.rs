//! `GET /openapi.json` describes exactly the routes the assembled router serves: every path
//! registered in a function's router (read from the sources) is documented, and every method
//! the router answers on it (anything but 405) is an operation of the document, and back.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tributary_e2e::app::spawn_app;

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Every path a function registers with `.route(…)`: a string literal, or a `const` of the
/// same crate holding one.
fn registered_paths() -> BTreeSet<String> {
    let functions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../functions");
    let mut sources = Vec::new();
    for function in std::fs::read_dir(&functions).expect("functions/") {
        let src = function.expect("entry").path().join("src");
        let mut crate_sources = Vec::new();
        for file in std::fs::read_dir(&src).into_iter().flatten().flatten() {
            if file.path().extension().is_some_and(|ext| ext == "rs") {
                let source = std::fs::read_to_string(file.path()).expect("source");
                // Test modules build routers of their own.
                let code = source.split("#[cfg(test)]").next().unwrap_or_default();
                crate_sources.push(code.to_owned());
            }
        }
        sources.push(crate_sources.join("\n"));
    }
    let mut paths = BTreeSet::new();
    for source in &sources {
        for (at, _) in source.match_indices(".route(") {
            let argument = source[at + ".route(".len()..].trim_start();
            let token: String = argument
                .chars()
                .take_while(|c| *c != ',' && *c != ')')
                .collect();
            let token = token.trim();
            let path = match token.strip_prefix('"') {
                Some(literal) => literal.trim_end_matches('"').to_owned(),
                None => constant(source, token.rsplit("::").next().unwrap_or(token)),
            };
            paths.insert(path);
        }
    }
    paths
}

fn constant(source: &str, name: &str) -> String {
    let declaration = format!("const {name}: &str = \"");
    let at = source
        .find(&declaration)
        .unwrap_or_else(|| panic!("no `{declaration}` in the crate that routes {name}"));
    let rest = &source[at + declaration.len()..];
    rest[..rest.find('"').expect("closing quote")].to_owned()
}

/// `/connectors/{id}/runs` → `/connectors/probe/runs`.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "probe"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn openapi_json_describes_exactly_the_routes_the_router_serves() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.expect("json");
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");

    let documented_paths: BTreeSet<String> = paths.keys().cloned().collect();
    let registered = registered_paths();
    assert!(registered.len() > 20, "found the routers: {registered:?}");
    assert_eq!(
        documented_paths, registered,
        "documented paths (left) against the paths the functions route (right)"
    );

    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("path item").keys();
            methods.map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    // A token with every scope, so the token check lets each probe through to the router's
    // method match. Signing out would end it: that probe goes last.
    let session = app.signed_in("openapi@example.com").await;
    let token = app.api_token(&session, &tributary::auth::scopes::ALL).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut probes: Vec<(Method, String)> = registered
        .iter()
        .flat_map(|path| {
            METHODS
                .iter()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    probes.sort_by_key(|(method, path)| *method == Method::POST && path == "/auth/logout");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut served = BTreeSet::new();
    for (method, path) in probes {
        let response = client
            .request(method.clone(), app.url(&concrete(&path)))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .expect("probe");
        if response.status() != StatusCode::METHOD_NOT_ALLOWED {
            served.insert((method.to_string(), path));
        }
    }
    assert_eq!(
        documented, served,
        "documented operations (left) against what the router answers (right)"
    );

    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            let id = &operation["operationId"];
            assert!(id.is_string(), "{method} {path}: operationId");
            assert!(operation["summary"].is_string(), "{method} {path}: summary");
            assert!(
                operation["responses"]["default"].is_object(),
                "{method} {path}"
            );
            let parameters = path.matches('{').count();
            let described = operation["parameters"].as_array().map_or(0, Vec::len);
            assert_eq!(parameters, described, "{method} {path}: path parameters");
        }
    }
}
