//! Outbound HTTP (DESIGN §1, §5). Two clients, one per cold start each:
//! - [`GuardedClient`]: for every user- or source-supplied URL (connectors, the sync engine,
//!   sinks, the crawler). The SSRF [`policy`] is checked on every request and every redirect
//!   hop (IP literals and odd spellings included), names resolve through the guarded
//!   resolver, there is no proxy, and the remote address is checked again on connect.
//! - [`back_channel_client`]: sign-in back-channel calls (token exchange, userinfo, JWKS) to
//!   endpoints the operator configured or discovery returned; no redirects at all.
//!
//! Both use rustls, connect/read timeouts and a `tributary/<version>` User-Agent; idempotent
//! calls are retried by [`send_with_retry`].

use std::time::Duration;

#[cfg(feature = "crawl")]
pub mod client;
#[cfg(feature = "crawl")]
pub mod policy;
mod retry;

#[cfg(feature = "crawl")]
pub(crate) use client::error_chain;
#[cfg(feature = "crawl")]
pub use client::{ClientOptions, Followed, GuardedClient, GuardedRequest, HttpError};
pub use retry::RetryPolicy;
#[cfg(feature = "crawl")]
pub use retry::{send_with_retry, send_with_retry_async};

pub const USER_AGENT: &str = concat!("tributary/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The sign-in back-channel client: configured endpoints only, never user-supplied URLs.
pub fn back_channel_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}
