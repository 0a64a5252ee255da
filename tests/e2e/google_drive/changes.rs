//! Incremental syncs from Drive's change feed, an expired cursor, kill-at-random
//! resumption and service-account delegation.

use std::collections::BTreeSet;

use chrono::TimeZone;
use serde_json::{json, Value};
use tributary::connectors::Connector;
use tributary_e2e::fake_google_drive::{NewFile, Permission};
use tributary_e2e::google::{service_account_credentials, FakeGoogleToken, CONNECTED_USER};

use super::*;

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

#[tokio::test]
async fn incremental_syncs_follow_adds_edits_moves_trash_and_deletes() {
    let (fake, _book, corpus) = world().await;
    let connector = drive(&fake, json!({ "folder_ids": [corpus.projects] }));
    let first = pull_pass(&connector, None).await;
    assert_eq!(source_ids(&first), corpus.projects_tree());

    let added = fake.add(NewFile::doc("New", "# New\n").under(&corpus.projects));
    fake.edit(&corpus.plan, "# Plan\n\nRevised.\n");
    fake.move_to(&corpus.notes, &fake.root_of(CONNECTED_USER)); // out of scope
    fake.move_to(&corpus.readme, &corpus.projects); // into scope
    fake.trash(&corpus.deck);
    fake.delete(&corpus.report);
    // Trashed and restored between two syncs: nothing to do.
    fake.trash(&corpus.budget);
    fake.restore(&corpus.budget);
    let incoming = fake.add(NewFile::folder("Incoming").owner(CONNECTED_USER));
    let inbox = fake.add(NewFile::doc("Inbox", "# Inbox\n").under(&incoming));
    fake.move_to(&incoming, &corpus.projects); // a folder moves in: its files come along

    fake.clear_requests();
    let second = pull_pass(&connector, Some(last_checkpoint(&first))).await;
    assert_eq!(
        source_ids(&second),
        set(&[&added, &corpus.plan, &corpus.readme, &inbox])
    );
    assert_eq!(
        by_id(&second, &corpus.plan).markdown,
        "# Plan\n\nRevised.\n"
    );
    assert_eq!(
        by_id(&second, &corpus.readme).metadata["path"],
        json!("/My Drive/Projects/Readme")
    );
    assert_eq!(
        deleted(&second),
        set(&[&corpus.notes, &corpus.deck, &corpus.report])
    );
    assert_eq!(
        fake.fetches_of(&corpus.budget),
        0,
        "unchanged: not exported again"
    );
    let mut expected = corpus.projects_tree();
    for gone in [&corpus.notes, &corpus.deck, &corpus.report] {
        expected.remove(gone);
    }
    expected.extend([added.clone(), corpus.readme.clone(), inbox.clone()]);
    assert_eq!(list_all(&connector).await, expected);

    // A folder moving out takes its files with it: out of the listing (the prune), and
    // their later changes are tombstones, not documents.
    fake.move_to(&corpus.archive, &fake.root_of(CONNECTED_USER));
    let third = pull_pass(&connector, Some(last_checkpoint(&second))).await;
    assert!(documents(&third).is_empty());
    expected.remove(&corpus.old_plan);
    assert_eq!(list_all(&connector).await, expected);
    fake.edit(&corpus.old_plan, "# Old plan, edited outside the scope\n");
    let fourth = pull_pass(&connector, Some(last_checkpoint(&third))).await;
    assert!(documents(&fourth).is_empty());
    assert_eq!(deleted(&fourth), set(&[&corpus.old_plan]));
}

#[tokio::test]
async fn uploads_with_an_old_mtime_and_restores_from_trash_are_picked_up() {
    let (fake, _book, corpus) = world().await;
    let connector = drive(&fake, json!({}));
    let first = pull_pass(&connector, None).await;

    // An upload that keeps its 2019 modifiedTime: a modifiedTime window would miss it.
    let old = chrono::Utc
        .with_ymd_and_hms(2019, 3, 1, 12, 0, 0)
        .single()
        .expect("a time");
    let legacy = fake.add(
        NewFile::binary("legacy.txt", "text/plain", b"from 2019\n")
            .owner(CONNECTED_USER)
            .modified_at(old),
    );
    fake.trash(&corpus.readme);
    let second = pull_pass(&connector, Some(last_checkpoint(&first))).await;
    assert_eq!(source_ids(&second), set(&[&legacy]));
    assert_eq!(by_id(&second, &legacy).updated_at, "2019-03-01T12:00:00Z");
    assert_eq!(deleted(&second), set(&[&corpus.readme]));

    // Restoring does not touch modifiedTime either.
    fake.restore(&corpus.readme);
    let third = pull_pass(&connector, Some(last_checkpoint(&second))).await;
    assert_eq!(source_ids(&third), set(&[&corpus.readme]));
    assert!(deleted(&third).is_empty());
}

#[tokio::test]
async fn view_only_touches_are_not_exported_again() {
    let (fake, _book, corpus) = world().await;
    let connector = drive(&fake, json!({}));
    let first = pull_pass(&connector, None).await;
    fake.clear_requests();
    for id in [
        &corpus.plan,
        &corpus.report,
        &corpus.budget,
        &corpus.runbook,
    ] {
        fake.touch_view(id);
    }
    let second = pull_pass(&connector, Some(last_checkpoint(&first))).await;
    assert!(documents(&second).is_empty());
    assert!(deleted(&second).is_empty());
    assert_eq!(fake.fetches(), 0, "no export, no download");

    fake.edit(&corpus.plan, "# Plan\n\nThird draft.\n");
    fake.share(&corpus.report, Permission::user(ADA, "reader"));
    let third = pull_pass(&connector, Some(last_checkpoint(&second))).await;
    assert_eq!(source_ids(&third), set(&[&corpus.plan, &corpus.report]));
    assert!(by_id(&third, &corpus.report)
        .acl
        .contains(&format!("user:{ADA}")));
    assert_eq!(fake.fetches_of(&corpus.plan), 1);
}

#[tokio::test]
async fn an_expired_cursor_relists_everything_without_losing_a_file() {
    let (fake, _book, corpus) = world().await;
    let connector = drive(&fake, json!({ "batch_size": 4 }));
    let first = pull_pass(&connector, None).await;
    let added = fake.add(NewFile::doc("Later", "# Later\n").owner(CONNECTED_USER));
    fake.delete(&corpus.deck);
    fake.expire_change_tokens();
    fake.clear_requests();

    let second = pull_pass(&connector, Some(last_checkpoint(&first))).await;
    let mut expected = corpus.everything();
    expected.remove(&corpus.deck);
    expected.insert(added);
    assert_eq!(source_ids(&second), expected, "everything delivered again");
    assert!(
        deleted(&second).is_empty(),
        "deletions are the prune's (complete listing)"
    );
    assert_eq!(list_all(&connector).await, expected);
    let paths: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths[0], "/drive/v3/changes");
    assert_eq!(
        paths[1], "/drive/v3/changes/startPageToken",
        "new token first"
    );
    assert_eq!(paths[2], "/drive/v3/files");

    // The new cursor works.
    fake.edit(&corpus.plan, "# Plan\n\nAfter the reset.\n");
    let third = pull_pass(&connector, Some(last_checkpoint(&second))).await;
    assert_eq!(source_ids(&third), set(&[&corpus.plan]));
}

/// A deterministic "random" sequence (xorshift) for crash points.
fn crash_points(seed: u64, batches: usize) -> BTreeSet<usize> {
    let mut x = seed;
    (0..batches / 3)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % batches as u64) as usize
        })
        .collect()
}

#[tokio::test]
async fn a_sync_killed_at_random_batches_resumes_exactly() {
    let (fake, _book, _corpus) = world().await;
    let root = fake.root_of(CONNECTED_USER);
    let ids = fake.populate(CONNECTED_USER, &root, 240);
    let extra = json!({ "batch_size": 10 });
    let clean = pull_pass(&drive(&fake, extra.clone()), None).await;
    for seed in [7u64, 1_234_567, 99] {
        let crashes = crash_points(seed, clean.len());
        // Each crash drops the batch in flight (never delivered, checkpoint not saved);
        // a new process resumes from the last saved checkpoint.
        let mut saved: Option<Value> = None;
        let mut delivered = Vec::new();
        let mut pulls = 0;
        loop {
            let connector = drive(&fake, extra.clone());
            let batch = connector.pull(saved.as_ref()).await.expect("a batch");
            pulls += 1;
            if crashes.contains(&pulls) {
                continue;
            }
            saved = Some(stored(&batch.checkpoint));
            let done = batch.done;
            delivered.push(batch);
            if done {
                break;
            }
            assert!(pulls < 10 * clean.len(), "no progress");
        }
        assert_eq!(contents(&delivered), contents(&clean), "seed {seed}");
        assert_eq!(saved, Some(last_checkpoint(&clean)), "seed {seed}");
    }

    // The same through the change feed.
    for id in ids.iter().step_by(7) {
        fake.edit(id, "edited while nobody watched");
    }
    let start = last_checkpoint(&clean);
    let changed = pull_pass(&drive(&fake, extra.clone()), Some(start.clone())).await;
    assert_eq!(source_ids(&changed).len(), ids.iter().step_by(7).count());
    let mut saved = Some(start);
    let mut delivered = Vec::new();
    let mut pulls = 0;
    loop {
        let batch = drive(&fake, extra.clone())
            .pull(saved.as_ref())
            .await
            .expect("a batch");
        pulls += 1;
        if pulls % 2 == 1 {
            continue; // every other pull dies
        }
        saved = Some(stored(&batch.checkpoint));
        let done = batch.done;
        delivered.push(batch);
        if done {
            break;
        }
    }
    assert_eq!(contents(&delivered), contents(&changed));
}

#[tokio::test]
async fn a_service_account_syncs_several_users_my_drives() {
    let (fake, book, _corpus) = world().await;
    let token = FakeGoogleToken::start(book.clone()).await;
    let adas = fake.add(
        NewFile::doc("Ada's plan", "# Ada's plan\n")
            .owner(ADA)
            .shared_with(Permission::user(BOB, "writer")),
    );
    let bobs = fake.add(NewFile::doc("Bob's notes", "# Bob\n").owner(BOB));
    let admins = fake.add(NewFile::doc("Admin only", "# Admin\n").owner(ADMIN));
    let credentials = service_account_credentials(&token.token_uri(), Some(ADMIN));
    let connector = connector_with(
        &fake,
        json!({ "my_drive_emails": [ADA, BOB], "include_shared_drives": false }),
        credentials,
    );
    connector.test_connection().await.expect("delegation works");
    let first = pull_pass(&connector, None).await;
    // Ada's files (including "Ada's notes" of the corpus), Bob's; not the admin's.
    let mut expected: BTreeSet<String> = fake
        .files()
        .into_iter()
        .filter(|f| f.owner.as_deref() == Some(ADA))
        .map(|f| f.id)
        .collect();
    expected.insert(bobs.clone());
    assert_eq!(source_ids(&first), expected);
    assert_eq!(
        documents(&first).len(),
        expected.len(),
        "Ada's shared file once"
    );
    assert!(!source_ids(&first).contains(&admins));
    let subjects: BTreeSet<Option<String>> =
        token.grants().into_iter().map(|g| g.subject).collect();
    for user in [ADMIN, ADA, BOB] {
        assert!(
            subjects.contains(&Some(user.to_owned())),
            "{user} impersonated"
        );
    }
    assert!(token
        .grants()
        .iter()
        .all(|g| g.scope == "https://www.googleapis.com/auth/drive.readonly"));
    // Requests for Bob's Drive went out as Bob.
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.user.as_deref() == Some(BOB) && r.path == "/drive/v3/files"));

    // Ada edits her shared file: one delivery (Bob's feed leaves it to Ada's); Bob loses
    // access to it: still in scope through Ada, not deleted; Bob deletes his notes.
    fake.edit(&adas, "# Ada's plan\n\nv2\n");
    fake.unshare(&adas, BOB);
    fake.delete(&bobs);
    let second = pull_pass(&connector, Some(last_checkpoint(&first))).await;
    assert_eq!(documents(&second).len(), 1);
    assert_eq!(source_ids(&second), set(&[&adas]));
    assert_eq!(deleted(&second), set(&[&bobs]));
    assert!(!CONNECTED_USER.is_empty());

    // Impersonation needs a service account.
    let refused = GoogleDriveConnector::new(
        "drive-test",
        config(json!({ "my_drive_emails": [ADA] })),
        owner_credentials(),
        http(),
        retry(),
        fake.drive_base(),
    );
    assert!(matches!(
        refused,
        Err(tributary::connectors::ConnectorError::Config(_))
    ));
}

#[tokio::test]
async fn rate_limits_and_outages_back_off_and_bad_tokens_fail() {
    let (fake, _book, corpus) = world().await;
    let connector = drive(&fake, json!({}));
    fake.rate_limit_next(2, "userRateLimitExceeded");
    let first = connector
        .pull(None)
        .await
        .expect("after two 403 rate limits");
    fake.too_many_next(1, 0);
    fake.fail_next(1, 503);
    let rest = pull_pass(&connector, Some(stored(&first.checkpoint))).await;
    let mut all = source_ids(&rest);
    all.extend(first.documents.iter().map(|d| d.source_id.clone()));
    assert_eq!(all, corpus.everything());
    // A 403 that is not a rate limit is not retried: a permissions problem is reported.
    let wrong = connector_with(
        &fake,
        json!({}),
        tributary::connectors::Credentials::Bearer {
            token: "ya29.unknown".into(),
        },
    );
    match wrong.test_connection().await {
        Err(error @ tributary::connectors::ConnectorError::Unauthorized(_)) => {
            assert!(!error.to_string().contains("ya29.unknown"))
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}
