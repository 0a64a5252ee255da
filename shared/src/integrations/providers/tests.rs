use super::*;
use std::collections::HashMap;

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn with_clients(names: &[&str]) -> Vec<(String, String)> {
    let mut vars = vec![(INTEGRATIONS.to_owned(), names.join(","))];
    for name in names {
        let upper = name.to_ascii_uppercase().replace('-', "_");
        vars.push((format!("{PREFIX}{upper}_CLIENT_ID"), format!("id-{name}")));
        vars.push((
            format!("{PREFIX}{upper}_CLIENT_SECRET"),
            "shh-secret".into(),
        ));
    }
    vars
}

fn parse(vars: &[(String, String)]) -> Result<Integrations, IntegrationConfigError> {
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    integrations_from(lookup(&refs))
}

#[test]
fn unset_means_no_integrations() {
    assert!(integrations_from(lookup(&[])).unwrap().is_empty());
}

#[test]
fn presets_carry_their_endpoints_and_quirks() {
    let all = parse(&with_clients(&[
        "google",
        "microsoft",
        "slack",
        "notion",
        "dropbox",
        "discord",
    ]))
    .unwrap();
    assert_eq!(
        all.names(),
        [
            "google",
            "microsoft",
            "slack",
            "notion",
            "dropbox",
            "discord"
        ]
    );
    let redirect = Url::parse("https://app.example/integrations/x/callback").unwrap();
    let query = |name: &str| -> HashMap<String, String> {
        all.get(name)
            .unwrap()
            .authorize_url(&redirect, "st", "chal")
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    };

    let google = all.get("google").unwrap();
    assert_eq!(
        google.token_url.as_str(),
        "https://oauth2.googleapis.com/token"
    );
    assert_eq!(
        google.revoke_url.as_ref().unwrap().as_str(),
        "https://oauth2.googleapis.com/revoke"
    );
    let q = query("google");
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], redirect.as_str());
    assert_eq!(q["client_id"], "id-google");
    assert!(!format!("{google:?}").contains("shh-secret"));

    let microsoft = all.get("microsoft").unwrap();
    assert_eq!(
        microsoft.token_url.as_str(),
        "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    );
    assert!(microsoft.revoke_url.is_none());
    assert!(microsoft.scopes.contains(&"offline_access".to_owned()));

    let slack = all.get("slack").unwrap();
    assert_eq!(slack.spec.shape, TokenShape::Slack);
    assert_eq!(
        query("slack")["scope"],
        "channels:history,channels:read,users:read"
    );
    assert_eq!(
        slack.token_url.as_str(),
        "https://slack.com/api/oauth.v2.access"
    );

    let notion = all.get("notion").unwrap();
    assert_eq!(notion.spec.client_auth, ClientAuth::Basic);
    assert_eq!(notion.spec.token_encoding, TokenEncoding::Json);
    assert_eq!(query("notion")["owner"], "user");
    assert!(!query("notion").contains_key("code_challenge"));

    assert_eq!(query("dropbox")["token_access_type"], "offline");
    assert_eq!(
        all.get("dropbox").unwrap().spec.revoke_style,
        RevokeStyle::Bearer
    );
    assert_eq!(
        all.get("discord").unwrap().token_url.as_str(),
        "https://discord.com/api/oauth2/token"
    );
}

#[test]
fn custom_names_overrides_and_tenant() {
    let mut vars = with_clients(&["acme", "corp-ms"]);
    vars.extend(
        [
            ("TRIBUTARY_INTEGRATION_ACME_PRESET", "oauth2"),
            (
                "TRIBUTARY_INTEGRATION_ACME_AUTHORIZE_URL",
                "http://127.0.0.1:9000/authorize",
            ),
            (
                "TRIBUTARY_INTEGRATION_ACME_TOKEN_URL",
                "http://localhost:9000/token",
            ),
            ("TRIBUTARY_INTEGRATION_ACME_SCOPES", "read write,offline"),
            ("TRIBUTARY_INTEGRATION_ACME_CLIENT_AUTH", "post"),
            (
                "TRIBUTARY_INTEGRATION_ACME_AUTHORIZE_PARAMS",
                "audience=api&x=1",
            ),
            ("TRIBUTARY_INTEGRATION_CORP_MS_PRESET", "microsoft"),
            (
                "TRIBUTARY_INTEGRATION_CORP_MS_TENANT",
                "contoso.onmicrosoft.com",
            ),
            ("TRIBUTARY_INTEGRATION_CORP_MS_SCOPES", "Files.Read"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let all = parse(&vars).unwrap();
    let acme = all.get("acme").unwrap();
    assert_eq!(acme.spec.preset, Preset::OAuth2);
    assert_eq!(acme.token_url.as_str(), "http://localhost:9000/token");
    assert!(acme.revoke_url.is_none());
    assert_eq!(acme.scopes, ["read", "write", "offline"]);
    assert_eq!(acme.spec.client_auth, ClientAuth::Post);
    assert_eq!(
        acme.spec.authorize_params,
        [("audience".into(), "api".into()), ("x".into(), "1".into())]
    );
    let mut google = with_clients(&["google"]);
    google.push((
        "TRIBUTARY_INTEGRATION_GOOGLE_AUTHORIZE_PARAMS".into(),
        "hd=example.com&prompt=select_account".into(),
    ));
    let google = parse(&google).unwrap();
    assert_eq!(
        google.get("google").unwrap().spec.authorize_params,
        [
            ("access_type".into(), "offline".into()),
            ("hd".into(), "example.com".into()),
            ("prompt".into(), "select_account".into()),
        ]
    );
    let ms = all.get("corp-ms").unwrap();
    assert_eq!(
        ms.authorize_url.as_str(),
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
    );
    assert_eq!(ms.scopes, ["Files.Read", "offline_access"]);
}

fn error_of(extra: &[(&str, &str)], names: &[&str]) -> String {
    let mut vars = with_clients(names);
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        if !v.is_empty() {
            vars.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    parse(&vars).unwrap_err().to_string()
}

#[test]
fn bad_configuration_is_refused_with_the_variable_named() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case<'_>; 9] = [
        (
            &[("TRIBUTARY_INTEGRATION_GOOGLE_CLIENT_SECRET", "")],
            &["google"],
            "TRIBUTARY_INTEGRATION_GOOGLE_CLIENT_SECRET is not set",
        ),
        (
            &[("TRIBUTARY_INTEGRATION_GOOGLE_CLIENT_ID", "")],
            &["google"],
            "TRIBUTARY_INTEGRATION_GOOGLE_CLIENT_ID",
        ),
        (&[], &["acme"], "TRIBUTARY_INTEGRATION_ACME_PRESET"),
        (
            &[("TRIBUTARY_INTEGRATION_ACME_PRESET", "oauth2")],
            &["acme"],
            "TRIBUTARY_INTEGRATION_ACME_AUTHORIZE_URL is not set",
        ),
        (
            &[(
                "TRIBUTARY_INTEGRATION_GOOGLE_TOKEN_URL",
                "http://idp.example.com/token",
            )],
            &["google"],
            "loopback",
        ),
        (
            &[("TRIBUTARY_INTEGRATION_MICROSOFT_TENANT", "a/b")],
            &["microsoft"],
            "TRIBUTARY_INTEGRATION_MICROSOFT_TENANT",
        ),
        (
            &[("TRIBUTARY_INTEGRATION_GOOGLE_TENANT", "x")],
            &["google"],
            "only the microsoft preset",
        ),
        (
            &[("TRIBUTARY_INTEGRATION_SLACK_AUTHORIZE_PARAMS", "state=x")],
            &["slack"],
            "set by Tributary",
        ),
        (
            &[("TRIBUTARY_INTEGRATION_SLACK_PRESET", "nope")],
            &["slack"],
            "expected one of google",
        ),
    ];
    for (extra, names, expected) in cases {
        let error = error_of(extra, names);
        assert!(error.contains(expected), "{expected}: {error}");
    }
    assert!(matches!(
        parse(&with_clients(&["Google"])),
        Err(IntegrationConfigError::BadName(_))
    ));
    assert!(matches!(
        parse(&with_clients(&["google", "google"])),
        Err(IntegrationConfigError::Duplicate(_))
    ));
}
