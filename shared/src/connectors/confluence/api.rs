//! The REST answers Confluence gives (only the fields read).

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
pub(super) struct SearchPage {
    #[serde(default)]
    pub(super) results: Vec<Value>,
    #[serde(default, rename = "_links")]
    pub(super) links: PageLinks,
}

#[derive(Default, Deserialize)]
pub(super) struct PageLinks {
    #[serde(default)]
    pub(super) base: Option<String>,
    #[serde(default)]
    pub(super) next: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Content {
    #[serde(deserialize_with = "string_or_number")]
    pub(super) id: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) space: Option<Space>,
    #[serde(default)]
    pub(super) version: Option<Version>,
    #[serde(default)]
    pub(super) ancestors: Vec<Ancestor>,
    #[serde(default)]
    pub(super) body: Option<Body>,
    #[serde(default)]
    pub(super) metadata: Option<ContentMetadata>,
    #[serde(default, rename = "_links")]
    pub(super) links: ContentLinks,
}

pub(super) fn string_or_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(id) => Ok(id),
        Value::Number(id) => Ok(id.to_string()),
        _ => Err(serde::de::Error::custom("the id is not a string")),
    }
}

#[derive(Deserialize)]
pub(super) struct Space {
    #[serde(default)]
    pub(super) key: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Version {
    #[serde(default)]
    pub(super) when: Option<String>,
    #[serde(default)]
    pub(super) number: Option<u64>,
    #[serde(default)]
    pub(super) by: Option<User>,
}

#[derive(Deserialize)]
pub(super) struct User {
    #[serde(default, rename = "displayName")]
    pub(super) display_name: Option<String>,
    #[serde(default, rename = "publicName")]
    pub(super) public_name: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Ancestor {
    #[serde(default)]
    pub(super) title: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct Body {
    #[serde(default)]
    pub(super) storage: Option<StorageBody>,
}

#[derive(Deserialize)]
pub(super) struct StorageBody {
    #[serde(default)]
    pub(super) value: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ContentMetadata {
    #[serde(default)]
    pub(super) labels: Option<Labels>,
}

#[derive(Deserialize)]
pub(super) struct Labels {
    #[serde(default)]
    pub(super) results: Vec<Label>,
}

#[derive(Deserialize)]
pub(super) struct Label {
    #[serde(default)]
    pub(super) name: Option<String>,
}

#[derive(Default, Deserialize)]
pub(super) struct ContentLinks {
    #[serde(default)]
    pub(super) webui: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct AttachmentPage {
    #[serde(default)]
    pub(super) results: Vec<Attachment>,
    #[serde(default, rename = "_links")]
    pub(super) links: PageLinks,
}

#[derive(Deserialize)]
pub(super) struct Attachment {
    #[serde(default)]
    pub(super) title: Option<String>,
    #[serde(default)]
    pub(super) extensions: Option<AttachmentExtensions>,
    #[serde(default)]
    pub(super) metadata: Option<AttachmentMetadata>,
    #[serde(default, rename = "_links")]
    pub(super) links: AttachmentLinks,
}

impl Attachment {
    pub(super) fn media_type(&self) -> Option<&str> {
        self.extensions
            .as_ref()
            .and_then(|extensions| extensions.media_type.as_deref())
            .or_else(|| {
                self.metadata
                    .as_ref()
                    .and_then(|metadata| metadata.media_type.as_deref())
            })
    }
}

#[derive(Deserialize)]
pub(super) struct AttachmentExtensions {
    #[serde(default, rename = "mediaType")]
    pub(super) media_type: Option<String>,
    #[serde(default, rename = "fileSize")]
    pub(super) file_size: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct AttachmentMetadata {
    #[serde(default, rename = "mediaType")]
    pub(super) media_type: Option<String>,
}

#[derive(Default, Deserialize)]
pub(super) struct AttachmentLinks {
    #[serde(default)]
    pub(super) download: Option<String>,
}
