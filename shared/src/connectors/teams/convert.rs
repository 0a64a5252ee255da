//! Channel messages as documents: one per thread (the root and its replies in order), HTML
//! bodies as markdown with `<at>` mentions resolved to names and attachments as links.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use url::Url;

use super::checkpoint::ChannelRef;
use crate::connectors::convert::html::html_to_markdown;
use crate::connectors::document::Document;

/// A `chatMessage` as Graph returns it (the fields a thread document uses).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Message {
    pub id: String,
    pub reply_to_id: Option<String>,
    pub etag: Option<String>,
    /// `message`; system events (`systemEventMessage`, …) are not content.
    pub message_type: Option<String>,
    pub created_date_time: Option<String>,
    pub last_modified_date_time: Option<String>,
    pub deleted_date_time: Option<String>,
    pub subject: Option<String>,
    pub web_url: Option<String>,
    pub from: Option<From>,
    pub body: Option<Body>,
    pub mentions: Vec<Mention>,
    pub attachments: Vec<Attachment>,
    /// With `$expand=replies`.
    pub replies: Vec<Message>,
    #[serde(rename = "replies@odata.nextLink")]
    pub replies_next_link: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct From {
    pub user: Option<Identity>,
    pub application: Option<Identity>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Identity {
    pub id: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Body {
    pub content_type: Option<String>,
    pub content: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Mention {
    pub id: i64,
    pub mention_text: Option<String>,
    pub mentioned: Option<Mentioned>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Mentioned {
    pub user: Option<Identity>,
    pub application: Option<Identity>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Attachment {
    pub id: Option<String>,
    pub content_type: Option<String>,
    pub content_url: Option<String>,
    pub name: Option<String>,
}

impl Message {
    /// A live user or bot message (not deleted, not a system event).
    pub fn is_content(&self) -> bool {
        self.deleted_date_time.is_none()
            && self.message_type.as_deref().is_none_or(|kind| kind == "message")
    }

    fn author(&self) -> String {
        self.from
            .as_ref()
            .and_then(|from| from.user.as_ref().or(from.application.as_ref()))
            .and_then(|who| who.display_name.clone())
            .unwrap_or_else(|| "Unknown".into())
    }

    /// The body as markdown: mentions as `@Name`, attachment placeholders dropped, then
    /// each attachment as a link.
    fn markdown(&self, base: &Url) -> String {
        let content = self
            .body
            .as_ref()
            .and_then(|body| body.content.clone())
            .unwrap_or_default();
        let html = self
            .body
            .as_ref()
            .and_then(|b| b.content_type.as_deref())
            .is_none_or(|kind| kind.eq_ignore_ascii_case("html"));
        let mut text = if html {
            html_to_markdown(&resolve_mentions(&content, &self.mentions), base)
        } else {
            content
        };
        for attachment in &self.attachments {
            let name = attachment.name.as_deref().unwrap_or("attachment");
            match attachment.content_url.as_deref() {
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                    text.push_str(&format!("\n\n📎 [{}]({url})", escape_link_text(name)));
                }
                _ => text.push_str(&format!("\n\n📎 {name}")),
            }
        }
        text.trim().to_owned()
    }
}

fn escape_link_text(text: &str) -> String {
    text.replace('[', "\\[").replace(']', "\\]")
}

/// `<at id="0">Ada</at>` → `@Ada Lovelace` (the mention's user, else its text); the
/// `<attachment id=…></attachment>` placeholders go (attachments are listed after).
fn resolve_mentions(html: &str, mentions: &[Mention]) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<at") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let (Some(open_end), Some(close)) = (tail.find('>'), tail.find("</at>")) else {
            out.push_str(tail);
            return strip_attachment_tags(&out);
        };
        if close < open_end {
            out.push_str(&tail[..open_end + 1]);
            rest = &tail[open_end + 1..];
            continue;
        }
        let tag = &tail[..open_end];
        let inner = &tail[open_end + 1..close];
        let id = tag
            .split("id=\"")
            .nth(1)
            .and_then(|v| v.split('"').next())
            .and_then(|v| v.parse::<i64>().ok());
        let name = id
            .and_then(|id| mentions.iter().find(|m| m.id == id))
            .and_then(|m| {
                m.mentioned
                    .as_ref()
                    .and_then(|who| who.user.as_ref().or(who.application.as_ref()))
                    .and_then(|who| who.display_name.clone())
                    .or_else(|| m.mention_text.clone())
            })
            .unwrap_or_else(|| inner.to_owned());
        out.push('@');
        out.push_str(&name.replace('<', "&lt;"));
        rest = &tail[close + "</at>".len()..];
    }
    out.push_str(rest);
    strip_attachment_tags(&out)
}

fn strip_attachment_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<attachment") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</attachment>") {
            Some(end) => rest = &rest[start + end + "</attachment>".len()..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `<team>/<channel>/<root>`: a thread's source id.
pub fn thread_id(channel: &ChannelRef, root: &str) -> String {
    format!("{}/{root}", channel.key())
}

/// The thread's document: title, where it was posted, then every message in order.
pub fn thread_document(
    scope: &str,
    channel: &ChannelRef,
    root: &Message,
    replies: &[Message],
) -> Document {
    let base = root
        .web_url
        .as_deref()
        .and_then(|url| Url::parse(url).ok())
        .unwrap_or_else(|| Url::parse("https://teams.microsoft.com/").expect("a constant URL"));
    let first_line = |message: &Message| {
        message
            .markdown(&base)
            .lines()
            .find(|line| !line.trim().is_empty())
            .map(|line| line.chars().take(80).collect::<String>())
    };
    let title = root
        .subject
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| first_line(root))
        .unwrap_or_else(|| format!("Thread in {}", channel.channel_name));
    let mut markdown = format!(
        "# {title}\n\n*{} › {}*\n",
        channel.team_name, channel.channel_name
    );
    let mut participants: Vec<String> = Vec::new();
    let mut updated = root.last_modified_date_time.clone().unwrap_or_default();
    for message in std::iter::once(root).chain(replies.iter().filter(|r| r.is_content())) {
        let author = message.author();
        if !participants.contains(&author) {
            participants.push(author.clone());
        }
        let when = message.created_date_time.as_deref().unwrap_or_default();
        markdown.push_str(&format!("\n**{author}** — {when}\n\n{}\n", message.markdown(&base)));
        if let Some(modified) = &message.last_modified_date_time {
            if *modified > updated {
                updated = modified.clone();
            }
        }
    }
    let live_replies = replies.iter().filter(|r| r.is_content()).count();
    let mut metadata = Map::new();
    metadata.insert("team".into(), json!(channel.team_name));
    metadata.insert("team_id".into(), json!(channel.team_id));
    metadata.insert("channel".into(), json!(channel.channel_name));
    metadata.insert("channel_id".into(), json!(channel.channel_id));
    metadata.insert("participants".into(), json!(participants));
    metadata.insert("replies".into(), json!(live_replies));
    metadata.insert("created_time".into(), json!(root.created_date_time));
    if let Some(last) = replies
        .iter()
        .filter(|r| r.is_content())
        .filter_map(|r| r.created_date_time.clone())
        .max()
    {
        metadata.insert("last_reply_time".into(), Value::String(last));
    }
    let source_id = thread_id(channel, &root.id);
    Document {
        id: Document::stable_id(scope, &source_id),
        source: super::SOURCE.into(),
        source_id,
        title: Some(title),
        url: root.web_url.clone(),
        markdown,
        metadata,
        updated_at: updated,
        acl: Vec::new(),
        file: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn channel() -> ChannelRef {
        ChannelRef {
            team_id: "t1".into(),
            team_name: "Engineering".into(),
            channel_id: "19:abc@thread.tacv2".into(),
            channel_name: "General".into(),
        }
    }

    fn message(value: serde_json::Value) -> Message {
        serde_json::from_value(value).expect("a chatMessage")
    }

    #[test]
    fn a_thread_resolves_mentions_lists_attachments_and_skips_deleted_replies() {
        let root = message(json!({
            "id": "100", "messageType": "message", "createdDateTime": "2026-01-01T10:00:00Z",
            "lastModifiedDateTime": "2026-01-01T10:00:00Z", "subject": "Release plan",
            "webUrl": "https://teams.microsoft.com/l/message/19%3Aabc/100",
            "from": {"user": {"id": "u1", "displayName": "Ada Lovelace"}},
            "body": {"contentType": "html",
                     "content": "<p>Hi <at id=\"0\">Bob</at>, see <attachment id=\"a1\"></attachment></p>"},
            "mentions": [{"id": 0, "mentionText": "Bob",
                          "mentioned": {"user": {"id": "u2", "displayName": "Bob Builder"}}}],
            "attachments": [{"id": "a1", "contentType": "reference",
                             "contentUrl": "https://contoso.sharepoint.com/plan.docx", "name": "plan.docx"}]
        }));
        let replies = vec![
            message(json!({"id": "101", "replyToId": "100", "messageType": "message",
                "createdDateTime": "2026-01-01T11:00:00Z",
                "from": {"user": {"displayName": "Bob Builder"}},
                "body": {"contentType": "html", "content": "<p>On it</p>"}})),
            message(json!({"id": "102", "replyToId": "100", "messageType": "message",
                "createdDateTime": "2026-01-01T12:00:00Z", "deletedDateTime": "2026-01-02T00:00:00Z",
                "from": {"user": {"displayName": "Eve"}},
                "body": {"contentType": "html", "content": "<p>secret</p>"}})),
        ];
        let document = thread_document("connector:c", &channel(), &root, &replies);
        assert_eq!(document.source_id, "t1/19:abc@thread.tacv2/100");
        assert_eq!(document.title.as_deref(), Some("Release plan"));
        let md = &document.markdown;
        assert!(md.contains("@Bob Builder"), "{md}");
        assert!(md.contains("[plan.docx](https://contoso.sharepoint.com/plan.docx)"), "{md}");
        assert!(md.contains("On it") && !md.contains("secret"), "{md}");
        assert!(md.find("Ada Lovelace") < md.find("On it"), "in order: {md}");
        assert_eq!(document.metadata["replies"], json!(1));
        assert_eq!(document.metadata["participants"], json!(["Ada Lovelace", "Bob Builder"]));
        assert_eq!(document.metadata["last_reply_time"], json!("2026-01-01T11:00:00Z"));
    }

    #[test]
    fn system_and_deleted_messages_are_not_content() {
        assert!(message(json!({"id": "1", "messageType": "message"})).is_content());
        assert!(!message(json!({"id": "1", "messageType": "systemEventMessage"})).is_content());
        assert!(!message(json!({"id": "1", "deletedDateTime": "2026-01-01T00:00:00Z"})).is_content());
        assert_eq!(resolve_mentions("<at id=\"9\">Zed</at> hi", &[]), "@Zed hi");
    }
}
