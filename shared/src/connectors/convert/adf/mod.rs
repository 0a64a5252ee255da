//! Atlassian Document Format (Jira issue fields and comments, Confluence's ADF bodies) →
//! markdown: the block structure here, inline content and marks in [`inline`].

mod inline;
#[cfg(test)]
pub(crate) mod tests;

use serde_json::Value;

use super::fence_for;
use inline::{card_link, media_placeholder, plain_text, render_inline, render_inline_refs};

/// Nesting deeper than this is flattened to plain text (no unbounded recursion).
pub(super) const MAX_ADF_DEPTH: usize = 48;

/// Markdown for an ADF document (or any ADF node). Paragraphs, headings, bullet, ordered
/// and task lists (nested), code blocks with their language, blockquotes, rules, hard
/// breaks, marks (strong, em, code, link, strike), mentions, emoji, dates, status lozenges,
/// inline and block cards as links, tables as pipe tables, panels as blockquotes, media as
/// placeholders; unknown nodes give their text content. Never panics.
pub fn adf_to_markdown(adf: &Value) -> String {
    match adf {
        Value::String(text) => text.trim().to_owned(),
        Value::Array(nodes) => join_blocks(render_blocks(nodes, 0)),
        Value::Object(_) => join_blocks(render_block(adf, 0)),
        _ => String::new(),
    }
}

pub(super) fn node_type(node: &Value) -> &str {
    node.get("type").and_then(Value::as_str).unwrap_or_default()
}

pub(super) fn children(node: &Value) -> &[Value] {
    node.get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub(super) fn attr<'a>(node: &'a Value, name: &str) -> Option<&'a Value> {
    node.get("attrs")?.get(name)
}

pub(super) fn attr_str<'a>(node: &'a Value, name: &str) -> Option<&'a str> {
    attr(node, name)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

pub(super) fn is_inline(kind: &str) -> bool {
    matches!(
        kind,
        "text"
            | "hardBreak"
            | "mention"
            | "emoji"
            | "inlineCard"
            | "date"
            | "status"
            | "mediaInline"
            | "placeholder"
            | "inlineExtension"
    )
}

pub(super) fn is_list(kind: &str) -> bool {
    matches!(
        kind,
        "bulletList" | "orderedList" | "taskList" | "decisionList"
    )
}

pub(super) fn join_blocks(blocks: Vec<String>) -> String {
    blocks
        .into_iter()
        .filter(|block| !block.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Blocks of a node list; runs of inline nodes between blocks become paragraphs.
pub(super) fn render_blocks(nodes: &[Value], depth: usize) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut inline_run: Vec<&Value> = Vec::new();
    let flush = |run: &mut Vec<&Value>, blocks: &mut Vec<String>| {
        if !run.is_empty() {
            let text = render_inline_refs(run, depth);
            let text = text.trim();
            if !text.is_empty() {
                blocks.push(text.to_owned());
            }
            run.clear();
        }
    };
    for node in nodes {
        if is_inline(node_type(node)) {
            inline_run.push(node);
        } else {
            flush(&mut inline_run, &mut blocks);
            blocks.extend(render_block(node, depth));
        }
    }
    flush(&mut inline_run, &mut blocks);
    blocks
}

pub(super) fn render_block(node: &Value, depth: usize) -> Vec<String> {
    if depth > MAX_ADF_DEPTH {
        let text = plain_text(node);
        return if text.is_empty() { vec![] } else { vec![text] };
    }
    let next = depth + 1;
    let kind = node_type(node);
    let block = match kind {
        "doc" | "layoutSection" | "layoutColumn" | "bodiedExtension" | "listItem" | "tableRow"
        | "tableCell" | "tableHeader" => {
            return render_blocks(children(node), next);
        }
        "paragraph" => render_inline(children(node), next).trim().to_owned(),
        "heading" => render_heading(node, next),
        "bulletList" | "orderedList" | "taskList" | "decisionList" => render_list(node, next),
        "codeBlock" => render_code_block(node),
        "blockquote" => quote(&join_blocks(render_blocks(children(node), next))),
        "panel" => render_panel(node, next),
        "expand" | "nestedExpand" => {
            let mut blocks = Vec::new();
            if let Some(title) = attr_str(node, "title") {
                blocks.push(format!("**{}**", single_line(title)));
            }
            blocks.extend(render_blocks(children(node), next));
            join_blocks(blocks)
        }
        "rule" => "---".to_owned(),
        "table" => render_table(node, next),
        "mediaSingle" | "mediaGroup" => render_media(node, next),
        "media" => media_placeholder(node),
        "blockCard" | "embedCard" => card_link(node).unwrap_or_default(),
        "extension" => String::new(),
        kind if is_inline(kind) => render_inline(std::slice::from_ref(node), next)
            .trim()
            .to_owned(),
        _ => plain_text(node),
    };
    if block.trim().is_empty() {
        vec![]
    } else {
        vec![block]
    }
}

fn render_heading(node: &Value, depth: usize) -> String {
    let level = attr(node, "level")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 6) as usize;
    let text = single_line(&render_inline(children(node), depth));
    if text.is_empty() {
        String::new()
    } else {
        format!("{} {text}", "#".repeat(level))
    }
}

/// A fenced block longer than any backtick run in the code, its language reduced to
/// characters that cannot end the info string.
fn render_code_block(node: &Value) -> String {
    let code: String = children(node)
        .iter()
        .filter_map(|child| child.get("text").and_then(Value::as_str))
        .collect();
    let language: String = attr_str(node, "language")
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '#' | '_' | '.'))
        .take(32)
        .collect();
    let fence = fence_for(&code, '`');
    format!(
        "{fence}{language}\n{}\n{fence}",
        code.trim_end_matches(['\n', '\r'])
    )
}

/// A panel as a blockquote headed by its kind.
fn render_panel(node: &Value, depth: usize) -> String {
    let mut blocks = Vec::new();
    let label = match attr_str(node, "panelType") {
        Some("info") => Some("Info"),
        Some("note") => Some("Note"),
        Some("warning") => Some("Warning"),
        Some("success") => Some("Success"),
        Some("error") => Some("Error"),
        Some("tip") => Some("Tip"),
        _ => None,
    };
    if let Some(label) = label {
        blocks.push(format!("**{label}:**"));
    }
    blocks.extend(render_blocks(children(node), depth));
    quote(&join_blocks(blocks))
}

/// Media as placeholders (or images for external URLs), captions in italics.
fn render_media(node: &Value, depth: usize) -> String {
    let mut blocks = Vec::new();
    for child in children(node) {
        match node_type(child) {
            "media" | "mediaInline" => blocks.push(media_placeholder(child)),
            "caption" => {
                let caption = single_line(&render_inline(children(child), depth));
                if !caption.is_empty() {
                    blocks.push(format!("*{caption}*"));
                }
            }
            _ => blocks.extend(render_block(child, depth)),
        }
    }
    join_blocks(blocks)
}

/// A list of any kind, nested lists indented under their item.
pub(super) fn render_list(node: &Value, depth: usize) -> String {
    if depth > MAX_ADF_DEPTH {
        return plain_text(node);
    }
    let kind = node_type(node);
    let mut number = attr(node, "order")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .min(999_999_999);
    let mut lines: Vec<String> = Vec::new();
    for item in children(node) {
        let item_kind = node_type(item);
        if is_list(item_kind) {
            // A list directly inside a list (task lists nest this way): indent it.
            let nested = render_list(item, depth + 1);
            lines.extend(nested.lines().map(|line| indent_line(line, "  ")));
            continue;
        }
        let marker = match kind {
            "orderedList" => {
                let marker = format!("{number}. ");
                number = number.saturating_add(1);
                marker
            }
            "taskList" if attr_str(item, "state") == Some("DONE") => "- [x] ".to_owned(),
            "taskList" => "- [ ] ".to_owned(),
            _ => "- ".to_owned(),
        };
        let body = match item_kind {
            "taskItem" | "decisionItem" => render_blocks(children(item), depth + 1).join("\n\n"),
            "listItem" => {
                let mut body = String::new();
                for child in children(item) {
                    let rendered = join_blocks(render_block(child, depth + 1));
                    if rendered.is_empty() {
                        continue;
                    }
                    if !body.is_empty() {
                        body.push_str(if is_list(node_type(child)) {
                            "\n"
                        } else {
                            "\n\n"
                        });
                    }
                    body.push_str(&rendered);
                }
                body
            }
            _ => join_blocks(render_block(item, depth + 1)),
        };
        let indent = " ".repeat(marker.len());
        if body.is_empty() {
            lines.push(marker.trim_end().to_owned());
            continue;
        }
        for (index, line) in body.lines().enumerate() {
            if index == 0 {
                lines.push(format!("{marker}{line}"));
            } else {
                lines.push(indent_line(line, &indent));
            }
        }
    }
    lines.join("\n")
}

pub(super) fn indent_line(line: &str, indent: &str) -> String {
    if line.is_empty() {
        String::new()
    } else {
        format!("{indent}{line}")
    }
}

pub(super) fn quote(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    text.lines()
        .map(|line| {
            if line.is_empty() {
                ">".to_owned()
            } else {
                format!("> {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Newlines (and hard breaks) to spaces.
pub(super) fn single_line(text: &str) -> String {
    text.replace("\\\n", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn render_table(node: &Value, depth: usize) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for row in children(node) {
        if node_type(row) != "tableRow" {
            continue;
        }
        let mut cells = Vec::new();
        for cell in children(row) {
            let text = join_blocks(render_blocks(children(cell), depth + 1))
                .replace("\\\n", "<br>")
                .replace("\n\n", "<br>")
                .replace('\n', "<br>")
                .replace('|', "\\|");
            cells.push(text.trim().to_owned());
            let span = attr(cell, "colspan")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 64);
            for _ in 1..span {
                cells.push(String::new());
            }
        }
        rows.push(cells);
    }
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    if width == 0 {
        return String::new();
    }
    let line = |cells: &[String]| {
        let mut padded: Vec<&str> = cells.iter().map(String::as_str).collect();
        padded.resize(width, "");
        format!("| {} |", padded.join(" | "))
    };
    let mut lines = vec![line(&rows[0])];
    lines.push(format!("|{}", " --- |".repeat(width)));
    lines.extend(rows[1..].iter().map(|row| line(row)));
    lines.join("\n")
}
