//! Storage-format elements rewritten into the plain HTML htmd converts: HTML passed
//! through with a few attributes, macros, tasks, layouts and tables (links, images and
//! emoticons in [`super::links`], macros in [`super::macros`]).

use super::xml::{escape_html, XmlElement, XmlNode};
use super::StorageContext;

/// HTML elements passed through (with only the attributes in [`KEPT_ATTRIBUTES`]); other
/// elements are replaced by their content.
pub(super) const HTML_ELEMENTS: [&str; 52] = [
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "strong",
    "b",
    "em",
    "i",
    "u",
    "s",
    "del",
    "strike",
    "sub",
    "sup",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "th",
    "td",
    "caption",
    "colgroup",
    "col",
    "a",
    "img",
    "span",
    "div",
    "small",
    "big",
    "mark",
    "cite",
    "q",
    "kbd",
    "samp",
    "ins",
    "section",
    "figure",
];
pub(super) const VOID_ELEMENTS: [&str; 4] = ["br", "hr", "img", "col"];
/// Never content.
pub(super) const DROPPED_ELEMENTS: [&str; 9] = [
    "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "head",
];
pub(super) const KEPT_ATTRIBUTES: [(&str, &str); 5] = [
    ("a", "href"),
    ("img", "src"),
    ("img", "alt"),
    ("ol", "start"),
    ("a", "title"),
];

pub(super) struct TableState {
    pub(super) rows: usize,
}

pub(super) struct Renderer<'a> {
    pub(super) context: &'a StorageContext<'a>,
    pub(super) tables: Vec<TableState>,
    pub(super) out: String,
}

impl Renderer<'_> {
    pub(super) fn children(&mut self, element: &XmlElement) {
        for child in &element.children {
            match child {
                XmlNode::Element(element) => self.element(element),
                XmlNode::Markup(markup) => self.out.push_str(markup),
                XmlNode::Text(text) => self.out.push_str(&escape_html(text)),
            }
        }
    }

    /// Renders `f` into a separate string.
    pub(super) fn capture(&mut self, f: impl FnOnce(&mut Self)) -> String {
        let saved = std::mem::take(&mut self.out);
        f(self);
        std::mem::replace(&mut self.out, saved)
    }

    pub(super) fn element(&mut self, element: &XmlElement) {
        let name = element.name.as_str();
        match name {
            "ac:structured-macro" | "ac:macro" => self.macro_(element),
            "ac:link" => self.link(element),
            "ac:image" => self.image(element),
            "ac:emoticon" => self.emoticon(element),
            "ac:task-list" => {
                self.out.push_str("<ul>");
                for task in element.elements().filter(|child| child.name == "ac:task") {
                    self.task(task);
                }
                self.out.push_str("</ul>");
            }
            "ac:task" => {
                self.out.push_str("<ul>");
                self.task(element);
                self.out.push_str("</ul>");
            }
            "ac:adf-extension" => match element.child("ac:adf-fallback") {
                Some(fallback) => self.children(fallback),
                None => self.children(element),
            },
            "ac:layout" | "ac:layout-section" | "ac:layout-cell" => {
                self.out.push_str("<div>");
                self.children(element);
                self.out.push_str("</div>");
            }
            "ac:plain-text-body" | "ac:plain-text-link-body" => {
                self.plain_paragraph(&element.text());
            }
            "ac:parameter" | "ac:task-id" | "ac:task-status" | "ac:placeholder"
            | "ac:adf-attribute" => {}
            _ if name.starts_with("ri:") => {}
            _ if name.contains(':') => self.children(element),
            "time" => match element.attribute("datetime") {
                Some(datetime) => self.out.push_str(&escape_html(datetime)),
                None => self.children(element),
            },
            "table" => {
                self.tables.push(TableState { rows: 0 });
                self.out.push_str("<table>");
                self.children(element);
                self.out.push_str("</table>");
                self.tables.pop();
            }
            "tr" => {
                if let Some(table) = self.tables.last_mut() {
                    table.rows += 1;
                }
                self.out.push_str("<tr>");
                self.children(element);
                self.out.push_str("</tr>");
            }
            "th" | "td" => {
                // Markdown tables have one header row: the first row's cells are the header,
                // every other cell is data (htmd keeps only `td` in data rows).
                let cell = match self.tables.last() {
                    Some(table) if table.rows <= 1 => "th",
                    Some(_) => "td",
                    None => name,
                };
                self.out.push_str(&format!("<{cell}>"));
                self.children(element);
                self.out.push_str(&format!("</{cell}>"));
            }
            _ if DROPPED_ELEMENTS.contains(&name) => {}
            _ if HTML_ELEMENTS.contains(&name) => self.html(element),
            _ => self.children(element),
        }
    }

    pub(super) fn html(&mut self, element: &XmlElement) {
        let name = element.name.as_str();
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in &element.attributes {
            if !KEPT_ATTRIBUTES.contains(&(name, key.as_str())) {
                continue;
            }
            let value = match key.as_str() {
                "href" | "src" => match self.absolute(value) {
                    Some(url) => url,
                    None => continue,
                },
                _ => value.clone(),
            };
            self.out
                .push_str(&format!(" {key}=\"{}\"", escape_html(&value)));
        }
        self.out.push('>');
        if VOID_ELEMENTS.contains(&name) {
            return;
        }
        self.children(element);
        self.out.push_str(&format!("</{name}>"));
    }

    /// An http(s) or mailto URL, relative ones resolved against the site.
    pub(super) fn absolute(&self, value: &str) -> Option<String> {
        let url = self.context.base.join(value.trim()).ok()?;
        matches!(url.scheme(), "http" | "https" | "mailto").then(|| url.to_string())
    }

    pub(super) fn plain_paragraph(&mut self, text: &str) {
        let text = text.trim_matches('\n');
        if text.trim().is_empty() {
            return;
        }
        self.out.push_str("<p>");
        self.out.push_str(&escape_html(text).replace('\n', "<br>"));
        self.out.push_str("</p>");
    }

    pub(super) fn task(&mut self, task: &XmlElement) {
        let done = task
            .child("ac:task-status")
            .is_some_and(|status| status.text().trim() == "complete");
        self.out.push_str(if done { "<li>☑ " } else { "<li>☐ " });
        if let Some(body) = task.child("ac:task-body") {
            self.children(body);
        }
        self.out.push_str("</li>");
    }

    pub(super) fn body(&mut self, rich: Option<&XmlElement>, plain: Option<&XmlElement>) {
        match (rich, plain) {
            (Some(rich), _) => {
                self.out.push_str("<div>");
                self.children(rich);
                self.out.push_str("</div>");
            }
            (None, Some(plain)) => self.plain_paragraph(&plain.text()),
            (None, None) => {}
        }
    }
}
