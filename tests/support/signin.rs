//! Driving the sign-in routes of a `TestApp` the way a browser would: the state cookie
//! from `/login`, the callback with the provider's query, the login cookie redeemed at
//! `POST /auth/session`.

use reqwest::{Response, StatusCode, Url};
use serde_json::Value;
use tributary::auth::oauth::config::{ProviderConfig, ProviderKind, Secret};

use crate::app::TestApp;

pub const STATE_COOKIE: &str = "tributary_oauth_state";
pub const LOGIN_COOKIE: &str = "tributary_login";

/// An OIDC provider config as an operator would write it (RS256 + ES256 allowed).
pub fn oidc_config(
    name: &str,
    issuer: &str,
    client_id: &str,
    client_secret: &str,
) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        kind: ProviderKind::Oidc {
            issuer: issuer.into(),
        },
        client_id: client_id.into(),
        client_secret: Secret::new(client_secret),
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        redirect_uri: redirect_uri(name).parse().unwrap(),
        algorithms: vec![
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::Algorithm::ES256,
        ],
    }
}

/// The redirect URI registered for `provider`. Never contacted: tests take the provider's
/// redirect and call the app's callback themselves.
pub fn redirect_uri(provider: &str) -> String {
    format!("http://127.0.0.1:9/auth/oauth/{provider}/callback")
}

/// The value of cookie `name` set by the response, if any.
pub fn set_cookie_value(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

pub struct Started {
    pub authorization_url: Url,
    /// The `state` query parameter the app sent to the provider.
    pub state: String,
    /// The state cookie the app set in the browser.
    pub state_cookie: String,
}

impl Started {
    pub fn param(&self, name: &str) -> Option<String> {
        self.authorization_url
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

impl TestApp {
    pub async fn start_sign_in(&self, provider: &str, redirect_to: Option<&str>) -> Started {
        let mut url = Url::parse(&self.url(&format!("/auth/oauth/{provider}/login"))).unwrap();
        if let Some(path) = redirect_to {
            url.query_pairs_mut().append_pair("redirect_to", path);
        }
        let response = self.client.get(url).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "login should redirect"
        );
        let state_cookie = set_cookie_value(&response, STATE_COOKIE).expect("state cookie");
        let location = response.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap();
        let authorization_url = Url::parse(location).unwrap();
        let state = authorization_url
            .query_pairs()
            .find(|(key, _)| key == "state")
            .map(|(_, value)| value.into_owned())
            .expect("state in the authorization URL");
        Started {
            authorization_url,
            state,
            state_cookie,
        }
    }

    /// Calls the app's callback with the query the provider redirected with.
    pub async fn callback(
        &self,
        provider: &str,
        query: &str,
        state_cookie: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .get(self.url(&format!("/auth/oauth/{provider}/callback?{query}")));
        if let Some(value) = state_cookie {
            request = request.header(reqwest::header::COOKIE, format!("{STATE_COOKIE}={value}"));
        }
        request.send().await.unwrap()
    }

    /// Follows a successful callback: asserts the redirect and redeems the login cookie.
    /// Returns the session response body `{access_token, token_type, expires_in, user}`.
    pub async fn redeem(&self, callback: Response) -> Value {
        assert_eq!(
            callback.status(),
            StatusCode::SEE_OTHER,
            "callback should redirect"
        );
        assert_eq!(callback.headers()["referrer-policy"], "no-referrer");
        assert_eq!(callback.headers()["cache-control"], "no-store");
        let location = callback.headers()[reqwest::header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            !location.contains("token") && !location.contains("code="),
            "no token in {location}"
        );
        let code = set_cookie_value(&callback, LOGIN_COOKIE).expect("login cookie");
        let response = self
            .client
            .post(self.url("/auth/session"))
            .header(reqwest::header::COOKIE, format!("{LOGIN_COOKIE}={code}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

/// Services over `table` whose mail goes to a fresh dev outbox; returns the outbox dir.
pub fn services_with_outbox(
    table: std::sync::Arc<dyn tributary::store::Table>,
) -> (tributary::Services, std::path::PathBuf) {
    let outbox = crate::app::temp_dir("tributary-outbox");
    let mail = tributary::mail::Mail::new(
        std::sync::Arc::new(tributary::mail::OutboxMailer::new(&outbox)),
        "http://127.0.0.1:3000",
    )
    .expect("valid public URL");
    (crate::app::services_over(table).with_mail(mail), outbox)
}

/// The verification links mailed to `to`, oldest first.
pub fn verification_links(outbox: &std::path::Path, to: &str) -> Vec<Url> {
    tributary::mail::OutboxMailer::messages(outbox)
        .into_iter()
        .filter(|(_, text)| text.contains(&format!("To: {to}\r\n")))
        .filter_map(|(_, text)| {
            text.split_whitespace()
                .find(|word| word.contains("/auth/verify-email?token="))
                .and_then(|link| Url::parse(link).ok())
        })
        .collect()
}

/// The `token` query parameter of a verification link.
pub fn link_token(link: &Url) -> String {
    link.query_pairs()
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.into_owned())
        .expect("token in the verification link")
}

impl TestApp {
    /// Opens a mailed verification link as a browser would (against this app, whatever
    /// host the link names): the confirm page, then its form. Returns the final page.
    pub async fn open_verification_link(&self, link: &Url) -> (StatusCode, String) {
        let path = format!("{}?{}", link.path(), link.query().unwrap_or_default());
        let page = self.client.get(self.url(&path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "the confirm page");
        let html = page.text().await.unwrap();
        let token = link_token(link);
        assert!(html.contains(&token) && html.contains("<form"), "{html}");
        let response = self
            .client
            .post(self.url("/auth/verify-email"))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.text().await.unwrap())
    }
}
