//! The browser harness (`tributary_e2e::browser`) against tiny pages served on loopback: it
//! fills fields by label, clicks by text, waits for text, reads sessionStorage, answers
//! dialogs, takes screenshots, reports console errors (CSP violations, exceptions), and fails
//! with the page in its message.

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures::FutureExt;
use tributary_e2e::browser::Browser;

/// What every page is served under, as the console will be: scripts from the page's own
/// origin only, so an inline `<script>` is a violation.
const CSP: &str = "default-src 'self'; script-src 'self'";

const FORM_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Browser harness</title>
<script src="/form.js" defer></script>
</head>
<body>
<main>
<h1>Browser harness</h1>
<label for="name">Your name</label>
<input id="name" name="name" value="placeholder to replace">
<label>Colour <select name="colour"><option>Red</option><option>Teal</option></select></label>
<label for="hidden-name">Hidden name</label>
<input id="hidden-name" hidden>
<button type="button">Say hello</button>
<p id="greeting">Nobody greeted yet</p>
<a href="/second">Next page</a>
</main>
</body>
</html>
"#;

/// Writes the greeting a moment after the click, so that the harness has to wait for it.
const FORM_SCRIPT: &str = r#"
document.querySelector('button').addEventListener('click', () => {
  const name = document.getElementById('name').value;
  const colour = document.querySelector('select').value;
  setTimeout(() => {
    const greeting = `Hello, ${name} (${colour})`;
    sessionStorage.setItem('greeting', greeting);
    document.getElementById('greeting').textContent = greeting;
  }, 300);
});
"#;

const SECOND_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Second</title><script src="/second.js" defer></script></head>
<body>
<h1>Second page</h1>
<button type="button">Delete</button>
<p id="outcome">undecided</p>
</body>
</html>
"#;

const SECOND_SCRIPT: &str = r#"
document.querySelector('button').addEventListener('click', () => {
  const outcome = confirm('Delete the connector?') ? 'deleted' : 'kept';
  document.getElementById('outcome').textContent = outcome;
});
"#;

/// An inline script, which the CSP blocks: the status keeps its text.
const INLINE_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Inline</title></head>
<body>
<p id="status">inline script blocked</p>
<script>document.getElementById('status').textContent = 'inline script ran';</script>
</body>
</html>
"#;

const BROKEN_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Broken</title><script src="/broken.js" defer></script></head>
<body><p>A page whose script throws</p></body>
</html>
"#;

const BROKEN_SCRIPT: &str = "throw new Error('boom from broken.js');\n";

/// The pages above on a free loopback port, until dropped.
struct Pages {
    base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Pages {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Pages {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let router = Router::new()
            .route("/form", get(|| async { page(FORM_PAGE) }))
            .route("/form.js", get(|| async { script(FORM_SCRIPT) }))
            .route("/second", get(|| async { page(SECOND_PAGE) }))
            .route("/second.js", get(|| async { script(SECOND_SCRIPT) }))
            .route("/inline", get(|| async { page(INLINE_PAGE) }))
            .route("/broken", get(|| async { page(BROKEN_PAGE) }))
            .route("/broken.js", get(|| async { script(BROKEN_SCRIPT) }))
            // Browsers ask for one; a 404 would be a console error in every test.
            .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }));
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("pages stopped");
        });
        Self { base, server }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn page(html: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        html,
    )
}

fn script(js: &'static str) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        js,
    )
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

#[tokio::test]
async fn fills_by_label_clicks_by_text_and_takes_screenshots() {
    let pages = Pages::start().await;
    let browser = Browser::launch().await;
    browser.goto(&pages.url("/form")).await;

    browser.fill("Your name", "Ada Lovelace").await;
    browser.fill("Colour", "Teal").await;
    assert_eq!(browser.session_storage("greeting").await, None);
    browser.click_button("Say hello").await;

    // Written 300 ms after the click: the helpers wait for it.
    browser.wait_for_text("Hello, Ada Lovelace (Teal)").await;
    browser.wait_for_text_in("#greeting", "Ada Lovelace").await;
    assert_eq!(
        browser.text_of("#greeting").await,
        "Hello, Ada Lovelace (Teal)",
        "fill replaced the field's text and picked the option"
    );
    assert_eq!(
        browser.session_storage("greeting").await.as_deref(),
        Some("Hello, Ada Lovelace (Teal)")
    );

    let shot = browser.screenshot("greeted").await;
    assert!(
        shot.ends_with("target/screenshots/browser_harness-fills_by_label_clicks_by_text_and_takes_screenshots/1-greeted.png"),
        "{}",
        shot.display()
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(
        png.starts_with(PNG_SIGNATURE),
        "not a PNG: {}",
        shot.display()
    );
    // IHDR: the image is the 1280×900 viewport.
    let dimension = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((dimension(16), dimension(20)), (1280, 900));
    let second = browser.screenshot("again").await;
    assert!(second.ends_with("2-again.png"), "{}", second.display());

    // External scripts from the page's origin are allowed by its CSP: nothing to report.
    assert_eq!(browser.console_errors().await, Vec::new());
    browser.close().await;
}

#[tokio::test]
async fn reports_csp_violations_and_script_errors_from_the_console() {
    let pages = Pages::start().await;
    let browser = Browser::launch().await;

    browser.goto(&pages.url("/inline")).await;
    let violation = browser
        .wait_for_console_error("Content Security Policy")
        .await;
    // Chromium's wording changes between releases ("Refused to execute inline script",
    // "Executing inline script violates"): check the parts that stay.
    assert!(
        violation.message.contains("inline script") && violation.message.contains("script-src"),
        "{violation:?}"
    );
    // The CSP held (and the harness's own scripts are not subject to it).
    assert_eq!(browser.text_of("#status").await, "inline script blocked");

    browser.goto(&pages.url("/broken")).await;
    let exception = browser.wait_for_console_error("boom from broken.js").await;
    assert!(exception.message.contains("/broken.js"), "{exception:?}");

    let errors = browser.console_errors().await;
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors.iter().all(|error| error.level == "SEVERE"));
    assert!(errors[0].message.contains("Content Security Policy"));
    assert!(errors[1].message.contains("boom from broken.js"));
    browser.close().await;
}

#[tokio::test]
async fn follows_links_answers_dialogs_and_resizes_the_viewport() {
    let pages = Pages::start().await;
    let browser = Browser::launch().await;
    browser.goto(&pages.url("/form")).await;

    browser.click_link("Next page").await;
    browser.wait_for_text("Second page").await;
    assert_eq!(browser.current_url().await.path(), "/second");

    browser.click_button("Delete").await;
    assert_eq!(browser.alert_text().await, "Delete the connector?");
    browser.dismiss_alert().await;
    browser.wait_for_text_in("#outcome", "kept").await;

    browser.click_button("Delete").await;
    browser.accept_alert().await;
    browser.wait_for_text_in("#outcome", "deleted").await;

    let viewport = "return [window.innerWidth, window.innerHeight];";
    let size = |value: serde_json::Value| (value[0].as_u64(), value[1].as_u64());
    let start = browser.client().execute(viewport, vec![]).await.unwrap();
    assert_eq!(size(start), (Some(1280), Some(900)));
    browser.set_viewport(390, 844).await;
    let phone = browser.client().execute(viewport, vec![]).await.unwrap();
    assert_eq!(size(phone), (Some(390), Some(844)));
    browser.close().await;
}

/// The panic message of `future`, which must panic.
async fn panic_message(future: impl std::future::Future<Output = ()>) -> String {
    let payload = std::panic::AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .expect_err("the helper should have failed");
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map(|message| message.to_string())
            .unwrap_or_default(),
    }
}

#[tokio::test]
async fn a_helper_that_times_out_says_what_it_awaited_and_shows_the_page() {
    let pages = Pages::start().await;
    let mut browser = Browser::launch().await;
    browser.goto(&pages.url("/form")).await;
    // Short waits from here on; the first page load of a cold browser may take longer.
    browser.set_timeout(Duration::from_millis(500));

    let message = panic_message(browser.wait_for_text("Goodbye")).await;
    assert!(
        message.contains(r#"waiting for "Goodbye" in "body""#),
        "{message}"
    );
    assert!(
        message.contains(&format!("url: {}", pages.url("/form"))),
        "{message}"
    );
    assert!(message.contains("| Browser harness"), "{message}");
    assert!(message.contains("Nobody greeted yet"), "{message}");

    // Unknown labels list the ones there are; a hidden field does not count.
    let message = panic_message(browser.fill("Email", "ada@example.com")).await;
    assert!(
        message.contains(r#"no visible field is labelled "Email""#),
        "{message}"
    );
    assert!(message.contains(r#"["Your name","Colour"]"#), "{message}");
    let message = panic_message(browser.fill("Hidden name", "x")).await;
    assert!(message.contains("no visible field"), "{message}");

    let message = panic_message(browser.click_button("Say goodbye")).await;
    assert!(
        message.contains(r#"the visible buttons read ["Say hello"]"#),
        "{message}"
    );

    // After a failure the browser still works.
    browser.fill("Your name", "Grace").await;
    browser.close().await;
}
