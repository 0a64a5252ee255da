//! The SharePoint source through the sync engine with a workspace `microsoft` connection
//! (delegated): the expired access token is refreshed at the fake identity platform, every
//! file and page lands in the sink, delta deletions apply, an expired delta token re-enumerates
//! and the prune removes exactly what is gone, and a locked site fails only itself (the
//! prune is skipped that time).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tributary::integrations::setup::{connections_from, token_http_client};
use tributary::integrations::{ConnectionService, TokenSet};
use tributary::store::connections::{ConnectionAccount, Connections};
use tributary::store::connectors::{RunRecord, RunStatus};
use tributary::store::{now_epoch_seconds, Table};
use tributary::sync::{SyncEngine, SyncMessage, SyncOutcome};
use tributary::vault::Vault;
use tributary_e2e::app::{create_direct, embedded_table, sync_engine, temp_dir};
use tributary_e2e::microsoft::CONNECTED_USER;

use super::*;

const WORKSPACE: &str = "workspace-1";
const KEY: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

fn connections(table: &Arc<dyn Table>, token_url: &str) -> ConnectionService {
    let vars: HashMap<String, String> = [
        ("TRIBUTARY_INTEGRATIONS", "microsoft".to_owned()),
        (
            "TRIBUTARY_INTEGRATION_MICROSOFT_CLIENT_ID",
            tributary_e2e::microsoft::CLIENT_ID.to_owned(),
        ),
        (
            "TRIBUTARY_INTEGRATION_MICROSOFT_CLIENT_SECRET",
            tributary_e2e::microsoft::CLIENT_SECRET.to_owned(),
        ),
        (
            "TRIBUTARY_INTEGRATION_MICROSOFT_TOKEN_URL",
            token_url.to_owned(),
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
async fn a_delegated_connection_syncs_through_the_engine_with_a_refresh() {
    let (fake, c) = world().await;
    let table = embedded_table();
    let token_url = fake.login().token_url();
    let service = connections(&table, &token_url);
    service
        .connect(
            WORKSPACE,
            "microsoft",
            TokenSet {
                access_token: "expired-access-token".into(),
                refresh_token: Some(fake.login().refresh_token()),
                expires_at: Some(now_epoch_seconds() - 60),
                scopes: vec![
                    "Sites.Read.All".into(),
                    "Files.Read.All".into(),
                    "offline_access".into(),
                ],
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
    let out = temp_dir("sharepoint-sink");
    let id = create_direct(
        &engine,
        json!({
            "name": "Intranet",
            "source": "sharepoint",
            "config": {"sites": [ENG_URL, HR_URL], "batch_size": 3},
            "credentials": {"type": "connection", "provider": "microsoft"},
            "sink": {"type": "directory", "path": out},
        }),
    )
    .await;
    let refreshed = Connections::new(Arc::clone(&table))
        .get(WORKSPACE, "microsoft")
        .await
        .expect("read")
        .expect("a connection");
    assert!(
        refreshed.expires_at.unwrap_or(0) > now_epoch_seconds(),
        "refreshed"
    );
    assert!(fake
        .login()
        .grants()
        .iter()
        .any(|g| g.grant_type == "refresh_token"));

    let mut expected = c.everything();
    expected.remove(&sid(&c.ada_drive, &c.todo));
    let first = run(&engine, &id).await;
    assert_eq!(
        first.counts.added as usize,
        expected.len(),
        "{:?}",
        first.errors
    );
    assert_eq!(first.counts.failed, 0);
    assert_eq!(first.pruned, Some(true));
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.principal.as_deref() == Some(CONNECTED_USER)),
        "delegated, as the connected user"
    );

    // Delta deletions reach the sink in the same sync.
    fake.drives().delete(&c.plan);
    fake.drives().edit(&c.api, b"GET /v2/things\n");
    let second = run(&engine, &id).await;
    assert_eq!(second.counts.deleted, 1, "{:?}", second.counts);
    assert_eq!(second.counts.updated, 1);
    assert_eq!(second.counts.added, 0);

    // An expired delta token: a fresh enumeration; the prune removes only what is gone.
    fake.drives().delete(&c.report);
    fake.drives().expire_delta_tokens();
    let third = run(&engine, &id).await;
    assert_eq!(third.counts.deleted, 1, "{:?}", third.counts);
    assert_eq!(
        third.counts.added + third.counts.updated,
        0,
        "{:?}",
        third.counts
    );
    assert_eq!(third.pruned, Some(true));
    let (entries, _) = engine.connectors.documents(&id, None).await.expect("map");
    expected.remove(&sid(&c.eng_docs, &c.plan));
    expected.remove(&sid(&c.eng_docs, &c.report));
    let kept: BTreeSet<String> = entries.into_iter().map(|e| e.source_id).collect();
    assert_eq!(kept, expected);

    // A locked site: recorded as a failure of this run, the other site syncs, no prune.
    fake.drives().lock_site(&c.hr, true);
    fake.drives().edit(&c.notes, b"<p>fresh notes</p>");
    let fourth = run(&engine, &id).await;
    assert_eq!(fourth.counts.failed, 1, "{:?}", fourth.errors);
    assert_eq!(fourth.counts.updated, 1);
    assert_eq!(fourth.pruned, Some(false));
    assert!(
        fourth.errors.iter().any(
            |e| e.contains("site:https://contoso.sharepoint.com/sites/HR") && e.contains("locked")
        ),
        "{:?}",
        fourth.errors
    );
    let (entries, _) = engine.connectors.documents(&id, None).await.expect("map");
    assert_eq!(
        entries.len(),
        expected.len(),
        "the locked site's documents stay"
    );
}
