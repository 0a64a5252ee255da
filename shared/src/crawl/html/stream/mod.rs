//! The single pass over a page: lol_html tokenizes it and calls back for every element, end
//! tag and text node; this keeps a small stack of the open elements that matter and drives
//! the markdown [`Writer`], while collecting the metadata and links on the way. No tree is
//! built, so memory is the page, its markdown and its links, whatever the markup.
//!
//! lol_html does not build a tree and calls no end-tag handler for an element that is closed
//! implicitly, so the stack applies the HTML parser's common implied-end rules itself (`<p>`
//! before a block, `<li>` before `<li>`, cells and rows) and an end tag closes everything
//! opened after its element.
//!
//! Main content, without a tree: everything outside dropped chrome is written once; where a
//! `<main>` (or `role=main`) element starts and ends is noted in the output, and when the page
//! has one the markdown is that stretch.

mod main_content;
mod metadata;
mod tables;

use std::cell::RefCell;
use std::rc::Rc;

use lol_html::html_content::{Element, EndTag, TextChunk, TextType};
use lol_html::{DocumentContentHandlers, ElementContentHandlers, HtmlRewriter, Selector, Settings};
use url::Url;

use super::classify::{
    attribute, code_language, http_join, is_chrome_name, is_chrome_role, is_data_url,
    is_line_number, is_permalink, markdown_target, Tag,
};
use super::markdown::{code_span, Opened, Writer};
use super::text::{collapse_whitespace, decode_entities, non_empty};
use tables::TableState;

/// Open elements tracked; deeper ones are treated as part of the deepest tracked element.
const MAX_FRAMES: usize = 4096;
/// Longer hrefs are junk (inline data, tracking blobs); servers refuse them anyway.
const MAX_HREF_LEN: usize = 8 * 1024;

/// What the pass read from a page.
#[derive(Default)]
pub(super) struct Extracted {
    pub title: String,
    pub description: Option<String>,
    pub og_description: Option<String>,
    pub language: Option<String>,
    /// Entity-decoded, unresolved.
    pub canonical_href: Option<String>,
    /// The base links were resolved against (the page's URL or its `<base href>`).
    pub base: Option<Url>,
    /// http(s) links in document order, resolved, not normalised.
    pub links: Vec<Url>,
    pub markdown: String,
}

/// Runs the pass. lol_html is not strict here: on markup a streaming parser cannot
/// disambiguate it carries on, and whatever was read up to an error is kept.
pub(super) fn convert(html: &str, url: &Url, only_main_content: bool) -> Extracted {
    let state = Rc::new(RefCell::new(Converter::new(url, only_main_content)));
    let Ok(any) = "*".parse::<Selector>() else {
        return Extracted::default();
    };
    let element_state = Rc::clone(&state);
    let text_state = Rc::clone(&state);
    let elements = ElementContentHandlers::default().element(move |el: &mut Element<'_, '_>| {
        let opened = element_state.borrow_mut().start(el);
        if let Some(id) = opened {
            let end_state = Rc::clone(&element_state);
            let registered = el.on_end_tag(Box::new(move |_: &mut EndTag<'_>| {
                end_state.borrow_mut().end(id);
                Ok(())
            }));
            if registered.is_err() {
                element_state.borrow_mut().end(id);
            }
        }
        Ok(())
    });
    let texts = DocumentContentHandlers::default().text(move |chunk: &mut TextChunk<'_>| {
        text_state.borrow_mut().text(chunk);
        Ok(())
    });
    let settings = Settings::new()
        .with_strict(false)
        .append_element_content_handler((std::borrow::Cow::Owned(any), elements))
        .append_document_content_handler(texts);
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    let written = rewriter
        .write(html.as_bytes())
        .and_then(|()| rewriter.end());
    if let Err(error) = written {
        tracing::debug!(%error, %url, "html tokenizing stopped early; keeping what was read");
    }
    let converter = match Rc::try_unwrap(state) {
        Ok(cell) => cell.into_inner(),
        // The rewriter (and the handlers holding clones) is gone by now; this is unreachable,
        // but an empty page is the safe answer should it not be.
        Err(_) => return Extracted::default(),
    };
    converter.finish()
}

const COUNTED_TAGS: usize = 5;
const COUNT_PARAGRAPH: usize = 0;

/// The slot in `open_counts` of the tags implied ends look for.
fn counted(tag: Tag) -> Option<usize> {
    match tag {
        Tag::Paragraph => Some(COUNT_PARAGRAPH),
        Tag::Item => Some(1),
        Tag::Term | Tag::Definition => Some(2),
        Tag::Cell { .. } | Tag::Row | Tag::TableHead | Tag::TableSection => Some(3),
        Tag::Anchor => Some(4),
        _ => None,
    }
}

/// What an element's end undoes or completes.
enum Close {
    Nothing,
    Space,
    Unskip,
    Block(u8),
    Heading(Opened),
    Marker {
        opened: Option<Opened>,
        marker: &'static str,
        tag: Tag,
    },
    Link {
        opened: Opened,
        target: String,
    },
    InPageLink {
        opened: Opened,
        permalink_markup: bool,
    },
    Item,
    Quote,
    List,
    Term(Option<Opened>),
    Pre,
    Code,
    Table,
    Row,
    Cell {
        header: bool,
        colspan: usize,
    },
    Caption,
    TableHead,
    Main,
    Article,
}

struct Frame {
    id: u32,
    tag: Tag,
    close: Close,
    /// A code language named by this element's class (Sphinx puts it on a wrapper `<div>`).
    language: Option<String>,
}

struct ListState {
    ordered: bool,
    next: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MainContent {
    NotSeen,
    Open { start: usize },
    Closed { start: usize, end: usize },
}

#[derive(PartialEq, Eq)]
enum TitleState {
    NotSeen,
    /// Inside the document's first `<title>`; later ones (e.g. in inline SVG) are ignored.
    Reading,
    Done,
}

struct Converter {
    page: Url,
    base: Url,
    base_seen: bool,
    only_main: bool,
    frames: Vec<Frame>,
    next_id: u32,
    /// Open elements whose content is dropped.
    skipping: u32,
    /// Main content mode, after the main element ended: only links are still read.
    done: bool,
    main: MainContent,
    /// The first `<article>`'s stretch, and how many there were.
    article: MainContent,
    articles: u32,
    /// Open frames per tag that implied ends look for, so most starts need no stack walk.
    open_counts: [u32; COUNTED_TAGS],
    writer: Writer,
    /// The current text node, gathered across chunks.
    text: String,
    title_state: TitleState,
    pre: Option<(u32, Option<String>, String)>,
    code: Option<(u32, String)>,
    lists: Vec<ListState>,
    tables: Vec<TableState>,
    /// Tables inside a table cell, link or heading: written as plain text.
    flat_tables: u32,
    strong: u32,
    emphasis: u32,
    deleted: u32,
    extracted: Extracted,
}

impl Converter {
    fn new(url: &Url, only_main: bool) -> Self {
        Self {
            page: url.clone(),
            base: url.clone(),
            base_seen: false,
            only_main,
            frames: Vec::with_capacity(64),
            next_id: 0,
            skipping: 0,
            done: false,
            main: MainContent::NotSeen,
            article: MainContent::NotSeen,
            articles: 0,
            open_counts: [0; COUNTED_TAGS],
            writer: Writer::default(),
            text: String::new(),
            title_state: TitleState::NotSeen,
            pre: None,
            code: None,
            lists: Vec::new(),
            tables: Vec::new(),
            flat_tables: 0,
            strong: 0,
            emphasis: 0,
            deleted: 0,
            extracted: Extracted::default(),
        }
    }

    /// An element starts; `Some(id)` when it was pushed and its end tag should be reported.
    fn start(&mut self, el: &Element<'_, '_>) -> Option<u32> {
        self.flush_text();
        let tag = Tag::of(&el.tag_name());
        let target = self.read_metadata_and_links(tag, el);
        if !tag.belongs_in_head() && self.frames.last().is_some_and(|f| f.tag == Tag::Head) {
            // `<head>` without its end tag ends where the body's content starts.
            self.close_down_to(self.frames.len() - 1);
        }
        if self.skipping > 0 || self.done {
            return None;
        }
        self.close_implied(tag);
        if !el.can_have_content() {
            self.void_element(tag, el);
            return None;
        }
        if self.frames.len() >= MAX_FRAMES {
            return None;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let language = matches!(tag, Tag::Block | Tag::Pre | Tag::Code)
            .then(|| code_language(el))
            .flatten();
        let close = self.open(tag, el, id, target, language.as_deref());
        if let Some(index) = counted(tag) {
            self.open_counts[index] += 1;
        }
        self.frames.push(Frame {
            id,
            tag,
            close,
            language,
        });
        Some(id)
    }

    /// An element's end tag: it and everything opened after it end.
    fn end(&mut self, id: u32) {
        self.flush_text();
        if let Some(position) = self.frames.iter().rposition(|frame| frame.id == id) {
            self.close_down_to(position);
        }
    }

    fn close_down_to(&mut self, position: usize) {
        while self.frames.len() > position {
            if let Some(frame) = self.frames.pop() {
                if let Some(index) = counted(frame.tag) {
                    self.open_counts[index] = self.open_counts[index].saturating_sub(1);
                }
                self.close(frame);
            }
        }
    }

    fn text(&mut self, chunk: &TextChunk<'_>) {
        if self.title_state == TitleState::Reading {
            self.extracted.title.push_str(chunk.as_str());
            if chunk.last_in_text_node() {
                self.title_state = TitleState::Done;
            }
            return;
        }
        if self.skipping > 0 || self.done {
            return;
        }
        match chunk.text_type() {
            TextType::Data | TextType::RCData | TextType::CDataSection | TextType::PlainText => {
                self.text.push_str(chunk.as_str());
            }
            TextType::RawText | TextType::ScriptData => {}
        }
        if chunk.last_in_text_node() {
            self.flush_text();
        }
    }

    fn flush_text(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let raw = std::mem::take(&mut self.text);
        let decoded = decode_entities(&raw);
        if let Some((_, _, pre)) = &mut self.pre {
            pre.push_str(&decoded);
        } else if let Some((_, code)) = &mut self.code {
            code.push_str(&decoded);
        } else {
            self.writer.text(&decoded);
        }
        // Reuse the allocation for the next text node.
        let mut raw = raw;
        raw.clear();
        self.text = raw;
    }

    /// The implied ends the HTML parser applies when `tag` starts.
    fn close_implied(&mut self, tag: Tag) {
        let wanted = match tag {
            Tag::Item => Some(Tag::Item),
            Tag::Term | Tag::Definition => Some(Tag::Term),
            Tag::Cell { .. } => Some(Tag::Cell { header: false }),
            Tag::Row | Tag::TableHead | Tag::TableSection => Some(Tag::Row),
            Tag::Anchor => Some(Tag::Anchor),
            _ => None,
        };
        let paragraph_open = self.open_counts[COUNT_PARAGRAPH] > 0;
        let other_open = wanted
            .and_then(counted)
            .is_some_and(|index| self.open_counts[index] > 0);
        let heading_on_top = self
            .frames
            .last()
            .is_some_and(|frame| matches!(frame.tag, Tag::Heading(_)));
        if !(other_open || heading_on_top || paragraph_open && tag.closes_paragraph()) {
            return;
        }
        let stop_at =
            |frame: &Frame, wanted: &dyn Fn(Tag) -> bool, limits: &dyn Fn(Tag) -> bool| {
                if wanted(frame.tag) {
                    Some(true)
                } else if limits(frame.tag) || frame.tag.is_scope_boundary() {
                    Some(false)
                } else {
                    None
                }
            };
        let find =
            |frames: &[Frame], wanted: &dyn Fn(Tag) -> bool, limits: &dyn Fn(Tag) -> bool| {
                for (index, frame) in frames.iter().enumerate().rev() {
                    match stop_at(frame, wanted, limits) {
                        Some(true) => return Some(index),
                        Some(false) => return None,
                        None => {}
                    }
                }
                None
            };
        let no_limit = |_: Tag| false;
        if tag.closes_paragraph() {
            if let Some(index) = find(&self.frames, &|t| t == Tag::Paragraph, &no_limit) {
                self.close_down_to(index);
            }
        }
        let found = match tag {
            Tag::Item => find(&self.frames, &|t| t == Tag::Item, &|t| {
                matches!(t, Tag::Unordered | Tag::Ordered)
            }),
            Tag::Term | Tag::Definition => find(
                &self.frames,
                &|t| matches!(t, Tag::Term | Tag::Definition),
                &|t| t == Tag::Definitions,
            ),
            Tag::Cell { .. } => find(&self.frames, &|t| matches!(t, Tag::Cell { .. }), &|t| {
                t == Tag::Row
            }),
            Tag::Row => find(&self.frames, &|t| t == Tag::Row, &no_limit),
            Tag::TableHead | Tag::TableSection => find(
                &self.frames,
                &|t| matches!(t, Tag::Row | Tag::TableHead | Tag::TableSection),
                &no_limit,
            ),
            Tag::Heading(_) => self
                .frames
                .last()
                .filter(|frame| matches!(frame.tag, Tag::Heading(_)))
                .map(|_| self.frames.len() - 1),
            Tag::Anchor => self.frames.iter().rposition(|f| f.tag == Tag::Anchor),
            _ => None,
        };
        if let Some(index) = found {
            self.close_down_to(index);
        }
    }

    fn void_element(&mut self, tag: Tag, el: &Element<'_, '_>) {
        match tag {
            Tag::Image => self.image(el),
            Tag::Break => match &mut self.pre {
                Some((_, _, pre)) => pre.push('\n'),
                None => self.writer.hard_break(),
            },
            Tag::Rule if self.pre.is_none() => {
                if self.writer.is_inline_only() {
                    self.writer.space();
                } else {
                    self.writer.block_break(2);
                    self.writer.raw("---");
                    self.writer.block_break(2);
                }
            }
            Tag::Input if self.pre.is_none() => {
                let checkbox = el
                    .get_attribute("type")
                    .is_some_and(|kind| kind.eq_ignore_ascii_case("checkbox"));
                if checkbox {
                    let mark = if el.has_attribute("checked") {
                        "[x]"
                    } else {
                        "[ ]"
                    };
                    self.writer.raw(mark);
                    self.writer.space();
                }
            }
            _ => {}
        }
    }

    fn image(&mut self, el: &Element<'_, '_>) {
        // Inline images would put kilobytes of base64 into the markdown, and lazy loading
        // pages keep the real image in data-src behind a placeholder.
        let src = attribute(el, "src").filter(|src| !is_data_url(src));
        let src = src.or_else(|| attribute(el, "data-src").filter(|src| !is_data_url(src)));
        let Some(src) = src.and_then(|src| http_join(&self.base, &src)) else {
            return;
        };
        if let Some((_, code)) = &mut self.code {
            code.push(' ');
            return;
        }
        if self.pre.is_some() {
            return;
        }
        let alt = attribute(el, "alt").map(|alt| collapse_whitespace(&alt));
        let alt = alt.unwrap_or_default().replace(['[', ']'], "");
        let image = format!("![{alt}]({})", markdown_target(src.as_str()));
        self.writer.raw(&image);
    }

    /// Decides what the element does and starts it.
    fn open(
        &mut self,
        tag: Tag,
        el: &Element<'_, '_>,
        id: u32,
        target: Option<String>,
        language: Option<&str>,
    ) -> Close {
        if self.pre.is_some() || self.code.is_some() {
            return self.open_inside_code(tag, el, language);
        }
        if self.is_dropped(tag, el) {
            self.skipping += 1;
            return Close::Unskip;
        }
        match tag {
            Tag::Main => self.open_main(),
            Tag::Body | Tag::Html | Tag::Header | Tag::Footer | Tag::Nav | Tag::Aside => {
                self.open_main_by_role(el)
            }
            Tag::Article => self.open_article(),
            Tag::Form | Tag::Dialog | Tag::Block | Tag::Paragraph | Tag::Definitions => {
                if tag == Tag::Block {
                    if let Close::Main = self.open_main_by_role(el) {
                        return Close::Main;
                    }
                }
                self.writer.block_break(2);
                Close::Block(2)
            }
            Tag::Heading(level) => {
                if self.writer.is_inline_only() {
                    self.writer.space();
                    return Close::Space;
                }
                self.writer.block_break(2);
                let opened = self
                    .writer
                    .open(&format!("{} ", "#".repeat(usize::from(level))));
                self.writer.enter_inline_only();
                Close::Heading(opened)
            }
            Tag::Unordered | Tag::Ordered => {
                let nested = self.frames.iter().any(|frame| frame.tag == Tag::Item);
                self.writer.block_break(if nested { 1 } else { 2 });
                let start = el
                    .get_attribute("start")
                    .and_then(|start| start.trim().parse().ok())
                    .unwrap_or(1);
                self.lists.push(ListState {
                    ordered: tag == Tag::Ordered,
                    next: start,
                });
                Close::List
            }
            Tag::Item => {
                let marker = match self.lists.last_mut() {
                    Some(list) if list.ordered => {
                        let marker = format!("{}. ", list.next);
                        list.next += 1;
                        marker
                    }
                    _ => "- ".to_owned(),
                };
                if self.writer.push_item(marker) {
                    Close::Item
                } else {
                    Close::Space
                }
            }
            Tag::Term => {
                self.writer.block_break(2);
                let opened = (self.strong == 0).then(|| self.writer.open("**"));
                self.strong += 1;
                Close::Term(opened)
            }
            Tag::Definition => {
                self.writer.block_break(1);
                Close::Block(1)
            }
            Tag::Quote => {
                if self.writer.push_quote() {
                    Close::Quote
                } else {
                    Close::Space
                }
            }
            Tag::Pre => {
                let language = language
                    .map(str::to_owned)
                    .or_else(|| self.frames.iter().rev().find_map(|f| f.language.clone()));
                self.pre = Some((id, language, String::new()));
                Close::Pre
            }
            Tag::Code => {
                self.code = Some((id, String::new()));
                Close::Code
            }
            Tag::Strong => self.open_marker(tag, "**"),
            Tag::Emphasis => self.open_marker(tag, "*"),
            Tag::Deleted => self.open_marker(tag, "~~"),
            Tag::Anchor => self.open_link(el, target),
            Tag::Table => self.open_table(),
            Tag::Row | Tag::Cell { .. } | Tag::Caption | Tag::TableHead | Tag::TableSection => {
                self.open_table_part(tag, el)
            }
            _ => Close::Nothing,
        }
    }

    /// Inside `<pre>` or `<code>` only the text counts (and a nested `<code>`'s language).
    fn open_inside_code(
        &mut self,
        tag: Tag,
        el: &Element<'_, '_>,
        language: Option<&str>,
    ) -> Close {
        if let (Tag::Code, Some(language), Some((_, slot @ None, _))) =
            (tag, language, self.pre.as_mut())
        {
            *slot = Some(language.to_owned());
        }
        if matches!(tag, Tag::Skipped) || is_line_number(el) {
            self.skipping += 1;
            return Close::Unskip;
        }
        Close::Nothing
    }

    fn open_marker(&mut self, tag: Tag, marker: &'static str) -> Close {
        let depth = match tag {
            Tag::Strong => &mut self.strong,
            Tag::Emphasis => &mut self.emphasis,
            _ => &mut self.deleted,
        };
        // Nested emphasis of one kind adds nothing (and `****` would break the markdown).
        let opened = (*depth == 0).then(|| self.writer.open(marker));
        *depth += 1;
        Close::Marker {
            opened,
            marker,
            tag,
        }
    }

    fn open_link(&mut self, el: &Element<'_, '_>, target: Option<String>) -> Close {
        match target {
            Some(target) if target == "#" => {
                let class = el.get_attribute("class");
                let hidden = el.get_attribute("aria-hidden");
                // "Skip to content" links only make sense on the page itself.
                let skip_link = class
                    .as_deref()
                    .is_some_and(|class| class.to_ascii_lowercase().contains("skip"));
                if skip_link {
                    self.skipping += 1;
                    return Close::Unskip;
                }
                Close::InPageLink {
                    opened: self.writer.open(""),
                    permalink_markup: is_permalink(class.as_deref(), hidden.as_deref()),
                }
            }
            Some(target) => {
                let opened = self.writer.open("[");
                self.writer.enter_link();
                self.writer.enter_inline_only();
                Close::Link { opened, target }
            }
            None => Close::Nothing,
        }
    }

    fn close(&mut self, frame: Frame) {
        match frame.close {
            Close::Nothing => {}
            Close::Space => {
                self.writer.space();
                if frame.tag == Tag::Table {
                    self.flat_tables = self.flat_tables.saturating_sub(1);
                }
            }
            Close::Unskip => self.skipping = self.skipping.saturating_sub(1),
            Close::Block(newlines) => self.writer.block_break(newlines),
            Close::Heading(opened) => {
                self.writer.leave_inline_only();
                self.writer.wrote_since(opened);
                self.writer.block_break(2);
            }
            Close::Marker {
                opened,
                marker,
                tag,
            } => {
                match opened {
                    Some(opened) => {
                        self.writer.close(opened, marker);
                    }
                    // numpydoc's `<dt><strong>name</strong><span>type</span>` relies on CSS
                    // for the separator; without one the two words would run together.
                    None if self.frames.iter().any(|frame| frame.tag == Tag::Term) => {
                        self.writer.space();
                    }
                    None => {}
                }
                let depth = match tag {
                    Tag::Strong => &mut self.strong,
                    Tag::Emphasis => &mut self.emphasis,
                    _ => &mut self.deleted,
                };
                *depth = depth.saturating_sub(1);
            }
            Close::Link { opened, target } => {
                self.writer.leave_inline_only();
                self.writer.leave_link();
                self.writer.close(opened, &format!("]({target})"));
            }
            Close::InPageLink {
                opened,
                permalink_markup,
            } => {
                let text = self.writer.written_since(opened).trim();
                // A permalink is only a symbol; anything longer is real text.
                let permalink = matches!(text, "" | "#" | "¶" | "§" | "🔗" | "\\#")
                    || (permalink_markup && text.chars().count() <= 2);
                if permalink {
                    self.writer.take_back(opened);
                }
            }
            Close::Item => {
                self.writer.pop_container();
                self.writer.block_break(1);
            }
            Close::Quote => {
                self.writer.pop_container();
                self.writer.block_break(2);
            }
            Close::List => {
                self.lists.pop();
                let nested = self.frames.iter().any(|frame| frame.tag == Tag::Item);
                self.writer.block_break(if nested { 1 } else { 2 });
            }
            Close::Term(opened) => {
                if let Some(opened) = opened {
                    self.writer.close(opened, "**");
                }
                self.strong = self.strong.saturating_sub(1);
                self.writer.block_break(1);
            }
            Close::Pre => {
                if let Some((_, language, content)) = self.pre.take() {
                    self.writer.code_block(language.as_deref(), &content);
                }
            }
            Close::Code => {
                if let Some((_, code)) = self.code.take() {
                    let code = collapse_whitespace(&code);
                    if !code.is_empty() {
                        self.writer.raw(&code_span(&code));
                    }
                }
            }
            Close::Table => {
                if let Some(table) = self.tables.pop() {
                    self.write_table(table);
                }
            }
            Close::Row => {}
            Close::Cell { header, colspan } => self.close_cell(header, colspan),
            Close::Caption => self.close_caption(),
            Close::TableHead => {
                if let Some(table) = self.tables.last_mut() {
                    table.in_head = false;
                }
            }
            Close::Article => {
                if let MainContent::Open { start } = self.article {
                    self.article = MainContent::Closed {
                        start,
                        end: self.writer.len(),
                    };
                }
            }
            Close::Main => {
                if let MainContent::Open { start } = self.main {
                    self.main = MainContent::Closed {
                        start,
                        end: self.writer.len(),
                    };
                    // Nothing after the main element is wanted; links still are.
                    self.done = true;
                }
            }
        }
    }

    fn finish(mut self) -> Extracted {
        self.flush_text();
        self.close_down_to(0);
        let chosen = match (self.main, self.article) {
            (MainContent::NotSeen, article) if self.articles == 1 => article,
            (main, _) => main,
        };
        let markdown = match chosen {
            MainContent::Open { start } => self.writer.slice(start, self.writer.len()).to_owned(),
            MainContent::Closed { start, end } => self.writer.slice(start, end).to_owned(),
            MainContent::NotSeen => self.writer.into_string(),
        };
        let mut extracted = self.extracted;
        extracted.markdown = markdown.trim().to_owned();
        extracted.base = Some(self.base);
        extracted
    }
}
