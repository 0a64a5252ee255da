use serde_json::json;

use super::super::checkpoint::{window_start, Checkpoint};
use super::connector;
use crate::connectors::{Connector, ConnectorError};

#[test]
fn window_start_keeps_jiras_offset() {
    assert_eq!(
        window_start("2024-05-01T10:15:30.123+0200", 5).as_deref(),
        Some("2024-05-01 10:10")
    );
    assert_eq!(
        window_start("2024-05-01T00:03:00.000+02:00", 5).as_deref(),
        Some("2024-04-30 23:58")
    );
    assert_eq!(
        window_start("2024-03-10T01:00:59.999-0500", 0).as_deref(),
        Some("2024-03-10 01:00")
    );
    assert_eq!(
        window_start("2024-05-01T08:15:30Z", 1440).as_deref(),
        Some("2024-04-30 08:15")
    );
    assert_eq!(window_start("yesterday", 5), None);
}

#[tokio::test]
async fn bad_checkpoints_are_refused_before_any_call() {
    let connector = connector();
    for checkpoint in [
        json!({"v": 2, "window_since": null, "next_page_token": null, "max_updated": null}),
        json!({"window_since": null}),
        json!("v1"),
        json!({"v": 1, "window_since": "2024-05-01 10:10\" OR project = X", "next_page_token": "t", "max_updated": null}),
        json!({"v": 1, "window_since": null, "next_page_token": null, "max_updated": "soon"}),
        json!({"v": 1, "window_since": null, "next_page_token": "", "max_updated": null}),
        json!({"v": 1, "window_since": null, "next_page_token": null, "max_updated": null, "extra": 1}),
        json!({"v": 1, "window_since": 5, "next_page_token": null, "max_updated": null}),
    ] {
        match connector.pull(Some(&checkpoint)).await {
            Err(ConnectorError::Checkpoint(_)) => {}
            other => panic!("{checkpoint} gave {other:?}"),
        }
    }
}

#[test]
fn checkpoints_round_trip() {
    let checkpoint = Checkpoint {
        v: 1,
        window_since: Some("2024-05-01 10:10".into()),
        next_page_token: Some("abc".into()),
        max_updated: Some("2024-05-01T10:15:30.123+0200".into()),
    };
    assert_eq!(
        Checkpoint::parse(&checkpoint.to_value()).unwrap(),
        checkpoint
    );
    let between = Checkpoint {
        v: 1,
        ..Checkpoint::default()
    };
    assert_eq!(
        between.to_value(),
        json!({"v": 1, "window_since": null, "next_page_token": null, "max_updated": null})
    );
}
