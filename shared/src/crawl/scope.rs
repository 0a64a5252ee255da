//! Which URLs a crawl may visit: a host rule (the seed's site, optionally its subdomains or
//! anywhere) and regular expressions on the path (Firecrawl's `includePaths`/`excludePaths`).
//! Patterns come from API callers, so their number, length and compiled size are bounded.

use regex::{Regex, RegexBuilder};
use url::Url;

/// Per list (include and exclude each).
pub const MAX_PATTERNS: usize = 50;
/// Characters per pattern.
pub const MAX_PATTERN_LEN: usize = 1000;
/// Compiled program size per pattern; `(a{100}){100}`-style bombs fail to compile instead of
/// eating the worker's memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScopeOptions {
    /// Regexes searched in the URL path; when any are given, a path must match one of them.
    #[serde(default)]
    pub include_paths: Vec<String>,
    /// Regexes searched in the URL path; a path matching any of them is skipped.
    #[serde(default)]
    pub exclude_paths: Vec<String>,
    #[serde(default)]
    pub allow_subdomains: bool,
    #[serde(default)]
    pub allow_external: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    #[error("`{pattern}` is not a valid regular expression: {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("at most {MAX_PATTERNS} include and {MAX_PATTERNS} exclude patterns are allowed")]
    TooManyPatterns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfScope {
    Host,
    ExcludedPath,
    NotIncludedPath,
}

/// Compiled scope rules of one crawl.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The seed's host, lowercase, without a leading `www.`.
    root_host: String,
    allow_subdomains: bool,
    allow_external: bool,
    include: Vec<Regex>,
    exclude: Vec<Regex>,
}

impl Scope {
    /// Compiles the patterns (at most 50 per list, each at most 1000 characters, each compiled
    /// program at most 1 MiB). Blank patterns are ignored: an empty exclude pattern would match
    /// every path, which is never what a caller leaving a form field empty meant.
    pub fn new(root: &Url, options: &ScopeOptions) -> Result<Self, ScopeError> {
        Ok(Self {
            root_host: site_host(root.host_str().unwrap_or_default()).to_owned(),
            allow_subdomains: options.allow_subdomains,
            allow_external: options.allow_external,
            include: compile(&options.include_paths)?,
            exclude: compile(&options.exclude_paths)?,
        })
    }

    /// Host rule: same host as root (case-insensitive, a leading `www.` on either side
    /// ignored), or a subdomain of root's host when `allow_subdomains`, or anything when
    /// `allow_external`. Path rules (regex search on the URL path, e.g. `^/blog/` or
    /// `/docs/.*`): excluded when any exclude matches; when includes exist, at least one must.
    pub fn check(&self, url: &Url) -> Result<(), OutOfScope> {
        if !self.host_allowed(url) {
            return Err(OutOfScope::Host);
        }
        let path = url.path();
        if self.exclude.iter().any(|pattern| pattern.is_match(path)) {
            return Err(OutOfScope::ExcludedPath);
        }
        if !self.include.is_empty() && !self.include.iter().any(|pattern| pattern.is_match(path)) {
            return Err(OutOfScope::NotIncludedPath);
        }
        Ok(())
    }

    fn host_allowed(&self, url: &Url) -> bool {
        if self.allow_external {
            return true;
        }
        let Some(host) = url.host_str() else {
            return false;
        };
        // The url crate lowercases domain names of http(s) URLs; this also covers other schemes.
        let host = host.to_ascii_lowercase();
        let host = site_host(&host);
        if host == self.root_host {
            return true;
        }
        self.allow_subdomains
            && host
                .strip_suffix(self.root_host.as_str())
                .is_some_and(|prefix| prefix.ends_with('.'))
    }
}

/// Extensions of files a crawl never reads: it delivers HTML pages as markdown only (no
/// document files), so fetching these would download a body just to skip it. Lowercase:
/// images, fonts, the page's styles and scripts, audio and video, documents and data,
/// archives and installers.
const UNSUPPORTED_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "svgz", "ico", "bmp", "tif", "tiff",
    "heic", "woff", "woff2", "ttf", "otf", "eot", "css", "js", "mjs", "map", "wasm", "mp3", "mp4",
    "m4a", "m4v", "wav", "ogg", "oga", "ogv", "opus", "webm", "mov", "avi", "mkv", "flac", "aac",
    "wmv", "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "epub", "rtf",
    "csv", "json", "zip", "gz", "tgz", "tar", "bz2", "xz", "zst", "7z", "rar", "jar", "exe", "msi",
    "dmg", "deb", "rpm", "apk", "iso",
];

/// Whether the URL's last path segment ends in an extension of [`UNSUPPORTED_EXTENSIONS`]
/// (case-insensitive): such links are not followed. Only a hint from the name; responses
/// are still checked by their content type.
pub fn is_unsupported_file(url: &Url) -> bool {
    let last = url.path().rsplit('/').next().unwrap_or_default();
    let Some((stem, extension)) = last.rsplit_once('.') else {
        return false;
    };
    !stem.is_empty()
        && UNSUPPORTED_EXTENSIONS
            .iter()
            .any(|known| extension.eq_ignore_ascii_case(known))
}

/// The host a site is known by: `www.example.com` and `example.com` are the same site.
fn site_host(host: &str) -> &str {
    host.strip_prefix("www.").unwrap_or(host)
}

fn compile(patterns: &[String]) -> Result<Vec<Regex>, ScopeError> {
    if patterns.len() > MAX_PATTERNS {
        return Err(ScopeError::TooManyPatterns);
    }
    patterns
        .iter()
        .filter(|pattern| !pattern.trim().is_empty())
        .map(|pattern| {
            let bad = |reason: String| ScopeError::BadPattern {
                pattern: pattern.clone(),
                reason,
            };
            if pattern.chars().count() > MAX_PATTERN_LEN {
                return Err(bad(format!("longer than {MAX_PATTERN_LEN} characters")));
            }
            RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|error| bad(error.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn scope(root: &str, options: ScopeOptions) -> Scope {
        Scope::new(&url(root), &options).unwrap()
    }

    fn paths(include: &[&str], exclude: &[&str]) -> ScopeOptions {
        ScopeOptions {
            include_paths: include.iter().map(|p| p.to_string()).collect(),
            exclude_paths: exclude.iter().map(|p| p.to_string()).collect(),
            ..ScopeOptions::default()
        }
    }

    #[test]
    fn same_host_ignoring_case_and_www() {
        let s = scope("https://www.Example.com/docs/", ScopeOptions::default());
        assert_eq!(s.check(&url("https://example.com/other")), Ok(()));
        assert_eq!(s.check(&url("http://WWW.EXAMPLE.COM/")), Ok(()));
        assert_eq!(s.check(&url("https://example.com:8080/")), Ok(()));
        assert_eq!(
            s.check(&url("https://docs.example.com/")),
            Err(OutOfScope::Host)
        );
        assert_eq!(s.check(&url("https://example.org/")), Err(OutOfScope::Host));
        assert_eq!(
            s.check(&url("https://notexample.com/")),
            Err(OutOfScope::Host)
        );
        assert_eq!(
            s.check(&url("https://example.com.evil.io/")),
            Err(OutOfScope::Host)
        );
        assert_eq!(s.check(&url("mailto:a@example.com")), Err(OutOfScope::Host));

        let bare = scope("https://example.com/", ScopeOptions::default());
        assert_eq!(bare.check(&url("https://www.example.com/a")), Ok(()));
    }

    #[test]
    fn subdomains_when_allowed() {
        let options = ScopeOptions {
            allow_subdomains: true,
            ..ScopeOptions::default()
        };
        let s = scope("https://www.example.com/", options);
        assert_eq!(s.check(&url("https://docs.example.com/")), Ok(()));
        assert_eq!(s.check(&url("https://a.b.example.com/")), Ok(()));
        assert_eq!(s.check(&url("https://example.com/")), Ok(()));
        assert_eq!(
            s.check(&url("https://badexample.com/")),
            Err(OutOfScope::Host)
        );
        assert_eq!(
            s.check(&url("https://example.com.evil.io/")),
            Err(OutOfScope::Host)
        );
    }

    #[test]
    fn anything_when_external_allowed() {
        let options = ScopeOptions {
            allow_external: true,
            ..paths(&[], &["^/private"])
        };
        let s = scope("https://example.com/", options);
        assert_eq!(s.check(&url("https://elsewhere.org/page")), Ok(()));
        assert_eq!(
            s.check(&url("https://elsewhere.org/private/x")),
            Err(OutOfScope::ExcludedPath)
        );
    }

    #[test]
    fn include_and_exclude_paths() {
        let s = scope(
            "https://example.com/",
            paths(&["^/blog/", "/docs/.*"], &["/drafts?/", r"\.pdf$"]),
        );
        assert_eq!(s.check(&url("https://example.com/blog/post")), Ok(()));
        assert_eq!(s.check(&url("https://example.com/v2/docs/intro")), Ok(()));
        assert_eq!(
            s.check(&url("https://example.com/about")),
            Err(OutOfScope::NotIncludedPath)
        );
        assert_eq!(
            s.check(&url("https://example.com/notblog/blog/x")),
            Err(OutOfScope::NotIncludedPath)
        );
        assert_eq!(
            s.check(&url("https://example.com/blog/drafts/x")),
            Err(OutOfScope::ExcludedPath)
        );
        assert_eq!(
            s.check(&url("https://example.com/docs/manual.pdf")),
            Err(OutOfScope::ExcludedPath)
        );
        // Only the path is matched, never the query.
        assert_eq!(
            s.check(&url("https://example.com/about?next=/blog/")),
            Err(OutOfScope::NotIncludedPath)
        );
        // The host rule is checked first.
        assert_eq!(
            s.check(&url("https://other.com/blog/drafts/x")),
            Err(OutOfScope::Host)
        );
    }

    #[test]
    fn blank_patterns_are_ignored() {
        let s = scope("https://example.com/", paths(&[" "], &[""]));
        assert_eq!(s.check(&url("https://example.com/anything")), Ok(()));
    }

    #[test]
    fn bad_regex_is_reported() {
        let error = Scope::new(
            &url("https://example.com/"),
            &paths(&["/ok", "/(unclosed"], &[]),
        )
        .unwrap_err();
        match &error {
            ScopeError::BadPattern { pattern, reason } => {
                assert_eq!(pattern, "/(unclosed");
                assert!(!reason.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(error
            .to_string()
            .starts_with("`/(unclosed` is not a valid regular expression"));
    }

    #[test]
    fn limits_resist_abuse() {
        let many: Vec<String> = (0..=MAX_PATTERNS).map(|i| format!("/p{i}")).collect();
        let options = ScopeOptions {
            exclude_paths: many,
            ..ScopeOptions::default()
        };
        assert!(matches!(
            Scope::new(&url("https://example.com/"), &options),
            Err(ScopeError::TooManyPatterns)
        ));

        let long = "a".repeat(MAX_PATTERN_LEN + 1);
        assert!(matches!(
            Scope::new(&url("https://example.com/"), &paths(&[&long], &[])),
            Err(ScopeError::BadPattern { .. })
        ));

        let bomb = "((a{100}){100}){100}";
        assert!(matches!(
            Scope::new(&url("https://example.com/"), &paths(&[], &[bomb])),
            Err(ScopeError::BadPattern { .. })
        ));
    }

    #[test]
    fn files_are_recognised_by_their_extension() {
        for file in [
            "https://e.com/logo.png",
            "https://e.com/img/Photo.JPEG",
            "https://e.com/static/site.css?v=3",
            "https://e.com/app.js#x",
            "https://e.com/manual.pdf",
            "https://e.com/fonts/a.woff2",
            "https://e.com/release-1.0.tar.gz",
            "https://e.com/talk.mp4",
        ] {
            assert!(is_unsupported_file(&url(file)), "{file}");
        }
        for page in [
            "https://e.com/",
            "https://e.com/guide.html",
            "https://e.com/docs/intro.htm",
            "https://e.com/index.php?file=a.png",
            "https://e.com/logo",
            "https://e.com/.png",
            "https://e.com/v1.2/",
            "https://e.com/assets.png/page",
            "https://e.com/feature.xml",
            "https://e.com/read.me",
        ] {
            assert!(!is_unsupported_file(&url(page)), "{page}");
        }
    }

    #[test]
    fn options_deserialize_with_defaults() {
        let options: ScopeOptions =
            serde_json::from_str(r#"{"include_paths":["^/docs/"]}"#).unwrap();
        assert_eq!(options.include_paths, ["^/docs/"]);
        assert!(options.exclude_paths.is_empty());
        assert!(!options.allow_subdomains && !options.allow_external);
    }
}
