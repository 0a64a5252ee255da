//! Full syncs: exact, every MIME shape rendered, attachments, 2,000 threads, kill-at-random
//! resumes, throttling and expired page tokens.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::json;
use tributary::connectors::document::Document;
use tributary::connectors::Connector;
use tributary_e2e::fake_gmail::{FakeGmail, ThreadInfo};

use super::{connector, expected_ids, fake, last_checkpoint, list_all, pass, stored, Mirror, ADA};

/// The generated thread `index` of `mailbox`.
pub(crate) fn generated(fake: &FakeGmail, mailbox: &str, index: usize) -> ThreadInfo {
    let subject = format!("Thread {index} of {mailbox}");
    fake.threads(mailbox)
        .into_iter()
        .find(|thread| thread.subject == subject)
        .expect("a generated thread")
}

fn assert_renders(document: &Document, thread: &ThreadInfo) {
    for marker in &thread.markers {
        assert!(
            document.markdown.contains(marker.as_str()),
            "{marker} missing from\n{}",
            document.markdown
        );
    }
    assert!(
        !document.markdown.contains("Quoted "),
        "a quoted reply was kept:\n{}",
        document.markdown
    );
    assert!(
        !document.markdown.contains(" wrote:"),
        "{}",
        document.markdown
    );
}

#[tokio::test]
async fn a_full_sync_is_exact_and_renders_every_mime_shape() {
    let (fake, _book, auth) = fake(&[(ADA, 60)]).await;
    let gmail = connector(&fake, auth, json!({"batch_size": 25}));
    gmail.test_connection().await.expect("connection");
    fake.clear_requests();

    let batches = pass(&gmail, None).await;
    // 60 threads, four of them in SPAM/TRASH: 56 listed in pages of 25.
    assert_eq!(batches.len(), 3);
    let mut mirror = Mirror::default();
    mirror.apply_all(&batches);
    assert_eq!(mirror.writes, 56, "every thread once");
    assert_eq!(mirror.ids(), expected_ids(&fake, ADA, "me"));
    assert!(batches
        .iter()
        .all(|b| b.deleted.is_empty() && b.failures.is_empty()));

    // getProfile first (the change feed's anchor), then the listing, then full threads.
    let requests = fake.requests();
    assert!(
        requests[0].path.ends_with("/users/me/profile"),
        "{:?}",
        requests[0]
    );
    assert!(requests[1].path.ends_with("/users/me/threads"));
    assert_eq!(requests[1].param("maxResults"), Some("25"));
    assert_eq!(requests[1].param("includeSpamTrash"), None);
    let gets: Vec<_> = requests
        .iter()
        .filter(|r| r.path.contains("/threads/"))
        .collect();
    assert_eq!(gets.len(), 56);
    assert!(gets.iter().all(|r| r.param("format") == Some("full")));

    for index in (0..60).filter(|i| i % 25 < 23) {
        let thread = generated(&fake, ADA, index);
        let document = mirror.get("me", &thread.id);
        assert_renders(document, &thread);
        assert_eq!(document.title.as_deref(), Some(thread.subject.as_str()));
        assert_eq!(document.source, "gmail");
        assert_eq!(
            document.id,
            Document::stable_id("connector:gmail-test", &format!("me:{}", thread.id))
        );
        assert_eq!(
            document.url.as_deref(),
            Some(format!("https://mail.google.com/mail/u/0/#all/{}", thread.id).as_str())
        );
        assert_eq!(
            document.metadata["message_count"],
            json!(thread.markers.len())
        );
        assert_eq!(document.metadata["thread_id"], json!(thread.id));
        assert!(document
            .markdown
            .starts_with(&format!("# {}\n", thread.subject)));
        assert!(document.markdown.contains("- **From:** Person "));
        assert!(document
            .markdown
            .contains(&format!("- **To:** Mailbox Owner <{ADA}>")));
        assert!(document.markdown.contains("- **Date:** "));
    }
    // HTML-only mail is markdown, not empty (index 1: a heading, emphasis and a list).
    let html_only = mirror.get("me", &generated(&fake, ADA, 1).id);
    assert!(
        html_only.markdown.contains("## Agenda 1"),
        "{}",
        html_only.markdown
    );
    assert!(
        html_only.markdown.contains("*HTML*"),
        "{}",
        html_only.markdown
    );
    assert!(
        html_only.markdown.contains("- first"),
        "{}",
        html_only.markdown
    );
    // Latin-1 in a nested mixed/related/alternative tree; the plain alternative wins.
    let nested = mirror.get("me", &generated(&fake, ADA, 4).id);
    assert!(
        nested.markdown.contains("at the Café."),
        "{}",
        nested.markdown
    );
    // Three messages in order, the HTML reply's Gmail quote gone.
    let conversation = mirror.get("me", &generated(&fake, ADA, 5).id);
    let positions: Vec<usize> = generated(&fake, ADA, 5)
        .markers
        .iter()
        .map(|m| conversation.markdown.find(m.as_str()).expect("a marker"))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in order: {positions:?}"
    );
    assert_eq!(
        conversation.metadata["participants"],
        json!([
            "person5@example.com",
            "ada@example.com",
            "person6@example.com",
            "person7@example.com"
        ])
    );
    // Attachments are listed, not read, unless asked for.
    let mixed = mirror.get("me", &generated(&fake, ADA, 2).id);
    assert!(
        mixed.markdown.contains("- Attachment: notes-2.txt"),
        "{}",
        mixed.markdown
    );
    assert!(mixed.markdown.contains("- Attachment: scan-2.pdf"));
    assert!(!mixed.markdown.contains("Attachment text"));
    assert_eq!(
        mixed.metadata["attachments"],
        json!(["notes-2.txt", "scan-2.pdf"])
    );
    assert!(!requests.iter().any(|r| r.path.contains("/attachments/")));
    // The slim listing is the same scope.
    let mut listed = list_all(&gmail).await;
    listed.sort();
    assert_eq!(listed, expected_ids(&fake, ADA, "me"));
}

#[tokio::test]
async fn text_attachments_are_indexed_when_asked_and_capped() {
    let (fake, _book, auth) = fake(&[(ADA, 12)]).await;
    let gmail = connector(&fake, auth.clone(), json!({"include_attachments": true}));
    let mut mirror = Mirror::default();
    mirror.apply_all(&pass(&gmail, None).await);
    let mixed = mirror.get("me", &generated(&fake, ADA, 2).id);
    assert!(
        mixed.markdown.contains("### Attachment: notes-2.txt"),
        "{}",
        mixed.markdown
    );
    assert!(
        mixed.markdown.contains("Attachment text U0-T2"),
        "{}",
        mixed.markdown
    );
    // A binary attachment is named, never read.
    assert!(mixed.markdown.contains("- Attachment: scan-2.pdf"));
    let nested = mirror.get("me", &generated(&fake, ADA, 4).id);
    assert!(
        nested.markdown.contains("| month | total |"),
        "{}",
        nested.markdown
    );
    assert!(nested.markdown.contains("- Attachment: logo.png"));
    let reads: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/attachments/"))
        .collect();
    assert_eq!(
        reads.len(),
        4,
        "one text attachment in each of four threads"
    );

    // Over the cap: listed by name and reported skipped, not read.
    fake.clear_requests();
    let capped = connector(
        &fake,
        auth,
        json!({"include_attachments": true, "max_attachment_bytes": 10}),
    );
    let batches = pass(&capped, None).await;
    let skipped: Vec<_> = batches.iter().flat_map(|b| &b.skipped).collect();
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert!(skipped
        .iter()
        .all(|s| s.size > 10 && s.reason.contains("10 bytes")));
    assert!(!fake
        .requests()
        .iter()
        .any(|r| r.path.contains("/attachments/")));
}

#[tokio::test]
async fn two_thousand_threads_sync_exactly() {
    let (fake, _book, auth) = fake(&[(ADA, 2_000)]).await;
    let gmail = connector(&fake, auth, json!({"batch_size": 100}));
    let started = Instant::now();
    let batches = pass(&gmail, None).await;
    let elapsed = started.elapsed();
    let mut mirror = Mirror::default();
    mirror.apply_all(&batches);
    let expected = expected_ids(&fake, ADA, "me");
    assert_eq!(expected.len(), 2_000 - 2 * 80);
    assert_eq!(mirror.writes, expected.len(), "no duplicates");
    assert_eq!(mirror.ids(), expected);
    let unique: HashSet<&str> = mirror.documents.values().map(|d| d.id.as_str()).collect();
    assert_eq!(unique.len(), expected.len());
    eprintln!("2,000 threads in {elapsed:?}");
}

/// A tiny deterministic generator (no randomness crate needed).
pub(crate) struct Lcg(u64);

impl Lcg {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[tokio::test]
async fn a_pull_killed_at_a_random_batch_resumes_exactly() {
    let (fake, _book, auth) = fake(&[(ADA, 300)]).await;
    let gmail = connector(&fake, auth.clone(), json!({"batch_size": 20}));
    let mut clean = Mirror::default();
    clean.apply_all(&pass(&gmail, None).await);

    let mut random = Lcg(0x5eed);
    for _ in 0..3 {
        // A run is killed after a random batch: its documents were not delivered and its
        // checkpoint was not saved; the next invocation resumes from the stored one.
        let mut mirror = Mirror::default();
        let mut stored_checkpoint = None;
        let mut kills = 0;
        loop {
            let batch = gmail
                .pull(stored_checkpoint.as_ref())
                .await
                .expect("a batch");
            if kills < 3 && random.below(4) == 0 {
                kills += 1;
                continue;
            }
            mirror.apply(&batch);
            stored_checkpoint = Some(stored(&batch.checkpoint));
            if batch.done {
                break;
            }
        }
        assert_eq!(mirror.hashes(), clean.hashes());
    }

    // The same for a change-feed pass.
    let checkpoint = last_checkpoint(&pass(&gmail, None).await);
    for n in 0..30 {
        fake.add_thread(ADA, &format!("New {n}"), &format!("Marker NEW{n} body"));
    }
    let victims = fake.threads_in_scope(ADA);
    fake.trash_thread(ADA, &victims[40].id);
    fake.delete_thread(ADA, &victims[41].id);
    let gmail = connector(&fake, auth, json!({"batch_size": 5}));
    let mut reference = clean.clone_documents();
    reference.apply_all(&pass(&gmail, Some(checkpoint.clone())).await);
    let mut resumed = clean.clone_documents();
    let mut at = Some(checkpoint);
    loop {
        let batch = gmail.pull(at.as_ref()).await.expect("a batch");
        if random.below(3) == 0 {
            continue;
        }
        resumed.apply(&batch);
        at = Some(stored(&batch.checkpoint));
        if batch.done {
            break;
        }
    }
    assert_eq!(resumed.hashes(), reference.hashes());
    assert_eq!(resumed.ids(), expected_ids(&fake, ADA, "me"));
}

impl Mirror {
    fn clone_documents(&self) -> Mirror {
        Mirror {
            documents: self.documents.clone(),
            writes: 0,
        }
    }
}

#[tokio::test]
async fn rate_limits_and_outages_are_waited_out() {
    let (fake, _book, auth) = fake(&[(ADA, 30)]).await;
    let gmail = connector(&fake, auth, json!({"batch_size": 10}));
    fake.rate_limit_next(2);
    fake.too_many_requests_next(1);
    fake.fail_next(1);
    let mut mirror = Mirror::default();
    mirror.apply_all(&pass(&gmail, None).await);
    assert_eq!(fake.faults_served(), 4);
    assert_eq!(mirror.ids(), expected_ids(&fake, ADA, "me"));
}

#[tokio::test]
async fn an_expired_page_token_restarts_the_listing_without_loss() {
    let (fake, _book, auth) = fake(&[(ADA, 50)]).await;
    let gmail = connector(&fake, auth, json!({"batch_size": 10}));
    let first = gmail.pull(None).await.expect("a batch");
    fake.expire_page_tokens();
    let mut mirror = Mirror::default();
    mirror.apply(&first);
    mirror.apply_all(&pass(&gmail, Some(stored(&first.checkpoint))).await);
    assert_eq!(mirror.ids(), expected_ids(&fake, ADA, "me"));
}
