//! What a crawl learns about each site before and while it fetches pages: robots.txt
//! rules (memory, then the store, then fetched once), the Crawl-delay slot shared through
//! the store, and the URLs the sitemaps list.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::{lock, within, CrawlEngine, Deadline, EngineError, Step, MIN_PAGE_TIME, ROBOTS_AGENT};
use crate::crawl::fetch::FetchError;
use crate::crawl::robots::{robots_url, RobotsRules};
use crate::crawl::sitemap::{self, Sitemap};
use crate::store::crawls::{CrawlJob, PaceSlot};
use crate::time::now_epoch_millis;

/// Longest Crawl-delay honoured; slower sites still get at most one request per this.
const MAX_CRAWL_DELAY: Duration = Duration::from_secs(30);
/// Sitemap documents read per crawl (an index and its children).
const MAX_SITEMAPS: usize = 10;
/// A Crawl-delay wait this short is slept (when it fits the deadline), not re-queued.
const SHORT_PACE_WAIT: Duration = Duration::from_secs(1);
/// Added to every Crawl-delay slot: consumers' clocks and connection setup differ by a
/// few milliseconds, and requests must still arrive at least the delay apart.
const PACE_PAD: Duration = Duration::from_millis(100);

impl CrawlEngine {
    /// The job's robots.txt rules for the URL's origin: memory, then the store, then fetched
    /// once; `None` when the deadline came before the fetch ended (nothing is cached then).
    pub(super) async fn robots_for(
        &self,
        job: &CrawlJob,
        url: &Url,
        deadline: &Deadline,
    ) -> Result<Option<Arc<RobotsRules>>, EngineError> {
        let origin = url.origin().ascii_serialization();
        let cache_key = format!("{}|{origin}", job.id);
        if let Some(rules) = lock(&self.robots).get(&cache_key) {
            return Ok(Some(rules.clone()));
        }
        let rules = match self.jobs.robots(&job.id, &origin).await? {
            Some(cached) => RobotsRules::from_cache(ROBOTS_AGENT, &cached),
            None => None,
        };
        let rules = match rules {
            Some(rules) => rules,
            None => {
                let Some(rules) = within(deadline, self.fetch_robots(url)).await else {
                    return Ok(None);
                };
                self.jobs
                    .save_robots(job, &origin, rules.to_cache())
                    .await?;
                rules
            }
        };
        let rules = Arc::new(rules);
        let mut cache = lock(&self.robots);
        // Bounded: a long-running local process crawls many jobs.
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(cache_key, rules.clone());
        Ok(Some(rules))
    }

    pub(super) async fn fetch_robots(&self, url: &Url) -> RobotsRules {
        match self.fetcher.get(&robots_url(url), &|_| true).await {
            Ok(fetched) => {
                RobotsRules::from_response(ROBOTS_AGENT, Some(fetched.status), &fetched.body)
            }
            // The page itself will meet the same guard and be counted as an SSRF refusal.
            Err(FetchError::Blocked(_)) => RobotsRules::allow_all(),
            Err(error) => {
                tracing::info!(%error, "robots.txt unreachable; treating the site as disallowed");
                RobotsRules::from_response(ROBOTS_AGENT, None, &[])
            }
        }
    }

    /// Takes the origin's Crawl-delay slot, shared by every consumer through the store:
    /// `None` when the page may be fetched now, else the step re-queuing it for when the
    /// slot frees (a short wait that fits the deadline is slept instead).
    pub(super) async fn pace(
        &self,
        job: &CrawlJob,
        url: &Url,
        delay: Option<Duration>,
        deadline: &Deadline,
    ) -> Result<Option<Step>, EngineError> {
        let Some(delay) = delay.filter(|delay| !delay.is_zero()) else {
            return Ok(None);
        };
        let spacing = delay.min(MAX_CRAWL_DELAY) + PACE_PAD;
        let origin = url.origin().ascii_serialization();
        loop {
            let slot = self
                .jobs
                .take_pace_slot(job, &origin, spacing, now_epoch_millis())
                .await?;
            match slot {
                PaceSlot::Granted => return Ok(None),
                PaceSlot::Wait(wait)
                    if wait <= SHORT_PACE_WAIT && wait + MIN_PAGE_TIME <= deadline.left() =>
                {
                    tokio::time::sleep(wait).await;
                }
                PaceSlot::Wait(wait) => {
                    return Ok(Some(Step::Defer {
                        delay: wait,
                        cut: false,
                    }))
                }
            }
        }
    }

    /// URLs listed by the site's sitemaps (robots.txt `Sitemap:` lines, else `/sitemap.xml`);
    /// those found before the deadline when it comes first.
    pub(super) async fn sitemap_urls(
        &self,
        job: &CrawlJob,
        url: &Url,
        deadline: &Deadline,
    ) -> Result<Vec<Url>, EngineError> {
        let mut pending = match self.robots_for(job, url, deadline).await? {
            Some(rules) => rules.sitemaps(),
            None => Vec::new(),
        };
        if pending.is_empty() {
            if let Ok(default) = url.join("/sitemap.xml") {
                pending.push(default);
            }
        }
        let mut found = Vec::new();
        let mut read = 0;
        while let Some(sitemap_url) = pending.pop() {
            if read == MAX_SITEMAPS || found.len() >= job.spec.limit as usize * 2 {
                break;
            }
            read += 1;
            let Some(fetched) = within(deadline, self.fetcher.get(&sitemap_url, &|_| true)).await
            else {
                tracing::info!(
                    found = found.len(),
                    "sitemaps cut short by the invocation deadline"
                );
                break;
            };
            let Ok(fetched) = fetched else {
                continue;
            };
            if !(200..300).contains(&fetched.status) {
                continue;
            }
            match sitemap::parse(&fetched.body) {
                Ok(Sitemap::Urls(urls)) => found.extend(urls),
                Ok(Sitemap::Index(children)) => pending.extend(children),
                Err(_) => {}
            }
        }
        Ok(found)
    }
}
