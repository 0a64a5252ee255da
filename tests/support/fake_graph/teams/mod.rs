//! Teams, channels and channel messages as Graph serves them: `GET /teams` (app-only),
//! `GET /me/joinedTeams` (delegated; 400 to an app), `GET /teams/{id}`,
//! `GET /teams/{id}/channels`, `GET …/messages` (roots, `$top` ≤ 50, `$skiptoken`),
//! `GET …/messages/{id}/replies` (`$top` ≤ 50), and `GET …/messages/delta`: roots changed
//! since the round's token (posting, editing or deleting a reply changes its root), each
//! root once at its latest state, oldest change first, `$top` per page with
//! `@odata.nextLink`, `@odata.deltaLink` on the last page; `$expand=replies` embeds up to
//! [`TeamsWorld::expand_limit`] replies (Graph: 1000), with `replies@odata.nextLink` when
//! there are more. A delta token older than [`FakeGraph::expire_message_deltas`] answers
//! 410 `resyncRequired`. Without the protected-API grant ([`FakeGraph::refuse_protected_api`])
//! an app-only caller gets Graph's 403 on every message read.

mod routes;

use chrono::{DateTime, Duration, TimeZone, Utc};

pub use routes::routes;

use super::FakeGraph;

/// A channel message (root when `reply_to` is `None`).
#[derive(Clone, Debug)]
pub struct FakeMessage {
    pub id: String,
    pub reply_to: Option<String>,
    pub author: String,
    pub html: String,
    pub subject: Option<String>,
    pub message_type: String,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub deleted: Option<DateTime<Utc>>,
    /// `(mention id, display name)` for each `<at id="n">` in the body.
    pub mentions: Vec<(i64, String)>,
    /// `(name, url)` reference attachments.
    pub attachments: Vec<(String, String)>,
    /// The change sequence of the thread this root heads (roots only).
    pub seq: u64,
}

#[derive(Clone, Debug)]
pub struct FakeChannel {
    pub id: String,
    pub name: String,
    pub messages: Vec<FakeMessage>,
}

#[derive(Clone, Debug)]
pub struct FakeTeam {
    pub id: String,
    pub name: String,
    pub channels: Vec<FakeChannel>,
}

/// Teams, channels, messages and their changes.
pub struct TeamsWorld {
    pub teams: Vec<FakeTeam>,
    seq: u64,
    next_id: u64,
    /// Delta tokens below this are refused (410).
    delta_floor: u64,
    protected_api: bool,
    /// Replies embedded per root with `$expand=replies`.
    pub expand_limit: usize,
    clock: DateTime<Utc>,
}

impl Default for TeamsWorld {
    fn default() -> Self {
        Self {
            teams: Vec::new(),
            seq: 0,
            next_id: 1_700_000_000_000,
            delta_floor: 0,
            protected_api: true,
            expand_limit: 1000,
            clock: Utc
                .with_ymd_and_hms(2026, 11, 1, 9, 0, 0)
                .single()
                .unwrap_or_default(),
        }
    }
}

impl TeamsWorld {
    fn tick(&mut self) -> (u64, DateTime<Utc>) {
        self.seq += 1;
        self.clock += Duration::seconds(7);
        (self.seq, self.clock)
    }

    fn channel_mut(&mut self, channel: &str) -> &mut FakeChannel {
        self.teams
            .iter_mut()
            .flat_map(|t| t.channels.iter_mut())
            .find(|c| c.id == channel)
            .expect("a channel of the fake")
    }

    pub(crate) fn channel(&self, team: &str, channel: &str) -> Option<&FakeChannel> {
        self.teams
            .iter()
            .find(|t| t.id == team)?
            .channels
            .iter()
            .find(|c| c.id == channel)
    }

    /// Marks the thread of `root` changed (its lastModifiedDateTime too).
    fn touch_root(&mut self, channel: &str, root: &str) {
        let (seq, now) = self.tick();
        let channel = self.channel_mut(channel);
        if let Some(root) = channel.messages.iter_mut().find(|m| m.id == root) {
            root.seq = seq;
            root.modified = now;
        }
    }

    fn post(&mut self, channel: &str, reply_to: Option<&str>, post: Post) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let (seq, now) = self.tick();
        let message = FakeMessage {
            id: id.clone(),
            reply_to: reply_to.map(str::to_owned),
            author: post.author,
            html: post.html,
            subject: post.subject,
            message_type: post.message_type,
            created: now,
            modified: now,
            deleted: None,
            mentions: post.mentions,
            attachments: post.attachments,
            seq,
        };
        self.channel_mut(channel).messages.push(message);
        if let Some(root) = reply_to {
            self.touch_root(channel, root);
        }
        id
    }
}

/// A message to post: `Post::new("Ada", "<p>Hi</p>")`.
#[derive(Clone, Debug)]
pub struct Post {
    author: String,
    html: String,
    subject: Option<String>,
    message_type: String,
    mentions: Vec<(i64, String)>,
    attachments: Vec<(String, String)>,
}

impl Post {
    pub fn new(author: &str, html: &str) -> Self {
        Self {
            author: author.into(),
            html: html.into(),
            subject: None,
            message_type: "message".into(),
            mentions: Vec::new(),
            attachments: Vec::new(),
        }
    }

    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn mention(mut self, id: i64, name: &str) -> Self {
        self.mentions.push((id, name.into()));
        self
    }

    pub fn attachment(mut self, name: &str, url: &str) -> Self {
        self.attachments.push((name.into(), url.into()));
        self
    }

    /// A system event (member added, …), not content.
    pub fn system(mut self) -> Self {
        self.message_type = "systemEventMessage".into();
        self
    }
}

impl FakeGraph {
    fn teams_world(&self) -> std::sync::MutexGuard<'_, TeamsWorld> {
        self.shared().teams()
    }

    /// A team with channels (`(id, name)`); returns the team id.
    pub fn add_team(&self, id: &str, name: &str, channels: &[(&str, &str)]) -> String {
        self.teams_world().teams.push(FakeTeam {
            id: id.into(),
            name: name.into(),
            channels: channels
                .iter()
                .map(|(id, name)| FakeChannel {
                    id: (*id).into(),
                    name: (*name).into(),
                    messages: Vec::new(),
                })
                .collect(),
        });
        id.into()
    }

    /// A root message in `channel`; its id.
    pub fn post_root(&self, channel: &str, post: Post) -> String {
        self.teams_world().post(channel, None, post)
    }

    /// A reply to `root`; its id (the root changes too, as in Teams).
    pub fn post_reply(&self, channel: &str, root: &str, post: Post) -> String {
        self.teams_world().post(channel, Some(root), post)
    }

    /// Edits a message's body (a reply's edit changes its root).
    pub fn edit_message(&self, channel: &str, id: &str, html: &str) {
        let mut world = self.teams_world();
        let (seq, now) = world.tick();
        let message = world
            .channel_mut(channel)
            .messages
            .iter_mut()
            .find(|m| m.id == id)
            .expect("a message");
        message.html = html.into();
        message.modified = now;
        let root = message.reply_to.clone();
        if root.is_none() {
            message.seq = seq;
        }
        if let Some(root) = root {
            world.touch_root(channel, &root);
        }
    }

    /// Soft-deletes a message (`deletedDateTime`); a reply's deletion changes its root.
    pub fn delete_message(&self, channel: &str, id: &str) {
        let mut world = self.teams_world();
        let (seq, now) = world.tick();
        let message = world
            .channel_mut(channel)
            .messages
            .iter_mut()
            .find(|m| m.id == id)
            .expect("a message");
        message.deleted = Some(now);
        message.modified = now;
        let root = message.reply_to.clone();
        if root.is_none() {
            message.seq = seq;
        }
        if let Some(root) = root {
            world.touch_root(channel, &root);
        }
    }

    /// Every delta token issued so far is refused from now on (410 `resyncRequired`).
    pub fn expire_message_deltas(&self) {
        let mut world = self.teams_world();
        world.delta_floor = world.seq + 1;
    }

    /// The app is not approved for Teams' protected APIs: app-only message reads get 403.
    pub fn refuse_protected_api(&self) {
        self.teams_world().protected_api = false;
    }

    /// Replies embedded per root with `$expand=replies` (Graph: 1000).
    pub fn set_expand_limit(&self, limit: usize) {
        self.teams_world().expand_limit = limit;
    }

    /// `threads` roots with `replies` replies each in `channel` (benches, volume tests).
    pub fn populate_channel(&self, channel: &str, threads: usize, replies: usize) -> Vec<String> {
        let mut world = self.teams_world();
        let mut roots = Vec::with_capacity(threads);
        for n in 0..threads {
            let root = world.post(
                channel,
                None,
                Post::new(
                    "Ada Lovelace",
                    &format!("<p>Thread {n}: <b>status</b> of the release, see <a href=\"https://example.com/{n}\">notes</a></p>"),
                ),
            );
            for r in 0..replies {
                world.post(
                    channel,
                    Some(&root),
                    Post::new("Bob Builder", &format!("<p>Reply {r} to {n}</p>")),
                );
            }
            roots.push(root);
        }
        roots
    }
}
