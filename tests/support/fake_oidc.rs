//! A fake OpenID provider for the negative tests: an axum server on loopback that a test
//! scripts to issue exactly the ID token (or error) it needs, including the bad ones a real
//! provider cannot be made to issue (wrong `aud`, `alg: none`, unknown `kid`, …).
//!
//! It serves discovery, `/jwks` (an RS256 and an ES256 key with fixed key ids, plus a second
//! RSA key once [`FakeOidc::rotate_keys`] is called), `/token` and `/userinfo`. There is no
//! authorization endpoint worth the name: a test starts the sign-in at our app, scripts what
//! `/token` answers for a code of its choosing with [`FakeOidc::script`], and calls our
//! callback with that code itself.
//!
//! `/token` checks what a strict provider checks (grant type, a known and unused code, the
//! PKCE verifier against the scripted challenge, the exact redirect URI, HTTP Basic client
//! credentials). A request that breaks one of those is refused with an OAuth error and
//! recorded in [`FakeOidc::violations`], so a test can tell "our app sent a bad token
//! request" from "the provider refused as scripted".
//!
//! The keys are fixed test keys generated once with `openssl` (never used anywhere else);
//! the JWK components next to them were computed from them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Url;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Key id of the RS256 key in the JWKS; the default ID token is signed with it.
pub const RSA_KID: &str = "fake-rsa-1";
/// Key id of the ES256 key in the JWKS.
pub const EC_KID: &str = "fake-ec-1";
/// Key id of the second RSA key, published only after [`FakeOidc::rotate_keys`].
pub const ROTATED_RSA_KID: &str = "fake-rsa-2";

/// PKCS#1, 2048 bits: `openssl genrsa -traditional 2048`.
const RSA_PRIVATE_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEA1AThV/HtDlA64XpuKUCor5ve1x72AjUKUV4g6ktA5hlP8Yrp
+0ewv7xC4gBakaHGU/KWInsvYd/j//PVdp3bFSaoq1HaL00z5/AEU//KUk1NSWg/
eHPOfEjQw/WU70HXe2YJDKATh9NSmGeEW76TuQk//ES9jff5OCPahHSLzkWKbQDx
XWb94L6N3/IV0v5/9b6HEoVXLPGsmwdlE5g7WTCgWqnKhnp9/ZrTIeYqBuF/WQFa
MsFhiNyvaaLE9nOMEtMK9wrU3wLt+rdw/q7cNA9Fj14DJNk4+BVqEYUhpcIviTdt
b5A6tICXbQn+vYJa1V0cdSvnHlL0SsoxipxkFwIDAQABAoIBAA6jrvWWGE1f385C
2F6+frHwHCEUG7NyUHM8LHSmW+WnbhwvqyafwBtfwenTUW2d0yZnvn3Ergm0M7eF
cWypIKqjX+EYcULJMgzRR1M6JbusvRSU/1DvWhy9ywsaJr2lzl2lts6UMlUIvpAU
ZxC4pirlccbBmP8NALx4yUqntiGODnPpeOFZHc+ciegqFjmmqpqxrPVsI93pUQdP
PSepRJCYgOPjkoAhLFXwpFwzXUjAwhSl42BQjFjl+6tXs7rTdofRRbr9H2PWZrSR
AqGxsK0ejn5JVhzQ3h+dWKorqRMG+8nbk/mQ3rTy11cTqOImPcPeQm2zIzAxbHFN
+zCGi/0CgYEA9n5qD1bZXxRQ/8HQTzWs13Y98XaBO1pU97TOFS5urQqEjXzZzg4q
vix1oSQWGbqwPqsfa2C6I8VLsPbIfx8gge39FCeuCKPuK3PvIhIAxV6mEoAWXp0c
2I25xD5P2/jnKS8ja/7uPi6B+0jZJyd4ZnoR/OZTYmak63cdSGQGa20CgYEA3DIa
feIyNYEU9ilyYQjZv21fsp28ZWbZmdToMGsQe0JwcAm70wm9e6jZG22MsjOUudgP
IgkMoBcHpDmxghusAgwubANyH3+S7G4APOUGSJv+2wqwMcOoG7WLaE0tym5K43Sj
FkKLXGB+ZBBVdzTvP2mm7HTbPYCXOmPrt0qGNxMCgYBAjWyjJcB5eO2ZfR1bkRf5
uTqRoNJJQ+fakxwhSe6sHIQINbkokGc7NJN9puCuzkhXsSLiUQuOUJ348zggqnst
67CKdbXLB3tZH9xxVLuk9JuTXr38+zJRuBP9Q8BQQEfxbindn36vBCkAMNzFtz19
wNwzGfKeY3kvPRuLGL7hpQKBgHbC4zzwCeqHo1mdQx6I2oB/qjS5FIqQbV6l0VGD
/VCtpd0XsuEBCNywVeCQNmlKnrWZjZfqz49svGdb4pxs9lnoXgVN2niYoxK3xZMS
Z1A0KsHTQvKkN4Aya20m60KaN/PzzZ5M58M8HA82LBJuT3ehMTGpWTITr/0DNXgX
TspXAoGBAMk80u7n5NbQ5zihpGPNGmu4PjU6T6BIT7SRUXMMhjdzjEGzU2PXdKrU
ZFIGw1sFVsiqkesvYuMN2DeOdsYsVRvNug7+cf5I368AGOY9qhhbsDpg8tdweH4l
H4nK1bZfaB6kbtv3uPt6XxrMhlvtk705lFqGPuyeZ0Pxv8J9x6jg
-----END RSA PRIVATE KEY-----";
const RSA_N: &str = "1AThV_HtDlA64XpuKUCor5ve1x72AjUKUV4g6ktA5hlP8Yrp-0ewv7xC4gBakaHGU_KWInsvYd_j__PVdp3bFSaoq1HaL00z5_AEU__KUk1NSWg_eHPOfEjQw_WU70HXe2YJDKATh9NSmGeEW76TuQk__ES9jff5OCPahHSLzkWKbQDxXWb94L6N3_IV0v5_9b6HEoVXLPGsmwdlE5g7WTCgWqnKhnp9_ZrTIeYqBuF_WQFaMsFhiNyvaaLE9nOMEtMK9wrU3wLt-rdw_q7cNA9Fj14DJNk4-BVqEYUhpcIviTdtb5A6tICXbQn-vYJa1V0cdSvnHlL0SsoxipxkFw";
const RSA_E: &str = "AQAB";

/// The public half of [`RSA_PRIVATE_PEM`] as SubjectPublicKeyInfo PEM: what an attacker
/// would use as the HMAC secret in the RS256 → HS256 confusion attack.
pub const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1AThV/HtDlA64XpuKUCo
r5ve1x72AjUKUV4g6ktA5hlP8Yrp+0ewv7xC4gBakaHGU/KWInsvYd/j//PVdp3b
FSaoq1HaL00z5/AEU//KUk1NSWg/eHPOfEjQw/WU70HXe2YJDKATh9NSmGeEW76T
uQk//ES9jff5OCPahHSLzkWKbQDxXWb94L6N3/IV0v5/9b6HEoVXLPGsmwdlE5g7
WTCgWqnKhnp9/ZrTIeYqBuF/WQFaMsFhiNyvaaLE9nOMEtMK9wrU3wLt+rdw/q7c
NA9Fj14DJNk4+BVqEYUhpcIviTdtb5A6tICXbQn+vYJa1V0cdSvnHlL0Ssoxipxk
FwIDAQAB
-----END PUBLIC KEY-----
";

/// A second RSA key, PKCS#1, 2048 bits: unknown to the JWKS until a rotation.
const ROTATED_RSA_PRIVATE_PEM: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEA8Jy4OhPrRTVtqPYNUewZwOLNtqq+T0HhXsOUe5sKFBBVzlUC
3qcN7DL4fa0JB9iVS3s5FGcC2+aCrRJwGNJYqN8lWtDRvaer5PG0xWVSBks8TOQf
BWProcsnzQ6ne7NFELjp2Djq8c4Zli56lC8ECDYkQkfDgEJFb4rg1EUlHY+ruK9D
t2zEO7D10vTtU1V2n45yOjtC9PXoj3ruRZWIAq1LnpNS2kcuF8YlCNXFITlDjvoN
atPdXNrCGdFCi134qkIpzwiceg/+W9xEkrTNjdn2RjzCgpYtj5M5ekdyisxZf9Tq
Ww08dm5wNiI2fE+n5hv3tA6EFx8SsoQPrq9FcQIDAQABAoIBACa9RNgXpECaBT7i
kWsdiq6d6vsRwImoP23vgApAAGkR5uQilySxXDIpqWJ//T07J3EQtN75EDfG2Zvz
T620vZDq5JZw7+QLiUcs4gBfe3Zcn1J4mW9XvXS+QyPmdnFvKpvc+cwrVdXQFhnc
/+AN4HtQpEPbpA6+x3PZtgXXNXjtpzpaZxg5KoL0x9w852mdPUq9fqhiI6R+qUJH
JgNFkmi1JLNfhEim1yLOmygqrLnNHefGeWefPGoMLCzVNtOmQvO+dN93MbCQ0TLe
DQXst4TjMcIXmThNt0DYGk4VPFSZfvIodDEhqyshypcBu/DtFLOZbtQgOvQ714D8
BLbeFZUCgYEA+ZSpt8ey/g5veAtP96fkkouKb++OSLW3J6t9RzXIWprNrt1rhbCy
zajDqAQZMJYGJS7SANZYUc8TRf7AYQib3FU7FyBYwGGdMkTe8DHg0Bcf5MDoKQ0W
58BhNheulXUYieREQOvEIfJ8RwUsO50N1W2vPY0DC9u+JpQmO7Ocg98CgYEA9s0B
HsKmQhHPFAXyGo8YgiBrIp6BHKq7ka3WU1txZT/FmiNN7sjtNBV9pBXL7q4bmaKV
YCBeCsyDdUF4fG6q4saFfCxu2/a+sXEr/s7qzzkFOzYfu+eZ01qcITTJR5jZNYXT
OiQJotiUUNj/KQJ57pjqcLL+AKbOQmnEUwZy4K8CgYBOSTh3Qje+Ay8p23qI92v2
H7kb5WufGQjLc7pHNPKUoQw1dpS8ibF8WxyMPkTcfaKN1ULgKlvnxWmJQiB8D2Q8
V6vCVE4igjv5waqgczTOcQJ7EZuBDO8LYMfdXM5RaTp6PlS+fHW4JEShTlkSle/5
637Vcr7q4FGj7kKT5YIJxwKBgEBRBoS0p006hOOr9P704acvuZvJAM6us7jwO5V3
lCKVrvJPVwTuedqD6z0yrPWji+/KzfDCHp/j0jJhgHu0/3Wf1LOahL1wHRvy6Us7
MzgTnQhkP3rhjVXmHCAPOJEfBSQMnxJcx+IXXPeAxWYzjgEe+qGqE8WpssDd/VrB
qHhjAoGBAOKSQrlfD9QQv7osDsy1d1nYtZQ1ZDnFKiipI23YC6tNSPA4T6TMCOy+
4JBsXrK4nFzIwgWeNEN/V+dxbm5Mn1Ori4M9qusx9tENYKIC4Q71gMOixSyuDQiV
5VKsvrSq5a/rjJcRrow5CldTJ47u+oFm6oi36lneLOEBNDtaByj2
-----END RSA PRIVATE KEY-----";
const ROTATED_RSA_N: &str = "8Jy4OhPrRTVtqPYNUewZwOLNtqq-T0HhXsOUe5sKFBBVzlUC3qcN7DL4fa0JB9iVS3s5FGcC2-aCrRJwGNJYqN8lWtDRvaer5PG0xWVSBks8TOQfBWProcsnzQ6ne7NFELjp2Djq8c4Zli56lC8ECDYkQkfDgEJFb4rg1EUlHY-ruK9Dt2zEO7D10vTtU1V2n45yOjtC9PXoj3ruRZWIAq1LnpNS2kcuF8YlCNXFITlDjvoNatPdXNrCGdFCi134qkIpzwiceg_-W9xEkrTNjdn2RjzCgpYtj5M5ekdyisxZf9TqWw08dm5wNiI2fE-n5hv3tA6EFx8SsoQPrq9FcQ";

/// PKCS#8, P-256: `openssl ecparam -genkey -name prime256v1 | openssl pkcs8 -topk8 -nocrypt`.
const EC_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQggKNh8cP7WNQzt82W
cgZGgt1C0F0WMowO7oJYxuicdA+hRANCAARs5ow9ATfesOndcDeEKgkUhNf6muVz
AtqvHwQPasNAMdte1SGsWmu8ot4ByY1hXY45jG1QpuIWyjci4eWhQkxg
-----END PRIVATE KEY-----";
const EC_X: &str = "bOaMPQE33rDp3XA3hCoJFITX-prlcwLarx8ED2rDQDE";
const EC_Y: &str = "217VIaxaa7yi3gHJjWFdjjmMbVCm4hbKNyLh5aFCTGA";

/// The DER inside a PEM (jsonwebtoken's `*_der` constructors take PKCS#1 for RSA and
/// PKCS#8 for EC, which is what the PEMs above hold).
fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD
        .decode(body)
        .expect("an embedded test key is valid base64")
}

/// How the ID token is signed.
#[derive(Clone, Debug)]
pub enum Signing {
    /// RS256 with the published RSA key.
    Rs256,
    /// ES256 with the published EC key.
    Es256,
    /// RS256 with the second RSA key, absent from the JWKS until [`FakeOidc::rotate_keys`].
    RotatedRs256,
    /// `alg: none` and an empty signature.
    Unsigned,
    /// HS256 with these bytes as the HMAC secret.
    Hs256(Vec<u8>),
}

/// An ID token as the test wants it: claims, signing and the header's `kid`. Built valid by
/// [`FakeOidc::id_token`]; tests break it with [`IdToken::claim`], [`IdToken::without`]
/// and [`IdToken::signed`].
#[derive(Clone, Debug)]
pub struct IdToken {
    pub claims: Map<String, Value>,
    pub signing: Signing,
    pub kid: Option<String>,
}

impl IdToken {
    /// Sets (or replaces) one claim.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.to_owned(), value);
        self
    }

    /// Removes one claim.
    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Another signing, with this `kid` in the header.
    pub fn signed(mut self, signing: Signing, kid: Option<&str>) -> Self {
        self.signing = signing;
        self.kid = kid.map(str::to_owned);
        self
    }

    /// The compact JWS.
    pub fn encode(&self) -> String {
        let (algorithm, key) = match &self.signing {
            Signing::Rs256 => (
                Algorithm::RS256,
                EncodingKey::from_rsa_der(&pem_to_der(RSA_PRIVATE_PEM)),
            ),
            Signing::Es256 => (
                Algorithm::ES256,
                EncodingKey::from_ec_der(&pem_to_der(EC_PRIVATE_PEM)),
            ),
            Signing::RotatedRs256 => (
                Algorithm::RS256,
                EncodingKey::from_rsa_der(&pem_to_der(ROTATED_RSA_PRIVATE_PEM)),
            ),
            Signing::Hs256(secret) => (Algorithm::HS256, EncodingKey::from_secret(secret)),
            Signing::Unsigned => {
                let mut header = json!({"alg": "none", "typ": "JWT"});
                if let Some(kid) = &self.kid {
                    header["kid"] = json!(kid);
                }
                let part = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
                return format!(
                    "{}.{}.",
                    part(&header),
                    part(&Value::Object(self.claims.clone()))
                );
            }
        };
        let mut header = Header::new(algorithm);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, &self.claims, &key).expect("sign the test ID token")
    }
}

/// What `/token` answers for one code.
#[derive(Clone, Debug)]
pub enum TokenReply {
    /// `{access_token, token_type: "Bearer", expires_in, id_token}`.
    IdToken(IdToken),
    /// An OAuth error response (RFC 6749 §5.2) with this HTTP status.
    Error {
        status: u16,
        error: String,
        description: String,
    },
}

/// The provider's side of one authorization: what `/token` answers for the code, what
/// `/userinfo` answers for the access token issued with it, and the PKCE challenge the
/// verifier must match (the `code_challenge` of our authorization URL) when known.
#[derive(Clone, Debug)]
pub struct Script {
    pub reply: TokenReply,
    pub userinfo: Option<Value>,
    pub code_challenge: Option<String>,
}

impl Script {
    pub fn id_token(token: IdToken) -> Self {
        Self {
            reply: TokenReply::IdToken(token),
            userinfo: None,
            code_challenge: None,
        }
    }

    pub fn error(status: u16, error: &str, description: &str) -> Self {
        Self {
            reply: TokenReply::Error {
                status,
                error: error.to_owned(),
                description: description.to_owned(),
            },
            userinfo: None,
            code_challenge: None,
        }
    }

    pub fn with_userinfo(mut self, userinfo: Value) -> Self {
        self.userinfo = Some(userinfo);
        self
    }

    pub fn with_challenge(mut self, code_challenge: impl Into<String>) -> Self {
        self.code_challenge = Some(code_challenge.into());
        self
    }
}

/// Requests served, per endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub discovery: u64,
    pub jwks: u64,
    pub token: u64,
    pub userinfo: u64,
}

#[derive(Default)]
struct Scripted {
    iss_parameter_supported: bool,
    rotated: bool,
    jwks_down: bool,
    /// `Cache-Control` of `/jwks` responses.
    jwks_cache_control: Option<String>,
    /// [`RSA_KID`] no longer published.
    rsa_withdrawn: bool,
    /// [`RSA_KID`] now names the second RSA key (rotation under the same `kid`).
    rsa_rotated_in_place: bool,
    /// What discovery names as the issuer, when not the real one.
    discovery_issuer: Option<String>,
    /// By authorization code; taken on use, so a code works once.
    codes: HashMap<String, Script>,
    /// Userinfo by access token.
    userinfo: HashMap<String, Value>,
    counts: Counts,
    violations: Vec<String>,
}

struct Inner {
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    scripted: Mutex<Scripted>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Scripted> {
        // A panicking test thread must not hide the state from the others.
        self.scripted.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake provider; dropping it stops it.
pub struct FakeOidc {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// The redirect URI the token request must carry.
    pub redirect_uri: String,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOidc {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeOidc {
    /// Starts the provider on a free loopback port for one client. Discovery announces the
    /// RFC 9207 `iss` parameter until [`FakeOidc::set_iss_parameter_supported`] says not.
    pub async fn start(client_id: &str, client_secret: &str, redirect_uri: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let issuer = format!("http://{}", listener.local_addr().expect("local address"));
        let inner = Arc::new(Inner {
            issuer: issuer.clone(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scripted: Mutex::new(Scripted {
                iss_parameter_supported: true,
                ..Scripted::default()
            }),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(inner.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the fake OpenID provider stopped");
        });
        FakeOidc {
            issuer,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            inner,
            server,
        }
    }

    /// Whether discovery announces `authorization_response_iss_parameter_supported`. Our
    /// app reads discovery once per process: set this before its first sign-in.
    pub fn set_iss_parameter_supported(&self, supported: bool) {
        self.inner.lock().iss_parameter_supported = supported;
    }

    /// Publishes the second RSA key ([`ROTATED_RSA_KID`]) next to the others.
    pub fn rotate_keys(&self) {
        self.inner.lock().rotated = true;
    }

    /// Discovery names `issuer` instead of the provider's own (a misconfigured or spoofed
    /// document). Set before the app's first sign-in, like the `iss` switch.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        self.inner.lock().discovery_issuer = Some(issuer.to_owned());
    }

    /// `/jwks` answers with this `Cache-Control` header.
    pub fn set_jwks_cache_control(&self, value: &str) {
        self.inner.lock().jwks_cache_control = Some(value.to_owned());
    }

    /// Withdraws [`RSA_KID`] from the JWKS (a compromised or retired key).
    pub fn withdraw_rsa_key(&self) {
        self.inner.lock().rsa_withdrawn = true;
    }

    /// Publishes the second RSA key under [`RSA_KID`] instead of the first: tokens signed
    /// with [`Signing::RotatedRs256`] and `kid` [`RSA_KID`] are now the valid ones.
    pub fn rotate_rsa_key_in_place(&self) {
        self.inner.lock().rsa_rotated_in_place = true;
    }

    /// While down, `/jwks` answers 503 (a provider outage).
    pub fn set_jwks_down(&self, down: bool) {
        self.inner.lock().jwks_down = down;
    }

    /// A valid ID token for our client, signed RS256 with the published key: `iss`,
    /// `aud` = client id (no `azp`), `sub`, `iat` = now, `exp` = now + 300, `nonce`, and
    /// `email` with `email_verified: true` when an email is given.
    pub fn id_token(&self, sub: &str, email: Option<&str>, nonce: &str) -> IdToken {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "name": "Fake Person",
        });
        if let Some(email) = email {
            claims["email"] = json!(email);
            claims["email_verified"] = json!(true);
        }
        let Value::Object(claims) = claims else {
            unreachable!("a JSON object literal")
        };
        IdToken {
            claims,
            signing: Signing::Rs256,
            kid: Some(RSA_KID.to_owned()),
        }
    }

    /// What `/token` answers for `code` (once).
    pub fn script(&self, code: &str, script: Script) {
        self.inner.lock().codes.insert(code.to_owned(), script);
    }

    pub fn counts(&self) -> Counts {
        self.inner.lock().counts
    }

    /// Token requests that broke the protocol (see the module documentation).
    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().violations.clone()
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn discovery(State(inner): State<Arc<Inner>>) -> Json<Value> {
    let (supported, named) = {
        let mut scripted = inner.lock();
        scripted.counts.discovery += 1;
        (
            scripted.iss_parameter_supported,
            scripted.discovery_issuer.clone(),
        )
    };
    let issuer = &inner.issuer;
    Json(json!({
        "issuer": named.as_deref().unwrap_or(issuer),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "authorization_response_iss_parameter_supported": supported,
    }))
}

async fn jwks(State(inner): State<Arc<Inner>>) -> Response {
    let (rotated, down, cache_control, withdrawn, in_place) = {
        let mut scripted = inner.lock();
        scripted.counts.jwks += 1;
        (
            scripted.rotated,
            scripted.jwks_down,
            scripted.jwks_cache_control.clone(),
            scripted.rsa_withdrawn,
            scripted.rsa_rotated_in_place,
        )
    };
    if down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let mut keys = vec![
        json!({"kty": "EC", "use": "sig", "alg": "ES256", "kid": EC_KID, "crv": "P-256", "x": EC_X, "y": EC_Y}),
    ];
    if !withdrawn {
        let n = if in_place { ROTATED_RSA_N } else { RSA_N };
        keys.insert(
            0,
            json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": RSA_KID, "n": n, "e": RSA_E}),
        );
    }
    if rotated {
        keys.push(json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": ROTATED_RSA_KID, "n": ROTATED_RSA_N, "e": RSA_E}));
    }
    let mut response = Json(json!({ "keys": keys })).into_response();
    if let Some(value) = cache_control.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

/// `(client_id, client_secret)` from `Authorization: Basic`, each form-decoded
/// (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let form = format!("id={id}&secret={secret}");
    let fields = form_fields(&form);
    Some((fields.get("id")?.clone(), fields.get("secret")?.clone()))
}

/// An `application/x-www-form-urlencoded` body as a map (last value wins).
fn form_fields(body: &str) -> HashMap<String, String> {
    let mut url = Url::parse("http://form.invalid/").expect("static URL");
    url.set_query(Some(body));
    url.query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

async fn token(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: String) -> Response {
    let fields = form_fields(&body);
    let field = |name: &str| fields.get(name).map(String::as_str);
    let mut scripted = inner.lock();
    scripted.counts.token += 1;

    let refuse = |scripted: &mut Scripted, status: StatusCode, error: &str, reason: String| {
        scripted.violations.push(reason.clone());
        oauth_error(status, error, &reason)
    };
    if field("grant_type") != Some("authorization_code") {
        let reason = format!("grant_type is {:?}", field("grant_type"));
        return refuse(
            &mut scripted,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            reason,
        );
    }
    let expected = (inner.client_id.clone(), inner.client_secret.clone());
    if basic_credentials(&headers).as_ref() != Some(&expected) {
        let reason = "missing or wrong HTTP Basic client credentials".to_owned();
        return refuse(
            &mut scripted,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            reason,
        );
    }
    if field("redirect_uri") != Some(inner.redirect_uri.as_str()) {
        let reason = format!("redirect_uri is {:?}", field("redirect_uri"));
        return refuse(
            &mut scripted,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            reason,
        );
    }
    let Some(verifier) = field("code_verifier").filter(|v| !v.is_empty()) else {
        let reason = "no code_verifier".to_owned();
        return refuse(
            &mut scripted,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            reason,
        );
    };
    let code = field("code").unwrap_or_default();
    let Some(script) = scripted.codes.remove(code) else {
        let reason = format!("unknown or already used code {code:?}");
        return refuse(
            &mut scripted,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            reason,
        );
    };
    if let Some(challenge) = &script.code_challenge {
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if &computed != challenge {
            let reason = "the code_verifier does not match the code_challenge".to_owned();
            return refuse(
                &mut scripted,
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                reason,
            );
        }
    }
    match script.reply {
        TokenReply::Error {
            status,
            error,
            description,
        } => oauth_error(
            StatusCode::from_u16(status).expect("a scripted HTTP status"),
            &error,
            &description,
        ),
        TokenReply::IdToken(id_token) => {
            let access_token = format!("fake-at-{}", uuid::Uuid::now_v7().simple());
            if let Some(userinfo) = script.userinfo {
                scripted.userinfo.insert(access_token.clone(), userinfo);
            }
            drop(scripted);
            (
                [(header::CACHE_CONTROL, "no-store")],
                Json(json!({
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": id_token.encode(),
                })),
            )
                .into_response()
        }
    }
}

async fn userinfo(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let mut scripted = inner.lock();
    scripted.counts.userinfo += 1;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match bearer.and_then(|token| scripted.userinfo.get(token)) {
        Some(info) => Json(info.clone()).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        )
            .into_response(),
    }
}
