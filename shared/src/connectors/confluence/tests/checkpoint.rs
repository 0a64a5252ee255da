use chrono::DateTime;
use serde_json::json;
use url::Url;

use super::super::checkpoint::{window_start, Checkpoint};
use super::super::ConfluenceConnector;
use super::config;
use crate::connectors::{ConnectorError, Credentials};
use crate::http::RetryPolicy;

#[test]
fn window_uses_the_source_offset_and_the_overlap() {
    let at = DateTime::parse_from_rfc3339("2024-03-01T10:00:30.123+02:00").unwrap();
    assert_eq!(
        window_start(at, chrono::Duration::minutes(5)),
        "2024-03-01 09:55"
    );
    let utc = DateTime::parse_from_rfc3339("2024-03-01T00:02:00Z").unwrap();
    assert_eq!(
        window_start(utc, chrono::Duration::minutes(5)),
        "2024-02-29 23:57"
    );
}

#[test]
fn checkpoints_round_trip_and_bad_ones_are_refused() {
    let connector =
        ConfluenceConnector::new(
            "c1",
            config(),
            Credentials::Bearer { token: "t".into() },
            crate::http::GuardedClient::with_policy(
                crate::http::policy::NetworkPolicy::allow_private(),
            )
            .unwrap(),
            RetryPolicy::default(),
        )
        .unwrap();
    let checkpoint = Checkpoint {
        window_since: Some("2024-03-01 09:55".into()),
        next: Some(
            Url::parse("https://example.atlassian.net/wiki/rest/api/content/search?cql=x&start=25")
                .unwrap(),
        ),
        max_modified: Some(DateTime::parse_from_rfc3339("2024-03-01T10:00:30+02:00").unwrap()),
    };
    let value = checkpoint.to_value();
    assert_eq!(connector.parse_checkpoint(&value).unwrap(), checkpoint);
    assert_eq!(value["max_modified"], "2024-03-01T10:00:30+02:00");
    for bad in [
        json!("x"),
        json!({}),
        json!({"v": 2}),
        json!({"v": 1, "extra": true}),
        json!({"v": 1, "window_since": "yesterday"}),
        json!({"v": 1, "window_since": "2024-3-1 9:55"}),
        json!({"v": 1, "next": "https://evil.example.com/wiki/rest/api/content/search"}),
        json!({"v": 1, "next": "https://example.atlassian.net/wiki/spaces/X"}),
        json!({"v": 1, "max_modified": "nope"}),
    ] {
        assert!(
            matches!(
                connector.parse_checkpoint(&bad),
                Err(ConnectorError::Checkpoint(_))
            ),
            "{bad}"
        );
    }
}
