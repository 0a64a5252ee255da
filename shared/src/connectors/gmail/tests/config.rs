use serde_json::{json, Value};

use super::super::GmailConfig;

fn parse(value: Value) -> Result<GmailConfig, String> {
    let config: GmailConfig = serde_json::from_value(value).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

#[test]
fn defaults_exclude_spam_and_trash_and_read_no_attachments() {
    let config = parse(json!({})).unwrap();
    assert!(config.user_emails.is_empty());
    assert_eq!(config.exclude_labels, vec!["SPAM", "TRASH"]);
    assert!(!config.include_attachments);
    assert_eq!(config.max_attachment_bytes, 1024 * 1024);
    assert_eq!(config.batch_size, 50);
    // Both excluded: Gmail's default (no includeSpamTrash), no extra terms.
    assert_eq!(config.list_scope(), (None, false));
}

#[test]
fn the_query_is_anded_and_a_single_excluded_system_label_is_searched_away() {
    let config = parse(json!({"query": "from:billing@example.com OR subject:invoice"})).unwrap();
    assert_eq!(
        config.list_scope(),
        (
            Some("(from:billing@example.com OR subject:invoice)".to_owned()),
            false
        )
    );
    let spam_only = parse(json!({"exclude_labels": ["SPAM"]})).unwrap();
    assert_eq!(spam_only.list_scope(), (Some("-in:spam".to_owned()), true));
    let nothing = parse(json!({"exclude_labels": []})).unwrap();
    assert_eq!(nothing.list_scope(), (None, true));
    assert!(spam_only.excludes(&["INBOX".into(), "SPAM".into()]));
    assert!(!spam_only.excludes(&["INBOX".into(), "TRASH".into()]));
}

#[test]
fn invalid_configs_are_refused() {
    for bad in [
        json!({"user_emails": ["not-an-email"]}),
        json!({"user_emails": ["a@example.com", "A@example.com"]}),
        json!({"user_emails": ["a/b@example.com"]}),
        json!({"query": "  "}),
        json!({"query": "a\nb"}),
        json!({"labels": ["INBOX", "has space"]}),
        json!({"labels": ["TRASH"]}),
        json!({"max_attachment_bytes": 0}),
        json!({"max_attachment_bytes": 11 * 1024 * 1024}),
        json!({"batch_size": 0}),
        json!({"batch_size": 101}),
        json!({"base_url": "https://gmail.googleapis.com"}),
    ] {
        assert!(parse(bad.clone()).is_err(), "{bad} accepted");
    }
    let good = parse(json!({
        "user_emails": ["ada@example.com", "bob@example.org"],
        "query": "newer_than:1y",
        "labels": ["INBOX", "Label_12"],
        "exclude_labels": ["SPAM", "TRASH", "CATEGORY_PROMOTIONS"],
        "include_attachments": true,
        "max_attachment_bytes": 2048,
        "batch_size": 100
    }))
    .unwrap();
    assert_eq!(good.user_emails.len(), 2);
}
