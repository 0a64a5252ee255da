use serde_json::json;

use super::checkpoint::{folder_path, under};
use super::config::{site_ref, SiteRef};
use super::convert::{acl_of, Permission};
use super::*;

fn config(value: Value) -> Result<SharepointConfig, ConnectorError> {
    let config: SharepointConfig =
        serde_json::from_value(value).map_err(|e| ConnectorError::Config(e.to_string()))?;
    config.validate().map(|()| config)
}

#[test]
fn site_urls_must_be_https_sharepoint_online_and_ids_well_formed() {
    assert_eq!(
        site_ref("https://contoso.sharepoint.com/sites/Eng%20Team/").expect("url"),
        SiteRef::Path { host: "contoso.sharepoint.com".into(), path: "/sites/Eng Team".into() }
    );
    assert_eq!(
        site_ref("https://Contoso.sharepoint.com").expect("root"),
        SiteRef::Path { host: "contoso.sharepoint.com".into(), path: "/".into() }
    );
    let id = "contoso.sharepoint.com,2c712604-1370-44e7-a1f5-426573fda80a,2d2244c3-251a-49ea-93a8-39e1c3a060fe";
    assert_eq!(site_ref(id).expect("id"), SiteRef::Id(id.into()));
    for bad in [
        "http://contoso.sharepoint.com/sites/Eng",
        "https://contoso.example.com/sites/Eng",
        "https://evil.com/.sharepoint.com/sites/x",
        "https://user:pw@contoso.sharepoint.com/sites/x",
        "https://contoso.sharepoint.com:444/sites/x",
        "https://contoso.sharepoint.com/sites/a%00b",
        "Eng",
        "contoso.sharepoint.com,not-a-guid,x",
    ] {
        assert!(matches!(site_ref(bad), Err(ConnectorError::Config(_))), "{bad}");
    }
}

#[test]
fn configs_are_checked_without_the_network() {
    assert!(config(json!({})).is_ok(), "a delegated user's OneDrive");
    assert!(config(json!({"sites": ["https://contoso.sharepoint.com/sites/Eng"], "drives": ["Documents"],
        "folder_paths": ["Specs/"], "user_drives": ["ada@contoso.com"], "include_extensions": ["pdf"]})).is_ok());
    for bad in [
        json!({"drives": ["Documents"]}),
        json!({"folder_paths": ["/a/../b"]}),
        json!({"user_drives": ["a/b"]}),
        json!({"include_extensions": ["p df"]}),
        json!({"batch_size": 0}),
        json!({"max_file_bytes": 0}),
        json!({"tenant_id": "../x"}),
        json!({"sites": ["ftp://contoso.sharepoint.com/x"]}),
        json!({"unknown": true}),
    ] {
        assert!(matches!(config(bad.clone()), Err(ConnectorError::Config(_))), "{bad}");
    }
}

#[test]
fn paths_come_from_the_folder_tree() {
    let folders = [("a".to_owned(), ("root".to_owned(), "Specs".to_owned())),
        ("b".to_owned(), ("a".to_owned(), "v2".to_owned()))]
        .into_iter()
        .collect();
    assert_eq!(folder_path(Some("root"), &folders, "b").as_deref(), Some("/Specs/v2"));
    assert_eq!(folder_path(Some("root"), &folders, "root").as_deref(), Some(""));
    assert_eq!(folder_path(Some("root"), &folders, "zzz"), None);
    assert!(under("/Specs/v2", &["/specs".into()]));
    assert!(!under("/Specsheet", &["/specs".into()]));
    assert!(under("/anything", &[]));
}

#[test]
fn permissions_map_to_acl_principals() {
    let permissions: Vec<Permission> = serde_json::from_value(json!([
        {"id": "1", "roles": ["write"], "grantedToV2": {"user": {"displayName": "Ada", "email": "Ada@Contoso.com"}}},
        {"id": "2", "roles": ["read"], "grantedToV2": {"siteGroup": {"displayName": "Eng Members", "loginName": "Eng Members", "id": "5"}}},
        {"id": "3", "roles": ["read"], "link": {"scope": "anonymous", "type": "view"}},
        {"id": "4", "roles": ["read"], "link": {"scope": "organization", "type": "view"}},
        {"id": "5", "roles": ["read"], "grantedToIdentitiesV2": [{"group": {"displayName": "Sales", "email": "sales@contoso.com"}}]},
    ]))
    .expect("permissions");
    assert_eq!(
        acl_of(&permissions, "contoso.onmicrosoft.com"),
        vec!["anyone", "domain:contoso.onmicrosoft.com", "group:eng members", "group:sales@contoso.com", "user:ada@contoso.com"]
    );
}

#[test]
fn a_checkpoint_naming_an_unknown_drive_is_refused() {
    let bad = json!({"v": 1, "tasks": [{"kind": "delta", "drive": "nope"}]});
    assert!(matches!(checkpoint::Checkpoint::parse(&bad), Err(ConnectorError::Checkpoint(_))));
    assert!(matches!(checkpoint::Checkpoint::parse(&json!({"v": 9})), Err(ConnectorError::Checkpoint(_))));
}

#[test]
fn the_default_config_is_what_an_empty_object_gives() {
    assert_eq!(SharepointConfig::default(), config(json!({})).expect("valid"));
}
