//! One fetched HTML page → metadata, outgoing links and markdown, in one streaming pass
//! (`stream`: lol_html's tokenizer, no tree) that drives a markdown writer (`markdown`).
//! Memory per page is the page, its markdown and its links, however deep or large the markup.

mod classify;
mod markdown;
mod stream;
mod text;

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;

use url::Url;

use super::normalize;
#[cfg(test)]
use text::decode_entities;
pub use text::{decode, is_html};

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
    /// Absolute, normalised (`normalize::normalize` of the link resolved against the
    /// effective base), deduplicated, in document order. Fragment-only hrefs (`#section`)
    /// are left out: they never name another document.
    pub links: Vec<Url>,
    pub markdown: String,
}

/// Parses one page: metadata, links and markdown (see [`Page`]). `url` is the page's final
/// URL (after redirects); `strip_query` is passed on to [`normalize::normalize`] for the
/// links. In main-content mode navigation, sidebars, footers and banners are left out of the
/// markdown (their links are still returned). Never panics, whatever the input.
pub fn parse(html: &str, url: &Url, only_main_content: bool, strip_query: bool) -> Page {
    let converted = std::panic::catch_unwind(AssertUnwindSafe(|| {
        stream::convert(html, url, only_main_content)
    }));
    // The pass is our code over a third-party tokenizer fed hostile input: should either
    // panic, this page loses its content rather than the whole batch failing.
    let Ok(extracted) = converted else {
        tracing::error!(%url, "html conversion panicked");
        return Page::default();
    };
    let base = extracted.base.clone().unwrap_or_else(|| url.clone());
    let metadata = PageMetadata {
        title: text::non_empty(text::collapse_whitespace(&text::decode_entities(
            &extracted.title,
        ))),
        description: extracted
            .description
            .or(extracted.og_description)
            .and_then(text::non_empty),
        language: extracted.language,
        canonical_url: extracted
            .canonical_href
            .and_then(|href| normalize::resolve(&base, &href, false))
            .map(String::from),
    };
    let mut seen = HashSet::with_capacity(extracted.links.len());
    let links = extracted
        .links
        .iter()
        .filter_map(|link| normalize::normalize(link, strip_query))
        .filter(|link| seen.insert(link.as_str().to_owned()))
        .collect();
    Page {
        metadata,
        links,
        markdown: extracted.markdown,
    }
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
    fn deep_nesting_keeps_the_text() {
        let deep = format!(
            "{}deep text{}",
            "<div class='a>b'>".repeat(600),
            "</div>".repeat(600)
        );
        let md = parse(&deep, &page_url(), false, false).markdown;
        assert_eq!(md, "deep text");

        // Text and markup beyond the tracked depth are kept.
        let deep = format!("{}<b>bold</b><br>end", "<span>".repeat(5_000));
        let md = parse(&deep, &page_url(), false, false).markdown;
        assert!(md.contains("bold") && md.ends_with("end"), "{md}");
        let quotes = format!("{}x", "<blockquote>".repeat(2_000));
        let md = parse(&quotes, &page_url(), false, false).markdown;
        assert!(md.ends_with('x') && md.len() < 4 * 2_000, "{}", md.len());
    }

    #[test]
    fn pathological_pages_give_empty_markdown() {
        // No tree and no recursion: these cost time linear in their size (measured in
        // release: 100,000 open <div>s in ~0.13 s).
        for html in [
            "<div>".repeat(30_000),
            "<div/>".repeat(30_000),
            "<b><i>".repeat(15_000),
        ] {
            let page = parse(&html, &page_url(), true, false);
            assert!(page.markdown.is_empty(), "{}", page.markdown);
        }
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
