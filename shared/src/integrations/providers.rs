//! Providers a workspace can connect to, as data: endpoints, scopes, authorize quirks,
//! client authentication, token request encoding and the shape of the token response.
//! Built-in presets cover google, microsoft, slack, notion, dropbox, discord and a generic
//! `oauth2`; the operator lists the enabled ones in `TRIBUTARY_INTEGRATIONS` and configures
//! each with `TRIBUTARY_INTEGRATION_<NAME>_<FIELD>` (the sign-in providers' convention),
//! validated at cold start with errors naming the provider and the variable.

use std::fmt;
use std::sync::Arc;

use url::Url;

pub const INTEGRATIONS: &str = "TRIBUTARY_INTEGRATIONS";
const PREFIX: &str = "TRIBUTARY_INTEGRATION_";

/// An OAuth client secret: never printed, not even in `Debug`.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(..)")
    }
}

/// The built-in provider descriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    Google,
    Microsoft,
    Slack,
    Notion,
    Dropbox,
    Discord,
    /// Any RFC 6749 provider: every URL from configuration.
    OAuth2,
}

impl Preset {
    pub const ALL: [Preset; 7] = [
        Preset::Google,
        Preset::Microsoft,
        Preset::Slack,
        Preset::Notion,
        Preset::Dropbox,
        Preset::Discord,
        Preset::OAuth2,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Google => "google",
            Preset::Microsoft => "microsoft",
            Preset::Slack => "slack",
            Preset::Notion => "notion",
            Preset::Dropbox => "dropbox",
            Preset::Discord => "discord",
            Preset::OAuth2 => "oauth2",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|preset| preset.as_str() == name)
    }

    /// The preset's description. URLs may hold `{tenant}` (Microsoft).
    pub fn spec(self) -> ProviderSpec {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        let params = |items: &[(&str, &str)]| {
            items
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let base = ProviderSpec {
            preset: self,
            authorize_url: None,
            token_url: None,
            revoke_url: None,
            revoke_style: RevokeStyle::Token,
            default_scopes: Vec::new(),
            required_scopes: Vec::new(),
            scope_separator: ' ',
            authorize_params: Vec::new(),
            client_auth: ClientAuth::Basic,
            token_encoding: TokenEncoding::Form,
            shape: TokenShape::Standard,
            pkce: true,
            default_tenant: None,
        };
        match self {
            // developers.google.com/identity/protocols/oauth2/web-server
            Preset::Google => ProviderSpec {
                authorize_url: Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
                token_url: Some("https://oauth2.googleapis.com/token".into()),
                revoke_url: Some("https://oauth2.googleapis.com/revoke".into()),
                default_scopes: strings(&[
                    "openid",
                    "email",
                    "https://www.googleapis.com/auth/drive.readonly",
                ]),
                // A refresh token only with offline access; `consent` so a reconnect gets
                // a new one (Google sends it on first consent only).
                authorize_params: params(&[("access_type", "offline"), ("prompt", "consent")]),
                client_auth: ClientAuth::Post,
                ..base
            },
            // learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow
            Preset::Microsoft => ProviderSpec {
                authorize_url: Some(
                    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize".into(),
                ),
                token_url: Some(
                    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token".into(),
                ),
                // The identity platform has no revocation endpoint.
                revoke_url: None,
                default_scopes: strings(&[
                    "offline_access",
                    "User.Read",
                    "Files.Read.All",
                    "Sites.Read.All",
                ]),
                // Without it there is no refresh token.
                required_scopes: strings(&["offline_access"]),
                client_auth: ClientAuth::Post,
                default_tenant: Some("common".into()),
                ..base
            },
            // docs.slack.dev/authentication/installing-with-oauth, token rotation
            Preset::Slack => ProviderSpec {
                authorize_url: Some("https://slack.com/oauth/v2/authorize".into()),
                token_url: Some("https://slack.com/api/oauth.v2.access".into()),
                revoke_url: Some("https://slack.com/api/auth.revoke".into()),
                revoke_style: RevokeStyle::Bearer,
                default_scopes: strings(&["channels:history", "channels:read", "users:read"]),
                scope_separator: ',',
                shape: TokenShape::Slack,
                ..base
            },
            // developers.notion.com/docs/authorization: Basic client auth, JSON bodies.
            Preset::Notion => ProviderSpec {
                authorize_url: Some("https://api.notion.com/v1/oauth/authorize".into()),
                token_url: Some("https://api.notion.com/v1/oauth/token".into()),
                revoke_url: Some("https://api.notion.com/v1/oauth/revoke".into()),
                authorize_params: params(&[("owner", "user")]),
                token_encoding: TokenEncoding::Json,
                shape: TokenShape::Notion,
                pkce: false,
                ..base
            },
            // developers.dropbox.com/oauth-guide
            Preset::Dropbox => ProviderSpec {
                authorize_url: Some("https://www.dropbox.com/oauth2/authorize".into()),
                token_url: Some("https://api.dropboxapi.com/oauth2/token".into()),
                revoke_url: Some("https://api.dropboxapi.com/2/auth/token/revoke".into()),
                revoke_style: RevokeStyle::Bearer,
                default_scopes: strings(&[
                    "account_info.read",
                    "files.metadata.read",
                    "files.content.read",
                ]),
                authorize_params: params(&[("token_access_type", "offline")]),
                ..base
            },
            // discord.com/developers/docs/topics/oauth2
            Preset::Discord => ProviderSpec {
                authorize_url: Some("https://discord.com/oauth2/authorize".into()),
                token_url: Some("https://discord.com/api/oauth2/token".into()),
                revoke_url: Some("https://discord.com/api/oauth2/token/revoke".into()),
                default_scopes: strings(&["identify", "guilds"]),
                ..base
            },
            Preset::OAuth2 => base,
        }
    }
}

/// How the client authenticates at the token and revocation endpoints (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic` with the form-urlencoded id and secret.
    Basic,
    /// `client_id` and `client_secret` in the request body.
    Post,
}

/// The token request's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenEncoding {
    Form,
    /// A JSON object (Notion).
    Json,
}

/// Where a token response keeps its tokens and account facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenShape {
    /// RFC 6749 §5.1 (Google, Microsoft, Dropbox, Discord, generic).
    Standard,
    /// HTTP 200 with `ok`; the bot token at the top level, the user token under
    /// `authed_user`; comma-separated scopes; errors as `{"ok": false, "error"}`.
    Slack,
    /// Standard tokens plus `workspace_id`, `workspace_name`, `bot_id`, `owner`.
    Notion,
}

/// How a token is revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeStyle {
    /// RFC 7009: POST `token` (the refresh token, else the access token) with client auth,
    /// in the provider's token encoding.
    Token,
    /// POST with `Authorization: Bearer <access token>` and no body (Dropbox, Slack).
    Bearer,
}

/// A provider's description before configuration (URLs may hold `{tenant}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderSpec {
    pub preset: Preset,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub revoke_url: Option<String>,
    pub revoke_style: RevokeStyle,
    pub default_scopes: Vec<String>,
    /// Added to any configured scopes (Microsoft `offline_access`).
    pub required_scopes: Vec<String>,
    pub scope_separator: char,
    /// Extra authorize query parameters (Google `access_type=offline`, ...).
    pub authorize_params: Vec<(String, String)>,
    pub client_auth: ClientAuth,
    pub token_encoding: TokenEncoding,
    pub shape: TokenShape,
    /// Whether the authorize request carries a PKCE S256 challenge.
    pub pkce: bool,
    /// Substituted for `{tenant}` unless `_TENANT` is set.
    pub default_tenant: Option<String>,
}

/// A configured, enabled provider.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// The name in `TRIBUTARY_INTEGRATIONS` (also the `{provider}` of the routes).
    pub name: String,
    pub spec: ProviderSpec,
    pub authorize_url: Url,
    pub token_url: Url,
    pub revoke_url: Option<Url>,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub scopes: Vec<String>,
    /// `_REDIRECT_URI`, when the operator pins the callback URL (else the edge derives it).
    pub redirect_uri: Option<Url>,
    /// The Microsoft tenant the URLs were built for.
    pub tenant: Option<String>,
}

impl ProviderConfig {
    /// The scopes as the provider wants them in a request.
    pub fn scope_param(&self) -> String {
        self.scopes.join(&self.spec.scope_separator.to_string())
    }

    /// The URL to send the browser to: `response_type=code`, client id, exact redirect
    /// URI, scopes, state, the PKCE challenge (when the provider takes one) and the
    /// provider's extra parameters.
    pub fn authorize_url(&self, redirect_uri: &Url, state: &str, pkce_challenge: &str) -> Url {
        let mut url = self.authorize_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", redirect_uri.as_str())
                .append_pair("state", state);
            if !self.scopes.is_empty() {
                query.append_pair("scope", &self.scope_param());
            }
            if self.spec.pkce {
                query
                    .append_pair("code_challenge", pkce_challenge)
                    .append_pair("code_challenge_method", "S256");
            }
            for (name, value) in &self.spec.authorize_params {
                query.append_pair(name, value);
            }
        }
        url
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IntegrationConfigError {
    #[error("{INTEGRATIONS}: `{0}` is not a valid provider name (lowercase letters, digits and `-`, at most 32)")]
    BadName(String),
    #[error("{INTEGRATIONS}: provider `{0}` is listed twice")]
    Duplicate(String),
    #[error("integration `{provider}`: {variable} is not set")]
    Missing { provider: String, variable: String },
    #[error("integration `{provider}`: {variable} is invalid: {reason}")]
    Invalid {
        provider: String,
        variable: String,
        reason: String,
    },
}

/// The enabled providers, by name.
#[derive(Clone, Debug, Default)]
pub struct Integrations {
    providers: Vec<Arc<ProviderConfig>>,
}

impl Integrations {
    pub fn new(providers: Vec<ProviderConfig>) -> Self {
        Self {
            providers: providers.into_iter().map(Arc::new).collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<ProviderConfig>> {
        self.providers.iter().find(|p| p.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ProviderConfig>> {
        self.providers.iter()
    }

    pub fn names(&self) -> Vec<&str> {
        self.providers.iter().map(|p| p.name.as_str()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }
}

struct Vars<'a, F: Fn(&str) -> Option<String>> {
    provider: &'a str,
    prefix: String,
    lookup: &'a F,
}

impl<F: Fn(&str) -> Option<String>> Vars<'_, F> {
    fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    fn optional(&self, field: &str) -> Option<String> {
        (self.lookup)(&self.name(field))
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    fn required(&self, field: &str) -> Result<String, IntegrationConfigError> {
        self.optional(field)
            .ok_or_else(|| IntegrationConfigError::Missing {
                provider: self.provider.to_owned(),
                variable: self.name(field),
            })
    }

    fn invalid(&self, field: &str, reason: impl Into<String>) -> IntegrationConfigError {
        IntegrationConfigError::Invalid {
            provider: self.provider.to_owned(),
            variable: self.name(field),
            reason: reason.into(),
        }
    }

    /// The override, else the preset's URL (with the tenant); `None` when neither.
    fn url(
        &self,
        field: &str,
        preset: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<Option<Url>, IntegrationConfigError> {
        let raw = match (self.optional(field), preset) {
            (Some(value), _) => value,
            (None, Some(preset)) => preset.to_owned(),
            (None, None) => return Ok(None),
        };
        let raw = match tenant {
            Some(tenant) => raw.replace("{tenant}", tenant),
            None => raw,
        };
        let url = Url::parse(&raw).map_err(|e| self.invalid(field, e.to_string()))?;
        check_endpoint(&url).map_err(|reason| self.invalid(field, reason))?;
        Ok(Some(url))
    }

    fn required_url(
        &self,
        field: &str,
        preset: Option<&str>,
        tenant: Option<&str>,
    ) -> Result<Url, IntegrationConfigError> {
        self.url(field, preset, tenant)?
            .ok_or_else(|| IntegrationConfigError::Missing {
                provider: self.provider.to_owned(),
                variable: self.name(field),
            })
    }

    fn bool(&self, field: &str, default: bool) -> Result<bool, IntegrationConfigError> {
        match self.optional(field).as_deref() {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(self.invalid(field, format!("`{other}`: expected true or false"))),
        }
    }
}

/// https everywhere; plain http only for loopback hosts (local stacks and test fakes).
pub fn check_endpoint(url: &Url) -> Result<(), String> {
    let loopback = crate::connectors::is_loopback(url);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err("plain http is allowed for loopback hosts only: use https".into()),
        other => return Err(format!("scheme `{other}` is not allowed: use https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed".into());
    }
    if url.fragment().is_some() {
        return Err("a fragment is not allowed".into());
    }
    Ok(())
}

fn split_scopes(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A Microsoft tenant: `common`, `organizations`, `consumers`, a GUID or a domain.
fn valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= 100
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn parse_params<F: Fn(&str) -> Option<String>>(
    vars: &Vars<'_, F>,
) -> Result<Option<Vec<(String, String)>>, IntegrationConfigError> {
    let Some(raw) = vars.optional("AUTHORIZE_PARAMS") else {
        return Ok(None);
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    const OURS: [&str; 7] = [
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "scope",
        "code_challenge",
        "code_challenge_method",
    ];
    if let Some((name, _)) = pairs.iter().find(|(k, _)| OURS.contains(&k.as_str())) {
        return Err(vars.invalid(
            "AUTHORIZE_PARAMS",
            format!("`{name}` is set by Tributary itself"),
        ));
    }
    Ok(Some(pairs))
}

fn parse_provider<F: Fn(&str) -> Option<String>>(
    name: &str,
    lookup: &F,
) -> Result<ProviderConfig, IntegrationConfigError> {
    let vars = Vars {
        provider: name,
        prefix: format!("{PREFIX}{}_", name.to_ascii_uppercase().replace('-', "_")),
        lookup,
    };
    let preset_name = vars.optional("PRESET").unwrap_or_else(|| name.to_owned());
    let preset = Preset::parse(&preset_name).ok_or_else(|| match vars.optional("PRESET") {
        Some(_) => vars.invalid(
            "PRESET",
            format!(
                "`{preset_name}`: expected one of {}",
                Preset::ALL.map(Preset::as_str).join(", ")
            ),
        ),
        None => IntegrationConfigError::Missing {
            provider: name.to_owned(),
            variable: format!(
                "{} (`{name}` is not a preset: name one of {})",
                vars.name("PRESET"),
                Preset::ALL.map(Preset::as_str).join(", ")
            ),
        },
    })?;
    let mut spec = preset.spec();

    let tenant = match vars.optional("TENANT") {
        Some(_) if spec.default_tenant.is_none() => {
            return Err(vars.invalid("TENANT", "only the microsoft preset has a tenant"))
        }
        Some(tenant) if !valid_tenant(&tenant) => {
            return Err(vars.invalid("TENANT", format!("`{tenant}` is not a tenant id or domain")))
        }
        Some(tenant) => Some(tenant),
        None => spec.default_tenant.clone(),
    };
    let authorize_url = vars.required_url(
        "AUTHORIZE_URL",
        spec.authorize_url.as_deref(),
        tenant.as_deref(),
    )?;
    let token_url = vars.required_url("TOKEN_URL", spec.token_url.as_deref(), tenant.as_deref())?;
    let revoke_url = vars.url("REVOKE_URL", spec.revoke_url.as_deref(), tenant.as_deref())?;

    if let Some(auth) = vars.optional("CLIENT_AUTH") {
        spec.client_auth = match auth.as_str() {
            "basic" => ClientAuth::Basic,
            "post" => ClientAuth::Post,
            other => {
                return Err(
                    vars.invalid("CLIENT_AUTH", format!("`{other}`: expected basic or post"))
                )
            }
        };
    }
    spec.pkce = vars.bool("PKCE", spec.pkce)?;
    // Added to the preset's (same name: replaced), so an extra `hd=` cannot drop
    // Google's `access_type=offline`.
    for (name, value) in parse_params(&vars)?.unwrap_or_default() {
        spec.authorize_params
            .retain(|(existing, _)| existing != &name);
        spec.authorize_params.push((name, value));
    }

    let mut scopes = match vars.optional("SCOPES") {
        Some(value) => split_scopes(&value),
        None => spec.default_scopes.clone(),
    };
    for required in &spec.required_scopes {
        if !scopes.contains(required) {
            scopes.push(required.clone());
        }
    }
    let redirect_uri = vars.url("REDIRECT_URI", None, None)?;
    let client_secret = vars.required("CLIENT_SECRET")?;
    Ok(ProviderConfig {
        name: name.to_owned(),
        client_id: vars.required("CLIENT_ID")?,
        client_secret: ClientSecret::new(client_secret),
        authorize_url,
        token_url,
        revoke_url,
        scopes,
        redirect_uri,
        tenant,
        spec,
    })
}

/// Every enabled provider; none when `TRIBUTARY_INTEGRATIONS` is unset or empty.
pub fn integrations_from(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Integrations, IntegrationConfigError> {
    let Some(list) = lookup(INTEGRATIONS) else {
        return Ok(Integrations::default());
    };
    let mut providers: Vec<ProviderConfig> = Vec::new();
    for name in split_scopes(&list) {
        if !valid_name(&name) {
            return Err(IntegrationConfigError::BadName(name));
        }
        if providers.iter().any(|p| p.name == name) {
            return Err(IntegrationConfigError::Duplicate(name));
        }
        providers.push(parse_provider(&name, &lookup)?);
    }
    Ok(Integrations::new(providers))
}

pub fn integrations_from_env() -> Result<Integrations, IntegrationConfigError> {
    integrations_from(|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests;
