use super::*;

fn lease(until: i64) -> Lease {
    Lease {
        holder: "h".into(),
        until,
        run: None,
    }
}

#[test]
fn a_busy_message_waits_for_the_lease_and_longer_each_attempt_but_at_most_15_minutes() {
    let now = 1_000;
    assert_eq!(
        busy_delay(&lease(now + 60), 0, now),
        Duration::from_secs(61)
    );
    assert_eq!(busy_delay(&lease(now - 5), 0, now), Duration::from_secs(5));
    assert_eq!(busy_delay(&lease(now), 4, now), Duration::from_secs(80));
    assert_eq!(busy_delay(&lease(now + 5_000), 0, now), MAX_BUSY_DELAY);
    assert_eq!(busy_delay(&lease(now), 60, now), MAX_BUSY_DELAY);
}

#[test]
fn old_messages_still_parse_and_new_fields_stay_out_of_plain_ones() {
    let old: SyncMessage =
        serde_json::from_str(r#"{"connector_id":"c","trigger":"manual","run":null}"#)
            .expect("old body");
    assert_eq!(old, SyncMessage::new("c", "manual"));
    assert!(!old.body().contains("lease") && !old.body().contains("attempt"));
}
