//! Google's side of every Google source test: who a bearer token belongs to (the fakes'
//! authorisation), Google's error bodies, and a token endpoint that verifies the JWT
//! bearer grant of a service account (RS256 against the fixture key) and the refresh
//! grant of a connection.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Value};
use tributary::connectors::service_account::{PrivateKeyPem, ServiceAccountKey};
use tributary::connectors::Credentials;

pub use crate::tokens::TokenBook;

/// The service account of the fixture key.
pub const SERVICE_ACCOUNT_EMAIL: &str = "tributary-sync@fixture-project.iam.gserviceaccount.com";
pub const SERVICE_ACCOUNT_KEY_ID: &str = "fixture-key-1";
/// The account a `google` connection belongs to (what the refresh grant issues tokens for).
pub const CONNECTED_USER: &str = "owner@example.com";

/// A test-only key (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`), PKCS#8
/// as in Google's key files.
pub const SERVICE_ACCOUNT_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC+2/jSee00jQjS
8XT60Qb9RmtARNFCn2IseSJqdvNOTC5O0BiOj7BHHtP4MDu5qJ+a/vUtpi3rdDr0
p9dgMr9ub1/Gxi4p74sCIaZ4DE4unD8i7qcEVm7RfWRrTAhiBDXUpGoLCGilJEvV
SnOTabZ+FiML+LhxU3ySKYuVYlyYKDHZUu9L+AJy8Ejjowffj9e6bl+ngLOrvYa4
EQjEFnFzmnalDSS/NdBnWt5i9aGcwfh3FI/Q58qoQwPLm3Kq8pbCW82WJlQmAsW1
xCgMdF7AAKu5BSrJyLJWdjCg6HbnkxUurq9c7psoapeijf0VTh9Mb4yH4PddQngZ
6ZX4ffLjAgMBAAECggEALGj/9W3EialVh8wCZchUoYOMujgpHyD6FZIcNXy3MZ1d
Wx5l0GpT4MCmHwaOJy268bRotXYJElQJ0drqLSqxy48j0JtVq5FfHaBZ3W4zlPnr
YQP6HfLEt38/ag4Xl0MWiYO2XxnWS7Lt6FP6H6+F9MHO5t65gDkmb9Y18g0gsZCl
0aePKmKkXduGFWhBygNOgZzUH5kOxrvmPvDExACWCxD9PC2C07ZQTwfL0ssLUCeh
ev8Ap4/WpfRGxp7lGSbzTOeS7NEmPsHC8n2uhF/nZyidoTNhllMhXOd5rF799YfJ
KLzja1U2QcZ31+aoToaz9PG8/mmFFueKYRBFa9e9vQKBgQDmAIbHqzfYIXKDuiUX
ifrO9yTLs1b1oioQkcWkU3iXv7rDKOrq45ZjrLo9Te/cUcrupkau/QFMu2zOGJiu
pRNJgkzUW13D383sDPlSG5lJzbSAPx7YhnIEghPJNTfx4fi1/fWapddr1wBvsnAd
FXVXAVPw1lh8um5YqyW3Ys0BDQKBgQDUbslwMUsvrGwaNVi3v2q86ybmR9QewNmT
GAQ8PwmTGbsmWaGiWPjgUCjnWCysfG4b/oq3sos5NZHQWvDomhrBWJ7g2QMd+oME
etfLpAvT76LsJg3+XUeo1bR1rP+OxmcQ9eHYuLmipd5U2t0hecg9GQ+sYK9CC//s
wg/VNyZnrwKBgQDkieFixV7YA2QmP/BbU19EB48oWSsvJ9NkY3RftBE/t+N7yEyk
2T+2CwuDns2Xvi5GtDHH7t47wIB8yTPtVVm00SRGXgLtfpS+2KVkUMgf7aZNSGr9
+5mPoTDH3XmZf1AChjZlVCSZoylr04JTY98UdN1TkaibRyQeNvFjJ2lMgQKBgBXE
9KempYnRJZLZ/Kl32Dxb7LSUj8xG/wTv5R83ZofIj0Ey1jmI3JhAHrD2fD2A0tfT
keuZRGMsdjDf4Og1QqClsEJiestLrLl8zTh1KzEg0ZVZoP18GafXnpKgk9/RvSYj
zG0lIQDl9o7Djv2rOTXpp42Gqu8dw7BDgtPavvjJAoGAB9DP1UwJJhGQByjpLCoG
EE83nkfbjJK6LyI87BrS4plxRO8jj8lyCdNyP0Dg2jMejb9u9mB5TdvHVQ/hBRK3
z5fNjUi1oU/SIwnPv86J+C6hw5m+w0y8CYFMmMkAPb4UHAZUNM0nlt8Wdq8uzPDp
WCyuZBB/dTT3JnfnoNFDz4Q=
-----END PRIVATE KEY-----
";
const SERVICE_ACCOUNT_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAvtv40nntNI0I0vF0+tEG
/UZrQETRQp9iLHkianbzTkwuTtAYjo+wRx7T+DA7uaifmv71LaYt63Q69KfXYDK/
bm9fxsYuKe+LAiGmeAxOLpw/Iu6nBFZu0X1ka0wIYgQ11KRqCwhopSRL1Upzk2m2
fhYjC/i4cVN8kimLlWJcmCgx2VLvS/gCcvBI46MH34/Xum5fp4Czq72GuBEIxBZx
c5p2pQ0kvzXQZ1reYvWhnMH4dxSP0OfKqEMDy5tyqvKWwlvNliZUJgLFtcQoDHRe
wACruQUqyciyVnYwoOh255MVLq6vXO6bKGqXoo39FU4fTG+Mh+D3XUJ4GemV+H3y
4wIDAQAB
-----END PUBLIC KEY-----
";

/// Google's answer to a missing, expired or revoked token.
pub fn unauthorized() -> Response {
    error_response(
        StatusCode::UNAUTHORIZED,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        "authError",
        "global",
        "UNAUTHENTICATED",
    )
}

/// A per-user or per-project quota error (`userRateLimitExceeded` / `rateLimitExceeded`).
pub fn rate_limited(reason: &str) -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        "User Rate Limit Exceeded",
        reason,
        "usageLimits",
        "PERMISSION_DENIED",
    )
}

/// 429 with `Retry-After` (seconds).
pub fn too_many_requests(retry_after_secs: u64) -> Response {
    let mut response = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "Quota exceeded",
        "rateLimitExceeded",
        "usageLimits",
        "RESOURCE_EXHAUSTED",
    );
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        retry_after_secs
            .to_string()
            .parse()
            .expect("a header value"),
    );
    response
}

/// An error in Google's JSON shape (`error.code`, `message`, `errors[]`, `status`).
pub fn error_response(
    status: StatusCode,
    message: &str,
    reason: &str,
    domain: &str,
    status_name: &str,
) -> Response {
    let body = json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}],
        "status": status_name,
    }});
    (status, Json(body)).into_response()
}

/// One token the endpoint issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The impersonated user (`sub`); `None` for the service account itself or a refresh.
    pub subject: Option<String>,
    pub scope: String,
    pub token: String,
    /// `jwt-bearer` or `refresh_token`.
    pub grant_type: String,
}

struct TokenState {
    book: TokenBook,
    grants: Mutex<Vec<Grant>>,
    audience: Mutex<String>,
    /// Subjects the service account may not act as (delegation not granted).
    refused: Mutex<Vec<String>>,
    refresh_token: String,
}

/// Google's OAuth token endpoint on loopback; stops when dropped.
pub struct FakeGoogleToken {
    address: std::net::SocketAddr,
    state: Arc<TokenState>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGoogleToken {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: String,
    #[serde(default)]
    assertion: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    scope: String,
    #[serde(default)]
    sub: Option<String>,
    iat: i64,
    exp: i64,
}

impl FakeGoogleToken {
    pub async fn start(book: TokenBook) -> Self {
        let state = Arc::new(TokenState {
            book,
            grants: Mutex::new(Vec::new()),
            audience: Mutex::new(String::new()),
            refused: Mutex::new(Vec::new()),
            refresh_token: format!("1//refresh-{}", uuid::Uuid::now_v7().simple()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        *state.audience.lock().expect("audience") = format!("http://{address}/token");
        let router = Router::new()
            .route("/token", post(token))
            .with_state(Arc::clone(&state));
        let handle = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("fake Google token endpoint");
        });
        Self {
            address,
            state,
            handle,
        }
    }

    pub fn token_uri(&self) -> String {
        format!("http://{}/token", self.address)
    }

    /// The refresh token a `google` connection holds (issues tokens for [`CONNECTED_USER`]).
    pub fn refresh_token(&self) -> String {
        self.state.refresh_token.clone()
    }

    pub fn grants(&self) -> Vec<Grant> {
        self.state.grants.lock().expect("grants").clone()
    }

    /// Delegation is not granted for `subject`: its assertion gets `unauthorized_client`.
    pub fn refuse_subject(&self, subject: &str) {
        self.state
            .refused
            .lock()
            .expect("refused")
            .push(subject.to_owned());
    }

    pub fn book(&self) -> &TokenBook {
        &self.state.book
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn token(State(state): State<Arc<TokenState>>, body: axum::body::Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<TokenForm>(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Malformed request body",
        );
    };
    match form.grant_type.as_str() {
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => jwt_bearer(&state, form.assertion),
        "refresh_token" if form.refresh_token.as_deref() == Some(&state.refresh_token) => {
            issue(&state, None, CONNECTED_USER, String::new(), "refresh_token")
        }
        "refresh_token" => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Token has been expired or revoked.",
        ),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type",
        ),
    }
}

fn jwt_bearer(state: &TokenState, assertion: Option<String>) -> Response {
    let invalid =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let Some(assertion) = assertion else {
        return invalid("Missing required parameter: assertion");
    };
    let Ok(header) = jsonwebtoken::decode_header(&assertion) else {
        return invalid("Invalid JWT Signature.");
    };
    if header.alg != Algorithm::RS256 || header.kid.as_deref() != Some(SERVICE_ACCOUNT_KEY_ID) {
        return invalid("Invalid JWT Signature.");
    }
    let audience = state.audience.lock().expect("audience").clone();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[SERVICE_ACCOUNT_EMAIL]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let key =
        DecodingKey::from_rsa_pem(SERVICE_ACCOUNT_PUBLIC_PEM.as_bytes()).expect("fixture key");
    let claims = match jsonwebtoken::decode::<AssertionClaims>(&assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(_) => return invalid("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."),
    };
    if claims.exp - claims.iat > 3600 || claims.iss != SERVICE_ACCOUNT_EMAIL {
        return invalid("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.");
    }
    if claims.scope.trim().is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        );
    }
    if let Some(subject) = &claims.sub {
        if state.refused.lock().expect("refused").contains(subject) {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
            );
        }
    }
    let user = claims
        .sub
        .clone()
        .unwrap_or_else(|| SERVICE_ACCOUNT_EMAIL.to_owned());
    issue(state, claims.sub, &user, claims.scope, "jwt-bearer")
}

fn issue(
    state: &TokenState,
    subject: Option<String>,
    user: &str,
    scope: String,
    grant_type: &str,
) -> Response {
    let token = format!("ya29.{}", uuid::Uuid::now_v7().simple());
    state.book.allow(&token, user);
    state.grants.lock().expect("grants").push(Grant {
        subject,
        scope: scope.clone(),
        token: token.clone(),
        grant_type: grant_type.to_owned(),
    });
    let body: Value = json!({
        "access_token": token,
        "expires_in": 3599,
        "token_type": "Bearer",
        "scope": scope,
    });
    Json(body).into_response()
}

/// The fixture service account's key as stored credentials.
pub fn service_account_key(token_uri: &str) -> ServiceAccountKey {
    ServiceAccountKey {
        client_email: SERVICE_ACCOUNT_EMAIL.to_owned(),
        private_key: PrivateKeyPem::new(SERVICE_ACCOUNT_PRIVATE_PEM),
        private_key_id: Some(SERVICE_ACCOUNT_KEY_ID.to_owned()),
        token_uri: Some(token_uri.to_owned()),
    }
}

/// `{"type": "service_account", "key": <fixture>, "subject": ..}`.
pub fn service_account_credentials(token_uri: &str, subject: Option<&str>) -> Credentials {
    Credentials::ServiceAccount {
        key: service_account_key(token_uri),
        subject: subject.map(str::to_owned),
    }
}
