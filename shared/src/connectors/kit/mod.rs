//! The connector kit: what every source uses to talk to its provider — request
//! authorisation (inline credentials or a refreshed provider connection), the retry
//! policy, a per-provider rate governor and pagination helpers.
//!
//! - [`ApiClient`] (client.rs): one per connector, built from the [`BuildContext`]'s
//!   `http`, `auth` and `retry`, the provider's API base URL and a [`Governor`]. Calls:
//!   `api.get(url)` / `api.post(url)` / `api.request(method, url)` give an [`ApiCall`];
//!   chain `.query(..)`, `.json_body(&body)?`, `.header(..)`, `.bucket(..)`, `.what(..)`,
//!   `.idempotent()`, then `.json::<T>().await` (success parsed, anything else a
//!   [`ConnectorError`]), `.send().await` (the buffered [`ApiResponse`] whatever its status,
//!   for sources that treat e.g. 404 specially) or `.send_stream().await` (downloads:
//!   a [`Download`], the body unread).
//!   Every attempt is authorised, waits on the governor, is retried while throttled
//!   (within the governor's budget, else [`ConnectorError::RateLimited`] with the wait),
//!   retried on 408/5xx/network errors when idempotent (GET/PUT/DELETE, or marked), and
//!   refreshed once on a 401 when the credential is a connection.
//! - [`Governor`] (governor.rs): the rate state of one credential; [`Governor::shared`]
//!   gives every sync using the same credential the same one. Its [`ThrottleShape`] says
//!   how the provider signals throttling (standard 429, Slack, Discord, Google, Notion,
//!   Graph).
//! - [`Paginator`] (paginate.rs): a [`PageStyle`] (cursor, next link, page token,
//!   offset; presets per provider) and a closure building the call for a cursor;
//!   `.page(cursor)` is one checkpointed step, `.pages(start)` a stream, `.items(..)` all.
//!
//! ```ignore
//! use tributary::connectors::kit::{ApiClient, Governor, PageStyle, Paginator, ThrottleShape};
//!
//! fn client(ctx: &BuildContext) -> Result<ApiClient, ConnectorError> {
//!     let base = url::Url::parse("https://slack.com/api").map_err(|e| ConnectorError::Config(e.to_string()))?;
//!     let governor = Governor::shared("slack", &ctx.connector_id, ThrottleShape::Slack);
//!     Ok(ApiClient::new("Slack", ctx.http.clone(), base, ctx.auth.clone())
//!         .with_retry(ctx.retry.clone())
//!         .with_governor(governor))
//! }
//!
//! // One page per pull, resumable from the checkpoint's cursor:
//! let channels = Paginator::new(api.clone(), PageStyle::SLACK, |api: &ApiClient, cursor: Option<&str>| {
//!     Ok(api.get(api.url("/conversations.list")?).query("limit", "200").query_opt("cursor", cursor))
//! });
//! let page = channels.page(checkpoint.cursor.as_deref()).await?;
//! let ids: Vec<Channel> = page.items("/channels")?;
//! let next_checkpoint = page.next; // None: the listing is complete
//! ```

pub mod apis;
pub mod auth;
pub mod client;
pub mod files;
pub mod governor;
pub mod paginate;
pub mod token_grant;

pub use apis::ApiBases;
pub use auth::{
    AccessToken, AccessTokenSource, ClientCredentialsAuth, ConnectionResolver, ServiceAccountAuth,
    SourceAuth,
};
pub use client::{ApiCall, ApiClient, ApiResponse, Download};
pub use governor::{Governor, Throttle, ThrottleScope, ThrottleShape};
pub use paginate::{After, Collected, End, Page, PageRequest, PageStyle, Paginator};

#[cfg(doc)]
use super::{BuildContext, ConnectorError};
