//! Sign-in with GitHub against a fake GitHub that answers as GitHub documents (see
//! `tributary_e2e::fake_github`), and with a plain OAuth 2.0 provider whose userinfo is
//! nested JSON. Every failure is checked for its HTTP status and `code`, and for leaving
//! nothing behind: no identity, no claimed email, no login code — no store write at all.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Response, StatusCode, Url};
use serde_json::{json, Value};
use tributary::auth::oauth::config::{ProviderConfig, ProviderKind, Secret, UserinfoFields};
use tributary::auth::oauth::parse_token_response;
use tributary::store::users::identity_key;
use tributary::store::{Item, Key, Page, Query, StoreError, Table, WriteOp};
use tributary_e2e::app::{embedded_table, spawn_app_with_providers, status_and_body, TestApp};
use tributary_e2e::fake_github::{Account, Email, FakeGitHub, FakeOAuth2};
use tributary_e2e::signin::{
    redirect_uri, services_with_outbox, set_cookie_value, verification_links, LOGIN_COOKIE,
};

const GITHUB: &str = "github";
const OCTOCAT_ID: u64 = 583231;

/// A table that remembers the key of every item written (deletes are not writes), so a
/// test can tell that a refused sign-in stored nothing.
struct WatchedTable {
    inner: Arc<dyn Table>,
    written: Arc<Mutex<Vec<Key>>>,
}

type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

impl WatchedTable {
    fn note(&self, key: &Key) {
        self.written.lock().unwrap().push(key.clone());
    }
}

// `Table` is an `async_trait`; this is its expansion, written out by hand.
impl Table for WatchedTable {
    fn get<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 Key,
    ) -> StoreFuture<'async_trait, Option<Item>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { self.inner.get(key).await })
    }

    fn put<'life0, 'async_trait>(&'life0 self, item: Item) -> StoreFuture<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.note(&item.key);
            self.inner.put(item).await
        })
    }

    fn put_if_absent<'life0, 'async_trait>(
        &'life0 self,
        item: Item,
    ) -> StoreFuture<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.note(&item.key);
            self.inner.put_if_absent(item).await
        })
    }

    fn update_if_version<'life0, 'async_trait>(
        &'life0 self,
        item: Item,
        expected: u64,
    ) -> StoreFuture<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.note(&item.key);
            self.inner.update_if_version(item, expected).await
        })
    }

    fn delete<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 Key,
    ) -> StoreFuture<'async_trait, ()>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { self.inner.delete(key).await })
    }

    fn query<'life0, 'async_trait>(&'life0 self, query: Query) -> StoreFuture<'async_trait, Page>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { self.inner.query(query).await })
    }

    fn transact<'life0, 'async_trait>(
        &'life0 self,
        ops: Vec<WriteOp>,
    ) -> StoreFuture<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            for op in &ops {
                match op {
                    WriteOp::Put(item)
                    | WriteOp::PutIfAbsent(item)
                    | WriteOp::UpdateIfVersion { item, .. } => self.note(&item.key),
                    WriteOp::Delete(_) | WriteOp::DeleteIfVersion { .. } => {}
                }
            }
            self.inner.transact(ops).await
        })
    }
}

/// Store writes seen so far.
#[derive(Clone)]
struct Writes(Arc<Mutex<Vec<Key>>>);

impl Writes {
    fn mark(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Writes since `mark`, less the sign-in's own one-time bookkeeping (the marker that
    /// a state was used, so a replay can say so).
    fn since(&self, mark: usize) -> Vec<Key> {
        self.0.lock().unwrap()[mark..]
            .iter()
            .filter(|key| !key.pk.starts_with("OSTATE"))
            .cloned()
            .collect()
    }
}

/// The app over a watched embedded store, with these providers; mail goes to the
/// returned outbox.
async fn spawn(providers: Vec<ProviderConfig>) -> (TestApp, Writes, PathBuf) {
    let written = Arc::new(Mutex::new(Vec::new()));
    let table = WatchedTable {
        inner: embedded_table(),
        written: written.clone(),
    };
    let (services, outbox) = services_with_outbox(Arc::new(table));
    let app = spawn_app_with_providers(services, providers, Duration::from_secs(60)).await;
    (app, Writes(written), outbox)
}

/// GitHub as an operator would configure it, pointed at the fake for both hosts.
fn github_config(name: &str, fake: &FakeGitHub) -> ProviderConfig {
    let base: Url = fake.base_url.parse().unwrap();
    ProviderConfig {
        name: name.into(),
        kind: ProviderKind::GitHub {
            web_url: base.clone(),
            api_url: base,
        },
        client_id: fake.client_id.clone(),
        client_secret: Secret::new(fake.client_secret.clone()),
        scopes: vec!["read:user".into(), "user:email".into()],
        redirect_uri: redirect_uri(name).parse().unwrap(),
        algorithms: vec![],
    }
}

/// A fake GitHub and the app that signs in with it, as provider `github`.
struct GitHubSetup {
    fake: FakeGitHub,
    app: TestApp,
    writes: Writes,
    outbox: PathBuf,
}

/// One sign-in up to the app's callback answer.
struct Attempt {
    callback: Response,
    authorization_url: Url,
    /// The store mark taken just before the callback.
    mark: usize,
}

impl GitHubSetup {
    async fn new(account: Account, emails: Vec<Email>) -> Self {
        let fake = FakeGitHub::start(&redirect_uri(GITHUB), account, emails).await;
        let (app, writes, outbox) = spawn(vec![github_config(GITHUB, &fake)]).await;
        Self {
            fake,
            app,
            writes,
            outbox,
        }
    }

    /// Login at the app, approval at GitHub, callback at the app.
    async fn attempt(&self) -> Attempt {
        let started = self.app.start_sign_in(GITHUB, Some("/welcome")).await;
        let query = self.fake.authorize(&started.authorization_url).await;
        let mark = self.writes.mark();
        let callback = self
            .app
            .callback(GITHUB, &query, Some(&started.state_cookie))
            .await;
        Attempt {
            callback,
            authorization_url: started.authorization_url,
            mark,
        }
    }

    /// A sign-in that must succeed: returns the session body.
    async fn sign_in(&self) -> Value {
        let attempt = self.attempt().await;
        assert_eq!(
            attempt.callback.headers()["location"],
            "/welcome",
            "callback: {}",
            attempt.callback.status()
        );
        self.app.redeem(attempt.callback).await
    }

    /// Asserts the attempt was refused with `status` and `code` and stored nothing;
    /// returns the message.
    async fn assert_refused(&self, attempt: Attempt, status: StatusCode, code: &str) -> String {
        let callback = attempt.callback;
        assert!(
            set_cookie_value(&callback, LOGIN_COOKIE).is_none(),
            "no login code on a refused sign-in"
        );
        assert_eq!(callback.headers()["cache-control"], "no-store");
        let (actual, body) = status_and_body(callback).await;
        assert_eq!(actual, status, "{body}");
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(
            self.writes.since(attempt.mark),
            Vec::<Key>::new(),
            "a refused sign-in stores nothing"
        );
        assert!(
            self.app
                .services
                .users
                .by_identity(&github_identity(OCTOCAT_ID))
                .await
                .unwrap()
                .is_none(),
            "no identity stored"
        );
        body["message"].as_str().unwrap().to_owned()
    }
}

fn octocat() -> Account {
    Account::new(OCTOCAT_ID, "octocat", Some("The Octocat"))
}

fn github_identity(id: u64) -> Key {
    identity_key(GITHUB, &id.to_string())
}

fn s256(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

async fn me(app: &TestApp, session: &Value) -> Value {
    let token = session["access_token"].as_str().expect("access_token");
    let (status, me) = status_and_body(app.get("/me", Some(token)).await).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me
}

#[tokio::test]
async fn a_verified_primary_email_signs_in_and_the_identity_is_the_numeric_id() {
    let setup = GitHubSetup::new(
        octocat(),
        vec![
            Email::secondary("octocat@users.noreply.github.com", true),
            Email::primary("Mona.Octocat@Example.COM", true),
        ],
    )
    .await;
    let attempt = setup.attempt().await;

    // What we asked GitHub for.
    let url = &attempt.authorization_url;
    assert!(url.as_str().starts_with(&setup.fake.base_url), "{url}");
    assert_eq!(url.path(), "/login/oauth/authorize");
    assert_eq!(param(url, "client_id").unwrap(), setup.fake.client_id);
    assert_eq!(param(url, "redirect_uri").unwrap(), redirect_uri(GITHUB));
    assert_eq!(param(url, "scope").unwrap(), "read:user user:email");
    assert_eq!(param(url, "code_challenge_method").unwrap(), "S256");
    let challenge = param(url, "code_challenge").unwrap();
    assert!(param(url, "nonce").is_none(), "no nonce outside OIDC");

    assert_eq!(attempt.callback.headers()["location"], "/welcome");
    // The watch sees writes: the new user's identity among them (so "nothing stored"
    // elsewhere means something).
    assert!(
        setup
            .writes
            .since(attempt.mark)
            .contains(&github_identity(OCTOCAT_ID)),
        "{:?}",
        setup.writes.since(attempt.mark)
    );
    let session = setup.app.redeem(attempt.callback).await;
    let me = me(&setup.app, &session).await;
    assert_eq!(me["user"]["email"], "mona.octocat@example.com");
    assert_eq!(me["user"]["name"], "The Octocat");
    assert_eq!(me["token_kind"], "session");

    // Accounts are keyed by provider name and GitHub's numeric id.
    let identity = github_identity(OCTOCAT_ID);
    assert_eq!(identity.pk, format!("IDENT#{GITHUB}#{OCTOCAT_ID}"));
    let users = &setup.app.services.users;
    let user = users
        .by_identity(&identity)
        .await
        .unwrap()
        .expect("identity");
    assert_eq!(user.id, session["user"]["id"]);
    let owner = users
        .by_email("mona.octocat@example.com")
        .await
        .unwrap()
        .expect("verified email claimed");
    assert_eq!(owner.id, user.id);

    // The token call: JSON asked for, exact redirect URI, the verifier of our challenge.
    let tokens = setup.fake.token_requests();
    assert_eq!(tokens.len(), 1);
    let token_call = &tokens[0];
    assert_eq!(token_call.method, "POST");
    assert_eq!(token_call.header("accept"), Some("application/json"));
    assert_eq!(
        token_call.form("redirect_uri").as_deref(),
        Some(redirect_uri(GITHUB).as_str())
    );
    assert_eq!(s256(&token_call.form("code_verifier").unwrap()), challenge);

    // Signing in again finds the same account (GitHub renamed the login meanwhile).
    setup
        .fake
        .set_account(Account::new(OCTOCAT_ID, "monalisa", None));
    let again = setup.sign_in().await;
    assert_eq!(again["user"]["id"], session["user"]["id"]);

    // Every call carried our User-Agent and the access token GitHub issued.
    let api = setup.fake.api_requests();
    let paths: Vec<&str> = api.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/user", "/user/emails", "/user", "/user/emails"]);
    for request in setup.fake.requests() {
        if request.path.starts_with("/login/oauth/authorize") {
            continue; // the browser's request, not ours
        }
        let agent = request.header("user-agent").unwrap_or_default();
        assert!(
            agent.starts_with("tributary/"),
            "{} sent `{agent}`",
            request.path
        );
    }
    for request in &api {
        let authorization = request.header("authorization").unwrap_or_default();
        assert!(authorization.starts_with("Bearer gho_"), "{authorization}");
        assert_eq!(
            request.header("accept"),
            Some("application/vnd.github+json")
        );
    }
    assert_eq!(setup.fake.token_requests().len(), 2);
}

#[tokio::test]
async fn bad_verification_code_in_a_200_answer_is_a_400_invalid_grant() {
    let setup = GitHubSetup::new(octocat(), vec![Email::primary("octocat@github.com", true)]).await;
    let started = setup.app.start_sign_in(GITHUB, None).await;
    let query = setup.fake.authorize(&started.authorization_url).await;
    setup.fake.expire_codes(); // the user took more than GitHub's 10 minutes
    let mark = setup.writes.mark();
    let callback = setup
        .app
        .callback(GITHUB, &query, Some(&started.state_cookie))
        .await;
    let attempt = Attempt {
        callback,
        authorization_url: started.authorization_url,
        mark,
    };
    let message = setup
        .assert_refused(attempt, StatusCode::BAD_REQUEST, "invalid_grant")
        .await;
    assert!(
        message.contains("bad_verification_code")
            && message.contains("The code passed is incorrect or expired."),
        "{message}"
    );
    assert!(!message.contains(CLIENT_SECRET_HINT), "{message}");
    assert_eq!(setup.fake.token_requests().len(), 1);
    assert!(
        setup.fake.api_requests().is_empty(),
        "no API call without a token"
    );
    assert!(setup
        .app
        .services
        .users
        .by_email("octocat@github.com")
        .await
        .unwrap()
        .is_none());
}

/// Part of the client secret: it must never surface in an error message.
const CLIENT_SECRET_HINT: &str = "fake-github-secret";

#[tokio::test]
async fn an_unverified_primary_never_links_to_the_account_that_owns_the_address() {
    let setup = GitHubSetup::new(
        octocat(),
        vec![
            Email::primary("mona@example.com", false),
            Email::secondary("mona@work.example", true),
        ],
    )
    .await;
    let registered = setup.app.register("mona@example.com").await;
    let attempt = setup.attempt().await;
    let message = setup
        .assert_refused(attempt, StatusCode::CONFLICT, "email_not_verified")
        .await;
    assert!(message.contains("not verified"), "{message}");
    let owner = setup
        .app
        .services
        .users
        .by_email("mona@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        owner.id, registered["user"]["id"],
        "the address keeps its owner"
    );
    // The password account is untouched and still signs in.
    setup.app.login("mona@example.com").await;
}

#[tokio::test]
async fn an_unverified_primary_is_not_claimed_by_a_new_account() {
    let setup = GitHubSetup::new(
        octocat(),
        vec![
            Email::primary("mona@example.com", false),
            Email::secondary("mona@work.example", true),
        ],
    )
    .await;
    let session = setup.sign_in().await;
    assert_eq!(session["user"]["email"], "");
    let users = &setup.app.services.users;
    assert!(users.by_email("mona@example.com").await.unwrap().is_none());
    assert!(
        users.by_email("mona@work.example").await.unwrap().is_none(),
        "only the primary address is ever used"
    );
    let user = users
        .by_identity(&github_identity(OCTOCAT_ID))
        .await
        .unwrap()
        .expect("identity");
    assert_eq!(user.id, session["user"]["id"]);
    // The address is still free to register.
    setup.app.register("mona@example.com").await;
}

/// Issue 8, point 2: the password account must prove the address before a verified
/// GitHub email may link to it (else whoever registered it first owns the GitHub sign-in).
#[tokio::test]
async fn a_verified_primary_links_to_the_existing_password_account_once_it_verified_the_email() {
    let setup = GitHubSetup::new(octocat(), vec![Email::primary("Hubot@Example.com", true)]).await;
    let registered = setup.app.register("hubot@example.com").await;
    let attempt = setup.attempt().await;
    let message = setup
        .assert_refused(attempt, StatusCode::CONFLICT, "account_email_not_verified")
        .await;
    assert!(message.contains("verify the email"), "{message}");
    let links = verification_links(&setup.outbox, "hubot@example.com");
    let (status, page) = setup.app.open_verification_link(&links[0]).await;
    assert_eq!(status, StatusCode::OK, "{page}");

    let session = setup.sign_in().await;
    assert_eq!(session["user"]["id"], registered["user"]["id"]);
    let linked = setup
        .app
        .services
        .users
        .by_identity(&github_identity(OCTOCAT_ID))
        .await
        .unwrap()
        .expect("identity linked");
    assert_eq!(linked.id, registered["user"]["id"]);
    let again = setup.sign_in().await;
    assert_eq!(again["user"]["id"], registered["user"]["id"]);
    setup.app.login("hubot@example.com").await;
}

#[tokio::test]
async fn token_responses_are_asked_for_as_json_and_read_when_form_encoded() {
    let setup = GitHubSetup::new(octocat(), vec![Email::primary("octocat@github.com", true)]).await;
    setup.sign_in().await;
    let tokens = setup.fake.token_requests();
    assert_eq!(tokens[0].header("accept"), Some("application/json"));

    // Without that header GitHub answers form-encoded; the parser reads that too.
    assert_eq!(
        parse_token_response(b"access_token=gho_x&scope=read%3Auser&token_type=bearer")
            .expect("form-encoded")
            .access_token
            .as_deref(),
        Some("gho_x")
    );

    // The same against the fake's real answer, success and error.
    let verifier = "k1ZTzmFmaA0eCD8aAgYBz2pmDYtU9h0nDfGvJ4c3bQw";
    let mut authorization: Url = format!("{}/login/oauth/authorize", setup.fake.base_url)
        .parse()
        .unwrap();
    authorization
        .query_pairs_mut()
        .append_pair("client_id", &setup.fake.client_id)
        .append_pair("redirect_uri", &setup.fake.redirect_uri)
        .append_pair("scope", "read:user user:email")
        .append_pair("state", "s")
        .append_pair("code_challenge", &s256(verifier))
        .append_pair("code_challenge_method", "S256");
    let query = setup.fake.authorize(&authorization).await;
    let code = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("code="))
        .unwrap()
        .to_owned();
    let plain = reqwest::Client::new();
    let token_url = format!("{}/login/oauth/access_token", setup.fake.base_url);
    let form = [
        ("client_id", setup.fake.client_id.as_str()),
        ("client_secret", setup.fake.client_secret.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", setup.fake.redirect_uri.as_str()),
        ("code_verifier", verifier),
    ];
    let answer = plain.post(&token_url).form(&form).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body = answer.bytes().await.unwrap();
    assert!(body.starts_with(b"access_token=gho_"), "{body:?}");
    assert!(std::str::from_utf8(&body)
        .unwrap()
        .contains("&scope=read%3Auser%2Cuser%3Aemail&token_type=bearer"));
    let parsed = parse_token_response(&body).expect("form-encoded");
    assert!(parsed.access_token.unwrap().starts_with("gho_"));
    assert!(parsed.error.is_none());

    // The code is spent: GitHub's 200 with a form-encoded error.
    let answer = plain.post(&token_url).form(&form).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let parsed = parse_token_response(&answer.bytes().await.unwrap()).expect("form-encoded");
    assert_eq!(parsed.error.as_deref(), Some("bad_verification_code"));
    assert!(parsed.access_token.is_none());
}

#[tokio::test]
async fn a_redirect_uri_github_does_not_know_comes_back_as_a_provider_error() {
    let fake = FakeGitHub::start(
        &redirect_uri(GITHUB),
        octocat(),
        vec![Email::primary("octocat@github.com", true)],
    )
    .await;
    let mut config = github_config(GITHUB, &fake);
    config.redirect_uri = "http://127.0.0.1:9/elsewhere/callback".parse().unwrap();
    let (app, writes, outbox) = spawn(vec![config]).await;
    let setup = GitHubSetup {
        fake,
        app,
        writes,
        outbox,
    };
    let attempt = setup.attempt().await;
    let message = setup
        .assert_refused(attempt, StatusCode::BAD_REQUEST, "provider_error")
        .await;
    assert!(message.contains("redirect_uri_mismatch"), "{message}");
    assert!(setup.fake.token_requests().is_empty());
}

#[tokio::test]
async fn the_fake_refuses_api_calls_as_github_does() {
    let setup = GitHubSetup::new(octocat(), vec![Email::primary("octocat@github.com", true)]).await;
    let url = format!("{}/user", setup.fake.base_url);
    // reqwest sends no User-Agent unless told to.
    let anonymous = reqwest::Client::new();
    let (status, body) = status_and_json(
        anonymous
            .get(&url)
            .bearer_auth("gho_x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"].as_str().unwrap().contains("User-Agent"),
        "{body}"
    );
    let named = reqwest::Client::builder()
        .user_agent("test")
        .build()
        .unwrap();
    let (status, body) =
        status_and_json(named.get(&url).bearer_auth("gho_x").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "Bad credentials");
}

async fn status_and_json(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_generic_oauth2_provider_with_nested_userinfo_signs_in() {
    const NAME: &str = "acme";
    let fake = FakeOAuth2::start(
        &redirect_uri(NAME),
        json!({"data": {"user": {
            "id": 42,
            "mail": "x@example.com",
            "verified": true,
            "display": "X",
            "picture": "https://cdn.acme.example/x.png",
        }}}),
    )
    .await;
    let config = ProviderConfig {
        name: NAME.into(),
        kind: ProviderKind::OAuth2 {
            authorization_url: fake.url("/authorize"),
            token_url: fake.url("/token"),
            userinfo_url: fake.url("/userinfo"),
            fields: UserinfoFields {
                id: "data.user.id".into(),
                email: "data.user.mail".into(),
                email_verified: Some("data.user.verified".into()),
                name: "data.user.display".into(),
                avatar: "data.user.picture".into(),
            },
        },
        client_id: fake.client_id.clone(),
        client_secret: Secret::new(fake.client_secret.clone()),
        scopes: vec!["profile".into()],
        redirect_uri: redirect_uri(NAME).parse().unwrap(),
        algorithms: vec![],
    };
    let (app, _writes, _outbox) = spawn(vec![config]).await;

    let started = app.start_sign_in(NAME, None).await;
    assert_eq!(
        started.param("code_challenge_method").as_deref(),
        Some("S256")
    );
    let query = fake.authorize(&started.authorization_url).await;
    let callback = app
        .callback(NAME, &query, Some(&started.state_cookie))
        .await;
    let session = app.redeem(callback).await;
    let me = me(&app, &session).await;
    assert_eq!(me["user"]["email"], "x@example.com");
    assert_eq!(me["user"]["name"], "X");

    let identity = identity_key(NAME, "42");
    assert_eq!(identity.pk, format!("IDENT#{NAME}#42"));
    let user = app
        .services
        .users
        .by_identity(&identity)
        .await
        .unwrap()
        .expect("identity");
    assert_eq!(user.id, session["user"]["id"]);
    let token_calls = fake.requests_to("/token");
    assert_eq!(token_calls.len(), 1);
    assert_eq!(token_calls[0].header("accept"), Some("application/json"));
    let userinfo_calls = fake.requests_to("/userinfo");
    assert_eq!(userinfo_calls.len(), 1);
    assert!(userinfo_calls[0]
        .header("authorization")
        .unwrap()
        .starts_with("Bearer "));
}
