//! `Browser`: a real headless Chromium driven over WebDriver, for the console's tests.
//!
//! Each [`Browser`] starts its own chromedriver on a free loopback port and its own Chromium
//! with a fresh profile, so tests run in parallel without sharing anything; dropping it ends
//! the session and kills both. Fields are found by their label and buttons and links by their
//! visible text, as a user finds them (the console must label its fields accessibly). Every
//! helper waits up to [`DEFAULT_TIMEOUT`] for what it needs, then panics with what it awaited,
//! why it was not there yet, the current URL and the page's visible text.
//!
//! Needs `chromedriver` and `chromium` (Debian's `chromium-driver` and `chromium`, which
//! `infra/scripts/test` installs); `TRIBUTARY_TEST_CHROMEDRIVER` and `TRIBUTARY_TEST_CHROMIUM`
//! override their paths.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::elements::{Element, ElementRef};
use fantoccini::error::CmdError;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use url::Url;

use crate::local_serve::free_port;

/// How long a helper waits for its condition before failing the test.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The window size a browser starts with.
pub const WINDOW_SIZE: (u32, u32) = (1280, 900);

/// How long chromedriver may take to answer `/status` ready, and Chromium to open a session.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a waiting helper looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How much of the page's visible text a failure message quotes.
const PAGE_TEXT_LIMIT: usize = 1500;

/// A message the page logged to the browser console (`console.error`, an uncaught exception,
/// a CSP violation, a failed resource load...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleMessage {
    /// `SEVERE`, `WARNING`, `INFO` or `DEBUG`.
    pub level: String,
    /// Where it came from: `javascript`, `console-api`, `security`, `network`...
    pub source: String,
    /// The message, prefixed by the URL and position it came from.
    pub message: String,
}

/// A headless Chromium session with its own chromedriver and profile. See the module docs.
pub struct Browser {
    client: Option<Client>,
    session_id: String,
    driver: Child,
    driver_port: u16,
    /// Holds the Chromium profile; removed on drop, after the browser is gone.
    _profile: tempfile::TempDir,
    timeout: Duration,
    /// The test that launched the browser (its thread's name), naming its screenshot folder.
    test_name: String,
    /// Console messages read so far (chromedriver hands each out once).
    console: Mutex<Vec<ConsoleMessage>>,
}

impl Browser {
    /// Starts chromedriver on a free loopback port, waits until it reports ready, and opens a
    /// session with a headless Chromium (fresh profile, 1280×900 window, console logging on).
    pub async fn launch() -> Browser {
        let chromedriver = tool_path("TRIBUTARY_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = tool_path("TRIBUTARY_TEST_CHROMIUM", "/usr/bin/chromium");
        for (path, package) in [(&chromedriver, "chromium-driver"), (&chromium, "chromium")] {
            assert!(
                path.is_file(),
                "{} not found: run infra/scripts/test (its install_browser step) or \
                 `apt-get install {package}`, or point TRIBUTARY_TEST_CHROMEDRIVER / \
                 TRIBUTARY_TEST_CHROMIUM at the binaries",
                path.display()
            );
        }
        let test_name = std::thread::current()
            .name()
            .filter(|name| *name != "main")
            .unwrap_or("unnamed-test")
            .to_owned();
        let profile = tempfile::Builder::new()
            .prefix("tributary-chromium-")
            .tempdir()
            .expect("create a Chromium profile directory");

        let (driver, driver_port) = start_chromedriver(&chromedriver).await;
        let (width, height) = WINDOW_SIZE;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    // Chromium refuses to start its sandbox as root (CI and the dev image).
                    "--no-sandbox",
                    // /dev/shm is small in containers; shared memory goes to /tmp instead.
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={width},{height}"),
                    "--no-first-run",
                    "--no-default-browser-check",
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
            // Leave dialogs open for alert_text / accept_alert instead of dismissing them
            // when another command arrives.
            "unhandledPromptBehavior": "ignore",
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("capabilities are an object")
        };
        let connect = async {
            ClientBuilder::rustls()
                .expect("a WebDriver HTTP client")
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{driver_port}"))
                .await
        };
        let client = match tokio::time::timeout(LAUNCH_TIMEOUT, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => panic!(
                "could not open a Chromium session ({}) through chromedriver: {error}",
                chromium.display()
            ),
            Err(_) => panic!("Chromium did not open a session within {LAUNCH_TIMEOUT:?}"),
        };
        let session_id = client
            .session_id()
            .await
            .expect("session id")
            .expect("chromedriver gave the session an id");
        let browser = Browser {
            client: Some(client),
            session_id,
            driver,
            driver_port,
            _profile: profile,
            timeout: DEFAULT_TIMEOUT,
            test_name,
            console: Mutex::new(Vec::new()),
        };
        // `--window-size` sizes the window, frame included: make the viewport the size.
        browser.set_viewport(width, height).await;
        browser
    }

    /// The underlying fantoccini client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    /// Changes how long the helpers wait (default [`DEFAULT_TIMEOUT`]).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        let result = tokio::time::timeout(self.timeout, self.client().goto(url)).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => self.fail(format!("opening {url}"), error).await,
            Err(_) => self.fail(format!("opening {url}"), "timed out").await,
        }
    }

    /// The URL of the current page.
    pub async fn current_url(&self) -> Url {
        match self.client().current_url().await {
            Ok(url) => url,
            Err(error) => panic!("reading the current URL: {error}"),
        }
    }

    /// Types `value` into the input or textarea labelled `label` (its `<label>`, or its
    /// `aria-label` / `aria-labelledby`), replacing what it held; for a `<select>`, picks the
    /// option whose visible text is `value`. Waits for exactly one such field to be visible.
    pub async fn fill(&self, label: &str, value: &str) {
        self.wait_until(
            format!("filling the field labelled {label:?}"),
            || async move {
                let field = self.labelled_field(label).await?;
                let tag = field.tag_name().await.map_err(describe)?;
                if tag.eq_ignore_ascii_case("select") {
                    field.select_by_label(value).await.map_err(|error| {
                        format!("no option {value:?} in the select labelled {label:?}: {error}")
                    })?;
                } else {
                    field.clear().await.map_err(describe)?;
                    field.send_keys(value).await.map_err(describe)?;
                }
                Ok(())
            },
        )
        .await
    }

    /// Clicks the `<button>` (or `[role=button]`, or `<input type=submit|button|reset>`) whose
    /// visible text (or value, or `aria-label`) is `text`, once it is visible and enabled.
    pub async fn click_button(&self, text: &str) {
        self.wait_until(format!("clicking the button {text:?}"), || async move {
            let button = self.find_by_text(FIND_BUTTON, text, "button").await?;
            button.click().await.map_err(describe)
        })
        .await
    }

    /// Clicks the link (`<a href>`) whose visible text is `text`, once it is visible.
    pub async fn click_link(&self, text: &str) {
        self.wait_until(format!("clicking the link {text:?}"), || async move {
            let link = self.find_by_text(FIND_LINK, text, "link").await?;
            link.click().await.map_err(describe)
        })
        .await
    }

    /// Waits until the page's visible text contains `text` (whitespace runs compare as one
    /// space).
    pub async fn wait_for_text(&self, text: &str) {
        self.wait_for_text_in("body", text).await
    }

    /// Waits until a visible element matching `css` has visible text containing `text`.
    pub async fn wait_for_text_in(&self, css: &str, text: &str) {
        let what = format!("waiting for {text:?} in {css:?}");
        self.wait_until(what, || async move {
            let found = self.script(TEXT_IN, vec![json!(css), json!(text)]).await?;
            if found["found"] == json!(true) {
                return Ok(());
            }
            Err(format!(
                "{} visible element(s) match {css:?}, with text {}",
                found["count"], found["texts"]
            ))
        })
        .await
    }

    /// Waits until `script` (a function body) returns `true`; `what` names the condition in
    /// the failure message.
    pub async fn wait_for_script(&self, what: &str, script: &str) {
        self.wait_until(format!("waiting for {what}"), || async move {
            match self.script(script, vec![]).await? {
                Value::Bool(true) => Ok(()),
                other => Err(format!("the script returned {other}")),
            }
        })
        .await
    }

    /// The visible text of the first element matching `css`, once there is one.
    pub async fn text_of(&self, css: &str) -> String {
        self.wait_until(format!("reading the text of {css:?}"), || async move {
            let element = self
                .client()
                .find(fantoccini::Locator::Css(css))
                .await
                .map_err(|error| format!("no element matches {css:?}: {}", describe(error)))?;
            element.text().await.map_err(describe)
        })
        .await
    }

    /// Resizes the window so that the page's viewport is `width`×`height` CSS pixels.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        let what = format!("setting the viewport to {width}×{height}");
        self.wait_until(what, || async move {
            let client = self.client();
            client
                .set_window_size(width, height)
                .await
                .map_err(describe)?;
            let (inner_width, inner_height) = self.viewport().await?;
            if (inner_width, inner_height) != (width, height) {
                // The window is larger than its viewport (frame, scroll bars): add the
                // difference.
                let (outer_width, outer_height) =
                    client.get_window_size().await.map_err(describe)?;
                let grow = |outer: u64, wanted: u32, inner: u32| {
                    (outer + u64::from(wanted)).saturating_sub(u64::from(inner)) as u32
                };
                client
                    .set_window_size(
                        grow(outer_width, width, inner_width),
                        grow(outer_height, height, inner_height),
                    )
                    .await
                    .map_err(describe)?;
            }
            match self.viewport().await? {
                (w, h) if (w, h) == (width, height) => Ok(()),
                (w, h) => Err(format!("the viewport is {w}×{h}")),
            }
        })
        .await
    }

    /// Saves a PNG of the viewport as `target/screenshots/<test>/<n>-<name>.png` (`n` counts
    /// the test's screenshots, starting at 1; the folder is emptied at its first) and returns
    /// its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = match self.client().screenshot().await {
            Ok(png) => png,
            Err(error) => {
                self.fail(format!("taking screenshot {name:?}"), error)
                    .await
            }
        };
        let (dir, n) = next_screenshot(&self.test_name);
        let path = dir.join(format!("{n}-{}.png", file_name_part(name)));
        std::fs::write(&path, png)
            .unwrap_or_else(|error| panic!("writing {}: {error}", path.display()));
        path
    }

    /// The page's `sessionStorage` entry for `key`, if there is one.
    pub async fn session_storage(&self, key: &str) -> Option<String> {
        let script = "return window.sessionStorage.getItem(arguments[0]);";
        match self.script(script, vec![json!(key)]).await {
            Ok(Value::String(value)) => Some(value),
            Ok(Value::Null) => None,
            Ok(other) => panic!("sessionStorage.getItem({key:?}) gave {other}"),
            Err(error) => {
                self.fail(format!("reading sessionStorage {key:?}"), error)
                    .await
            }
        }
    }

    /// The text of the open alert, confirm or prompt dialog, once one is open.
    pub async fn alert_text(&self) -> String {
        self.wait_until("waiting for a dialog", || async move {
            self.client().get_alert_text().await.map_err(describe)
        })
        .await
    }

    /// Accepts (OK) the open dialog, once one is open.
    pub async fn accept_alert(&self) {
        self.wait_until("accepting a dialog", || async move {
            self.client().accept_alert().await.map_err(describe)
        })
        .await
    }

    /// Dismisses (Cancel) the open dialog, once one is open.
    pub async fn dismiss_alert(&self) {
        self.wait_until("dismissing a dialog", || async move {
            self.client().dismiss_alert().await.map_err(describe)
        })
        .await
    }

    /// Everything the pages logged to the browser console so far, oldest first.
    pub async fn console_messages(&self) -> Vec<ConsoleMessage> {
        if let Err(error) = self.read_console().await {
            panic!("reading the browser console: {error}");
        }
        self.console.lock().expect("console").clone()
    }

    /// The console's errors so far (level `SEVERE`): uncaught exceptions, `console.error`,
    /// CSP violations, failed loads. A page that behaves raises none.
    pub async fn console_errors(&self) -> Vec<ConsoleMessage> {
        let mut messages = self.console_messages().await;
        messages.retain(|message| message.level == "SEVERE");
        messages
    }

    /// Waits until the console holds an error containing `text`, and returns it (errors
    /// reach the log asynchronously: wait for one rather than read once).
    pub async fn wait_for_console_error(&self, text: &str) -> ConsoleMessage {
        let what = format!("waiting for a console error containing {text:?}");
        self.wait_until(what, || async move {
            self.read_console().await?;
            let console = self.console.lock().expect("console");
            let errors = console.iter().filter(|m| m.level == "SEVERE");
            if let Some(found) = errors.clone().find(|m| m.message.contains(text)) {
                return Ok(found.clone());
            }
            let seen: Vec<&str> = errors.map(|m| m.message.as_str()).collect();
            Err(format!("console errors so far: {seen:?}"))
        })
        .await
    }

    /// Ends the session (Chromium quits), then stops chromedriver.
    pub async fn close(mut self) {
        let client = self.client.take().expect("the session is open");
        match tokio::time::timeout(self.timeout, client.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("closing the browser session: {error}"),
            Err(_) => panic!(
                "the browser session did not close within {:?}",
                self.timeout
            ),
        }
    }

    /// Polls `probe` until it succeeds or the timeout passes; then fails with `what`, the
    /// probe's last reason and the page.
    async fn wait_until<T, F, Fut>(&self, what: impl Display, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut last_reason: Option<String> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let reason = match tokio::time::timeout(remaining, probe()).await {
                Ok(Ok(value)) => return value,
                Ok(Err(reason)) => reason,
                // The deadline cut an attempt short: the one before says more.
                Err(_) => last_reason
                    .take()
                    .unwrap_or_else(|| "the last attempt did not finish".to_owned()),
            };
            last_reason = Some(reason.clone());
            if Instant::now() + POLL_INTERVAL >= deadline {
                let what = format!("{what}: not done after {:?}", self.timeout);
                self.fail(what, reason).await
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Panics with `what` went wrong, `why`, the current URL and the page's visible text.
    async fn fail(&self, what: impl Display, why: impl Display) -> ! {
        let page = self.describe_page().await;
        panic!("browser: {what}\n  because: {why}\n{page}")
    }

    async fn describe_page(&self) -> String {
        let quick = Duration::from_secs(2);
        let client = self.client();
        let url = match tokio::time::timeout(quick, client.current_url()).await {
            Ok(Ok(url)) => url.to_string(),
            Ok(Err(error)) => format!("(unavailable: {})", describe(error)),
            Err(_) => "(unavailable: no answer)".to_owned(),
        };
        let script = "return document.body ? document.body.innerText : '(no body)';";
        let text = match tokio::time::timeout(quick, client.execute(script, vec![])).await {
            Ok(Ok(Value::String(text))) => truncate(&text, PAGE_TEXT_LIMIT),
            Ok(Ok(other)) => other.to_string(),
            Ok(Err(error)) => format!("(unavailable: {})", describe(error)),
            Err(_) => "(unavailable: no answer)".to_owned(),
        };
        let text = text.replace('\n', "\n    | ");
        format!("  url: {url}\n  page text:\n    | {text}")
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    async fn script(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.client().execute(script, args).await.map_err(describe)
    }

    /// The one visible field labelled `label`.
    async fn labelled_field(&self, label: &str) -> Result<Element, String> {
        let found = self.script(FIND_FIELD, vec![json!(label)]).await?;
        match found["fields"].as_array().map(Vec::as_slice) {
            Some([field]) => self.element(field),
            Some([]) | None => Err(format!(
                "no visible field is labelled {label:?}; the visible fields are labelled {}",
                found["labels"]
            )),
            Some(fields) => Err(format!(
                "{} visible fields are labelled {label:?}",
                fields.len()
            )),
        }
    }

    /// The one visible, enabled element that `finder` finds by `text`.
    async fn find_by_text(&self, finder: &str, text: &str, kind: &str) -> Result<Element, String> {
        let found = self.script(finder, vec![json!(text)]).await?;
        match found["matches"].as_array().map(Vec::as_slice) {
            Some([element]) => {
                if found["disabled"] == json!(true) {
                    return Err(format!("the {kind} {text:?} is disabled"));
                }
                self.element(element)
            }
            Some([]) | None => Err(format!(
                "no visible {kind} reads {text:?}; the visible {kind}s read {}",
                found["texts"]
            )),
            Some(matches) => Err(format!("{} visible {kind}s read {text:?}", matches.len())),
        }
    }

    /// The element a script returned.
    fn element(&self, reference: &Value) -> Result<Element, String> {
        let id = reference[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| format!("the page script returned {reference}, not an element"))?;
        Ok(Element::from_element_id(
            self.client().clone(),
            ElementRef::from(id.to_owned()),
        ))
    }

    async fn viewport(&self) -> Result<(u32, u32), String> {
        let size = self
            .script("return [window.innerWidth, window.innerHeight];", vec![])
            .await?;
        match (size[0].as_u64(), size[1].as_u64()) {
            (Some(w), Some(h)) => Ok((w as u32, h as u32)),
            _ => Err(format!("the page reported its viewport as {size}")),
        }
    }

    /// Moves the console messages chromedriver holds into `self.console`.
    async fn read_console(&self) -> Result<(), String> {
        let entries = self
            .client()
            .issue_cmd(BrowserLog)
            .await
            .map_err(describe)?;
        let entries = entries
            .as_array()
            .ok_or_else(|| format!("chromedriver's browser log is {entries}, not a list"))?;
        let field = |entry: &Value, key: &str| entry[key].as_str().unwrap_or_default().to_owned();
        let mut console = self.console.lock().expect("console");
        console.extend(entries.iter().map(|entry| ConsoleMessage {
            level: field(entry, "level"),
            source: field(entry, "source"),
            message: field(entry, "message"),
        }));
        Ok(())
    }
}

/// Without `close`, dropping ends the session as well as it can (the test may have panicked)
/// and kills chromedriver with the browser it started.
impl Drop for Browser {
    fn drop(&mut self) {
        if self.client.is_some() {
            delete_session_blocking(self.driver_port, &self.session_id);
        }
        if let Some(pid) = self.driver.id() {
            // chromedriver leads its own process group, which Chromium's processes joined.
            // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
            unsafe {
                libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
            }
        }
        // `driver` is killed on drop (if the group kill missed it) and reaped by tokio.
    }
}

/// The W3C WebDriver key of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver's browser log (`goog:loggingPrefs`): the entries since the last read.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &Url, session: Option<&str>) -> Result<Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// A page script with the helpers every finder uses: `norm` (whitespace runs as one space,
/// trimmed) and `visible`.
macro_rules! page_script {
    ($body:literal) => {
        concat!(
            "const norm = (s) => (s || '').replace(/\\s+/g, ' ').trim();\n",
            "const visible = (el) => el.checkVisibility({ visibilityProperty: true });\n",
            $body
        )
    };
}

/// `{fields: [element], labels: [text]}`: the visible inputs, selects and textareas whose
/// label (`<label>`, `aria-labelledby` or `aria-label`) reads `arguments[0]`, and the labels
/// of all the visible ones.
const FIND_FIELD: &str = page_script!(
    r#"
const wanted = norm(arguments[0]);
const isField = (el) => el && ['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName);
// A label's own text, without that of the controls nested in it (a select's options).
const labelText = (label) => {
  const copy = label.cloneNode(true);
  copy.querySelectorAll('input, select, textarea, button').forEach((el) => el.remove());
  return norm(copy.textContent);
};
const fields = new Set();
const labels = [];
for (const label of document.querySelectorAll('label')) {
  const text = labelText(label);
  if (isField(label.control) && visible(label.control)) labels.push(text);
  if (text === wanted && isField(label.control)) fields.add(label.control);
}
for (const el of document.querySelectorAll('[aria-labelledby]')) {
  const text = norm(el.getAttribute('aria-labelledby').split(/\s+/)
    .map((id) => (document.getElementById(id) || {}).textContent).join(' '));
  if (isField(el) && visible(el)) labels.push(text);
  if (text === wanted && isField(el)) fields.add(el);
}
for (const el of document.querySelectorAll('[aria-label]')) {
  const text = norm(el.getAttribute('aria-label'));
  if (isField(el) && visible(el)) labels.push(text);
  if (text === wanted && isField(el)) fields.add(el);
}
return { fields: [...fields].filter(visible), labels };
"#
);

/// `{matches: [element], disabled, texts}`: the visible buttons reading `arguments[0]`.
const FIND_BUTTON: &str = page_script!(
    r#"
const wanted = norm(arguments[0]);
const selector = 'button, [role=button], input[type=submit], input[type=button], input[type=reset]';
const buttons = [...document.querySelectorAll(selector)].filter(visible);
const text = (el) => el.tagName === 'INPUT' ? norm(el.value) : norm(el.innerText);
const matches = buttons.filter((el) =>
  text(el) === wanted || norm(el.getAttribute('aria-label')) === wanted);
const disabled = matches.length === 1 &&
  (matches[0].disabled === true || matches[0].getAttribute('aria-disabled') === 'true');
return { matches, disabled, texts: buttons.map(text) };
"#
);

/// `{matches: [element], disabled, texts}`: the visible links reading `arguments[0]`.
const FIND_LINK: &str = page_script!(
    r#"
const wanted = norm(arguments[0]);
const links = [...document.querySelectorAll('a[href]')].filter(visible);
const matches = links.filter((el) =>
  norm(el.innerText) === wanted || norm(el.getAttribute('aria-label')) === wanted);
return { matches, disabled: false, texts: links.map((el) => norm(el.innerText)) };
"#
);

/// `{found, count, texts}`: whether a visible element matching `arguments[0]` has visible text
/// containing `arguments[1]`.
const TEXT_IN: &str = page_script!(
    r#"
const wanted = norm(arguments[1]);
const elements = [...document.querySelectorAll(arguments[0])].filter(visible);
const texts = elements.map((el) => norm(el.innerText));
const short = texts.map((t) => t.length > 200 ? t.slice(0, 200) + '…' : t).slice(0, 5);
return { found: texts.some((t) => t.includes(wanted)), count: elements.length, texts: short };
"#
);

fn tool_path(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// chromedriver on a free loopback port, ready. A port taken between choosing and binding
/// makes chromedriver exit: then it tries another.
async fn start_chromedriver(path: &Path) -> (Child, u16) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        let port = free_port();
        let mut driver = Command::new(path)
            .arg(format!("--port={port}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Its own process group, so that drop can kill it with the browser it starts.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", path.display()));
        match wait_until_ready(&mut driver, port).await {
            Ok(()) => return (driver, port),
            Err(failure) => failures.push(format!("port {port}: {failure}")),
        }
    }
    panic!("chromedriver did not start: {failures:?}")
}

/// Polls chromedriver's `/status` until it says ready, it exits, or [`LAUNCH_TIMEOUT`] passes.
async fn wait_until_ready(driver: &mut Child, port: u16) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    let status = format!("http://127.0.0.1:{port}/status");
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        if let Some(exit) = driver.try_wait().expect("chromedriver's status") {
            return Err(format!("chromedriver exited ({exit})"));
        }
        match http.get(&status).send().await {
            Ok(response) => match response.json::<Value>().await {
                Ok(body) if body["value"]["ready"] == json!(true) => return Ok(()),
                Ok(body) => last = format!("/status said {body}"),
                Err(error) => last = format!("/status: {error}"),
            },
            Err(error) => last = format!("/status: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("not ready within {LAUNCH_TIMEOUT:?}: {last}"))
}

/// `DELETE /session/<id>` from a destructor, where there is no async runtime to lean on: best
/// effort, bounded, errors ignored (chromedriver answers once Chromium has quit).
fn delete_session_blocking(port: u16, session_id: &str) {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let timeout = Duration::from_secs(5);
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, timeout) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!(
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let _ = stream.read(&mut [0; 256]);
    }
}

/// `<workspace>/target/screenshots/<test>` (emptied the first time this process uses it) and
/// the number of the test's next screenshot.
fn next_screenshot(test_name: &str) -> (PathBuf, u32) {
    static TAKEN: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace");
    let dir = workspace
        .join("target")
        .join("screenshots")
        .join(file_name_part(&test_name.replace("::", "-")));
    let mut taken = TAKEN.lock().expect("screenshot counts");
    let count = taken.entry(test_name.to_owned()).or_insert(0);
    if *count == 0 {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => panic!("emptying {}: {error}", dir.display()),
        }
    }
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
    *count += 1;
    (dir, *count)
}

/// `name` with anything but letters, digits, `-`, `_` and `.` replaced by `_`.
fn file_name_part(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect()
}

fn truncate(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!(
            "{}… ({} characters in all)",
            &text[..end],
            text.chars().count()
        ),
        None => text.to_owned(),
    }
}

/// A WebDriver error, in one line.
fn describe(error: CmdError) -> String {
    match error {
        CmdError::Standard(error) => format!("{}: {}", error.error, error.message),
        other => other.to_string(),
    }
}
