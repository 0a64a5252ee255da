//! Incremental syncs from drive delta, an expired delta token, kill-at-random resumption.

use std::collections::BTreeSet;

use serde_json::json;

use super::*;

fn set(ids: &[String]) -> BTreeSet<String> {
    ids.iter().cloned().collect()
}

#[tokio::test]
async fn incremental_syncs_apply_adds_edits_renames_moves_copies_and_deletes() {
    let (fake, c) = world().await;
    let sp = connector(&fake, json!({ "batch_size": 3 }));
    let first = pull_pass(&sp, None).await;
    assert_eq!(source_ids(&first), c.everything());
    let fetched = |fake: &FakeGraph, item: &str| {
        fake.drives()
            .content_fetches
            .get(item)
            .copied()
            .unwrap_or(0)
    };

    let (added, copy, restored) = {
        let mut w = fake.drives();
        let added = w.add_file(
            &c.eng_docs,
            Some(&c.plans),
            NewFile::new("new.txt", b"brand new\n"),
        );
        w.edit(&c.plan, b"# Plan\n\nRevised.\n");
        w.rename(&c.api, "api-v2.txt");
        w.move_to(&c.report, &c.plans);
        // A copy keeps the original's lastModifiedDateTime: still a new file to deliver.
        let copy = w.copy(&c.notes, &c.plans, "notes copy.html");
        w.delete(&c.policy);
        // Metadata-only: delta reports it, nothing to download.
        w.touch(&c.todo);
        // Deleted and restored between two syncs: back, unchanged.
        w.delete(&c.old);
        w.restore(&c.old);
        (added, copy, c.old.clone())
    };
    let copy_item = fake.drives().items[&copy].clone();
    let notes_item = fake.drives().items[&c.notes].clone();
    assert_eq!(
        copy_item.modified, notes_item.modified,
        "the copy has the old mtime"
    );
    fake.clear_requests();

    let second = pull_pass(&sp, Some(last_checkpoint(&first))).await;
    assert_eq!(
        source_ids(&second),
        set(&[
            sid(&c.eng_docs, &added),
            sid(&c.eng_docs, &c.plan),
            sid(&c.eng_specs, &c.api),
            sid(&c.eng_docs, &c.report),
            sid(&c.eng_docs, &copy),
        ])
    );
    assert_eq!(
        by_id(&second, &sid(&c.eng_docs, &c.plan)).markdown,
        "# Plan\n\nRevised.\n"
    );
    assert_eq!(
        by_id(&second, &sid(&c.eng_specs, &c.api)).metadata["path"],
        json!("/api-v2.txt")
    );
    assert_eq!(
        by_id(&second, &sid(&c.eng_docs, &c.report)).metadata["path"],
        json!("/Plans/report.pdf")
    );
    let copied = by_id(&second, &sid(&c.eng_docs, &copy));
    assert_eq!(copied.metadata["path"], json!("/Plans/notes copy.html"));
    assert!(copied.markdown.contains("# Notes"));
    assert_eq!(deleted(&second), set(&[sid(&c.hr_docs, &c.policy)]));
    assert_eq!(
        fetched(&fake, &c.todo),
        1,
        "a metadata-only change is not downloaded again"
    );
    assert_eq!(
        fetched(&fake, &restored),
        1,
        "restored unchanged: not downloaded again"
    );
    assert!(failures(&second).is_empty());

    // A folder renamed: the files below get their new path (the subtree is walked).
    fake.drives().rename(&c.plans, "Roadmap");
    let third = pull_pass(&sp, Some(last_checkpoint(&second))).await;
    assert_eq!(
        by_id(&third, &sid(&c.eng_docs, &c.plan)).metadata["path"],
        json!("/Roadmap/plan.md")
    );
    assert_eq!(
        by_id(&third, &sid(&c.eng_docs, &c.old)).metadata["path"],
        json!("/Roadmap/Archive/old.txt")
    );

    // A folder deleted: every file below it is a tombstone.
    fake.drives().delete(&c.archive);
    let fourth = pull_pass(&sp, Some(last_checkpoint(&third))).await;
    assert_eq!(deleted(&fourth), set(&[sid(&c.eng_docs, &c.old)]));
    assert!(documents(&fourth).is_empty());
}

#[tokio::test]
async fn folder_paths_scope_files_and_a_folder_moving_out_takes_its_files() {
    let (fake, c) = world().await;
    let sp = connector(
        &fake,
        json!({ "folder_paths": ["/Plans"], "include_site_pages": false, "user_drives": [] }),
    );
    let first = pull_pass(&sp, None).await;
    let in_plans = set(&[sid(&c.eng_docs, &c.plan), sid(&c.eng_docs, &c.old)]);
    assert_eq!(source_ids(&first), in_plans);
    assert!(
        deleted(&first).is_empty(),
        "nothing out of scope was ever delivered"
    );
    assert_eq!(list_all(&sp).await.expect("listing"), in_plans);

    let root = fake.drives().root_of(&c.eng_docs);
    fake.drives().move_to(&c.archive, &root); // out of /Plans, with old.txt
    fake.drives().move_to(&c.report, &c.plans); // into /Plans
    let second = pull_pass(&sp, Some(last_checkpoint(&first))).await;
    assert_eq!(deleted(&second), set(&[sid(&c.eng_docs, &c.old)]));
    assert_eq!(source_ids(&second), set(&[sid(&c.eng_docs, &c.report)]));
    assert_eq!(
        list_all(&sp).await.expect("listing"),
        set(&[sid(&c.eng_docs, &c.plan), sid(&c.eng_docs, &c.report)])
    );

    // Extension filters.
    let pdfs = connector(
        &fake,
        json!({ "include_extensions": ["pdf"], "include_site_pages": false, "user_drives": [] }),
    );
    assert_eq!(
        source_ids(&pull_pass(&pdfs, None).await),
        set(&[sid(&c.eng_docs, &c.report)])
    );
}

#[tokio::test]
async fn an_expired_delta_token_enumerates_again_without_losing_a_file() {
    let (fake, c) = world().await;
    let sp = connector(&fake, json!({ "batch_size": 4 }));
    let first = pull_pass(&sp, None).await;
    let added = {
        let mut w = fake.drives();
        let added = w.add_file(&c.eng_docs, None, NewFile::new("later.txt", b"later\n"));
        w.delete(&c.report);
        w.expire_delta_tokens();
        added
    };
    fake.clear_requests();
    let second = pull_pass(&sp, Some(last_checkpoint(&first))).await;
    assert!(failures(&second).is_empty());
    // The 410 was answered, then the drive was enumerated from scratch (no token).
    let requests = fake.requests();
    let deltas: Vec<_> = requests
        .iter()
        .filter(|r| r.path == format!("/drives/{}/root/delta", c.eng_docs))
        .collect();
    assert!(deltas[0].param("token").is_some());
    assert!(deltas[1].param("token").is_none(), "a fresh enumeration");
    // Only the new file is delivered (the rest is unchanged), nothing is a tombstone: the
    // deletion is the prune's, from the complete listing.
    assert!(source_ids(&second).contains(&sid(&c.eng_docs, &added)));
    assert!(!source_ids(&second).contains(&sid(&c.eng_docs, &c.plan)));
    assert!(deleted(&second).is_empty());
    let mut expected = c.everything();
    expected.remove(&sid(&c.eng_docs, &c.report));
    expected.insert(sid(&c.eng_docs, &added));
    assert_eq!(list_all(&sp).await.expect("listing"), expected);

    // The new deltaLink works.
    fake.drives().edit(&c.plan, b"after the reset\n");
    let third = pull_pass(&sp, Some(last_checkpoint(&second))).await;
    assert_eq!(source_ids(&third), set(&[sid(&c.eng_docs, &c.plan)]));
}

use tributary_e2e::passes::crash_points;

#[tokio::test]
async fn a_sync_killed_at_random_batches_resumes_exactly() {
    let (fake, c) = world().await;
    let ids = fake.drives().populate(&c.eng_specs, 240);
    let extra = json!({ "batch_size": 10 });
    let clean = pull_pass(&connector(&fake, extra.clone()), None).await;
    assert_eq!(source_ids(&clean).len(), c.everything().len() + 240);
    for seed in [7u64, 1_234_567, 99] {
        let crashes = crash_points(seed, clean.len());
        // Each crash drops the batch in flight (never delivered, checkpoint not saved);
        // a new process resumes from the last saved checkpoint.
        let mut saved: Option<Value> = None;
        let mut delivered = Vec::new();
        let mut pulls = 0;
        loop {
            let batch = connector(&fake, extra.clone())
                .pull(saved.as_ref())
                .await
                .expect("a batch");
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
    }

    // The same through delta.
    for id in ids.iter().step_by(7) {
        fake.drives().edit(id, b"edited while nobody watched");
    }
    let start = last_checkpoint(&clean);
    let changed = pull_pass(&connector(&fake, extra.clone()), Some(start.clone())).await;
    assert_eq!(source_ids(&changed).len(), ids.iter().step_by(7).count());
    let mut saved = Some(start);
    let mut delivered = Vec::new();
    let mut pulls = 0;
    loop {
        let batch = connector(&fake, extra.clone())
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
