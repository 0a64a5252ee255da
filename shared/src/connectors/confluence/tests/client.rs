use url::Url;

use super::super::{with_expand, ConfluenceConnector, EXPAND};
use super::config;
use crate::connectors::Credentials;
use crate::http::RetryPolicy;

#[test]
fn next_links_resolve_against_the_links_base_and_stay_on_the_site() {
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
    let base = "https://example.atlassian.net/wiki";
    assert_eq!(
        connector
            .resolve_next(base, "/rest/api/content/search?cql=a&start=25")
            .unwrap()
            .as_str(),
        "https://example.atlassian.net/wiki/rest/api/content/search?cql=a&start=25"
    );
    // A foreign base is not trusted for API calls.
    assert_eq!(
        connector
            .resolve_next(
                "https://other.example.com/wiki",
                "/rest/api/content/search?x=1"
            )
            .unwrap()
            .as_str(),
        "https://example.atlassian.net/wiki/rest/api/content/search?x=1"
    );
    assert!(connector
        .resolve_next(
            base,
            "https://other.example.com/wiki/rest/api/content/search"
        )
        .is_err());
    assert!(connector.resolve_next(base, "relative").is_err());
    let with = with_expand(
        Url::parse("https://example.atlassian.net/wiki/rest/api/content/search?cql=a").unwrap(),
    );
    assert!(with
        .query_pairs()
        .any(|(k, v)| k == "expand" && v == EXPAND));
}

#[test]
fn credentials_never_show_in_debug_output() {
    let connector =
        ConfluenceConnector::new(
            "c1",
            config(),
            Credentials::Basic {
                email: "a@example.com".into(),
                api_token: "very-secret-token".into(),
            },
            crate::http::GuardedClient::with_policy(
                crate::http::policy::NetworkPolicy::allow_private(),
            )
            .unwrap(),
            RetryPolicy::default(),
        )
        .unwrap();
    assert!(!format!("{connector:?}").contains("very-secret-token"));
}
