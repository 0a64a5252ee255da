use serde_json::json;

use super::super::convert::{
    acl_of, cell_rows, document, sheet_range, sheets_markdown, utc, DriveFile, Export, Permission,
};

fn file(value: serde_json::Value) -> DriveFile {
    serde_json::from_value(value).unwrap()
}

#[test]
fn each_kind_of_file_is_read_its_own_way() {
    let kind = |mime: &str| file(json!({"id": "1", "mimeType": mime})).export();
    assert_eq!(kind("application/vnd.google-apps.document"), Some(Export::Markdown("text/markdown")));
    assert_eq!(kind("application/vnd.google-apps.spreadsheet"), Some(Export::Sheets));
    assert_eq!(kind("application/vnd.google-apps.presentation"), Some(Export::PlainText));
    assert_eq!(kind("application/pdf"), Some(Export::Media));
    assert_eq!(kind("application/vnd.google-apps.folder"), None);
    assert_eq!(kind("application/vnd.google-apps.shortcut"), None);
    assert_eq!(kind("application/vnd.google-apps.drawing"), None);
}

#[test]
fn the_acl_comes_from_permissions() {
    let permissions: Vec<Permission> = serde_json::from_value(json!([
        {"type": "user", "emailAddress": "Ada@Example.com", "role": "owner"},
        {"type": "group", "emailAddress": "eng@example.com", "role": "reader"},
        {"type": "domain", "domain": "example.com", "role": "reader"},
        {"type": "anyone", "role": "reader"},
        {"type": "user", "emailAddress": "ada@example.com", "role": "writer"},
        {"type": "user", "role": "reader"}
    ]))
    .unwrap();
    assert_eq!(
        acl_of(&permissions),
        vec!["anyone", "domain:example.com", "group:eng@example.com", "user:ada@example.com"]
    );
}

#[test]
fn documents_carry_the_metadata_and_fingerprints_ignore_views() {
    let resource = json!({
        "id": "1doc", "name": "Plan", "mimeType": "application/vnd.google-apps.document",
        "parents": ["1folder"], "modifiedTime": "2024-05-01T10:15:30.123+02:00",
        "createdTime": "2024-04-01T08:00:00.000Z", "version": "7",
        "webViewLink": "https://docs.google.com/document/d/1doc/edit", "driveId": "0Adrive",
        "owners": [{"emailAddress": "ada@example.com", "me": true}]
    });
    let plan = file(resource.clone());
    let doc = document("connector:c1", &plan, "/Eng/Plan", vec!["anyone".into()]);
    assert_eq!(doc.source, "google_drive");
    assert_eq!(doc.source_id, "1doc");
    assert_eq!(doc.id, crate::connectors::document::Document::stable_id("connector:c1", "1doc"));
    assert_eq!(doc.updated_at, "2024-05-01T08:15:30Z");
    assert_eq!(doc.url.as_deref(), Some("https://docs.google.com/document/d/1doc/edit"));
    assert_eq!(doc.metadata["path"], json!("/Eng/Plan"));
    assert_eq!(doc.metadata["owners"], json!(["ada@example.com"]));
    assert_eq!(doc.metadata["drive_id"], json!("0Adrive"));
    assert_eq!(doc.metadata["mime_type"], json!("application/vnd.google-apps.document"));
    assert_eq!(doc.metadata["modified_time"], json!("2024-05-01T08:15:30Z"));
    assert_eq!(doc.acl, vec!["anyone"]);

    let acl = vec!["user:ada@example.com".to_owned()];
    let base = plan.fingerprint(&acl);
    // A new version number alone (a view) changes nothing a document shows.
    let mut viewed = resource.clone();
    viewed["version"] = json!("8");
    assert_eq!(file(viewed).fingerprint(&acl), base);
    let mut edited = resource.clone();
    edited["modifiedTime"] = json!("2024-05-02T10:00:00Z");
    assert_ne!(file(edited).fingerprint(&acl), base);
    let mut moved = resource;
    moved["parents"] = json!(["1other"]);
    assert_ne!(file(moved).fingerprint(&acl), base);
    assert_ne!(plan.fingerprint(&[]), base, "a permission change is a change");
    assert_eq!(utc(Some("not a time")), None);
}

#[test]
fn every_sheet_becomes_a_table() {
    let rows = cell_rows(Some(&json!([["name", "qty"], ["apple", 3], ["pear, green", null, true]])));
    assert_eq!(rows[1], vec!["apple", "3"]);
    assert_eq!(rows[2], vec!["pear, green", "", "true"]);
    let markdown = sheets_markdown(
        "Budget",
        &[("Q1".into(), rows), ("Empty".into(), Vec::new())],
    );
    assert!(markdown.starts_with("# Budget\n\n## Q1\n\n| name | qty |"), "{markdown}");
    assert!(markdown.contains("| pear, green |  | true |"), "{markdown}");
    assert!(markdown.contains("## Empty\n\n(empty)\n"), "{markdown}");
    assert_eq!(sheet_range("Q1 '24"), "'Q1 ''24'");
}
