//! URL resolution and the canonical form used to deduplicate pages. Two links that reach the
//! same document should produce the same key, so the crawl fetches it once: fragments,
//! credentials, default ports, `index.html` and (optionally) query strings are dropped.

use sha2::{Digest, Sha256};
use url::Url;

/// Longer hrefs are refused: they are almost always junk (inline data, tracking blobs) and most
/// servers reject request lines over 8 KiB anyway.
const MAX_HREF_LEN: usize = 8 * 1024;

/// Last path segments that servers answer for the directory itself.
const INDEX_DOCUMENTS: [&str; 3] = ["index.html", "index.htm", "index.php"];

/// Resolves `href` against `base` and normalises; None for non-http(s) (mailto:, javascript:,
/// tel:, data:), empty or unparsable hrefs.
pub fn resolve(base: &Url, href: &str, strip_query: bool) -> Option<Url> {
    // Browsers strip leading and trailing ASCII whitespace from attribute URLs.
    let href = href.trim_matches(|c: char| c.is_ascii_whitespace());
    if href.is_empty() || href.len() > MAX_HREF_LEN {
        return None;
    }
    let joined = base.join(href).ok()?;
    normalize(&joined, strip_query)
}

/// Canonical form used for dedupe: http/https only; fragment dropped; scheme+host lowercase and
/// default ports removed (the url crate does these); empty path -> "/"; a last segment
/// `index.html`/`index.htm`/`index.php` is dropped (so /docs/index.html == /docs/); userinfo
/// dropped; query dropped when `strip_query`, and an empty `?` dropped always.
/// Idempotent: `normalize(normalize(u)) == normalize(u)`.
pub fn normalize(url: &Url, strip_query: bool) -> Option<Url> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    let mut normalized = url.clone();
    normalized.set_fragment(None);
    // Both only fail for URLs that cannot have credentials, which http(s) URLs always can.
    let _ = normalized.set_username("");
    let _ = normalized.set_password(None);
    if strip_query || normalized.query() == Some("") {
        normalized.set_query(None);
    }
    let path = normalized.path();
    if path.is_empty() {
        normalized.set_path("/");
    } else if let Some((directory, last)) = path.rsplit_once('/') {
        if INDEX_DOCUMENTS
            .iter()
            .any(|index| last.eq_ignore_ascii_case(index))
        {
            let directory = format!("{directory}/");
            normalized.set_path(&directory);
        }
    }
    Some(normalized)
}

/// Whether [`normalize`] (keeping the query) would return `url` unchanged: a few string
/// checks, so the per-link path can skip the clone and re-serialisation `normalize` costs for
/// links that [`resolve`] produced already.
pub fn is_normalized(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|host| !host.is_empty())
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query() != Some("")
        && url.path().rsplit_once('/').is_some_and(|(_, last)| {
            !INDEX_DOCUMENTS
                .iter()
                .any(|index| last.eq_ignore_ascii_case(index))
        })
}

/// Hex SHA-256 of the normalised URL string (the dedupe key). The URL is normalised again
/// (keeping its query) so a caller that forgot to normalise still gets the canonical key;
/// normalising is idempotent, so an already normalised URL hashes as is.
pub fn url_key(url: &Url) -> String {
    if is_normalized(url) {
        return normalized_key(url.as_str());
    }
    let normalized = normalize(url, false);
    normalized_key(normalized.as_ref().map_or(url.as_str(), Url::as_str))
}

/// [`url_key`] of a URL string known to be normalised: the hash alone.
pub fn normalized_key(canonical: &str) -> String {
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://Docs.Example.com:443/guide/intro.html?x=1#top").unwrap()
    }

    fn resolved(href: &str) -> Option<String> {
        resolve(&base(), href, false).map(String::from)
    }

    #[test]
    fn resolves_relative_hrefs() {
        assert_eq!(
            resolved("setup.html").as_deref(),
            Some("https://docs.example.com/guide/setup.html")
        );
        assert_eq!(
            resolved("./setup").as_deref(),
            Some("https://docs.example.com/guide/setup")
        );
        assert_eq!(
            resolved("../api/").as_deref(),
            Some("https://docs.example.com/api/")
        );
        assert_eq!(
            resolved("../../../../x").as_deref(),
            Some("https://docs.example.com/x")
        );
        assert_eq!(
            resolved("/root").as_deref(),
            Some("https://docs.example.com/root")
        );
        assert_eq!(
            resolved("?page=2").as_deref(),
            Some("https://docs.example.com/guide/intro.html?page=2")
        );
    }

    #[test]
    fn resolves_absolute_and_protocol_relative_hrefs() {
        assert_eq!(
            resolved("http://Other.example.org:80/a#b").as_deref(),
            Some("http://other.example.org/a")
        );
        assert_eq!(
            resolved("//cdn.example.com/lib").as_deref(),
            Some("https://cdn.example.com/lib")
        );
        assert_eq!(
            resolved("HTTPS://example.com").as_deref(),
            Some("https://example.com/")
        );
    }

    #[test]
    fn fragment_only_href_resolves_to_the_page_itself() {
        assert_eq!(
            resolved("#section-2").as_deref(),
            Some("https://docs.example.com/guide/intro.html?x=1")
        );
    }

    #[test]
    fn skips_non_http_empty_and_unparsable_hrefs() {
        for href in [
            "mailto:someone@example.com",
            "javascript:void(0)",
            "JavaScript:alert(1)",
            "tel:+15551234",
            "data:text/html,<p>hi</p>",
            "ftp://example.com/file",
            "",
            "   ",
            "http://",
            "https://exa mple.com/",
            "http://[::1",
        ] {
            assert_eq!(resolved(href), None, "{href:?}");
        }
        let huge = format!("/{}", "a".repeat(MAX_HREF_LEN));
        assert_eq!(resolved(&huge), None);
    }

    #[test]
    fn trims_whitespace_around_hrefs() {
        assert_eq!(
            resolved("\n  /trimmed  \t").as_deref(),
            Some("https://docs.example.com/trimmed")
        );
    }

    #[test]
    fn strips_query_when_asked() {
        let url = resolve(&base(), "/search?q=rust&page=2#r", true).unwrap();
        assert_eq!(url.as_str(), "https://docs.example.com/search");
        let kept = resolve(&base(), "/search?q=rust&page=2#r", false).unwrap();
        assert_eq!(
            kept.as_str(),
            "https://docs.example.com/search?q=rust&page=2"
        );
    }

    #[test]
    fn drops_index_documents() {
        for (input, expected) in [
            ("https://e.com/docs/index.html", "https://e.com/docs/"),
            ("https://e.com/docs/INDEX.HTM", "https://e.com/docs/"),
            ("https://e.com/index.php?p=1", "https://e.com/?p=1"),
            ("https://e.com/index.html", "https://e.com/"),
            (
                "https://e.com/docs/index.html.bak",
                "https://e.com/docs/index.html.bak",
            ),
            (
                "https://e.com/docs/myindex.html",
                "https://e.com/docs/myindex.html",
            ),
        ] {
            let url = Url::parse(input).unwrap();
            assert_eq!(normalize(&url, false).unwrap().as_str(), expected);
        }
    }

    #[test]
    fn drops_userinfo_fragment_default_port_and_empty_query() {
        let url = Url::parse("HTTP://user:pw@Example.COM:80?#frag").unwrap();
        assert_eq!(
            normalize(&url, false).unwrap().as_str(),
            "http://example.com/"
        );
        let url = Url::parse("https://example.com:8443/a?").unwrap();
        assert_eq!(
            normalize(&url, false).unwrap().as_str(),
            "https://example.com:8443/a"
        );
    }

    #[test]
    fn normalize_rejects_other_schemes() {
        for input in [
            "mailto:a@b.c",
            "file:///etc/passwd",
            "ftp://e.com/",
            "data:,x",
        ] {
            assert_eq!(
                normalize(&Url::parse(input).unwrap(), false),
                None,
                "{input}"
            );
        }
    }

    #[test]
    fn normalize_is_idempotent() {
        for input in [
            "https://e.com/index.html/index.html",
            "https://e.com/a/b/index.php?x=1#y",
            "http://u:p@E.com:80/?",
            "https://e.com/%7Euser/./x/../index.htm",
            "https://e.com",
        ] {
            for strip_query in [false, true] {
                let once = normalize(&Url::parse(input).unwrap(), strip_query).unwrap();
                let twice = normalize(&once, strip_query).unwrap();
                assert_eq!(once, twice, "{input}");
            }
        }
    }

    #[test]
    fn is_normalized_agrees_with_normalize() {
        for input in [
            "https://e.com/index.html/index.html",
            "https://e.com/a/b/index.php?x=1#y",
            "http://u:p@E.com:80/?",
            "http://u@e.com/a",
            "https://e.com/%7Euser/./x/../index.htm",
            "https://e.com",
            "https://e.com/docs/",
            "https://e.com/docs/INDEX.HTML",
            "https://e.com/docs/index.html.bak",
            "https://e.com/a?b=1",
            "https://e.com/a#",
            "https://e.com/a?",
            "mailto:a@b.c",
            "file:///etc/passwd",
        ] {
            let url = Url::parse(input).unwrap();
            let normalized = normalize(&url, false);
            assert_eq!(
                is_normalized(&url),
                normalized.as_ref() == Some(&url),
                "{input}"
            );
            if let Some(normalized) = normalized {
                assert!(is_normalized(&normalized), "{input}");
            }
        }
    }

    #[test]
    fn equivalent_urls_share_a_key() {
        let a = Url::parse("https://Example.com:443/docs/index.html#intro").unwrap();
        let b = Url::parse("https://example.com/docs/").unwrap();
        let c = Url::parse("https://example.com/docs").unwrap();
        assert_eq!(url_key(&a), url_key(&b));
        assert_ne!(url_key(&b), url_key(&c));
        assert_eq!(url_key(&b).len(), 64);
        assert!(url_key(&b).chars().all(|c| c.is_ascii_hexdigit()));
        // The key of an already normalised URL is the plain hash of its string.
        assert_eq!(
            url_key(&b),
            hex::encode(Sha256::digest(b"https://example.com/docs/"))
        );
    }
}
