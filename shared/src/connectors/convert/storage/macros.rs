//! Confluence macros: code and noformat blocks, panels, expands, status lozenges and Jira
//! issue keys; any other macro degrades to its body.

use super::render::Renderer;
use super::xml::{escape_html, XmlElement};

impl Renderer<'_> {
    pub(super) fn macro_(&mut self, element: &XmlElement) {
        let name = element
            .attribute("ac:name")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let rich = element.child("ac:rich-text-body");
        let plain = element.child("ac:plain-text-body");
        match name.as_str() {
            "code" | "noformat" => self.code_macro(element, plain.or(rich)),
            "info" | "note" | "warning" | "tip" | "panel" | "success" | "error" => {
                self.panel_macro(&name, element, rich, plain)
            }
            "expand" => {
                let title = parameter(element, "title").unwrap_or_else(|| "Details".to_owned());
                self.out
                    .push_str(&format!("<p><strong>{}</strong></p>", escape_html(&title)));
                self.body(rich, plain);
            }
            "status" => {
                if let Some(title) = parameter(element, "title") {
                    self.out
                        .push_str(&format!("<code>{}</code>", escape_html(&title)));
                }
            }
            "jira" => {
                if let Some(key) = parameter(element, "key") {
                    self.out.push_str(&escape_html(&key));
                }
            }
            // Anything else degrades to its body (navigation macros have none).
            _ => self.body(rich, plain),
        }
    }

    /// A fenced code block with its (sanitised) language, after its title if it has one;
    /// `body` is the plain-text body, else the rich one.
    fn code_macro(&mut self, element: &XmlElement, body: Option<&XmlElement>) {
        if let Some(title) = parameter(element, "title") {
            self.out
                .push_str(&format!("<p><strong>{}</strong></p>", escape_html(&title)));
        }
        let language = parameter(element, "language").filter(|language| {
            language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '#' | '-' | '_' | '.'))
        });
        let code = body.map(XmlElement::text).unwrap_or_default();
        let code = code.trim_matches('\n');
        match language {
            Some(language) => self.out.push_str(&format!(
                "<pre><code class=\"language-{}\">",
                language.to_ascii_lowercase()
            )),
            None => self.out.push_str("<pre><code>"),
        }
        self.out.push_str(&escape_html(code));
        self.out.push_str("</code></pre>");
    }

    /// A blockquote headed by the panel's kind and title.
    fn panel_macro(
        &mut self,
        name: &str,
        element: &XmlElement,
        rich: Option<&XmlElement>,
        plain: Option<&XmlElement>,
    ) {
        let label = match name {
            "info" => "Info",
            "note" => "Note",
            "warning" => "Warning",
            "tip" => "Tip",
            "success" => "Success",
            "error" => "Error",
            _ => "",
        };
        let heading = match (label, parameter(element, "title")) {
            ("", Some(title)) => title,
            ("", None) => String::new(),
            (label, Some(title)) => format!("{label}: {title}"),
            (label, None) => label.to_owned(),
        };
        self.out.push_str("<blockquote>");
        if !heading.is_empty() {
            self.out.push_str(&format!(
                "<p><strong>{}</strong></p>",
                escape_html(&heading)
            ));
        }
        match (rich, plain) {
            (Some(rich), _) => self.children(rich),
            (None, Some(plain)) => self.plain_paragraph(&plain.text()),
            (None, None) => {}
        }
        self.out.push_str("</blockquote>");
    }
}

/// A macro's parameter, trimmed; `None` when absent or blank.
fn parameter(element: &XmlElement, wanted: &str) -> Option<String> {
    element
        .elements()
        .filter(|child| child.name == "ac:parameter")
        .find(|child| {
            child
                .attribute("ac:name")
                .is_some_and(|key| key.eq_ignore_ascii_case(wanted))
        })
        .map(|child| child.text().trim().to_owned())
        .filter(|value| !value.is_empty())
}
