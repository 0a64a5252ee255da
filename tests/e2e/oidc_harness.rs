//! The OpenID provider harness itself (`tributary_e2e::oidc`), checked by hand-made
//! authorization-code flows that use none of our OAuth code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use reqwest::redirect::Policy;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tributary_e2e::oidc::{drive_login, ClientConfig, OidcProvider};

const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

fn client(id: &str, alg: &str) -> ClientConfig {
    ClientConfig {
        client_id: id.to_string(),
        client_secret: format!("{id}-secret-0123456789abcdef"),
        redirect_uri: REDIRECT_URI.to_string(),
        id_token_alg: alg.to_string(),
    }
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::now_v7().simple(),
        uuid::Uuid::now_v7().simple()
    )
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://form.invalid/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap().to_string()
}

async fn get_json(url: &str) -> Value {
    let response = reqwest::get(url).await.expect("GET");
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    response.json().await.expect("JSON")
}

async fn kids(jwks_uri: &str) -> Vec<String> {
    let jwks = get_json(jwks_uri).await;
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_string())
        .collect()
}

struct Request {
    url: String,
    state: String,
    nonce: String,
    verifier: String,
}

fn authorization_request(discovery: &Value, client: &ClientConfig) -> Request {
    let verifier = random_token();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = random_token();
    let nonce = random_token();
    let url = Url::parse_with_params(
        discovery["authorization_endpoint"].as_str().unwrap(),
        &[
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("scope", "openid email profile"),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    Request {
        url: url.to_string(),
        state,
        nonce,
        verifier,
    }
}

fn query(url: &str) -> std::collections::HashMap<String, String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Signs in as `account` and redeems the code; `basic` picks client_secret_basic over
/// client_secret_post. Returns the token response and the verified ID token claims.
async fn sign_in(
    provider: &OidcProvider,
    discovery: &Value,
    client: &ClientConfig,
    account: &str,
    basic: bool,
) -> (Value, Value) {
    let request = authorization_request(discovery, client);
    let callback = drive_login(&request.url, account).await;
    assert!(
        callback.starts_with(&format!("{REDIRECT_URI}?")),
        "{callback}"
    );
    let params = query(&callback);
    assert_eq!(params.get("state"), Some(&request.state), "{callback}");
    assert_eq!(params.get("iss"), Some(&provider.issuer), "{callback}");
    let code = params.get("code").expect("code in the callback");

    let token_endpoint = discovery["token_endpoint"].as_str().unwrap();
    let http = reqwest::Client::new();
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("code_verifier", request.verifier.as_str()),
    ];
    let mut post = http
        .post(token_endpoint)
        .header("content-type", "application/x-www-form-urlencoded");
    if basic {
        post = post.basic_auth(&client.client_id, Some(&client.client_secret));
    } else {
        fields.push(("client_id", client.client_id.as_str()));
        fields.push(("client_secret", client.client_secret.as_str()));
    }
    let response = post.body(form(&fields)).send().await.unwrap();
    let status = response.status();
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{tokens}");

    let id_token = tokens["id_token"].as_str().expect("id_token");
    let header = decode_header(id_token).unwrap();
    let alg = match client.id_token_alg.as_str() {
        "RS256" => Algorithm::RS256,
        "ES256" => Algorithm::ES256,
        other => panic!("{other}"),
    };
    assert_eq!(header.alg, alg);
    let kid = header.kid.expect("kid");
    let jwks: JwkSet =
        serde_json::from_value(get_json(discovery["jwks_uri"].as_str().unwrap()).await).unwrap();
    let jwk = jwks.find(&kid).expect("the ID token's kid is in the JWKS");
    let mut validation = Validation::new(alg);
    validation.set_audience(&[&client.client_id]);
    validation.set_issuer(&[&provider.issuer]);
    let claims = decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("ID token verifies with the JWKS key")
        .claims;
    assert_eq!(claims["nonce"], request.nonce.as_str());
    assert_eq!(claims["sub"], account);
    assert_eq!(claims["email"], format!("{account}@example.com"));
    assert_eq!(claims["name"], account);
    (tokens, claims)
}

#[tokio::test]
async fn oidc_provider_harness_signs_in_and_rotates_keys() {
    let rs = client("rs-client", "RS256");
    let es = client("es-client", "ES256");
    let mut provider = OidcProvider::start(vec![rs.clone(), es.clone()]);
    assert!(provider.issuer.starts_with("http://127.0.0.1:"));

    let discovery = get_json(&provider.discovery_url()).await;
    assert_eq!(discovery["issuer"], provider.issuer.as_str());
    assert_eq!(
        discovery["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );

    // RS256, client_secret_basic; userinfo agrees with the ID token.
    let (tokens, claims) = sign_in(&provider, &discovery, &rs, "alice", true).await;
    assert_eq!(claims["email_verified"], true);
    let userinfo: Value = reqwest::Client::new()
        .get(discovery["userinfo_endpoint"].as_str().unwrap())
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["sub"], "alice");
    assert_eq!(userinfo["email"], "alice@example.com");

    // ES256, client_secret_post, an unverified email.
    let (_, claims) = sign_in(&provider, &discovery, &es, "unverified-bob", false).await;
    assert_eq!(claims["email_verified"], false);

    // PKCE is required: without a code challenge the provider sends an error back.
    let mut request = Url::parse(&authorization_request(&discovery, &rs).url).unwrap();
    let pairs: Vec<(String, String)> = request
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    request.query_pairs_mut().clear().extend_pairs(pairs);
    let refused = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .get(request)
        .send()
        .await
        .unwrap();
    let location = refused.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(
        query(&location).get("error").map(String::as_str),
        Some("invalid_request")
    );

    // A restart keeps the issuer and publishes new keys.
    let issuer = provider.issuer.clone();
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap().to_string();
    let before = kids(&jwks_uri).await;
    provider.restart_with_new_keys();
    assert_eq!(provider.issuer, issuer);
    let after = kids(&jwks_uri).await;
    assert_eq!(before.len(), 2);
    assert_eq!(after.len(), 2);
    assert!(
        before.iter().all(|kid| !after.contains(kid)),
        "{before:?} {after:?}"
    );
    let rediscovered = get_json(&provider.discovery_url()).await;
    assert_eq!(rediscovered["issuer"], issuer.as_str());

    // And still signs in, with the new keys.
    let (_, claims) = sign_in(&provider, &rediscovered, &es, "carol", true).await;
    assert_eq!(claims["email_verified"], true);
}
