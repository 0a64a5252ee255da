use serde_json::{json, Value};

use super::super::JiraConfig;
use super::config;

#[test]
fn config_defaults_and_validation() {
    let config = config();
    assert!(config.validate().is_ok());
    assert!(config.include_comments);
    assert!(!config.attachments);
    assert_eq!(config.batch_size(), 50);
    assert_eq!(config.overlap_minutes(), 5);
    assert_eq!(config.max_attachment_bytes(), 1024 * 1024);

    let invalid = |patch: Value| {
        let mut value = json!({"base_url": "https://example.atlassian.net"});
        for (key, field) in patch.as_object().unwrap() {
            value[key] = field.clone();
        }
        match serde_json::from_value::<JiraConfig>(value) {
            Ok(config) => config.validate().is_err(),
            Err(_) => true,
        }
    };
    assert!(invalid(json!({"base_url": "http://example.atlassian.net"})));
    assert!(invalid(json!({"base_url": "ftp://example.atlassian.net"})));
    assert!(invalid(
        json!({"base_url": "https://user:pw@example.atlassian.net"})
    ));
    assert!(invalid(
        json!({"base_url": "https://example.atlassian.net/?x=1"})
    ));
    assert!(!invalid(json!({"base_url": "http://127.0.0.1:8080"})));
    assert!(!invalid(json!({"base_url": "http://localhost:8080/"})));
    assert!(invalid(json!({"project_keys": ["proj"]})));
    assert!(invalid(json!({"project_keys": ["P-1"]})));
    assert!(invalid(json!({"project_keys": ["ABCDEFGHIJK"]})));
    assert!(!invalid(
        json!({"project_keys": ["A", "AB_1", "ABCDEFGHIJ"]})
    ));
    assert!(invalid(json!({"jql": "  "})));
    assert!(invalid(json!({"jql": "status = Done order  by created"})));
    assert!(!invalid(json!({"jql": "summary ~ \"order by\""})));
    assert!(invalid(json!({"skip_labels": ["two words"]})));
    assert!(invalid(json!({"skip_labels": [""]})));
    assert!(invalid(json!({"batch_size": 0})));
    assert!(invalid(json!({"batch_size": 101})));
    assert!(!invalid(json!({"batch_size": 100})));
    assert!(invalid(json!({"overlap_minutes": 1441})));
    assert!(invalid(json!({"max_attachment_bytes": 0})));
    assert!(invalid(
        json!({"max_attachment_bytes": 10 * 1024 * 1024 + 1})
    ));
    assert!(invalid(json!({"unknown_field": true})));
}

#[test]
fn scope_jql_is_quoted_and_bounded() {
    let mut config = config();
    assert_eq!(config.scope_jql(), "(project IS NOT EMPTY)");
    config.project_keys = vec!["PROJ".into(), "OR".into()];
    config.jql = Some(" status = Done ".into());
    config.skip_labels = vec!["secret".into(), "we\"ird\\".into()];
    assert_eq!(
        config.scope_jql(),
        "(project in (\"PROJ\", \"OR\")) AND (status = Done) AND \
         (labels IS EMPTY OR labels NOT IN (\"secret\", \"we\\\"ird\\\\\"))"
    );
    assert!(config.skips(&["Secret".into()]));
    assert!(!config.skips(&["public".into()]));
}

#[test]
fn the_config_schema_describes_every_field_and_refuses_unknown_ones() {
    let schema = serde_json::to_value(schemars::schema_for!(JiraConfig)).unwrap();
    assert_eq!(schema["additionalProperties"], json!(false));
    assert_eq!(schema["required"], json!(["base_url"]));
    let properties = schema["properties"].as_object().unwrap();
    assert_eq!(properties.len(), 9);
    for (name, property) in properties {
        assert!(
            property["description"].is_string(),
            "{name} has no description"
        );
    }
    assert_eq!(properties["include_comments"]["default"], json!(true));
    assert_eq!(properties["batch_size"]["maximum"], json!(100));
}
