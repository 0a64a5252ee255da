//! Plain OAuth 2.0 providers: code exchange at the token endpoint, then the user from a
//! userinfo endpoint through a configured field mapping (RAGFlow-style normalised user).

use reqwest::Url;
use serde_json::Value;

use super::config::{ProviderConfig, UserinfoFields};
use super::{parse_token_response, printable, ExternalUser};

#[derive(Debug, thiserror::Error)]
pub enum OAuth2Error {
    #[error("the token endpoint refused the code: {0}")]
    TokenExchange(String),
    #[error("the provider refused the sign-in code (expired or already used); sign in again: {0}")]
    CodeRefused(String),
    #[error("fetching the user failed: {0}")]
    User(String),
}

/// The provider's way of saying "this code is expired, used or not yours" (RFC 6749
/// `invalid_grant`; GitHub's `bad_verification_code`): the user's to retry, not our outage.
pub fn is_code_refusal(error: &str) -> bool {
    matches!(error, "invalid_grant" | "bad_verification_code")
}

/// POSTs the code with the PKCE verifier and exact redirect URI; returns the access token.
/// The 200-with-`error` answer (GitHub's habit) counts as a refusal.
pub async fn exchange_code(
    http: &reqwest::Client,
    token_url: &Url,
    config: &ProviderConfig,
    code: &str,
    verifier: &str,
) -> Result<String, OAuth2Error> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", config.redirect_uri.as_str()),
        ("code_verifier", verifier),
        ("client_id", config.client_id.as_str()),
        ("client_secret", config.client_secret.expose()),
    ];
    let response = http
        .post(token_url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| OAuth2Error::TokenExchange(e.to_string()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| OAuth2Error::TokenExchange(e.to_string()))?;
    let tokens = parse_token_response(&body)
        .ok_or_else(|| OAuth2Error::TokenExchange(format!("HTTP {status}, unreadable body")))?;
    if let Some(error) = tokens.error {
        let description = tokens.error_description.unwrap_or_default();
        let message = printable(&format!("{error}: {description}"));
        return Err(if is_code_refusal(&error) {
            OAuth2Error::CodeRefused(message)
        } else {
            OAuth2Error::TokenExchange(message)
        });
    }
    if !status.is_success() {
        return Err(OAuth2Error::TokenExchange(format!("HTTP {status}")));
    }
    tokens
        .access_token
        .ok_or_else(|| OAuth2Error::TokenExchange("no access_token in the response".into()))
}

/// GETs JSON with the access token.
pub async fn get_json(
    http: &reqwest::Client,
    url: Url,
    access_token: &str,
    accept: &str,
) -> Result<Value, OAuth2Error> {
    let response = http
        .get(url.clone())
        .bearer_auth(access_token)
        .header(reqwest::header::ACCEPT, accept)
        .send()
        .await
        .map_err(|e| OAuth2Error::User(e.to_string()))?;
    if !response.status().is_success() {
        return Err(OAuth2Error::User(format!(
            "HTTP {} from {}",
            response.status(),
            url.path()
        )));
    }
    response
        .json()
        .await
        .map_err(|e| OAuth2Error::User(e.to_string()))
}

/// The value at a dotted path (`data.user.id`), numbers rendered as text.
fn field(value: &Value, path: &str) -> Option<String> {
    let found = path
        .split('.')
        .try_fold(value, |node, part| node.get(part))?;
    match found {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

pub struct OAuth2Client {
    pub config: ProviderConfig,
    pub authorization_url: Url,
    token_url: Url,
    userinfo_url: Url,
    fields: UserinfoFields,
    http: reqwest::Client,
}

impl OAuth2Client {
    pub fn new(
        config: ProviderConfig,
        authorization_url: Url,
        token_url: Url,
        userinfo_url: Url,
        fields: UserinfoFields,
        http: reqwest::Client,
    ) -> Self {
        Self {
            config,
            authorization_url,
            token_url,
            userinfo_url,
            fields,
            http,
        }
    }

    pub async fn finish(&self, code: &str, verifier: &str) -> Result<ExternalUser, OAuth2Error> {
        let access_token =
            exchange_code(&self.http, &self.token_url, &self.config, code, verifier).await?;
        let info = get_json(
            &self.http,
            self.userinfo_url.clone(),
            &access_token,
            "application/json",
        )
        .await?;
        let subject = field(&info, &self.fields.id)
            .ok_or_else(|| OAuth2Error::User(format!("userinfo has no `{}`", self.fields.id)))?;
        // Without a verification field the email is unverified: it is shown, never linked.
        let email_verified = self
            .fields
            .email_verified
            .as_deref()
            .and_then(|path| field(&info, path))
            .is_some_and(|flag| flag == "true");
        Ok(ExternalUser {
            namespace: self.config.name.clone(),
            subject,
            email: field(&info, &self.fields.email),
            email_verified,
            name: field(&info, &self.fields.name),
            avatar_url: field(&info, &self.fields.avatar),
        })
    }
}
