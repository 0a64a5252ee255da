//! Sign-in providers from the environment, validated at cold start. Any number of
//! providers, listed by name in `TRIBUTARY_OAUTH_PROVIDERS`, each configured by
//! `TRIBUTARY_OAUTH_<NAME>_<FIELD>` variables (README lists them). A bad value fails with a
//! message naming the provider and the variable.

use jsonwebtoken::Algorithm;
use reqwest::Url;

pub const PROVIDERS: &str = "TRIBUTARY_OAUTH_PROVIDERS";
const DEFAULT_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];
/// Asymmetric algorithms only: HS* would let anyone holding a JWKS (public) key sign.
const ALLOWED_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// A client secret: never printed, not even in `Debug`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where to find the normalised user fields in a generic provider's userinfo JSON
/// (dotted paths, e.g. `data.user.id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserinfoFields {
    pub id: String,
    pub email: String,
    pub email_verified: Option<String>,
    pub name: String,
    pub avatar: String,
}

// Built once per cold start and never moved around: size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum ProviderKind {
    /// Endpoints from discovery at `issuer`.
    Oidc { issuer: String },
    /// Plain OAuth 2.0 with a userinfo endpoint.
    OAuth2 {
        authorization_url: Url,
        token_url: Url,
        userinfo_url: Url,
        fields: UserinfoFields,
    },
    /// github.com (or GitHub Enterprise / a test double with other base URLs).
    GitHub { web_url: Url, api_url: Url },
}

#[derive(Clone, Debug)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
    /// Sent verbatim on the authorization and token requests.
    pub redirect_uri: Url,
    /// Accepted ID-token algorithms (OIDC only).
    pub algorithms: Vec<Algorithm>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OAuthConfigError {
    #[error("{PROVIDERS}: `{0}` is not a valid provider name (lowercase letters, digits and `-`)")]
    BadName(String),
    #[error("{PROVIDERS}: provider `{0}` is listed twice")]
    Duplicate(String),
    #[error("provider `{provider}`: {variable} is not set")]
    Missing { provider: String, variable: String },
    #[error("provider `{provider}`: {variable} is invalid: {reason}")]
    Invalid {
        provider: String,
        variable: String,
        reason: String,
    },
}

/// Reads one variable; `lookup` is the environment (a map in tests).
struct ProviderVars<'a, F: Fn(&str) -> Option<String>> {
    provider: &'a str,
    prefix: String,
    lookup: &'a F,
}

impl<F: Fn(&str) -> Option<String>> ProviderVars<'_, F> {
    fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    fn optional(&self, field: &str) -> Option<String> {
        (self.lookup)(&self.name(field)).filter(|value| !value.trim().is_empty())
    }

    fn required(&self, field: &str) -> Result<String, OAuthConfigError> {
        self.optional(field)
            .ok_or_else(|| OAuthConfigError::Missing {
                provider: self.provider.to_owned(),
                variable: self.name(field),
            })
    }

    fn invalid(&self, field: &str, reason: impl Into<String>) -> OAuthConfigError {
        OAuthConfigError::Invalid {
            provider: self.provider.to_owned(),
            variable: self.name(field),
            reason: reason.into(),
        }
    }

    fn url(&self, field: &str, value: &str) -> Result<Url, OAuthConfigError> {
        let url = Url::parse(value.trim()).map_err(|e| self.invalid(field, e.to_string()))?;
        check_endpoint(&url).map_err(|reason| self.invalid(field, reason))?;
        Ok(url)
    }

    fn required_url(&self, field: &str) -> Result<Url, OAuthConfigError> {
        let value = self.required(field)?;
        self.url(field, &value)
    }

    fn optional_url(&self, field: &str, default: &str) -> Result<Url, OAuthConfigError> {
        let value = self.optional(field).unwrap_or_else(|| default.to_owned());
        self.url(field, &value)
    }
}

/// https everywhere, except loopback hosts so local stacks and tests can use http.
pub fn check_endpoint(url: &Url) -> Result<(), String> {
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("the URL has no host".into()),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        other => return Err(format!("scheme `{other}` is not allowed: use https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed".into());
    }
    if url.fragment().is_some() {
        return Err("a fragment is not allowed".into());
    }
    Ok(())
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_algorithms<F: Fn(&str) -> Option<String>>(
    vars: &ProviderVars<'_, F>,
) -> Result<Vec<Algorithm>, OAuthConfigError> {
    let Some(value) = vars.optional("ALGORITHMS") else {
        return Ok(DEFAULT_ALGORITHMS.to_vec());
    };
    let mut algorithms = Vec::new();
    for name in split_list(&value) {
        let algorithm: Algorithm = name
            .parse()
            .map_err(|_| vars.invalid("ALGORITHMS", format!("unknown algorithm `{name}`")))?;
        if !ALLOWED_ALGORITHMS.contains(&algorithm) {
            return Err(vars.invalid(
                "ALGORITHMS",
                format!("`{name}` is not allowed for ID tokens (asymmetric algorithms only)"),
            ));
        }
        algorithms.push(algorithm);
    }
    if algorithms.is_empty() {
        return Err(vars.invalid("ALGORITHMS", "give at least one algorithm"));
    }
    Ok(algorithms)
}

fn parse_provider<F: Fn(&str) -> Option<String>>(
    name: &str,
    lookup: &F,
) -> Result<ProviderConfig, OAuthConfigError> {
    let vars = ProviderVars {
        provider: name,
        prefix: format!(
            "TRIBUTARY_OAUTH_{}_",
            name.to_ascii_uppercase().replace('-', "_")
        ),
        lookup,
    };
    let kind_name = vars.required("KIND")?;
    let (kind, default_scopes) = match kind_name.trim() {
        "oidc" => {
            let issuer = vars.required_url("ISSUER")?.to_string();
            // Discovery compares issuers exactly; keep the configured spelling.
            let issuer = vars
                .optional("ISSUER")
                .map(|raw| raw.trim().to_owned())
                .unwrap_or(issuer);
            (ProviderKind::Oidc { issuer }, "openid email profile")
        }
        "oauth2" => (
            ProviderKind::OAuth2 {
                authorization_url: vars.required_url("AUTHORIZATION_URL")?,
                token_url: vars.required_url("TOKEN_URL")?,
                userinfo_url: vars.required_url("USERINFO_URL")?,
                fields: UserinfoFields {
                    id: vars.optional("FIELD_ID").unwrap_or_else(|| "id".into()),
                    email: vars
                        .optional("FIELD_EMAIL")
                        .unwrap_or_else(|| "email".into()),
                    email_verified: vars.optional("FIELD_EMAIL_VERIFIED"),
                    name: vars.optional("FIELD_NAME").unwrap_or_else(|| "name".into()),
                    avatar: vars
                        .optional("FIELD_AVATAR")
                        .unwrap_or_else(|| "avatar_url".into()),
                },
            },
            "",
        ),
        "github" => (
            ProviderKind::GitHub {
                web_url: vars.optional_url("WEB_URL", "https://github.com")?,
                api_url: vars.optional_url("API_URL", "https://api.github.com")?,
            },
            "read:user user:email",
        ),
        other => {
            return Err(vars.invalid(
                "KIND",
                format!("`{other}`: expected `oidc`, `oauth2` or `github`"),
            ))
        }
    };
    let scopes = split_list(
        &vars
            .optional("SCOPES")
            .unwrap_or_else(|| default_scopes.into()),
    );
    if matches!(kind, ProviderKind::Oidc { .. }) && !scopes.iter().any(|s| s == "openid") {
        return Err(vars.invalid("SCOPES", "an OIDC provider needs the `openid` scope"));
    }
    Ok(ProviderConfig {
        name: name.to_owned(),
        client_id: vars.required("CLIENT_ID")?,
        client_secret: Secret::new(vars.required("CLIENT_SECRET")?),
        redirect_uri: vars.required_url("REDIRECT_URI")?,
        algorithms: parse_algorithms(&vars)?,
        scopes,
        kind,
    })
}

/// Every configured provider; none when `TRIBUTARY_OAUTH_PROVIDERS` is unset.
pub fn providers_from(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<ProviderConfig>, OAuthConfigError> {
    let Some(list) = lookup(PROVIDERS) else {
        return Ok(Vec::new());
    };
    let mut providers: Vec<ProviderConfig> = Vec::new();
    for name in split_list(&list) {
        let valid = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid || name.len() > 32 {
            return Err(OAuthConfigError::BadName(name));
        }
        if providers.iter().any(|p| p.name == name) {
            return Err(OAuthConfigError::Duplicate(name));
        }
        providers.push(parse_provider(&name, &lookup)?);
    }
    Ok(providers)
}

pub fn providers_from_env() -> Result<Vec<ProviderConfig>, OAuthConfigError> {
    providers_from(|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const GITHUB: [(&str, &str); 5] = [
        ("TRIBUTARY_OAUTH_PROVIDERS", "github"),
        ("TRIBUTARY_OAUTH_GITHUB_KIND", "github"),
        ("TRIBUTARY_OAUTH_GITHUB_CLIENT_ID", "abc"),
        ("TRIBUTARY_OAUTH_GITHUB_CLIENT_SECRET", "shh"),
        (
            "TRIBUTARY_OAUTH_GITHUB_REDIRECT_URI",
            "https://app.example/auth/oauth/github/callback",
        ),
    ];

    #[test]
    fn a_github_provider_with_defaults() {
        let providers = providers_from(lookup(&GITHUB)).unwrap();
        assert_eq!(providers.len(), 1);
        assert_eq!(providers[0].scopes, ["read:user", "user:email"]);
        assert!(!format!("{:?}", providers[0]).contains("shh"));
    }

    #[test]
    fn errors_name_the_provider_and_the_variable() {
        let mut vars = GITHUB.to_vec();
        vars.retain(|(k, _)| !k.ends_with("CLIENT_SECRET"));
        let error = providers_from(lookup(&vars)).unwrap_err().to_string();
        assert!(
            error.contains("`github`") && error.contains("TRIBUTARY_OAUTH_GITHUB_CLIENT_SECRET"),
            "{error}"
        );

        let oidc = [
            ("TRIBUTARY_OAUTH_PROVIDERS", "corp"),
            ("TRIBUTARY_OAUTH_CORP_KIND", "oidc"),
            ("TRIBUTARY_OAUTH_CORP_ISSUER", "http://idp.example.com"),
        ];
        let error = providers_from(lookup(&oidc)).unwrap_err().to_string();
        assert!(
            error.contains("TRIBUTARY_OAUTH_CORP_ISSUER") && error.contains("https"),
            "{error}"
        );

        let mut weak = GITHUB.to_vec();
        weak[1] = ("TRIBUTARY_OAUTH_GITHUB_KIND", "oidc");
        weak.push(("TRIBUTARY_OAUTH_GITHUB_ISSUER", "https://idp.example.com"));
        weak.push(("TRIBUTARY_OAUTH_GITHUB_ALGORITHMS", "RS256,HS256"));
        let error = providers_from(lookup(&weak)).unwrap_err().to_string();
        assert!(
            error.contains("TRIBUTARY_OAUTH_GITHUB_ALGORITHMS") && error.contains("HS256"),
            "{error}"
        );

        let bad_name = [("TRIBUTARY_OAUTH_PROVIDERS", "Git Hub")];
        assert!(providers_from(lookup(&bad_name)).is_err());
    }
}
