//! Sign-in with external providers: OpenID Connect (discovery, JWKS, ID-token checks),
//! generic OAuth 2.0 with a userinfo endpoint, and GitHub. `flow` runs the authorization
//! code + PKCE flow over them; the functions `oauth-login` and `oauth-callback` are its edge.

pub mod config;
pub mod flow;
pub mod github;
pub mod jwks;
pub mod oauth2;
pub mod oidc;
pub mod pkce;
pub mod redirect;

pub use config::{providers_from_env, OAuthConfigError, ProviderConfig, ProviderKind};
pub use flow::{CallbackParams, SignIn, SignInError, Started};
pub use pkce::random_token;

/// What a provider says about the person signing in, normalised across provider kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalUser {
    /// The issuer (OIDC) or the provider's name: the namespace of `subject`.
    pub namespace: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
}

/// A provider's error response, trimmed to printable text so it is safe to show.
pub fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect()
}

/// The token endpoint's answer (RFC 6749 §5.1), or its error (§5.2).
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    pub access_token: Option<String>,
    pub id_token: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Parses a token response whether it is JSON or form-encoded (GitHub answers the latter
/// when the Accept header is missing).
pub fn parse_token_response(body: &[u8]) -> Option<TokenResponse> {
    serde_json::from_slice(body)
        .ok()
        .or_else(|| serde_urlencoded::from_bytes(body).ok())
}
