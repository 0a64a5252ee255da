//! A fake GitHub on loopback that answers the way GitHub documents, for sign-in tests.
//!
//! One server plays both hosts: the "web" side (`/login/oauth/authorize`,
//! `/login/oauth/access_token`, github.com) and the REST API (`/user`, `/user/emails`,
//! api.github.com); pass [`FakeGitHub::base_url`] as both `web_url` and `api_url`.
//!
//! What it reproduces (docs.github.com, "Authorizing OAuth apps", "Troubleshooting OAuth
//! app access token request errors", REST "Users" and "Emails"):
//! - the token endpoint answers form-encoded (`access_token=…&scope=…&token_type=bearer`)
//!   unless the request accepts `application/json`;
//! - its errors (`incorrect_client_credentials`, `redirect_uri_mismatch`,
//!   `bad_verification_code`) come back with HTTP 200, in the same format;
//! - codes are one-time, bound to the redirect URI they were issued for, and, when the
//!   authorization request carried a PKCE `code_challenge` (S256 only), to its verifier;
//! - the API wants `Authorization: Bearer <token>` (or `token <token>`) and refuses any
//!   request without a `User-Agent` with 403;
//! - `/user` has a numeric `id`; `/user/emails` is an array of
//!   `{email, primary, verified, visibility}`.
//!
//! Every request is recorded (method, path, headers, body) so tests can check what our
//! client sent. [`FakeOAuth2`] is the same machinery as a plain OAuth 2.0 provider
//! (`/authorize`, `/token` in JSON, `/userinfo` with a scripted body).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::Url;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "Iv1.fake0c1d2e3f4a5b";
pub const CLIENT_SECRET: &str = "fake-github-secret-5f0e9d8c7b6a5f4e3d2c1b0a";

const USER_AGENT_REQUIRED: &str = "Request forbidden by administrative rules. Please make sure \
    your request has a User-Agent header \
    (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). \
    Check https://developer.github.com for other possible causes.";
const TROUBLESHOOTING: &str = "https://docs.github.com/apps/managing-oauth-apps/\
    troubleshooting-oauth-app-access-token-request-errors/";

/// The GitHub account that signs in.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
}

impl Account {
    pub fn new(id: u64, login: &str, name: Option<&str>) -> Self {
        Self {
            id,
            login: login.into(),
            name: name.map(str::to_owned),
            avatar_url: Some(format!("https://avatars.githubusercontent.com/u/{id}?v=4")),
        }
    }
}

/// One entry of `GET /user/emails`.
#[derive(Clone, Debug)]
pub struct Email {
    pub email: String,
    pub primary: bool,
    pub verified: bool,
    /// `public`, `private`, or none (GitHub sends `null` for non-primary addresses).
    pub visibility: Option<String>,
}

impl Email {
    pub fn primary(email: &str, verified: bool) -> Self {
        Self {
            email: email.into(),
            primary: true,
            verified,
            visibility: Some("private".into()),
        }
    }

    pub fn secondary(email: &str, verified: bool) -> Self {
        Self {
            email: email.into(),
            primary: false,
            verified,
            visibility: None,
        }
    }
}

/// A request as it reached the fake.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lowercase names, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// A field of a form-encoded body.
    pub fn form(&self, name: &str) -> Option<String> {
        parse_form(&self.body).remove(name)
    }
}

/// What an authorization request granted: one-time, bound to its redirect URI and PKCE
/// challenge.
struct Grant {
    redirect_uri: String,
    code_challenge: Option<String>,
    scopes: Vec<String>,
}

#[derive(Default)]
struct Inner {
    account: Option<Account>,
    emails: Vec<Email>,
    userinfo: Value,
    codes: HashMap<String, Grant>,
    /// Access token → granted scopes.
    tokens: HashMap<String, Vec<String>>,
    requests: Vec<Recorded>,
}

#[derive(Clone)]
struct Shared {
    client_id: String,
    client_secret: String,
    registered_redirect_uri: String,
    inner: Arc<Mutex<Inner>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &str) {
        let headers = headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        self.lock().requests.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_owned(),
            headers,
            body: body.to_owned(),
        });
    }
}

/// A loopback server over `router`; aborted on drop.
struct Server {
    base_url: String,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

async fn serve(router: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("local address");
    let handle = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("fake provider");
    });
    Server {
        base_url: format!("http://{address}"),
        handle,
    }
}

fn shared(registered_redirect_uri: &str) -> Shared {
    Shared {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        registered_redirect_uri: registered_redirect_uri.into(),
        inner: Arc::default(),
    }
}

fn parse_form(text: &str) -> HashMap<String, String> {
    let url = Url::parse(&format!("http://form.invalid/?{text}")).expect("form body");
    url.query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://form.invalid/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

fn random(len: usize) -> String {
    tributary::auth::oauth::random_token()
        .expect("randomness")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(len)
        .collect()
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn redirect(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, HeaderValue::from_str(location).unwrap())],
    )
        .into_response()
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse(base).expect("redirect URI");
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

/// The authorization endpoint of both fakes: the user approves at once; the browser is
/// sent back with a fresh code (or GitHub's `redirect_uri_mismatch`).
async fn authorize(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared.record(&method, &uri, &headers, "");
    let params = parse_form(uri.query().unwrap_or_default());
    if params.get("client_id") != Some(&shared.client_id) {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let state = params.get("state").cloned().unwrap_or_default();
    let redirect_uri = params
        .get("redirect_uri")
        .cloned()
        .unwrap_or_else(|| shared.registered_redirect_uri.clone());
    if redirect_uri != shared.registered_redirect_uri {
        // GitHub sends the browser to the registered callback with the error.
        return redirect(&with_query(
            &shared.registered_redirect_uri,
            &[
                ("error", "redirect_uri_mismatch"),
                (
                    "error_description",
                    "The redirect_uri MUST match the registered callback URL for this application.",
                ),
                (
                    "error_uri",
                    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch",
                ),
                ("state", &state),
            ],
        ));
    }
    let code_challenge = params.get("code_challenge").cloned();
    if code_challenge.is_some()
        && params.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        // Only S256 is accepted.
        return (
            StatusCode::BAD_REQUEST,
            "code_challenge_method must be S256",
        )
            .into_response();
    }
    let scopes = params
        .get("scope")
        .map(|scope| {
            scope
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let code = random(20);
    shared.lock().codes.insert(
        code.clone(),
        Grant {
            redirect_uri: redirect_uri.clone(),
            code_challenge,
            scopes,
        },
    );
    redirect(&with_query(
        &redirect_uri,
        &[("code", &code), ("state", &state)],
    ))
}

/// Checks a token request; `Ok` is the new access token and its scopes, `Err` an error
/// code with its description.
fn exchange(
    shared: &Shared,
    form: &HashMap<String, String>,
) -> Result<(String, Vec<String>), (&'static str, &'static str)> {
    if form.get("client_id") != Some(&shared.client_id)
        || form.get("client_secret") != Some(&shared.client_secret)
    {
        return Err((
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        ));
    }
    let bad_code = (
        "bad_verification_code",
        "The code passed is incorrect or expired.",
    );
    let mut inner = shared.lock();
    let code = form.get("code").ok_or(bad_code)?;
    let grant = inner.codes.get(code).ok_or(bad_code)?;
    if form
        .get("redirect_uri")
        .is_some_and(|uri| *uri != grant.redirect_uri)
    {
        return Err((
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        ));
    }
    if let Some(challenge) = &grant.code_challenge {
        let verified = form
            .get("code_verifier")
            .is_some_and(|verifier| s256(verifier) == *challenge);
        if !verified {
            return Err(bad_code);
        }
    }
    let grant = inner.codes.remove(code).expect("grant present");
    let token = format!("gho_{}", random(36));
    inner.tokens.insert(token.clone(), grant.scopes.clone());
    Ok((token, grant.scopes))
}

fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/json"))
}

/// `POST /login/oauth/access_token`: HTTP 200 either way, JSON only when asked for.
async fn access_token(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    shared.record(&method, &uri, &headers, &body);
    let form = parse_form(&body);
    let fields: Vec<(&str, String)> = match exchange(&shared, &form) {
        Ok((token, scopes)) => vec![
            ("access_token", token),
            ("scope", scopes.join(",")),
            ("token_type", "bearer".into()),
        ],
        Err((error, description)) => vec![
            ("error", error.into()),
            ("error_description", description.into()),
            (
                "error_uri",
                format!("{TROUBLESHOOTING}#{}", error.replace('_', "-")),
            ),
        ],
    };
    if accepts_json(&headers) {
        let object: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(key, value)| (key.to_owned(), Value::String(value)))
            .collect();
        return Json(Value::Object(object)).into_response();
    }
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        form_encode(&pairs),
    )
        .into_response()
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": status.as_u16().to_string(),
        })),
    )
        .into_response()
}

/// Why the API refuses a request.
enum Refusal {
    NoUserAgent,
    NoCredentials,
    BadCredentials,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NoUserAgent => (
                StatusCode::FORBIDDEN,
                Json(json!({ "message": USER_AGENT_REQUIRED })),
            )
                .into_response(),
            Refusal::NoCredentials => {
                api_error(StatusCode::UNAUTHORIZED, "Requires authentication")
            }
            Refusal::BadCredentials => api_error(StatusCode::UNAUTHORIZED, "Bad credentials"),
        }
    }
}

/// The scopes of the request's token, or the refusal GitHub would send.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Vec<String>, Refusal> {
    if !headers.contains_key(header::USER_AGENT) {
        return Err(Refusal::NoUserAgent);
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or(Refusal::NoCredentials)?;
    let token = authorization
        .split_once(' ')
        .filter(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")
        })
        .map(|(_, token)| token.trim());
    token
        .and_then(|token| shared.lock().tokens.get(token).cloned())
        .ok_or(Refusal::BadCredentials)
}

/// `GET /user`.
async fn user(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared.record(&method, &uri, &headers, "");
    if let Err(refusal) = authenticate(&shared, &headers) {
        return refusal.into_response();
    }
    let inner = shared.lock();
    let Some(account) = inner.account.clone() else {
        return api_error(StatusCode::NOT_FOUND, "Not Found");
    };
    // `email` is the public email: the primary only when its visibility is public.
    let public_email = inner
        .emails
        .iter()
        .find(|e| e.primary && e.visibility.as_deref() == Some("public"))
        .map(|e| e.email.clone());
    Json(json!({
        "login": account.login,
        "id": account.id,
        "node_id": base64::engine::general_purpose::STANDARD.encode(format!("04:User{}", account.id)),
        "avatar_url": account.avatar_url,
        "html_url": format!("https://github.com/{}", account.login),
        "type": "User",
        "site_admin": false,
        "name": account.name,
        "email": public_email,
        "created_at": "2011-01-25T18:44:36Z",
    }))
    .into_response()
}

/// `GET /user/emails`: needs the `user:email` (or `user`) scope; GitHub answers 404 to a
/// token that may not see it.
async fn user_emails(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared.record(&method, &uri, &headers, "");
    let scopes = match authenticate(&shared, &headers) {
        Ok(scopes) => scopes,
        Err(refusal) => return refusal.into_response(),
    };
    if !scopes.iter().any(|s| s == "user:email" || s == "user") {
        return api_error(StatusCode::NOT_FOUND, "Not Found");
    }
    let emails: Vec<Value> = shared
        .lock()
        .emails
        .iter()
        .map(|e| {
            json!({
                "email": e.email,
                "primary": e.primary,
                "verified": e.verified,
                "visibility": e.visibility,
            })
        })
        .collect();
    Json(Value::Array(emails)).into_response()
}

/// Methods both fakes share.
fn requests_to(shared: &Shared, path: &str) -> Vec<Recorded> {
    shared
        .lock()
        .requests
        .iter()
        .filter(|r| r.path == path)
        .cloned()
        .collect()
}

/// Follows an authorization URL at a fake: returns the query of the redirect back to us.
async fn follow_authorization(registered_redirect_uri: &str, authorization_url: &Url) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(authorization_url.clone())
        .send()
        .await
        .expect("authorization request");
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "the fake should redirect back: {}",
        response.text().await.unwrap_or_default()
    );
    let location = Url::parse(
        response.headers()[header::LOCATION]
            .to_str()
            .expect("location"),
    )
    .expect("absolute redirect");
    let mut base = location.clone();
    base.set_query(None);
    assert_eq!(
        base.as_str(),
        registered_redirect_uri,
        "back to the registered URI"
    );
    location.query().unwrap_or_default().to_owned()
}

/// The fake GitHub. Dropping it stops it.
pub struct FakeGitHub {
    /// `http://127.0.0.1:<port>`: both the web and the API base URL.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// The callback URL registered for the OAuth app.
    pub redirect_uri: String,
    shared: Shared,
    _server: Server,
}

impl FakeGitHub {
    /// A GitHub where an OAuth app ([`CLIENT_ID`], [`CLIENT_SECRET`]) is registered with
    /// this callback URL, and `account` with `emails` is the one who signs in.
    pub async fn start(redirect_uri: &str, account: Account, emails: Vec<Email>) -> Self {
        let shared = shared(redirect_uri);
        {
            let mut inner = shared.lock();
            inner.account = Some(account);
            inner.emails = emails;
        }
        let router = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/user", get(user))
            .route("/user/emails", get(user_emails))
            .with_state(shared.clone());
        let server = serve(router).await;
        Self {
            base_url: server.base_url.clone(),
            client_id: shared.client_id.clone(),
            client_secret: shared.client_secret.clone(),
            redirect_uri: redirect_uri.into(),
            shared,
            _server: server,
        }
    }

    pub fn set_account(&self, account: Account) {
        self.shared.lock().account = Some(account);
    }

    pub fn set_emails(&self, emails: Vec<Email>) {
        self.shared.lock().emails = emails;
    }

    /// Lets every issued code expire (GitHub's last 10 minutes).
    pub fn expire_codes(&self) {
        self.shared.lock().codes.clear();
    }

    /// The user approves at GitHub: returns the query GitHub redirects back with.
    pub async fn authorize(&self, authorization_url: &Url) -> String {
        follow_authorization(&self.redirect_uri, authorization_url).await
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    pub fn token_requests(&self) -> Vec<Recorded> {
        requests_to(&self.shared, "/login/oauth/access_token")
    }

    /// Requests to the REST API (`/user`, `/user/emails`).
    pub fn api_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == "/user" || r.path.starts_with("/user/"))
            .collect()
    }
}

/// A plain OAuth 2.0 provider: `/authorize`, `/token` (JSON, RFC 6749 errors as 400),
/// `/userinfo` answering a scripted JSON body to a valid bearer token. Dropping it stops it.
pub struct FakeOAuth2 {
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    shared: Shared,
    _server: Server,
}

/// `POST /token` of the plain provider.
async fn oauth2_token(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    shared.record(&method, &uri, &headers, &body);
    let form = parse_form(&body);
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    match exchange(&shared, &form) {
        Ok((token, scopes)) => Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": scopes.join(" "),
        }))
        .into_response(),
        Err(("incorrect_client_credentials", _)) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response(),
        Err((_, description)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": description})),
        )
            .into_response(),
    }
}

/// `GET /userinfo` of the plain provider.
async fn oauth2_userinfo(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared.record(&method, &uri, &headers, "");
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let inner = shared.lock();
    match token.filter(|token| inner.tokens.contains_key(token)) {
        Some(_) => Json(inner.userinfo.clone()).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        )
            .into_response(),
    }
}

impl FakeOAuth2 {
    pub async fn start(redirect_uri: &str, userinfo: Value) -> Self {
        let shared = shared(redirect_uri);
        shared.lock().userinfo = userinfo;
        let router = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(oauth2_token))
            .route("/userinfo", get(oauth2_userinfo))
            .with_state(shared.clone());
        let server = serve(router).await;
        Self {
            base_url: server.base_url.clone(),
            client_id: shared.client_id.clone(),
            client_secret: shared.client_secret.clone(),
            redirect_uri: redirect_uri.into(),
            shared,
            _server: server,
        }
    }

    pub fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.base_url)).unwrap()
    }

    pub async fn authorize(&self, authorization_url: &Url) -> String {
        follow_authorization(&self.redirect_uri, authorization_url).await
    }

    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        requests_to(&self.shared, path)
    }
}
