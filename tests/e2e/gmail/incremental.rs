//! Later syncs read Gmail's change feed: new message, reply, delete, trash, spam, label
//! change, restore; the label and query scopes; an expired historyId.

use serde_json::json;
use tributary::connectors::Connector;

use super::full::generated;
use super::{connector, expected_ids, fake, last_checkpoint, pass, Mirror, ADA};

#[tokio::test]
async fn the_change_feed_applies_every_kind_of_change() {
    let (fake, _book, auth) = fake(&[(ADA, 40)]).await;
    let gmail = connector(&fake, auth, json!({"batch_size": 10}));
    let mut mirror = Mirror::default();
    let batches = pass(&gmail, None).await;
    mirror.apply_all(&batches);
    let checkpoint = last_checkpoint(&batches);

    // Nothing changed: one history call, nothing fetched.
    fake.clear_requests();
    let quiet = pass(&gmail, Some(checkpoint)).await;
    assert_eq!(quiet.len(), 1);
    assert!(quiet[0].documents.is_empty() && quiet[0].deleted.is_empty());
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].path.ends_with("/users/me/history"));
    assert_eq!(
        requests[0].params("historyTypes"),
        [
            "messageAdded",
            "messageDeleted",
            "labelAdded",
            "labelRemoved"
        ]
    );
    let checkpoint = last_checkpoint(&quiet);

    let replied = generated(&fake, ADA, 0);
    let deleted = generated(&fake, ADA, 1);
    let trashed = generated(&fake, ADA, 2);
    let spammed = generated(&fake, ADA, 3);
    let relabelled = generated(&fake, ADA, 4);
    let half_deleted = generated(&fake, ADA, 5);
    let new_thread = fake.add_thread(ADA, "Fresh news", "Marker FRESH arrives");
    fake.reply(ADA, &replied.id, "Marker REPLY answers");
    fake.delete_thread(ADA, &deleted.id);
    fake.trash_thread(ADA, &trashed.id);
    fake.spam_thread(ADA, &spammed.id);
    fake.label_thread(ADA, &relabelled.id, &["Label_9"], &["IMPORTANT"]);
    // The last of three messages deleted: the thread stays, with two.
    fake.delete_message(ADA, &half_deleted.message_ids[2]);

    fake.clear_requests();
    let batches = pass(&gmail, Some(checkpoint)).await;
    mirror.apply_all(&batches);
    assert_eq!(mirror.ids(), expected_ids(&fake, ADA, "me"));
    let gone: Vec<&String> = batches.iter().flat_map(|b| &b.deleted).collect();
    let id = |thread: &str| format!("me:{thread}");
    for thread in [&deleted.id, &trashed.id, &spammed.id] {
        assert!(
            gone.contains(&&id(thread)),
            "{thread} not reported gone: {gone:?}"
        );
    }
    assert_eq!(gone.len(), 3);
    let fresh = mirror.get("me", &new_thread);
    assert!(fresh.markdown.contains("Marker FRESH arrives"));
    let reply = mirror.get("me", &replied.id);
    assert!(
        reply.markdown.contains("Marker REPLY answers"),
        "{}",
        reply.markdown
    );
    assert!(
        !reply.markdown.contains("> Marker"),
        "the quote is stripped:\n{}",
        reply.markdown
    );
    assert_eq!(reply.metadata["message_count"], json!(2));
    let labels = &mirror.get("me", &relabelled.id).metadata["labels"];
    assert!(
        labels.as_array().unwrap().contains(&json!("Label_9")),
        "{labels}"
    );
    let two_left = mirror.get("me", &half_deleted.id);
    assert_eq!(two_left.metadata["message_count"], json!(2));
    assert!(!two_left.markdown.contains(&half_deleted.markers[2]));
    // Only the change feed and the touched threads were read: no listing.
    let requests = fake.requests();
    assert!(
        !requests.iter().any(|r| r.path.ends_with("/threads")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.path.contains("/threads/"))
            .count()
            <= 7
    );

    // Restore: out of the trash and out of spam, the threads come back.
    let checkpoint = last_checkpoint(&batches);
    fake.untrash_thread(ADA, &trashed.id);
    fake.label_thread(ADA, &spammed.id, &["INBOX"], &["SPAM"]);
    let batches = pass(&gmail, Some(checkpoint)).await;
    mirror.apply_all(&batches);
    assert!(batches.iter().all(|b| b.deleted.is_empty()));
    assert_eq!(mirror.ids(), expected_ids(&fake, ADA, "me"));
    assert!(mirror.documents.contains_key(&id(&trashed.id)));
    assert!(mirror.documents.contains_key(&id(&spammed.id)));
    assert_eq!(
        mirror.prune(&gmail).await,
        0,
        "the feed left nothing for the prune"
    );
}

#[tokio::test]
async fn a_thread_leaving_the_label_or_query_scope_is_removed() {
    let (fake, _book, auth) = fake(&[(ADA, 30)]).await;
    // Label_1 is on every 7th generated thread.
    let labelled = connector(&fake, auth.clone(), json!({"labels": ["Label_1"]}));
    let mut mirror = Mirror::default();
    let batches = pass(&labelled, None).await;
    mirror.apply_all(&batches);
    let expected: Vec<String> = fake
        .threads_in_scope(ADA)
        .into_iter()
        .filter(|t| t.labels.contains("Label_1"))
        .map(|t| format!("me:{}", t.id))
        .collect();
    assert_eq!(mirror.documents.len(), expected.len());
    let seventh = generated(&fake, ADA, 7);
    fake.label_thread(ADA, &seventh.id, &[], &["Label_1"]);
    let untouched = generated(&fake, ADA, 8);
    fake.label_thread(ADA, &untouched.id, &["STARRED"], &[]);
    let next = pass(&labelled, Some(last_checkpoint(&batches))).await;
    mirror.apply_all(&next);
    let gone: Vec<&String> = next.iter().flat_map(|b| &b.deleted).collect();
    assert!(gone.contains(&&format!("me:{}", seventh.id)));
    assert!(!mirror.documents.contains_key(&format!("me:{}", seventh.id)));
    assert_eq!(mirror.documents.len(), expected.len() - 1);

    // A query: only mail from person1..; a new thread from elsewhere never arrives.
    let queried = connector(&fake, auth, json!({"query": "-from:new@example.com"}));
    let batches = pass(&queried, None).await;
    let mut mirror = Mirror::default();
    mirror.apply_all(&batches);
    assert_eq!(mirror.ids(), expected_ids(&fake, ADA, "me"));
    let outsider = fake.add_thread(ADA, "Not for the index", "Marker OUTSIDER");
    let insider = generated(&fake, ADA, 9);
    fake.reply(ADA, &insider.id, "Marker INSIDER reply");
    fake.clear_requests();
    let next = pass(&queried, Some(last_checkpoint(&batches))).await;
    mirror.apply_all(&next);
    assert!(!mirror.documents.contains_key(&format!("me:{outsider}")));
    assert!(mirror
        .get("me", &insider.id)
        .markdown
        .contains("Marker INSIDER reply"));
    // The scope of touched threads was asked of Gmail: the query plus their Message-IDs.
    let checks: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/threads"))
        .collect();
    assert_eq!(checks.len(), 2);
    assert!(checks.iter().all(|c| c
        .param("q")
        .is_some_and(|q| q.starts_with("(-from:new@example.com) (rfc822msgid:"))));
}

#[tokio::test]
async fn an_expired_history_id_resyncs_in_full_without_losing_anything() {
    let (fake, _book, auth) = fake(&[(ADA, 45)]).await;
    let gmail = connector(&fake, auth, json!({"batch_size": 10}));
    let mut mirror = Mirror::default();
    let batches = pass(&gmail, None).await;
    mirror.apply_all(&batches);
    let before = mirror.ids();

    let added = fake.add_thread(ADA, "While away", "Marker AWAY");
    let removed = generated(&fake, ADA, 6);
    fake.delete_thread(ADA, &removed.id);
    fake.expire_history(ADA);

    fake.clear_requests();
    let mut at = Some(last_checkpoint(&batches));
    loop {
        let batch = gmail.pull(at.as_ref()).await.expect("a batch");
        mirror.apply(&batch);
        // No data loss at any point: what existed before is still there (or was re-written).
        for id in &before {
            if *id != format!("me:{}", removed.id) {
                assert!(mirror.documents.contains_key(id), "{id} lost mid-resync");
            }
        }
        assert!(batch.deleted.is_empty(), "a resync deletes nothing itself");
        at = Some(super::stored(&batch.checkpoint));
        if batch.done {
            break;
        }
    }
    let requests = fake.requests();
    assert!(requests[0].path.ends_with("/history"));
    assert!(
        requests[1].path.ends_with("/profile"),
        "a fresh anchor first: {:?}",
        requests[1]
    );
    assert!(requests[2].path.ends_with("/threads"));
    assert!(mirror.get("me", &added).markdown.contains("Marker AWAY"));
    // The engine's prune after the completed run removes the thread deleted meanwhile.
    assert_eq!(mirror.prune(&gmail).await, 1);
    assert_eq!(mirror.ids(), expected_ids(&fake, ADA, "me"));

    // And the feed works again from the new anchor.
    let later = fake.add_thread(ADA, "After", "Marker AFTER");
    mirror.apply_all(&pass(&gmail, at).await);
    assert!(mirror.get("me", &later).markdown.contains("Marker AFTER"));
}
