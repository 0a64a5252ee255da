use serde_json::json;

use super::super::checkpoint::{Checkpoint, Mailbox, Phase, VERSION};

#[test]
fn a_checkpoint_round_trips_and_tracks_mailboxes_in_configured_order() {
    let users = vec!["a@example.com".to_owned(), "b@example.com".to_owned()];
    let mut checkpoint = Checkpoint::new();
    checkpoint.set(
        Mailbox {
            user: "b@example.com".into(),
            email: Some("b@example.com".into()),
            phase: Phase::Synced {
                history_id: "900".into(),
            },
        },
        &users,
    );
    checkpoint.set(
        Mailbox {
            user: "a@example.com".into(),
            email: None,
            phase: Phase::Listing {
                history_id: "120".into(),
                page_token: Some("tok".into()),
            },
        },
        &users,
    );
    checkpoint.at = 1;
    let value = checkpoint.to_value();
    assert_eq!(value["v"], json!(VERSION));
    assert_eq!(value["mailboxes"][0]["user"], json!("a@example.com"));
    assert_eq!(
        value["mailboxes"][0]["phase"],
        json!({"listing": {"history_id": "120", "page_token": "tok"}})
    );
    let text = serde_json::to_string(&value).unwrap();
    let back = Checkpoint::parse(Some(&serde_json::from_str(&text).unwrap())).unwrap();
    assert_eq!(back, checkpoint);
    assert_eq!(
        back.mailbox("b@example.com").unwrap().phase,
        Phase::Synced {
            history_id: "900".into()
        }
    );
    // A mailbox dropped from the configuration is forgotten.
    let mut shrunk = back.clone();
    shrunk.set(
        Mailbox {
            user: "a@example.com".into(),
            email: None,
            phase: Phase::Synced {
                history_id: "130".into(),
            },
        },
        &users[..1],
    );
    assert_eq!(shrunk.mailboxes.len(), 1);
}

#[test]
fn foreign_or_damaged_checkpoints_are_refused() {
    assert_eq!(Checkpoint::parse(None).unwrap(), Checkpoint::new());
    for bad in [
        json!({}),
        json!({"v": 2, "at": 0, "mailboxes": []}),
        json!({"v": 1, "at": 0, "mailboxes": [], "extra": 1}),
        json!({"v": 1, "at": 0, "mailboxes": [{"user": "me", "email": null,
            "phase": {"synced": {"history_id": "not-a-number"}}}]}),
        json!({"v": 1, "at": 0, "mailboxes": [{"user": "me", "email": null,
            "phase": {"history": {"start": "1", "page_token": ""}}}]}),
        json!({"version": 1, "cursor": null}),
    ] {
        assert!(Checkpoint::parse(Some(&bad)).is_err(), "{bad} accepted");
    }
}
