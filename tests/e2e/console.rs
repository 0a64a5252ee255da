//! The console's HTTP contract (headers, assets) and the API routes it relies on:
//! `GET /auth/providers`, `POST /connectors/test`, `POST /connectors/{id}/test`, config
//! errors that name their field. The console in a real browser: `console_browser.rs`.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tributary_e2e::app::{
    embedded_table, services_over, spawn_app, spawn_app_with_providers, status_and_body, temp_dir,
    TestApp,
};
use tributary_e2e::fake_jira::{self, FakeJira};
use tributary_e2e::signin::oidc_config;

const CSP: &str = "content-security-policy";

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header on {}", response.url()))
}

/// The values of `attribute="…"` in `html`, in order.
fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let needle = format!("{attribute}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| rest[..end].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_page_has_a_strict_csp_no_inline_code_and_hashed_immutable_assets() {
    let app = spawn_app().await;
    let page = app.get("/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(header(&page, CONTENT_TYPE.as_str()).starts_with("text/html"));
    assert_eq!(header(&page, CACHE_CONTROL.as_str()), "no-store");
    let csp = header(&page, CSP).to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let html = page.text().await.expect("body");

    // Every script is external, no element carries an inline handler or style.
    let scripts = html.matches("<script").count();
    assert_eq!(scripts, attribute_values(&html, "src").len(), "{html}");
    assert!(!html.contains("<style"), "inline style element");
    assert!(!html.contains(" style=\""), "inline style attribute");
    let lowered = html.to_lowercase();
    for handler in [
        " onclick=",
        " onload=",
        " onerror=",
        " onsubmit=",
        "javascript:",
    ] {
        assert!(!lowered.contains(handler), "inline handler {handler}");
    }

    let assets: Vec<String> = attribute_values(&html, "src")
        .into_iter()
        .chain(attribute_values(&html, "href"))
        .filter(|path| path.starts_with("/assets/"))
        .collect();
    assert_eq!(
        assets.len(),
        3,
        "one script, one stylesheet, one icon: {assets:?}"
    );
    for path in &assets {
        let name = path.trim_start_matches("/assets/");
        let parts: Vec<&str> = name.split('.').collect();
        assert_eq!(parts.len(), 3, "{name}: name.hash.ext");
        assert!(
            parts[1].len() == 12 && parts[1].bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}"
        );
        let asset = app.get(path, None).await;
        assert_eq!(asset.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header(&asset, CACHE_CONTROL.as_str()),
            "public, max-age=31536000, immutable"
        );
        assert!(header(&asset, CSP).contains("script-src 'self'"));
        let expected_type = match name.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("svg") => "image/svg+xml",
            _ => "text/css",
        };
        assert!(header(&asset, CONTENT_TYPE.as_str()).starts_with(expected_type));
        let body = asset.text().await.expect("asset body");
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../console")
            .join(format!("{}.{}", parts[0], parts[2]));
        let expected = std::fs::read_to_string(&source).expect("the asset's source");
        assert!(
            body == expected,
            "{path} is {}, unchanged",
            source.display()
        );
        // The unhashed name, or another hash, is not served: an old page gets a clear 404.
        let unhashed = format!("/assets/{}.{}", parts[0], parts[2]);
        let (status, error) = status_and_body(app.get(&unhashed, None).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error["code"], "asset_not_found");
    }
}

#[tokio::test]
async fn auth_providers_lists_sign_in_buttons_without_secrets() {
    let services = services_over(embedded_table());
    let providers = vec![
        oidc_config(
            "corp",
            "https://idp.example.com",
            "corp-client",
            "corp-secret-xyz",
        ),
        oidc_config(
            "acme",
            "https://acme.example.com",
            "acme-client",
            "acme-secret-xyz",
        ),
    ];
    let app =
        spawn_app_with_providers(services, providers, std::time::Duration::from_secs(60)).await;
    let (status, body) = status_and_body(app.get("/auth/providers", None).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"items": [
            {"name": "acme", "kind": "oidc", "login_url": "/auth/oauth/acme/login"},
            {"name": "corp", "kind": "oidc", "login_url": "/auth/oauth/corp/login"},
        ]})
    );
    let text = body.to_string();
    assert!(
        !text.contains("secret") && !text.contains("client"),
        "{text}"
    );

    let none = spawn_app().await;
    let (_, body) = status_and_body(none.get("/auth/providers", None).await).await;
    assert_eq!(body, json!({"items": []}));
}

fn jira_body(jira: &FakeJira, api_token: &str) -> Value {
    json!({
        "name": "Console Jira",
        "source": "jira",
        "config": {"base_url": jira.base_url(), "project_keys": [fake_jira::PROJECT]},
        "credentials": {"type": "basic", "email": fake_jira::EMAIL, "api_token": api_token},
        "sink": {"type": "directory", "path": temp_dir("console-test-sink")},
    })
}

async fn connector_count(app: &TestApp, session: &str) -> usize {
    let (status, body) = status_and_body(app.get("/connectors", Some(session)).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").len()
}

#[tokio::test]
async fn testing_a_new_connector_calls_the_source_and_stores_nothing() {
    let jira = FakeJira::start(3).await;
    let app = spawn_app().await;
    let session = app.signed_in("tester@example.com").await;

    let good = jira_body(&jira, fake_jira::API_TOKEN);
    let (status, answer) = status_and_body(
        app.post_json("/connectors/test", &good, Some(&session))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["source"], "jira");
    assert!(answer["message"]
        .as_str()
        .unwrap_or("")
        .contains("connection works"));

    let bad = jira_body(&jira, "not-the-token");
    let (status, answer) = status_and_body(
        app.post_json("/connectors/test", &bad, Some(&session))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "invalid_credentials");
    assert!(!answer.to_string().contains("not-the-token"), "{answer}");
    assert_eq!(connector_count(&app, &session).await, 0);

    // Read-only tokens may not test (it calls the provider with credentials).
    let token = app.api_token(&session, &["connectors:read"]).await;
    let reader = token["token"].as_str().expect("token");
    let (status, _) =
        status_and_body(app.post_json("/connectors/test", &good, Some(reader)).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn testing_an_edit_applies_it_without_storing_it() {
    let jira = FakeJira::start(3).await;
    let app = spawn_app().await;
    let session = app.signed_in("editor@example.com").await;
    let (status, created) = status_and_body(
        app.post_json(
            "/connectors",
            &jira_body(&jira, fake_jira::API_TOKEN),
            Some(&session),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id");
    let path = format!("/connectors/{id}/test");

    // Nothing changed: the stored credentials are tested as they are.
    let (status, answer) =
        status_and_body(app.post_json(&path, &json!({}), Some(&session)).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let wrong = json!({"name": "Renamed", "credentials": {"type": "basic", "email": fake_jira::EMAIL, "api_token": "wrong"}});
    let (status, answer) =
        status_and_body(app.post_json(&path, &wrong, Some(&session)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "invalid_credentials");

    // The stored connector is untouched: same name, and its own credentials still work.
    let (_, stored) =
        status_and_body(app.get(&format!("/connectors/{id}"), Some(&session)).await).await;
    assert_eq!(stored["name"], "Console Jira");
    assert_eq!(stored["updated_at"], created["updated_at"]);
    let (status, _) = status_and_body(app.post_json(&path, &json!({}), Some(&session)).await).await;
    assert_eq!(status, StatusCode::OK);

    let (status, answer) = status_and_body(
        app.post_json("/connectors/no-such-id/test", &json!({}), Some(&session))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

#[tokio::test]
async fn config_errors_name_the_field_they_are_about() {
    let jira = FakeJira::start(1).await;
    let app = spawn_app().await;
    let session = app.signed_in("fields@example.com").await;

    let mut wrong_type = jira_body(&jira, fake_jira::API_TOKEN);
    wrong_type["config"]["batch_size"] = json!("fifty");
    let (status, answer) = status_and_body(
        app.post_json("/connectors", &wrong_type, Some(&session))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "invalid_config");
    let message = answer["message"].as_str().unwrap_or("");
    assert!(message.contains("batch_size: invalid type"), "{message}");

    let mut missing = jira_body(&jira, fake_jira::API_TOKEN);
    missing["config"] = json!({"project_keys": ["PROJ"]});
    let (status, answer) =
        status_and_body(app.post_json("/connectors", &missing, Some(&session)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or("")
            .contains("missing field `base_url`"),
        "{answer}"
    );
    assert_eq!(connector_count(&app, &session).await, 0);
}
