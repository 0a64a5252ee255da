//! The properties every good converter has (`markdown_properties`): fences for every
//! `<pre>`, no invented quotes, inline-only link text, terms apart from their definitions,
//! chrome out of main content.

use regex::Regex;

use super::Fixture;

/// What `markdown` (converted with only_main_content) gets wrong about `source`.
pub(crate) fn property_violations(source: &str, markdown: &str, expect: &Fixture) -> Vec<String> {
    let mut problems = no_code_leaks(markdown);
    let lines = lines_outside_fences(markdown);

    let fences = fence_lines(markdown);
    if fences < 2 * expect.pre {
        problems.push(format!(
            "{} <pre> element(s) but only {fences} fence line(s)",
            expect.pre
        ));
    }

    if !expect.nested_quotes {
        let nested = Regex::new(r"^\s*>\s*>").expect("regex");
        if let Some(line) = lines.iter().find(|line| nested.is_match(line)) {
            problems.push(format!(
                "a nested blockquote the page does not have: {line:?}"
            ));
        }
    }

    let blank_in_link = Regex::new(r"\[[^\]]*\n\s*\n[^\]]*\]\(").expect("regex");
    if let Some(found) = blank_in_link.find(markdown) {
        problems.push(format!(
            "a blank line inside link text: {:?}",
            found.as_str()
        ));
    }

    // A definition list's term ends its line (`**data**ndarray` and `**data**The values.` are
    // run-ons), compared on letters and digits only, so any punctuation may separate them.
    let squashed: Vec<String> = lines
        .iter()
        .map(|line| squash(&strip_link_targets(line)))
        .collect();
    let whole = squashed.concat();
    let unmarked = markdown.replace(['*', '_', '`'], "");
    for term in definition_terms(source) {
        let key = squash(&term.text);
        if !key.is_empty() && whole.contains(&key) && !squashed.iter().any(|l| l.ends_with(&key)) {
            problems.push(format!("the <dt> {:?} does not end its line", term.text));
        }
        for glued in &term.junctions {
            if unmarked.contains(glued.as_str()) {
                problems.push(format!(
                    "the parts of the <dt> {:?} run together: {glued:?}",
                    term.text
                ));
            }
        }
    }

    if markdown.contains("CHROMEMARKER") {
        let line = markdown.lines().find(|l| l.contains("CHROMEMARKER"));
        problems.push(format!("site chrome in the main content: {line:?}"));
    }
    let (wanted, found) = (
        source.matches("MAINMARKER").count(),
        markdown.matches("MAINMARKER").count(),
    );
    if found < wanted {
        problems.push(format!(
            "{found} of the {wanted} MAINMARKER(s) of the main content"
        ));
    }

    let separators = lines.iter().filter(|line| is_table_separator(line)).count();
    if separators < expect.tables {
        problems.push(format!(
            "{} data table(s) but {separators} pipe table(s)",
            expect.tables
        ));
    }
    problems
}

/// Script and style content never reaches the markdown (every fixture's scripts and styles
/// say SCRIPTMARKER).
pub(crate) fn no_code_leaks(markdown: &str) -> Vec<String> {
    ["SCRIPTMARKER", "<script", "<style"]
        .iter()
        .filter(|needle| markdown.contains(**needle))
        .map(|needle| format!("script or style content in the markdown ({needle})"))
        .collect()
}

/// Lines that open or close a fenced code block.
pub(crate) fn fence_lines(markdown: &str) -> usize {
    markdown
        .lines()
        .filter(|line| {
            let line = line.trim_start();
            line.starts_with("```") || line.starts_with("~~~")
        })
        .count()
}

/// The lines that are not inside a fenced code block (nor fences themselves).
fn lines_outside_fences(markdown: &str) -> Vec<&str> {
    let mut open: Option<(char, usize)> = None;
    let mut lines = Vec::new();
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        match (open, marker) {
            (None, Some(c)) if run >= 3 => open = Some((c, run)),
            (None, _) => lines.push(line),
            (Some((c, len)), Some(m))
                if m == c && run >= len && trimmed.trim_start_matches(c).trim().is_empty() =>
            {
                open = None;
            }
            (Some(_), _) => {}
        }
    }
    lines
}

pub(crate) fn is_table_separator(line: &str) -> bool {
    let line = line.trim();
    line.starts_with('|')
        && line.contains("---")
        && line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

struct DefinitionTerm {
    /// The text, tags stripped.
    text: String,
    /// Words of two elements that touch in the source (`<strong>data</strong><span
    /// class="classifier">ndarray</span>`), as they would read glued: "datandarray".
    junctions: Vec<String>,
}

/// The `<dt>` elements of the source.
fn definition_terms(source: &str) -> Vec<DefinitionTerm> {
    let dt = Regex::new(r"(?is)<dt\b[^>]*>(.*?)</dt>").expect("regex");
    let tag = Regex::new(r"(?s)<[^>]*>").expect("regex");
    let decode = |text: &str| {
        text.replace("&nbsp;", " ")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    dt.captures_iter(source)
        .map(|c| {
            let pieces: Vec<String> = tag
                .split(&c[1])
                .filter(|piece| !piece.is_empty())
                .map(decode)
                .collect();
            let mut junctions = Vec::new();
            for pair in pieces.windows(2) {
                let before: String = trailing_word(&pair[0]);
                let after: String = pair[1]
                    .chars()
                    .take_while(|c| c.is_alphanumeric())
                    .collect();
                if !before.is_empty() && !after.is_empty() {
                    junctions.push(format!("{before}{after}"));
                }
            }
            DefinitionTerm {
                text: pieces
                    .concat()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                junctions,
            }
        })
        .collect()
}

fn trailing_word(text: &str) -> String {
    let word: Vec<char> = text
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric())
        .collect();
    word.into_iter().rev().collect()
}

/// A markdown line without its link targets: `[text](url)` becomes `[text]`.
fn strip_link_targets(line: &str) -> String {
    static TARGET: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let target = TARGET.get_or_init(|| Regex::new(r"\]\([^)]*\)").expect("regex"));
    target.replace_all(line, "]").into_owned()
}

/// Only the letters and digits, lowercased.
fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}
