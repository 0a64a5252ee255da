//! Microsoft's side of every Graph source test: the identity platform's token endpoint
//! (`/{tenant}/oauth2/v2.0/token`) for the client credentials grant — with a client secret
//! or a certificate assertion whose RS256 signature, `x5t#S256` thumbprint and claims
//! (`aud` = this endpoint, `iss` = `sub` = the client id, `exp`/`nbf`, a fresh `jti`) it
//! verifies — and for a delegated connection's refresh grant; the fixture app and its
//! certificate; Graph's error bodies.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;
use tributary::connectors::client_credentials::{ClientCertificate, ClientSecret};
use tributary::connectors::service_account::PrivateKeyPem;
use tributary::connectors::Credentials;

use crate::tokens::TokenBook;

/// The fixture tenant (the only one the endpoint knows).
pub const TENANT_ID: &str = "7e3a1c55-0f2b-4d7e-9b61-1c2d3e4f5a6b";
/// The fixture app registration.
pub const CLIENT_ID: &str = "3f8d2b1a-6c4e-4b7a-8e9f-0a1b2c3d4e5f";
pub const CLIENT_SECRET: &str = "fixture~secret.value-not-real";
/// The user of a delegated `microsoft` connection.
pub const CONNECTED_USER: &str = "adele@contoso.example";
/// Who an app-only token acts as, in a [`TokenBook`].
pub const APP_PRINCIPAL: &str = "app:3f8d2b1a-6c4e-4b7a-8e9f-0a1b2c3d4e5f";
/// `https://graph.microsoft.com/.default`.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// A test-only certificate (`openssl req -x509 -subj /CN=tributary-graph-fixture`) and key.
pub const CERTIFICATE_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIDJzCCAg+gAwIBAgIUc/mrBnimSt+5ztrhROP10WFoxgkwDQYJKoZIhvcNAQEL
BQAwIjEgMB4GA1UEAwwXdHJpYnV0YXJ5LWdyYXBoLWZpeHR1cmUwIBcNMjYxMjAy
MTM0ODU1WhgPMjEyNjExMDgxMzQ4NTVaMCIxIDAeBgNVBAMMF3RyaWJ1dGFyeS1n
cmFwaC1maXh0dXJlMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA9Ewv
MilFRwY46bSVZqogL9jbmZgxHYnP8lB4GSuaaUuOwQf80gM45ZPwYd1ZxC9HZrOT
HXk2qPWb4NuDZcX9QtfZ5CMrCncd7t8Gd0/B2iqfbXWtiMT7hXTcS9O/xraj/1kG
SJ5fpsjsHvsWM+h+cjWY61bi5+w7Oz2HkJV57PT6u7d6Khwmhs99GgizKEzWNkcY
yeEdAug3ObAYsHvMccbpbz9XHDuPo96InyVOOLhH+plN3heiuIusu1RrTmHMO0TE
ozW3Gu8vmbQtF3xOsqBJeuV082WuWihkUDDIgOCCxo2XTxGPG++pfyu36NcpYZY+
BCt3p63CS7Bdh5Qi2QIDAQABo1MwUTAdBgNVHQ4EFgQUkMsNJG8V3rBkJD/jLwLo
SnHqdlgwHwYDVR0jBBgwFoAUkMsNJG8V3rBkJD/jLwLoSnHqdlgwDwYDVR0TAQH/
BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAj91d7p7rsSX8u4zJFQgi+yPX6ZaI
6F2OMZ+LUJyg0OsLAoYz0FdvWKhu1hkRk8OeWDNLnBQJIuTjAQkYmg5vQMFCbOPD
FNWGPXEqzQcP9dzYcK5JL4djwVdqaDOavAGwmfK/iMG9h9wIZFXGjzbN6Q8tAtwO
KgYjOAPV+Ptm7JbxNr1LwAIkykSR0vki21vR3LnC/8LoviT3K2ffOrni7QkgWWs+
zahzGaCR375Apw1OdS/uvRk4JCv1nDGCpt9rzm8Hb/JKXvC/vNTMj/3/nLeh9n0t
bV8DI8HqpaN8S8fdl5R7siOSS7sabCLZLrUAkjlmdLEz79Jq2Z3ScT/ZOA==
-----END CERTIFICATE-----
";
pub const CERTIFICATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQD0TC8yKUVHBjjp
tJVmqiAv2NuZmDEdic/yUHgZK5ppS47BB/zSAzjlk/Bh3VnEL0dms5MdeTao9Zvg
24Nlxf1C19nkIysKdx3u3wZ3T8HaKp9tda2IxPuFdNxL07/GtqP/WQZInl+myOwe
+xYz6H5yNZjrVuLn7Ds7PYeQlXns9Pq7t3oqHCaGz30aCLMoTNY2RxjJ4R0C6Dc5
sBiwe8xxxulvP1ccO4+j3oifJU44uEf6mU3eF6K4i6y7VGtOYcw7RMSjNbca7y+Z
tC0XfE6yoEl65XTzZa5aKGRQMMiA4ILGjZdPEY8b76l/K7fo1ylhlj4EK3enrcJL
sF2HlCLZAgMBAAECggEACHU+yRDOujfH7qd26LgJJz7t03KGeMxVq8EHd2+gB/c6
uQoqwaak6KXnk6vTOMyePzsGY+XXc6AVRoKzGOny68aHX7OsAM/A9I06LxVO09vX
6zVAzdRsFOHH4sQxBpM6OFP/uLHrA94+9o+g5Ckvf4rFgZhfgMIYBuQJdoMGVqLP
Xbrw+RIaIDrTDsd9wljbKeNAXQgDfNE8/H4NgpjkHEPKCytd80NyDePQT5TCEIcG
QYYjr9ygGnZ6TBu2BIjc44Gy3lz8uNEL4avuGorAPVGwgKgUpHuPlTNO+VqJ4oqF
u8KRXkWQl3pPnggdcUd4+YVWyJuY64U46ieTAxIpZQKBgQD+nBZBn9wvxNHlofSS
Sl8mbgS3YnHZQYB8LT/tN8a4hkorLhj/2oU45YoesgHcv3PRPAD0K25LYDCQ5ji1
G70jJcBmnRFf4vuWqbbd08uKUjyMLxXK2joCtLtm2Mdafd3QUvxaaudZ0apM3rdd
ZFYL97dPXesjGm9sbPMCU3oE3wKBgQD1oa6uNxbfl1ksVHoPvFmaQvdS0VW1KemA
aPNFr7h+3ERon/1CUBv1Vm7KzGlSaiOLGp2hHbJ74/e8p6OJ8VS7i7EA77S/Q+/o
gsvOBsgIoLU4H6F8OlF1oUNzaB9jvFYLNn64Vwc/cIeUUtxwBc+5rU4H0L5L2dXs
Vg2rPItXRwKBgDl8anYErwVGDhIn3/2LtzIJEx2Ip6Xi6SygVteriT2ubF6VeOWD
pCK1iNrnXA5IV9D9GEYI7E0ueaitok4Z5jliU6+XdQ3ORPm+deBd6o3fhXYtR2FW
plRoFAvjlBc1ZficVAfiLTwVX7sdag83EUqAcq4DyYxScqfrbW6wBFPHAoGACcsh
gNa3dcC+EHNpznjPBcSHweiQx0Fdiv4kPPINpBk6LQW7/kndY4HHtxRBWsTal/A+
uq7JcAEd3oq8jYJuw2+FZikohru5tAaLA7LnhNiLgSpZsO9OUidU3iQXpE1dDONm
WAk4Q8JD1ZkcKudAagHL66nZ/II58ktYDizCzX8CgYBNm0V3PhdMADi2YoC5cZiH
X2JS8Iz768ckeY7CquUtFfUJC3KynOCm4RwJC+ld3zq0BpH7dmUhz26e75N6CBYg
/ZXRUKEkPe7qtZOVvPj5a20GDIqdmiwcMH8S4D2xGZyGE0wNp9cwIz5soOU4e2df
QqWCh+NO/xoTKdCW5jpvPg==
-----END PRIVATE KEY-----
";
const CERTIFICATE_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA9EwvMilFRwY46bSVZqog
L9jbmZgxHYnP8lB4GSuaaUuOwQf80gM45ZPwYd1ZxC9HZrOTHXk2qPWb4NuDZcX9
QtfZ5CMrCncd7t8Gd0/B2iqfbXWtiMT7hXTcS9O/xraj/1kGSJ5fpsjsHvsWM+h+
cjWY61bi5+w7Oz2HkJV57PT6u7d6Khwmhs99GgizKEzWNkcYyeEdAug3ObAYsHvM
ccbpbz9XHDuPo96InyVOOLhH+plN3heiuIusu1RrTmHMO0TEozW3Gu8vmbQtF3xO
sqBJeuV082WuWihkUDDIgOCCxo2XTxGPG++pfyu36NcpYZY+BCt3p63CS7Bdh5Qi
2QIDAQAB
-----END PUBLIC KEY-----
";

/// `{"type": "client_credentials", "client_id", "client_secret"}` of the fixture app.
pub fn client_secret_credentials() -> Credentials {
    Credentials::ClientCredentials {
        client_id: CLIENT_ID.into(),
        client_secret: Some(ClientSecret::new(CLIENT_SECRET)),
        certificate: None,
    }
}

/// `{"type": "client_credentials", "client_id", "certificate": {certificate, private_key}}`.
pub fn client_certificate_credentials() -> Credentials {
    Credentials::ClientCredentials {
        client_id: CLIENT_ID.into(),
        client_secret: None,
        certificate: Some(ClientCertificate {
            certificate: CERTIFICATE_PEM.into(),
            private_key: PrivateKeyPem::new(CERTIFICATE_KEY_PEM),
        }),
    }
}

/// Graph's error body: `{"error": {"code", "message", "innerError": {...}}}`.
pub fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {
        "code": code,
        "message": message,
        "innerError": {"date": "2026-12-02T10:00:00", "request-id": "00000000-0000-0000-0000-000000000000",
                       "client-request-id": "00000000-0000-0000-0000-000000000000"},
    }});
    (status, Json(body)).into_response()
}

/// Graph's answer to a missing, expired or revoked token.
pub fn unauthorized() -> Response {
    graph_error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        "Access token has expired or is not yet valid.",
    )
}

/// 429 with `Retry-After` (seconds), as Graph throttles.
pub fn too_many_requests(retry_after_secs: u64) -> Response {
    with_retry_after(
        graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests.",
        ),
        retry_after_secs,
    )
}

/// 503 with `Retry-After`, as SharePoint answers when it is busy.
pub fn service_unavailable(retry_after_secs: u64) -> Response {
    with_retry_after(
        graph_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        ),
        retry_after_secs,
    )
}

fn with_retry_after(mut response: Response, retry_after_secs: u64) -> Response {
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        retry_after_secs
            .to_string()
            .parse()
            .expect("a header value"),
    );
    response
}

/// One token the endpoint issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// `client_credentials` or `refresh_token`.
    pub grant_type: String,
    /// `secret`, `certificate` or `refresh`.
    pub client_auth: String,
    pub scope: String,
    pub token: String,
}

struct LoginState {
    book: TokenBook,
    grants: Mutex<Vec<Grant>>,
    seen_jti: Mutex<HashSet<String>>,
    /// The address the endpoint is reached at, `http://<addr><prefix>`.
    origin: Mutex<String>,
    refresh_token: String,
}

/// The identity platform's token endpoint, as a router to mount at `prefix` (e.g. `/login`)
/// of a fake's server; [`MicrosoftLogin::bind`] once the server's address is known.
#[derive(Clone)]
pub struct MicrosoftLogin {
    state: Arc<LoginState>,
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    client_assertion_type: Option<String>,
    #[serde(default)]
    client_assertion: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct AssertionClaims {
    aud: String,
    iss: String,
    sub: String,
    jti: String,
    nbf: i64,
    exp: i64,
}

impl MicrosoftLogin {
    pub fn new(book: TokenBook) -> Self {
        Self {
            state: Arc::new(LoginState {
                book,
                grants: Mutex::new(Vec::new()),
                seen_jti: Mutex::new(HashSet::new()),
                origin: Mutex::new(String::new()),
                refresh_token: format!("0.refresh-{}", uuid::Uuid::now_v7().simple()),
            }),
        }
    }

    /// Where it is served: `base` is `http://<addr><prefix>` (assertions' `aud` must be
    /// `<base>/<tenant>/oauth2/v2.0/token`).
    pub fn bind(&self, base: &str) {
        *self.state.origin.lock().expect("origin") = base.trim_end_matches('/').to_owned();
    }

    /// The token endpoint's routes, relative to the mount point.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .with_state(Arc::clone(&self.state))
    }

    /// The fixture tenant's token URL.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{TENANT_ID}/oauth2/v2.0/token",
            self.state.origin.lock().expect("origin")
        )
    }

    /// The refresh token a delegated `microsoft` connection holds (for [`CONNECTED_USER`]).
    pub fn refresh_token(&self) -> String {
        self.state.refresh_token.clone()
    }

    pub fn grants(&self) -> Vec<Grant> {
        self.state.grants.lock().expect("grants").clone()
    }

    pub fn book(&self) -> &TokenBook {
        &self.state.book
    }
}

/// An identity-platform error: `{error, error_description: "AADSTS…", error_codes}`.
fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}"),
        "error_codes": [code],
        "timestamp": "2026-12-02 10:00:00Z",
        "trace_id": "00000000-0000-0000-0000-000000000000",
        "correlation_id": "00000000-0000-0000-0000-000000000000",
    });
    (status, Json(body)).into_response()
}

async fn token(
    State(state): State<Arc<LoginState>>,
    Path(tenant): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if tenant != TENANT_ID {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(&body) else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        );
    };
    match form.grant_type.as_str() {
        "client_credentials" => client_credentials(&state, &tenant, form),
        "refresh_token" if form.refresh_token.as_deref() == Some(&state.refresh_token) => {
            let scope = form.scope.unwrap_or_default();
            issue(&state, "refresh_token", "refresh", scope, CONNECTED_USER)
        }
        "refresh_token" => aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "Provided grant is invalid or malformed.",
        ),
        _ => aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ),
    }
}

fn client_credentials(state: &LoginState, tenant: &str, form: TokenForm) -> Response {
    if form.client_id.as_deref() != Some(CLIENT_ID) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    let scope = form.scope.clone().unwrap_or_default();
    if scope != GRAPH_DEFAULT_SCOPE {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        );
    }
    let client_auth = match (&form.client_secret, &form.client_assertion) {
        (Some(secret), None) if secret == CLIENT_SECRET => "secret",
        (Some(_), None) => {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            )
        }
        (None, Some(assertion)) => {
            if let Err(response) = verify_assertion(state, tenant, &form, assertion) {
                return response;
            }
            "certificate"
        }
        _ => {
            return aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        }
    };
    issue(
        state,
        "client_credentials",
        client_auth,
        scope,
        APP_PRINCIPAL,
    )
}

fn thumbprint() -> String {
    ClientCertificate {
        certificate: CERTIFICATE_PEM.into(),
        private_key: PrivateKeyPem::new(String::new()),
    }
    .thumbprint_sha256()
    .expect("the fixture certificate")
}

// The fake answers with the refusal itself; boxing it would buy nothing in a test.
#[allow(clippy::result_large_err)]
fn verify_assertion(
    state: &LoginState,
    tenant: &str,
    form: &TokenForm,
    assertion: &str,
) -> Result<(), Response> {
    let invalid = |code: u32, description: &str| {
        aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        )
    };
    if form.client_assertion_type.as_deref()
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return Err(invalid(700024, "Client assertion type is not jwt-bearer."));
    }
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| invalid(50027, "JWT token is invalid or malformed."))?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid(
            5002738,
            "Invalid JWT token. 'RS256' is the only supported algorithm.",
        ));
    }
    if header.x5t_s256.as_deref() != Some(thumbprint().as_str()) {
        return Err(invalid(
            700027,
            "The certificate with identifier used to sign the client assertion is not registered on application.",
        ));
    }
    let audience = format!(
        "{}/{tenant}/oauth2/v2.0/token",
        state.origin.lock().expect("origin")
    );
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[CLIENT_ID]);
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    let key = DecodingKey::from_rsa_pem(CERTIFICATE_PUBLIC_PEM.as_bytes()).expect("fixture key");
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
        .map_err(|error| {
            invalid(
                700027,
                &format!("Client assertion failed signature or claim validation: {error}."),
            )
        })?
        .claims;
    if claims.sub != CLIENT_ID || claims.iss != CLIENT_ID || claims.aud.is_empty() {
        return Err(invalid(
            700023,
            "Client assertion audience or subject is invalid.",
        ));
    }
    if claims.exp - claims.nbf > 600 + 60 {
        return Err(invalid(
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    if !state.seen_jti.lock().expect("jti").insert(claims.jti) {
        return Err(invalid(
            700025,
            "Client assertion has already been used (jti replay).",
        ));
    }
    Ok(())
}

fn issue(
    state: &LoginState,
    grant_type: &str,
    client_auth: &str,
    scope: String,
    principal: &str,
) -> Response {
    let token = format!("eyJ0eXAi.fixture.{}", uuid::Uuid::now_v7().simple());
    state.book.allow(&token, principal);
    state.grants.lock().expect("grants").push(Grant {
        grant_type: grant_type.to_owned(),
        client_auth: client_auth.to_owned(),
        scope: scope.clone(),
        token: token.clone(),
    });
    let mut body = json!({
        "token_type": "Bearer",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": token,
    });
    if grant_type == "refresh_token" {
        body["scope"] = json!(scope);
        body["refresh_token"] = json!(state.refresh_token);
    }
    Json(body).into_response()
}
