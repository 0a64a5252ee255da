//! Site pages (`sitePage` with `canvasLayout`) as markdown: the title, then every web part
//! of every horizontal section's columns and of the vertical section, in order. Text web
//! parts' `innerHtml` through the shared HTML converter; standard web parts as their title,
//! description and searchable text (`serverProcessedContent`).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use url::Url;

use super::super::convert::html_to_markdown;
use super::super::document::Document;
use super::checkpoint::SiteState;
use super::convert::{author, utc, IdentitySet};

/// `page:<site id>:<page id>`.
pub(super) fn page_source_id(site: &str, page: &str) -> String {
    format!("page:{site}:{page}")
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// What a page's document shows, hashed (`eTag` moves on every publish).
pub(super) fn fingerprint(page: &Value) -> String {
    let mut hasher = Sha256::new();
    for key in ["eTag", "lastModifiedDateTime", "title", "webUrl"] {
        let part = text(page, key).unwrap_or_default();
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

/// A page's absolute URL: Graph gives `SitePages/x.aspx` relative to the site.
fn page_url(page: &Value, site: &SiteState) -> Option<Url> {
    let raw = text(page, "webUrl")?;
    if let Ok(url) = Url::parse(raw) {
        return Some(url);
    }
    Url::parse(&format!("{}/", site.url.trim_end_matches('/')))
        .ok()?
        .join(raw)
        .ok()
}

fn web_part_markdown(part: &Value, base: &Url) -> String {
    let kind = text(part, "@odata.type").unwrap_or_default();
    if kind.ends_with("textWebPart") || part.get("innerHtml").is_some() {
        return html_to_markdown(text(part, "innerHtml").unwrap_or_default(), base)
            .trim()
            .to_owned();
    }
    let Some(data) = part.get("data") else {
        return String::new();
    };
    let mut out: Vec<String> = Vec::new();
    if let Some(title) = text(data, "title") {
        out.push(format!("### {}", title.trim()));
    }
    if let Some(description) = text(data, "description") {
        out.push(description.trim().to_owned());
    }
    if let Some(content) = data.get("serverProcessedContent") {
        for (key, html) in [("searchablePlainTexts", false), ("htmlStrings", true)] {
            for entry in content.get(key).and_then(Value::as_array).into_iter().flatten() {
                if let Some(value) = text(entry, "value") {
                    out.push(if html {
                        html_to_markdown(value, base).trim().to_owned()
                    } else {
                        value.trim().to_owned()
                    });
                }
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out.join("\n\n")
}

/// Every web part of a canvas, in reading order.
fn canvas_markdown(canvas: &Value, base: &Url) -> Vec<String> {
    let mut parts = Vec::new();
    for section in canvas
        .get("horizontalSections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for column in section.get("columns").and_then(Value::as_array).into_iter().flatten() {
            for part in column.get("webparts").and_then(Value::as_array).into_iter().flatten() {
                parts.push(web_part_markdown(part, base));
            }
        }
    }
    if let Some(vertical) = canvas.get("verticalSection") {
        for part in vertical.get("webparts").and_then(Value::as_array).into_iter().flatten() {
            parts.push(web_part_markdown(part, base));
        }
    }
    parts.retain(|p| !p.is_empty());
    parts
}

/// A page (with `canvasLayout`) as a document.
pub(super) fn document(scope: &str, page: &Value, site: &SiteState) -> Option<Document> {
    let id = text(page, "id")?;
    let title = text(page, "title")
        .or_else(|| text(page, "name"))
        .unwrap_or("Untitled page")
        .trim()
        .to_owned();
    let url = page_url(page, site);
    let base = url
        .clone()
        .or_else(|| Url::parse(&site.url).ok())
        .or_else(|| Url::parse("https://sharepoint.invalid/").ok())?;
    let mut markdown = format!("# {title}\n");
    if let Some(description) = text(page, "description") {
        markdown.push_str(&format!("\n{}\n", description.trim()));
    }
    if let Some(canvas) = page.get("canvasLayout") {
        for part in canvas_markdown(canvas, &base) {
            markdown.push('\n');
            markdown.push_str(&part);
            markdown.push('\n');
        }
    }
    let mut metadata = Map::new();
    metadata.insert("kind".into(), json!("page"));
    metadata.insert("site".into(), json!(site.name));
    metadata.insert("site_url".into(), json!(site.url));
    metadata.insert("library".into(), json!("Site Pages"));
    if let Some(name) = text(page, "name") {
        metadata.insert("path".into(), json!(format!("/SitePages/{name}")));
    }
    if let Some(url) = &url {
        metadata.insert("web_url".into(), json!(url.as_str()));
    }
    let identity = |key: &str| {
        page.get(key)
            .and_then(|v| serde_json::from_value::<IdentitySet>(v.clone()).ok())
    };
    let (name, email) = author(identity("createdBy").as_ref());
    if let Some(name) = name {
        metadata.insert("author".into(), json!(name));
    }
    if let Some(email) = email {
        metadata.insert("author_email".into(), json!(email));
    }
    let (editor, _) = author(identity("lastModifiedBy").as_ref());
    if let Some(editor) = editor {
        metadata.insert("modified_by".into(), json!(editor));
    }
    let modified = utc(text(page, "lastModifiedDateTime"));
    if let Some(modified) = &modified {
        metadata.insert("modified_time".into(), json!(modified));
    }
    let source_id = page_source_id(&site.id, id);
    Some(Document {
        id: Document::stable_id(scope, &source_id),
        source: super::SOURCE.to_owned(),
        source_id,
        title: Some(title),
        url: url.map(String::from),
        markdown,
        metadata,
        updated_at: modified.unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned()),
        acl: Vec::new(),
        file: None,
    })
}
