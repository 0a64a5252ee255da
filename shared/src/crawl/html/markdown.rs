//! The markdown side of the streaming converter: a writer that is told "a block starts",
//! "this text", "an emphasis opens" in document order and produces CommonMark as it goes,
//! with no tree. Block separation is owed rather than written (so a paragraph that turns out
//! empty leaves nothing behind), inline markers wait for their first character (so `<b> x</b>`
//! becomes ` **x**` and an empty `<b></b>` nothing), and list items and block quotes are
//! containers whose prefixes start every line written inside them.

/// A block-level container whose prefix starts each of its lines.
enum Container {
    Quote,
    /// A list item: its marker on its first line, then as many spaces on the next ones.
    Item {
        indent: usize,
        marker: Option<String>,
    },
}

/// The writer's state that a table cell starts afresh and gives back when it ends.
#[derive(Default)]
struct Line {
    out: String,
    /// Newlines owed before the next content: 1 = line break, 2 = blank line.
    owed_newlines: u8,
    /// The owed single newline is a hard line break (`<br>`).
    hard_break: bool,
    pending_space: bool,
    /// Inline markers (`**`, `[`, `## `) written just before the next content.
    pending_open: String,
    /// A line was started and its containers' prefixes are still to be written.
    needs_prefix: bool,
    /// Newlines written by `settle` before that line (they count toward later breaks).
    settled: u8,
    containers: Vec<Container>,
    /// Inside a heading, link or table cell: blocks there become spaces.
    inline_only: u32,
    /// A table cell: `|` would end it.
    escape_pipes: bool,
}

#[derive(Default)]
pub(super) struct Writer {
    line: Line,
    /// Outer writers' state while a table cell is being written.
    saved: Vec<Line>,
    /// Open links: `]` would end their text.
    link_depth: u32,
}

/// Where an inline marker was opened, to know at its end whether anything followed it.
#[derive(Clone, Copy)]
pub(super) struct Opened {
    pending_len: usize,
    out_len: usize,
}

impl Writer {
    pub fn len(&self) -> usize {
        self.line.out.len()
    }

    pub fn is_inline_only(&self) -> bool {
        self.line.inline_only > 0
    }

    pub fn into_string(self) -> String {
        self.line.out
    }

    pub fn slice(&self, from: usize, to: usize) -> &str {
        self.line.out.get(from..to).unwrap_or_default()
    }

    /// A paragraph boundary (`newlines` 2) or a line boundary (1).
    pub fn block_break(&mut self, newlines: u8) {
        let line = &mut self.line;
        if line.inline_only > 0 {
            line.pending_space = true;
            return;
        }
        if line.out.is_empty() {
            return;
        }
        let already = if line.needs_prefix { line.settled } else { 0 };
        let newlines = newlines.saturating_sub(already);
        if newlines > line.owed_newlines {
            line.owed_newlines = newlines;
            line.hard_break = false;
        }
        line.pending_space = false;
    }

    pub fn hard_break(&mut self) {
        let line = &mut self.line;
        if line.inline_only > 0 {
            line.pending_space = true;
        } else if line.owed_newlines == 0 && !line.out.is_empty() && !line.out.ends_with('\n') {
            line.owed_newlines = 1;
            line.hard_break = true;
            line.pending_space = false;
        }
    }

    pub fn space(&mut self) {
        self.line.pending_space = true;
    }

    /// HTML text: whitespace collapsed, markdown syntax escaped.
    pub fn text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if text.starts_with(is_html_space) {
            self.space();
        }
        let mut words = text.split(is_html_space).filter(|w| !w.is_empty());
        if let Some(first) = words.next() {
            self.word(first);
            for word in words {
                self.space();
                self.word(word);
            }
            if text.ends_with(is_html_space) {
                self.space();
            }
        }
    }

    fn word(&mut self, word: &str) {
        let line_start = self.flush();
        let escapes = Escapes {
            line_start,
            bracket: self.link_depth > 0,
            pipe: self.line.escape_pipes,
        };
        escape_into(&mut self.line.out, word, escapes);
    }

    /// Content written as is (already markdown: code spans, images).
    pub fn raw(&mut self, markdown: &str) {
        if !markdown.is_empty() {
            self.flush();
            self.line.out.push_str(markdown);
        }
    }

    pub fn open(&mut self, marker: &str) -> Opened {
        let opened = Opened {
            pending_len: self.line.pending_open.len(),
            out_len: self.line.out.len(),
        };
        self.line.pending_open.push_str(marker);
        opened
    }

    /// True when something was written since `opened`; else the marker is taken back.
    pub fn wrote_since(&mut self, opened: Opened) -> bool {
        let line = &mut self.line;
        if line.pending_open.len() > opened.pending_len {
            line.pending_open.truncate(opened.pending_len);
            false
        } else {
            line.out.len() > opened.out_len
        }
    }

    /// Closes an inline marker right after its content (a trailing space stays pending).
    pub fn close(&mut self, opened: Opened, marker: &str) -> bool {
        let wrote = self.wrote_since(opened);
        if wrote {
            self.line.out.push_str(marker);
        }
        wrote
    }

    /// Text written since `opened` (for permalink checks).
    pub fn written_since(&self, opened: Opened) -> &str {
        self.line.out.get(opened.out_len..).unwrap_or_default()
    }

    /// Removes everything written since `opened`.
    pub fn take_back(&mut self, opened: Opened) {
        self.wrote_since(opened);
        self.line.out.truncate(opened.out_len);
    }

    pub fn enter_link(&mut self) {
        self.link_depth += 1;
    }

    pub fn leave_link(&mut self) {
        self.link_depth = self.link_depth.saturating_sub(1);
    }

    pub fn enter_inline_only(&mut self) {
        self.line.inline_only += 1;
    }

    pub fn leave_inline_only(&mut self) {
        self.line.inline_only = self.line.inline_only.saturating_sub(1);
    }

    pub fn push_quote(&mut self) -> bool {
        if self.line.inline_only > 0 {
            return false;
        }
        self.block_break(2);
        self.settle();
        self.line.containers.push(Container::Quote);
        true
    }

    pub fn push_item(&mut self, marker: String) -> bool {
        if self.line.inline_only > 0 {
            self.space();
            return false;
        }
        self.block_break(1);
        self.settle();
        self.line.containers.push(Container::Item {
            indent: marker.chars().count(),
            marker: Some(marker),
        });
        true
    }

    pub fn pop_container(&mut self) {
        self.line.containers.pop();
    }

    /// A fenced code block: `content` as is, every line inside the current containers.
    pub fn code_block(&mut self, language: Option<&str>, content: &str) {
        let content = content.strip_prefix('\n').unwrap_or(content);
        let content = content.trim_end();
        if content.trim().is_empty() {
            return;
        }
        if self.line.inline_only > 0 {
            let collapsed: Vec<&str> = content.split_whitespace().collect();
            self.raw(&code_span(&collapsed.join(" ")));
            return;
        }
        let fence = "`".repeat(longest_run(content, '`').max(2) + 1);
        self.block_break(2);
        self.flush();
        let out = &mut self.line.out;
        out.push_str(&fence);
        out.push_str(language.unwrap_or_default());
        for code_line in content.split('\n') {
            self.newline_with_prefix(false);
            self.line.out.push_str(code_line.trim_end_matches('\r'));
        }
        self.newline_with_prefix(false);
        self.line.out.push_str(&fence);
        self.block_break(2);
    }

    /// A table cell (or caption) is written into its own buffer.
    pub fn begin_capture(&mut self) {
        let outer = std::mem::take(&mut self.line);
        self.saved.push(outer);
        self.line.inline_only = 1;
        self.line.escape_pipes = true;
    }

    pub fn end_capture(&mut self) -> String {
        match self.saved.pop() {
            Some(outer) => std::mem::replace(&mut self.line, outer).out,
            None => String::new(),
        }
    }

    /// A rendered table as one block.
    pub fn table(&mut self, rows: &[String]) {
        if rows.is_empty() || self.line.inline_only > 0 {
            for row in rows {
                self.raw(row);
                self.space();
            }
            return;
        }
        self.block_break(2);
        for (index, row) in rows.iter().enumerate() {
            if index == 0 {
                self.flush();
            } else {
                self.newline_with_prefix(false);
            }
            self.line.out.push_str(row);
        }
        self.block_break(2);
    }

    /// Writes what is owed before content: newlines with their line prefixes, or a space, then
    /// pending markers. True when the content starts a line.
    fn flush(&mut self) -> bool {
        self.settle();
        let line_start = if self.line.needs_prefix || self.line.out.is_empty() {
            self.line.needs_prefix = false;
            self.line.settled = 0;
            self.write_prefix(false);
            true
        } else {
            let line = &mut self.line;
            if line.pending_space && !line.out.ends_with(['\n', ' ']) {
                line.out.push(' ');
            }
            false
        };
        let line = &mut self.line;
        line.pending_space = false;
        if line.pending_open.is_empty() {
            return line_start;
        }
        line.out.push_str(&line.pending_open);
        line.pending_open.clear();
        // After `## ` or `**` the content no longer starts the line.
        false
    }

    /// Writes the newlines owed, with the prefixes of the containers open now, leaving the
    /// next line's prefix for its content: a container opening after a block break starts
    /// on that next line.
    fn settle(&mut self) {
        let owed = self.line.owed_newlines;
        if owed == 0 {
            return;
        }
        if self.line.hard_break {
            self.line.out.push_str("  ");
        }
        for _ in 1..owed {
            self.newline_with_prefix(true);
        }
        let line = &mut self.line;
        line.out.push('\n');
        line.settled = if line.needs_prefix {
            line.settled + owed
        } else {
            owed
        };
        line.needs_prefix = true;
        line.owed_newlines = 0;
        line.hard_break = false;
        line.pending_space = false;
    }

    fn newline_with_prefix(&mut self, blank: bool) {
        self.line.out.push('\n');
        self.write_prefix(blank);
    }

    /// The containers' prefixes; on a blank line without trailing spaces and without using
    /// up a list item's marker.
    fn write_prefix(&mut self, blank: bool) {
        let line = &mut self.line;
        let start = line.out.len();
        for container in &mut line.containers {
            match container {
                Container::Quote => line.out.push_str("> "),
                Container::Item { indent, marker } => match marker.take_if(|_| !blank) {
                    Some(marker) => line.out.push_str(&marker),
                    None => line.out.extend(std::iter::repeat_n(' ', *indent)),
                },
            }
        }
        if blank {
            let kept = line.out[start..].trim_end().len();
            line.out.truncate(start + kept);
        }
    }
}

fn is_html_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{c}')
}

pub(super) fn longest_run(text: &str, wanted: char) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == wanted {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// `code` as a code span, its backtick fence longer than any run of backticks inside.
pub(super) fn code_span(code: &str) -> String {
    let fence = "`".repeat(longest_run(code, '`') + 1);
    let pad = if code.starts_with('`') || code.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{code}{pad}{fence}")
}

/// Escapes what would otherwise be read as markdown: emphasis and code markers, link
/// brackets, raw HTML, and at the start of a line heading, quote and list markers.
#[derive(Clone, Copy)]
struct Escapes {
    line_start: bool,
    bracket: bool,
    pipe: bool,
}

fn escape_into(out: &mut String, word: &str, escapes: Escapes) {
    let mut ordered_marker_at = None;
    if escapes.line_start {
        match line_start_marker(word) {
            LineStartMarker::Leading => out.push('\\'),
            LineStartMarker::Ordered(at) => ordered_marker_at = Some(at),
            LineStartMarker::None => {}
        }
    }
    let mut previous = out.chars().next_back();
    let mut chars = word.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next = chars.peek().map(|(_, c)| *c);
        if ordered_marker_at == Some(at) {
            out.push('\\');
        }
        let escape = match c {
            '*' | '`' | '[' => true,
            ']' => escapes.bracket,
            '_' => {
                !(previous.is_some_and(char::is_alphanumeric)
                    && next.is_some_and(char::is_alphanumeric))
            }
            '<' => next.is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')),
            '\\' => next.is_some_and(|n| n.is_ascii_punctuation()),
            '|' => escapes.pipe,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
        previous = Some(c);
    }
}

enum LineStartMarker {
    None,
    /// `#`, `>`, a bullet or a setext underline: escaped before its first character.
    Leading,
    /// `1.` / `1)`: escaped before the punctuation, at this byte.
    Ordered(usize),
}

fn line_start_marker(word: &str) -> LineStartMarker {
    let bytes = word.as_bytes();
    match bytes.first() {
        Some(b'#' | b'>') => LineStartMarker::Leading,
        Some(b'-' | b'+' | b'=') if bytes.iter().all(|b| *b == bytes[0]) => {
            LineStartMarker::Leading
        }
        Some(b'0'..=b'9') => {
            let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits + 1 == bytes.len() && matches!(bytes[digits], b'.' | b')') {
                LineStartMarker::Ordered(digits)
            } else {
                LineStartMarker::None
            }
        }
        _ => LineStartMarker::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_and_inline_markers() {
        let mut w = Writer::default();
        w.text("  Hello ");
        let b = w.open("**");
        w.text(" bold ");
        w.close(b, "**");
        w.text("world");
        w.block_break(2);
        let empty = w.open("**");
        w.close(empty, "**");
        w.text("next");
        assert_eq!(w.into_string(), "Hello **bold** world\n\nnext");
    }

    #[test]
    fn nested_containers_prefix_every_line() {
        let mut w = Writer::default();
        w.push_item("- ".into());
        w.text("one");
        w.block_break(2);
        w.text("more");
        w.push_quote();
        w.text("quoted");
        w.block_break(2);
        w.text("again");
        w.pop_container();
        w.pop_container();
        w.block_break(2);
        w.text("after");
        assert_eq!(
            w.into_string(),
            "- one\n\n  more\n\n  > quoted\n  >\n  > again\n\nafter"
        );
    }

    #[test]
    fn code_blocks_are_fenced_longer_than_their_backticks() {
        let mut w = Writer::default();
        w.text("Intro");
        w.code_block(Some("python"), "\n>>> x = 1\n```\n\n");
        assert_eq!(w.into_string(), "Intro\n\n````python\n>>> x = 1\n```\n````");
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x"), "`` `x ``");
    }

    #[test]
    fn escapes_markdown_syntax() {
        let mut w = Writer::default();
        w.text("# not a heading, 2*3, snake_case, _x_ [a] <b> C:\\dir 1.");
        w.block_break(2);
        w.text("1. two");
        assert_eq!(
            w.into_string(),
            "\\# not a heading, 2\\*3, snake_case, \\_x\\_ \\[a] \\<b> C:\\dir 1.\n\n1\\. two"
        );
    }
}
