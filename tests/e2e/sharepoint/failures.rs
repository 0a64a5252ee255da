//! Credentials (client secret, certificate, delegated bearer), throttling, a locked or
//! refused site as a per-site failure, downloads without the bearer token, the page list
//! refusing `$expand`, permissions as ACL.

use serde_json::json;
use tributary::connectors::kit::{AccessToken, SourceAuth};
use tributary::connectors::microsoft::GraphAuth;
use tributary::connectors::ConnectorError;
use tributary_e2e::microsoft::{client_certificate_credentials, APP_PRINCIPAL, CONNECTED_USER};

use super::*;

#[tokio::test]
async fn client_secret_and_certificate_credentials_both_sync_as_the_app() {
    for (credentials, kind) in [
        (client_secret_credentials(), "secret"),
        (client_certificate_credentials(), "certificate"),
    ] {
        let (fake, c) = world().await;
        let sp = connector_with(&fake, json!({}), credentials);
        sp.test_connection().await.expect("connection");
        let batches = pull_pass(&sp, None).await;
        assert_eq!(source_ids(&batches), c.everything(), "{kind}");
        let grants = fake.login().grants();
        assert_eq!(grants.len(), 1, "one cached app token: {grants:?}");
        assert_eq!(grants[0].client_auth, kind);
        assert_eq!(grants[0].scope, "https://graph.microsoft.com/.default");
        assert!(fake
            .requests()
            .iter()
            .all(|r| r.principal.as_deref() == Some(APP_PRINCIPAL)));
    }
}

#[tokio::test]
async fn app_only_access_needs_sites_or_users_and_me_is_delegated_only() {
    let (fake, _c) = world().await;
    let refused = SharepointConnector::new(
        "sp-test",
        serde_json::from_value(json!({"tenant_id": TENANT_ID})).expect("config"),
        client_secret_credentials(),
        http(),
        retry(),
        fake.graph_base(),
        fake.login_base(),
    );
    assert!(matches!(refused, Err(ConnectorError::Config(m)) if m.contains("user_drives")));
    let no_tenant = SharepointConnector::new(
        "sp-test",
        serde_json::from_value(json!({"sites": [ENG_URL]})).expect("config"),
        client_secret_credentials(),
        http(),
        retry(),
        fake.graph_base(),
        fake.login_base(),
    );
    assert!(matches!(no_tenant, Err(ConnectorError::Config(m)) if m.contains("tenant_id")));

    // A delegated token with nothing configured: the signed-in user's OneDrive (/me/drive).
    let mine = fake.drives().add_user_drive(CONNECTED_USER);
    let file = fake
        .drives()
        .add_file(&mine, None, NewFile::new("mine.txt", b"mine\n"));
    fake.book().allow("delegated-token", CONNECTED_USER);
    let auth = GraphAuth::new(
        SourceAuth::Bearer(AccessToken::new("delegated-token")),
        None,
        &fake.login_base(),
        http(),
    )
    .expect("auth");
    let sp = SharepointConnector::with_auth(
        "sp-me",
        SharepointConfig::default(),
        auth,
        http(),
        retry(),
        fake.graph_base(),
    )
    .expect("a connector");
    sp.test_connection().await.expect("connection");
    let batches = pull_pass(&sp, None).await;
    assert_eq!(
        source_ids(&batches),
        [sid(&mine, &file)].into_iter().collect()
    );
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.path == "/me/drive" && r.principal.as_deref() == Some(CONNECTED_USER)));
    // The downloads never saw that token.
    assert!(fake
        .drives()
        .downloads
        .iter()
        .all(|d| d.authorization.is_none()));
}

#[tokio::test]
async fn throttling_429_and_503_with_retry_after_are_waited_out() {
    let (fake, c) = world().await;
    let sp = connector(&fake, json!({}));
    fake.throttle_next(2, 429, 0);
    let first = sp.pull(None).await.expect("after two 429s");
    fake.throttle_next(1, 503, 1);
    let started = std::time::Instant::now();
    let rest = pull_pass(&sp, Some(stored(&first.checkpoint))).await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was honoured"
    );
    let mut all = source_ids(&rest);
    all.extend(first.documents.iter().map(|d| d.source_id.clone()));
    assert_eq!(all, c.everything());
}

#[tokio::test]
async fn a_locked_site_is_a_per_site_failure_while_the_others_sync() {
    let (fake, c) = world().await;
    let sp = connector(&fake, json!({}));
    let first = pull_pass(&sp, None).await;
    fake.drives().lock_site(&c.hr, true);
    fake.drives().edit(&c.plan, b"# Plan\n\nv3\n");
    fake.drives().edit(&c.policy, b"changed while locked\n");
    let second = pull_pass(&sp, Some(last_checkpoint(&first))).await;
    let failed = failures(&second);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, format!("site:{HR_URL}"));
    assert!(
        failed[0].1.contains("423") && failed[0].1.contains("locked"),
        "{}",
        failed[0].1
    );
    assert_eq!(
        source_ids(&second),
        [sid(&c.eng_docs, &c.plan)].into_iter().collect()
    );
    assert!(deleted(&second).is_empty());
    // The listing cannot be complete: it fails, so the engine skips the prune.
    let listing = list_all(&sp).await;
    assert!(
        matches!(&listing, Err(ConnectorError::Unavailable(m)) if m.contains("site:https://contoso.sharepoint.com/sites/HR")),
        "{listing:?}"
    );

    // Unlocked: its drive resumes from its kept deltaLink and catches up.
    fake.drives().lock_site(&c.hr, false);
    let third = pull_pass(&sp, Some(last_checkpoint(&second))).await;
    assert_eq!(
        source_ids(&third),
        [sid(&c.hr_docs, &c.policy)].into_iter().collect()
    );
    assert!(failures(&third).is_empty());

    // A refused site's test names the permissions to grant.
    fake.drives().deny_site(&c.hr, true);
    match sp.test_connection().await {
        Err(ConnectorError::Unauthorized(message)) => {
            assert!(
                message.contains("Sites.Read.All") && message.contains("Sites.Selected"),
                "{message}"
            )
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[tokio::test]
async fn pages_fall_back_to_one_by_one_when_the_list_refuses_expand_and_skip_unchanged() {
    let (fake, c) = world().await;
    fake.drives().refuse_page_list_expand(&c.eng);
    let extra_page = fake.drives().add_page(
        &c.eng,
        "Third.aspx",
        "Third",
        json!({"horizontalSections": []}),
    );
    let sp = connector(&fake, json!({ "user_drives": [] }));
    let first = pull_pass(&sp, None).await;
    let mut pages = c.pages();
    pages.insert(format!("page:{}:{extra_page}", c.eng));
    assert!(pages.is_subset(&source_ids(&first)));
    let home = by_id(&first, &format!("page:{}:{}", c.eng, c.home));
    assert!(
        home.markdown.contains("## Welcome") && home.markdown.contains("Onboarding guide"),
        "{}",
        home.markdown
    );
    let singles = fake
        .requests()
        .iter()
        .filter(|r| {
            r.path.contains("/pages/")
                && r.path.ends_with("/microsoft.graph.sitePage")
                && !r.path.ends_with("/pages/microsoft.graph.sitePage")
        })
        .count();
    assert_eq!(singles, 3, "each page on its own");

    // Pages have no delta: unchanged ones are skipped, edited ones delivered, removed ones pruned.
    fake.drives().edit_page(&c.eng, &c.news, json!({"horizontalSections": [{"id": "1", "columns": [{"id": "1", "webparts": [
        {"@odata.type": "#microsoft.graph.textWebPart", "id": "n1", "innerHtml": "<p>We shipped v2.</p>"}]}]}]}));
    fake.drives().delete_page(&c.eng, &extra_page);
    let second = pull_pass(&sp, Some(last_checkpoint(&first))).await;
    let news = format!("page:{}:{}", c.eng, c.news);
    assert_eq!(source_ids(&second), [news.clone()].into_iter().collect());
    assert!(by_id(&second, &news).markdown.contains("We shipped v2."));
    assert!(!list_all(&sp)
        .await
        .expect("listing")
        .contains(&format!("page:{}:{extra_page}", c.eng)));
}

#[tokio::test]
async fn permissions_become_the_acl_when_asked_for() {
    let (fake, c) = world().await;
    fake.drives().set_permissions(&c.plan, vec![
        json!({"id": "1", "roles": ["owner"], "grantedToV2": {"siteGroup": {"displayName": "Eng Owners", "loginName": "Eng Owners", "id": "3"}}}),
        json!({"id": "2", "roles": ["read"], "grantedToV2": {"user": {"displayName": "Ada", "email": ADA}}}),
        json!({"id": "3", "roles": ["read"], "link": {"scope": "organization", "type": "view", "webUrl": "https://contoso.sharepoint.com/:t:/s/Eng/x"}}),
    ]);
    let sp = connector(
        &fake,
        json!({ "include_permissions": true, "include_site_pages": false }),
    );
    let first = pull_pass(&sp, None).await;
    assert_eq!(
        by_id(&first, &sid(&c.eng_docs, &c.plan)).acl,
        vec![
            format!("domain:{TENANT_ID}"),
            "group:eng owners".to_owned(),
            format!("user:{ADA}")
        ]
    );
    // A sharing change alone re-delivers the file with its new ACL.
    fake.drives().set_permissions(
        &c.plan,
        vec![json!({"id": "4", "roles": ["read"], "link": {"scope": "anonymous", "type": "view"}})],
    );
    let second = pull_pass(&sp, Some(last_checkpoint(&first))).await;
    assert_eq!(
        by_id(&second, &sid(&c.eng_docs, &c.plan)).acl,
        vec!["anyone".to_owned()]
    );
}
