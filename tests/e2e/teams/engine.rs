//! The Teams source through the sync engine with a workspace `microsoft` connection: the
//! expired access token is refreshed at the identity platform's (fake) token endpoint,
//! the sync lands every thread in the sink, a later sync applies a deleted root from the
//! feed, and an expired delta link relists with the prune removing exactly what is gone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tributary::integrations::setup::{connections_from, token_http_client};
use tributary::integrations::{ConnectionService, TokenSet};
use tributary::store::connections::ConnectionAccount;
use tributary::store::connectors::{RunRecord, RunStatus};
use tributary::store::{now_epoch_seconds, Table};
use tributary::sync::{SyncEngine, SyncMessage, SyncOutcome};
use tributary::vault::Vault;
use tributary_e2e::app::{create_direct, embedded_table, sync_engine, temp_dir};
use tributary_e2e::microsoft::{CLIENT_ID, CLIENT_SECRET, CONNECTED_USER};

use super::*;

const WORKSPACE: &str = "workspace-1";
const KEY: &str = "5e2b9c0d4f6a81735e2b9c0d4f6a81735e2b9c0d4f6a81735e2b9c0d4f6a8173";

fn connections(table: &Arc<dyn Table>, token_url: &str) -> ConnectionService {
    let vars: HashMap<&str, String> = HashMap::from([
        ("TRIBUTARY_INTEGRATIONS", "microsoft".to_owned()),
        (
            "TRIBUTARY_INTEGRATION_MICROSOFT_CLIENT_ID",
            CLIENT_ID.to_owned(),
        ),
        (
            "TRIBUTARY_INTEGRATION_MICROSOFT_CLIENT_SECRET",
            CLIENT_SECRET.to_owned(),
        ),
        (
            "TRIBUTARY_INTEGRATION_MICROSOFT_TOKEN_URL",
            token_url.to_owned(),
        ),
    ]);
    connections_from(
        move |name: &str| vars.get(name).cloned(),
        Arc::clone(table),
        Vault::from_hex(KEY).expect("key"),
        token_http_client().expect("token client"),
    )
    .expect("configuration")
    .expect("integrations are configured")
}

async fn run(engine: &SyncEngine, id: &str) -> RunRecord {
    let outcome = engine
        .run(
            &SyncMessage::new(id, "manual"),
            Instant::now() + Duration::from_secs(120),
        )
        .await
        .expect("the sync ran");
    match outcome {
        SyncOutcome::Finished(run) => {
            assert_eq!(run.status, RunStatus::Completed, "{:?}", run.errors);
            run
        }
        other => panic!("expected a finished run, got {other:?}"),
    }
}

#[tokio::test]
async fn a_delegated_connection_syncs_through_the_engine_with_a_refresh() {
    let (fake, c) = world().await;
    let table = embedded_table();
    let token_url = fake.login().token_url();
    connections(&table, &token_url)
        .connect(
            WORKSPACE,
            "microsoft",
            TokenSet {
                access_token: "expired-access-token".into(),
                refresh_token: Some(fake.login().refresh_token()),
                expires_at: Some(now_epoch_seconds() - 60),
                scopes: vec!["ChannelMessage.Read.All".into(), "offline_access".into()],
                token_type: Some("Bearer".into()),
                account: ConnectionAccount {
                    account_name: Some(CONNECTED_USER.into()),
                    ..ConnectionAccount::default()
                },
            },
        )
        .await
        .expect("connect");
    let engine = sync_engine(Arc::clone(&table))
        .0
        .with_connections(Arc::new(connections(&table, &token_url)))
        .with_api_bases(fake.api_bases());
    let out = temp_dir("teams-sink");
    let id = create_direct(
        &engine,
        json!({
            "name": "Teams",
            "source": "teams",
            "config": {"batch_size": 2},
            "credentials": {"type": "connection", "provider": "microsoft"},
            "sink": {"type": "directory", "path": out},
        }),
    )
    .await;
    assert!(fake
        .login()
        .grants()
        .iter()
        .any(|g| g.grant_type == "refresh_token"));

    let first = run(&engine, &id).await;
    assert_eq!(first.counts.added as usize, c.everything().len());
    assert_eq!(first.counts.failed, 0);
    assert_eq!(first.pruned, Some(true));
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.principal.as_deref() == Some(CONNECTED_USER)));

    fake.delete_message(GENERAL, &c.lunch);
    fake.post_reply(DEALS, &c.deal, Post::new("Frank", "<p>Invoice sent</p>"));
    let second = run(&engine, &id).await;
    assert_eq!(second.counts.deleted, 1, "{:?}", second.counts);
    assert_eq!(second.counts.updated, 1, "{:?}", second.counts);
    assert_eq!(second.counts.added, 0);

    fake.delete_message(DESIGN, &c.mockups);
    fake.expire_message_deltas();
    let third = run(&engine, &id).await;
    assert_eq!(third.counts.deleted, 1, "{:?}", third.counts);
    assert_eq!(third.counts.added, 0, "{:?}", third.counts);
    assert_eq!(third.pruned, Some(true));
    let (entries, _) = engine.connectors.documents(&id, None).await.expect("map");
    let kept: BTreeSet<String> = entries.into_iter().map(|e| e.source_id).collect();
    assert_eq!(
        kept,
        [sid(ENG, GENERAL, &c.release), sid(SALES, DEALS, &c.deal)]
            .into_iter()
            .collect()
    );
}
