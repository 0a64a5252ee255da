//! The connector kit: what every source uses to talk to its provider — request
//! authorisation (inline credentials or a refreshed provider connection), the retry
//! policy, a per-provider rate governor and pagination helpers.

pub mod auth;
pub mod client;
pub mod governor;

pub use auth::{AccessToken, AccessTokenSource, ConnectionResolver, SourceAuth};
