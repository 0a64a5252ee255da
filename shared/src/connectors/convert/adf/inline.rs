//! ADF inline content: text with its marks, mentions, emoji, dates, status lozenges, cards
//! and media placeholders, and the plain-text fallback for unknown or too deep nodes.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{attr, attr_str, children, is_inline, node_type, single_line, MAX_ADF_DEPTH};

pub(super) fn media_placeholder(node: &Value) -> String {
    let alt = attr_str(node, "alt").map(single_line);
    if attr_str(node, "type") == Some("external") {
        if let Some(url) = attr_str(node, "url").and_then(safe_href) {
            return format!(
                "![{}]({url})",
                escape_brackets(alt.as_deref().unwrap_or("image"))
            );
        }
    }
    match alt {
        Some(alt) => format!("[media: {}]", escape_brackets(&alt)),
        None => "[media]".to_owned(),
    }
}

/// An inline or block card: its URL as a link (or its JSON-LD name and URL).
pub(super) fn card_link(node: &Value) -> Option<String> {
    if let Some(url) = attr_str(node, "url") {
        let href = safe_href(url)?;
        return Some(format!("[{}]({href})", escape_brackets(url)));
    }
    let data = attr(node, "data")?;
    let url = data.get("url").and_then(Value::as_str)?;
    let href = safe_href(url)?;
    let name = data
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.trim().is_empty())
        .unwrap_or(url);
    Some(format!("[{}]({href})", escape_brackets(&single_line(name))))
}

/// A link target we are willing to emit: http(s), mailto or relative; spaces and
/// parentheses wrapped in `<…>`.
pub(super) fn safe_href(href: &str) -> Option<String> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let lower = href.to_ascii_lowercase();
    let allowed = lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:")
        || lower.starts_with('/')
        || lower.starts_with('#');
    if !allowed || href.chars().any(char::is_control) {
        return None;
    }
    if href.contains([' ', '(', ')', '<', '>']) {
        Some(format!(
            "<{}>",
            href.replace('<', "%3C").replace('>', "%3E")
        ))
    } else {
        Some(href.to_owned())
    }
}

pub(super) fn escape_brackets(text: &str) -> String {
    text.replace('[', "\\[").replace(']', "\\]")
}

#[derive(Clone, Default, PartialEq)]
pub(super) struct Marks {
    strong: bool,
    em: bool,
    strike: bool,
    code: bool,
    link: Option<String>,
}

impl Marks {
    fn of(node: &Value) -> Self {
        let mut marks = Marks::default();
        for mark in node
            .get("marks")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            match node_type(mark) {
                "strong" => marks.strong = true,
                "em" => marks.em = true,
                "strike" => marks.strike = true,
                "code" => marks.code = true,
                "link" => marks.link = attr_str(mark, "href").and_then(safe_href),
                _ => {}
            }
        }
        marks
    }

    fn apply(&self, text: &str) -> String {
        let core = text.trim();
        if core.is_empty() {
            return text.to_owned();
        }
        let lead = &text[..text.len() - text.trim_start().len()];
        let trail = &text[text.trim_end().len()..];
        let mut out = if self.code {
            code_span(core)
        } else {
            core.to_owned()
        };
        if self.strike {
            out = format!("~~{out}~~");
        }
        if self.em {
            out = format!("*{out}*");
        }
        if self.strong {
            out = format!("**{out}**");
        }
        if let Some(href) = &self.link {
            let label = if self.code {
                out
            } else {
                escape_brackets(&out)
            };
            out = format!("[{label}]({href})");
        }
        format!("{lead}{out}{trail}")
    }
}

pub(super) fn code_span(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    if text.starts_with('`') || text.ends_with('`') {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

pub(super) fn render_inline(nodes: &[Value], depth: usize) -> String {
    let refs: Vec<&Value> = nodes.iter().collect();
    render_inline_refs(&refs, depth)
}

/// Inline content; adjacent text with the same marks is merged before the marks are
/// written, so `**a****b**` never happens.
pub(super) fn render_inline_refs(nodes: &[&Value], depth: usize) -> String {
    let mut out = String::new();
    let mut pending: Option<(String, Marks)> = None;
    for node in nodes {
        if node_type(node) == "text" {
            let text = node.get("text").and_then(Value::as_str).unwrap_or_default();
            let marks = Marks::of(node);
            match &mut pending {
                Some((buffer, current)) if *current == marks => buffer.push_str(text),
                _ => {
                    if let Some((buffer, current)) = pending.take() {
                        out.push_str(&current.apply(&buffer));
                    }
                    pending = Some((text.to_owned(), marks));
                }
            }
            continue;
        }
        if let Some((buffer, current)) = pending.take() {
            out.push_str(&current.apply(&buffer));
        }
        out.push_str(&render_inline_node(node, depth));
    }
    if let Some((buffer, current)) = pending.take() {
        out.push_str(&current.apply(&buffer));
    }
    out
}

pub(super) fn render_inline_node(node: &Value, depth: usize) -> String {
    match node_type(node) {
        "hardBreak" => "\\\n".to_owned(),
        "mention" => {
            let text = attr_str(node, "text").unwrap_or("user");
            if text.starts_with('@') {
                text.to_owned()
            } else {
                format!("@{text}")
            }
        }
        "emoji" => attr_str(node, "text")
            .or_else(|| attr_str(node, "shortName"))
            .unwrap_or_default()
            .to_owned(),
        "inlineCard" => card_link(node).unwrap_or_default(),
        "date" => {
            let millis = match attr(node, "timestamp") {
                Some(Value::String(text)) => text.trim().parse::<i64>().ok(),
                Some(Value::Number(number)) => number.as_i64(),
                _ => None,
            };
            millis
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .map(|time| time.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        }
        "status" => attr_str(node, "text")
            .map(|text| format!("[{}]", escape_brackets(&single_line(text))))
            .unwrap_or_default(),
        "mediaInline" => media_placeholder(node),
        "placeholder" | "inlineExtension" => String::new(),
        _ if depth > MAX_ADF_DEPTH => plain_text(node),
        _ => {
            // An unknown inline node: its inline content, else its text.
            let content = children(node);
            if content.is_empty() {
                plain_text(node)
            } else {
                render_inline(content, depth + 1)
            }
        }
    }
}

/// The text content of a node, without recursion (for unknown and too deep nodes).
pub(super) fn plain_text(node: &Value) -> String {
    let mut pieces: Vec<&str> = Vec::new();
    let mut stack: Vec<&Value> = vec![node];
    while let Some(current) = stack.pop() {
        match node_type(current) {
            "text" => {
                if let Some(text) = current.get("text").and_then(Value::as_str) {
                    pieces.push(text);
                }
            }
            "mention" | "emoji" | "status" => {
                if let Some(text) = attr_str(current, "text") {
                    pieces.push(" ");
                    pieces.push(text);
                    pieces.push(" ");
                }
            }
            "hardBreak" => pieces.push(" "),
            _ => {
                if !is_inline(node_type(current)) {
                    pieces.push(" ");
                }
                stack.extend(children(current).iter().rev());
            }
        }
    }
    pieces
        .concat()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
