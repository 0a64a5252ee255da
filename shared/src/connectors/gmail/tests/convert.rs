use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use serde_json::{json, Value};

use super::super::client::{decode_base64url, MessagePart};
use super::super::convert::{
    addresses, attachments, body_markdown, body_source, inline_text, strip_quotes, BodySource,
};

fn b64(text: &str) -> String {
    URL_SAFE.encode(text.as_bytes())
}

fn part(value: Value) -> MessagePart {
    serde_json::from_value(value).unwrap()
}

fn leaf(mime: &str, text: &str) -> Value {
    json!({"partId": "0", "mimeType": mime, "filename": "",
        "headers": [{"name": "Content-Type", "value": format!("{mime}; charset=\"UTF-8\"")}],
        "body": {"size": text.len(), "data": b64(text)}})
}

#[test]
fn base64url_is_read_with_or_without_padding_and_in_either_alphabet() {
    let bytes = [0xfbu8, 0xff, 0xbf, b'a'];
    let padded = URL_SAFE.encode(bytes);
    assert!(padded.contains('-') || padded.contains('_'));
    assert_eq!(decode_base64url(&padded).unwrap(), bytes);
    assert_eq!(decode_base64url(padded.trim_end_matches('=')).unwrap(), bytes);
    let standard = base64::engine::general_purpose::STANDARD.encode(bytes);
    assert_eq!(decode_base64url(&standard).unwrap(), bytes);
    assert!(decode_base64url("*not base64*").is_none());
}

#[test]
fn multipart_alternative_prefers_the_plain_part() {
    let payload = part(json!({"mimeType": "multipart/alternative", "filename": "", "headers": [],
        "body": {"size": 0}, "parts": [leaf("text/plain", "Plain body"), leaf("text/html", "<p>HTML body</p>")]}));
    match body_source(&payload) {
        BodySource::Inline { part, html } => {
            assert!(!html);
            assert_eq!(inline_text(part), "Plain body");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn html_only_mail_becomes_markdown_not_empty() {
    let payload = part(leaf(
        "text/html",
        "<div dir=\"ltr\"><h2>Launch</h2><p>The <b>launch</b> moved to <a href=\"https://example.com/plan\">Friday</a>.</p></div>",
    ));
    let BodySource::Inline { part, html: true } = body_source(&payload) else {
        panic!("an HTML body");
    };
    let markdown = body_markdown(&inline_text(part), true);
    assert!(markdown.contains("## Launch"), "{markdown}");
    assert!(markdown.contains("**launch**"), "{markdown}");
    assert!(markdown.contains("[Friday](https://example.com/plan)"), "{markdown}");
}

#[test]
fn nested_mixed_trees_find_the_body_and_every_attachment() {
    let payload = part(json!({"mimeType": "multipart/mixed", "filename": "", "headers": [], "body": {"size": 0},
        "parts": [
            {"partId": "0", "mimeType": "multipart/related", "filename": "", "headers": [], "body": {"size": 0},
             "parts": [
                {"partId": "0.0", "mimeType": "multipart/alternative", "filename": "", "headers": [], "body": {"size": 0},
                 "parts": [leaf("text/plain", "Nested plain"), leaf("text/html", "<p>Nested</p>")]},
                {"partId": "0.1", "mimeType": "image/png", "filename": "logo.png", "headers": [],
                 "body": {"attachmentId": "ATT1", "size": 2048}}
             ]},
            {"partId": "1", "mimeType": "text/plain", "filename": "notes.txt",
             "headers": [{"name": "Content-Disposition", "value": "attachment; filename=\"notes.txt\""}],
             "body": {"size": 5, "data": b64("notes")}},
            {"partId": "2", "mimeType": "application/pdf", "filename": "report.pdf", "headers": [],
             "body": {"attachmentId": "ATT2", "size": 90000}}
        ]}));
    let BodySource::Inline { part, html: false } = body_source(&payload) else {
        panic!("the nested plain part");
    };
    assert_eq!(inline_text(part), "Nested plain");
    let names: Vec<&str> = attachments(&payload)
        .iter()
        .map(|a| a.part.filename.as_str())
        .collect();
    assert_eq!(names, ["logo.png", "notes.txt", "report.pdf"]);
    assert_eq!(attachments(&payload)[2].size, 90000);
}

#[test]
fn a_body_stored_apart_is_found_by_its_attachment_id() {
    let payload = part(json!({"mimeType": "text/plain", "filename": "", "headers": [],
        "body": {"attachmentId": "BIG", "size": 4000000}}));
    assert!(matches!(
        body_source(&payload),
        BodySource::Apart { attachment_id: "BIG", html: false, .. }
    ));
}

#[test]
fn latin1_parts_are_decoded_by_their_charset() {
    let payload = part(json!({"mimeType": "text/plain", "filename": "",
        "headers": [{"name": "Content-Type", "value": "text/plain; charset=ISO-8859-1"}],
        "body": {"size": 5, "data": URL_SAFE.encode([b'C', b'a', b'f', 0xe9])}}));
    assert_eq!(inline_text(&payload), "Café");
}

#[test]
fn quoted_replies_and_their_attribution_are_stripped() {
    let reply = "Sounds good, see you then.\r\n\r\nOn Tue, 7 May 2024 at 10:00, Ada <ada@example.com> wrote:\r\n> Shall we meet at ten?\r\n> -- Ada\r\n";
    assert_eq!(body_markdown(reply, false), "Sounds good, see you then.");
    let wrapped = "Yes.\n\nOn Tue, 7 May 2024 at 10:00, Ada Lovelace\n<ada@example.com> wrote:\n\n> Earlier\n";
    assert_eq!(strip_quotes(wrapped), "Yes.");
    let outlook = "Agreed.\n\n-----Original Message-----\nFrom: Bob\nOld text";
    assert_eq!(strip_quotes(outlook), "Agreed.");
    let html = "<div>New answer</div><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Mon, Bob wrote:</div><blockquote class=\"gmail_quote\">old</blockquote></div>";
    let markdown = body_markdown(html, true);
    assert!(markdown.contains("New answer"), "{markdown}");
    assert!(!markdown.contains("old") && !markdown.contains("wrote"), "{markdown}");
    // Inline `>` inside a sentence is not a quote.
    assert_eq!(strip_quotes("a > b holds"), "a > b holds");
}

#[test]
fn addresses_are_read_from_display_names_and_lists() {
    assert_eq!(
        addresses("\"Lovelace, Ada\" <Ada@Example.com>, bob@example.com, Carol <carol@example.org>"),
        ["ada@example.com", "bob@example.com", "carol@example.org"]
    );
    assert!(addresses("undisclosed-recipients:;").is_empty());
}
