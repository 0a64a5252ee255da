//! Confluence storage format → markdown.
//!
//! The storage format is XML (XHTML plus `ac:` and `ri:` elements, macro bodies in CDATA), so
//! it is read with an XML parser into a small tree ([`xml`]), the Confluence elements are
//! rewritten into plain HTML ([`render`]: code macros into `<pre><code class="language-…">`,
//! panels into blockquotes, `ac:link` into anchors, images into images or placeholders,
//! unknown macros into their body), and htmd turns that HTML into markdown. Text keeps its XML
//! escaping all the way to the HTML parser, so HTML named entities (`&nbsp;`) need no table
//! here.

mod links;
mod macros;
mod render;
#[cfg(test)]
mod tests;
mod xml;

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use url::Url;

use render::{Renderer, DROPPED_ELEMENTS};
use xml::parse_storage;

/// Deeper storage nesting is flattened (its text kept): htmd walks the tree recursively.
pub(crate) const MAX_STORAGE_DEPTH: usize = 64;

/// What a storage body is relative to: the site, and the page's space and id (for links to
/// pages without a space key, and to attachments).
pub(crate) struct StorageContext<'a> {
    pub(crate) base: &'a Url,
    pub(crate) space_key: Option<&'a str>,
    pub(crate) page_id: Option<&'a str>,
}

/// Converts a storage-format body to markdown. Links to pages and attachments are made
/// absolute against `base_url` (the site root). Malformed input is converted as well as it
/// can be (lost structure, never lost text); never panics.
pub fn storage_to_markdown(storage: &str, base_url: &Url) -> String {
    let context = StorageContext {
        base: base_url,
        space_key: None,
        page_id: None,
    };
    convert(storage, &context, true)
        .or_else(|_| convert(storage, &context, false))
        .unwrap_or_default()
}

/// Strict: malformed XML is an error. Otherwise the parser recovers.
pub(crate) fn convert(
    storage: &str,
    context: &StorageContext<'_>,
    strict: bool,
) -> Result<String, String> {
    let tree = parse_storage(storage, strict)?;
    let mut renderer = Renderer {
        context,
        tables: Vec::new(),
        out: String::with_capacity(storage.len() + 64),
    };
    renderer.children(&tree);
    html_to_markdown(&renderer.out)
}

fn converter() -> &'static htmd::HtmlToMarkdown {
    static CONVERTER: OnceLock<htmd::HtmlToMarkdown> = OnceLock::new();
    CONVERTER.get_or_init(|| {
        htmd::HtmlToMarkdown::builder()
            .options(htmd::options::Options {
                bullet_list_marker: htmd::options::BulletListMarker::Dash,
                ul_bullet_spacing: 1,
                ol_number_spacing: 1,
                ..htmd::options::Options::default()
            })
            .skip_tags(DROPPED_ELEMENTS.to_vec())
            .build()
    })
}

/// htmd is third-party code fed user content: a panic loses this page, not the batch.
fn html_to_markdown(html: &str) -> Result<String, String> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| converter().convert(html))) {
        Ok(Ok(markdown)) => Ok(markdown.trim().to_owned()),
        Ok(Err(error)) => Err(format!("html to markdown failed: {error}")),
        Err(_) => Err("html to markdown panicked".into()),
    }
}
