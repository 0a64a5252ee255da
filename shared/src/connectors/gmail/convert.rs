//! A Gmail thread as one markdown document: the subject, the participants, then every
//! message in order with From/To/Cc/Date and its body with quoted replies stripped.
//!
//! A message's body is its `text/plain` part, else its `text/html` part through the crawl's
//! HTML converter (Onyx reads `text/plain` only and indexes HTML-only mail as empty). Parts
//! are found depth-first through `multipart/*` containers, skipping attachments (a part with
//! a filename or `Content-Disposition: attachment`); in `multipart/alternative` the plain
//! alternative wins. Part bodies are base64url in `body.data`, or fetched by
//! `body.attachmentId` when Gmail stored them apart (large bodies, attachments).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::client::{decode_base64url, Message, MessagePart};
use crate::connectors::convert::html_to_markdown;
use crate::connectors::kit::files::{text_kind, to_markdown};

/// What a message's body is made of.
#[derive(Debug)]
pub(super) enum BodySource<'a> {
    /// `text/plain` or `text/html` with its data inline.
    Inline { part: &'a MessagePart, html: bool },
    /// The body part is stored apart (`body.attachmentId`).
    Apart {
        part: &'a MessagePart,
        html: bool,
        attachment_id: &'a str,
    },
    None,
}

/// An attachment of a message (a part with a filename).
#[derive(Debug)]
pub(super) struct AttachmentPart<'a> {
    pub(super) part: &'a MessagePart,
    pub(super) size: u64,
}

pub(super) fn header<'a>(part: &'a MessagePart, name: &str) -> Option<&'a str> {
    part.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn is_attachment(part: &MessagePart) -> bool {
    !part.filename.is_empty()
        || header(part, "Content-Disposition")
            .is_some_and(|value| value.trim().to_ascii_lowercase().starts_with("attachment"))
}

fn essence(mime_type: &str) -> String {
    mime_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The part that carries the body: the first `text/plain` found depth-first, else the
/// first `text/html`.
pub(super) fn body_source(payload: &MessagePart) -> BodySource<'_> {
    let found = find_text(payload, "text/plain")
        .map(|part| (part, false))
        .or_else(|| find_text(payload, "text/html").map(|part| (part, true)));
    let Some((part, html)) = found else {
        return BodySource::None;
    };
    match part.body.as_ref() {
        Some(body) if body.data.as_deref().is_some_and(|d| !d.is_empty()) => {
            BodySource::Inline { part, html }
        }
        Some(body) => match body.attachment_id.as_deref() {
            Some(attachment_id) => BodySource::Apart {
                part,
                html,
                attachment_id,
            },
            None => BodySource::Inline { part, html },
        },
        None => BodySource::Inline { part, html },
    }
}

fn find_text<'a>(part: &'a MessagePart, wanted: &str) -> Option<&'a MessagePart> {
    let mime = essence(&part.mime_type);
    if mime.starts_with("multipart/") {
        return part.parts.iter().find_map(|child| find_text(child, wanted));
    }
    (mime == wanted && !is_attachment(part)).then_some(part)
}

/// Every attachment part, depth-first.
pub(super) fn attachments(payload: &MessagePart) -> Vec<AttachmentPart<'_>> {
    let mut found = Vec::new();
    collect_attachments(payload, &mut found);
    found
}

fn collect_attachments<'a>(part: &'a MessagePart, found: &mut Vec<AttachmentPart<'a>>) {
    if essence(&part.mime_type).starts_with("multipart/") {
        for child in &part.parts {
            collect_attachments(child, found);
        }
    } else if !part.filename.is_empty() {
        found.push(AttachmentPart {
            part,
            size: part.body.as_ref().map_or(0, |body| body.size),
        });
    }
}

/// A text part's bytes as text, in the charset its `Content-Type` names.
pub(super) fn decode_text(part: &MessagePart, bytes: &[u8]) -> String {
    let content_type = header(part, "Content-Type").unwrap_or(&part.mime_type);
    crate::crawl::html::decode(Some(content_type), bytes)
}

/// An inline part's text (empty when it has no data).
pub(super) fn inline_text(part: &MessagePart) -> String {
    part.body
        .as_ref()
        .and_then(|body| body.data.as_deref())
        .and_then(decode_base64url)
        .map(|bytes| decode_text(part, &bytes))
        .unwrap_or_default()
}

/// A body's text as markdown with quoted replies removed.
pub(super) fn body_markdown(text: &str, html: bool) -> String {
    let markdown = if html {
        match url::Url::parse("https://mail.google.com/") {
            Ok(base) => html_to_markdown(&strip_html_quotes(text), &base),
            Err(_) => text.to_owned(),
        }
    } else {
        text.replace("\r\n", "\n")
    };
    strip_quotes(&markdown)
}

/// Gmail, Outlook and Apple Mail wrap the quoted message in a container the converter
/// would keep as a blockquote; cutting at its start drops the quote and its attribution.
fn strip_html_quotes(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let markers = [
        "<div class=\"gmail_quote",
        "<blockquote class=\"gmail_quote",
        "<div id=\"appendonsend\"",
        "<div id=\"divrplyfwdmsg\"",
        "<blockquote type=\"cite\"",
    ];
    match markers.iter().filter_map(|m| lower.find(m)).min() {
        Some(cut) => html[..cut].to_owned(),
        None => html.to_owned(),
    }
}

/// Drops quoted lines (`>`), the attribution line just before them ("On … wrote:"), and
/// everything from an Outlook-style "-----Original Message-----" or forwarded header on.
pub(super) fn strip_quotes(text: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("-----Original Message-----")
            || trimmed.starts_with("________________________________")
        {
            break;
        }
        if trimmed.starts_with('>') {
            // The attribution ("On Tue, 1 May 2024, Ada <ada@example.com> wrote:"), possibly
            // wrapped onto two lines, goes with its quote.
            while kept.last().is_some_and(|l| l.trim().is_empty()) {
                kept.pop();
            }
            if kept.last().is_some_and(|l| is_attribution(l)) {
                kept.pop();
            } else if kept.len() >= 2
                && kept[kept.len() - 1].trim_end().ends_with("wrote:")
                && kept[kept.len() - 2].trim_start().starts_with("On ")
            {
                kept.truncate(kept.len() - 2);
            }
            continue;
        }
        kept.push(line);
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    while kept.first().is_some_and(|l| l.trim().is_empty()) {
        kept.remove(0);
    }
    kept.join("\n")
}

fn is_attribution(line: &str) -> bool {
    let line = line.trim();
    (line.starts_with("On ") && line.ends_with("wrote:"))
        || (line.starts_with("Le ") && line.ends_with("a écrit :"))
        || (line.starts_with("Am ") && line.ends_with("schrieb:"))
}

/// A text attachment's content as markdown (by name, then mime type).
pub(super) fn attachment_markdown(part: &MessagePart, bytes: &[u8]) -> Option<String> {
    let kind = text_kind(&part.filename, &part.mime_type)?;
    Some(to_markdown(kind, &decode_text(part, bytes)))
}

/// Whether an attachment is text-like (and so worth reading).
pub(super) fn is_text_attachment(part: &MessagePart) -> bool {
    text_kind(&part.filename, &part.mime_type).is_some()
}

/// One message, rendered.
#[derive(Debug, Default)]
pub(super) struct RenderedMessage {
    pub(super) from: String,
    pub(super) to: String,
    pub(super) cc: String,
    pub(super) date: String,
    pub(super) subject: String,
    pub(super) body: String,
    /// `(name, markdown or None when listed only)`.
    pub(super) attachments: Vec<(String, Option<String>)>,
}

/// The header fields of a message.
pub(super) fn rendered_headers(message: &Message) -> RenderedMessage {
    let field = |name: &str| {
        message
            .payload
            .as_ref()
            .and_then(|payload| header(payload, name))
            .map(|value| value.trim().to_owned())
            .unwrap_or_default()
    };
    RenderedMessage {
        from: field("From"),
        to: field("To"),
        cc: field("Cc"),
        date: field("Date"),
        subject: field("Subject"),
        ..Default::default()
    }
}

/// `internalDate` (epoch ms) as RFC 3339 UTC.
pub(super) fn internal_date(message: &Message) -> Option<String> {
    let millis: i64 = message.internal_date.as_deref()?.parse().ok()?;
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The addresses of a header value (`"Ada" <ada@example.com>, bob@example.com`).
pub(super) fn addresses(value: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut quoted = false;
    let mut current = String::new();
    for c in value.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => {
                found.extend(address_of(&current));
                current.clear();
            }
            _ => current.push(c),
        }
    }
    found.extend(address_of(&current));
    found
}

fn address_of(entry: &str) -> Option<String> {
    let entry = entry.trim();
    let address = match (entry.rfind('<'), entry.rfind('>')) {
        (Some(open), Some(close)) if open < close => &entry[open + 1..close],
        _ => entry,
    };
    let address = address.trim();
    address.contains('@').then(|| address.to_ascii_lowercase())
}

/// The thread's markdown and metadata.
pub(super) fn thread_markdown(
    subject: &str,
    participants: &[String],
    messages: &[RenderedMessage],
) -> String {
    let mut out = format!("# {subject}\n\n");
    if !participants.is_empty() {
        out.push_str(&format!("**Participants:** {}\n\n", participants.join(", ")));
    }
    for message in messages {
        let from = if message.from.is_empty() {
            "(unknown sender)"
        } else {
            message.from.as_str()
        };
        out.push_str(&format!("## {from}\n\n"));
        out.push_str(&format!("- **From:** {from}\n"));
        if !message.to.is_empty() {
            out.push_str(&format!("- **To:** {}\n", message.to));
        }
        if !message.cc.is_empty() {
            out.push_str(&format!("- **Cc:** {}\n", message.cc));
        }
        if !message.date.is_empty() {
            out.push_str(&format!("- **Date:** {}\n", message.date));
        }
        out.push('\n');
        if !message.body.is_empty() {
            out.push_str(&message.body);
            out.push_str("\n\n");
        }
        for (name, content) in &message.attachments {
            match content {
                Some(markdown) => {
                    out.push_str(&format!("### Attachment: {name}\n\n{}\n\n", markdown.trim_end()))
                }
                None => out.push_str(&format!("- Attachment: {name}\n")),
            }
        }
        if message.attachments.iter().any(|(_, c)| c.is_none()) {
            out.push('\n');
        }
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

/// The document's metadata.
pub(super) fn metadata(
    mailbox: &str,
    thread_id: &str,
    labels: &[String],
    participants: &[String],
    messages: &[RenderedMessage],
    first: Option<String>,
    last: Option<String>,
) -> Map<String, Value> {
    let attachments: Vec<&str> = messages
        .iter()
        .flat_map(|m| m.attachments.iter().map(|(name, _)| name.as_str()))
        .collect();
    let mut map = Map::new();
    map.insert("mailbox".into(), json!(mailbox));
    map.insert("thread_id".into(), json!(thread_id));
    map.insert("labels".into(), json!(labels));
    map.insert("participants".into(), json!(participants));
    map.insert("message_count".into(), json!(messages.len()));
    map.insert("first_message_at".into(), json!(first));
    map.insert("last_message_at".into(), json!(last));
    if !attachments.is_empty() {
        map.insert("attachments".into(), json!(attachments));
    }
    map
}
