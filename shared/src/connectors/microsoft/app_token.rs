//! App-only tokens of the Microsoft identity platform: the OAuth 2.0 client credentials
//! grant with a client secret, or with a JWT client assertion signed by the app's
//! certificate key (RS256, `x5t#S256` header) — learn.microsoft.com/entra/identity-platform/
//! v2-oauth2-client-creds-grant-flow and certificate-credentials.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::super::client_credentials::{ClientAuthentication, ClientCertificate};
use super::super::kit::token_grant::{
    post_token_form, GrantedToken, TokenEndpointError, TokenGrant,
};
use super::super::kit::ClientCredentialsAuth;
use super::super::ConnectorError;
use crate::http::GuardedClient;

pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Entra accepts assertions valid for up to 10 minutes past `nbf`.
const ASSERTION_LIFETIME_SECS: i64 = 600;

/// The client credentials grant of one app in one tenant for one scope.
pub struct AppGrant {
    pub app: std::sync::Arc<ClientCredentialsAuth>,
    /// `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    pub token_url: String,
    /// `https://graph.microsoft.com/.default`: every application permission granted.
    pub scope: String,
    pub http: GuardedClient,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

/// A unique assertion id (the identity platform refuses a replayed `jti`).
fn jti() -> Result<String, ConnectorError> {
    use base64::Engine as _;
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|error| ConnectorError::Unavailable(format!("no randomness: {error}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl AppGrant {
    fn assertion(&self, certificate: &ClientCertificate) -> Result<String, ConnectorError> {
        let now = chrono::Utc::now().timestamp();
        let claims = AssertionClaims {
            aud: &self.token_url,
            iss: &self.app.client_id,
            sub: &self.app.client_id,
            jti: jti()?,
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.x5t_s256 = Some(
            certificate
                .thumbprint_sha256()
                .map_err(ConnectorError::Unauthorized)?,
        );
        let key = EncodingKey::from_rsa_pem(certificate.private_key.expose().as_bytes()).map_err(
            |_| {
                ConnectorError::Unauthorized(
                    "the certificate's private key is not an RSA PEM key".into(),
                )
            },
        )?;
        jsonwebtoken::encode(&header, &claims, &key).map_err(|error| {
            ConnectorError::Unauthorized(format!("cannot sign the client assertion: {error}"))
        })
    }
}

#[async_trait::async_trait]
impl TokenGrant for AppGrant {
    async fn request(&self) -> Result<GrantedToken, ConnectorError> {
        let assertion;
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.app.client_id.as_str()),
            ("scope", self.scope.as_str()),
        ];
        match &self.app.authentication {
            ClientAuthentication::Secret(secret) => form.push(("client_secret", secret.expose())),
            ClientAuthentication::Certificate(certificate) => {
                assertion = self.assertion(certificate)?;
                form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
                form.push(("client_assertion", assertion.as_str()));
            }
        }
        post_token_form(&self.http, &self.token_url, &form)
            .await
            .map_err(|error| match error {
                TokenEndpointError::Refused { status, reason } => {
                    ConnectorError::Unauthorized(format!(
                        "the Microsoft identity platform refused the app {}: {status} {reason}",
                        self.app.client_id
                    ))
                }
                TokenEndpointError::Unavailable(error) => {
                    ConnectorError::Unavailable(format!("the Microsoft identity platform: {error}"))
                }
            })
    }
}
