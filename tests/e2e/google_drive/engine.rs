//! The Google Drive source through the sync engine with a workspace `google` connection:
//! the expired access token is refreshed at Google's (fake) token endpoint, the sync lands
//! every file in the sink, later syncs apply the feed's deletions, and an expired cursor
//! relists and prunes exactly what is gone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tributary::connectors::kit::ApiBases;
use tributary::integrations::setup::{connections_from, token_http_client};
use tributary::integrations::{ConnectionService, TokenSet};
use tributary::store::connections::{ConnectionAccount, Connections};
use tributary::store::connectors::{RunRecord, RunStatus};
use tributary::store::{now_epoch_seconds, Table};
use tributary::sync::{SyncEngine, SyncMessage, SyncOutcome};
use tributary::vault::Vault;
use tributary_e2e::app::{create_direct, embedded_table, sync_engine, temp_dir};
use tributary_e2e::google::{FakeGoogleToken, CONNECTED_USER};

use super::*;

const WORKSPACE: &str = "workspace-1";
const KEY: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

fn connections(table: &Arc<dyn Table>, token_uri: &str) -> ConnectionService {
    let vars: HashMap<String, String> = [
        ("TRIBUTARY_INTEGRATIONS", "google".to_owned()),
        (
            "TRIBUTARY_INTEGRATION_GOOGLE_CLIENT_ID",
            "drive-test-client".to_owned(),
        ),
        (
            "TRIBUTARY_INTEGRATION_GOOGLE_CLIENT_SECRET",
            "drive-test-secret".to_owned(),
        ),
        (
            "TRIBUTARY_INTEGRATION_GOOGLE_TOKEN_URL",
            token_uri.to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
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
async fn an_oauth_connection_syncs_through_the_engine_with_a_refresh() {
    let (fake, book, corpus) = world().await;
    let token = FakeGoogleToken::start(book.clone()).await;
    let table = embedded_table();
    let service = connections(&table, &token.token_uri());
    service
        .connect(
            WORKSPACE,
            "google",
            TokenSet {
                access_token: "ya29.expired".into(),
                refresh_token: Some(token.refresh_token()),
                expires_at: Some(now_epoch_seconds() - 60),
                scopes: vec![tributary::connectors::google::DRIVE_READONLY.into()],
                token_type: Some("Bearer".into()),
                account: ConnectionAccount {
                    account_name: Some(CONNECTED_USER.into()),
                    ..ConnectionAccount::default()
                },
            },
        )
        .await
        .expect("connect");
    let bases = ApiBases::new()
        .with("google_drive", fake.drive_base())
        .with("google_sheets", fake.sheets_base());
    let engine = sync_engine(Arc::clone(&table))
        .0
        .with_connections(Arc::new(connections(&table, &token.token_uri())))
        .with_api_bases(bases);
    let out = temp_dir("google-drive-sink");
    let id = create_direct(
        &engine,
        json!({
            "name": "Team Drive",
            "source": "google_drive",
            "config": {"batch_size": 3},
            "credentials": {"type": "connection", "provider": "google"},
            "sink": {"type": "directory", "path": out},
        }),
    )
    .await;
    let refreshed = Connections::new(Arc::clone(&table))
        .get(WORKSPACE, "google")
        .await
        .expect("read")
        .expect("a connection");
    assert!(
        refreshed.expires_at.unwrap_or(0) > now_epoch_seconds(),
        "refreshed"
    );
    assert!(token.grants().iter().any(|g| g.subject.is_none()));

    let first = run(&engine, &id).await;
    assert_eq!(first.counts.added as usize, corpus.everything().len());
    assert_eq!(first.counts.failed, 0);
    assert_eq!(first.pruned, Some(true));
    assert!(fake
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/drive/"))
        .all(|r| r.user.as_deref() == Some(CONNECTED_USER)));

    // The feed's deletions reach the sink in the same sync.
    fake.trash(&corpus.plan);
    fake.edit(&corpus.readme, "# Readme\n\nv2\n");
    let second = run(&engine, &id).await;
    assert_eq!(second.counts.deleted, 1);
    assert_eq!(second.counts.updated, 1);
    assert_eq!(second.counts.added, 0);

    // An expired cursor: a full relisting; only what is really gone is removed.
    fake.delete(&corpus.deck);
    fake.expire_change_tokens();
    let third = run(&engine, &id).await;
    assert_eq!(third.counts.deleted, 1, "{:?}", third.counts);
    assert_eq!(third.counts.added + third.counts.updated, 0);
    assert_eq!(third.pruned, Some(true));
    let (entries, _) = engine.connectors.documents(&id, None).await.expect("map");
    let mut expected = corpus.everything();
    expected.remove(&corpus.plan);
    expected.remove(&corpus.deck);
    let kept: BTreeSet<String> = entries.into_iter().map(|e| e.source_id).collect();
    assert_eq!(kept, expected);
}
