//! A page's links, sorted before anything is stored: each once, out of scope, unsupported,
//! or a candidate to register, with a per-process memory of what a job has seen.

use std::borrow::Cow;
use std::collections::HashSet;

use url::Url;

use super::{lock, CrawlEngine};
use crate::crawl::normalize::{is_normalized, normalize, normalized_key};
use crate::crawl::scope::{is_unsupported_file, Scope};
use crate::store::crawls::Candidate;

/// URLs remembered per process before the `seen` hint is dropped and rebuilt.
const MAX_SEEN_URLS: usize = 1_000_000;

/// A page's new links, sorted by [`CrawlEngine::sort_links`].
#[derive(Default)]
pub(super) struct SortedLinks {
    pub(super) in_scope: Vec<Candidate>,
    pub(super) out_of_scope: Vec<String>,
    pub(super) unsupported: Vec<String>,
}

impl CrawlEngine {
    /// Sorts the links (with the depth each would have) that this process has not handled
    /// for the job yet, each once: out of scope, unsupported files, or candidates to
    /// register. Pages carry hundreds of links, mostly seen before, so a link costs a set
    /// lookup of its string (the page's links are normalised already); only new in-scope
    /// ones are hashed into keys.
    pub(super) fn sort_links<'a>(
        &self,
        job_id: &str,
        scope: &Scope,
        links: impl Iterator<Item = (&'a Url, u32)>,
    ) -> SortedLinks {
        let mut sorted = SortedLinks::default();
        let mut this_page = HashSet::new();
        let seen = lock(&self.seen);
        let known = seen.get(job_id);
        for (link, depth) in links {
            let link = if is_normalized(link) {
                Cow::Borrowed(link)
            } else {
                match normalize(link, false) {
                    Some(link) => Cow::Owned(link),
                    None => continue,
                }
            };
            let text = link.as_str();
            if known.is_some_and(|known| known.contains(text)) || this_page.contains(text) {
                continue;
            }
            this_page.insert(text.to_owned());
            if scope.check(&link).is_err() {
                sorted.out_of_scope.push(text.to_owned());
            } else if is_unsupported_file(&link) {
                sorted.unsupported.push(text.to_owned());
            } else {
                sorted.in_scope.push(Candidate {
                    key: normalized_key(text),
                    url: text.to_owned(),
                    depth,
                });
            }
        }
        sorted
    }

    pub(super) fn remember(&self, job_id: &str, urls: impl IntoIterator<Item = String>) {
        let mut seen = lock(&self.seen);
        if seen.values().map(HashSet::len).sum::<usize>() > MAX_SEEN_URLS {
            seen.clear();
        }
        seen.entry(job_id.to_owned()).or_default().extend(urls);
    }
}
