//! The outbound HTTP client: one per cold start, rustls, connect/read timeouts, a
//! `tributary/<version>` User-Agent, and no automatic redirects — back-channel calls (token
//! exchange, userinfo, JWKS) must reach exactly the endpoint configured or discovered.

use std::time::Duration;

pub const USER_AGENT: &str = concat!("tributary/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

pub fn back_channel_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}
