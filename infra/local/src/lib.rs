//! `tributary-local`: every HTTP function's router on one port, over the embedded store,
//! with the token check applied as middleware on exactly the routes API Gateway protects,
//! and crawl workers consuming the embedded queue.

pub mod allocator;
pub mod crawl;
pub mod scaffold;
pub mod sync;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::middleware::from_fn_with_state;
use axum::Router;
use tributary::auth::oauth::SignIn;
use tributary::auth::session::MIN_KEY_BYTES;
use tributary::auth::SessionKeys;
use tributary::config::{self, ConfigError};
use tributary::crawl::engine::CrawlEngine;
use tributary::services::open_embedded;
use tributary::sync::SyncEngine;
use tributary::web::{finish, require_token};
use tributary::Services;

pub const DEV_KEY_FILE: &str = "dev-signing-key";

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    SignIn(#[from] tributary::auth::oauth::OAuthConfigError),
    #[error("cannot generate a signing key: {0}")]
    Random(String),
    #[error("crawl: {0}")]
    Crawl(String),
    #[error(transparent)]
    Mail(#[from] tributary::mail::MailError),
    #[error(transparent)]
    Integrations(#[from] integration_login::SetupError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LocalError + '_ {
    move |source| LocalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// All HTTP functions, protected routes behind the same check `token-check` makes.
/// `count` tasks that call `work` forever (the local stand-in for a Lambda event source),
/// pausing a moment after a queue error instead of spinning; aborted with their handles.
pub fn spawn_pollers<F, Fut>(
    count: usize,
    label: &'static str,
    work: F,
) -> Vec<tokio::task::JoinHandle<()>>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<bool, String>> + Send,
{
    (0..count.max(1))
        .map(|_| {
            let work = work.clone();
            tokio::spawn(async move {
                loop {
                    if let Err(error) = work().await {
                        tracing::error!(%error, worker = label, "queue unavailable");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            })
        })
        .collect()
}

/// The engines behind the crawl, connector and provider-connection routes.
#[derive(Clone)]
pub struct Engines {
    pub crawls: Arc<CrawlEngine>,
    pub syncs: Arc<SyncEngine>,
    pub integrations: integration_login::IntegrationState,
}

pub fn app(services: Services, sign_in: SignIn, engines: Engines) -> Router {
    let Engines {
        crawls,
        syncs,
        integrations,
    } = engines;
    let protected = auth::protected_routes(services.clone())
        .merge(api_tokens::protected_routes(services.clone()))
        .merge(scrape::protected_routes(crawls.clone()))
        .merge(crawl_start::protected_routes(crawls.clone()))
        .merge(crawl_status::protected_routes(crawls))
        .merge(connectors_api::protected_routes(syncs.clone()))
        .merge(integration_login::protected_routes(integrations.clone()))
        .route_layer(from_fn_with_state(services.verifier.clone(), require_token));
    let sign_in_routes = oauth_login::routes(sign_in.clone()).merge(oauth_callback::routes(
        oauth_callback::CallbackState {
            services: services.clone(),
            sign_in,
        },
    ));
    finish(
        auth::public_routes(services)
            .merge(sign_in_routes)
            .merge(webhook::public_routes(syncs))
            .merge(integration_callback::routes(integrations))
            .merge(console::routes())
            .merge(protected),
    )
}

/// Where the session signing key came from, so `serve` can say so.
#[derive(Debug, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    Existing(PathBuf),
    Generated(PathBuf),
}

/// `TRIBUTARY_JWT_SECRET` when set; otherwise a random dev key kept in the data directory
/// (created on first run, readable by the owner only).
pub fn signing_key(data_dir: &Path) -> Result<(Vec<u8>, KeySource), LocalError> {
    dev_secret(data_dir, config::JWT_SECRET, DEV_KEY_FILE)
}

/// The secret in `variable` when set; otherwise 32 random bytes (hex) kept in `file` of the
/// data directory, created on first use, readable by the owner only.
pub fn dev_secret(
    data_dir: &Path,
    variable: &str,
    file: &str,
) -> Result<(Vec<u8>, KeySource), LocalError> {
    if let Ok(secret) = std::env::var(variable) {
        if !secret.trim().is_empty() {
            return Ok((secret.into_bytes(), KeySource::Environment));
        }
    }
    let path = data_dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(key) => return Ok((key.trim().as_bytes().to_vec(), KeySource::Existing(path))),
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_error(&path)(error))
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(data_dir).map_err(io_error(data_dir))?;
    let mut random = [0u8; MIN_KEY_BYTES];
    getrandom::fill(&mut random).map_err(|error| LocalError::Random(error.to_string()))?;
    let key = hex::encode(random);
    let mut file = new_private_file(&path)?;
    file.write_all(key.as_bytes()).map_err(io_error(&path))?;
    Ok((key.into_bytes(), KeySource::Generated(path)))
}

fn new_private_file(path: &Path) -> Result<std::fs::File, LocalError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io_error(path))
}

/// Provider connections from `TRIBUTARY_INTEGRATIONS` / `TRIBUTARY_INTEGRATION_*` (none
/// configured is fine locally), sealed with the local vault key; their callbacks live under
/// `TRIBUTARY_PUBLIC_URL`, else under the address `serve` binds.
pub fn local_integrations(
    services: &Services,
    data_dir: &Path,
) -> Result<integration_login::IntegrationState, LocalError> {
    let (vault, _) = sync::local_vault(data_dir)?;
    let table = services.table.clone();
    let http = tributary::integrations::setup::token_http_client()?;
    let connections = match tributary::integrations::setup::connections_from_env(
        table.clone(),
        vault.clone(),
        http,
    )? {
        Some(connections) => connections,
        None => integration_login::no_providers(table.clone(), vault)?,
    };
    let public_url = match std::env::var(tributary::mail::PUBLIC_URL) {
        Ok(url) if !url.trim().is_empty() => Some(integration_login::public_base_url(&url)?),
        _ => None,
    };
    Ok(integration_login::IntegrationState::new(
        connections,
        tributary::store::connect_states::ConnectStates::new(table),
        public_url,
    ))
}

/// Sign-in providers from `TRIBUTARY_OAUTH_*` (none configured is fine locally).
pub fn local_sign_in(services: &Services) -> Result<SignIn, LocalError> {
    Ok(SignIn::from_env(services.table.clone())?)
}

/// The services over the embedded store in `data_dir`.
pub fn local_services(data_dir: &Path) -> Result<(Services, KeySource), LocalError> {
    let (key, source) = signing_key(data_dir)?;
    let sessions =
        SessionKeys::new(&key, config::session_ttl_from_env()?).map_err(ConfigError::from)?;
    let table = open_embedded(data_dir)?;
    let services = Services::new(std::sync::Arc::new(table), sessions).with_mail(local_mail(
        data_dir,
        tributary::mail::DEFAULT_LOCAL_PUBLIC_URL,
    )?);
    Ok((services, source))
}

/// Mail goes to the dev outbox `<data dir>/outbox/` (one `.eml` per message); links point
/// at `TRIBUTARY_PUBLIC_URL`, else at `default_public_url` (`serve` passes the address it
/// bound, so links work whatever port was picked).
pub fn local_mail(
    data_dir: &Path,
    default_public_url: &str,
) -> Result<tributary::mail::Mail, LocalError> {
    let public_url = std::env::var(tributary::mail::PUBLIC_URL)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| default_public_url.to_owned());
    let outbox = tributary::mail::OutboxMailer::new(data_dir.join("outbox"));
    Ok(tributary::mail::Mail::new(Arc::new(outbox), &public_url)?)
}

/// Binds `addr` (port 0 picks a free one) and returns the bound address and the server.
pub async fn bind(
    services: Services,
    sign_in: SignIn,
    engines: Engines,
    addr: SocketAddr,
) -> std::io::Result<(
    SocketAddr,
    impl std::future::Future<Output = std::io::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(listener, services, sign_in, engines)
}

/// Serves every route on an already bound listener; returns its address and the server.
pub fn serve_on(
    listener: tokio::net::TcpListener,
    services: Services,
    sign_in: SignIn,
    engines: Engines,
) -> std::io::Result<(
    SocketAddr,
    impl std::future::Future<Output = std::io::Result<()>>,
)> {
    let bound = listener.local_addr()?;
    let mut engines = engines;
    // Connection callbacks are registered at the public URL: without one, where we listen.
    if let Ok(url) = format!("http://{bound}").parse() {
        engines.integrations = engines.integrations.or_public_url(url);
    }
    Ok((bound, async move {
        axum::serve(listener, app(services, sign_in, engines)).await
    }))
}
