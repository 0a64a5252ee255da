//! The page fetcher, built on the [`GuardedClient`]: one GET whose redirects the client
//! follows hop by hop, each hop passing the SSRF policy and then the crawl scope, bounded
//! in time and size.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Response;
use url::Url;

use super::ssrf::{NetworkPolicy, SsrfError};
use crate::http::{error_chain, ClientOptions, GuardedClient, HttpError};

const ACCEPT_PAGES: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[derive(Clone, Debug)]
pub struct FetchLimits {
    /// Largest body read; anything bigger fails with [`FetchError::TooLarge`].
    pub max_bytes: usize,
    /// For the whole fetch, redirects and body included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_redirects: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(5),
            max_redirects: 5,
        }
    }
}

#[derive(Debug)]
pub struct Fetched {
    /// The URL that answered, after redirects.
    pub final_url: Url,
    pub status: u16,
    pub content_type: Option<String>,
    /// Empty, never read, when [`Fetcher::get_if`]'s predicate turned the content type down.
    pub body: Vec<u8>,
    /// Every redirect target followed, in order.
    pub redirects: Vec<Url>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("blocked: {0}")]
    Blocked(#[from] SsrfError),
    #[error("redirect to {0} leaves the crawl scope")]
    OutOfScope(Url),
    #[error("too many redirects")]
    TooManyRedirects,
    #[error("response body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("timed out")]
    Timeout,
    #[error("network error: {0}")]
    Network(String),
    #[error("bad redirect: {0}")]
    BadRedirect(String),
}

impl FetchError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout | Self::Network(_))
    }
}

impl From<HttpError> for FetchError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Blocked(refusal) => Self::Blocked(refusal),
            HttpError::OutOfScope(url) => Self::OutOfScope(url),
            HttpError::TooManyRedirects => Self::TooManyRedirects,
            HttpError::BadRedirect(reason) => Self::BadRedirect(reason),
            HttpError::Transport(error) if error.is_timeout() => Self::Timeout,
            HttpError::Transport(error) => Self::Network(error_chain(&error)),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Fetcher {
    client: GuardedClient,
    limits: FetchLimits,
}

impl Fetcher {
    /// A fetcher with its own guarded client under `policy`, timed by `limits`.
    pub fn new(
        policy: Arc<NetworkPolicy>,
        limits: FetchLimits,
        user_agent: &str,
    ) -> Result<Self, FetchError> {
        let options = ClientOptions {
            timeout: limits.timeout,
            connect_timeout: limits.connect_timeout,
            max_redirects: limits.max_redirects,
            user_agent: user_agent.to_owned(),
        };
        let client = GuardedClient::new(policy, &options)?;
        Ok(Self { client, limits })
    }

    pub fn policy(&self) -> &NetworkPolicy {
        self.client.policy()
    }

    /// The guarded client, for the other outbound calls to user-supplied URLs (sources,
    /// sinks).
    pub fn client(&self) -> &GuardedClient {
        &self.client
    }

    pub fn limits(&self) -> &FetchLimits {
        &self.limits
    }

    /// GETs `url`, following up to `max_redirects` redirects. Each redirect target must pass
    /// the SSRF policy and then `allow_hop` (the crawl scope). Non-2xx statuses are not
    /// errors: they come back as [`Fetched`] with that status.
    pub async fn get(
        &self,
        url: &Url,
        allow_hop: &(dyn Fn(&Url) -> bool + Send + Sync),
    ) -> Result<Fetched, FetchError> {
        self.get_if(url, allow_hop, &|_| true).await
    }

    /// [`Fetcher::get`], reading the body only when `wants_body` accepts the final
    /// response's `Content-Type` (`None` when it has none): a crawl skips what is not HTML,
    /// and an image or archive would otherwise be downloaded (up to `max_bytes`) first.
    pub async fn get_if(
        &self,
        url: &Url,
        allow_hop: &(dyn Fn(&Url) -> bool + Send + Sync),
        wants_body: &(dyn Fn(Option<&str>) -> bool + Send + Sync),
    ) -> Result<Fetched, FetchError> {
        // The client's timeout is per request; this one bounds the whole chain and body.
        tokio::time::timeout(self.limits.timeout, self.follow(url, allow_hop, wants_body))
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }

    async fn follow(
        &self,
        start: &Url,
        allow_hop: &(dyn Fn(&Url) -> bool + Send + Sync),
        wants_body: &(dyn Fn(Option<&str>) -> bool + Send + Sync),
    ) -> Result<Fetched, FetchError> {
        let followed = self
            .client
            .get(start.clone())
            .header(ACCEPT, ACCEPT_PAGES)
            .send_following(allow_hop)
            .await?;
        self.finish(
            followed.final_url,
            followed.response,
            followed.redirects,
            wants_body,
        )
        .await
    }

    async fn finish(
        &self,
        final_url: Url,
        response: Response,
        redirects: Vec<Url>,
        wants_body: &(dyn Fn(Option<&str>) -> bool + Send + Sync),
    ) -> Result<Fetched, FetchError> {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        // Dropping the response unread closes its connection: cheaper than draining a body
        // nobody reads.
        let body = if wants_body(content_type.as_deref()) {
            self.read_body(response).await?
        } else {
            Vec::new()
        };
        Ok(Fetched {
            final_url,
            status,
            content_type,
            body,
            redirects,
        })
    }

    /// Reads at most `max_bytes`, refusing a declared oversize body without reading it and
    /// stopping an undeclared one as soon as it goes over.
    async fn read_body(&self, mut response: Response) -> Result<Vec<u8>, FetchError> {
        let limit = self.limits.max_bytes;
        let declared = response.content_length();
        if declared.is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX)) {
            return Err(FetchError::TooLarge { limit });
        }
        let capacity = declared.map_or(0, |len| usize::try_from(len).unwrap_or(0));
        let mut body = Vec::with_capacity(capacity);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| FetchError::from(HttpError::from(error)))?
        {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::extract::Request;
    use axum::http::{header, StatusCode};
    use axum::middleware::{self, Next};
    use axum::response::Redirect;
    use axum::routing::get;
    use axum::Router;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const BIG: usize = 2048;

    struct TestServer {
        base: Url,
        hits: Arc<AtomicUsize>,
    }

    impl TestServer {
        fn url(&self, path: &str) -> Url {
            self.base.join(path).unwrap()
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    /// The routes every fetch test uses; `base` lets redirects point at absolute URLs.
    fn app(base: &Url) -> Router {
        let absolute_page = base.join("/page").unwrap().to_string();
        let outside = base.join("/outside").unwrap().to_string();
        Router::new()
            .route(
                "/page",
                get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<h1>hi</h1>") }),
            )
            .route(
                "/missing",
                get(|| async { (StatusCode::NOT_FOUND, "nope") }),
            )
            // a chain exercising 301/302/308 and relative, path-relative and absolute Locations
            .route(
                "/a",
                get(|| async { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/b")]) }),
            )
            .route(
                "/b",
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, "c")]) }),
            )
            .route(
                "/c",
                get(move || async move { Redirect::permanent(&absolute_page) }),
            )
            .route(
                "/leave",
                get(move || async move { Redirect::temporary(&outside) }),
            )
            .route(
                "/metadata",
                get(|| async { Redirect::to("http://169.254.169.254/latest/meta-data/") }),
            )
            .route("/loop", get(|| async { Redirect::to("/loop") }))
            .route("/big", get(|| async { vec![b'x'; BIG] }))
            .route("/hang", get(std::future::pending::<&'static str>))
    }

    /// Serves `app` on 127.0.0.1, counting the requests that reach it.
    async fn serve() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = base_url(listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let router = app(&base).layer(middleware::from_fn(move |request: Request, next: Next| {
            counter.fetch_add(1, Ordering::SeqCst);
            next.run(request)
        }));
        // The listener is bound already, so requests queue until the server task runs.
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        TestServer { base, hits }
    }

    fn base_url(addr: SocketAddr) -> Url {
        Url::parse(&format!("http://{addr}/")).unwrap()
    }

    /// Serves one raw HTTP/1.1 connection with `respond`, for responses axum will not
    /// produce (a body without Content-Length, a body that stalls).
    async fn serve_raw<F, Fut>(respond: F) -> Url
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = std::io::Result<()>> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = base_url(listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            read_request_head(&mut stream).await?;
            respond(stream).await
        });
        base
    }

    async fn read_request_head(stream: &mut TcpStream) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok(())
    }

    fn fetcher(policy: NetworkPolicy, limits: FetchLimits) -> Fetcher {
        Fetcher::new(Arc::new(policy), limits, "tributary-test").unwrap()
    }

    fn loopback_fetcher() -> Fetcher {
        fetcher(NetworkPolicy::allow_private(), FetchLimits::default())
    }

    fn small_limits(max_bytes: usize) -> FetchLimits {
        FetchLimits {
            max_bytes,
            ..FetchLimits::default()
        }
    }

    fn anywhere(_: &Url) -> bool {
        true
    }

    #[tokio::test]
    async fn fetches_a_page() {
        let server = serve().await;
        let page = loopback_fetcher()
            .get(&server.url("/page"), &anywhere)
            .await
            .unwrap();
        assert_eq!(page.status, 200);
        assert_eq!(page.body, b"<h1>hi</h1>");
        assert_eq!(page.content_type.as_deref(), Some("text/html"));
        assert_eq!(page.final_url, server.url("/page"));
        assert!(page.redirects.is_empty());
    }

    #[tokio::test]
    async fn error_statuses_are_results_not_errors() {
        let server = serve().await;
        let page = loopback_fetcher()
            .get(&server.url("/missing"), &anywhere)
            .await
            .unwrap();
        assert_eq!(page.status, 404);
        assert_eq!(page.body, b"nope");
    }

    #[tokio::test]
    async fn follows_and_records_redirects() {
        let server = serve().await;
        let page = loopback_fetcher()
            .get(&server.url("/a"), &anywhere)
            .await
            .unwrap();
        assert_eq!(page.status, 200);
        assert_eq!(page.final_url, server.url("/page"));
        assert_eq!(
            page.redirects,
            vec![server.url("/b"), server.url("/c"), server.url("/page")]
        );
        assert_eq!(server.hits(), 4);
    }

    #[tokio::test]
    async fn redirect_out_of_scope_is_refused() {
        let server = serve().await;
        let in_scope = |url: &Url| url.path() != "/outside";
        let err = loopback_fetcher()
            .get(&server.url("/leave"), &in_scope)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, FetchError::OutOfScope(url) if *url == server.url("/outside")),
            "{err}"
        );
        assert_eq!(
            server.hits(),
            1,
            "the out-of-scope target must not be requested"
        );
    }

    #[tokio::test]
    async fn redirect_to_metadata_is_blocked() {
        let server = serve().await;
        let policy = NetworkPolicy::with_allowed_networks(vec!["127.0.0.0/8".parse().unwrap()]);
        let err = fetcher(policy, FetchLimits::default())
            .get(&server.url("/metadata"), &anywhere)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, FetchError::Blocked(SsrfError::ForbiddenAddress { ip, .. }) if ip.to_string() == "169.254.169.254"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn strict_policy_never_reaches_loopback() {
        let server = serve().await;
        let strict = fetcher(NetworkPolicy::strict(), FetchLimits::default());
        // an IP literal is refused by check_url...
        let err = strict
            .get(&server.url("/page"), &anywhere)
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::Blocked(SsrfError::ForbiddenAddress { .. })),
            "{err}"
        );
        // ...and a name by the guarded resolver
        let mut by_name = server.url("/page");
        by_name.set_host(Some("localhost")).unwrap();
        let err = strict.get(&by_name, &anywhere).await.unwrap_err();
        assert!(
            matches!(err, FetchError::Blocked(SsrfError::ForbiddenAddress { .. })),
            "{err}"
        );
        assert!(!err.is_transient());
        assert_eq!(server.hits(), 0);
    }

    #[tokio::test]
    async fn declared_oversize_body_is_refused() {
        let server = serve().await;
        let err = fetcher(NetworkPolicy::allow_private(), small_limits(BIG - 1))
            .get(&server.url("/big"), &anywhere)
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit } if limit == BIG - 1),
            "{err}"
        );
    }

    #[tokio::test]
    async fn body_of_exactly_the_limit_is_fine() {
        let server = serve().await;
        let page = fetcher(NetworkPolicy::allow_private(), small_limits(BIG))
            .get(&server.url("/big"), &anywhere)
            .await
            .unwrap();
        assert_eq!(page.body.len(), BIG);
    }

    #[tokio::test]
    async fn undeclared_oversize_body_is_cut_off() {
        // A chunked body without end: only the byte limit stops the read.
        let url = serve_raw(|mut stream| async move {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
            stream.write_all(head.as_bytes()).await?;
            let chunk = format!("400\r\n{}\r\n", "x".repeat(0x400));
            loop {
                stream.write_all(chunk.as_bytes()).await?;
            }
        })
        .await;
        let err = fetcher(NetworkPolicy::allow_private(), small_limits(10_000))
            .get(&url, &anywhere)
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit: 10_000 }),
            "{err}"
        );
    }

    fn quick_timeout() -> FetchLimits {
        FetchLimits {
            timeout: Duration::from_millis(300),
            connect_timeout: Duration::from_millis(300),
            ..FetchLimits::default()
        }
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let server = serve().await;
        let err = fetcher(NetworkPolicy::allow_private(), quick_timeout())
            .get(&server.url("/hang"), &anywhere)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Timeout), "{err}");
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn stalled_body_times_out() {
        let url = serve_raw(|mut stream| async move {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten..")
                .await?;
            std::future::pending().await
        })
        .await;
        let err = fetcher(NetworkPolicy::allow_private(), quick_timeout())
            .get(&url, &anywhere)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Timeout), "{err}");
    }

    #[tokio::test]
    async fn redirect_loop_is_cut_off() {
        let server = serve().await;
        let err = loopback_fetcher()
            .get(&server.url("/loop"), &anywhere)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::TooManyRedirects), "{err}");
        // the first request plus max_redirects followed hops
        assert_eq!(server.hits(), 1 + FetchLimits::default().max_redirects);
    }

    #[tokio::test]
    async fn a_refused_content_type_is_not_read() {
        // Headers, then a body that never comes: reading it could only time out.
        let url = serve_raw(|mut stream| async move {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 1000000\r\n\r\n")
                .await?;
            std::future::pending().await
        })
        .await;
        let refuse_images = |content_type: Option<&str>| {
            content_type.is_none_or(|content_type| !content_type.starts_with("image/"))
        };
        let fetched = fetcher(NetworkPolicy::allow_private(), quick_timeout())
            .get_if(&url, &anywhere, &refuse_images)
            .await
            .unwrap();
        assert_eq!(fetched.status, 200);
        assert_eq!(fetched.content_type.as_deref(), Some("image/png"));
        assert!(fetched.body.is_empty());
    }

    #[tokio::test]
    async fn an_accepted_content_type_is_read() {
        let server = serve().await;
        let page = loopback_fetcher()
            .get_if(&server.url("/page"), &anywhere, &|content_type| {
                content_type == Some("text/html")
            })
            .await
            .unwrap();
        assert_eq!(page.body, b"<h1>hi</h1>");
    }

    #[test]
    fn only_timeouts_and_network_errors_are_transient() {
        assert!(FetchError::Network("reset".into()).is_transient());
        assert!(!FetchError::TooManyRedirects.is_transient());
        assert!(!FetchError::TooLarge { limit: 1 }.is_transient());
        assert!(!FetchError::BadRedirect("x".into()).is_transient());
    }

    #[test]
    fn get_can_run_on_spawned_tasks() {
        fn assert_send<T: Send>(_: &T) {}
        let fetcher = loopback_fetcher();
        let url = Url::parse("http://example.com/").unwrap();
        assert_send(&fetcher.get(&url, &anywhere));
    }
}
