//! A Confluence page or blog post (its storage-format body and metadata) as a document.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::super::convert::storage::{convert, StorageContext};
use super::super::document::Document;
use super::api::{Content, Version};
use super::{ConfluenceConnector, SOURCE};

impl ConfluenceConnector {
    /// Turns one search result into a document (or the reason it cannot be one).
    pub(super) fn document(&self, content: &Content, links_base: &str) -> Result<Document, String> {
        let storage = content
            .body
            .as_ref()
            .and_then(|body| body.storage.as_ref())
            .and_then(|storage| storage.value.as_deref())
            .ok_or_else(|| "the content has no storage-format body".to_owned())?;
        let version = content
            .version
            .as_ref()
            .ok_or_else(|| "the content has no version".to_owned())?;
        let when = version
            .when
            .as_deref()
            .and_then(|when| DateTime::parse_from_rfc3339(when).ok())
            .ok_or_else(|| "the content's version has no readable time".to_owned())?;
        let space_key = content
            .space
            .as_ref()
            .and_then(|space| space.key.as_deref());
        let context = StorageContext {
            base: &self.config.base_url,
            space_key,
            page_id: Some(&content.id),
        };
        let body = convert(storage, &context, true)
            .map_err(|error| format!("the storage format could not be converted: {error}"))?;
        let title = content
            .title
            .as_deref()
            .map(str::trim)
            .filter(|title| !title.is_empty());
        let markdown = match (title, body.is_empty()) {
            (Some(title), true) => format!("# {}", heading_text(title)),
            (Some(title), false) => format!("# {}\n\n{body}", heading_text(title)),
            (None, _) => body,
        };

        let updated_at = when
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let metadata = metadata(content, version, &updated_at);

        Ok(Document {
            id: Document::stable_id(&self.scope, &content.id),
            source: SOURCE.into(),
            source_id: content.id.clone(),
            title: title.map(str::to_owned),
            url: content
                .links
                .webui
                .as_deref()
                .filter(|webui| webui.starts_with('/'))
                .map(|webui| format!("{links_base}{webui}")),
            markdown,
            metadata,
            updated_at,
            acl: vec![],
        })
    }
}

/// The content's facts: type, space, ancestors, labels, version, time and author.
fn metadata(content: &Content, version: &Version, updated_at: &str) -> Map<String, Value> {
    let mut metadata = Map::new();
    metadata.insert("type".into(), json!(content.kind));
    metadata.insert(
        "space_key".into(),
        json!(content
            .space
            .as_ref()
            .and_then(|space| space.key.as_deref())),
    );
    metadata.insert(
        "space_name".into(),
        json!(content
            .space
            .as_ref()
            .and_then(|space| space.name.as_deref())),
    );
    metadata.insert(
        "ancestors".into(),
        json!(content
            .ancestors
            .iter()
            .filter_map(|ancestor| ancestor.title.as_deref())
            .collect::<Vec<_>>()),
    );
    metadata.insert(
        "labels".into(),
        json!(content
            .metadata
            .as_ref()
            .and_then(|metadata| metadata.labels.as_ref())
            .map(|labels| labels
                .results
                .iter()
                .filter_map(|label| label.name.as_deref())
                .collect::<Vec<_>>())
            .unwrap_or_default()),
    );
    metadata.insert("version".into(), json!(version.number));
    metadata.insert("last_modified".into(), json!(updated_at));
    metadata.insert(
        "author".into(),
        json!(version
            .by
            .as_ref()
            .and_then(|by| by.display_name.as_deref().or(by.public_name.as_deref()))),
    );
    metadata
}

/// A heading's text on one line.
pub(super) fn heading_text(title: &str) -> String {
    title.split_whitespace().collect::<Vec<_>>().join(" ")
}
