//! Workspace ↔ provider OAuth connections (DESIGN §1, §3 "Provider connection"): providers
//! as data ([`providers`]), the token client for code exchange, refresh and revocation
//! ([`tokens`]), race-free refresh behind the connector kit's `AccessTokenSource` and
//! `ConnectionResolver` ([`refresh`]), and building it all from the environment
//! ([`setup`]). Connections are stored by `store::connections`.

pub mod providers;
pub mod refresh;
pub mod setup;
pub mod tokens;

pub use providers::{
    integrations_from, integrations_from_env, ClientAuth, ClientSecret, IntegrationConfigError,
    Integrations, Preset, ProviderConfig, ProviderSpec, RevokeStyle, TokenEncoding, TokenShape,
};
pub use refresh::{
    ConnectionError, ConnectionService, ConnectionTokens, RefreshPolicy, DEFAULT_REFRESH_MARGIN,
    REFRESH_MARGIN,
};
pub use tokens::{parse_token_response, TokenClient, TokenError, TokenSet};
