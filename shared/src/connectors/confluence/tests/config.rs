use serde_json::json;
use url::Url;

use super::super::config::cql_string;
use super::super::{ConfluenceConfig, ConfluenceConnector};
use super::config;
use crate::connectors::{ConnectorError, Credentials};
use crate::http::RetryPolicy;

#[test]
fn config_validation() {
    assert!(config().validate().is_ok());
    assert!(config().include_blog_posts);
    let mut bad = config();
    bad.base_url = Url::parse("http://example.atlassian.net").unwrap();
    assert!(matches!(bad.validate(), Err(ConnectorError::Config(_))));
    bad.base_url = Url::parse("http://127.0.0.1:8080").unwrap();
    assert!(bad.validate().is_ok());
    bad.base_url = Url::parse("https://example.atlassian.net/wiki").unwrap();
    assert!(matches!(bad.validate(), Err(ConnectorError::Config(_))));
    bad.base_url = Url::parse("https://user:pw@example.atlassian.net").unwrap();
    assert!(matches!(bad.validate(), Err(ConnectorError::Config(_))));
    let mut bad = config();
    bad.batch_size = Some(0);
    assert!(bad.validate().is_err());
    bad.batch_size = Some(101);
    assert!(bad.validate().is_err());
    let mut bad = config();
    bad.space_keys = vec!["A\"B".into()];
    assert!(bad.validate().is_err());
    let mut bad = config();
    bad.exclude_labels = vec!["two words".into()];
    assert!(bad.validate().is_err());
    assert!(serde_json::from_value::<ConfluenceConfig>(
        json!({"base_url": "https://example.atlassian.net", "surprise": 1})
    )
    .is_err());
}

#[test]
fn cql_shapes() {
    let mut config = config();
    assert_eq!(config.scope_cql(), "type in (page, blogpost)");
    config.include_blog_posts = false;
    config.space_keys = vec!["ENG".into(), "OPS".into()];
    config.exclude_labels = vec!["draft".into()];
    assert_eq!(
        config.scope_cql(),
        "type = page and space in (\"ENG\", \"OPS\") and label not in (\"draft\")"
    );
    let connector =
        ConfluenceConnector::new(
            "c1",
            config,
            Credentials::Bearer { token: "t".into() },
            crate::http::GuardedClient::with_policy(
                crate::http::policy::NetworkPolicy::allow_private(),
            )
            .unwrap(),
            RetryPolicy::default(),
        )
        .unwrap();
    assert_eq!(
        connector.pull_cql(Some("2024-03-01 09:55")),
        "type = page and space in (\"ENG\", \"OPS\") and label not in (\"draft\") \
         and lastmodified >= \"2024-03-01 09:55\" order by lastmodified asc"
    );
    assert_eq!(cql_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
}

#[test]
fn the_config_schema_describes_every_field_and_refuses_unknown_ones() {
    let schema = serde_json::to_value(schemars::schema_for!(ConfluenceConfig)).unwrap();
    assert_eq!(schema["additionalProperties"], json!(false));
    assert_eq!(schema["required"], json!(["base_url"]));
    let properties = schema["properties"].as_object().unwrap();
    assert_eq!(properties.len(), 8);
    for (name, property) in properties {
        assert!(
            property["description"].is_string(),
            "{name} has no description"
        );
    }
    assert_eq!(properties["include_blog_posts"]["default"], json!(true));
    assert_eq!(properties["base_url"]["format"], json!("uri"));
}
