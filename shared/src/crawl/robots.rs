//! robots.txt with RFC 9309 semantics (matching by texting_robots): the group for our product
//! token or else `*`, longest match wins and Allow wins ties, `*` and `$` wildcards. What to do
//! when the file cannot be fetched follows §2.3.1: a missing file (4xx) allows everything, an
//! unreachable one (5xx, network failure) disallows everything until it can be read.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use texting_robots::Robot;
use url::{Position, Url};

/// RFC 9309 §2.5: crawlers must parse at least 500 KiB; anything past the cap is ignored.
pub const MAX_ROBOTS_BYTES: usize = 512 * 1024;

/// Version of the cached form; a different version is re-fetched rather than misread.
const CACHE_VERSION: u64 = 1;

#[derive(Clone, Debug)]
enum Rules {
    AllowAll,
    DisallowAll,
    /// The body is kept (capped, as text) so the parsed file can be cached and re-parsed.
    Parsed {
        robot: Arc<Robot>,
        body: Arc<str>,
    },
}

/// The robots.txt rules of one origin for one user agent.
#[derive(Clone, Debug)]
pub struct RobotsRules {
    rules: Rules,
    /// HTTP status the rules came from, when fetched; cached alongside for diagnostics.
    status: Option<u16>,
}

impl RobotsRules {
    pub fn allow_all() -> Self {
        Self {
            rules: Rules::AllowAll,
            status: None,
        }
    }

    pub fn disallow_all() -> Self {
        Self {
            rules: Rules::DisallowAll,
            status: None,
        }
    }

    /// Parses a fetched robots.txt for `user_agent` (the product token, e.g. "tributary");
    /// an unparsable file allows all.
    pub fn parse(user_agent: &str, body: &[u8]) -> Self {
        let capped = &body[..body.len().min(MAX_ROBOTS_BYTES)];
        // Decoded once here so the cached text re-parses to exactly the same rules.
        let text: Arc<str> = Arc::from(String::from_utf8_lossy(capped).as_ref());
        Self::parse_text(user_agent, text, None)
    }

    fn parse_text(user_agent: &str, text: Arc<str>, status: Option<u16>) -> Self {
        let text = text
            .strip_prefix('\u{feff}')
            .map_or(text.clone(), Arc::from);
        match Robot::new(user_agent, text.as_bytes()) {
            Ok(robot) => Self {
                rules: Rules::Parsed {
                    robot: Arc::new(robot),
                    body: text,
                },
                status,
            },
            Err(error) => {
                tracing::debug!(%error, "unparsable robots.txt, allowing all");
                Self {
                    rules: Rules::AllowAll,
                    status,
                }
            }
        }
    }

    /// By HTTP outcome: 2xx -> parse(body); 3xx/4xx (incl. 404) -> allow_all, except 429 which
    /// like 5xx and network failure (None) -> disallow_all (RFC 9309 §2.3.1.3/4). 429 counts
    /// as "unreachable" because the server is asking us to slow down, not saying there is no file.
    pub fn from_response(user_agent: &str, status: Option<u16>, body: &[u8]) -> Self {
        let mut rules = match status {
            Some(200..=299) => Self::parse(user_agent, body),
            Some(429) => Self::disallow_all(),
            // Redirects are followed by the fetcher; one still unresolved after its limit
            // counts as unavailable (§2.3.1.2), like a 4xx.
            Some(300..=499) => Self::allow_all(),
            _ => Self::disallow_all(),
        };
        rules.status = status;
        rules
    }

    /// Path+query matching; /robots.txt itself is always allowed.
    pub fn allowed(&self, url: &Url) -> bool {
        if url.path() == "/robots.txt" {
            return true;
        }
        match &self.rules {
            Rules::AllowAll => true,
            Rules::DisallowAll => false,
            // The fragment never reaches the server, so rules never see it.
            Rules::Parsed { robot, .. } => {
                robot.allowed(&url[Position::BeforePath..Position::AfterQuery])
            }
        }
    }

    /// The Crawl-delay for our group (or a global one); None when absent or not a sane number.
    pub fn crawl_delay(&self) -> Option<Duration> {
        match &self.rules {
            Rules::Parsed { robot, .. } => robot
                .delay
                .and_then(|seconds| Duration::try_from_secs_f32(seconds).ok()),
            _ => None,
        }
    }

    /// Sitemaps listed in the file (for every agent), absolute http(s) URLs only, deduplicated.
    pub fn sitemaps(&self) -> Vec<Url> {
        let Rules::Parsed { robot, .. } = &self.rules else {
            return Vec::new();
        };
        let mut sitemaps: Vec<Url> = Vec::new();
        for raw in &robot.sitemaps {
            let Ok(url) = Url::parse(raw.trim()) else {
                continue;
            };
            if matches!(url.scheme(), "http" | "https") && !sitemaps.contains(&url) {
                sitemaps.push(url);
            }
        }
        sitemaps
    }

    /// Serialisable form so a job can cache the parsed file in the store: the raw body (capped
    /// at 512 KiB) and the status, re-parsed by [`RobotsRules::from_cache`].
    pub fn to_cache(&self) -> serde_json::Value {
        let (kind, body) = match &self.rules {
            Rules::AllowAll => ("allow_all", None),
            Rules::DisallowAll => ("disallow_all", None),
            Rules::Parsed { body, .. } => ("parsed", Some(body.as_ref())),
        };
        json!({ "v": CACHE_VERSION, "kind": kind, "status": self.status, "body": body })
    }

    /// Rebuilds the rules from [`RobotsRules::to_cache`]; None when the value is not a cache
    /// entry of this version (the caller should fetch robots.txt again).
    pub fn from_cache(user_agent: &str, value: &serde_json::Value) -> Option<Self> {
        if value.get("v")?.as_u64()? != CACHE_VERSION {
            return None;
        }
        let status = match value.get("status") {
            None | Some(serde_json::Value::Null) => None,
            Some(status) => Some(u16::try_from(status.as_u64()?).ok()?),
        };
        let mut rules = match value.get("kind")?.as_str()? {
            "allow_all" => Self::allow_all(),
            "disallow_all" => Self::disallow_all(),
            "parsed" => {
                let body = value.get("body")?.as_str()?;
                let capped = truncate_to_char_boundary(body, MAX_ROBOTS_BYTES);
                Self::parse_text(user_agent, Arc::from(capped), status)
            }
            _ => return None,
        };
        rules.status = status;
        Some(rules)
    }
}

fn truncate_to_char_boundary(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `scheme://host[:port]/robots.txt` for a page URL.
pub fn robots_url(url: &Url) -> Url {
    let mut robots = url.clone();
    // Credentials would leak into the request and never change the answer; both setters only
    // fail for URLs without a host, where there is nothing to strip.
    let _ = robots.set_username("");
    let _ = robots.set_password(None);
    robots.set_path("/robots.txt");
    robots.set_query(None);
    robots.set_fragment(None);
    robots
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &str = "tributary";

    fn url(path: &str) -> Url {
        Url::parse("https://example.com")
            .unwrap()
            .join(path)
            .unwrap()
    }

    #[test]
    fn longest_match_wins_and_allow_wins_ties() {
        let rules = RobotsRules::parse(
            AGENT,
            b"User-agent: *\nDisallow: /private/\nAllow: /private/public/\nDisallow: /tie\nAllow: /tie\n",
        );
        assert!(rules.allowed(&url("/")));
        assert!(!rules.allowed(&url("/private/secret.html")));
        assert!(rules.allowed(&url("/private/public/page")));
        assert!(rules.allowed(&url("/tie")));
    }

    #[test]
    fn wildcards_and_end_anchor() {
        let rules = RobotsRules::parse(
            AGENT,
            b"User-agent: *\nDisallow: /*.pdf$\nDisallow: /search*q=\nDisallow: /*/edit\n",
        );
        assert!(!rules.allowed(&url("/files/report.pdf")));
        assert!(rules.allowed(&url("/files/report.pdf.html")));
        assert!(!rules.allowed(&url("/search?q=rust")));
        assert!(rules.allowed(&url("/search?page=2")));
        assert!(!rules.allowed(&url("/wiki/Page/edit")));
        assert!(rules.allowed(&url("/wiki/Page")));
    }

    #[test]
    fn matches_query_but_not_fragment() {
        let rules = RobotsRules::parse(AGENT, b"User-agent: *\nDisallow: /*session=\n");
        assert!(!rules.allowed(&url("/page?session=1")));
        assert!(rules.allowed(&url("/page#session=1")));
    }

    #[test]
    fn agent_specific_group_replaces_the_wildcard_group() {
        let body = b"User-agent: *\nDisallow: /\n\nUser-agent: Tributary\nDisallow: /drafts/\nCrawl-delay: 2.5\n\nUser-agent: other\nCrawl-delay: 30\n";
        let ours = RobotsRules::parse(AGENT, body);
        assert!(ours.allowed(&url("/docs/")));
        assert!(!ours.allowed(&url("/drafts/x")));
        assert_eq!(ours.crawl_delay(), Some(Duration::from_millis(2500)));
        let someone_else = RobotsRules::parse("somebot", body);
        assert!(!someone_else.allowed(&url("/docs/")));
        assert_eq!(someone_else.crawl_delay(), None);
    }

    #[test]
    fn crawl_delay_of_the_wildcard_group() {
        let rules = RobotsRules::parse(AGENT, b"User-agent: *\nCrawl-delay: 10\nDisallow:\n");
        assert_eq!(rules.crawl_delay(), Some(Duration::from_secs(10)));
        assert!(rules.allowed(&url("/anything")));
        assert_eq!(RobotsRules::allow_all().crawl_delay(), None);
    }

    #[test]
    fn robots_txt_is_always_allowed() {
        let rules = RobotsRules::parse(AGENT, b"User-agent: *\nDisallow: /\n");
        assert!(!rules.allowed(&url("/index.html")));
        assert!(rules.allowed(&url("/robots.txt")));
        assert!(RobotsRules::disallow_all().allowed(&url("/robots.txt")));
        assert!(!RobotsRules::disallow_all().allowed(&url("/")));
        assert!(RobotsRules::allow_all().allowed(&url("/anything")));
    }

    #[test]
    fn outcome_of_the_fetch() {
        let body = b"User-agent: *\nDisallow: /x\n";
        let ok = RobotsRules::from_response(AGENT, Some(200), body);
        assert!(!ok.allowed(&url("/x")));
        assert!(ok.allowed(&url("/y")));
        for status in [404, 403, 401, 410, 301] {
            let rules = RobotsRules::from_response(AGENT, Some(status), body);
            assert!(rules.allowed(&url("/x")), "{status}");
        }
        for status in [Some(500), Some(503), Some(429), None] {
            let rules = RobotsRules::from_response(AGENT, status, body);
            assert!(!rules.allowed(&url("/y")), "{status:?}");
        }
    }

    #[test]
    fn garbage_allows_all() {
        let rules = RobotsRules::parse(AGENT, b"\x00\xff\xfe<html><body>Not found</body></html>");
        assert!(rules.allowed(&url("/")));
        assert!(rules.allowed(&url("/deep/path")));
        assert!(RobotsRules::parse(AGENT, b"").allowed(&url("/")));
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let rules = RobotsRules::parse(AGENT, "\u{feff}User-agent: *\nDisallow: /x\n".as_bytes());
        assert!(!rules.allowed(&url("/x")));
    }

    #[test]
    fn lists_sitemaps() {
        let rules = RobotsRules::parse(
            AGENT,
            b"Sitemap: https://example.com/sitemap.xml\nUser-agent: other\nDisallow: /\nSitemap: https://example.com/news.xml\nSitemap: /relative.xml\nSitemap: ftp://example.com/s.xml\nSitemap: https://example.com/sitemap.xml\n",
        );
        let sitemaps: Vec<String> = rules.sitemaps().into_iter().map(String::from).collect();
        assert_eq!(
            sitemaps,
            [
                "https://example.com/sitemap.xml",
                "https://example.com/news.xml"
            ]
        );
        assert!(RobotsRules::disallow_all().sitemaps().is_empty());
    }

    #[test]
    fn cache_round_trip() {
        let body = b"User-agent: *\nDisallow: /private\nCrawl-delay: 3\nSitemap: https://example.com/s.xml\n";
        let rules = RobotsRules::from_response(AGENT, Some(200), body);
        let cached = rules.to_cache();
        let text = serde_json::to_string(&cached).unwrap();
        let restored =
            RobotsRules::from_cache(AGENT, &serde_json::from_str(&text).unwrap()).unwrap();
        assert!(!restored.allowed(&url("/private/a")));
        assert!(restored.allowed(&url("/public")));
        assert_eq!(restored.crawl_delay(), Some(Duration::from_secs(3)));
        assert_eq!(restored.sitemaps(), rules.sitemaps());
        assert_eq!(restored.to_cache(), cached);

        for rules in [
            RobotsRules::from_response(AGENT, Some(404), b""),
            RobotsRules::from_response(AGENT, Some(503), b""),
            RobotsRules::from_response(AGENT, None, b""),
            RobotsRules::allow_all(),
            RobotsRules::disallow_all(),
        ] {
            let restored = RobotsRules::from_cache(AGENT, &rules.to_cache()).unwrap();
            assert_eq!(restored.allowed(&url("/x")), rules.allowed(&url("/x")));
            assert_eq!(restored.to_cache(), rules.to_cache());
        }
    }

    #[test]
    fn rejects_foreign_cache_values() {
        for value in [
            json!(null),
            json!({}),
            json!({ "v": 2, "kind": "allow_all" }),
            json!({ "v": 1, "kind": "maybe" }),
            json!({ "v": 1, "kind": "parsed" }),
            json!({ "v": 1, "kind": "allow_all", "status": 70000 }),
        ] {
            assert!(RobotsRules::from_cache(AGENT, &value).is_none(), "{value}");
        }
    }

    #[test]
    fn caps_the_body() {
        let mut body = b"User-agent: *\n".to_vec();
        body.resize(MAX_ROBOTS_BYTES, b'\n');
        body.extend_from_slice(b"Disallow: /\n");
        let rules = RobotsRules::parse(AGENT, &body);
        assert!(rules.allowed(&url("/page")));
        let cached = rules.to_cache();
        assert!(cached["body"].as_str().unwrap().len() <= MAX_ROBOTS_BYTES);
    }

    #[test]
    fn robots_url_of_a_page() {
        let page = Url::parse("https://user:pw@Example.com:8443/a/b?c=d#e").unwrap();
        assert_eq!(
            robots_url(&page).as_str(),
            "https://example.com:8443/robots.txt"
        );
        let page = Url::parse("http://example.com/").unwrap();
        assert_eq!(robots_url(&page).as_str(), "http://example.com/robots.txt");
    }
}
