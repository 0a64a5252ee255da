//! Credentials: a service account acting for several users (JWT bearer grant, one token
//! per user, cached), refused delegation, and a `google` connection driven through the
//! sync engine with its refresh.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tributary::connectors::gmail::GmailConnector;
use tributary::connectors::google::GMAIL_READONLY;
use tributary::connectors::kit::{ApiBases, SourceAuth};
use tributary::connectors::{Connector, ConnectorError};
use tributary::integrations::setup::{connections_from, token_http_client};
use tributary::integrations::TokenSet;
use tributary::queue::Queue;
use tributary::store::connections::ConnectionAccount;
use tributary::store::connectors::{RunStatus, SourceKind};
use tributary::store::now_epoch_seconds;
use tributary::sync::{SyncEngine, SyncMessage, SyncOutcome};
use tributary::vault::Vault;
use tributary_e2e::app::{create_direct, embedded_table, sync_engine, temp_dir};
use tributary_e2e::fake_gmail::FakeGmail;
use tributary_e2e::google::{
    service_account_credentials, FakeGoogleToken, TokenBook, CONNECTED_USER,
};

use super::{config, expected_ids, http, last_checkpoint, pass, retry, Mirror, ADA, BOB, CAROL};

#[tokio::test]
async fn a_service_account_syncs_several_mailboxes_each_with_its_own_token() {
    let book = TokenBook::new();
    let tokens = FakeGoogleToken::start(book.clone()).await;
    let fake = FakeGmail::start(book.clone(), &[(ADA, 20), (BOB, 30), (CAROL, 5)]).await;
    let credentials = service_account_credentials(&tokens.token_uri(), Some("admin@example.com"));
    let gmail = GmailConnector::with_quota(
        "gmail-workspace",
        config(json!({"user_emails": [ADA, BOB, CAROL], "batch_size": 10})),
        credentials,
        http(),
        retry(),
        fake.api_base(),
        None,
    )
    .expect("a connector");
    gmail
        .test_connection()
        .await
        .expect("every mailbox answers");
    let batches = pass(&gmail, None).await;
    let mut mirror = Mirror::default();
    mirror.apply_all(&batches);
    let mut expected: Vec<String> = [ADA, BOB, CAROL]
        .iter()
        .flat_map(|user| expected_ids(&fake, user, user))
        .collect();
    expected.sort();
    assert_eq!(mirror.ids(), expected);
    for user in [ADA, BOB, CAROL] {
        let document = mirror
            .documents
            .values()
            .find(|d| d.source_id.starts_with(&format!("{user}:")))
            .expect("a document");
        assert_eq!(document.acl, vec![user.to_owned()]);
        assert_eq!(document.metadata["mailbox"], json!(user));
        assert!(
            document.url.as_deref().is_some_and(
                |url| url.starts_with(&format!("https://mail.google.com/mail/u/{user}/"))
            )
        );
    }
    // One grant per user (cached across the whole pass), each for gmail.readonly only.
    let grants = tokens.grants();
    let subjects: BTreeSet<Option<String>> = grants.iter().map(|g| g.subject.clone()).collect();
    assert_eq!(
        subjects,
        BTreeSet::from([
            Some(ADA.to_owned()),
            Some(BOB.to_owned()),
            Some(CAROL.to_owned())
        ])
    );
    assert_eq!(grants.len(), 3, "{grants:?}");
    assert!(grants
        .iter()
        .all(|g| g.scope == GMAIL_READONLY && g.grant_type == "jwt-bearer"));
    // Every call went out as the mailbox's own user.
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.user.as_deref().is_some_and(|u| r
            .path
            .contains(&format!("/users/{}/", u.replace('@', "%40"))))));

    // A change in one mailbox; a revoked token is minted again (401 → re-mint once).
    let added = fake.add_thread(BOB, "For Bob", "Marker BOB-NEW");
    book.revoke_all();
    let next = pass(&gmail, Some(last_checkpoint(&batches))).await;
    mirror.apply_all(&next);
    assert!(mirror.get(BOB, &added).markdown.contains("Marker BOB-NEW"));
    assert_eq!(
        tokens.grants().len(),
        6,
        "each user's token was minted again once"
    );
}

#[tokio::test]
async fn refused_delegation_and_missing_users_are_clear_errors() {
    let book = TokenBook::new();
    let tokens = FakeGoogleToken::start(book.clone()).await;
    let fake = FakeGmail::start(book.clone(), &[(ADA, 2), (BOB, 2)]).await;
    tokens.refuse_subject(BOB);
    let gmail = GmailConnector::with_quota(
        "gmail-refused",
        config(json!({"user_emails": [ADA, BOB]})),
        service_account_credentials(&tokens.token_uri(), None),
        http(),
        retry(),
        fake.api_base(),
        None,
    )
    .expect("a connector");
    let error = gmail.test_connection().await.expect_err("Bob is refused");
    assert!(
        matches!(error, ConnectorError::Unauthorized(_)),
        "{error:?}"
    );
    // No users and no subject: nothing to act as.
    let error = GmailConnector::new(
        "gmail-nobody",
        config(json!({})),
        service_account_credentials(&tokens.token_uri(), None),
        http(),
        retry(),
        fake.api_base(),
    )
    .expect_err("no mailbox");
    assert!(matches!(error, ConnectorError::Config(_)), "{error:?}");
    // A connection cannot impersonate.
    let error = GmailConnector::new(
        "gmail-me",
        config(json!({"user_emails": [ADA]})),
        SourceAuth::Bearer(tributary::connectors::kit::AccessToken::new("t")),
        http(),
        retry(),
        fake.api_base(),
    )
    .expect_err("impersonation needs a service account");
    assert!(error.to_string().contains("service-account"), "{error}");
}

const KEY: &str = "0c1d2e3f405162738495a6b7c8d9eafb0c1d2e3f405162738495a6b7c8d9eafb";
const WORKSPACE: &str = "workspace-1";

/// Runs sync messages until the queue is empty (bounded), like the Lambda service.
async fn drain(engine: &SyncEngine, queue: &dyn Queue) -> Vec<SyncOutcome> {
    let mut outcomes = Vec::new();
    for _ in 0..100 {
        let received = queue
            .receive(1, Duration::from_secs(600), Duration::ZERO)
            .await
            .expect("receive");
        let Some(received) = received.into_iter().next() else {
            return outcomes;
        };
        let message: SyncMessage = serde_json::from_str(&received.body).expect("a sync message");
        let deadline = Instant::now() + Duration::from_secs(120);
        outcomes.push(engine.run(&message, deadline).await.expect("a sync"));
        queue
            .delete(&received.receipt_handle)
            .await
            .expect("delete");
    }
    panic!("the sync queue never emptied");
}

/// `source_id` of every document in the directory sink.
fn delivered(dir: &std::path::Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .expect("the sink directory")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).expect("read");
            text.lines()
                .find_map(|line| line.strip_prefix("source_id: "))
                .map(|v| serde_json::from_str::<String>(v).unwrap_or_else(|_| v.to_owned()))
        })
        .collect();
    ids.sort();
    ids
}

fn finished(outcomes: &[SyncOutcome]) -> Vec<&tributary::store::connectors::RunRecord> {
    outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            SyncOutcome::Finished(run) => Some(run),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_google_connection_syncs_through_the_engine_and_refreshes() {
    let book = TokenBook::new();
    let tokens = FakeGoogleToken::start(book.clone()).await;
    let fake = FakeGmail::start(book.clone(), &[(CONNECTED_USER, 35)]).await;
    let table = embedded_table();
    let vars: HashMap<String, String> = [
        ("TRIBUTARY_INTEGRATIONS", "google".to_owned()),
        (
            "TRIBUTARY_INTEGRATION_GOOGLE_CLIENT_ID",
            "gmail-test-client".to_owned(),
        ),
        (
            "TRIBUTARY_INTEGRATION_GOOGLE_CLIENT_SECRET",
            "gmail-test-secret".to_owned(),
        ),
        ("TRIBUTARY_INTEGRATION_GOOGLE_TOKEN_URL", tokens.token_uri()),
        (
            "TRIBUTARY_INTEGRATION_GOOGLE_SCOPES",
            format!("openid email {GMAIL_READONLY}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let connections = || {
        connections_from(
            |name| vars.get(name).cloned(),
            Arc::clone(&table),
            Vault::from_hex(KEY).expect("key"),
            token_http_client().expect("token client"),
        )
        .expect("configuration")
        .expect("google is configured")
    };
    // The workspace connected a while ago: its access token has expired.
    connections()
        .connect(
            WORKSPACE,
            "google",
            TokenSet {
                access_token: "ya29.expired".into(),
                refresh_token: Some(tokens.refresh_token()),
                expires_at: Some(now_epoch_seconds() - 60),
                scopes: vec![GMAIL_READONLY.into()],
                token_type: Some("Bearer".into()),
                account: ConnectionAccount {
                    account_name: Some(CONNECTED_USER.into()),
                    ..ConnectionAccount::default()
                },
            },
        )
        .await
        .expect("connect");
    let (engine, queue) = sync_engine(Arc::clone(&table));
    let engine = engine
        .with_connections(Arc::new(connections()))
        .with_api_bases(ApiBases::new().with("gmail", fake.api_base()));
    let out = temp_dir("gmail-engine");
    let id = create_direct(
        &engine,
        json!({
            "name": "Team mail",
            "source": "gmail",
            "config": {"batch_size": 10},
            "credentials": {"type": "connection", "provider": "google"},
            "sink": {"type": "directory", "path": out},
        }),
    )
    .await;
    let refreshed = tokens.grants().len();
    assert!(
        refreshed >= 1,
        "creating tested the connection with a refreshed token"
    );
    assert!(tokens
        .grants()
        .iter()
        .all(|g| g.grant_type == "refresh_token"));

    let enqueue = || async {
        engine
            .queues
            .enqueue(SourceKind::Gmail, &SyncMessage::new(&id, "manual"))
            .await
            .expect("enqueue")
    };
    enqueue().await;
    let outcomes = drain(&engine, queue.as_ref()).await;
    let runs = finished(&outcomes);
    assert_eq!(runs.len(), 1, "{outcomes:?}");
    assert_eq!(runs[0].status, RunStatus::Completed, "{:?}", runs[0].errors);
    let expected = expected_ids(&fake, CONNECTED_USER, "me");
    assert_eq!(runs[0].counts.added, expected.len() as u64);
    assert_eq!(delivered(&out), expected);

    // The provider revokes the access token: the next sync gets a 401, refreshes once and
    // carries on; the change feed brings a new thread and removes a trashed one.
    book.revoke_all();
    let added = fake.add_thread(CONNECTED_USER, "Later", "Marker LATER");
    let trashed = fake.threads_in_scope(CONNECTED_USER)[5].id.clone();
    fake.trash_thread(CONNECTED_USER, &trashed);
    enqueue().await;
    let outcomes = drain(&engine, queue.as_ref()).await;
    let runs = finished(&outcomes);
    assert_eq!(runs.len(), 1, "{outcomes:?}");
    assert_eq!(runs[0].status, RunStatus::Completed, "{:?}", runs[0].errors);
    assert_eq!(runs[0].counts.added, 1);
    assert_eq!(runs[0].counts.deleted, 1);
    assert_eq!(
        tokens.grants().len(),
        refreshed + 1,
        "one refresh after the 401"
    );
    let now = delivered(&out);
    assert!(now.contains(&format!("me:{added}")));
    assert!(!now.contains(&format!("me:{trashed}")));
    assert_eq!(now, expected_ids(&fake, CONNECTED_USER, "me"));
    std::fs::remove_dir_all(&out).ok();
}
