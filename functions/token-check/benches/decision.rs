//! Token-check decision time over the embedded store: the JWT path (signature, claims and
//! the user's token version) and the API-token path (hash lookup and the user's status).
//!
//! `cargo bench -p token-check --bench decision`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tributary::auth::{api_token, SessionKeys};
use tributary::store::{now_epoch_seconds, ApiTokenRecord, EmbeddedTable, NewUser};
use tributary::Services;

const KEY: &[u8] = b"bench-signing-key-4f1c2b3a5d6e7f8091a2b3c4d5e6f708";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    services: Services,
    session_header: Vec<u8>,
    api_token_header: Vec<u8>,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("tributary-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let table = EmbeddedTable::open(&dir.join("store.sqlite")).expect("store");
    let services = Services::new(Arc::new(table), SessionKeys::new(KEY, 3600).expect("key"));
    let (session_header, api_token_header) = runtime.block_on(async {
        let email = format!("bench-{}@example.com", uuid::Uuid::now_v7().simple());
        let user = services
            .users
            .create(NewUser {
                email,
                name: "Bench".into(),
                password_hash: None,
            })
            .await
            .expect("user");
        let session = services
            .sessions
            .issue(&user.id, user.token_version)
            .expect("session");
        let minted = api_token::mint().expect("token");
        let now = now_epoch_seconds();
        let record = ApiTokenRecord {
            id: uuid::Uuid::now_v7().to_string(),
            token_hash: minted.hash,
            user_id: user.id.clone(),
            tenant_id: user.tenant_id.clone(),
            name: "bench".into(),
            scopes: vec!["profile:read".into()],
            created_at: now,
            // Recently used: the check stays read-only, as for a busy token.
            last_used_at: Some(now + 3600),
            expires_at: Some(now + 86_400),
            item_version: 1,
        };
        services
            .api_tokens
            .create(&record)
            .await
            .expect("store token");
        (
            format!("Bearer {session}").into_bytes(),
            format!("Bearer {}", minted.plaintext).into_bytes(),
        )
    });
    Fixture {
        runtime,
        services,
        session_header,
        api_token_header,
    }
}

fn decisions(c: &mut Criterion) {
    let fx = fixture();
    let verifier = &fx.services.verifier;
    c.bench_function("jwt_signature_and_claims_only", |b| {
        let token = std::str::from_utf8(&fx.session_header[7..]).expect("utf-8");
        b.iter(|| fx.services.sessions.verify(token).expect("valid"))
    });
    c.bench_function("decision_session_jwt", |b| {
        b.iter(|| {
            fx.runtime
                .block_on(verifier.check(Some(&fx.session_header)))
                .expect("allowed")
        })
    });
    c.bench_function("decision_api_token", |b| {
        b.iter(|| {
            fx.runtime
                .block_on(verifier.check(Some(&fx.api_token_header)))
                .expect("allowed")
        })
    });
    c.bench_function("decision_denied_garbage", |b| {
        b.iter(|| {
            fx.runtime
                .block_on(verifier.check(Some(b"Bearer not.a.jwt")))
                .expect_err("denied")
        })
    });
}

criterion_group!(benches, decisions);
criterion_main!(benches);
