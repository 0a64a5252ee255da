use serde_json::{json, Value};

use super::super::config::mime_matches;
use super::super::{drive_id, GoogleDriveConfig};

fn parse(value: Value) -> Result<GoogleDriveConfig, String> {
    let config: GoogleDriveConfig = serde_json::from_value(value).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

#[test]
fn defaults_sync_every_my_drive_and_shared_drive() {
    let config = parse(json!({})).unwrap();
    assert!(config.include_my_drives());
    assert!(config.include_shared_drives());
    assert_eq!(config.batch_size(), 50);
    assert_eq!(config.max_file_bytes, 50 * 1024 * 1024);
    // Naming a folder or a shared drive narrows the defaults to it.
    let folder = parse(json!({"folder_ids": ["1AbCdEf_-9"]})).unwrap();
    assert!(!folder.include_my_drives());
    assert!(!folder.include_shared_drives());
    let both = parse(json!({"folder_ids": ["1AbC"], "include_my_drives": true})).unwrap();
    assert!(both.include_my_drives());
    assert!(parse(json!({"include_my_drives": false, "include_shared_drives": false})).is_err());
}

#[test]
fn folder_and_shared_drive_urls_become_ids() {
    let config = parse(json!({
        "folder_ids": [
            "https://drive.google.com/drive/folders/1FoLdEr_id-1",
            "https://drive.google.com/drive/u/0/folders/1FoLdEr_id-2?usp=sharing",
            "https://drive.google.com/open?id=1FoLdEr_id-3",
            "1FoLdEr_id-1"
        ],
        "shared_drive_ids": ["https://drive.google.com/drive/folders/0ADrIvE"]
    }))
    .unwrap();
    assert_eq!(
        config.folders(),
        vec!["1FoLdEr_id-1", "1FoLdEr_id-2", "1FoLdEr_id-3"]
    );
    assert_eq!(config.shared_drives(), vec!["0ADrIvE"]);
    assert_eq!(
        drive_id("https://drive.google.com/file/d/1FiLe/view").as_deref(),
        Some("1FiLe")
    );
    for bad in [
        "https://evil.example.com/drive/folders/1abc",
        "http://drive.google.com/drive/folders/1abc",
        "not an id",
        "",
        "1abc'or'1",
    ] {
        assert!(drive_id(bad).is_none(), "{bad}");
        assert!(parse(json!({"folder_ids": [bad]})).is_err(), "{bad}");
    }
}

#[test]
fn emails_mime_filters_and_limits_are_checked() {
    let config = parse(json!({"user_emails": ["Ada@Example.com", "bob@example.com", "ada@example.com"]}))
        .unwrap();
    assert_eq!(config.emails(), vec!["ada@example.com", "bob@example.com"]);
    assert!(parse(json!({"my_drive_emails": ["not-an-email"]})).is_err());
    assert!(parse(json!({"include_mime_types": ["pdf"]})).is_err());
    assert!(parse(json!({"max_file_bytes": 0})).is_err());
    assert!(parse(json!({"max_file_bytes": 1024u64 * 1024 * 1024})).is_err());
    assert!(parse(json!({"batch_size": 0})).is_err());
    assert!(parse(json!({"batch_size": 201})).is_err());
    assert!(parse(json!({"base_url": "https://www.googleapis.com"})).is_err(), "no base_url");

    let filtered = parse(json!({
        "include_mime_types": ["application/pdf", "application/vnd.google-apps.document", "image/*"],
        "exclude_mime_types": ["image/gif"]
    }))
    .unwrap();
    assert!(filtered.mime_allowed("application/pdf"));
    assert!(filtered.mime_allowed("image/png"));
    assert!(!filtered.mime_allowed("image/gif"));
    assert!(!filtered.mime_allowed("text/plain"));
    assert!(mime_matches("Image/*", "image/jpeg"));
    assert!(!mime_matches("image/*", "imagex/jpeg"));
}
