//! Sitemaps (sitemaps.org): `<urlset>` lists pages, `<sitemapindex>` lists further sitemaps.
//! Read with a streaming XML reader so a 50 MB sitemap never becomes a DOM; plain-text
//! sitemaps (one URL per line) are accepted too. Gzipped sitemaps must be decompressed by the
//! caller.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, Event};
use quick_xml::Reader;
use url::Url;

/// The protocol's own limit per sitemap file; anything past it is ignored.
pub const MAX_SITEMAP_ENTRIES: usize = 50_000;

/// A `<loc>` longer than this is not a URL worth fetching (the protocol caps them at 2048).
const MAX_LOC_LEN: usize = 8 * 1024;

#[derive(Debug, PartialEq)]
pub enum Sitemap {
    /// Page URLs from `<urlset>` (or a plain-text sitemap).
    Urls(Vec<Url>),
    /// Child sitemap URLs from `<sitemapindex>`.
    Index(Vec<Url>),
}

#[derive(Debug, thiserror::Error)]
pub enum SitemapError {
    #[error("sitemap is not well-formed XML: {0}")]
    Xml(String),
    #[error("document is neither a <urlset>, a <sitemapindex> nor a plain-text list of URLs")]
    NotASitemap,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Urls,
    Index,
}

/// Parses `<urlset><url><loc>` and `<sitemapindex><sitemap><loc>` (namespaces ignored,
/// whitespace trimmed, invalid or non-http(s) locs skipped, at most 50 000 entries). Plain-text
/// sitemaps (one URL per line) are accepted when the body is not XML.
///
/// A document that breaks off after some entries (a body truncated by a size cap, say) yields
/// the entries read so far; it is an error only when nothing usable was read.
pub fn parse(body: &[u8]) -> Result<Sitemap, SitemapError> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    if text.starts_with('<') {
        parse_xml(text)
    } else {
        parse_plain_text(text)
    }
}

fn parse_plain_text(text: &str) -> Result<Sitemap, SitemapError> {
    let urls: Vec<Url> = text
        .lines()
        .filter_map(|line| http_url(line.trim()))
        .take(MAX_SITEMAP_ENTRIES)
        .collect();
    if urls.is_empty() {
        Err(SitemapError::NotASitemap)
    } else {
        Ok(Sitemap::Urls(urls))
    }
}

fn parse_xml(text: &str) -> Result<Sitemap, SitemapError> {
    let mut reader = Reader::from_str(text);
    let mut kind: Option<Kind> = None;
    let mut urls: Vec<Url> = Vec::new();
    // Depth of the current element: 1 is the root, 2 an entry (`<url>`/`<sitemap>`), 3 its
    // children. Only a `<loc>` at depth 3 counts, so extension tags such as
    // `<image:image><image:loc>` (depth 4) are not mistaken for pages.
    let mut depth = 0usize;
    let mut in_entry = false;
    let mut loc: Option<String> = None;

    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(error) => {
                return match kind {
                    Some(kind) if !urls.is_empty() => {
                        tracing::debug!(%error, entries = urls.len(), "sitemap breaks off, keeping the entries read");
                        Ok(finish(kind, urls))
                    }
                    _ => Err(SitemapError::Xml(error.to_string())),
                };
            }
        };
        match event {
            Event::Start(start) => {
                depth += 1;
                let name = start.local_name();
                let name = name.as_ref();
                match depth {
                    1 => {
                        kind = Some(match name {
                            "urlset" => Kind::Urls,
                            "sitemapindex" => Kind::Index,
                            _ => return Err(SitemapError::NotASitemap),
                        });
                    }
                    2 => {
                        in_entry = matches!(
                            (kind, name),
                            (Some(Kind::Urls), "url") | (Some(Kind::Index), "sitemap")
                        );
                    }
                    3 if in_entry && name == "loc" => loc = Some(String::new()),
                    _ => {}
                }
            }
            Event::Empty(start) if depth == 0 => {
                // `<urlset/>`: a valid but empty sitemap.
                return match start.local_name().as_ref() {
                    "urlset" => Ok(Sitemap::Urls(Vec::new())),
                    "sitemapindex" => Ok(Sitemap::Index(Vec::new())),
                    _ => Err(SitemapError::NotASitemap),
                };
            }
            Event::Text(text) if depth == 3 => {
                if let Some(loc) = loc.as_mut() {
                    push_capped(loc, &text.xml10_content());
                }
            }
            Event::CData(data) if depth == 3 => {
                if let Some(loc) = loc.as_mut() {
                    push_capped(loc, &data.xml10_content());
                }
            }
            Event::GeneralRef(reference) if depth == 3 => {
                if let Some(loc) = loc.as_mut() {
                    push_capped(loc, &resolve_reference(&reference));
                }
            }
            Event::End(_) => {
                if depth == 3 {
                    if let Some(url) = loc.take().and_then(|loc| http_url(loc.trim())) {
                        urls.push(url);
                        if urls.len() >= MAX_SITEMAP_ENTRIES {
                            break;
                        }
                    }
                }
                if depth == 2 {
                    in_entry = false;
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match kind {
        Some(kind) => Ok(finish(kind, urls)),
        None => Err(SitemapError::NotASitemap),
    }
}

fn finish(kind: Kind, urls: Vec<Url>) -> Sitemap {
    match kind {
        Kind::Urls => Sitemap::Urls(urls),
        Kind::Index => Sitemap::Index(urls),
    }
}

fn push_capped(loc: &mut String, text: &str) {
    // Past the cap the loc is junk anyway; growing it further only costs memory.
    if loc.len() <= MAX_LOC_LEN {
        loc.push_str(text);
    }
}

/// The text an entity or character reference stands for; XML only predefines five entities,
/// so any other name is kept as written (and will most likely make the URL invalid).
fn resolve_reference(reference: &BytesRef<'_>) -> Cow<'static, str> {
    if reference.is_char_ref() {
        if let Ok(Some(ch)) = reference.resolve_char_ref() {
            return Cow::Owned(ch.to_string());
        }
    } else if let Some(text) = quick_xml::escape::resolve_predefined_entity(reference) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!("&{};", &**reference))
}

fn http_url(text: &str) -> Option<Url> {
    if text.is_empty() || text.len() > MAX_LOC_LEN {
        return None;
    }
    let url = Url::parse(text).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(urls: &[Url]) -> Vec<&str> {
        urls.iter().map(Url::as_str).collect()
    }

    #[test]
    fn parses_a_urlset() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url>
    <loc>
      https://example.com/docs/
    </loc>
    <lastmod>2024-01-01</lastmod>
    <image:image><image:loc>https://example.com/logo.png</image:loc></image:image>
  </url>
  <url><loc>https://example.com/search?q=a&amp;page=2</loc></url>
  <url><loc><![CDATA[https://example.com/cdata]]></loc></url>
  <url><loc>https://example.com/&#x41;&#66;</loc></url>
  <url><loc>not a url</loc></url>
  <url><loc>mailto:someone@example.com</loc></url>
  <url><loc></loc></url>
  <url><lastmod>2024-01-01</lastmod></url>
</urlset>"#;
        let Sitemap::Urls(urls) = parse(body).unwrap() else {
            panic!("expected a urlset");
        };
        assert_eq!(
            strings(&urls),
            [
                "https://example.com/docs/",
                "https://example.com/search?q=a&page=2",
                "https://example.com/cdata",
                "https://example.com/AB",
            ]
        );
    }

    #[test]
    fn parses_a_sitemap_index_with_prefixed_names() {
        let body = "\u{feff}<?xml version=\"1.0\"?>\n<sm:sitemapindex xmlns:sm=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
            <sm:sitemap><sm:loc>https://example.com/sitemap-1.xml</sm:loc></sm:sitemap>\
            <sm:sitemap><sm:loc> https://example.com/sitemap-2.xml.gz </sm:loc><sm:lastmod>x</sm:lastmod></sm:sitemap>\
            </sm:sitemapindex>";
        assert_eq!(
            parse(body.as_bytes()).unwrap(),
            Sitemap::Index(vec![
                Url::parse("https://example.com/sitemap-1.xml").unwrap(),
                Url::parse("https://example.com/sitemap-2.xml.gz").unwrap(),
            ])
        );
    }

    #[test]
    fn locs_outside_entries_are_ignored() {
        let body = b"<urlset><loc>https://example.com/stray</loc><sitemap><loc>https://example.com/wrong</loc></sitemap><url><loc>https://example.com/ok</loc></url></urlset>";
        let Sitemap::Urls(urls) = parse(body).unwrap() else {
            panic!("expected a urlset");
        };
        assert_eq!(strings(&urls), ["https://example.com/ok"]);
    }

    #[test]
    fn empty_sitemaps() {
        assert_eq!(parse(b"<urlset/>").unwrap(), Sitemap::Urls(vec![]));
        assert_eq!(
            parse(b"<sitemapindex></sitemapindex>").unwrap(),
            Sitemap::Index(vec![])
        );
    }

    #[test]
    fn html_is_not_a_sitemap() {
        let body =
            b"<!DOCTYPE html><html><head><title>404</title></head><body>Not found</body></html>";
        assert!(matches!(parse(body), Err(SitemapError::NotASitemap)));
        assert!(matches!(
            parse(b"<rss><channel/></rss>"),
            Err(SitemapError::NotASitemap)
        ));
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(matches!(parse(b""), Err(SitemapError::NotASitemap)));
        assert!(matches!(parse(b"   \n"), Err(SitemapError::NotASitemap)));
        assert!(matches!(
            parse(b"\x1f\x8b\x08\x00\x00\x00garbage"),
            Err(SitemapError::NotASitemap)
        ));
        assert!(matches!(
            parse(b"hello world\nthis is text"),
            Err(SitemapError::NotASitemap)
        ));
        assert!(matches!(
            parse(b"<urlset><url><loc>https://e.com/</url></urlset>"),
            Err(SitemapError::Xml(_))
        ));
        assert!(parse(b"<<<>>>").is_err());
    }

    #[test]
    fn truncated_sitemap_keeps_entries_read() {
        let body = b"<urlset><url><loc>https://e.com/a</loc></url><url><loc>https://e.com/b</loc></url><url><lo";
        let Sitemap::Urls(urls) = parse(body).unwrap() else {
            panic!("expected a urlset");
        };
        assert_eq!(strings(&urls), ["https://e.com/a", "https://e.com/b"]);
    }

    #[test]
    fn plain_text_sitemap() {
        let body = b"https://example.com/a\r\n\n  https://example.com/b  \n# comment\nftp://example.com/c\nhttps://example.com/c\n";
        let Sitemap::Urls(urls) = parse(body).unwrap() else {
            panic!("expected urls");
        };
        assert_eq!(
            strings(&urls),
            [
                "https://example.com/a",
                "https://example.com/b",
                "https://example.com/c"
            ]
        );
    }

    #[test]
    fn caps_entries() {
        let mut body = String::from("<urlset>");
        for i in 0..MAX_SITEMAP_ENTRIES + 10 {
            body.push_str(&format!("<url><loc>https://e.com/{i}</loc></url>"));
        }
        body.push_str("</urlset>");
        let Sitemap::Urls(urls) = parse(body.as_bytes()).unwrap() else {
            panic!("expected a urlset");
        };
        assert_eq!(urls.len(), MAX_SITEMAP_ENTRIES);
        assert_eq!(urls[0].as_str(), "https://e.com/0");

        let lines: String = (0..MAX_SITEMAP_ENTRIES + 10)
            .map(|i| format!("https://e.com/{i}\n"))
            .collect();
        let Sitemap::Urls(urls) = parse(lines.as_bytes()).unwrap() else {
            panic!("expected urls");
        };
        assert_eq!(urls.len(), MAX_SITEMAP_ENTRIES);
    }
}
