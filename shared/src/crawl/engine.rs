//! The crawl engine: starts jobs and handles one page message at a time. `crawl-page`
//! feeds it from SQS, `tributary-local` from the embedded queue; both get the same
//! behaviour.
//!
//! A page message is safe to deliver twice: its URL item leaves the `queued` state once
//! (in one transaction with the job's counters), links are registered with conditional
//! puts, and a page retried after a crash re-enqueues the links it had registered.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use url::Url;

use super::fetch::{FetchError, Fetched, Fetcher};
use super::html::{self, Page};
use super::job::{CrawlSpec, JobKind};
use super::normalize::{normalize, url_key};
use super::robots::{robots_url, RobotsRules};
use super::scope::Scope;
use super::sitemap::{self, Sitemap};
use crate::auth::Principal;
use crate::connectors::document::Document;
use crate::queue::{Queue, QueueError};
use crate::sinks::{SinkEnvironment, SinkError};
use crate::store::crawls::{
    Candidate, Counters, CrawlJob, CrawlJobs, CrawlStoreError, CrawlUrl, JobStatus, Outcome,
};
use crate::store::{now_epoch_seconds, StoreError, Table};

/// The product token matched against robots.txt `User-agent` lines.
pub const ROBOTS_AGENT: &str = "tributary";
/// Deliveries of one message before a transient failure counts as a failure (the queue's
/// dead-letter threshold is higher, so only unreadable messages reach the DLQ).
pub const MAX_ATTEMPTS: u32 = 3;
/// Longest Crawl-delay honoured; slower sites still get at most one request per this.
const MAX_CRAWL_DELAY: Duration = Duration::from_secs(30);
/// Markdown kept in the store when a job has no sink (DynamoDB items are ≤ 400 KB).
const MAX_STORED_MARKDOWN: usize = 256 * 1024;
/// Sitemap documents read per crawl (an index and its children).
const MAX_SITEMAPS: usize = 10;

/// One URL of one job to fetch; the URL item in the store is the source of truth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMessage {
    pub job_id: String,
    pub url: String,
    pub depth: u32,
}

/// What the consumer does with the message afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Delete it: handled, or a duplicate.
    Handled,
    /// Leave it: it comes back after its visibility timeout (and, when unreadable every
    /// time, ends in the dead-letter queue).
    Retry,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Jobs(#[from] CrawlStoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("the job's scope no longer compiles: {0}")]
    Scope(String),
    #[error("sink: {0}")]
    Sink(#[from] SinkError),
}

#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("the page is not HTML (content type {0})")]
    NotHtml(String),
}

/// One page, scraped synchronously.
#[derive(Debug)]
pub struct Scraped {
    pub fetched: Fetched,
    pub page: Page,
    pub html: String,
}

pub struct CrawlEngine {
    jobs: CrawlJobs,
    queue: Arc<dyn Queue>,
    fetcher: Fetcher,
    sinks: SinkEnvironment,
    robots: Mutex<HashMap<String, Arc<RobotsRules>>>,
    /// Per origin, when the next request may start (Crawl-delay).
    pacing: Mutex<HashMap<String, Instant>>,
    /// Per job, URL keys this process knows are already registered (and enqueued) or
    /// counted as out of scope: most links of a site point at pages seen before, and this
    /// spares a store read for each. Only a hint: the conditional puts decide.
    seen: Mutex<HashMap<String, HashSet<String>>>,
}

/// URL keys remembered per process before the `seen` hint is dropped and rebuilt.
const MAX_SEEN_KEYS: usize = 1_000_000;

/// How one page ended, before it is written.
struct Finish {
    outcome: Outcome,
    /// Distinct out-of-scope links this page added.
    scope_skips: u64,
    reason: Option<String>,
    fetched: Option<(u16, String)>,
    page: Option<Page>,
    document_id: Option<String>,
    keep_markdown: bool,
}

impl Finish {
    fn new(outcome: Outcome, reason: impl Into<String>) -> Self {
        Self {
            outcome,
            scope_skips: 0,
            reason: Some(reason.into()),
            fetched: None,
            page: None,
            document_id: None,
            keep_markdown: false,
        }
    }
}

fn finish(outcome: Outcome, reason: impl Into<String>) -> Box<Finish> {
    Box::new(Finish::new(outcome, reason))
}

/// Either the page's end or "try again later".
enum Step {
    Finish(Box<Finish>),
    Retry,
}

impl CrawlEngine {
    pub fn new(
        table: Arc<dyn Table>,
        queue: Arc<dyn Queue>,
        fetcher: Fetcher,
        sinks: SinkEnvironment,
    ) -> Self {
        Self {
            jobs: CrawlJobs::new(table),
            queue,
            fetcher,
            sinks,
            robots: Mutex::new(HashMap::new()),
            pacing: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn jobs(&self) -> &CrawlJobs {
        &self.jobs
    }

    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    pub fn sinks(&self) -> &SinkEnvironment {
        &self.sinks
    }

    /// Records the job with its seeds queued and enqueues them.
    pub async fn start(&self, owner: &Principal, spec: CrawlSpec) -> Result<CrawlJob, EngineError> {
        let now = now_epoch_seconds();
        let mut job = CrawlJob {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: owner.user_id.clone(),
            tenant_id: owner.tenant_id.clone(),
            status: JobStatus::Queued,
            counters: Counters::default(),
            created_at: now,
            updated_at: now,
            finished_at: None,
            item_version: 1,
            spec,
        };
        self.seal_sink_secret(&mut job)?;
        let seeds: Vec<Candidate> = job
            .spec
            .seeds
            .iter()
            .filter_map(|seed| Url::parse(seed).ok())
            .map(|url| Candidate {
                key: url_key(&url),
                url: url.to_string(),
                depth: 0,
            })
            .collect();
        self.jobs.create(&job, &seeds).await?;
        let messages = seeds
            .iter()
            .map(|seed| message_body(&job.id, &seed.url, 0))
            .collect();
        self.queue.send_batch(messages).await?;
        tracing::info!(crawl_id = %job.id, seeds = seeds.len(), "crawl started");
        Ok(self.jobs.get(&job.id).await?.unwrap_or(job))
    }

    /// Handles one delivery of a page message.
    pub async fn handle(&self, body: &str, receive_count: u32) -> Disposition {
        let message: PageMessage = match serde_json::from_str(body) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "unreadable crawl message; leaving it for the dead-letter queue");
                return Disposition::Retry;
            }
        };
        let span =
            tracing::info_span!("crawl_page", crawl_id = %message.job_id, depth = message.depth);
        let _entered = span.enter();
        match self.process(&message, receive_count).await {
            Ok(disposition) => disposition,
            Err(error) => {
                tracing::error!(%error, "crawl page failed; will retry");
                Disposition::Retry
            }
        }
    }

    async fn process(
        &self,
        message: &PageMessage,
        receive_count: u32,
    ) -> Result<Disposition, EngineError> {
        let Ok(url) = Url::parse(&message.url) else {
            tracing::warn!("crawl message with an invalid URL");
            return Ok(Disposition::Retry);
        };
        let key = url_key(&url);
        let Some(entry) = self.jobs.get_url(&message.job_id, &key).await? else {
            // The registering transaction may not be visible yet; after that, it never will be.
            return Ok(if receive_count < MAX_ATTEMPTS {
                Disposition::Retry
            } else {
                Disposition::Handled
            });
        };
        if !entry.is_queued() {
            return Ok(Disposition::Handled);
        }
        let Some(job) = self.jobs.get(&message.job_id).await? else {
            return Ok(Disposition::Handled);
        };
        let step = if job.status == JobStatus::Cancelled {
            Step::Finish(finish(Outcome::SkippedCancelled, "the crawl was cancelled"))
        } else {
            self.crawl_page(&job, &key, &entry, &url, receive_count)
                .await?
        };
        match step {
            Step::Retry => Ok(Disposition::Retry),
            Step::Finish(finish) => {
                self.record(&job, &key, *finish).await?;
                Ok(Disposition::Handled)
            }
        }
    }

    async fn crawl_page(
        &self,
        job: &CrawlJob,
        key: &str,
        entry: &CrawlUrl,
        url: &Url,
        receive_count: u32,
    ) -> Result<Step, EngineError> {
        let seed = job
            .spec
            .seeds
            .first()
            .and_then(|seed| Url::parse(seed).ok())
            .unwrap_or_else(|| url.clone());
        let scope =
            Scope::new(&seed, &job.spec.scope).map_err(|e| EngineError::Scope(e.to_string()))?;
        if job.kind() == JobKind::Crawl {
            let rules = self.robots_for(job, url).await?;
            if !rules.allowed(url) {
                return Ok(Step::Finish(finish(
                    Outcome::SkippedRobots,
                    "disallowed by robots.txt",
                )));
            }
            self.pace(url, rules.crawl_delay()).await;
        }
        let allow_hop = |next: &Url| scope.check(next).is_ok();
        let fetched = match self.fetcher.get(url, &allow_hop).await {
            Ok(fetched) => fetched,
            Err(error) => return Ok(fetch_failure(error, receive_count)),
        };
        let status = fetched.status;
        if status == 429 || status >= 500 {
            if receive_count < MAX_ATTEMPTS {
                return Ok(Step::Retry);
            }
            return Ok(Step::Finish(with_status(
                Outcome::Failed,
                &fetched,
                "server error",
            )));
        }
        if !(200..300).contains(&status) {
            return Ok(Step::Finish(with_status(
                Outcome::Failed,
                &fetched,
                "HTTP error",
            )));
        }
        let content_type = fetched.content_type.as_deref();
        if !html::is_html(content_type, &fetched.body) {
            let reason = format!("not HTML ({})", content_type.unwrap_or("no content type"));
            return Ok(Step::Finish(with_status(
                Outcome::SkippedUnsupported,
                &fetched,
                &reason,
            )));
        }
        let source = html::decode(content_type, &fetched.body);
        let page = html::parse(
            &source,
            &fetched.final_url,
            job.spec.only_main_content,
            job.spec.ignore_query_params,
        );
        let document = page_document(job, entry, &fetched, &page);
        let document_id = document.id.clone();
        if let Some(step) = self.deliver(job, document, receive_count).await {
            return Ok(step);
        }
        let mut scope_skips = 0;
        if job.kind() == JobKind::Crawl && entry.depth < job.spec.max_depth {
            let mut links = link_candidates(&page.links, entry.depth + 1);
            if entry.parent.is_none() && !job.spec.ignore_sitemap {
                let sitemap_urls = self.sitemap_urls(job, url).await?;
                links.extend(link_candidates(&sitemap_urls, 1));
            }
            let (in_scope, out_of_scope): (Vec<Candidate>, Vec<Candidate>) = self
                .unseen(&job.id, links)
                .into_iter()
                .partition(|candidate| {
                    Url::parse(&candidate.url).is_ok_and(|link| scope.check(&link).is_ok())
                });
            scope_skips = out_of_scope.len() as u64;
            self.remember(&job.id, out_of_scope.iter().map(|c| c.key.clone()));
            let checked: Vec<String> = in_scope.iter().map(|c| c.key.clone()).collect();
            let registered = self.jobs.register(&job.id, key, in_scope).await?;
            let bodies: Vec<String> = registered
                .to_enqueue
                .iter()
                .map(|child| message_body(&job.id, &child.url, child.depth))
                .collect();
            if !bodies.is_empty() {
                self.queue.send_batch(bodies).await?;
            }
            // Only now: a retry after a failed send must find and re-send its children.
            self.remember(&job.id, checked);
        }
        Ok(Step::Finish(Box::new(Finish {
            outcome: Outcome::Done,
            scope_skips,
            reason: None,
            fetched: Some((status, fetched.final_url.to_string())),
            keep_markdown: job.spec.sink.is_none(),
            page: Some(page),
            document_id: Some(document_id),
        })))
    }

    /// Seals the sink's own credential for this job and checks the sink can be built for its
    /// owner (the operator's credential only where pinned), before anything is stored.
    fn seal_sink_secret(&self, job: &mut CrawlJob) -> Result<(), EngineError> {
        let secret = job.spec.sink_secret.take();
        let Some(config) = &job.spec.sink else {
            return Ok(());
        };
        let owner = job.sink_owner();
        let sealed = match secret {
            Some(secret) => {
                let vault = self.sinks.vault.as_ref().ok_or_else(|| {
                    SinkError::Config(format!(
                        "sink credentials need {}",
                        crate::vault::ENCRYPTION_KEY
                    ))
                })?;
                Some(
                    crate::sinks::seal_secret(vault, &secret, &owner)
                        .map_err(|error| SinkError::Config(error.to_string()))?,
                )
            }
            None => None,
        };
        self.sinks.build_stored(config, sealed.as_deref(), &owner)?;
        job.spec.sink_secret_sealed = sealed;
        Ok(())
    }

    /// Sends the page to the job's sink; `Some(step)` when that failed.
    async fn deliver(
        &self,
        job: &CrawlJob,
        document: Document,
        receive_count: u32,
    ) -> Option<Step> {
        let config = job.spec.sink.as_ref()?;
        let sealed = job.spec.sink_secret_sealed.as_deref();
        let result = match self.sinks.build_stored(config, sealed, &job.sink_owner()) {
            Ok(sink) => sink.deliver(&[document]).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => None,
            Err(error) if error.is_transient() && receive_count < MAX_ATTEMPTS => {
                tracing::warn!(%error, "sink unavailable; will retry");
                Some(Step::Retry)
            }
            Err(error) => Some(Step::Finish(finish(
                Outcome::Failed,
                format!("delivery failed: {}", sink_reason(&error)),
            ))),
        }
    }

    async fn record(&self, job: &CrawlJob, key: &str, finish: Finish) -> Result<(), EngineError> {
        let updated = self
            .jobs
            .finish(&job.id, key, finish.outcome, finish.scope_skips, |url| {
                url.reason.clone_from(&finish.reason);
                if let Some((status, final_url)) = &finish.fetched {
                    url.status_code = Some(*status);
                    url.final_url = Some(final_url.clone());
                }
                url.document_id.clone_from(&finish.document_id);
                if let Some(page) = &finish.page {
                    url.title.clone_from(&page.metadata.title);
                    url.description.clone_from(&page.metadata.description);
                    url.language.clone_from(&page.metadata.language);
                    if finish.keep_markdown {
                        let (markdown, truncated) = truncated(&page.markdown, MAX_STORED_MARKDOWN);
                        url.markdown = Some(markdown);
                        url.markdown_truncated = truncated;
                    }
                }
            })
            .await?;
        if let Some(job) = updated.filter(|job| !job.status.is_active()) {
            if job.finished_at == Some(job.updated_at) {
                tracing::info!(crawl_id = %job.id, status = ?job.status, done = job.counters.done, "crawl ended");
            }
        }
        Ok(())
    }

    /// The job's robots.txt rules for the URL's origin: memory, then the store, then fetched once.
    async fn robots_for(&self, job: &CrawlJob, url: &Url) -> Result<Arc<RobotsRules>, EngineError> {
        let origin = url.origin().ascii_serialization();
        let cache_key = format!("{}|{origin}", job.id);
        if let Some(rules) = lock(&self.robots).get(&cache_key) {
            return Ok(rules.clone());
        }
        let rules = match self.jobs.robots(&job.id, &origin).await? {
            Some(cached) => RobotsRules::from_cache(ROBOTS_AGENT, &cached),
            None => None,
        };
        let rules = match rules {
            Some(rules) => rules,
            None => {
                let rules = self.fetch_robots(url).await;
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
        Ok(rules)
    }

    async fn fetch_robots(&self, url: &Url) -> RobotsRules {
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

    /// Waits for the origin's next Crawl-delay slot.
    async fn pace(&self, url: &Url, delay: Option<Duration>) {
        let Some(delay) = delay.filter(|delay| !delay.is_zero()) else {
            return;
        };
        let delay = delay.min(MAX_CRAWL_DELAY);
        let origin = url.origin().ascii_serialization();
        let start = {
            let mut pacing = lock(&self.pacing);
            let now = Instant::now();
            let start = pacing
                .get(&origin)
                .copied()
                .filter(|next| *next > now)
                .unwrap_or(now);
            pacing.insert(origin, start + delay);
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }

    /// URLs listed by the site's sitemaps (robots.txt `Sitemap:` lines, else `/sitemap.xml`).
    async fn sitemap_urls(&self, job: &CrawlJob, url: &Url) -> Result<Vec<Url>, EngineError> {
        let rules = self.robots_for(job, url).await?;
        let mut pending = rules.sitemaps();
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
            let Ok(fetched) = self.fetcher.get(&sitemap_url, &|_| true).await else {
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

    /// The candidates this process has not registered or counted for the job yet.
    fn unseen(&self, job_id: &str, candidates: Vec<Candidate>) -> Vec<Candidate> {
        let seen = lock(&self.seen);
        match seen.get(job_id) {
            Some(keys) => candidates
                .into_iter()
                .filter(|candidate| !keys.contains(&candidate.key))
                .collect(),
            None => candidates,
        }
    }

    fn remember(&self, job_id: &str, keys: impl IntoIterator<Item = String>) {
        let mut seen = lock(&self.seen);
        if seen.values().map(HashSet::len).sum::<usize>() > MAX_SEEN_KEYS {
            seen.clear();
        }
        seen.entry(job_id.to_owned()).or_default().extend(keys);
    }

    /// One page, synchronously (`POST /scrape`): no robots, no sink, same SSRF guard.
    pub async fn scrape(&self, url: &Url, only_main_content: bool) -> Result<Scraped, ScrapeError> {
        let fetched = self.fetcher.get(url, &|_| true).await?;
        let content_type = fetched.content_type.as_deref();
        if !html::is_html(content_type, &fetched.body) {
            return Err(ScrapeError::NotHtml(
                content_type.unwrap_or("none").chars().take(100).collect(),
            ));
        }
        let source = html::decode(content_type, &fetched.body);
        let page = html::parse(&source, &fetched.final_url, only_main_content, false);
        Ok(Scraped {
            fetched,
            page,
            html: source,
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn message_body(job_id: &str, url: &str, depth: u32) -> String {
    serde_json::json!({ "job_id": job_id, "url": url, "depth": depth }).to_string()
}

fn fetch_failure(error: FetchError, receive_count: u32) -> Step {
    let outcome = match &error {
        FetchError::Blocked(_) => Outcome::SkippedSsrf,
        FetchError::OutOfScope(_) => Outcome::SkippedScope,
        error if error.is_transient() && receive_count < MAX_ATTEMPTS => return Step::Retry,
        _ => Outcome::Failed,
    };
    Step::Finish(finish(outcome, error.to_string()))
}

fn with_status(outcome: Outcome, fetched: &Fetched, reason: &str) -> Box<Finish> {
    let mut finish = finish(outcome, reason);
    finish.fetched = Some((fetched.status, fetched.final_url.to_string()));
    finish
}

fn sink_reason(error: &SinkError) -> String {
    error.to_string().chars().take(300).collect()
}

fn link_candidates(links: &[Url], depth: u32) -> Vec<Candidate> {
    let mut keys = HashSet::new();
    links
        .iter()
        .filter_map(|link| normalize(link, false).or_else(|| Some(link.clone())))
        .filter(|link| matches!(link.scheme(), "http" | "https"))
        .map(|link| Candidate {
            key: url_key(&link),
            url: link.to_string(),
            depth,
        })
        .filter(|candidate| keys.insert(candidate.key.clone()))
        .collect()
}

fn page_document(job: &CrawlJob, entry: &CrawlUrl, fetched: &Fetched, page: &Page) -> Document {
    let final_url = normalize(&fetched.final_url, job.spec.ignore_query_params)
        .unwrap_or_else(|| fetched.final_url.clone());
    let mut metadata = serde_json::Map::new();
    let meta = &page.metadata;
    for (name, value) in [
        ("description", &meta.description),
        ("language", &meta.language),
        ("canonical_url", &meta.canonical_url),
    ] {
        if let Some(value) = value {
            metadata.insert(name.into(), value.clone().into());
        }
    }
    metadata.insert("status_code".into(), fetched.status.into());
    metadata.insert("final_url".into(), fetched.final_url.to_string().into());
    metadata.insert("crawl_id".into(), job.id.clone().into());
    metadata.insert("depth".into(), entry.depth.into());
    Document {
        // Keyed by the tenant and the page's final URL: a re-crawl (or a redirect alias)
        // overwrites, and another tenant crawling the same page into a shared dataset gets
        // its own document.
        id: Document::stable_id(&format!("web:{}", job.tenant_id), final_url.as_str()),
        source: "web".into(),
        source_id: final_url.to_string(),
        title: meta.title.clone(),
        url: Some(fetched.final_url.to_string()),
        markdown: page.markdown.clone(),
        metadata,
        updated_at: crate::web::rfc3339(now_epoch_seconds()),
        acl: Vec::new(),
    }
}

/// At most `max` bytes, cut on a character boundary.
fn truncated(text: &str, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text.to_owned(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}
