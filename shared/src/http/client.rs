//! [`GuardedClient`]: the only client that may fetch user- or source-supplied URLs. It owns
//! redirect following (reqwest's is off) so that every hop passes the [`NetworkPolicy`] —
//! IP literals and odd spellings included, which the resolver never sees — and drops
//! credentials when a hop changes origin. Names resolve through [`GuardedResolver`] (no
//! DNS rebinding between check and connect), there is no proxy (it would resolve names out
//! of the guard's sight), and the address actually connected to is checked once more.

use std::error::Error as _;
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE,
    LOCATION, PROXY_AUTHORIZATION,
};
use reqwest::{IntoUrl, Method, Request, Response, StatusCode};
use url::Url;

use super::policy::{parse_url, GuardedResolver, NetworkPolicy, SsrfError};

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Per request (each redirect hop is a request).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Redirects followed before [`HttpError::TooManyRedirects`].
    pub max_redirects: usize,
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_redirects: 5,
            user_agent: super::USER_AGENT.to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("blocked: {0}")]
    Blocked(#[from] SsrfError),
    #[error("too many redirects")]
    TooManyRedirects,
    /// The caller's hop check (e.g. the crawl scope) refused this redirect target.
    #[error("a redirect left the allowed scope")]
    OutOfScope(Url),
    #[error("bad redirect: {0}")]
    BadRedirect(String),
    /// Network, timeout, TLS or body errors; the URL is stripped (it may carry a token).
    #[error("{}", error_chain(.0))]
    Transport(reqwest::Error),
}

impl HttpError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Transport(error) if error.is_timeout())
    }

    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Transport(error) if error.is_connect())
    }

    pub fn is_decode(&self) -> bool {
        matches!(self, Self::Transport(error) if error.is_decode())
    }

    pub fn is_builder(&self) -> bool {
        matches!(self, Self::Transport(error) if error.is_builder())
    }

    /// Refused by the network policy or a hop check: not worth retrying, never transient.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Blocked(_) | Self::OutOfScope(_))
    }
}

/// A refusal by the guarded resolver comes back wrapped several layers deep in a
/// connect error: unwrap it so callers see [`HttpError::Blocked`], not a network error.
impl From<reqwest::Error> for HttpError {
    fn from(error: reqwest::Error) -> Self {
        let mut source = error.source();
        while let Some(cause) = source {
            if let Some(refusal) = cause.downcast_ref::<SsrfError>() {
                return Self::Blocked(refusal.clone());
            }
            source = cause.source();
        }
        Self::Transport(error.without_url())
    }
}

/// reqwest's own message is terse ("error sending request"); the causes say what happened.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The guarded outbound client; cheap to clone (one connection pool per cold start).
#[derive(Clone, Debug)]
pub struct GuardedClient {
    inner: reqwest::Client,
    policy: Arc<NetworkPolicy>,
    max_redirects: usize,
}

impl GuardedClient {
    pub fn new(policy: Arc<NetworkPolicy>, options: &ClientOptions) -> Result<Self, HttpError> {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(GuardedResolver::new(Arc::clone(&policy)))
            .no_proxy()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .user_agent(options.user_agent.as_str())
            .build()?;
        Ok(Self {
            inner,
            policy,
            max_redirects: options.max_redirects,
        })
    }

    /// Default options under `policy`.
    pub fn with_policy(policy: NetworkPolicy) -> Result<Self, HttpError> {
        Self::new(Arc::new(policy), &ClientOptions::default())
    }

    pub fn policy(&self) -> &NetworkPolicy {
        &self.policy
    }

    pub fn request(&self, method: Method, url: impl IntoUrl) -> GuardedRequest {
        GuardedRequest {
            client: self.clone(),
            builder: self.inner.request(method, url),
            drop_auth_on_every_hop: false,
            hop_filter: None,
        }
    }

    pub fn get(&self, url: impl IntoUrl) -> GuardedRequest {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: impl IntoUrl) -> GuardedRequest {
        self.request(Method::POST, url)
    }

    pub fn put(&self, url: impl IntoUrl) -> GuardedRequest {
        self.request(Method::PUT, url)
    }

    pub fn patch(&self, url: impl IntoUrl) -> GuardedRequest {
        self.request(Method::PATCH, url)
    }

    pub fn delete(&self, url: impl IntoUrl) -> GuardedRequest {
        self.request(Method::DELETE, url)
    }

    /// The address connected to must pass too: belt and braces behind the resolver and
    /// the per-hop URL check.
    fn check_remote(&self, url: &Url, response: &Response) -> Result<(), HttpError> {
        if let Some(remote) = response.remote_addr() {
            let host = url.host_str().unwrap_or_default();
            self.policy.check_ip(host, remote.ip())?;
        }
        Ok(())
    }
}

/// A response and the redirects followed to get it.
#[derive(Debug)]
pub struct Followed {
    pub response: Response,
    /// The URL that answered.
    pub final_url: Url,
    /// Every redirect target followed, in order.
    pub redirects: Vec<Url>,
}

/// A request to send through a [`GuardedClient`]; mirrors the parts of
/// `reqwest::RequestBuilder` that connectors and sinks use.
pub struct GuardedRequest {
    client: GuardedClient,
    builder: reqwest::RequestBuilder,
    drop_auth_on_every_hop: bool,
    hop_filter: Option<HopFilter>,
}

type HopFilter = Arc<dyn Fn(&Url) -> bool + Send + Sync>;

impl GuardedRequest {
    pub fn header<K, V>(mut self, key: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.builder = self.builder.header(key, value);
        self
    }

    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.builder = self.builder.headers(headers);
        self
    }

    pub fn bearer_auth<T: Display>(mut self, token: T) -> Self {
        self.builder = self.builder.bearer_auth(token);
        self
    }

    pub fn basic_auth<U: Display, P: Display>(mut self, user: U, password: Option<P>) -> Self {
        self.builder = self.builder.basic_auth(user, password);
        self
    }

    pub fn json<T: serde::Serialize + ?Sized>(mut self, json: &T) -> Self {
        self.builder = self.builder.json(json);
        self
    }

    pub fn body<T: Into<reqwest::Body>>(mut self, body: T) -> Self {
        self.builder = self.builder.body(body);
        self
    }

    pub fn form<T: serde::Serialize + ?Sized>(mut self, form: &T) -> Self {
        self.builder = self.builder.form(form);
        self
    }

    /// A multipart body is a stream and cannot be re-sent: a redirect answer to it is
    /// returned as is, never followed.
    pub fn multipart(mut self, form: reqwest::multipart::Form) -> Self {
        self.builder = self.builder.multipart(form);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.builder = self.builder.timeout(timeout);
        self
    }

    /// Credentials go to the first URL only, even on same-origin hops (e.g. a redirect to
    /// a media service that authenticates with a token in the URL).
    pub fn drop_auth_on_redirect(mut self) -> Self {
        self.drop_auth_on_every_hop = true;
        self
    }

    /// Redirect targets must also pass `allow` (on top of the network policy).
    pub fn only_hops(mut self, allow: impl Fn(&Url) -> bool + Send + Sync + 'static) -> Self {
        self.hop_filter = Some(Arc::new(allow));
        self
    }

    /// Sends, following redirects that pass the network policy.
    pub async fn send(self) -> Result<Response, HttpError> {
        Ok(self.send_following(&|_| true).await?.response)
    }

    /// Sends, following up to the client's redirect limit; each target must pass the
    /// network policy and then `allow_hop`. Non-2xx statuses are answers, not errors.
    pub async fn send_following(
        self,
        allow_hop: &(dyn Fn(&Url) -> bool + Send + Sync),
    ) -> Result<Followed, HttpError> {
        let GuardedRequest {
            client,
            builder,
            drop_auth_on_every_hop,
            hop_filter,
        } = self;
        let mut request = builder.build()?;
        client.policy.check_url(request.url())?;
        let mut redirects = Vec::new();
        loop {
            let url = request.url().clone();
            let again = request.try_clone();
            let response = client.inner.execute(request).await?;
            client.check_remote(&url, &response)?;
            let (Some(location), Some(mut next_request)) = (redirect_location(&response)?, again)
            else {
                return Ok(Followed {
                    response,
                    final_url: url,
                    redirects,
                });
            };
            if redirects.len() >= client.max_redirects {
                return Err(HttpError::TooManyRedirects);
            }
            let next = hop_target(&url, &location, &client.policy)?;
            if !allow_hop(&next) || hop_filter.as_ref().is_some_and(|allow| !allow(&next)) {
                return Err(HttpError::OutOfScope(next));
            }
            let strip_auth = drop_auth_on_every_hop || url.origin() != next.origin();
            rewrite_for_hop(
                &mut next_request,
                response.status(),
                next.clone(),
                strip_auth,
            );
            redirects.push(next);
            request = next_request;
        }
    }
}

/// The Location of a redirect answer.
fn redirect_location(response: &Response) -> Result<Option<String>, HttpError> {
    let is_redirect = matches!(
        response.status(),
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    );
    let Some(location) = response.headers().get(LOCATION).filter(|_| is_redirect) else {
        return Ok(None);
    };
    let location = location
        .to_str()
        .map_err(|_| HttpError::BadRedirect("Location is not ASCII".into()))?;
    Ok(Some(location.to_owned()))
}

/// The next hop, judged on the Location *as written*: once the url crate has joined it,
/// `http://2130706433/` is indistinguishable from `http://127.0.0.1/`, so a Location that
/// names a host goes through [`parse_url`] (odd spellings, credentials, scheme), and a
/// path-relative one keeps the current host and is checked with the policy.
pub(crate) fn hop_target(
    current: &Url,
    location: &str,
    policy: &NetworkPolicy,
) -> Result<Url, SsrfError> {
    // What the URL standard strips before parsing, so the prefix tests below see what the
    // parser will.
    let cleaned: String = location
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    if has_scheme(&cleaned) {
        return parse_url(&cleaned, policy);
    }
    let mut chars = cleaned.chars();
    let slash = |c: Option<char>| matches!(c, Some('/' | '\\'));
    if slash(chars.next()) && slash(chars.next()) {
        return parse_url(&format!("{}:{cleaned}", current.scheme()), policy);
    }
    let next = current
        .join(&cleaned)
        .map_err(|error| SsrfError::Invalid(format!("redirect: {error}")))?;
    policy.check_url(&next)?;
    Ok(next)
}

/// `scheme:` before any `/`, `?` or `#`.
fn has_scheme(location: &str) -> bool {
    let Some(colon) = location.find(':') else {
        return false;
    };
    let scheme = &location[..colon];
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// What a browser does: 303 (and 301/302 after a POST) turn into a body-less GET, 307/308
/// repeat the request; credentials and cookies never follow a change of origin.
fn rewrite_for_hop(request: &mut Request, status: StatusCode, next: Url, strip_auth: bool) {
    let becomes_get = match status {
        StatusCode::SEE_OTHER => request.method() != Method::HEAD,
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => request.method() == Method::POST,
        _ => false,
    };
    if becomes_get {
        *request.method_mut() = Method::GET;
        *request.body_mut() = None;
        request.headers_mut().remove(CONTENT_TYPE);
        request.headers_mut().remove(CONTENT_LENGTH);
    }
    if strip_auth {
        for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
            request.headers_mut().remove(name);
        }
    }
    *request.url_mut() = next;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use axum::extract::Request as AxumRequest;
    use axum::http::header;
    use axum::middleware::{self, Next};
    use axum::response::IntoResponse;
    use axum::routing::{any, get};
    use axum::Router;
    use tokio::net::TcpListener;

    fn url(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    fn loopback_only() -> NetworkPolicy {
        NetworkPolicy::with_allowed_networks(vec!["127.0.0.1/32".parse().unwrap()])
    }

    #[test]
    fn hop_targets_are_judged_as_written() {
        let policy = loopback_only();
        let current = url("http://127.0.0.1:8000/a/b");
        for refused in [
            "http://2130706433:8000/",
            "http://0x7f.0.0.1:8000/",
            "http://127.1:8000/",
            "//2130706433:8000/",
            "\\\\2130706433:8000/",
            "/\t/2130706433:8000/",
            "http://127.0.0.2:8000/",
            "http://[::ffff:127.0.0.2]:8000/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://user@127.0.0.1:8000/",
            "file:///etc/passwd",
            "gopher://127.0.0.1:8000/",
        ] {
            assert!(
                hop_target(&current, refused, &policy).is_err(),
                "{refused:?} was followed"
            );
        }
        assert_eq!(
            hop_target(&current, "c?d=1", &policy).unwrap(),
            url("http://127.0.0.1:8000/a/c?d=1")
        );
        assert_eq!(
            hop_target(&current, "/x", &policy).unwrap(),
            url("http://127.0.0.1:8000/x")
        );
        assert_eq!(
            hop_target(&current, "http://127.0.0.1:9000/y", &policy).unwrap(),
            url("http://127.0.0.1:9000/y")
        );
    }

    /// (method, path, Authorization) of one request.
    type Hit = (String, String, Option<String>);

    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<Hit>>>);

    impl Seen {
        fn all(&self) -> Vec<Hit> {
            self.0.lock().unwrap().clone()
        }
    }

    /// Serves `router` on `ip`, recording (method, path, Authorization) of each request.
    async fn serve(ip: &str, router: Router) -> (Url, Seen) {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let base = url(&format!("http://{}/", listener.local_addr().unwrap()));
        let seen = Seen::default();
        let record = seen.clone();
        let router = router.layer(middleware::from_fn(
            move |request: AxumRequest, next: Next| {
                let auth = request
                    .headers()
                    .get(header::AUTHORIZATION)
                    .map(|v| v.to_str().unwrap().to_owned());
                record.0.lock().unwrap().push((
                    request.method().to_string(),
                    request.uri().path().to_owned(),
                    auth,
                ));
                next.run(request)
            },
        ));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (base, seen)
    }

    fn redirect_to(status: StatusCode, target: String) -> Router {
        Router::new()
            .route(
                "/go",
                any(move || {
                    let target = target.clone();
                    async move { (status, [(header::LOCATION, target)]).into_response() }
                }),
            )
            .route("/here", any(|| async { "arrived" }))
    }

    #[tokio::test]
    async fn redirects_to_refused_addresses_are_never_requested() {
        let canary_hits = Arc::new(AtomicUsize::new(0));
        let hits = Arc::clone(&canary_hits);
        let canary = Router::new().route(
            "/",
            get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                async { "canary" }
            }),
        );
        let (canary_base, _) = serve("127.0.0.2", canary).await;
        let port = canary_base.port().unwrap();
        let client = GuardedClient::with_policy(loopback_only()).unwrap();
        for target in [
            canary_base.to_string(),
            format!("http://[::ffff:127.0.0.2]:{port}/"),
            format!("http://2130706434:{port}/"),
            format!("http://0x7f000002:{port}/"),
        ] {
            let (origin, _) =
                serve("127.0.0.1", redirect_to(StatusCode::FOUND, target.clone())).await;
            let err = client
                .get(origin.join("/go").unwrap())
                .send()
                .await
                .unwrap_err();
            assert!(matches!(err, HttpError::Blocked(_)), "{target}: {err}");
        }
        assert_eq!(canary_hits.load(Ordering::SeqCst), 0);
        // and the canary is reachable only because the policy decides, not by luck
        let open = GuardedClient::with_policy(NetworkPolicy::allow_private()).unwrap();
        assert_eq!(
            open.get(canary_base)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "canary"
        );
    }

    #[tokio::test]
    async fn credentials_follow_same_origin_hops_only() {
        let (other, other_seen) =
            serve("127.0.0.1", redirect_to(StatusCode::FOUND, String::new())).await;
        let (origin, seen) = serve(
            "127.0.0.1",
            Router::new()
                .route(
                    "/same",
                    get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/here")]) }),
                )
                .route("/here", get(|| async { "arrived" }))
                .route(
                    "/cross",
                    get(move || {
                        let target = other.join("/here").unwrap().to_string();
                        async move { (StatusCode::FOUND, [(header::LOCATION, target)]) }
                    }),
                ),
        )
        .await;
        let client = GuardedClient::with_policy(loopback_only()).unwrap();
        for path in ["/same", "/cross"] {
            let followed = client
                .get(origin.join(path).unwrap())
                .bearer_auth("s3cret")
                .send_following(&|_| true)
                .await
                .unwrap();
            assert_eq!(followed.redirects.len(), 1);
            assert_eq!(followed.response.text().await.unwrap(), "arrived");
        }
        let with_token = |seen: &Seen| {
            seen.all()
                .into_iter()
                .filter(|(_, _, auth)| auth.is_some())
                .map(|(_, path, _)| path)
                .collect::<Vec<_>>()
        };
        assert_eq!(with_token(&seen), vec!["/same", "/here", "/cross"]);
        assert_eq!(other_seen.all().len(), 1);
        assert!(
            with_token(&other_seen).is_empty(),
            "the token changed origin"
        );

        client
            .get(origin.join("/same").unwrap())
            .bearer_auth("s3cret")
            .drop_auth_on_redirect()
            .send()
            .await
            .unwrap();
        let last = seen.all().pop().unwrap();
        assert_eq!((last.1.as_str(), last.2), ("/here", None));
    }

    #[tokio::test]
    async fn see_other_turns_a_post_into_a_get_and_307_repeats_it() {
        let (origin, seen) = serve(
            "127.0.0.1",
            Router::new()
                .route(
                    "/303",
                    any(|| async { (StatusCode::SEE_OTHER, [(header::LOCATION, "/here")]) }),
                )
                .route(
                    "/307",
                    any(|| async {
                        (
                            StatusCode::TEMPORARY_REDIRECT,
                            [(header::LOCATION, "/here")],
                        )
                    }),
                )
                .route("/here", any(|| async { "arrived" })),
        )
        .await;
        let client = GuardedClient::with_policy(loopback_only()).unwrap();
        for path in ["/303", "/307"] {
            client
                .post(origin.join(path).unwrap())
                .body("x")
                .send()
                .await
                .unwrap();
        }
        let methods: Vec<_> = seen
            .all()
            .into_iter()
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect();
        assert_eq!(
            methods,
            vec!["POST /303", "GET /here", "POST /307", "POST /here"]
        );
    }

    #[tokio::test]
    async fn ip_literal_start_urls_are_checked() {
        let client = GuardedClient::with_policy(NetworkPolicy::strict()).unwrap();
        let err = client.get("http://127.0.0.1:9/").send().await.unwrap_err();
        assert!(matches!(err, HttpError::Blocked(_)), "{err}");
        assert!(err.is_refusal());
    }
}
