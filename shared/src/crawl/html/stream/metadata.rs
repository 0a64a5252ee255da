//! What a page says about itself, read from every element, chrome included (navigation is
//! how a crawl finds pages): title, meta description and language, canonical and base
//! URLs, and the links with their markdown targets.

use lol_html::html_content::Element;

use super::{
    attribute, collapse_whitespace, http_join, markdown_target, non_empty, Converter, Tag,
    TitleState, MAX_HREF_LEN,
};

impl Converter {
    /// Metadata and links are read everywhere, chrome included: navigation is how a crawl
    /// finds pages. Returns a link's markdown target.
    pub(super) fn read_metadata_and_links(
        &mut self,
        tag: Tag,
        el: &Element<'_, '_>,
    ) -> Option<String> {
        match tag {
            Tag::Anchor | Tag::Area => return self.link(el),
            Tag::Title => {
                if self.title_state == TitleState::NotSeen {
                    self.title_state = TitleState::Reading;
                } else {
                    self.title_state = TitleState::Done;
                }
            }
            Tag::Meta => self.meta(el),
            Tag::Link => {
                let canonical = el.get_attribute("rel").is_some_and(|rel| {
                    rel.split_ascii_whitespace()
                        .any(|token| token.eq_ignore_ascii_case("canonical"))
                });
                if canonical && self.extracted.canonical_href.is_none() {
                    self.extracted.canonical_href = attribute(el, "href");
                }
            }
            Tag::Base if !self.base_seen => {
                if let Some(href) = attribute(el, "href") {
                    self.base_seen = true;
                    if let Some(base) = http_join(&self.page, &href) {
                        self.base = base;
                    }
                }
            }
            Tag::Html if self.extracted.language.is_none() => {
                self.extracted.language = attribute(el, "lang")
                    .map(|lang| lang.trim().to_owned())
                    .filter(|lang| !lang.is_empty());
            }
            _ => {}
        }
        None
    }

    pub(super) fn meta(&mut self, el: &Element<'_, '_>) {
        let key = el
            .get_attribute("name")
            .or_else(|| el.get_attribute("property"))
            .unwrap_or_default();
        let slot = if key.eq_ignore_ascii_case("description") {
            &mut self.extracted.description
        } else if key.eq_ignore_ascii_case("og:description") {
            &mut self.extracted.og_description
        } else {
            return;
        };
        if slot.is_none() {
            let content = attribute(el, "content").unwrap_or_default();
            *slot = non_empty(collapse_whitespace(&content));
        }
    }

    /// Records the link; its markdown target (`#…` for in-page links).
    pub(super) fn link(&mut self, el: &Element<'_, '_>) -> Option<String> {
        let href = attribute(el, "href")?;
        let href = href.trim_matches(|c: char| c.is_ascii_whitespace());
        if href.starts_with('#') {
            return Some("#".to_owned());
        }
        if href.is_empty() || href.len() > MAX_HREF_LEN {
            return None;
        }
        match http_join(&self.base, href) {
            Some(joined) => {
                let target = markdown_target(joined.as_str());
                self.extracted.links.push(joined);
                Some(target)
            }
            None => {
                let scheme = href.split(':').next().unwrap_or_default();
                ["mailto", "tel"]
                    .iter()
                    .any(|kept| scheme.eq_ignore_ascii_case(kept))
                    .then(|| markdown_target(href))
            }
        }
    }
}
