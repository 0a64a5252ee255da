//! The console in a real headless Chromium against the real `tributary-local serve`: the
//! whole first-use path (register, token, Jira connector against the fake Jira, test, sync,
//! crawl a local site, sign out), sign-in through the OIDC button against the real
//! oidc-provider, a bad connector form, and the pages at 360 px. Screenshots of each page go
//! to `target/screenshots/<test>/`.

use std::path::Path;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::{json, Value};
use tributary_e2e::app::temp_dir;
use tributary_e2e::browser::Browser;
use tributary_e2e::fake_jira::{self, FakeJira};
use tributary_e2e::local_serve::{free_port, LocalServe};
use tributary_e2e::oidc::{ClientConfig, OidcProvider};
use tributary_e2e::site::{Resource, TestSite};

const PASSWORD: &str = "plum-orbit-cactus-41-velvet";
const ISSUES: usize = 12;

async fn register(browser: &Browser, serve: &LocalServe, email: &str) {
    browser.goto(&serve.url("/")).await;
    browser.wait_for_text_in("h1", "Sign in").await;
    browser.click_link("Create an account").await;
    browser.wait_for_text_in("h1", "Create an account").await;
    browser.fill("Name", "Ada Lovelace").await;
    browser.fill("Email", email).await;
    browser.fill("Password", PASSWORD).await;
    browser.click_button("Create account").await;
    browser.wait_for_text_in("h1", "Connectors").await;
    browser.wait_for_text_in("#whoami", email).await;
}

/// The session the console keeps, for checking what it did through the API.
async fn session_token(browser: &Browser) -> String {
    let stored = browser
        .session_storage("tributary.session")
        .await
        .expect("a session in sessionStorage");
    let value: Value = serde_json::from_str(&stored).expect("session JSON");
    value["access_token"].as_str().expect("token").to_owned()
}

async fn api_get(serve: &LocalServe, token: &str, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(serve.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.expect("json")
}

fn markdown_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "md"))
                .count()
        })
        .unwrap_or(0)
}

/// The console's own errors: script errors, CSP violations and assets that failed to load.
/// Chromium also logs every API answer of 400 or more as a failed load; the page handles
/// those (the tests check what it shows), and other origins' pages (the OIDC provider's)
/// are not the console's.
async fn no_console_errors(browser: &Browser, serve: &LocalServe) {
    let origin = serve.url("/");
    let errors: Vec<_> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|error| error.message.starts_with(&origin))
        .filter(|error| {
            let api_answer = error.source == "network"
                && !error.message.starts_with(&format!("{origin}assets/"))
                && !error.message.starts_with(&format!("{origin} "));
            !api_answer
        })
        .collect();
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");
}

fn docs_site() -> Vec<(&'static str, Resource)> {
    vec![
        ("/", Resource::page("Docs home", &["/guide", "/reference"])),
        ("/guide", Resource::page("Guide", &["/", "/guide/install"])),
        ("/guide/install", Resource::page("Install", &["/guide"])),
        ("/reference", Resource::page("Reference", &["/"])),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_use_register_token_jira_connector_sync_crawl_and_sign_out() {
    let jira = FakeJira::start(ISSUES).await;
    let site = TestSite::start(docs_site()).await;
    let serve = LocalServe::start("127.0.0.1:0", &[]).await;
    let browser = Browser::launch().await;
    register(&browser, &serve, "ada@example.com").await;
    browser.screenshot("connectors-empty").await;

    // An API token, shown once with a copy button, then listed.
    browser.click_link("API tokens").await;
    browser.wait_for_text_in("h1", "API tokens").await;
    browser.fill("Token name", "laptop").await;
    browser.click_button("Create token").await;
    browser.wait_for_text("shown only once").await;
    let shown = browser
        .client()
        .find(Locator::Css("input.secret"))
        .await
        .expect("the new token field")
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default();
    assert!(shown.starts_with("trb_"), "{shown}");
    browser.wait_for_text_in("table", "laptop").await;
    browser.screenshot("api-tokens").await;
    let me = reqwest::Client::new()
        .get(serve.url("/me"))
        .bearer_auth(&shown)
        .send()
        .await
        .expect("me");
    assert!(me.status().is_success(), "the shown token works");

    // A Jira connector from the generated form: test, save, sync now, see the run.
    let out = temp_dir("console-jira-out");
    browser.click_link("Connectors").await;
    browser.click_link("New connector").await;
    browser.wait_for_text_in("h1", "New connector").await;
    browser.fill("Source", "Jira Cloud").await;
    browser.fill("Name", "Engineering Jira").await;
    browser.fill("Base url", &jira.base_url()).await;
    browser.fill("Project keys", fake_jira::PROJECT).await;
    browser.fill("Credential type", "Email and API token").await;
    browser.fill("Account email", fake_jira::EMAIL).await;
    browser.fill("API token", fake_jira::API_TOKEN).await;
    browser
        .fill("Sink type", "Directory (local stack only)")
        .await;
    browser
        .fill("Directory path", out.to_str().expect("utf-8 path"))
        .await;
    browser.click_button("Test connection").await;
    browser.wait_for_text("the connection works").await;
    browser.screenshot("connector-form").await;
    browser.click_button("Create connector").await;
    browser.wait_for_text_in("h1", "Engineering Jira").await;
    browser.click_button("Sync now").await;
    browser.wait_for_text("Sync queued.").await;
    browser.wait_for_text_in("table", "completed").await;
    let added = browser
        .text_of("table tbody tr:first-child td:nth-child(4)")
        .await;
    assert_eq!(added, ISSUES.to_string(), "the run's added count");
    assert_eq!(markdown_files(&out), ISSUES, "documents in the sink");
    browser.screenshot("connector-runs").await;
    browser.click_link("Connectors").await;
    browser.wait_for_text_in("table", "Engineering Jira").await;
    browser
        .wait_for_text_in("table", &format!("{ISSUES} added"))
        .await;
    browser.screenshot("connectors-list").await;

    // A crawl of a local site: live counters, completed, a page's markdown previewed.
    browser.click_link("Crawls").await;
    browser.wait_for_text_in("h1", "Crawls").await;
    browser.fill("Start URL", &site.url("/")).await;
    browser.click_button("Start crawl").await;
    browser.wait_for_text_in("h1", "Crawl completed").await;
    browser.wait_for_text_in("table", "Install").await;
    let rows = browser
        .client()
        .execute(
            "return document.querySelectorAll('table tbody tr').length;",
            vec![],
        )
        .await
        .expect("rows");
    assert_eq!(rows, json!(4), "every page of the site is listed");
    browser
        .click_button(&format!("Preview {}", site.url("/guide/install")))
        .await;
    browser.wait_for_text_in("pre.markdown", "Install").await;
    browser.screenshot("crawl-completed").await;

    // One page scraped.
    browser.click_link("Scrape").await;
    browser.fill("Page URL", &site.url("/guide")).await;
    browser.click_button("Scrape").await;
    browser.wait_for_text_in("pre.markdown", "Guide").await;
    browser.screenshot("scrape").await;

    browser.click_link("Connections").await;
    browser.wait_for_text("No provider is configured").await;
    browser.screenshot("connections").await;

    no_console_errors(&browser, &serve).await;
    browser.click_button("Sign out").await;
    browser.wait_for_text("Signed out.").await;
    browser.wait_for_text_in("h1", "Sign in").await;
    assert_eq!(browser.session_storage("tributary.session").await, None);
    browser.screenshot("signed-out").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_connector_form_shows_the_api_message_by_the_field_and_stores_nothing() {
    let jira = FakeJira::start(1).await;
    let serve = LocalServe::start("127.0.0.1:0", &[]).await;
    let browser = Browser::launch().await;
    register(&browser, &serve, "grace@example.com").await;
    browser.click_link("New connector").await;
    browser.fill("Source", "Jira Cloud").await;
    browser.fill("Name", "Broken").await;
    browser.fill("Account email", fake_jira::EMAIL).await;
    browser.fill("API token", fake_jira::API_TOKEN).await;
    browser
        .fill(
            "Directory path",
            temp_dir("console-bad").to_str().expect("path"),
        )
        .await;

    // A required field left empty: the API's message, next to that field.
    browser.click_button("Create connector").await;
    browser
        .wait_for_text_in(
            "[data-field=base_url] .field-error",
            "missing field `base_url`",
        )
        .await;
    browser.screenshot("missing-field").await;

    // A number field holding words.
    browser.fill("Base url", &jira.base_url()).await;
    browser.fill("Batch size", "fifty").await;
    browser.click_button("Create connector").await;
    browser
        .wait_for_text_in(
            "[data-field=batch_size] .field-error",
            "batch_size: invalid type",
        )
        .await;
    let invalid = browser
        .client()
        .find(Locator::Css("[data-field=batch_size] input"))
        .await
        .expect("batch size input")
        .attr("aria-invalid")
        .await
        .expect("attr");
    assert_eq!(invalid.as_deref(), Some("true"));
    // The other field's old error is gone.
    assert_eq!(
        browser.text_of("[data-field=base_url] .field-error").await,
        ""
    );
    browser.screenshot("wrong-type").await;

    // Wrong credentials: the connection test's message at the credentials.
    browser.fill("Batch size", "").await;
    browser.fill("API token", "not-the-token").await;
    browser.click_button("Test connection").await;
    browser.wait_for_text("(invalid_credentials)").await;

    let token = session_token(&browser).await;
    let stored = api_get(&serve, &token, "/connectors").await;
    assert_eq!(stored["items"], json!([]), "nothing was stored");
    no_console_errors(&browser, &serve).await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oidc_button_signs_in_through_the_real_provider() {
    let port = free_port();
    let redirect_uri = format!("http://127.0.0.1:{port}/auth/oauth/corp/callback");
    let provider = OidcProvider::start(vec![ClientConfig {
        client_id: "console-client".into(),
        client_secret: "console-client-secret-5d1f".into(),
        redirect_uri: redirect_uri.clone(),
        id_token_alg: "RS256".into(),
    }]);
    let env = [
        ("TRIBUTARY_OAUTH_PROVIDERS", "corp".to_owned()),
        ("TRIBUTARY_OAUTH_CORP_KIND", "oidc".to_owned()),
        ("TRIBUTARY_OAUTH_CORP_ISSUER", provider.issuer.clone()),
        (
            "TRIBUTARY_OAUTH_CORP_CLIENT_ID",
            "console-client".to_owned(),
        ),
        (
            "TRIBUTARY_OAUTH_CORP_CLIENT_SECRET",
            "console-client-secret-5d1f".to_owned(),
        ),
        ("TRIBUTARY_OAUTH_CORP_REDIRECT_URI", redirect_uri),
    ];
    let serve = LocalServe::start(&format!("127.0.0.1:{port}"), &env).await;
    let browser = Browser::launch().await;
    browser.goto(&serve.url("/")).await;
    browser.wait_for_text_in("h1", "Sign in").await;
    browser.screenshot("sign-in").await;
    browser.click_button("Sign in with Corp").await;

    // The provider's own login and consent pages.
    let client = browser.client();
    let login = wait_for(&browser, "input[name=login]").await;
    login.send_keys("ada").await.expect("login");
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("password field")
        .send_keys("any-password")
        .await
        .expect("password");
    browser.screenshot("provider-login").await;
    client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("submit login");
    let consent = wait_for(&browser, "button[type=submit]").await;
    consent.click().await.expect("consent");

    // Back on the console, signed in as the provider's user, no token in the URL.
    browser.wait_for_text_in("h1", "Connectors").await;
    browser.wait_for_text_in("#whoami", "ada@example.com").await;
    let url = browser.current_url().await;
    assert_eq!(url.query(), None, "{url}");
    assert!(!url.as_str().contains("token"), "{url}");
    let token = session_token(&browser).await;
    let me = api_get(&serve, &token, "/me").await;
    assert_eq!(me["user"]["email"], "ada@example.com");
    browser.screenshot("signed-in-with-oidc").await;
    no_console_errors(&browser, &serve).await;
    browser.close().await;
}

/// The provider's pages are not the console's: wait for an element by CSS.
async fn wait_for(browser: &Browser, css: &str) -> fantoccini::elements::Element {
    browser
        .client()
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("{css} never appeared: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_360_px_and_keyboard_focus_follows_navigation() {
    let serve = LocalServe::start("127.0.0.1:0", &[]).await;
    let browser = Browser::launch().await;
    browser.set_viewport(360, 740).await;
    register(&browser, &serve, "narrow@example.com").await;
    for (link, heading) in [
        ("Connectors", "Connectors"),
        ("Connections", "Connections"),
        ("Crawls", "Crawls"),
        ("Scrape", "Scrape a page"),
        ("API tokens", "API tokens"),
    ] {
        browser.click_link(link).await;
        browser.wait_for_text_in("h1", heading).await;
        let layout = browser
            .client()
            .execute(
                "return {scroll: document.documentElement.scrollWidth, \
                 view: window.innerWidth};",
                vec![],
            )
            .await
            .expect("layout");
        assert!(
            layout["scroll"].as_u64() <= layout["view"].as_u64(),
            "{heading} scrolls sideways at 360 px: {layout}"
        );
        // Focus moves to the new page's heading once the page has rendered.
        browser
            .wait_for_script(
                "focus on the page's heading",
                "return document.activeElement.tagName === 'H1';",
            )
            .await;
        browser
            .screenshot(&format!(
                "narrow-{}",
                heading.to_lowercase().replace(' ', "-")
            ))
            .await;
    }
    browser.click_link("Connectors").await;
    browser.click_link("New connector").await;
    browser.wait_for_text_in("h1", "New connector").await;
    browser.screenshot("narrow-connector-form").await;

    // Every form control has a label a screen reader can announce.
    let unlabelled = browser
        .client()
        .execute(
            "return [...document.querySelectorAll('input, select, textarea')]\
             .filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label'))\
             .map(c => c.outerHTML);",
            vec![],
        )
        .await
        .expect("controls");
    assert_eq!(unlabelled, json!([]), "controls without a label");
    no_console_errors(&browser, &serve).await;
    browser.close().await;
}
