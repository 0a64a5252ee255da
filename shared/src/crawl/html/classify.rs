//! What the streaming pass needs to know about an element from its name and attributes
//! alone: its kind, the parser's implied-end rules, and whether its class, id or role mark it
//! as site chrome, a permalink, a code language or a line-number gutter.

use lol_html::html_content::Element;
use url::Url;

use super::text::decode_entities;

/// The elements the converter tells apart; everything else is inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tag {
    Skipped,
    Head,
    Title,
    Meta,
    Link,
    Base,
    Html,
    Body,
    Main,
    Nav,
    Header,
    Footer,
    Aside,
    Form,
    Dialog,
    Block,
    Article,
    Paragraph,
    Heading(u8),
    Unordered,
    Ordered,
    Item,
    Definitions,
    Term,
    Definition,
    Quote,
    Pre,
    Code,
    Strong,
    Emphasis,
    Deleted,
    Anchor,
    Area,
    Image,
    Break,
    Rule,
    Table,
    Caption,
    TableHead,
    TableSection,
    Row,
    Cell { header: bool },
    Input,
    Inline,
}

impl Tag {
    pub(super) fn of(name: &str) -> Tag {
        match name {
            "script" | "style" | "noscript" | "template" | "iframe" | "svg" | "canvas"
            | "object" | "embed" | "video" | "audio" | "button" | "select" | "textarea"
            | "datalist" | "map" | "math" | "frameset" | "noframes" => Tag::Skipped,
            "head" => Tag::Head,
            "title" => Tag::Title,
            "meta" => Tag::Meta,
            "link" => Tag::Link,
            "base" => Tag::Base,
            "html" => Tag::Html,
            "body" => Tag::Body,
            "main" => Tag::Main,
            "nav" => Tag::Nav,
            "header" => Tag::Header,
            "footer" => Tag::Footer,
            "aside" => Tag::Aside,
            "form" => Tag::Form,
            "dialog" => Tag::Dialog,
            "p" => Tag::Paragraph,
            "article" => Tag::Article,
            "div" | "section" | "address" | "figure" | "figcaption" | "details" | "summary"
            | "center" | "fieldset" | "legend" | "hgroup" | "search" | "menu" | "dir"
            | "picture" => Tag::Block,
            "h1" => Tag::Heading(1),
            "h2" => Tag::Heading(2),
            "h3" => Tag::Heading(3),
            "h4" => Tag::Heading(4),
            "h5" => Tag::Heading(5),
            "h6" => Tag::Heading(6),
            "ul" => Tag::Unordered,
            "ol" => Tag::Ordered,
            "li" => Tag::Item,
            "dl" => Tag::Definitions,
            "dt" => Tag::Term,
            "dd" => Tag::Definition,
            "blockquote" => Tag::Quote,
            "pre" | "listing" | "xmp" | "plaintext" => Tag::Pre,
            "code" | "kbd" | "samp" | "tt" => Tag::Code,
            "strong" | "b" => Tag::Strong,
            "em" | "i" | "cite" | "dfn" | "var" => Tag::Emphasis,
            "del" | "s" | "strike" => Tag::Deleted,
            "a" => Tag::Anchor,
            "area" => Tag::Area,
            "img" => Tag::Image,
            "br" => Tag::Break,
            "hr" => Tag::Rule,
            "table" => Tag::Table,
            "caption" => Tag::Caption,
            "thead" => Tag::TableHead,
            "tbody" | "tfoot" => Tag::TableSection,
            "tr" => Tag::Row,
            "td" => Tag::Cell { header: false },
            "th" => Tag::Cell { header: true },
            "input" => Tag::Input,
            _ => Tag::Inline,
        }
    }

    /// Starting this element closes an open `<p>` (the HTML parser's rule for block starts).
    pub(super) fn closes_paragraph(self) -> bool {
        matches!(
            self,
            Tag::Main
                | Tag::Nav
                | Tag::Header
                | Tag::Footer
                | Tag::Aside
                | Tag::Form
                | Tag::Dialog
                | Tag::Block
                | Tag::Article
                | Tag::Paragraph
                | Tag::Heading(_)
                | Tag::Unordered
                | Tag::Ordered
                | Tag::Item
                | Tag::Definitions
                | Tag::Term
                | Tag::Definition
                | Tag::Quote
                | Tag::Pre
                | Tag::Rule
                | Tag::Table
        )
    }

    pub(super) fn belongs_in_head(self) -> bool {
        matches!(
            self,
            Tag::Title | Tag::Meta | Tag::Link | Tag::Base | Tag::Skipped | Tag::Head
        )
    }

    /// Elements that an implied end never reaches past.
    pub(super) fn is_scope_boundary(self) -> bool {
        matches!(
            self,
            Tag::Table | Tag::Cell { .. } | Tag::Caption | Tag::Html | Tag::Skipped
        )
    }

    /// Elements whose class, id and role can mark them as site chrome.
    pub(super) fn is_container(self) -> bool {
        matches!(
            self,
            Tag::Block
                | Tag::Nav
                | Tag::Header
                | Tag::Footer
                | Tag::Aside
                | Tag::Form
                | Tag::Dialog
                | Tag::Unordered
                | Tag::Ordered
                | Tag::Table
                | Tag::Paragraph
                | Tag::Article
        )
    }
}

/// Line-number gutters inside code blocks (Docusaurus, Pygments tables, highlight.js).
pub(super) fn is_line_number(el: &Element<'_, '_>) -> bool {
    let name = el.tag_name();
    if name != "span" && name != "td" {
        return false;
    }
    el.get_attribute("class").is_some_and(|classes| {
        let lower = classes.to_ascii_lowercase();
        [
            "linenumber",
            "line-number",
            "lineno",
            "linenos",
            "line-numbers",
        ]
        .iter()
        .any(|word| lower.contains(word))
    })
}

/// ARIA landmarks that are site chrome; `banner` (the site header) only outside the main.
pub(super) fn is_chrome_role(role: &str, in_main: bool) -> bool {
    const ROLES: [&str; 8] = [
        "navigation",
        "contentinfo",
        "complementary",
        "search",
        "dialog",
        "alertdialog",
        "menubar",
        "toolbar",
    ];
    let role = role.trim();
    ROLES.iter().any(|known| role.eq_ignore_ascii_case(known))
        || (!in_main && role.eq_ignore_ascii_case("banner"))
}

/// Class and id words that name chrome on sites without semantic elements: sidebars,
/// cookie and consent banners, menus, breadcrumbs, tables of contents, share and related
/// boxes, advertising. Distinctive words anywhere in the name; short ones only as a whole
/// `-`/`_`-separated part (`nav`, `toc`, `ad`), so `navigation-with-keyboard` on a body or
/// `shared-content` stays content.
pub(super) fn is_chrome_name(name: &str) -> bool {
    const ANYWHERE: [&str; 15] = [
        "sidebar",
        "cookie",
        "consent",
        "gdpr",
        "navbar",
        "navheader",
        "navfooter",
        "breadcrumb",
        "skip-link",
        "table-of-contents",
        "tableofcontents",
        "most-read",
        "topbar",
        "top-bar",
        "site-header",
    ];
    const PARTS: [&str; 20] = [
        "nav",
        "navigation",
        "menu",
        "toc",
        "footer",
        "masthead",
        "related",
        "share",
        "sharing",
        "social",
        "ad",
        "ads",
        "advert",
        "advertisement",
        "newsletter",
        "promo",
        "pagination",
        "skip",
        "comments",
        "subscribe",
    ];
    let lower = name.to_ascii_lowercase();
    ANYWHERE.iter().any(|word| lower.contains(word))
        || lower.split(['-', '_']).any(|part| PARTS.contains(&part))
}

/// A heading's self-link, by the classes documentation generators give it (Docusaurus,
/// Sphinx/MkDocs, VitePress, GitHub) or by being hidden from screen readers.
pub(super) fn is_permalink(class: Option<&str>, aria_hidden: Option<&str>) -> bool {
    const CLASSES: [&str; 5] = [
        "hash-link",
        "headerlink",
        "header-anchor",
        "anchor",
        "heading-anchor",
    ];
    aria_hidden.is_some_and(|hidden| hidden.trim().eq_ignore_ascii_case("true"))
        || class.is_some_and(|classes| {
            classes
                .split_ascii_whitespace()
                .any(|class| CLASSES.contains(&class))
        })
}

/// The language a code block's class names (`language-rust`, `lang-sh`, Sphinx's
/// `highlight-python3`) or its `data-lang`.
pub(super) fn code_language(el: &Element<'_, '_>) -> Option<String> {
    const PREFIXES: [&str; 4] = ["language-", "lang-", "highlight-", "hljs-"];
    const MEANINGLESS: [&str; 7] = [
        "default",
        "none",
        "text",
        "plain",
        "plaintext",
        "nohighlight",
        "txt",
    ];
    let from_class = el.get_attribute("class").and_then(|classes| {
        classes.split_ascii_whitespace().find_map(|class| {
            PREFIXES
                .iter()
                .find_map(|prefix| class.strip_prefix(prefix))
                .map(str::to_owned)
        })
    });
    from_class
        .or_else(|| el.get_attribute("data-lang"))
        .map(|language| language.trim().to_ascii_lowercase())
        .filter(|language| {
            !language.is_empty()
                && language.len() <= 32
                && language
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '#' | '_' | '.'))
                && !MEANINGLESS.contains(&language.as_str())
        })
}

/// An attribute's value with character references decoded (lol_html hands out the raw text).
pub(super) fn attribute(el: &Element<'_, '_>, name: &str) -> Option<String> {
    el.get_attribute(name)
        .map(|value| decode_entities(&value).into_owned())
}

pub(super) fn is_data_url(value: &str) -> bool {
    value
        .trim_start()
        .get(..5)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("data:"))
}

/// `href` resolved against `base`, only when that gives an http(s) URL. Not normalised: the
/// markdown keeps fragments and index documents as the author wrote them.
pub(super) fn http_join(base: &Url, href: &str) -> Option<Url> {
    let href = href.trim_matches(|c: char| c.is_ascii_whitespace());
    if href.is_empty() {
        return None;
    }
    let joined = base.join(href).ok()?;
    matches!(joined.scheme(), "http" | "https").then_some(joined)
}

/// A URL as a markdown link destination: parentheses and spaces would end it early.
pub(super) fn markdown_target(url: &str) -> String {
    if !url.contains(['(', ')', ' ', '<', '>']) {
        return url.to_owned();
    }
    url.replace('(', "%28")
        .replace(')', "%29")
        .replace(' ', "%20")
        .replace('<', "%3C")
        .replace('>', "%3E")
}
