//! `tributary-local`: the dev signing key and the embedded store outlive a restart.

use reqwest::StatusCode;
use tributary_e2e::app::{spawn_app_with, temp_dir};
use tributary_local::{local_services, signing_key, KeySource, DEV_KEY_FILE};

#[tokio::test]
async fn users_tokens_and_sessions_survive_a_restart() {
    let data_dir = temp_dir("tributary-local");

    let (services, source) = local_services(&data_dir).unwrap();
    assert_eq!(source, KeySource::Generated(data_dir.join(DEV_KEY_FILE)));
    let app = spawn_app_with(services).await;
    let session = app.signed_in("restart@example.com").await;
    let created = app.api_token(&session, &["profile:read"]).await;
    let api_token = created["token"].as_str().unwrap().to_owned();
    drop(app);

    let (services, source) = local_services(&data_dir).unwrap();
    assert_eq!(source, KeySource::Existing(data_dir.join(DEV_KEY_FILE)));
    let app = spawn_app_with(services).await;
    // The same key signs and checks, so the old session is still good.
    assert_eq!(
        app.get("/me", Some(&session)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/me", Some(&api_token)).await.status(),
        StatusCode::OK
    );
    app.login("restart@example.com").await;
    let listed: serde_json::Value = app
        .get("/api-tokens", Some(&session))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["id"], created["id"]);
}

#[test]
fn the_dev_key_is_random_private_and_long_enough() {
    let first_dir = temp_dir("tributary-key");
    let second_dir = temp_dir("tributary-key");
    let (first, _) = signing_key(&first_dir).unwrap();
    let (second, _) = signing_key(&second_dir).unwrap();
    assert_ne!(first, second);
    assert!(first.len() >= 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(first_dir.join(DEV_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the key file must be private: {mode:o}");
    }
}
