//! Identity: passwords, session JWTs, API tokens, scopes and the one token check that both
//! the `token-check` authorizer and the local stack's middleware run.

pub mod api_token;
#[cfg(feature = "oauth")]
pub mod oauth;
pub mod passwords;
pub mod principal;
pub mod scopes;
pub mod session;
pub mod verifier;

pub use principal::{Principal, TokenKind};
pub use session::{SessionClaims, SessionKeys, SigningKeyError};
pub use verifier::{Denied, TokenVerifier};
