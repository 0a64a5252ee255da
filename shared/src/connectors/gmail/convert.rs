//! The provider's items as documents. Its body is markdown already; a provider that
//! answers HTML or its own rich text converts here (shared converters in
//! `connectors::convert`).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connectors::document::Document;

/// One item as the API lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct Item {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// `scope` is the connector's id space (`connector:<id>`).
pub fn document(scope: &str, base_url: &str, item: &Item) -> Document {
    let mut metadata = Map::new();
    metadata.insert("gmail_id".into(), Value::String(item.id.clone()));
    Document {
        id: Document::stable_id(scope, &item.id),
        source: super::SOURCE.into(),
        source_id: item.id.clone(),
        title: Some(item.title.clone()),
        url: Some(format!("{base_url}/items/{}", item.id)),
        markdown: format!("# {}\n\n{}\n", item.title, item.body.trim()),
        metadata,
        updated_at: item.updated_at.clone(),
        acl: Vec::new(),
        file: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_becomes_a_markdown_document_with_a_stable_id() {
        let item = Item {
            id: "7".into(),
            title: "Seven".into(),
            body: "Body.\n".into(),
            updated_at: "2024-05-01T10:00:00Z".into(),
        };
        let document = document("connector:c1", "https://api.example.com", &item);
        assert_eq!(document.markdown, "# Seven\n\nBody.\n");
        assert_eq!(document.source_id, "7");
        assert_eq!(document.id, Document::stable_id("connector:c1", "7"));
        assert_eq!(
            document.url.as_deref(),
            Some("https://api.example.com/items/7")
        );
    }
}
