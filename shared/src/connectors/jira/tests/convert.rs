use serde_json::{json, Value};

use super::super::client::{jira_messages, truncate};
use super::super::config::check_jql_shape;
use super::super::convert::{parse_issue, text_language};
use super::connector;
use crate::connectors::convert::adf::tests::{doc, paragraph, text};
use crate::connectors::document::Document;

#[test]
fn issues_convert_to_documents() {
    let connector = connector();
    let raw = json!({
        "id": "10042",
        "key": "PROJ-43",
        "fields": {
            "summary": "Fix the\nlogin",
            "updated": "2024-05-01T10:15:30.123+0200",
            "created": "2024-04-01T09:00:00.000+0200",
            "labels": ["backend"],
            "project": {"key": "PROJ", "name": "Project"},
            "status": {"name": "Done"},
            "issuetype": {"name": "Bug"},
            "assignee": null,
            "reporter": {"displayName": "Bob"},
            "description": doc(json!([paragraph(json!([text("Body")]))])),
        }
    });
    let issue = parse_issue(&raw).unwrap();
    let comments = vec![json!({
        "author": {"displayName": "Ada"},
        "created": "2024-05-01T11:00:00.000+0200",
        "body": doc(json!([paragraph(json!([text("Looks good")]))])),
    })];
    let document = connector.document(&issue, &comments, &[]);
    assert_eq!(document.id, Document::stable_id("connector:c1", "10042"));
    assert_eq!(document.title.as_deref(), Some("PROJ-43: Fix the login"));
    assert_eq!(
        document.url.as_deref(),
        Some("https://example.atlassian.net/browse/PROJ-43")
    );
    assert_eq!(document.updated_at, "2024-05-01T08:15:30Z");
    assert_eq!(document.metadata["created"], json!("2024-04-01T07:00:00Z"));
    assert_eq!(document.metadata["assignee"], Value::Null);
    assert_eq!(
        document.markdown,
        "# PROJ-43: Fix the login\n\n- **Project:** PROJ (Project)\n- **Type:** Bug\n\
         - **Status:** Done\n- **Assignee:** Unassigned\n- **Reporter:** Bob\n\
         - **Labels:** backend\n- **Created:** 2024-04-01T07:00:00Z\n\
         - **Updated:** 2024-05-01T08:15:30Z\n\nBody\n\n## Comments\n\n\
         ### Ada · 2024-05-01T09:00:00Z\n\nLooks good\n"
    );
    for garbage in [
        json!({"id": "1", "key": "PROJ-1", "fields": {"summary": 4, "updated": "2024-05-01T10:15:30.123+0200"}}),
        json!({"id": "1", "key": "PROJ-1", "fields": {"summary": "s", "updated": "later"}}),
        json!({"id": "1", "key": "../x", "fields": {"summary": "s", "updated": "2024-05-01T10:15:30.123+0200"}}),
        json!({"id": "x/1", "key": "PROJ-1", "fields": {}}),
        json!({"id": "1", "key": "PROJ-1", "fields": {"summary": "s", "updated": "2024-05-01T10:15:30.123+0200", "description": 5}}),
    ] {
        assert!(parse_issue(&garbage).is_err(), "{garbage}");
    }
}

#[test]
fn helpers() {
    assert!(check_jql_shape("a = b ORDER BY c").is_err());
    assert!(check_jql_shape("a = b order\nby c").is_err());
    assert!(check_jql_shape("summary ~ 'order by'").is_ok());
    assert!(check_jql_shape("border = by").is_ok());
    assert!(check_jql_shape("a = 1) OR (b = 2").is_err());
    assert!(check_jql_shape("(a = 1").is_err());
    assert!(check_jql_shape("summary ~ \"x").is_err());
    assert!(check_jql_shape("summary ~ \"a) OR (\\\" b\" AND (c in (1, 2))").is_ok());
    assert_eq!(
        text_language("text/plain; charset=utf-8").as_deref(),
        Some("text")
    );
    assert_eq!(text_language("application/json").as_deref(), Some("json"));
    assert_eq!(text_language("text/csv").as_deref(), Some("csv"));
    assert_eq!(text_language("image/png"), None);
    assert_eq!(
        jira_messages(r#"{"errorMessages":["bad jql"],"errors":{"jql":"nope"}}"#),
        "bad jql; jql: nope"
    );
    assert_eq!(truncate("abcdef", 3), "abc…");
}
