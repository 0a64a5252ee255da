use serde_json::json;

use super::*;

#[test]
fn tenant_ids_are_guids_or_domains_only() {
    for good in [
        "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "contoso.onmicrosoft.com",
    ] {
        assert!(TenantId::try_from(good.to_owned()).is_ok(), "{good}");
    }
    for bad in ["", "../evil", "a/b", "x?y", "-lead", "tenant id", "a#b"] {
        assert!(TenantId::try_from(bad.to_owned()).is_err(), "{bad}");
    }
}

#[test]
fn the_token_url_keeps_a_base_path() {
    let tenant = TenantId::try_from("contoso.com".to_owned()).expect("valid");
    let real = Url::parse(LOGIN_DEFAULT_BASE).expect("url");
    assert_eq!(
        token_url(&real, &tenant),
        "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token"
    );
    let fake = Url::parse("http://127.0.0.1:4000/login/").expect("url");
    assert_eq!(
        token_url(&fake, &tenant),
        "http://127.0.0.1:4000/login/contoso.com/oauth2/v2.0/token"
    );
}

#[test]
fn graph_errors_read_code_and_message() {
    let body = json!({"error": {"code": "resyncRequired", "message": "Resync required.",
        "innerError": {"request-id": "x"}}})
    .to_string();
    assert_eq!(
        error_code(body.as_bytes()).as_deref(),
        Some("resyncRequired")
    );
    assert_eq!(
        error_message(body.as_bytes()),
        "Resync required. (resyncRequired)"
    );
    assert_eq!(error_message(b"plain"), "plain");
}
