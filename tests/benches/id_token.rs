//! ID-token validation time with a warm JWKS cache, RS256 and ES256: header, algorithm
//! allow-list, key lookup, signature, `iss`/`aud`/`azp`/`exp`/`nbf`/`iat`/`sub`/`nonce`.
//! Discovery and the JWKS come once from the fake provider on loopback, before timing.
//!
//! `cargo bench -p tributary-e2e --bench id_token`

use std::collections::HashMap;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tributary::auth::oauth::config::providers_from;
use tributary::auth::oauth::oidc::OidcClient;
use tributary_e2e::fake_oidc::{FakeOidc, Signing, EC_KID};

const NONCE: &str = "bench-nonce-8a1f";

fn client_for(provider: &FakeOidc) -> OidcClient {
    let vars: HashMap<&str, String> = HashMap::from([
        ("TRIBUTARY_OAUTH_PROVIDERS", "bench".to_owned()),
        ("TRIBUTARY_OAUTH_BENCH_KIND", "oidc".to_owned()),
        ("TRIBUTARY_OAUTH_BENCH_ISSUER", provider.issuer.clone()),
        (
            "TRIBUTARY_OAUTH_BENCH_CLIENT_ID",
            provider.client_id.clone(),
        ),
        (
            "TRIBUTARY_OAUTH_BENCH_CLIENT_SECRET",
            provider.client_secret.clone(),
        ),
        (
            "TRIBUTARY_OAUTH_BENCH_REDIRECT_URI",
            provider.redirect_uri.clone(),
        ),
    ]);
    let mut configs = providers_from(|name| vars.get(name).cloned()).expect("bench provider");
    let config = configs.pop().expect("one provider");
    let http = tributary::http::back_channel_client().expect("http client");
    OidcClient::new(
        config,
        provider.issuer.clone(),
        http,
        Duration::from_secs(60),
    )
}

fn id_token_validation(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let provider = runtime.block_on(FakeOidc::start(
        "bench-client",
        "bench-secret-2d6c9e1f",
        "http://127.0.0.1:9/auth/oauth/bench/callback",
    ));
    let client = client_for(&provider);
    let rs256 = provider
        .id_token("bench-subject", Some("bench@example.com"), NONCE)
        .encode();
    let es256 = provider
        .id_token("bench-subject", Some("bench@example.com"), NONCE)
        .signed(Signing::Es256, Some(EC_KID))
        .encode();
    // Warm the discovery document and the JWKS; a failure here is a broken bench.
    for token in [&rs256, &es256] {
        runtime
            .block_on(client.validate_id_token(token, NONCE))
            .expect("a valid ID token");
    }
    let fetches = client.jwks.fetch_count();

    let mut group = c.benchmark_group("id_token_validation");
    group.bench_function("rs256_warm_jwks", |b| {
        b.iter(|| runtime.block_on(client.validate_id_token(&rs256, NONCE)))
    });
    group.bench_function("es256_warm_jwks", |b| {
        b.iter(|| runtime.block_on(client.validate_id_token(&es256, NONCE)))
    });
    group.finish();
    assert_eq!(
        client.jwks.fetch_count(),
        fetches,
        "a warm cache must not refetch the JWKS"
    );
}

criterion_group!(benches, id_token_validation);
criterion_main!(benches);
