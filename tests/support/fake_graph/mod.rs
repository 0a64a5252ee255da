//! A fake Microsoft Graph (v1.0) with the identity platform's token endpoint, on loopback,
//! shared by every Graph source's tests: the SharePoint/OneDrive drive API (`drives.rs`)
//! and Teams channel messages (`teams.rs`) on one server, authorised by the tokens its
//! [`MicrosoftLogin`] issued (app-only for the fixture app, delegated for
//! [`CONNECTED_USER`](crate::microsoft::CONNECTED_USER)).
//!
//! - `POST /login/{tenant}/oauth2/v2.0/token`: see [`crate::microsoft`];
//! - `/v1.0/...`: Graph. Every request needs a live bearer token (401
//!   `InvalidAuthenticationToken` otherwise). Errors are Graph's `{"error": {code, message,
//!   innerError}}`. Faults: 429 or 503 with `Retry-After` for the next n requests, other
//!   statuses for the next n requests. Paged answers carry absolute `@odata.nextLink`s and,
//!   on a delta's last page, an `@odata.deltaLink`.

// Handlers short-circuit with the axum `Response` they answer; boxing it would buy nothing
// in a test fake.
#![allow(clippy::result_large_err)]

pub mod drives;
pub mod teams;

use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::serve::ListenerExt as _;
use axum::Router;
use tributary::connectors::kit::ApiBases;

use crate::microsoft::{self, MicrosoftLogin};
use crate::tokens::TokenBook;

/// A request as it reached Graph.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Without the `/v1.0` prefix, e.g. `/drives/b!x/root/delta`.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The token's principal, when the token was live.
    pub principal: Option<String>,
}

impl Recorded {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Who a request is from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// A user's address, or `app:<client id>` for an app-only token.
    pub principal: String,
}

impl Caller {
    pub fn app_only(&self) -> bool {
        self.principal.starts_with("app:")
    }
}

#[derive(Default)]
struct Control {
    requests: Vec<Recorded>,
    throttle_next: u32,
    throttle_status: u16,
    retry_after_secs: u64,
    fail_next: u32,
    fail_status: u16,
}

#[derive(Clone)]
pub struct Shared {
    pub drives: Arc<Mutex<drives::DrivesWorld>>,
    pub teams: Arc<Mutex<teams::TeamsWorld>>,
    control: Arc<Mutex<Control>>,
    book: TokenBook,
    graph_base: Arc<Mutex<String>>,
}

pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://query.invalid/?{query}"))
        .map(|url| {
            url.query_pairs()
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

impl Shared {
    pub fn drives(&self) -> MutexGuard<'_, drives::DrivesWorld> {
        self.drives.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn teams(&self) -> MutexGuard<'_, teams::TeamsWorld> {
        self.teams.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `http://<addr>/v1.0`: what absolute `@odata.nextLink`/`deltaLink`s start with.
    pub(crate) fn graph_base(&self) -> String {
        self.graph_base
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records the request, plays the scripted faults, then identifies the caller.
    pub(crate) fn gate(
        &self,
        method: &str,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Caller, Response> {
        let principal = self.book.user_of_headers(headers);
        let mut control = self.control();
        control.requests.push(Recorded {
            method: method.to_owned(),
            path: uri
                .path()
                .strip_prefix("/v1.0")
                .unwrap_or(uri.path())
                .to_owned(),
            query: parse_query(uri.query().unwrap_or_default()),
            principal: principal.clone(),
        });
        if control.throttle_next > 0 {
            control.throttle_next -= 1;
            return Err(if control.throttle_status == 503 {
                microsoft::service_unavailable(control.retry_after_secs)
            } else {
                microsoft::too_many_requests(control.retry_after_secs)
            });
        }
        if control.fail_next > 0 {
            control.fail_next -= 1;
            let status = StatusCode::from_u16(control.fail_status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Err(microsoft::graph_error(
                status,
                "generalException",
                "An unspecified error has occurred.",
            ));
        }
        principal
            .map(|principal| Caller { principal })
            .ok_or_else(microsoft::unauthorized)
    }
}

/// `GET /organization`: the caller's tenant (what a connection test can ask for with any
/// token).
async fn organization(
    axum::extract::State(shared): axum::extract::State<Shared>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    use axum::response::IntoResponse as _;
    if let Err(response) = shared.gate("GET", &uri, &headers) {
        return response;
    }
    axum::Json(serde_json::json!({
        "@odata.context": format!("{}/$metadata#organization", shared.graph_base()),
        "value": [{"id": microsoft::TENANT_ID, "displayName": "Contoso (fixture)"}],
    }))
    .into_response()
}

/// The fake's server; stops when dropped.
pub struct FakeGraph {
    address: std::net::SocketAddr,
    shared: Shared,
    login: MicrosoftLogin,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl FakeGraph {
    pub async fn start() -> Self {
        Self::start_with(TokenBook::new()).await
    }

    pub async fn start_with(book: TokenBook) -> Self {
        let shared = Shared {
            drives: Arc::default(),
            teams: Arc::default(),
            control: Arc::default(),
            book: book.clone(),
            graph_base: Arc::default(),
        };
        let login = MicrosoftLogin::new(book);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        *shared.graph_base.lock().expect("base") = format!("http://{address}/v1.0");
        login.bind(&format!("http://{address}/login"));
        let graph = Router::new()
            .route("/organization", axum::routing::get(organization))
            .merge(drives::routes())
            .merge(teams::routes())
            .with_state(shared.clone());
        let router = Router::new()
            .nest("/login", login.router())
            .nest("/v1.0", graph);
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let handle = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("fake Graph");
        });
        Self {
            address,
            shared,
            login,
            handle,
        }
    }

    /// `http://<addr>/v1.0` (`TRIBUTARY_API_URL_GRAPH`).
    pub fn graph_base(&self) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}/v1.0", self.address)).expect("url")
    }

    /// `http://<addr>/login` (`TRIBUTARY_API_URL_MICROSOFT_LOGIN`).
    pub fn login_base(&self) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}/login", self.address)).expect("url")
    }

    /// Both bases, as a sync engine or a `BuildContext` takes them.
    pub fn api_bases(&self) -> ApiBases {
        ApiBases::new()
            .with(
                tributary::connectors::microsoft::GRAPH_API,
                self.graph_base(),
            )
            .with(
                tributary::connectors::microsoft::LOGIN_API,
                self.login_base(),
            )
    }

    /// The token endpoint (grants issued, the connection's refresh token).
    pub fn login(&self) -> &MicrosoftLogin {
        &self.login
    }

    pub fn book(&self) -> &TokenBook {
        &self.shared.book
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.control().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.control().requests.clear();
    }

    /// The next `count` Graph requests answer `status` (429 or 503) with `Retry-After`.
    pub fn throttle_next(&self, count: u32, status: u16, retry_after_secs: u64) {
        let mut control = self.shared.control();
        control.throttle_next = count;
        control.throttle_status = status;
        control.retry_after_secs = retry_after_secs;
    }

    /// The next `count` Graph requests answer `status` (e.g. 500, 502).
    pub fn fail_next(&self, count: u32, status: u16) {
        let mut control = self.shared.control();
        control.fail_next = count;
        control.fail_status = status;
    }
}
