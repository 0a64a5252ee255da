//! Clock and timestamp helpers shared by the domain and the HTTP edge. They live here, not
//! in `web` or `store`, so domain modules never import the HTTP edge for a timestamp.

/// Seconds since the Unix epoch, now.
pub fn now_epoch_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Milliseconds since the Unix epoch, now (pacing slots shared across instances).
pub fn now_epoch_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An RFC 3339 UTC timestamp (API responses, document `updated_at`).
pub fn rfc3339(epoch_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(epoch_seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_with_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    /// The HTTP edge depends on the domain, never the reverse: only `web.rs` itself may
    /// name the `web` module (a domain module importing it re-creates the old cycle).
    #[test]
    fn no_domain_module_imports_the_http_edge() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|ext| ext != "rs") || path == root.join("web.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("read source");
                if names_web_module(&text) {
                    offenders.push(path.display().to_string());
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "domain modules import the web module: {offenders:?}"
        );
    }

    /// A path to the `web` module from `crate` or `super`, as a whole segment (not `webhooks`).
    fn names_web_module(text: &str) -> bool {
        // Split so that this test's own source does not match.
        let needles = [["crate", "::web"].concat(), ["super", "::web"].concat()];
        needles.iter().any(|needle| {
            text.match_indices(needle.as_str()).any(|(at, _)| {
                let next = text[at + needle.len()..].chars().next();
                !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
    }
}
