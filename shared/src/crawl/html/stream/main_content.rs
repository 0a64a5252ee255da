//! Main content without a tree: the `<main>` (or `role=main`) stretch of the output, else
//! the only `<article>`, else the page minus what is dropped as chrome.

use lol_html::html_content::Element;

use super::{is_chrome_name, is_chrome_role, Close, Converter, MainContent, Tag};

impl Converter {
    pub(super) fn open_main(&mut self) -> Close {
        self.writer.block_break(2);
        if self.only_main && self.main == MainContent::NotSeen && self.tables.is_empty() {
            self.main = MainContent::Open {
                start: self.writer.len(),
            };
            return Close::Main;
        }
        Close::Block(2)
    }

    /// A page without a main element but with exactly one `<article>` (blogs, Medium):
    /// that article is the main content. Noted like the main element, decided at the end.
    pub(super) fn open_article(&mut self) -> Close {
        self.writer.block_break(2);
        if self.only_main && self.main == MainContent::NotSeen && self.tables.is_empty() {
            self.articles += 1;
            if self.articles == 1 {
                self.article = MainContent::Open {
                    start: self.writer.len(),
                };
                return Close::Article;
            }
        }
        Close::Block(2)
    }

    pub(super) fn open_main_by_role(&mut self, el: &Element<'_, '_>) -> Close {
        let is_main = el
            .get_attribute("role")
            .is_some_and(|role| role.trim().eq_ignore_ascii_case("main"));
        if is_main {
            return self.open_main();
        }
        self.writer.block_break(2);
        Close::Block(2)
    }

    /// Content left out: never content (scripts, forms' controls), hidden, or (main-content
    /// mode) site chrome by element, ARIA role or class/id.
    pub(super) fn is_dropped(&self, tag: Tag, el: &Element<'_, '_>) -> bool {
        match tag {
            Tag::Skipped | Tag::Head => return true,
            _ if !tag.is_container() => return false,
            _ => {}
        }
        // (`hidden` content stays: inactive tabs hide the other languages' examples.)
        if !self.only_main {
            return false;
        }
        let in_main = matches!(self.main, MainContent::Open { .. });
        match tag {
            Tag::Nav | Tag::Footer | Tag::Aside | Tag::Form | Tag::Dialog => return true,
            Tag::Header if !in_main => return true,
            _ => {}
        }
        if el
            .get_attribute("aria-hidden")
            .is_some_and(|hidden| hidden.trim().eq_ignore_ascii_case("true"))
        {
            return true;
        }
        if let Some(role) = el.get_attribute("role") {
            if is_chrome_role(&role, in_main) {
                return true;
            }
        }
        let named_chrome = |name: Option<String>| {
            name.is_some_and(|name| name.split_ascii_whitespace().any(is_chrome_name))
        };
        named_chrome(el.get_attribute("class")) || named_chrome(el.get_attribute("id"))
    }
}
