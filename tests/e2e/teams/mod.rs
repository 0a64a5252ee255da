//! The Teams source against the fake Graph: a full sync of channel threads (mentions,
//! attachments, system messages left out), the delta feed afterwards (new threads, edits,
//! a new reply on an old thread, deleted replies and roots), an expired delta link, a
//! sync killed at random batches, replies beyond what a page embeds, both app-only
//! credentials and a delegated token, the protected-API refusal, throttling; `engine.rs`:
//! a delegated `microsoft` connection through the sync engine with a refresh.

mod engine;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use tributary::connectors::kit::{AccessToken, SourceAuth};
use tributary::connectors::microsoft::GraphAuth;
use tributary::connectors::teams::{TeamsConfig, TeamsConnector};
use tributary::connectors::{Connector, ConnectorError};
use tributary::http::RetryPolicy;
use tributary_e2e::app::loopback_client;
use tributary_e2e::fake_graph::teams::Post;
use tributary_e2e::fake_graph::FakeGraph;
use tributary_e2e::microsoft::{
    client_certificate_credentials, client_secret_credentials, TENANT_ID,
};
use tributary_e2e::passes::{
    crash_points, deleted, documents, last_checkpoint, list_all, markdown_by_id, pass_with_crashes,
    pull_pass, source_ids,
};

pub const ENG: &str = "a1b2c3d4-0000-4000-8000-000000000001";
pub const SALES: &str = "a1b2c3d4-0000-4000-8000-000000000002";
pub const GENERAL: &str = "19:general0001@thread.tacv2";
pub const DESIGN: &str = "19:design0002@thread.tacv2";
pub const DEALS: &str = "19:deals0003@thread.tacv2";

pub fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        budget: Duration::from_secs(10),
    }
}

pub struct Corpus {
    pub release: String,
    pub release_reply: String,
    pub lunch: String,
    pub mockups: String,
    pub deal: String,
}

pub fn sid(team: &str, channel: &str, root: &str) -> String {
    format!("{team}/{channel}/{root}")
}

/// Two teams, three channels, four threads and a system message.
pub async fn world() -> (FakeGraph, Corpus) {
    let fake = FakeGraph::start().await;
    fake.add_team(
        ENG,
        "Engineering",
        &[(GENERAL, "General"), (DESIGN, "Design")],
    );
    fake.add_team(SALES, "Sales", &[(DEALS, "Deals")]);
    let release = fake.post_root(
        GENERAL,
        Post::new("Ada Lovelace", "<p>Release on <b>Friday</b>, <at id=\"0\">Bob</at> please check <attachment id=\"att-0\"></attachment></p>")
            .subject("Release plan")
            .mention(0, "Bob Builder")
            .attachment("checklist.docx", "https://contoso.sharepoint.com/sites/Eng/checklist.docx"),
    );
    let release_reply = fake.post_reply(
        GENERAL,
        &release,
        Post::new("Bob Builder", "<p>Checked, all green</p>"),
    );
    let lunch = fake.post_root(GENERAL, Post::new("Carol", "<p>Lunch at noon?</p>"));
    fake.post_root(
        GENERAL,
        Post::new("Teams", "<systemEventMessage/>").system(),
    );
    let mockups = fake.post_root(
        DESIGN,
        Post::new("Dan", "<ul><li>Mockup A</li><li>Mockup B</li></ul>"),
    );
    let deal = fake.post_root(DEALS, Post::new("Erin", "<p>Contoso deal signed</p>"));
    (
        fake,
        Corpus {
            release,
            release_reply,
            lunch,
            mockups,
            deal,
        },
    )
}

impl Corpus {
    pub fn everything(&self) -> BTreeSet<String> {
        [
            sid(ENG, GENERAL, &self.release),
            sid(ENG, GENERAL, &self.lunch),
            sid(ENG, DESIGN, &self.mockups),
            sid(SALES, DEALS, &self.deal),
        ]
        .into_iter()
        .collect()
    }
}

pub fn config(extra: Value) -> TeamsConfig {
    let mut value = json!({"tenant_id": TENANT_ID});
    if let (Some(target), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        target.extend(extra.clone());
    }
    serde_json::from_value(value).expect("a config")
}

pub fn connector_with(fake: &FakeGraph, extra: Value, auth: SourceAuth) -> TeamsConnector {
    let config = config(extra);
    let graph = GraphAuth::new(
        auth,
        config.tenant_id.as_ref(),
        &fake.login_base(),
        loopback_client(Duration::from_secs(10)),
    )
    .expect("auth");
    TeamsConnector::new(
        "teams-test",
        config,
        graph,
        loopback_client(Duration::from_secs(10)),
        retry(),
        fake.graph_base(),
    )
    .expect("a connector")
}

pub fn connector(fake: &FakeGraph, extra: Value) -> TeamsConnector {
    connector_with(fake, extra, client_secret_credentials().into())
}

fn markdown_of(batches: &[tributary::connectors::Batch], id: &str) -> String {
    markdown_by_id(batches)
        .remove(id)
        .unwrap_or_else(|| panic!("{id} delivered"))
}

#[tokio::test]
async fn a_full_sync_delivers_every_thread_exactly_and_the_listing_agrees() {
    let (fake, c) = world().await;
    let teams = connector(&fake, json!({}));
    teams.test_connection().await.expect("connects");
    let batches = pull_pass(&teams, None).await;
    assert_eq!(source_ids(&batches), c.everything());
    assert_eq!(documents(&batches).len(), 4, "each thread once");
    assert!(deleted(&batches).is_empty());

    let release = documents(&batches)
        .into_iter()
        .find(|d| d.source_id == sid(ENG, GENERAL, &c.release))
        .expect("the release thread");
    assert_eq!(release.title.as_deref(), Some("Release plan"));
    let md = &release.markdown;
    assert!(md.contains("Engineering › General"), "{md}");
    assert!(
        md.contains("**Friday**") && md.contains("@Bob Builder"),
        "{md}"
    );
    assert!(
        md.contains("[checklist.docx](https://contoso.sharepoint.com/sites/Eng/checklist.docx)"),
        "{md}"
    );
    assert!(
        md.find("Release on") < md.find("Checked, all green"),
        "{md}"
    );
    assert!(!md.contains("attachment id"), "{md}");
    assert_eq!(release.metadata["team"], json!("Engineering"));
    assert_eq!(release.metadata["channel"], json!("General"));
    assert_eq!(release.metadata["replies"], json!(1));
    assert_eq!(
        release.metadata["participants"],
        json!(["Ada Lovelace", "Bob Builder"])
    );
    assert!(release
        .url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://teams.microsoft.com/l/message/")));
    assert!(markdown_of(&batches, &sid(ENG, DESIGN, &c.mockups)).contains("- Mockup A"));
    assert!(
        documents(&batches)
            .iter()
            .all(|d| !d.markdown.contains("systemEventMessage")),
        "system messages are not documents"
    );
    assert_eq!(list_all(&teams).await.expect("listing"), c.everything());
    let app_teams = fake
        .requests()
        .iter()
        .filter(|r| r.path == "/teams")
        .count();
    assert!(app_teams > 0, "app-only lists the tenant's teams");

    // Nothing changed: one delta call per channel and nothing delivered.
    fake.clear_requests();
    let quiet = pull_pass(&teams, Some(last_checkpoint(&batches))).await;
    assert!(documents(&quiet).is_empty() && deleted(&quiet).is_empty());
    let deltas = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/messages/delta"))
        .count();
    assert_eq!(deltas, 3);
}

#[tokio::test]
async fn the_feed_updates_threads_for_new_replies_edits_and_deletions() {
    let (fake, c) = world().await;
    let teams = connector(&fake, json!({}));
    let first = pull_pass(&teams, None).await;

    let new_root = fake.post_root(DESIGN, Post::new("Dan", "<p>Palette v2</p>"));
    fake.post_reply(
        GENERAL,
        &c.lunch,
        Post::new("Ada Lovelace", "<p>Yes, the usual place</p>"),
    );
    fake.edit_message(
        DEALS,
        &c.deal,
        "<p>Contoso deal signed and countersigned</p>",
    );
    let second = pull_pass(&teams, Some(last_checkpoint(&first))).await;
    assert_eq!(
        source_ids(&second),
        [
            sid(ENG, DESIGN, &new_root),
            sid(ENG, GENERAL, &c.lunch),
            sid(SALES, DEALS, &c.deal)
        ]
        .into_iter()
        .collect()
    );
    let lunch = markdown_of(&second, &sid(ENG, GENERAL, &c.lunch));
    assert!(
        lunch.contains("Lunch at noon?") && lunch.contains("Yes, the usual place"),
        "the old thread's document has its new reply: {lunch}"
    );
    assert!(markdown_of(&second, &sid(SALES, DEALS, &c.deal)).contains("countersigned"));

    // A deleted reply leaves its thread; a deleted root removes the thread.
    fake.delete_message(GENERAL, &c.release_reply);
    fake.delete_message(DESIGN, &c.mockups);
    let third = pull_pass(&teams, Some(last_checkpoint(&second))).await;
    let release = markdown_of(&third, &sid(ENG, GENERAL, &c.release));
    assert!(
        release.contains("Release on") && !release.contains("all green"),
        "{release}"
    );
    assert_eq!(
        deleted(&third),
        [sid(ENG, DESIGN, &c.mockups)].into_iter().collect()
    );
    assert!(!source_ids(&third).contains(&sid(ENG, DESIGN, &c.mockups)));
    let listed = list_all(&teams).await.expect("listing");
    assert!(!listed.contains(&sid(ENG, DESIGN, &c.mockups)));
    assert!(listed.contains(&sid(ENG, DESIGN, &new_root)));
}

#[tokio::test]
async fn an_expired_delta_link_reads_the_channel_again_without_losing_a_thread() {
    let (fake, c) = world().await;
    let teams = connector(&fake, json!({}));
    let first = pull_pass(&teams, None).await;
    fake.delete_message(GENERAL, &c.lunch);
    fake.expire_message_deltas();
    let later = fake.post_root(DEALS, Post::new("Erin", "<p>Fabrikam renewal</p>"));
    let second = pull_pass(&teams, Some(last_checkpoint(&first))).await;
    let mut expected = c.everything();
    expected.remove(&sid(ENG, GENERAL, &c.lunch));
    expected.insert(sid(SALES, DEALS, &later));
    assert_eq!(source_ids(&second), expected, "every live thread again");
    let gone = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/messages/delta") && r.param("$deltatoken").is_some())
        .count();
    assert_eq!(gone, 3, "each stored link was tried once");
    // What the prune after this complete sync reads: the lunch thread is gone.
    assert_eq!(list_all(&teams).await.expect("listing"), expected);
    // And the feed works again from the new links.
    let third = pull_pass(&teams, Some(last_checkpoint(&second))).await;
    assert!(documents(&third).is_empty());
}

#[tokio::test]
async fn a_sync_killed_at_random_batches_resumes_exactly() {
    let (fake, _) = world().await;
    fake.populate_channel(GENERAL, 60, 2);
    fake.populate_channel(DEALS, 35, 0);
    let extra = json!({"batch_size": 7});
    let clean = pull_pass(&connector(&fake, extra.clone()), None).await;
    assert_eq!(source_ids(&clean).len(), 4 + 60 + 35);
    for seed in [3u64, 424_242, 77] {
        let crashes = crash_points(seed, clean.len());
        let resumed = pass_with_crashes(|| connector(&fake, extra.clone()), None, &crashes).await;
        assert_eq!(
            markdown_by_id(&resumed),
            markdown_by_id(&clean),
            "seed {seed}"
        );
    }
}

#[tokio::test]
async fn replies_beyond_what_a_page_embeds_are_read_in_full_and_in_order() {
    let fake = FakeGraph::start().await;
    fake.add_team(ENG, "Engineering", &[(GENERAL, "General")]);
    let root = fake.post_root(GENERAL, Post::new("Ada Lovelace", "<p>Long thread</p>"));
    for n in 0..120 {
        fake.post_reply(
            GENERAL,
            &root,
            Post::new("Bob Builder", &format!("<p>reply number {n:03}</p>")),
        );
    }
    fake.set_expand_limit(10);
    let batches = pull_pass(&connector(&fake, json!({})), None).await;
    let md = markdown_of(&batches, &sid(ENG, GENERAL, &root));
    let positions: Vec<usize> = (0..120)
        .map(|n| {
            md.find(&format!("reply number {n:03}"))
                .expect("every reply")
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in order");
    assert!(fake.requests().iter().any(|r| r.path.ends_with("/replies")));
    // Without replies, the thread is its root alone.
    let roots_only = pull_pass(&connector(&fake, json!({"include_replies": false})), None).await;
    assert!(!markdown_of(&roots_only, &sid(ENG, GENERAL, &root)).contains("reply number"));
}

#[tokio::test]
async fn filters_both_app_credentials_and_a_delegated_token_read_the_same_threads() {
    let (fake, c) = world().await;
    let only_general = connector(&fake, json!({"teams": [ENG], "channels": ["general"]}));
    let batches = pull_pass(&only_general, None).await;
    assert_eq!(
        source_ids(&batches),
        [sid(ENG, GENERAL, &c.release), sid(ENG, GENERAL, &c.lunch)]
            .into_iter()
            .collect()
    );

    let certificate = connector_with(&fake, json!({}), client_certificate_credentials().into());
    assert_eq!(
        source_ids(&pull_pass(&certificate, None).await),
        c.everything()
    );
    assert!(fake
        .login()
        .grants()
        .iter()
        .any(|g| g.client_auth == "certificate"));

    fake.book()
        .allow("delegated-token", tributary_e2e::microsoft::CONNECTED_USER);
    fake.clear_requests();
    let delegated = connector_with(
        &fake,
        json!({}),
        SourceAuth::Bearer(AccessToken::new("delegated-token")),
    );
    assert_eq!(
        source_ids(&pull_pass(&delegated, None).await),
        c.everything()
    );
    assert!(fake.requests().iter().any(|r| r.path == "/me/joinedTeams"));
}

#[tokio::test]
async fn a_refused_protected_api_names_the_permission_to_request() {
    let (fake, _) = world().await;
    fake.refuse_protected_api();
    let teams = connector(&fake, json!({}));
    let error = teams.test_connection().await.expect_err("refused");
    let message = error.to_string();
    assert!(
        matches!(error, ConnectorError::Unauthorized(_)),
        "{message}"
    );
    assert!(message.contains("ChannelMessage.Read.All"), "{message}");
    assert!(message.contains("protected API"), "{message}");
    let pulled = teams
        .pull(None)
        .await
        .expect_err("the sync fails the same way");
    assert!(pulled.to_string().contains("ChannelMessage.Read.All"));
}

#[tokio::test]
async fn throttling_with_retry_after_is_waited_out() {
    let (fake, c) = world().await;
    let teams = connector(&fake, json!({}));
    fake.throttle_next(2, 429, 1);
    let batches = pull_pass(&teams, None).await;
    assert_eq!(source_ids(&batches), c.everything());
    let requests = fake.requests();
    assert!(requests.len() > 2);
    assert_eq!(
        requests[0].path, requests[2].path,
        "the throttled call was repeated after the waits"
    );
}

#[tokio::test]
async fn bad_configuration_and_credentials_are_refused_before_any_request() {
    let fake = FakeGraph::start().await;
    let no_tenant: TeamsConfig = serde_json::from_value(json!({})).expect("config");
    let refused = GraphAuth::new(
        client_secret_credentials().into(),
        no_tenant.tenant_id.as_ref(),
        &fake.login_base(),
        loopback_client(Duration::from_secs(5)),
    );
    assert!(matches!(refused, Err(ConnectorError::Config(_))));
    let source = tributary::connectors::SourceKind::Teams.source();
    assert!(source
        .validate(json!({"base_url": "https://evil.example"}))
        .is_err());
    assert!(source.validate(json!({"teams": ["not a guid"]})).is_err());
    assert!(fake.requests().is_empty());
}
