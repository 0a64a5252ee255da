//! GitHub: `Accept: application/json` on the token call (else GitHub answers
//! form-encoded), its 200-with-`error` answers, a User-Agent on every call (GitHub refuses
//! requests without one; the client sets it), `/user` for the numeric id and
//! `/user/emails` for the primary email, used only if GitHub verified it.

use reqwest::Url;
use serde::Deserialize;

use super::config::ProviderConfig;
use super::oauth2::{exchange_code, get_json, OAuth2Error};
use super::ExternalUser;

const GITHUB_JSON: &str = "application/vnd.github+json";

#[derive(Deserialize)]
struct GitHubUser {
    id: u64,
    login: String,
    name: Option<String>,
    avatar_url: Option<String>,
}

#[derive(Deserialize)]
struct GitHubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

pub struct GitHubClient {
    pub config: ProviderConfig,
    pub authorization_url: Url,
    token_url: Url,
    api_url: Url,
    http: reqwest::Client,
}

fn join(base: &Url, path: &str) -> Result<Url, OAuth2Error> {
    let base = base.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}{path}")).map_err(|e| OAuth2Error::User(e.to_string()))
}

impl GitHubClient {
    pub fn new(
        config: ProviderConfig,
        web_url: &Url,
        api_url: Url,
        http: reqwest::Client,
    ) -> Result<Self, OAuth2Error> {
        Ok(Self {
            authorization_url: join(web_url, "/login/oauth/authorize")?,
            token_url: join(web_url, "/login/oauth/access_token")?,
            api_url,
            config,
            http,
        })
    }

    pub async fn finish(&self, code: &str, verifier: &str) -> Result<ExternalUser, OAuth2Error> {
        let access_token =
            exchange_code(&self.http, &self.token_url, &self.config, code, verifier).await?;
        let user: GitHubUser = serde_json::from_value(
            get_json(
                &self.http,
                join(&self.api_url, "/user")?,
                &access_token,
                GITHUB_JSON,
            )
            .await?,
        )
        .map_err(|e| OAuth2Error::User(format!("unexpected /user: {e}")))?;
        // GitHub pages this list (30 by default); 100 covers any real account in one call.
        let emails: Vec<GitHubEmail> = serde_json::from_value(
            get_json(
                &self.http,
                join(&self.api_url, "/user/emails?per_page=100")?,
                &access_token,
                GITHUB_JSON,
            )
            .await?,
        )
        .map_err(|e| OAuth2Error::User(format!("unexpected /user/emails: {e}")))?;
        let primary = emails.into_iter().find(|email| email.primary);
        let (email, email_verified) = match primary {
            Some(primary) => (Some(primary.email.to_lowercase()), primary.verified),
            None => (None, false),
        };
        Ok(ExternalUser {
            namespace: self.config.name.clone(),
            subject: user.id.to_string(),
            email,
            email_verified,
            name: user.name.or(Some(user.login)),
            avatar_url: user.avatar_url,
        })
    }
}
