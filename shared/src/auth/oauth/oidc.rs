//! OpenID Connect: discovery (the document's `issuer` must equal the configured one),
//! code exchange, and ID-token validation — configured algorithms only, key from the
//! cached JWKS, `iss`, `aud` (no untrusted extra audiences), `azp`, `exp`, `nbf`, `iat`,
//! `sub`, `nonce` — then userinfo only when its `sub` matches the ID token's.

use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Url;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::OnceCell;

use super::config::{check_endpoint, ProviderConfig};
use super::jwks::{JwksCache, JwksError};
use super::{parse_token_response, printable, ExternalUser};

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 60;
/// An ID token issued longer ago than this is stale even if it has not expired.
const MAX_AGE_SECS: u64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("discovery failed: {0}")]
    Discovery(String),
    #[error("the token endpoint refused the code: {0}")]
    TokenExchange(String),
    #[error("the provider refused the sign-in code (expired or already used); sign in again: {0}")]
    CodeRefused(String),
    #[error("invalid ID token: {0}")]
    IdToken(String),
    #[error(transparent)]
    Keys(#[from] JwksError),
    #[error("userinfo failed: {0}")]
    Userinfo(String),
    #[error("userinfo describes another subject than the ID token")]
    UserinfoSubject,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub userinfo_endpoint: Option<Url>,
    pub jwks_uri: Url,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// `email_verified` is a boolean by the spec; some providers send the string "true".
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    fn is_true(&self) -> bool {
        match self {
            Flag::Bool(value) => *value,
            Flag::Text(text) => text.eq_ignore_ascii_case("true"),
        }
    }
}

/// The ID-token claims Tributary uses.
#[derive(Debug, Deserialize)]
pub struct IdClaims {
    pub sub: String,
    aud: Audience,
    azp: Option<String>,
    iat: u64,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<Flag>,
    name: Option<String>,
    picture: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Userinfo {
    sub: String,
    email: Option<String>,
    email_verified: Option<Flag>,
    name: Option<String>,
    picture: Option<String>,
}

pub struct OidcClient {
    pub config: ProviderConfig,
    issuer: String,
    http: reqwest::Client,
    discovery: OnceCell<Discovery>,
    pub jwks: JwksCache,
}

impl OidcClient {
    pub fn new(
        config: ProviderConfig,
        issuer: String,
        http: reqwest::Client,
        cooldown: Duration,
    ) -> Self {
        Self {
            jwks: JwksCache::new(http.clone(), cooldown),
            config,
            issuer,
            http,
            discovery: OnceCell::new(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The discovery document, fetched once per cold start (retried until it succeeds).
    pub async fn discovery(&self) -> Result<&Discovery, OidcError> {
        self.discovery
            .get_or_try_init(|| self.fetch_discovery())
            .await
    }

    async fn fetch_discovery(&self) -> Result<Discovery, OidcError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| OidcError::Discovery(e.to_string()))?;
        if !response.status().is_success() {
            return Err(OidcError::Discovery(format!(
                "HTTP {} from {url}",
                response.status()
            )));
        }
        let discovery: Discovery = response
            .json()
            .await
            .map_err(|e| OidcError::Discovery(e.to_string()))?;
        if discovery.issuer != self.issuer {
            return Err(OidcError::Discovery(format!(
                "the document names issuer `{}`, not the configured `{}`",
                printable(&discovery.issuer),
                self.issuer
            )));
        }
        for endpoint in [
            &discovery.authorization_endpoint,
            &discovery.token_endpoint,
            &discovery.jwks_uri,
        ]
        .into_iter()
        .chain(discovery.userinfo_endpoint.as_ref())
        {
            check_endpoint(endpoint)
                .map_err(|reason| OidcError::Discovery(format!("{endpoint}: {reason}")))?;
        }
        Ok(discovery)
    }

    /// Exchanges the code (with the PKCE verifier and the exact redirect URI), validates
    /// the ID token and returns who signed in.
    pub async fn finish(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<ExternalUser, OidcError> {
        let discovery = self.discovery().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.config.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        let basic = discovery.token_endpoint_auth_methods_supported.is_empty()
            || discovery
                .token_endpoint_auth_methods_supported
                .iter()
                .any(|method| method == "client_secret_basic");
        let mut request = self.http.post(discovery.token_endpoint.clone());
        if basic {
            request = request.basic_auth(
                form_encode(&self.config.client_id),
                Some(form_encode(self.config.client_secret.expose())),
            );
        } else {
            form.push(("client_id", &self.config.client_id));
            form.push(("client_secret", self.config.client_secret.expose()));
        }
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::TokenExchange(e.to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| OidcError::TokenExchange(e.to_string()))?;
        let tokens = parse_token_response(&body)
            .ok_or_else(|| OidcError::TokenExchange(format!("HTTP {status}, unreadable body")))?;
        if let Some(error) = tokens.error {
            let description = tokens.error_description.unwrap_or_default();
            let message = printable(&format!("{error}: {description}"));
            return Err(if super::oauth2::is_code_refusal(&error) {
                OidcError::CodeRefused(message)
            } else {
                OidcError::TokenExchange(message)
            });
        }
        if !status.is_success() {
            return Err(OidcError::TokenExchange(format!("HTTP {status}")));
        }
        let id_token = tokens
            .id_token
            .ok_or_else(|| OidcError::TokenExchange("no id_token in the response".into()))?;
        let claims = self.validate_id_token(&id_token, nonce).await?;
        let mut user = ExternalUser {
            namespace: self.issuer.clone(),
            subject: claims.sub,
            email: claims.email,
            email_verified: claims.email_verified.is_some_and(|flag| flag.is_true()),
            name: claims.name,
            avatar_url: claims.picture,
        };
        if user.email.is_none() {
            if let (Some(endpoint), Some(access_token)) =
                (&discovery.userinfo_endpoint, &tokens.access_token)
            {
                self.merge_userinfo(&mut user, endpoint, access_token)
                    .await?;
            }
        }
        Ok(user)
    }

    async fn merge_userinfo(
        &self,
        user: &mut ExternalUser,
        endpoint: &Url,
        access_token: &str,
    ) -> Result<(), OidcError> {
        let response = self
            .http
            .get(endpoint.clone())
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Userinfo(e.to_string()))?;
        if !response.status().is_success() {
            return Err(OidcError::Userinfo(format!("HTTP {}", response.status())));
        }
        let info: Userinfo = response
            .json()
            .await
            .map_err(|e| OidcError::Userinfo(e.to_string()))?;
        if info.sub != user.subject {
            return Err(OidcError::UserinfoSubject);
        }
        user.email = info.email;
        user.email_verified = info.email_verified.is_some_and(|flag| flag.is_true());
        user.name = user.name.take().or(info.name);
        user.avatar_url = user.avatar_url.take().or(info.picture);
        Ok(())
    }

    /// Every check an ID token must pass; public for the validation benchmark.
    pub async fn validate_id_token(&self, token: &str, nonce: &str) -> Result<IdClaims, OidcError> {
        let invalid = |reason: &str| OidcError::IdToken(reason.to_owned());
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| OidcError::IdToken(format!("unreadable header: {e}")))?;
        if !self.config.algorithms.contains(&header.alg) {
            return Err(OidcError::IdToken(format!(
                "algorithm {:?} is not allowed",
                header.alg
            )));
        }
        let discovery = self.discovery().await?;
        let kid = header.kid.as_deref();
        let jwk = self.jwks.key(&discovery.jwks_uri, kid).await?;
        let claims = match self.decode(token, &jwk, header.alg) {
            Err(DecodeFailure::Signature) => {
                // Keys rotated under the same `kid`: one refetch (cooldown permitting).
                let replacement = self
                    .jwks
                    .replacement(&discovery.jwks_uri, kid, &jwk)
                    .await?
                    .ok_or_else(|| invalid("the signature does not verify"))?;
                self.decode(token, &replacement, header.alg)
            }
            other => other,
        }
        .map_err(DecodeFailure::into_error)?;
        self.check_claims(&claims, nonce)?;
        Ok(claims)
    }

    fn decode(&self, token: &str, jwk: &Jwk, alg: Algorithm) -> Result<IdClaims, DecodeFailure> {
        if jwk
            .common
            .key_algorithm
            .is_some_and(|declared| format!("{declared:?}") != format!("{alg:?}"))
        {
            return Err(DecodeFailure::Other(
                "the key is declared for another algorithm".into(),
            ));
        }
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| DecodeFailure::Other(format!("unusable key: {e}")))?;
        jsonwebtoken::decode::<IdClaims>(token, &key, &self.validation(alg))
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => DecodeFailure::Signature,
                _ => DecodeFailure::Other(e.to_string()),
            })
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.config.client_id]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation
    }

    /// What `jsonwebtoken` does not check: audiences beyond ours, `azp`, `iat`, `nonce`.
    fn check_claims(&self, claims: &IdClaims, nonce: &str) -> Result<(), OidcError> {
        let invalid = |reason: &str| Err(OidcError::IdToken(reason.to_owned()));
        let client_id = self.config.client_id.as_str();
        let audiences = match &claims.aud {
            Audience::One(aud) => vec![aud.as_str()],
            Audience::Many(auds) => auds.iter().map(String::as_str).collect(),
        };
        if audiences.iter().any(|aud| *aud != client_id) {
            return invalid("the token is also meant for another audience");
        }
        if audiences.len() > 1 && claims.azp.is_none() {
            return invalid("several audiences but no `azp`");
        }
        if claims.azp.as_deref().is_some_and(|azp| azp != client_id) {
            return invalid("`azp` is another client");
        }
        let now = jsonwebtoken::get_current_timestamp();
        if claims.iat > now + LEEWAY_SECS {
            return invalid("`iat` is in the future");
        }
        if claims.iat + MAX_AGE_SECS < now {
            return invalid("the token was issued too long ago");
        }
        if claims.sub.is_empty() {
            return invalid("empty `sub`");
        }
        let matches = claims
            .nonce
            .as_deref()
            .is_some_and(|got| bool::from(got.as_bytes().ct_eq(nonce.as_bytes())));
        if !matches {
            return invalid("the nonce does not match this sign-in");
        }
        Ok(())
    }
}

/// Why an ID token did not decode: a bad signature may mean a rotated key.
enum DecodeFailure {
    Signature,
    Other(String),
}

impl DecodeFailure {
    fn into_error(self) -> OidcError {
        match self {
            DecodeFailure::Signature => OidcError::IdToken("InvalidSignature".into()),
            DecodeFailure::Other(reason) => OidcError::IdToken(reason),
        }
    }
}

/// RFC 6749 §2.3.1: client credentials are form-encoded before HTTP Basic.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
