use std::collections::BTreeMap;

use serde_json::json;

use super::super::checkpoint::{
    below_roots, prune_folders, Checkpoint, Feed, Task, CHECKPOINT_VERSION, MAX_SEEN,
};

fn sample() -> Checkpoint {
    Checkpoint {
        v: CHECKPOINT_VERSION,
        feeds: vec![Feed {
            user: Some("ada@example.com".into()),
            token: "1234".into(),
        }],
        tasks: vec![
            Task::MyDrive { user: None },
            Task::Folder { id: "1abc".into() },
            Task::Changes { index: 0 },
        ]
        .into(),
        page_token: Some("tok".into()),
        folders: BTreeMap::from([("1sub".to_owned(), "1abc".to_owned())]),
        seen: Default::default(),
    }
}

#[test]
fn a_checkpoint_round_trips_and_bad_ones_are_refused() {
    let checkpoint = sample();
    let value = checkpoint.to_value();
    assert_eq!(value["v"], json!(1));
    assert_eq!(value["tasks"][1], json!({"kind": "folder", "id": "1abc"}));
    assert_eq!(Checkpoint::parse(&value).unwrap(), checkpoint);

    let refused = |patch: serde_json::Value| {
        let mut value = sample().to_value();
        for (key, field) in patch.as_object().unwrap() {
            value[key] = field.clone();
        }
        Checkpoint::parse(&value).is_err()
    };
    assert!(refused(json!({"v": 2})));
    assert!(refused(json!({"page_token": ""})));
    assert!(refused(json!({"feeds": [{"user": null, "token": ""}]})));
    assert!(refused(json!({"tasks": [{"kind": "changes", "index": 3}]})));
    assert!(refused(json!({"tasks": [{"kind": "folder", "id": "a'b"}]})));
    assert!(refused(json!({"tasks": [{"kind": "nonsense"}]})));
    assert!(refused(json!({"extra": true})));
    assert!(Checkpoint::parse(&json!({"feeds": []})).is_err());
}

#[test]
fn fingerprints_are_bounded_and_latest_wins() {
    let mut checkpoint = sample();
    checkpoint.remember("f1", "aaaa".into());
    checkpoint.remember("f1", "bbbb".into());
    assert_eq!(checkpoint.fingerprint("f1"), Some("bbbb"));
    assert_eq!(checkpoint.seen.len(), 1);
    for n in 0..MAX_SEEN + 10 {
        checkpoint.remember(&format!("g{n}"), "x".into());
    }
    assert_eq!(checkpoint.seen.len(), MAX_SEEN);
    assert_eq!(checkpoint.fingerprint("f1"), None, "the oldest is dropped");
    checkpoint.forget(&format!("g{}", MAX_SEEN + 9));
    assert_eq!(checkpoint.fingerprint(&format!("g{}", MAX_SEEN + 9)), None);
    assert!(Checkpoint::parse(&checkpoint.to_value()).is_ok());
}

#[test]
fn the_folder_tree_follows_moves() {
    let roots = vec!["root".to_owned()];
    let mut folders = BTreeMap::from([
        ("a".to_owned(), "root".to_owned()),
        ("b".to_owned(), "a".to_owned()),
        ("c".to_owned(), "b".to_owned()),
        ("x".to_owned(), "elsewhere".to_owned()),
    ]);
    assert!(below_roots(&folders, &roots, "root"));
    assert!(below_roots(&folders, &roots, "c"));
    assert!(!below_roots(&folders, &roots, "x"));
    assert!(!below_roots(&folders, &roots, "unknown"));
    // `a` moves out: everything below it leaves with it.
    folders.remove("a");
    prune_folders(&mut folders, &roots);
    assert!(folders.is_empty());
}
