//! One fetched HTML page → metadata, outgoing links and markdown.
//!
//! Two passes, each with the tool that is good at it: a streaming lol_html pass reads the
//! metadata and links (and rewrites link and image URLs to absolute ones, so the markdown keeps
//! working links once it is detached from the page), then htmd (html5ever, a spec-compliant
//! tree builder that copes with omitted end tags) turns the result into markdown. The htmd
//! converters and the lol_html selectors are built once per process: this runs for every page
//! of large crawls.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::OnceLock;

use htmd::element_handler::{HandlerResult, Handlers};
use htmd::options::{BulletListMarker, Options};
use htmd::{HtmlToMarkdown, Node};
use lol_html::html_content::{ContentType, Element, EndTag, TextChunk};
use lol_html::{ElementContentHandlers, HtmlRewriter, Selector, Settings};
use url::Url;

use super::normalize;

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PageMetadata {
    pub title: Option<String>,
    pub description: Option<String>,
    pub language: Option<String>,
    pub canonical_url: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Page {
    pub metadata: PageMetadata,
    /// Absolute, normalised (`normalize::resolve` against the effective base), deduplicated,
    /// in document order. Fragment-only hrefs (`#section`) are left out: they never name
    /// another document.
    pub links: Vec<Url>,
    pub markdown: String,
}

/// Never part of the content: code, styling, embedded documents and graphics, the head.
const ALWAYS_SKIPPED: [&str; 8] = [
    "script", "style", "noscript", "template", "iframe", "svg", "canvas", "head",
];
/// Site chrome, dropped in main-content mode when the page does not mark its main content.
const CHROME: [&str; 5] = ["nav", "header", "footer", "aside", "form"];
/// Chrome inside a page's `<main>`: a `<header>` there holds the article's title, so it stays.
const CHROME_INSIDE_MAIN: [&str; 4] = ["nav", "footer", "aside", "form"];

/// Inserted around the page's main element by the rewriting pass so the markdown pass can cut
/// it out. They are comments, so should one be left behind it never reaches the markdown.
const MAIN_START: &str = "<!--tributary:main-content:start-->";
const MAIN_END: &str = "<!--tributary:main-content:end-->";

/// Leading bytes looked at when sniffing a `<meta charset>` (the HTML spec's prescan length).
const CHARSET_PRESCAN_BYTES: usize = 1024;

/// True when the content type is text/html or application/xhtml+xml, or (no content type) the
/// body starts (after whitespace/BOM) with `<!doctype html` or `<html` case-insensitively.
pub fn is_html(content_type: Option<&str>, body: &[u8]) -> bool {
    if let Some(essence) = content_type.map(mime_essence).filter(|e| !e.is_empty()) {
        return essence.eq_ignore_ascii_case("text/html")
            || essence.eq_ignore_ascii_case("application/xhtml+xml");
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let body = &body[start..];
    starts_with_ignore_case(body, b"<!doctype html") || starts_with_ignore_case(body, b"<html")
}

/// Decodes the body: the charset from the content type, else (for bodies that are not valid
/// UTF-8) a `<meta charset>` near the start, else UTF-8 lossily. UTF-8 and the windows-1252
/// family (ISO-8859-1, ASCII, which the web treats as windows-1252) are decoded exactly; any
/// other charset is read as UTF-8 lossily. A UTF-8 byte order mark wins over everything.
pub fn decode(content_type: Option<&str>, body: &[u8]) -> String {
    if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    let declared = content_type.and_then(charset_parameter);
    let charset = match declared {
        Some(label) => Some(label),
        None => match std::str::from_utf8(body) {
            Ok(text) => return text.to_owned(),
            Err(_) => sniff_meta_charset(body),
        },
    };
    if charset.is_some_and(|label| is_windows_1252(&label)) {
        decode_windows_1252(body)
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

/// Parses one page: metadata, links and markdown (see [`Page`]). `url` is the page's final
/// URL (after redirects); `strip_query` is passed on to [`normalize::resolve`] for the links.
/// Never panics, whatever the input.
pub fn parse(html: &str, url: &Url, only_main_content: bool, strip_query: bool) -> Page {
    let extracted = extract(html, url, only_main_content);
    let base = extracted
        .base_href
        .as_deref()
        .and_then(|href| http_join(url, href))
        .unwrap_or_else(|| url.clone());

    let metadata = PageMetadata {
        title: non_empty(collapse_whitespace(&decode_entities(&extracted.title))),
        description: extracted
            .description
            .or(extracted.og_description)
            .and_then(non_empty),
        language: extracted.language,
        canonical_url: extracted
            .canonical_href
            .and_then(|href| normalize::resolve(&base, &href, false))
            .map(String::from),
    };

    let mut seen = HashSet::with_capacity(extracted.hrefs.len());
    let links = extracted
        .hrefs
        .iter()
        .filter_map(|href| normalize::resolve(&base, href, strip_query))
        .filter(|link| seen.insert(link.clone()))
        .collect();

    let converters = converters();
    let rewritten = extracted.rewritten.as_deref().unwrap_or(html);
    let (converter, source) = if !only_main_content {
        (&converters.full, rewritten)
    } else if let Some(main) = main_content(rewritten) {
        (&converters.inside_main, main)
    } else {
        (&converters.without_chrome, rewritten)
    };
    let markdown = to_markdown(converter, source, url);

    Page {
        metadata,
        links,
        markdown,
    }
}

/// html5ever and htmd have never been seen to panic (fuzzed with random tag soup), but they
/// are third-party code fed hostile input: should they, this page loses its markdown rather
/// than the whole batch failing.
fn to_markdown(converter: &HtmlToMarkdown, html: &str, url: &Url) -> String {
    let converted = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let tree = converter.html_to_tree(&limit_nesting(html))?;
        cap_depth(&tree);
        Ok::<_, std::io::Error>(converter.tree_to_markdown(&tree))
    }));
    match converted {
        Ok(Ok(markdown)) => markdown.trim().to_owned(),
        Ok(Err(error)) => {
            tracing::warn!(%error, %url, "html to markdown failed");
            String::new()
        }
        Err(_) => {
            tracing::error!(%url, "html to markdown panicked");
            String::new()
        }
    }
}

struct Converters {
    full: HtmlToMarkdown,
    without_chrome: HtmlToMarkdown,
    inside_main: HtmlToMarkdown,
}

fn converters() -> &'static Converters {
    static CONVERTERS: OnceLock<Converters> = OnceLock::new();
    CONVERTERS.get_or_init(|| {
        let build = |extra: &[&'static str]| {
            let skipped: Vec<&str> = ALWAYS_SKIPPED.iter().chain(extra).copied().collect();
            // ATX headings, fenced code blocks and inline links are htmd's defaults; `-` bullets
            // with one space are the most common style and spend fewer tokens.
            let options = Options {
                bullet_list_marker: BulletListMarker::Dash,
                ul_bullet_spacing: 1,
                ol_number_spacing: 1,
                ..Options::default()
            };
            HtmlToMarkdown::builder()
                .options(options)
                .add_handler(vec!["a"], in_page_link)
                .skip_tags(skipped)
                // (Scripting stays enabled, as in a browser: <noscript> content is then one
                // raw text node, cheaper to parse, and skipped anyway.)
                .build()
        };
        Converters {
            full: build(&[]),
            without_chrome: build(&CHROME),
            inside_main: build(&CHROME_INSIDE_MAIN),
        }
    })
}

/// In-page links (`href="#…"`) mean nothing once the markdown leaves the page: their text is
/// kept, and heading permalinks ("#", "¶", an icon) are dropped altogether. Other links go to
/// htmd's own anchor handler.
fn in_page_link(handlers: &dyn Handlers, element: htmd::Element<'_>) -> Option<HandlerResult> {
    let attribute = |name: &str| {
        element
            .attrs
            .iter()
            .find(|attribute| &*attribute.name.local == name)
            .map(|attribute| &*attribute.value)
    };
    if !attribute("href").is_some_and(|href| href.trim_start().starts_with('#')) {
        return handlers.fallback(element);
    }
    let content = handlers.walk_children(element.node);
    let text = content.content.trim();
    // A permalink is only a symbol; anything longer is real text (the parser may have carried
    // an unclosed link over following paragraphs, as browsers do), so it stays.
    let permalink = matches!(text, "" | "#" | "¶" | "§" | "🔗")
        || (text.chars().count() <= 2
            && is_permalink(attribute("class"), attribute("aria-hidden")));
    (!permalink).then_some(content)
}

/// A heading's self-link, by the classes documentation generators give it (Docusaurus,
/// Sphinx/MkDocs, VitePress, GitHub) or by being hidden from screen readers.
fn is_permalink(class: Option<&str>, aria_hidden: Option<&str>) -> bool {
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

/// htmd walks the tree recursively, so a page nesting elements thousands deep would overflow
/// the stack (an abort, not a panic: the whole worker would die). Beyond this depth the
/// remaining content is flattened instead; browsers do much the same (Blink at 512 levels),
/// and real pages stay well below 100.
const MAX_TREE_DEPTH: usize = 256;

/// Moves the leaves (text, empty elements) of every subtree deeper than [`MAX_TREE_DEPTH`] up
/// to be children of its ancestor at that depth, in document order. Iterative throughout.
fn cap_depth(root: &Rc<Node>) {
    let mut pending = vec![(Rc::clone(root), 0usize)];
    while let Some((node, depth)) = pending.pop() {
        if depth >= MAX_TREE_DEPTH {
            flatten_descendants(&node);
        } else {
            let children = node.children.borrow();
            pending.extend(children.iter().map(|child| (Rc::clone(child), depth + 1)));
        }
    }
}

fn flatten_descendants(node: &Rc<Node>) {
    let children = std::mem::take(&mut *node.children.borrow_mut());
    // A stack popped from the end: reversed so the first child comes out first.
    let mut pending: Vec<Rc<Node>> = children.into_iter().rev().collect();
    let mut leaves = Vec::new();
    while let Some(current) = pending.pop() {
        let grandchildren = std::mem::take(&mut *current.children.borrow_mut());
        if grandchildren.is_empty() {
            current.parent.set(Some(Rc::downgrade(node)));
            leaves.push(current);
        } else {
            pending.extend(grandchildren.into_iter().rev());
        }
    }
    *node.children.borrow_mut() = leaves;
}

/// html5ever checks "is there a `<p>` in scope?" by walking the stack of open elements for
/// most start tags, so `<div>` nested 10 000 deep costs half a second and a megabyte of them
/// minutes. Start tags that would nest deeper than this are dropped before it parses.
const MAX_SOURCE_NESTING: usize = 512;

/// Drops start tags nested deeper than [`MAX_SOURCE_NESTING`] (their content stays). The depth
/// is estimated in one linear scan: only elements that need an explicit end tag count (not
/// void elements, nor `p`, `li`, `td`… whose end tags may be omitted, nor self-closing tags
/// inside SVG/MathML), and raw text (`<textarea>`, `<title>`…) and comments are skipped. Pages
/// that stay below the limit, i.e. all real ones, are returned untouched without copying.
fn limit_nesting(html: &str) -> Cow<'_, str> {
    if scan_nesting(html, None) {
        let mut limited = String::with_capacity(html.len());
        scan_nesting(html, Some(&mut limited));
        Cow::Owned(limited)
    } else {
        Cow::Borrowed(html)
    }
}

/// Returns whether some start tag exceeded the limit; with `out`, copies `html` into it
/// without those tags.
fn scan_nesting(html: &str, mut out: Option<&mut String>) -> bool {
    let bytes = html.as_bytes();
    let mut depth = 0usize;
    let mut foreign_depth = 0usize;
    let mut exceeded = false;
    let mut copied_up_to = 0;
    let mut at = 0;
    while let Some(offset) = html.get(at..).and_then(|rest| rest.find('<')) {
        let open = at + offset;
        let after = open + 1;
        match bytes.get(after) {
            Some(b'!') => {
                at = if bytes[after..].starts_with(b"!--") {
                    find_from(html, after + 3, "-->").map_or(bytes.len(), |end| end + 3)
                } else {
                    find_from(html, after, ">").map_or(bytes.len(), |end| end + 1)
                };
            }
            Some(b'?') => at = find_from(html, after, ">").map_or(bytes.len(), |end| end + 1),
            Some(b'/') => {
                let name = tag_name(&bytes[after + 1..]);
                if is_foreign_root(name) {
                    foreign_depth = foreign_depth.saturating_sub(1);
                }
                if needs_end_tag(name) {
                    depth = depth.saturating_sub(1);
                }
                at = find_from(html, after, ">").map_or(bytes.len(), |end| end + 1);
            }
            Some(first) if first.is_ascii_alphabetic() => {
                let name = tag_name(&bytes[after..]);
                let close = tag_end(bytes, after + name.len());
                let self_closing = close > 0 && bytes.get(close - 1) == Some(&b'/');
                at = (close + 1).min(bytes.len());
                let counted = needs_end_tag(name) && !(self_closing && foreign_depth > 0);
                if counted && depth >= MAX_SOURCE_NESTING {
                    let Some(out) = out.as_deref_mut() else {
                        return true;
                    };
                    exceeded = true;
                    out.push_str(&html[copied_up_to..open]);
                    copied_up_to = at;
                    // Without its start tag the element's content is markup to the parser
                    // (even a <textarea>'s or an <svg>'s), so the scan goes on into it.
                    continue;
                }
                if counted {
                    depth += 1;
                }
                if is_foreign_root(name) && !self_closing {
                    foreign_depth += 1;
                }
                if let Some(raw_text_end) = raw_text_end(html, name, at) {
                    at = raw_text_end;
                }
            }
            _ => at = after,
        }
    }
    if let Some(out) = out {
        out.push_str(&html[copied_up_to.min(html.len())..]);
    }
    exceeded
}

fn find_from(html: &str, from: usize, needle: &str) -> Option<usize> {
    html.get(from..)?.find(needle).map(|offset| from + offset)
}

/// The tag name at the start of `bytes` (as written; compared case-insensitively).
fn tag_name(bytes: &[u8]) -> &[u8] {
    let len = bytes
        .iter()
        .take_while(|b| !b.is_ascii_whitespace() && !matches!(b, b'/' | b'>'))
        .count();
    &bytes[..len]
}

/// Index of the `>` closing the tag whose attributes start at `from` (quoted attribute values
/// may contain `>`), or the input length when it never closes.
fn tag_end(bytes: &[u8], from: usize) -> usize {
    let mut quote: Option<u8> = None;
    let mut previous = b' ';
    for (index, &byte) in bytes.iter().enumerate().skip(from) {
        match quote {
            Some(q) if byte == q => quote = None,
            Some(_) => {}
            None if byte == b'>' => return index,
            None if matches!(byte, b'"' | b'\'') && previous == b'=' => quote = Some(byte),
            None => {}
        }
        if !byte.is_ascii_whitespace() {
            previous = byte;
        }
    }
    bytes.len()
}

/// For elements whose content is raw text, where the scan resumes: at their end tag.
fn raw_text_end(html: &str, name: &[u8], from: usize) -> Option<usize> {
    // <noscript> too: html5ever parses with scripting enabled, like a browser.
    const RAW_TEXT: [&[u8]; 9] = [
        b"script",
        b"style",
        b"textarea",
        b"title",
        b"xmp",
        b"iframe",
        b"noembed",
        b"noframes",
        b"noscript",
    ];
    if name.eq_ignore_ascii_case(b"plaintext") {
        // Everything after it is text, end tags included.
        return Some(html.len());
    }
    if !RAW_TEXT.iter().any(|raw| raw.eq_ignore_ascii_case(name)) {
        return None;
    }
    let mut search = from;
    // End tags are matched case-insensitively; scan for `</` and compare the name.
    while let Some(end) = find_from(html, search, "</") {
        let candidate = &html.as_bytes()[end + 2..];
        if candidate.len() >= name.len() && candidate[..name.len()].eq_ignore_ascii_case(name) {
            return Some(end);
        }
        search = end + 2;
    }
    Some(html.len())
}

fn is_foreign_root(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"svg") || name.eq_ignore_ascii_case(b"math")
}

/// Whether an element stays open until its end tag: not void, and not one whose end tag the
/// parser implies (a new `<p>` or `<li>` closes the previous one, and so on).
fn needs_end_tag(name: &[u8]) -> bool {
    const NO_END_TAG: [&[u8]; 40] = [
        b"area",
        b"base",
        b"basefont",
        b"bgsound",
        b"br",
        b"col",
        b"embed",
        b"frame",
        b"hr",
        b"img",
        b"image",
        b"input",
        b"keygen",
        b"link",
        b"meta",
        b"param",
        b"source",
        b"track",
        b"wbr",
        b"p",
        b"li",
        b"dt",
        b"dd",
        b"td",
        b"th",
        b"tr",
        b"tbody",
        b"thead",
        b"tfoot",
        b"option",
        b"optgroup",
        b"rb",
        b"rt",
        b"rtc",
        b"rp",
        b"caption",
        b"colgroup",
        b"html",
        b"head",
        b"body",
    ];
    !name.is_empty()
        && !NO_END_TAG
            .iter()
            .any(|known| known.eq_ignore_ascii_case(name))
}

/// The HTML between the main-content markers, when the rewriting pass placed them. A main
/// element that is never closed runs to the end of the document, as in a browser.
fn main_content(rewritten: &str) -> Option<&str> {
    let start = rewritten.find(MAIN_START)? + MAIN_START.len();
    let rest = &rewritten[start..];
    Some(rest.find(MAIN_END).map_or(rest, |end| &rest[..end]))
}

/// lol_html selectors, parsed once per process.
struct Selectors {
    base: Selector,
    title: Selector,
    meta: Selector,
    html: Selector,
    canonical: Selector,
    anchor: Selector,
    image: Selector,
    main: Selector,
    removed: Selector,
}

fn selectors() -> Option<&'static Selectors> {
    static SELECTORS: OnceLock<Option<Selectors>> = OnceLock::new();
    SELECTORS
        .get_or_init(|| {
            let parse = |selector: &str| match selector.parse::<Selector>() {
                Ok(selector) => Some(selector),
                Err(error) => {
                    tracing::error!(%error, selector, "bad built-in selector");
                    None
                }
            };
            Some(Selectors {
                base: parse("base[href]")?,
                title: parse("title")?,
                meta: parse("meta[content]")?,
                html: parse("html[lang]")?,
                canonical: parse("link[rel][href]")?,
                anchor: parse("a[href], area[href]")?,
                image: parse("img")?,
                // `[role=main]` on its own would make lol_html read the attributes of every
                // element (a quarter of the pass); these are the elements that carry it.
                main: parse(
                    "main, div[role=main], section[role=main], article[role=main], body[role=main]",
                )?,
                removed: parse("script, style, template, iframe")?,
            })
        })
        .as_ref()
}

#[derive(Default)]
struct Extracted {
    base_href: Option<String>,
    title: String,
    title_state: TitleState,
    description: Option<String>,
    og_description: Option<String>,
    language: Option<String>,
    canonical_href: Option<String>,
    /// Entity-decoded, unresolved: the base may only be known after some links.
    hrefs: Vec<String>,
    main_marked: bool,
    /// Where link and image URLs are resolved for the markdown while streaming.
    rewrite_base: Option<Url>,
    /// The page with absolute URLs and main-content markers; None when rewriting failed.
    rewritten: Option<String>,
}

#[derive(Default, PartialEq)]
enum TitleState {
    #[default]
    NotSeen,
    /// Inside the document's first `<title>`; later ones (e.g. in inline SVG) are ignored.
    Reading,
    Done,
}

/// The streaming pass: collects metadata and hrefs, rewrites URLs to absolute ones and marks
/// the main element when main content is wanted.
fn extract(html: &str, url: &Url, mark_main: bool) -> Extracted {
    let state = RefCell::new(Extracted {
        rewrite_base: Some(url.clone()),
        ..Extracted::default()
    });
    let Some(selectors) = selectors() else {
        return state.into_inner();
    };

    let mut handlers: Vec<(Cow<'_, Selector>, ElementContentHandlers<'_>)> = vec![
        (
            // Dropped here already because inline scripts and styles are often half the page,
            // and every byte html5ever does not see is time saved. Only elements whose extent
            // a streaming parser knows exactly (raw text, or a mandatory end tag) are removed;
            // the rest of ALWAYS_SKIPPED is left to htmd, which builds the real tree.
            Cow::Borrowed(&selectors.removed),
            ElementContentHandlers::default().element(|el: &mut Element<'_, '_>| {
                el.remove();
                Ok(())
            }),
        ),
        (
            Cow::Borrowed(&selectors.base),
            ElementContentHandlers::default().element(|el: &mut Element<'_, '_>| {
                let mut state = state.borrow_mut();
                if state.base_href.is_none() {
                    let href = attribute(el, "href").unwrap_or_default();
                    state.rewrite_base = http_join(url, &href).or(state.rewrite_base.take());
                    state.base_href = Some(href);
                }
                Ok(())
            }),
        ),
        (
            Cow::Borrowed(&selectors.title),
            ElementContentHandlers::default()
                .element(|_: &mut Element<'_, '_>| {
                    let mut state = state.borrow_mut();
                    // A further <title> also ends the first one, should it have had no text.
                    state.title_state = match state.title_state {
                        TitleState::NotSeen => TitleState::Reading,
                        TitleState::Reading | TitleState::Done => TitleState::Done,
                    };
                    Ok(())
                })
                .text(|chunk: &mut TextChunk<'_>| {
                    let mut state = state.borrow_mut();
                    if state.title_state == TitleState::Reading {
                        state.title.push_str(chunk.as_str());
                        if chunk.last_in_text_node() {
                            state.title_state = TitleState::Done;
                        }
                    }
                    Ok(())
                }),
        ),
        (
            Cow::Borrowed(&selectors.meta),
            ElementContentHandlers::default().element(|el: &mut Element<'_, '_>| {
                let key = el
                    .get_attribute("name")
                    .or_else(|| el.get_attribute("property"))
                    .unwrap_or_default();
                let mut state = state.borrow_mut();
                let slot = if key.eq_ignore_ascii_case("description") {
                    &mut state.description
                } else if key.eq_ignore_ascii_case("og:description") {
                    &mut state.og_description
                } else {
                    return Ok(());
                };
                if slot.is_none() {
                    let content = attribute(el, "content").unwrap_or_default();
                    *slot = non_empty(collapse_whitespace(&content));
                }
                Ok(())
            }),
        ),
        (
            Cow::Borrowed(&selectors.html),
            ElementContentHandlers::default().element(|el: &mut Element<'_, '_>| {
                let mut state = state.borrow_mut();
                if state.language.is_none() {
                    state.language = attribute(el, "lang")
                        .map(|lang| lang.trim().to_owned())
                        .filter(|lang| !lang.is_empty());
                }
                Ok(())
            }),
        ),
        (
            Cow::Borrowed(&selectors.canonical),
            ElementContentHandlers::default().element(|el: &mut Element<'_, '_>| {
                let is_canonical = el.get_attribute("rel").is_some_and(|rel| {
                    rel.split_ascii_whitespace()
                        .any(|token| token.eq_ignore_ascii_case("canonical"))
                });
                let mut state = state.borrow_mut();
                if is_canonical && state.canonical_href.is_none() {
                    state.canonical_href = attribute(el, "href");
                }
                Ok(())
            }),
        ),
        (
            Cow::Borrowed(&selectors.anchor),
            ElementContentHandlers::default().element(|el: &mut Element<'_, '_>| {
                let Some(href) = attribute(el, "href") else {
                    return Ok(());
                };
                if href.trim_start().starts_with('#') {
                    // Names no other document; the markdown pass unwraps it (`in_page_link`).
                    return Ok(());
                }
                let mut state = state.borrow_mut();
                if let Some(absolute) = state
                    .rewrite_base
                    .as_ref()
                    .and_then(|base| http_join(base, &href))
                {
                    set_url_attribute(el, "href", &absolute);
                }
                state.hrefs.push(href);
                Ok(())
            }),
        ),
        (
            Cow::Borrowed(&selectors.image),
            ElementContentHandlers::default().element(|el: &mut Element<'_, '_>| {
                // Inline images would put kilobytes of base64 into the markdown, and lazy
                // loading pages keep the real image in data-src behind a placeholder.
                let src = attribute(el, "src").filter(|src| !is_data_url(src));
                let src = src.or_else(|| attribute(el, "data-src").filter(|s| !is_data_url(s)));
                let state = state.borrow();
                match src.and_then(|src| http_join(state.rewrite_base.as_ref()?, &src)) {
                    Some(absolute) => set_url_attribute(el, "src", &absolute),
                    None => el.remove_attribute("src"),
                }
                Ok(())
            }),
        ),
    ];
    if mark_main {
        handlers.push((
            Cow::Borrowed(&selectors.main),
            ElementContentHandlers::default().element(|el: &mut Element<'_, '_>| {
                let mut state = state.borrow_mut();
                if !state.main_marked {
                    state.main_marked = true;
                    el.before(MAIN_START, ContentType::Html);
                    // No end tag (void element, or never closed): the main content runs to
                    // the end of the document.
                    let _ = el.on_end_tag(Box::new(|end: &mut EndTag<'_>| {
                        end.after(MAIN_END, ContentType::Html);
                        Ok(())
                    }));
                }
                Ok(())
            }),
        ));
    }

    // Not strict: on markup a streaming parser cannot disambiguate, carry on rather than fail;
    // the worst case is a missed link, and htmd parses the page properly afterwards.
    let settings = handlers
        .into_iter()
        .fold(Settings::new().with_strict(false), |settings, handler| {
            settings.append_element_content_handler(handler)
        });
    let mut output = Vec::with_capacity(html.len() + html.len() / 8);
    let mut rewriter = HtmlRewriter::new(settings, |chunk: &[u8]| output.extend_from_slice(chunk));
    let result: Result<(), lol_html::errors::RewritingError> = rewriter
        .write(html.as_bytes())
        .and_then(|()| rewriter.end());
    let rewritten = match result {
        Ok(()) => Some(match String::from_utf8(output) {
            Ok(text) => text,
            Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
        }),
        Err(error) => {
            tracing::debug!(%error, %url, "html rewriting failed, converting the page as fetched");
            None
        }
    };
    let mut extracted = state.into_inner();
    extracted.rewritten = rewritten;
    extracted
}

/// An attribute's value with character references decoded (lol_html hands out the raw text).
fn attribute(el: &Element<'_, '_>, name: &str) -> Option<String> {
    el.get_attribute(name)
        .map(|value| decode_entities(&value).into_owned())
}

fn set_url_attribute(el: &mut Element<'_, '_>, name: &str, url: &Url) {
    // The value is written as is apart from quotes, so `&` must be escaped for the markdown
    // pass to read the URL back unchanged.
    let escaped = url.as_str().replace('&', "&amp;");
    // Only fails for invalid attribute names; ours are constants.
    let _ = el.set_attribute(name, &escaped);
}

fn is_data_url(value: &str) -> bool {
    value
        .trim_start()
        .get(..5)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("data:"))
}

/// `href` resolved against `base`, only when that gives an http(s) URL. Not normalised: the
/// markdown keeps fragments and index documents as the author wrote them.
fn http_join(base: &Url, href: &str) -> Option<Url> {
    let href = href.trim_matches(|c: char| c.is_ascii_whitespace());
    if href.is_empty() {
        return None;
    }
    let joined = base.join(href).ok()?;
    matches!(joined.scheme(), "http" | "https").then_some(joined)
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn collapse_whitespace(text: &str) -> String {
    let mut collapsed = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !collapsed.is_empty() {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
    }
    collapsed
}

fn mime_essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

fn charset_parameter(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']).trim().to_owned())
            .filter(|label| !label.is_empty())
    })
}

/// A simplified form of the HTML encoding prescan: the first `charset=` label in the first
/// kilobyte (`<meta charset="…">` or `<meta http-equiv content="…; charset=…">`).
fn sniff_meta_charset(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(CHARSET_PRESCAN_BYTES)];
    let lower = head.to_ascii_lowercase();
    let at = lower.windows(8).position(|w| w == b"charset=")? + 8;
    let label: String = lower[at..]
        .iter()
        .skip_while(|b| matches!(b, b'"' | b'\'' | b' '))
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
        .map(|&b| char::from(b))
        .collect();
    non_empty(label)
}

/// Labels the Encoding Standard maps to windows-1252.
fn is_windows_1252(label: &str) -> bool {
    const LABELS: [&str; 17] = [
        "ansi_x3.4-1968",
        "ascii",
        "cp1252",
        "cp819",
        "csisolatin1",
        "ibm819",
        "iso-8859-1",
        "iso-ir-100",
        "iso8859-1",
        "iso88591",
        "iso_8859-1",
        "iso_8859-1:1987",
        "l1",
        "latin1",
        "us-ascii",
        "windows-1252",
        "x-cp1252",
    ];
    LABELS.iter().any(|known| label.eq_ignore_ascii_case(known))
}

/// Code points of windows-1252 bytes 0x80..=0x9F; the rest of the range is Latin-1.
const WINDOWS_1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}', '\u{8F}',
    '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}', '\u{178}',
];

fn windows_1252_char(byte: u8) -> char {
    match byte {
        0x80..=0x9F => WINDOWS_1252_HIGH[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

fn decode_windows_1252(body: &[u8]) -> String {
    body.iter().map(|&b| windows_1252_char(b)).collect()
}

/// Decodes character references (`&amp;`, `&#39;`, `&#x2014;`, common named ones). Numeric
/// references follow the HTML rules (windows-1252 remapping of 0x80..=0x9F, U+FFFD for
/// invalid code points, `;` optional); named ones need their `;` and unknown names stay as
/// written.
fn decode_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut decoded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        decoded.push_str(&rest[..amp]);
        let reference = &rest[amp + 1..];
        match decode_reference(reference, &mut decoded) {
            Some(consumed) => rest = &reference[consumed..],
            None => {
                decoded.push('&');
                rest = reference;
            }
        }
    }
    decoded.push_str(rest);
    Cow::Owned(decoded)
}

/// Decodes the reference at the start of `text` (just after `&`) into `out`; returns the
/// number of bytes it used, or None when `text` does not start with a known reference.
fn decode_reference(text: &str, out: &mut String) -> Option<usize> {
    if let Some(number) = text.strip_prefix('#') {
        let (digits_start, radix) = match number.as_bytes().first() {
            Some(b'x' | b'X') => (1, 16),
            _ => (0, 10),
        };
        let digits = &number[digits_start..];
        let len = digits
            .bytes()
            .take_while(|b| char::from(*b).is_digit(radix))
            .count();
        if len == 0 {
            return None;
        }
        // Anything past U+10FFFF is invalid; long runs of digits must not overflow.
        let code = u32::from_str_radix(&digits[..len.min(8)], radix).unwrap_or(u32::MAX);
        let code = if len > 8 { u32::MAX } else { code };
        out.push(match code {
            0x80..=0x9F => WINDOWS_1252_HIGH[(code - 0x80) as usize],
            0 => '\u{FFFD}',
            _ => char::from_u32(code).unwrap_or('\u{FFFD}'),
        });
        let semicolon = usize::from(digits[len..].starts_with(';'));
        return Some(1 + digits_start + len + semicolon);
    }
    let name_len = text
        .bytes()
        .take(MAX_ENTITY_NAME_LEN + 1)
        .take_while(u8::is_ascii_alphanumeric)
        .count();
    if name_len == 0 || !text[name_len..].starts_with(';') {
        return None;
    }
    let name = &text[..name_len];
    let (_, value) = NAMED_ENTITIES.iter().find(|(known, _)| *known == name)?;
    out.push_str(value);
    Some(name_len + 1)
}

const MAX_ENTITY_NAME_LEN: usize = 8;

/// The named references that actually turn up in titles, descriptions and URLs.
const NAMED_ENTITIES: [(&str, &str); 64] = [
    ("amp", "&"),
    ("lt", "<"),
    ("gt", ">"),
    ("quot", "\""),
    ("apos", "'"),
    ("nbsp", "\u{A0}"),
    ("ensp", "\u{2002}"),
    ("emsp", "\u{2003}"),
    ("thinsp", "\u{2009}"),
    ("shy", "\u{AD}"),
    ("zwnj", "\u{200C}"),
    ("zwj", "\u{200D}"),
    ("copy", "©"),
    ("reg", "®"),
    ("trade", "™"),
    ("hellip", "…"),
    ("mdash", "—"),
    ("ndash", "–"),
    ("lsquo", "‘"),
    ("rsquo", "’"),
    ("sbquo", "‚"),
    ("ldquo", "“"),
    ("rdquo", "”"),
    ("bdquo", "„"),
    ("laquo", "«"),
    ("raquo", "»"),
    ("lsaquo", "‹"),
    ("rsaquo", "›"),
    ("middot", "·"),
    ("bull", "•"),
    ("euro", "€"),
    ("pound", "£"),
    ("yen", "¥"),
    ("cent", "¢"),
    ("sect", "§"),
    ("para", "¶"),
    ("deg", "°"),
    ("plusmn", "±"),
    ("times", "×"),
    ("divide", "÷"),
    ("frac12", "½"),
    ("larr", "←"),
    ("rarr", "→"),
    ("harr", "↔"),
    ("rArr", "⇒"),
    ("aacute", "á"),
    ("agrave", "à"),
    ("acirc", "â"),
    ("auml", "ä"),
    ("aring", "å"),
    ("aelig", "æ"),
    ("ccedil", "ç"),
    ("eacute", "é"),
    ("egrave", "è"),
    ("ecirc", "ê"),
    ("iacute", "í"),
    ("ntilde", "ñ"),
    ("oacute", "ó"),
    ("ouml", "ö"),
    ("oslash", "ø"),
    ("uacute", "ú"),
    ("uuml", "ü"),
    ("szlig", "ß"),
    ("Eacute", "É"),
];

fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_url() -> Url {
        Url::parse("https://example.com/docs/guide/intro.html").unwrap()
    }

    fn links_of(html: &str, strip_query: bool) -> Vec<String> {
        parse(html, &page_url(), false, strip_query)
            .links
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn built_in_selectors_parse() {
        assert!(selectors().is_some());
    }

    #[test]
    fn link_variants() {
        let html = r##"<html><body>
            <a href="setup.html">relative</a>
            <a href="./config">dot</a>
            <a href="../api/">parent</a>
            <a href="/root/index.html">index</a>
            <a href="https://other.org/x#frag">absolute</a>
            <a href="//cdn.example.net/lib">protocol relative</a>
            <a href="#top">fragment only</a>
            <a href="mailto:me@example.com">mail</a>
            <a href="javascript:void(0)">js</a>
            <a href="tel:123">tel</a>
            <a href="">empty</a>
            <a>no href</a>
            <a href="setup.html#part-2">duplicate</a>
            <a href="/search?q=a&amp;page=2">query</a>
            <a href=" /spaced ">spaced</a>
            <a rel="nofollow" href="/nofollow">kept</a>
            <map><area href="/area" alt="area"></map>
        </body></html>"##;
        assert_eq!(
            links_of(html, false),
            [
                "https://example.com/docs/guide/setup.html",
                "https://example.com/docs/guide/config",
                "https://example.com/docs/api/",
                "https://example.com/root/",
                "https://other.org/x",
                "https://cdn.example.net/lib",
                "https://example.com/search?q=a&page=2",
                "https://example.com/spaced",
                "https://example.com/nofollow",
                "https://example.com/area",
            ]
        );
    }

    #[test]
    fn strips_queries_and_deduplicates() {
        let html =
            r#"<a href="/a?x=1">1</a><a href="/a?x=2">2</a><a href="/b?">3</a><a href="/a">4</a>"#;
        assert_eq!(
            links_of(html, true),
            ["https://example.com/a", "https://example.com/b"]
        );
        assert_eq!(
            links_of(html, false),
            [
                "https://example.com/a?x=1",
                "https://example.com/a?x=2",
                "https://example.com/b",
                "https://example.com/a",
            ]
        );
    }

    #[test]
    fn base_href_applies_to_every_link() {
        let html = r#"<html><head><base href="https://static.example.com/v2/"><link rel="canonical" href="page"></head>
            <body><a href="a.html">a</a><a href="/b">b</a><a href="https://x.org/">c</a></body></html>"#;
        let page = parse(html, &page_url(), false, false);
        let links: Vec<String> = page.links.into_iter().map(String::from).collect();
        assert_eq!(
            links,
            [
                "https://static.example.com/v2/a.html",
                "https://static.example.com/b",
                "https://x.org/",
            ]
        );
        assert_eq!(
            page.metadata.canonical_url.as_deref(),
            Some("https://static.example.com/v2/page")
        );
        // The markdown links point where the page's links point.
        assert!(page
            .markdown
            .contains("[a](https://static.example.com/v2/a.html)"));
    }

    #[test]
    fn relative_base_href_and_non_http_base_are_handled() {
        let html = r#"<base href="/other/"><a href="x">x</a>"#;
        assert_eq!(links_of(html, false), ["https://example.com/other/x"]);
        let html = r#"<base href="javascript:alert(1)"><a href="x">x</a>"#;
        assert_eq!(links_of(html, false), ["https://example.com/docs/guide/x"]);
    }

    #[test]
    fn metadata() {
        let html = r#"<!DOCTYPE html>
            <html lang=" en-GB ">
            <head>
              <meta charset="utf-8">
              <title>
                 Getting   started &mdash; Tom &amp; Jerry&#39;s
                 docs
              </title>
              <meta property="og:description" content="Open graph text">
              <meta name="Description" content="  The   guide &amp; more.  ">
              <link rel="alternate canonical" href="/docs/guide/intro.html?utm=1#x">
            </head>
            <body><svg><title>icon</title></svg><p>Hi</p></body></html>"#;
        let page = parse(html, &page_url(), false, false);
        assert_eq!(
            page.metadata,
            PageMetadata {
                title: Some("Getting started — Tom & Jerry's docs".into()),
                description: Some("The guide & more.".into()),
                language: Some("en-GB".into()),
                canonical_url: Some("https://example.com/docs/guide/intro.html?utm=1".into()),
            }
        );
    }

    #[test]
    fn metadata_fallbacks_and_absence() {
        let html = r#"<html><head><meta property="og:description" content="From OG"><title></title></head><body><svg><title>icon</title></svg></body></html>"#;
        let metadata = parse(html, &page_url(), false, false).metadata;
        assert_eq!(metadata.description.as_deref(), Some("From OG"));
        assert_eq!(metadata.title, None);
        assert_eq!(metadata.language, None);
        assert_eq!(metadata.canonical_url, None);

        let metadata = parse("<p>bare</p>", &page_url(), false, false).metadata;
        assert_eq!(metadata, PageMetadata::default());
    }

    const DOC_PAGE: &str = r#"<!doctype html>
        <html><head><title>T</title><style>body { color: red }</style>
        <script>var tracking = "SECRET";</script></head>
        <body>
          <header><a href="/">Home</a> | <a href="/pricing">Pricing</a></header>
          <nav><ul><li><a href="/docs/a">Doc A</a></li><li><a href="/docs/b">Doc B</a></li></ul></nav>
          <main>
            <article>
              <header><h1>Install</h1></header>
              <p>Run <code>cargo install</code> to <strong>install</strong>, see <a href="setup.html">setup</a>.</p>
              <h2>Options</h2>
              <ul><li>fast</li><li>safe</li></ul>
              <pre><code class="language-sh">tributary --help
</code></pre>
              <img src="img/diagram.png" alt="Diagram">
              <img src="data:image/png;base64,AAAA" alt="inline">
              <footer>Edit this page</footer>
            </article>
          </main>
          <aside>Related posts</aside>
          <noscript>Enable JS</noscript>
          <iframe src="/ad"></iframe>
          <form><input name="q"><button>Search</button></form>
          <footer>© 2024 Example</footer>
        </body></html>"#;

    #[test]
    fn markdown_of_the_whole_page() {
        let page = parse(DOC_PAGE, &page_url(), false, false);
        let md = &page.markdown;
        assert!(md.contains("# Install"), "{md}");
        assert!(md.contains("## Options"), "{md}");
        assert!(md.contains("Pricing"), "{md}");
        assert!(md.contains("Doc A"), "{md}");
        assert!(md.contains("© 2024 Example"), "{md}");
        assert!(md.contains("Related posts"), "{md}");
        assert!(!md.contains("SECRET"), "{md}");
        assert!(!md.contains("color: red"), "{md}");
        assert!(!md.contains("Enable JS"), "{md}");
        assert!(
            !md.starts_with('T'),
            "the head's title is not content: {md}"
        );
        assert_eq!(md.trim(), md);
        // Links from the chrome are links all the same.
        assert!(page
            .links
            .iter()
            .any(|l| l.as_str() == "https://example.com/docs/b"));
    }

    #[test]
    fn markdown_of_the_main_content() {
        let page = parse(DOC_PAGE, &page_url(), true, false);
        let md = &page.markdown;
        assert!(md.starts_with("# Install"), "{md}");
        assert!(md.contains("## Options"), "{md}");
        assert!(md.contains("Run `cargo install` to **install**"), "{md}");
        assert!(
            md.contains("[setup](https://example.com/docs/guide/setup.html)"),
            "{md}"
        );
        assert!(md.contains("- fast\n- safe"), "{md}");
        assert!(md.contains("```sh\ntributary --help\n```"), "{md}");
        assert!(
            md.contains("![Diagram](https://example.com/docs/guide/img/diagram.png)"),
            "{md}"
        );
        assert!(!md.contains("base64"), "{md}");
        for chrome in [
            "Pricing",
            "Doc A",
            "Related posts",
            "© 2024",
            "Edit this page",
            "Search",
        ] {
            assert!(!md.contains(chrome), "{chrome} in {md}");
        }
        // Main-content mode only affects the markdown, never the links.
        assert!(page
            .links
            .iter()
            .any(|l| l.as_str() == "https://example.com/pricing"));
    }

    #[test]
    fn main_content_without_a_main_element_drops_the_chrome() {
        let html = r#"<body><nav>Menu</nav><header>Banner</header><div><h1>Title</h1><p>Body text.</p></div>
            <aside>Ads</aside><footer>Footer</footer></body>"#;
        let md = parse(html, &page_url(), true, false).markdown;
        assert_eq!(md, "# Title\n\nBody text.");
        let md = parse(html, &page_url(), false, false).markdown;
        assert!(
            md.contains("Menu") && md.contains("Banner") && md.contains("Footer"),
            "{md}"
        );
    }

    #[test]
    fn role_main_counts_as_main() {
        let html = r#"<body><div class="sidebar">Sidebar</div><div role="main"><h1>Doc</h1><p>Text</p></div><div>After</div></body>"#;
        let md = parse(html, &page_url(), true, false).markdown;
        assert_eq!(md, "# Doc\n\nText");
    }

    #[test]
    fn unclosed_main_runs_to_the_end() {
        let html = r#"<body><div>Before</div><main><p>Inside</p><p>Still inside"#;
        let md = parse(html, &page_url(), true, false).markdown;
        assert_eq!(md, "Inside\n\nStill inside");
    }

    #[test]
    fn head_without_end_tag_keeps_the_body() {
        let html = "<html><head><title>T</title><body><p>Kept</p>";
        let page = parse(html, &page_url(), true, false);
        assert_eq!(page.markdown, "Kept");
        assert_eq!(page.metadata.title.as_deref(), Some("T"));
    }

    #[test]
    fn in_page_links_are_unwrapped_and_permalinks_dropped() {
        let html = r##"<h2 id="opts">Options<a class="hash-link" href="#opts">#</a></h2>
            <h3>Flags<a href="#flags" aria-hidden="true">¶</a></h3>
            <p>See <a href="#opts">the options</a> and <a href="/next">next</a>.</p>
            <p><a class="anchor" href="#x">#</p><p>Unclosed permalinks lose nothing else.</p>"##;
        let page = parse(html, &page_url(), false, false);
        assert_eq!(
            page.markdown,
            "## Options\n\n### Flags\n\nSee the options and [next](https://example.com/next).\n\nUnclosed permalinks lose nothing else."
        );
        let links: Vec<&str> = page.links.iter().map(Url::as_str).collect();
        assert_eq!(links, ["https://example.com/next"]);
    }

    #[test]
    fn urls_with_ampersands_survive_the_rewrite() {
        let html = r#"<p><a href="/s?a=1&amp;copy=2&amp;b=3">s</a></p>"#;
        let page = parse(html, &page_url(), false, false);
        assert!(
            page.markdown
                .contains("[s](https://example.com/s?a=1&copy=2&b=3)"),
            "{}",
            page.markdown
        );
    }

    #[test]
    fn lazy_images_use_data_src() {
        let html = r#"<img src="data:image/gif;base64,R0lGOD" data-src="/real.png" alt="Real">"#;
        let md = parse(html, &page_url(), false, false).markdown;
        assert_eq!(md, "![Real](https://example.com/real.png)");
    }

    #[test]
    fn malformed_html_does_not_panic() {
        let huge_attribute = format!(
            r#"<a href="/{}" title="{}">x</a>"#,
            "a".repeat(100_000),
            "t".repeat(1_000_000)
        );
        let inputs = [
            String::new(),
            "<".into(),
            "<html><body><div><p><a href='/x'>unclosed".into(),
            "</div></div></p><p><<<>>>&&&;&#;&#x;&#99999999999;&unknown;".into(),
            "<main><main></main>".into(),
            "<a href=/before>b</a><select><xmp><script>\"use strict\";</script></select><a href=/after>a</a>".into(),
            "<title>never closed".into(),
            "<a href=\"\u{0}\u{FFFD}\">nul</a><svg><a href=\"/svg\"></svg>".into(),
            "<base href=\"http://[::1\"><a href=\"x\">x</a>".into(),
            "<table><tr><td><table><td>nested</table><ul><li><ol><li>deep".into(),
            "<!-- tributary:main-content:start --><main>x</main><!--tributary:main-content:end-->".into(),
            "<div>".repeat(10_000),
            "<ul><li><blockquote><table><tr><td><code><b>".repeat(2_000),
            huge_attribute,
            String::from_utf8_lossy(&[0xff, 0xfe, 0x3c, 0x61, 0x20, 0x68, 0x72, 0x65, 0x66, 0x3d, 0x80]).into_owned(),
        ];
        for input in &inputs {
            for only_main in [false, true] {
                let _ = parse(input, &page_url(), only_main, true);
            }
        }
        let page = parse(&inputs[5], &page_url(), false, false);
        // Markup a streaming parser cannot disambiguate costs at most the links after it.
        assert!(page.links.iter().any(|l| l.path() == "/before"));
    }

    #[test]
    fn deep_nesting_is_limited_before_parsing() {
        let shallow = "<div><p>a<p>b<ul><li>c<li>d</ul></div>".repeat(100);
        assert!(matches!(limit_nesting(&shallow), Cow::Borrowed(_)));
        let many_void = "<div>".to_string() + &"<br><img src=x><input>".repeat(2_000);
        assert!(matches!(limit_nesting(&many_void), Cow::Borrowed(_)));
        let svg = format!(
            "<svg>{}</svg><div>after</div>",
            "<path d='M0 0'/>".repeat(2_000)
        );
        assert!(matches!(limit_nesting(&svg), Cow::Borrowed(_)));
        let raw_text = format!("<textarea>{}</TEXTAREA><p>x", "<div>".repeat(2_000));
        assert!(matches!(limit_nesting(&raw_text), Cow::Borrowed(_)));
        let commented = format!("<!--{}--><p>x", "<div>".repeat(2_000));
        assert!(matches!(limit_nesting(&commented), Cow::Borrowed(_)));

        let deep = format!(
            "{}deep text{}",
            "<div class='a>b'>".repeat(600),
            "</div>".repeat(600)
        );
        let limited = limit_nesting(&deep);
        assert_eq!(limited.matches("<div").count(), MAX_SOURCE_NESTING);
        assert!(limited.contains("deep text"));
        let md = parse(&deep, &page_url(), false, false).markdown;
        assert_eq!(md, "deep text");

        // Text and void elements beyond the limit are kept.
        let deep = format!("{}<b>bold</b><br>end", "<span>".repeat(5_000));
        let md = parse(&deep, &page_url(), false, false).markdown;
        assert!(md.contains("bold") && md.ends_with("end"), "{md}");
    }

    #[test]
    fn pathological_pages_parse_quickly() {
        let started = std::time::Instant::now();
        for html in [
            "<div>".repeat(100_000),
            "<div/>".repeat(100_000),
            "<b><i>".repeat(50_000),
        ] {
            let page = parse(&html, &page_url(), true, false);
            assert!(page.markdown.is_empty(), "{}", page.markdown);
        }
        // Unoptimised test builds are slow; without the limit this takes minutes.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn is_html_by_content_type_or_sniffing() {
        assert!(is_html(Some("text/html"), b""));
        assert!(is_html(Some("Text/HTML; charset=UTF-8"), b"{}"));
        assert!(is_html(Some("application/xhtml+xml"), b""));
        assert!(!is_html(Some("application/json"), b"<!doctype html>"));
        assert!(!is_html(Some("text/plain"), b"<html>"));
        assert!(is_html(None, b"<!DOCTYPE html><html>"));
        assert!(is_html(None, b"\xEF\xBB\xBF \n\t<HTML lang=en>"));
        assert!(is_html(Some(""), b"<html>"));
        assert!(!is_html(None, b"%PDF-1.7"));
        assert!(!is_html(None, b"<?xml version=\"1.0\"?><urlset/>"));
        assert!(!is_html(None, b""));
    }

    #[test]
    fn decodes_bodies() {
        assert_eq!(
            decode(Some("text/html; charset=utf-8"), "é".as_bytes()),
            "é"
        );
        assert_eq!(decode(None, "é".as_bytes()), "é");
        assert_eq!(decode(None, b"\xEF\xBB\xBFbom"), "bom");
        assert_eq!(
            decode(
                Some("text/html; charset=\"ISO-8859-1\""),
                b"caf\xe9 \x93q\x94"
            ),
            "café \u{201C}q\u{201D}"
        );
        assert_eq!(
            decode(None, b"<meta charset='windows-1252'><p>caf\xe9</p>"),
            "<meta charset='windows-1252'><p>café</p>"
        );
        assert_eq!(decode(None, b"bad \xff byte"), "bad \u{FFFD} byte");
        assert_eq!(
            decode(Some("text/html; charset=shift_jis"), b"ok \xff"),
            "ok \u{FFFD}"
        );
    }

    #[test]
    fn decodes_character_references() {
        for (input, expected) in [
            ("plain", "plain"),
            ("a &amp; b", "a & b"),
            ("&lt;tag&gt;", "<tag>"),
            ("&#39;&#x27;&#X41;&#150;", "''A–"),
            ("&#65", "A"),
            (
                "&#0;&#xD800;&#1114112;&#99999999999999;",
                "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}",
            ),
            ("&unknown; &amp &; &#; &#x;", "&unknown; &amp &; &#; &#x;"),
            ("Caf&eacute; &mdash; &nbsp;", "Café — \u{A0}"),
            ("&", "&"),
        ] {
            assert_eq!(decode_entities(input), expected, "{input}");
        }
    }
}
