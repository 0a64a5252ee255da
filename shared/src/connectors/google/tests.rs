use serde_json::json;

use super::*;
use crate::connectors::kit::AccessToken;
use crate::connectors::Credentials;

fn http() -> GuardedClient {
    GuardedClient::with_policy(crate::crawl::ssrf::NetworkPolicy::strict()).expect("client")
}

fn key_file() -> serde_json::Value {
    json!({
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "kid-1",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
        "client_email": "sync@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
}

#[test]
fn a_key_file_is_taken_as_is_and_never_printed() {
    let credentials: Credentials = serde_json::from_value(json!({
        "type": "service_account", "key": key_file(), "subject": "admin@example.com"
    }))
    .expect("a key file parses");
    let printed = format!("{credentials:?}");
    assert!(
        printed.contains("sync@p.iam.gserviceaccount.com"),
        "{printed}"
    );
    assert!(!printed.contains("BEGIN PRIVATE KEY"), "{printed}");
    let auth: SourceAuth = credentials.into();
    assert!(!format!("{auth:?}").contains("BEGIN"));
    let stored = serde_json::to_value(auth_credentials()).expect("serialise");
    assert_eq!(
        stored["key"]["client_email"],
        json!("sync@p.iam.gserviceaccount.com")
    );
    assert!(
        stored["key"].get("project_id").is_none(),
        "unused fields dropped"
    );
}

fn auth_credentials() -> Credentials {
    serde_json::from_value(json!({"type": "service_account", "key": key_file()})).expect("parse")
}

#[test]
fn a_service_account_acts_as_each_named_user_with_its_own_tokens() {
    let auth = GoogleAuth::new(
        serde_json::from_value::<Credentials>(json!({
            "type": "service_account", "key": key_file(), "subject": "admin@example.com"
        }))
        .expect("parse")
        .into(),
        http(),
        &[DRIVE_READONLY],
    );
    assert!(auth.is_delegated());
    assert_eq!(auth.default_subject(), Some("admin@example.com"));
    let ann = auth.for_user(Some("ann@example.com")).expect("ann");
    let again = auth.for_user(Some("ann@example.com")).expect("ann again");
    let bob = auth.for_user(Some("bob@example.com")).expect("bob");
    let (SourceAuth::Connection(ann), SourceAuth::Connection(again), SourceAuth::Connection(bob)) =
        (ann, again, bob)
    else {
        panic!("minted token sources");
    };
    assert!(Arc::ptr_eq(&ann, &again), "one cached source per user");
    assert!(!Arc::ptr_eq(&ann, &bob));
}

#[test]
fn a_connection_acts_only_as_its_own_account() {
    let auth = GoogleAuth::new(SourceAuth::Bearer(AccessToken::new("t")), http(), &[]);
    assert!(!auth.is_delegated());
    assert!(matches!(auth.for_user(None), Ok(SourceAuth::Bearer(_))));
    let refused = auth.for_user(Some("ann@example.com"));
    assert!(
        matches!(&refused, Err(ConnectorError::Config(m)) if m.contains("service-account")),
        "{refused:?}"
    );
}

#[test]
fn google_error_bodies_give_their_reason_and_message() {
    let quota = json!({"error": {"code": 403, "message": "User Rate Limit Exceeded",
        "errors": [{"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "x"}]}});
    let body = serde_json::to_vec(&quota).expect("json");
    assert_eq!(
        error_reason(&body).as_deref(),
        Some("userRateLimitExceeded")
    );
    assert_eq!(
        error_message(&body),
        "User Rate Limit Exceeded (userRateLimitExceeded)"
    );
    let newer = serde_json::to_vec(
        &json!({"error": {"code": 404, "message": "gone", "status": "NOT_FOUND"}}),
    )
    .expect("json");
    assert_eq!(error_reason(&newer).as_deref(), Some("NOT_FOUND"));
    assert_eq!(error_message(b"<html>oops</html>"), "<html>oops</html>");
    assert_eq!(error_reason(b"not json"), None);
}
