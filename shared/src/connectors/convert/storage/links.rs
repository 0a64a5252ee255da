//! `ac:link`, `ac:image` and `ac:emoticon`: links to pages, blog posts, attachments, spaces
//! and URLs made absolute against the site, images or placeholders, emoji.

use url::Url;

use super::render::Renderer;
use super::xml::{escape_html, XmlElement};

impl Renderer<'_> {
    /// `<site>/wiki/<segments…>`.
    pub(super) fn wiki_url(&self, segments: &[&str]) -> Option<String> {
        let mut url = self.context.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .push("wiki")
            .extend(segments);
        Some(url.to_string())
    }

    pub(super) fn attachment_url(&self, resource: &XmlElement) -> Option<String> {
        let filename = resource.attribute("ri:filename")?;
        // An attachment of another page names that page; its id is unknown here.
        if resource.elements().next().is_some() {
            return None;
        }
        let page_id = self.context.page_id?;
        self.wiki_url(&["download", "attachments", page_id, filename])
    }

    pub(super) fn link(&mut self, element: &XmlElement) {
        let resource = element
            .elements()
            .find(|child| child.name.starts_with("ri:"));
        let body = (if let Some(body) = element.child("ac:link-body") {
            Some(self.capture(|renderer| renderer.children(body)))
        } else {
            element
                .child("ac:plain-text-link-body")
                .map(|body| escape_html(body.text().trim()).into_owned())
        })
        .filter(|body| !body.trim().is_empty());

        let (href, fallback) = match resource {
            None => (None, element.attribute("ac:anchor").map(str::to_owned)),
            Some(resource) => self.link_target(resource),
        };
        let text = match (body, fallback) {
            (Some(body), _) => body,
            (None, Some(fallback)) => escape_html(&fallback).into_owned(),
            (None, None) => match &href {
                Some(href) => escape_html(href).into_owned(),
                None => return,
            },
        };
        match href {
            Some(href) => self
                .out
                .push_str(&format!("<a href=\"{}\">{text}</a>", escape_html(&href))),
            None => self.out.push_str(&text),
        }
    }

    /// Where a link's resource points, and the text to show when the link has no body.
    fn link_target(&self, resource: &XmlElement) -> (Option<String>, Option<String>) {
        let space = resource
            .attribute("ri:space-key")
            .or(self.context.space_key);
        let title = resource.attribute("ri:content-title");
        match resource.name.as_str() {
            "ri:page" => {
                let href = match (space, title) {
                    (Some(space), Some(title)) => self.wiki_url(&["display", space, title]),
                    _ => None,
                };
                (href, title.map(str::to_owned))
            }
            "ri:blog-post" => {
                let day = resource.attribute("ri:posting-day");
                let href = match (space, day, title) {
                    (Some(space), Some(day), Some(title)) => {
                        let mut segments = vec!["display", space];
                        segments.extend(day.split('/'));
                        segments.push(title);
                        self.wiki_url(&segments)
                    }
                    _ => None,
                };
                (href, title.map(str::to_owned))
            }
            "ri:attachment" => (
                self.attachment_url(resource),
                resource.attribute("ri:filename").map(str::to_owned),
            ),
            "ri:url" => (
                resource
                    .attribute("ri:value")
                    .and_then(|value| self.absolute(value)),
                resource.attribute("ri:value").map(str::to_owned),
            ),
            "ri:space" => {
                let key = resource.attribute("ri:space-key");
                (
                    key.and_then(|key| self.wiki_url(&["spaces", key])),
                    key.map(str::to_owned),
                )
            }
            "ri:content-entity" => (
                resource
                    .attribute("ri:content-id")
                    .and_then(|id| self.page_id_url(id)),
                None,
            ),
            "ri:user" => (None, Some("@user".to_owned())),
            _ => (None, None),
        }
    }

    /// `<site>/wiki/pages/viewpage.action?pageId=<id>`.
    fn page_id_url(&self, id: &str) -> Option<String> {
        let mut url = Url::parse(&self.wiki_url(&["pages", "viewpage.action"])?).ok()?;
        url.query_pairs_mut().append_pair("pageId", id);
        Some(url.to_string())
    }

    pub(super) fn image(&mut self, element: &XmlElement) {
        let resource = element
            .elements()
            .find(|child| child.name.starts_with("ri:"));
        let alt = element
            .attribute("ac:alt")
            .or(element.attribute("ac:title"))
            .map(str::trim)
            .filter(|alt| !alt.is_empty());
        let (src, name) = match resource {
            Some(resource) if resource.name == "ri:url" => (
                resource
                    .attribute("ri:value")
                    .and_then(|value| self.absolute(value)),
                None,
            ),
            Some(resource) if resource.name == "ri:attachment" => (
                self.attachment_url(resource),
                resource.attribute("ri:filename"),
            ),
            _ => (None, None),
        };
        let label = alt.or(name).unwrap_or("image");
        match src {
            Some(src) => self.out.push_str(&format!(
                "<img src=\"{}\" alt=\"{}\">",
                escape_html(&src),
                escape_html(label)
            )),
            None => self
                .out
                .push_str(&format!("<em>(image: {})</em>", escape_html(label))),
        }
    }

    pub(super) fn emoticon(&mut self, element: &XmlElement) {
        if let Some(fallback) = element
            .attribute("ac:emoji-fallback")
            .filter(|fallback| !fallback.trim().is_empty())
        {
            self.out.push_str(&escape_html(fallback));
            return;
        }
        let name = element.attribute("ac:name").unwrap_or_default();
        let emoji = match name {
            "smile" => "🙂",
            "sad" => "🙁",
            "cheeky" => "😛",
            "laugh" => "😀",
            "wink" => "😉",
            "thumbs-up" => "👍",
            "thumbs-down" => "👎",
            "information" => "ℹ️",
            "tick" => "✅",
            "cross" => "❌",
            "warning" => "⚠️",
            "plus" => "➕",
            "minus" => "➖",
            "question" => "❓",
            "light-on" => "💡",
            "light-off" => "💡",
            "yellow-star" | "star_yellow" => "⭐",
            "heart" => "❤️",
            _ if name.is_empty() => return,
            _ => {
                self.out.push_str(&format!(":{}:", escape_html(name)));
                return;
            }
        };
        self.out.push_str(emoji);
    }
}
