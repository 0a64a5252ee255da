//! A real OpenID provider for the tests: panva's `oidc-provider` (npm), run on loopback by
//! `infra/scripts/oidc/provider.mjs`.
//!
//! Each [`OidcProvider`] is one Node child process with a piped stdin, so it exits with this
//! test process even if a test panics before dropping it. The provider runs the authorization
//! code flow with PKCE S256 required, `iss` in the authorization response (RFC 9207), ID tokens
//! carrying `email`, `email_verified` and `name`, and the development login and consent forms,
//! which [`drive_login`] fills in without a browser. Any login and any password sign in; the
//! account `x` has email `x@example.com`, verified unless `x` starts with `unverified`.
//!
//! Needs `node` on `PATH` and `npm ci --prefix infra/scripts/oidc` (done by `infra/scripts/test`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::{Method, StatusCode, Url};

/// How long a starting provider may take to print its issuer.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// More than any sign-in needs (authorize → login → resume → consent → resume → callback).
const MAX_STEPS: usize = 20;
/// The development login form takes any password.
const PASSWORD: &str = "any-password";

/// One client registered at the provider.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    /// `RS256` or `ES256`: how the provider signs this client's ID tokens.
    pub id_token_alg: String,
}

/// A client for workspace provider connections: the provider issues it a refresh token on
/// every code exchange and rotates it on every refresh (reuse of a rotated one revokes the
/// grant).
#[derive(Clone, Debug)]
pub struct IntegrationClient {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    /// `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
}

/// One request that reached the provider's token or revocation endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// `/token` or `/token/revocation`.
    pub endpoint: String,
    pub grant_type: Option<String>,
    pub status: u16,
    /// The OAuth error code of a refused request.
    pub error: Option<String>,
}

/// A running provider; dropping it stops it.
pub struct OidcProvider {
    /// `http://127.0.0.1:<port>`, the same across [`OidcProvider::restart_with_new_keys`].
    pub issuer: String,
    port: u16,
    clients: Vec<ClientConfig>,
    integration_clients: Vec<IntegrationClient>,
    /// Counts starts; labels each start's key ids (which are random anyway).
    generation: u32,
    child: Child,
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .join("infra/scripts/oidc")
}

fn config_json(
    port: u16,
    clients: &[ClientConfig],
    integration_clients: &[IntegrationClient],
    generation: u32,
) -> String {
    let clients: Vec<_> = clients
        .iter()
        .map(|c| {
            serde_json::json!({
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "redirect_uris": [c.redirect_uri],
                "id_token_signed_response_alg": c.id_token_alg,
            })
        })
        .chain(integration_clients.iter().map(|c| {
            serde_json::json!({
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "redirect_uris": [c.redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": c.token_endpoint_auth_method,
            })
        }))
        .collect();
    serde_json::json!({
        "port": port,
        "key_set": format!("gen{generation}"),
        "clients": clients,
    })
    .to_string()
}

/// Starts `provider.mjs` and waits for its `ISSUER <url>` line.
fn spawn(
    port: u16,
    clients: &[ClientConfig],
    integration_clients: &[IntegrationClient],
    generation: u32,
) -> (Child, String) {
    let dir = provider_dir();
    if !dir.join("node_modules/oidc-provider").is_dir() {
        panic!(
            "oidc-provider is not installed in {}: run infra/scripts/test once, or \
             `npm ci --prefix infra/scripts/oidc`",
            dir.display()
        );
    }
    let mut child = Command::new("node")
        .arg(dir.join("provider.mjs"))
        .arg(config_json(port, clients, integration_clients, generation))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `node` ({e}); is Node.js (>= 20) on PATH?"));

    // stderr: kept for a failed start, otherwise forwarded (minus oidc-provider's fixed
    // development-mode warnings) to the test output.
    let (err_tx, err_rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("oidc-provider WARNING: a quick start development-only") {
                continue;
            }
            if err_tx.send(line.clone()).is_err() {
                eprintln!("[oidc-provider] {line}");
            }
        }
    });

    let (line_tx, line_rx) = mpsc::channel::<String>();
    let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = line_tx.send(line);
        // Keep draining so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });

    let line = line_rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
    let issuer = match line.trim().strip_prefix("ISSUER ") {
        Some(issuer) => issuer.to_string(),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let mut logs = Vec::new();
            while let Ok(l) = err_rx.recv_timeout(Duration::from_millis(200)) {
                logs.push(l);
            }
            panic!(
                "the OpenID provider did not start (printed {line:?}); its stderr:\n{}",
                logs.join("\n")
            );
        }
    };
    // Pass on what came before the issuer line; from now on the stderr thread prints it.
    for line in err_rx.try_iter() {
        eprintln!("[oidc-provider] {line}");
    }
    drop(err_rx);
    (child, issuer)
}

fn port_of(issuer: &str) -> u16 {
    Url::parse(issuer)
        .ok()
        .and_then(|u| u.port())
        .unwrap_or_else(|| panic!("issuer {issuer:?} has no port"))
}

impl OidcProvider {
    /// Starts a provider on a free loopback port.
    ///
    /// Panics with a clear message if `node` or the npm packages are missing (run
    /// `infra/scripts/test` once, or `npm ci --prefix infra/scripts/oidc`).
    pub fn start(clients: Vec<ClientConfig>) -> Self {
        Self::start_with_integrations(clients, Vec::new())
    }

    /// [`OidcProvider::start`] with provider-connection clients too.
    pub fn start_with_integrations(
        clients: Vec<ClientConfig>,
        integration_clients: Vec<IntegrationClient>,
    ) -> Self {
        let (child, issuer) = spawn(0, &clients, &integration_clients, 0);
        OidcProvider {
            port: port_of(&issuer),
            issuer,
            clients,
            integration_clients,
            generation: 0,
            child,
        }
    }

    /// Every request its token and revocation endpoints have served, oldest first.
    pub async fn token_requests(&self) -> Vec<TokenRequest> {
        let url = format!("{}/__test/token-requests", self.issuer);
        let list: Vec<serde_json::Value> = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: not the request list: {e}"));
        let text =
            |value: &serde_json::Value, field: &str| value[field].as_str().map(str::to_owned);
        list.iter()
            .map(|request| TokenRequest {
                endpoint: text(request, "endpoint").unwrap_or_default(),
                grant_type: text(request, "grant_type"),
                status: request["status"].as_u64().unwrap_or_default() as u16,
                error: text(request, "error"),
            })
            .collect()
    }

    /// Stops it and starts it again on the same port (so the same issuer) with new signing
    /// keys and new key ids. Sessions, codes and tokens of the old process are gone.
    pub fn restart_with_new_keys(&mut self) {
        self.stop();
        self.generation += 1;
        let (child, issuer) = spawn(
            self.port,
            &self.clients,
            &self.integration_clients,
            self.generation,
        );
        assert_eq!(
            issuer, self.issuer,
            "the restarted provider must keep its issuer"
        );
        self.child = child;
    }

    /// `<issuer>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Decodes the few entities the provider's templates produce in attribute values.
fn html_unescape(value: &str) -> String {
    value
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the first `attr="..."` after `from` in `html`.
fn attribute_after<'a>(html: &'a str, from: &str, attr: &str) -> Option<&'a str> {
    let start = html.find(from)?;
    let rest = &html[start..];
    let needle = format!("{attr}=\"");
    let value = &rest[rest.find(&needle)? + needle.len()..];
    Some(&value[..value.find('"')?])
}

/// The form of a development interaction page: where it posts, and which prompt it answers.
fn interaction_form(html: &str) -> Option<(String, String)> {
    let action = html_unescape(attribute_after(html, "<form", "action")?);
    let prompt = attribute_after(html, "name=\"prompt\"", "value")?.to_string();
    Some((action, prompt))
}

/// `application/x-www-form-urlencoded` body from pairs.
fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://form.invalid/").expect("static URL");
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_string()
}

/// Drives an authorization-code flow through the provider's development login and consent
/// forms with no browser: starts from `authorization_url` (the full URL our app redirected
/// to), signs in as `account` (any password), confirms consent, and follows the provider's
/// redirects until one leaves the provider's origin; returns that URL (the callback URL with
/// `code`, `state` and `iss` in its query, or with `error` if the provider refused).
///
/// Panics, with the page, on anything else (an error page, an unexpected status).
pub async fn drive_login(authorization_url: &str, account: &str) -> String {
    let start = Url::parse(authorization_url)
        .unwrap_or_else(|e| panic!("bad authorization URL {authorization_url:?}: {e}"));
    let provider_origin = start.origin();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("build reqwest client");

    let mut method = Method::GET;
    let mut url = start;
    let mut body: Option<String> = None;
    for _ in 0..MAX_STEPS {
        let mut request = client.request(method.clone(), url.clone());
        if let Some(body) = body.take() {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
        let status = response.status();

        if status.is_redirection() {
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{status} from {url} without a Location"));
            let next = url
                .join(location)
                .unwrap_or_else(|e| panic!("bad Location {location:?} from {url}: {e}"));
            if next.origin() != provider_origin {
                return next.to_string();
            }
            method = Method::GET;
            url = next;
            continue;
        }

        let page = response.text().await.unwrap_or_default();
        if status != StatusCode::OK {
            panic!("{method} {url} answered {status}:\n{page}");
        }
        let (action, prompt) = interaction_form(&page)
            .unwrap_or_else(|| panic!("{url} is not a login or consent form:\n{page}"));
        let fields: Vec<(&str, &str)> = match prompt.as_str() {
            "login" => vec![
                ("prompt", "login"),
                ("login", account),
                ("password", PASSWORD),
            ],
            "consent" => vec![("prompt", "consent")],
            other => panic!("unexpected interaction prompt {other:?} at {url}:\n{page}"),
        };
        let next = url
            .join(&action)
            .unwrap_or_else(|e| panic!("bad form action {action:?} at {url}: {e}"));
        method = Method::POST;
        body = Some(form_body(&fields));
        url = next;
    }
    panic!("no redirect out of the provider after {MAX_STEPS} steps (last at {url})");
}
