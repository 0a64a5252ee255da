//! ADF conversion; the node builders are shared with the sources' tests.

use serde_json::{json, Map, Value};

use super::adf_to_markdown;

pub(crate) fn doc(content: Value) -> Value {
    json!({"version": 1, "type": "doc", "content": content})
}

pub(crate) fn text(value: &str) -> Value {
    json!({"type": "text", "text": value})
}

pub(crate) fn marked(value: &str, marks: Value) -> Value {
    json!({"type": "text", "text": value, "marks": marks})
}

pub(crate) fn paragraph(content: Value) -> Value {
    json!({"type": "paragraph", "content": content})
}

pub(crate) fn item(content: Value) -> Value {
    json!({"type": "listItem", "content": content})
}

#[test]
fn paragraphs_headings_and_marks() {
    let adf = doc(json!([
        {"type": "heading", "attrs": {"level": 2}, "content": [text("Overview")]},
        paragraph(json!([
            text("Hello "),
            marked("bold", json!([{"type": "strong"}])),
            text(", "),
            marked("it", json!([{"type": "em"}])),
            text(", "),
            marked("gone", json!([{"type": "strike"}])),
            text(", "),
            marked("x()", json!([{"type": "code"}])),
            text(" and "),
            marked("a link", json!([{"type": "link", "attrs": {"href": "https://example.com/a"}}])),
            text("."),
        ])),
        paragraph(json!([])),
        {"type": "rule"},
        paragraph(json!([text("line one"), {"type": "hardBreak"}, text("line two")])),
    ]));
    assert_eq!(
        adf_to_markdown(&adf),
        "## Overview\n\nHello **bold**, *it*, ~~gone~~, `x()` and \
         [a link](https://example.com/a).\n\n---\n\nline one\\\nline two"
    );
}

#[test]
fn adjacent_runs_merge_and_whitespace_stays_outside_marks() {
    let strong = json!([{"type": "strong"}]);
    let adf = paragraph(json!([
        marked("two ", strong.clone()),
        marked("parts ", strong),
        text("end"),
    ]));
    assert_eq!(adf_to_markdown(&adf), "**two parts** end");
    let nested = paragraph(json!([marked(
        "both",
        json!([{"type": "strong"}, {"type": "em"}, {"type": "link", "attrs": {"href": "https://x.test/"}}])
    )]));
    assert_eq!(adf_to_markdown(&nested), "[***both***](https://x.test/)");
}

#[test]
fn unsafe_links_keep_only_their_text() {
    let adf = paragraph(json!([marked(
        "click",
        json!([{"type": "link", "attrs": {"href": "javascript:alert(1)"}}])
    )]));
    assert_eq!(adf_to_markdown(&adf), "click");
    let spaced = paragraph(json!([marked(
        "doc",
        json!([{"type": "link", "attrs": {"href": "https://x.test/a b(c)"}}])
    )]));
    assert_eq!(adf_to_markdown(&spaced), "[doc](<https://x.test/a b(c)>)");
}

#[test]
fn nested_and_ordered_lists() {
    let adf = doc(json!([
        {"type": "bulletList", "content": [
            item(json!([
                paragraph(json!([text("one")])),
                {"type": "orderedList", "attrs": {"order": 3}, "content": [
                    item(json!([paragraph(json!([text("three")]))])),
                    item(json!([
                        paragraph(json!([text("four")])),
                        {"type": "codeBlock", "attrs": {"language": "sh"}, "content": [text("ls -la")]},
                    ])),
                ]},
            ])),
            item(json!([paragraph(json!([text("two")]))])),
        ]},
    ]));
    assert_eq!(
        adf_to_markdown(&adf),
        "- one\n  3. three\n  4. four\n\n     ```sh\n     ls -la\n     ```\n- two"
    );
}

#[test]
fn task_lists() {
    let adf = doc(json!([
        {"type": "taskList", "attrs": {"localId": "a"}, "content": [
            {"type": "taskItem", "attrs": {"localId": "1", "state": "DONE"}, "content": [text("done")]},
            {"type": "taskItem", "attrs": {"localId": "2", "state": "TODO"}, "content": [text("todo")]},
            {"type": "taskList", "attrs": {"localId": "b"}, "content": [
                {"type": "taskItem", "attrs": {"localId": "3", "state": "TODO"}, "content": [text("sub")]},
            ]},
        ]},
    ]));
    assert_eq!(adf_to_markdown(&adf), "- [x] done\n- [ ] todo\n  - [ ] sub");
}

#[test]
fn code_blocks_pick_a_longer_fence() {
    let adf = doc(json!([
        {"type": "codeBlock", "attrs": {"language": "rust"}, "content": [text("fn main() {}\n")]},
        {"type": "codeBlock", "content": [text("```\nnested\n```")]},
        {"type": "codeBlock", "attrs": {"language": "x\n```evil"}, "content": [text("y")]},
    ]));
    assert_eq!(
        adf_to_markdown(&adf),
        "```rust\nfn main() {}\n```\n\n````\n```\nnested\n```\n````\n\n```xevil\ny\n```"
    );
    let inline = paragraph(json!([marked("a`b", json!([{"type": "code"}]))]));
    assert_eq!(adf_to_markdown(&inline), "``a`b``");
}

#[test]
fn blockquotes_and_panels() {
    let adf = doc(json!([
        {"type": "blockquote", "content": [
            paragraph(json!([text("quoted")])),
            paragraph(json!([text("twice")])),
        ]},
        {"type": "panel", "attrs": {"panelType": "warning"}, "content": [
            paragraph(json!([text("careful")])),
        ]},
    ]));
    assert_eq!(
        adf_to_markdown(&adf),
        "> quoted\n>\n> twice\n\n> **Warning:**\n>\n> careful"
    );
}

#[test]
fn mentions_emoji_cards_dates_status_and_media() {
    let adf = doc(json!([
        paragraph(json!([
            {"type": "mention", "attrs": {"id": "abc", "text": "@Ada Lovelace"}},
            text(" "),
            {"type": "mention", "attrs": {"id": "def", "text": "Grace"}},
            text(" "),
            {"type": "emoji", "attrs": {"shortName": ":grinning:", "text": "😀"}},
            {"type": "emoji", "attrs": {"shortName": ":awthanks:"}},
            text(" "),
            {"type": "inlineCard", "attrs": {"url": "https://example.atlassian.net/browse/PROJ-1"}},
            text(" "),
            {"type": "date", "attrs": {"timestamp": "1714557600000"}},
            text(" "),
            {"type": "status", "attrs": {"text": "IN PROGRESS", "color": "blue"}},
        ])),
        {"type": "blockCard", "attrs": {"url": "https://example.com/spec"}},
        {"type": "mediaSingle", "attrs": {"layout": "center"}, "content": [
            {"type": "media", "attrs": {"id": "f1", "type": "file", "collection": "c", "alt": "diagram.png"}},
        ]},
        {"type": "mediaGroup", "content": [
            {"type": "media", "attrs": {"id": "f2", "type": "file", "collection": "c"}},
            {"type": "media", "attrs": {"type": "external", "url": "https://img.test/x.png"}},
        ]},
    ]));
    assert_eq!(
        adf_to_markdown(&adf),
        "@Ada Lovelace @Grace 😀:awthanks: \
         [https://example.atlassian.net/browse/PROJ-1](https://example.atlassian.net/browse/PROJ-1) \
         2024-05-01 [IN PROGRESS]\n\n\
         [https://example.com/spec](https://example.com/spec)\n\n\
         [media: diagram.png]\n\n[media]\n\n![image](https://img.test/x.png)"
    );
}

#[test]
fn tables_become_pipe_tables() {
    let cell = |kind: &str, value: &str| json!({"type": kind, "attrs": {}, "content": [paragraph(json!([text(value)]))]});
    let adf = doc(json!([
        {"type": "table", "attrs": {"isNumberColumnEnabled": false}, "content": [
            {"type": "tableRow", "content": [cell("tableHeader", "Name"), cell("tableHeader", "Value")]},
            {"type": "tableRow", "content": [cell("tableCell", "a|b"), cell("tableCell", "1")]},
            {"type": "tableRow", "content": [
                {"type": "tableCell", "attrs": {"colspan": 2}, "content": [
                    paragraph(json!([text("wide")])),
                    paragraph(json!([text("cell")])),
                ]},
            ]},
        ]},
    ]));
    assert_eq!(
        adf_to_markdown(&adf),
        "| Name | Value |\n| --- | --- |\n| a\\|b | 1 |\n| wide<br>cell |  |"
    );
}

#[test]
fn unknown_nodes_give_their_text() {
    let adf = doc(json!([
        {"type": "somethingNew", "content": [
            paragraph(json!([text("inner")])),
            {"type": "weirdInline", "text": "ignored", "content": [text("kept")]},
        ]},
        paragraph(json!([{"type": "futureInline", "content": [text("inline text")]}])),
        {"type": "expand", "attrs": {"title": "Details"}, "content": [paragraph(json!([text("hidden")]))]},
    ]));
    assert_eq!(
        adf_to_markdown(&adf),
        "inner kept\n\ninline text\n\n**Details**\n\nhidden"
    );
}

#[test]
fn never_panics_on_garbage_or_depth() {
    for garbage in [
        json!(null),
        json!(42),
        json!("plain text"),
        json!([1, "two", null]),
        json!({"type": 7, "content": "nope"}),
        json!({"type": "heading", "attrs": {"level": -3}, "content": [{"type": "text"}]}),
        json!({"type": "orderedList", "attrs": {"order": u64::MAX}, "content": [item(json!([paragraph(json!([text("x")]))])), item(json!([]))]}),
        json!({"type": "table", "content": [{"type": "tableRow", "content": [{"type": "tableCell", "attrs": {"colspan": 1_000_000}}]}]}),
        json!({"type": "text", "text": "  ", "marks": [{"type": "strong"}]}),
        json!({"type": "date", "attrs": {"timestamp": "99999999999999999999"}}),
        json!({"type": "paragraph", "content": [{"type": "text", "text": "é ", "marks": [{"type": "em"}]}]}),
    ] {
        let _ = adf_to_markdown(&garbage);
    }
    assert_eq!(adf_to_markdown(&json!("plain text")), "plain text");
    // Very deep nesting is flattened rather than recursed. (Built by hand: `json!`
    // would serialise the nested value again at every level.)
    let wrap = |kind: &str, child: Value| {
        let mut node = Map::new();
        node.insert("type".into(), Value::String(kind.into()));
        node.insert("content".into(), Value::Array(vec![child]));
        Value::Object(node)
    };
    let mut deep = paragraph(json!([text("bottom")]));
    for _ in 0..2_000 {
        deep = wrap("blockquote", deep);
    }
    let markdown = adf_to_markdown(&deep);
    assert!(markdown.contains("bottom"));
    let mut list = wrap(
        "bulletList",
        item(json!([paragraph(json!([text("leaf")]))])),
    );
    for _ in 0..500 {
        list = wrap("bulletList", wrap("listItem", list));
    }
    assert!(adf_to_markdown(&list).contains("leaf"));
    let mut inline = text("deep inline");
    for _ in 0..2_000 {
        inline = wrap("futureInline", inline);
    }
    let inline = wrap("paragraph", inline);
    assert_eq!(adf_to_markdown(&inline), "deep inline");
    // Avoid a recursive drop of the deep values in the test thread's small stack.
    std::mem::forget(deep);
    std::mem::forget(list);
    std::mem::forget(inline);
}
