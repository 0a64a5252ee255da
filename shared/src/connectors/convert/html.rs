//! HTML → markdown for sources that deliver HTML (mail bodies, exported or rendered pages),
//! through the crawl's converter so every source writes the same markdown for the same HTML.

use url::Url;

use crate::crawl::html;

/// The markdown of a whole HTML document or fragment (nothing dropped as site chrome);
/// relative links and images are made absolute against `base`. Never panics.
pub fn html_to_markdown(html: &str, base: &Url) -> String {
    html::parse(html, base, false, false).markdown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_with_absolute_links_and_without_scripts() {
        let base = Url::parse("https://mail.example.com/inbox/").unwrap();
        let markdown = html_to_markdown(
            "<h1>Hello</h1><p>See <a href=\"notes/1\">the notes</a>.</p>\
             <script>alert(1)</script><nav><a href=\"/\">home</a></nav>",
            &base,
        );
        assert!(markdown.starts_with("# Hello"), "{markdown}");
        assert!(
            markdown.contains("[the notes](https://mail.example.com/inbox/notes/1)"),
            "{markdown}"
        );
        assert!(!markdown.contains("alert"), "{markdown}");
        assert!(markdown.contains("home"), "{markdown}");
    }
}
