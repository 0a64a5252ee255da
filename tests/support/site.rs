//! A generated website on loopback for crawl tests: pages, redirects, robots.txt and
//! sitemaps given as data, and a log of every request it answered (path and time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::Response;
use axum::Router;

#[derive(Clone, Debug)]
pub enum Resource {
    /// 200 with this content type and body.
    Content {
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// A redirect with this status to this `Location`.
    Redirect { status: u16, location: String },
    /// Any other status with a small HTML body.
    Status(u16),
    /// Answers only after this long (a slow site).
    Slow(Duration, Box<Resource>),
    /// Never answers.
    Hang,
}

impl Resource {
    pub fn html(body: impl Into<String>) -> Self {
        Resource::Content {
            content_type: "text/html; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }

    pub fn text(content_type: &'static str, body: impl Into<String>) -> Self {
        Resource::Content {
            content_type,
            body: body.into().into_bytes(),
        }
    }

    /// An HTML page titled `title` with links to `links` (hrefs as written).
    pub fn page(title: &str, links: &[&str]) -> Self {
        let anchors: String = links
            .iter()
            .map(|href| format!("<li><a href=\"{href}\">{href}</a></li>"))
            .collect();
        Resource::html(format!(
            "<!doctype html><html lang=\"en\"><head><title>{title}</title>\
             <meta name=\"description\" content=\"About {title}\"></head>\
             <body><nav><a href=\"#top\">Top</a></nav><main><h1>{title}</h1>\
             <p>Text of {title}.</p><ul>{anchors}</ul></main><footer>Footer</footer></body></html>"
        ))
    }

    pub fn redirect(location: impl Into<String>) -> Self {
        Resource::Redirect {
            status: 301,
            location: location.into(),
        }
    }
}

#[derive(Default)]
struct Log {
    hits: Vec<(String, Instant)>,
}

struct SiteState {
    resources: HashMap<String, Resource>,
    log: Mutex<Log>,
}

pub struct TestSite {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: Arc<SiteState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestSite {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(State(state): State<Arc<SiteState>>, uri: Uri) -> Response {
    let target = uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned());
    state
        .log
        .lock()
        .expect("site log")
        .hits
        .push((target.clone(), Instant::now()));
    let resource = state
        .resources
        .get(&target)
        .or_else(|| state.resources.get(uri.path()))
        .cloned()
        .unwrap_or(Resource::Status(404));
    respond(resource).await
}

async fn respond(resource: Resource) -> Response {
    let mut resource = resource;
    loop {
        match resource {
            Resource::Slow(delay, inner) => {
                tokio::time::sleep(delay).await;
                resource = *inner;
            }
            Resource::Hang => std::future::pending::<()>().await,
            Resource::Content { content_type, body } => {
                return Response::builder()
                    .header(header::CONTENT_TYPE, content_type)
                    .body(Body::from(body))
                    .expect("response");
            }
            Resource::Redirect { status, location } => {
                return Response::builder()
                    .status(status)
                    .header(header::LOCATION, location)
                    .body(Body::empty())
                    .expect("response");
            }
            Resource::Status(status) => {
                return Response::builder()
                    .status(StatusCode::from_u16(status).expect("status"))
                    .header(header::CONTENT_TYPE, "text/html")
                    .body(Body::from(format!(
                        "<html><body>status {status}</body></html>"
                    )))
                    .expect("response");
            }
        }
    }
}

impl TestSite {
    /// Serves `resources` (keyed by path, or path and query) on a free loopback port.
    /// `{base}` in a body or location is replaced by the site's own base URL.
    pub async fn start(resources: Vec<(&str, Resource)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let resources = resources
            .into_iter()
            .map(|(path, resource)| (path.to_owned(), with_base(resource, &base)))
            .collect();
        let state = Arc::new(SiteState {
            resources,
            log: Mutex::new(Log::default()),
        });
        let router = Router::new().fallback(answer).with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("test site stopped");
        });
        Self {
            base,
            state,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every path requested so far, in order.
    pub fn requested(&self) -> Vec<String> {
        self.state
            .log
            .lock()
            .expect("site log")
            .hits
            .iter()
            .map(|(path, _)| path.clone())
            .collect()
    }

    /// When each request for a path not in `except` arrived, in order.
    pub fn request_times(&self, except: &[&str]) -> Vec<Instant> {
        self.state
            .log
            .lock()
            .expect("site log")
            .hits
            .iter()
            .filter(|(path, _)| !except.contains(&path.as_str()))
            .map(|(_, at)| *at)
            .collect()
    }

    pub fn count(&self, path: &str) -> usize {
        self.requested().iter().filter(|p| *p == path).count()
    }
}

fn with_base(resource: Resource, base: &str) -> Resource {
    match resource {
        Resource::Content { content_type, body } => Resource::Content {
            content_type,
            body: String::from_utf8(body.clone())
                .map(|text| text.replace("{base}", base).into_bytes())
                .unwrap_or(body),
        },
        Resource::Redirect { status, location } => Resource::Redirect {
            status,
            location: location.replace("{base}", base),
        },
        Resource::Slow(delay, inner) => Resource::Slow(delay, Box::new(with_base(*inner, base))),
        other => other,
    }
}
