//! MIME trees as Gmail's `format=full` answer shows them: a `MessagePart` per node with
//! `partId` (`""` at the root, `"0"`, `"1"`, nested `"0.1"`), `mimeType`, `filename`,
//! `headers`, `body {attachmentId?, size, data?}` (base64url) and `parts`. Like Gmail,
//! every part with a filename keeps its bytes apart (`attachmentId`, read with
//! `messages.attachments.get`), and so does a body flagged `apart` (large bodies).

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use serde_json::{json, Value};

/// A node of a message's MIME tree.
#[derive(Clone, Debug)]
pub enum Mime {
    /// A body part: `text/plain` or `text/html` in `charset`.
    Text {
        mime_type: &'static str,
        charset: &'static str,
        bytes: Vec<u8>,
        /// Stored apart like a large body (only an `attachmentId` in the tree).
        apart: bool,
    },
    /// `multipart/<subtype>` (`alternative`, `mixed`, `related`).
    Multi {
        subtype: &'static str,
        parts: Vec<Mime>,
    },
    /// An attachment (or inline image) with its file name.
    File {
        filename: String,
        mime_type: &'static str,
        bytes: Vec<u8>,
        inline: bool,
    },
}

impl Mime {
    pub fn plain(text: &str) -> Mime {
        Mime::Text {
            mime_type: "text/plain",
            charset: "UTF-8",
            bytes: text.as_bytes().to_vec(),
            apart: false,
        }
    }

    pub fn html(html: &str) -> Mime {
        Mime::Text {
            mime_type: "text/html",
            charset: "UTF-8",
            bytes: html.as_bytes().to_vec(),
            apart: false,
        }
    }

    pub fn alternative(plain: &str, html: &str) -> Mime {
        Mime::Multi {
            subtype: "alternative",
            parts: vec![Mime::plain(plain), Mime::html(html)],
        }
    }

    pub fn file(filename: &str, mime_type: &'static str, bytes: Vec<u8>) -> Mime {
        Mime::File {
            filename: filename.to_owned(),
            mime_type,
            bytes,
            inline: false,
        }
    }

    /// Every text the tree holds (bodies and text files), for the search.
    pub fn texts(&self) -> Vec<String> {
        match self {
            Mime::Text { bytes, .. } => vec![String::from_utf8_lossy(bytes).into_owned()],
            Mime::Multi { parts, .. } => parts.iter().flat_map(Mime::texts).collect(),
            Mime::File { .. } => Vec::new(),
        }
    }

    pub fn has_attachment(&self) -> bool {
        match self {
            Mime::Text { .. } => false,
            Mime::Multi { parts, .. } => parts.iter().any(Mime::has_attachment),
            Mime::File { inline, .. } => !inline,
        }
    }

    fn content_type(&self) -> String {
        match self {
            Mime::Text {
                mime_type, charset, ..
            } => format!("{mime_type}; charset=\"{charset}\""),
            Mime::Multi { subtype, .. } => {
                format!("multipart/{subtype}; boundary=\"00000000000{subtype}b0undary\"")
            }
            Mime::File {
                filename,
                mime_type,
                ..
            } => format!("{mime_type}; name=\"{filename}\""),
        }
    }

    fn mime_type(&self) -> String {
        match self {
            Mime::Text { mime_type, .. } | Mime::File { mime_type, .. } => (*mime_type).to_owned(),
            Mime::Multi { subtype, .. } => format!("multipart/{subtype}"),
        }
    }
}

/// Bytes kept apart from the tree, by attachment id.
pub type Apart = HashMap<String, Vec<u8>>;

/// The `payload` of a message: `root_headers` (From, To, Subject, …) on the root part.
pub fn payload(
    root: &Mime,
    root_headers: &[(&str, String)],
    message_id: &str,
    apart: &mut Apart,
) -> Value {
    let mut headers: Vec<Value> = root_headers
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    headers.push(json!({"name": "MIME-Version", "value": "1.0"}));
    part(root, "", headers, message_id, apart)
}

fn part(
    node: &Mime,
    part_id: &str,
    mut headers: Vec<Value>,
    message_id: &str,
    apart: &mut Apart,
) -> Value {
    headers.push(json!({"name": "Content-Type", "value": node.content_type()}));
    let child_id = |index: usize| {
        if part_id.is_empty() {
            index.to_string()
        } else {
            format!("{part_id}.{index}")
        }
    };
    let mut keep_apart = |bytes: &[u8]| {
        // Gmail's attachment ids are long opaque strings; this one is stable per part.
        let id = format!("ANGjdJ_{message_id}_{}", part_id.replace('.', "_"));
        apart.insert(id.clone(), bytes.to_vec());
        json!({"attachmentId": id, "size": bytes.len()})
    };
    match node {
        Mime::Text {
            bytes,
            apart: stored_apart,
            ..
        } => {
            headers.push(json!({"name": "Content-Transfer-Encoding", "value": "quoted-printable"}));
            let body = if *stored_apart {
                keep_apart(bytes)
            } else {
                json!({"size": bytes.len(), "data": URL_SAFE.encode(bytes)})
            };
            json!({"partId": part_id, "mimeType": node.mime_type(), "filename": "",
                "headers": headers, "body": body})
        }
        Mime::Multi { parts, .. } => {
            let children: Vec<Value> = parts
                .iter()
                .enumerate()
                .map(|(index, child)| part(child, &child_id(index), Vec::new(), message_id, apart))
                .collect();
            json!({"partId": part_id, "mimeType": node.mime_type(), "filename": "",
                "headers": headers, "body": {"size": 0}, "parts": children})
        }
        Mime::File {
            filename,
            bytes,
            inline,
            ..
        } => {
            let disposition = if *inline { "inline" } else { "attachment" };
            headers.push(json!({"name": "Content-Disposition",
                "value": format!("{disposition}; filename=\"{filename}\"")}));
            headers.push(json!({"name": "Content-Transfer-Encoding", "value": "base64"}));
            json!({"partId": part_id, "mimeType": node.mime_type(), "filename": filename,
                "headers": headers, "body": keep_apart(bytes)})
        }
    }
}

/// A generated thread's messages: `(from, body tree)` each; the fake adds the headers.
pub fn generated(index: usize, tag: &str) -> Vec<(String, Mime)> {
    let marker = |message: usize| format!("Marker {tag}-T{index}M{message}");
    let sender = |k: usize| format!("Person {k} <person{k}@example.com>");
    let quoted = |message: usize| {
        format!(
            "\n\nOn Wed, 1 May 2024 at 09:00, Person {index} <person{index}@example.com> wrote:\n> Quoted {tag}-T{index}M{message}\n> more quoted text\n"
        )
    };
    match index % 6 {
        // multipart/alternative, the Gmail web default for a new mail.
        0 => vec![(
            sender(index),
            Mime::alternative(
                &format!("{} in plain text.", marker(0)),
                &format!("<div dir=\"ltr\">{} in <b>HTML</b>.</div>", marker(0)),
            ),
        )],
        // HTML only (what Onyx indexes as empty).
        1 => vec![(
            sender(index),
            Mime::html(&format!(
                "<html><body><h2>Agenda {index}</h2><p>{} only as <i>HTML</i>.</p><ul><li>first</li><li>second</li></ul></body></html>",
                marker(0)
            )),
        )],
        // multipart/mixed with a text and a binary attachment.
        2 => vec![(
            sender(index),
            Mime::Multi {
                subtype: "mixed",
                parts: vec![
                    Mime::alternative(
                        &format!("{} with attachments.", marker(0)),
                        &format!("<p>{} with attachments.</p>", marker(0)),
                    ),
                    Mime::file(
                        &format!("notes-{index}.txt"),
                        "text/plain",
                        format!("Attachment text {tag}-T{index}\nsecond line\n").into_bytes(),
                    ),
                    Mime::file(
                        &format!("scan-{index}.pdf"),
                        "application/pdf",
                        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\nbinary".to_vec(),
                    ),
                ],
            },
        )],
        // A plain conversation with a quoted reply.
        3 => vec![
            (sender(index), Mime::plain(&format!("{} asks a question.", marker(0)))),
            (
                sender(index + 1),
                Mime::plain(&format!("{} answers.{}", marker(1), quoted(0))),
            ),
        ],
        // Nested mixed → related → alternative, an inline image, a CSV, a Latin-1 body.
        4 => vec![(
            sender(index),
            Mime::Multi {
                subtype: "mixed",
                parts: vec![
                    Mime::Multi {
                        subtype: "related",
                        parts: vec![
                            Mime::Multi {
                                subtype: "alternative",
                                parts: vec![
                                    Mime::Text {
                                        mime_type: "text/plain",
                                        charset: "ISO-8859-1",
                                        bytes: latin1(&format!("{} at the Café.", marker(0))),
                                        apart: false,
                                    },
                                    Mime::html(&format!("<p>{} at the Café.</p><img src=\"cid:logo\">", marker(0))),
                                ],
                            },
                            Mime::File {
                                filename: "logo.png".into(),
                                mime_type: "image/png",
                                bytes: b"\x89PNG\r\n\x1a\nlogo".to_vec(),
                                inline: true,
                            },
                        ],
                    },
                    Mime::file(
                        &format!("figures-{index}.csv"),
                        "text/csv",
                        format!("month,total\nMay,{index}\n").into_bytes(),
                    ),
                ],
            },
        )],
        // Three messages; the last an HTML-only reply quoting in Gmail's own markup.
        _ => vec![
            (sender(index), Mime::plain(&format!("{} opens.", marker(0)))),
            (sender(index + 1), Mime::plain(&format!("{} follows up.{}", marker(1), quoted(0)))),
            (
                sender(index + 2),
                Mime::html(&format!(
                    "<div dir=\"ltr\">{} closes.</div><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Wed, 1 May 2024, Person wrote:</div><blockquote class=\"gmail_quote\">Quoted {tag}-T{index}M1</blockquote></div>",
                    marker(2)
                )),
            ),
        ],
    }
}

fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}
