//! The crawl engine: starts jobs and handles one page message at a time. `crawl-page`
//! feeds it from SQS, `tributary-local` from the embedded queue; both get the same
//! behaviour.
//!
//! A page message is safe to deliver twice: its URL item leaves the `queued` state once
//! (in one transaction with the job's counters), links are registered with conditional
//! puts, and a page retried after a crash re-enqueues the links it had registered.
//!
//! Every call gets the invocation's [`Deadline`]: each slow step (robots.txt, the page,
//! the sink, sitemaps) is bounded by the time left, and a page that cannot finish, or
//! whose origin's Crawl-delay slot is taken, goes back on the queue with a delay (a new
//! message; the delivered one is acknowledged) instead of sleeping past the deadline.
//! The URL item stays queued meanwhile, so the job's counters do not move.

mod links;
mod site;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::Instrument;
use url::Url;

use super::fetch::{FetchError, Fetched, Fetcher};
use super::html::{self, Page};
use super::job::{CrawlSpec, JobKind};
use super::normalize::{normalize, url_key};
use super::robots::RobotsRules;
use super::scope::Scope;
use crate::auth::Principal;
use crate::connectors::document::Document;
use crate::queue::{Queue, QueueError};
use crate::sinks::{DirectorySink, Sink, SinkConfig, SinkEnvironment, SinkError};
use crate::store::crawls::{
    Candidate, Counters, CrawlJob, CrawlJobs, CrawlStoreError, CrawlUrl, JobStatus, LastRead,
    LinkSkips, Outcome,
};
use crate::store::{StoreError, Table};
use crate::time::{now_epoch_millis, now_epoch_seconds, rfc3339};

/// The product token matched against robots.txt `User-agent` lines.
pub const ROBOTS_AGENT: &str = "tributary";
/// Deliveries of one message before a transient failure counts as a failure (the queue's
/// dead-letter threshold is higher, so only unreadable messages reach the DLQ).
pub const MAX_ATTEMPTS: u32 = 3;
/// Markdown kept in the store when a job has no sink (DynamoDB items are ≤ 400 KB).
const MAX_STORED_MARKDOWN: usize = 256 * 1024;
/// Least time left (after the deadline's margin) to start a page; with less it is
/// re-queued for the next invocation.
const MIN_PAGE_TIME: Duration = Duration::from_secs(1);
/// Deliveries of one page cut short by the deadline before it counts as failed.
const MAX_DEADLINE_CUTS: u32 = 3;

/// One URL of one job to fetch; the URL item in the store is the source of truth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMessage {
    pub job_id: String,
    pub url: String,
    pub depth: u32,
    /// Earlier deliveries of this page that the invocation deadline cut short.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cuts: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// When the invocation handling a message must have returned, and how much of that time
/// is kept back for recording the page and re-queuing what did not fit.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    margin: Duration,
}

impl Deadline {
    /// Kept back by default: a few store writes and one queue send.
    pub const DEFAULT_MARGIN: Duration = Duration::from_secs(5);

    pub fn at(at: Instant) -> Self {
        Self {
            at,
            margin: Self::DEFAULT_MARGIN,
        }
    }

    /// `budget` from now (tributary-local's per-message budget, tests).
    pub fn after(budget: Duration) -> Self {
        Self::at(Instant::now() + budget)
    }

    /// The Lambda context's deadline (epoch milliseconds).
    pub fn from_epoch_millis(deadline_ms: u64) -> Self {
        let now = u64::try_from(now_epoch_millis()).unwrap_or(0);
        Self::after(Duration::from_millis(deadline_ms.saturating_sub(now)))
    }

    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Time left for work, the margin kept back.
    pub fn left(&self) -> Duration {
        self.at
            .saturating_duration_since(Instant::now())
            .saturating_sub(self.margin)
    }
}

/// `work`'s output, or `None` when the deadline came first.
async fn within<T>(deadline: &Deadline, work: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(deadline.left(), work).await.ok()
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
    /// Per job, normalised URLs this process knows are already registered (and enqueued)
    /// or counted as skipped: most links of a site point at pages seen before, and this
    /// spares a store read, a hash and a scope check for each. Only a hint: the conditional
    /// puts decide.
    seen: Mutex<HashMap<String, HashSet<String>>>,
    /// Jobs this engine has seen end, counted, so a local runner notices the end at once.
    ended: watch::Sender<u64>,
}

/// How one page ended, before it is written.
struct Finish {
    outcome: Outcome,
    /// Distinct links this page found and skipped without registering them.
    skips: LinkSkips,
    reason: Option<String>,
    fetched: Option<(u16, String)>,
    page: Option<Page>,
    document_id: Option<String>,
    keep_markdown: bool,
    /// The job as registering this page's links left it, if they wrote it.
    job_written: Option<CrawlJob>,
}

impl Finish {
    fn new(outcome: Outcome, reason: impl Into<String>) -> Self {
        Self {
            outcome,
            skips: LinkSkips::default(),
            reason: Some(reason.into()),
            fetched: None,
            page: None,
            document_id: None,
            keep_markdown: false,
            job_written: None,
        }
    }
}

fn finish(outcome: Outcome, reason: impl Into<String>) -> Box<Finish> {
    Box::new(Finish::new(outcome, reason))
}

/// The page's end, "try again later", or "put it back on the queue for later".
enum Step {
    Finish(Box<Finish>),
    Retry,
    /// Re-queue after `delay`; `cut` when the deadline interrupted the page's work.
    Defer {
        delay: Duration,
        cut: bool,
    },
}

/// The page ran out of invocation time: back on the queue at once.
fn cut_short() -> Step {
    Step::Defer {
        delay: Duration::ZERO,
        cut: true,
    }
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
            seen: Mutex::new(HashMap::new()),
            ended: watch::Sender::new(0),
        }
    }

    /// Changes each time a page this engine handled ended its job (any job): wait on it
    /// and read the job, instead of polling the store for the end.
    pub fn ended_jobs(&self) -> watch::Receiver<u64> {
        self.ended.subscribe()
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
            end_reason: None,
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

    /// Handles one delivery of a page message, returning before `deadline`.
    pub async fn handle(&self, body: &str, receive_count: u32, deadline: Deadline) -> Disposition {
        let message: PageMessage = match serde_json::from_str(body) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "unreadable crawl message; leaving it for the dead-letter queue");
                return Disposition::Retry;
            }
        };
        // Instrumented, not entered: a guard held across an await stays entered on whichever
        // thread polls next, and other tasks' events there nest inside this page's span.
        let span =
            tracing::info_span!("crawl_page", crawl_id = %message.job_id, depth = message.depth);
        let processed = self
            .process(&message, receive_count, &deadline)
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        match processed {
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
        deadline: &Deadline,
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
        } else if deadline.left() < MIN_PAGE_TIME {
            Step::Defer {
                delay: Duration::ZERO,
                cut: false,
            }
        } else {
            self.crawl_page(&job, &key, &entry, &url, receive_count, deadline)
                .await?
        };
        let step = match step {
            Step::Defer { cut: true, .. } if message.cuts + 1 >= MAX_DEADLINE_CUTS => {
                Step::Finish(finish(
                    Outcome::Failed,
                    format!(
                        "did not finish within the invocation deadline {MAX_DEADLINE_CUTS} times"
                    ),
                ))
            }
            step => step,
        };
        match step {
            Step::Retry => Ok(Disposition::Retry),
            Step::Defer { delay, cut } => {
                self.defer(message, delay, cut).await?;
                Ok(Disposition::Handled)
            }
            Step::Finish(finish) => {
                self.record(&job, &key, entry, *finish).await?;
                Ok(Disposition::Handled)
            }
        }
    }

    /// Puts the page back on the queue as a new message due after `delay`; the delivered
    /// one is then acknowledged. Nothing is counted: the URL item is still queued.
    async fn defer(
        &self,
        message: &PageMessage,
        delay: Duration,
        cut: bool,
    ) -> Result<(), EngineError> {
        let mut next = message.clone();
        next.cuts += u32::from(cut);
        let body = serde_json::to_string(&next).map_err(|e| QueueError::Backend(e.to_string()))?;
        self.queue.send_batch_delayed(vec![body], delay).await?;
        tracing::debug!(
            delay_ms = delay.as_millis() as u64,
            cut,
            "crawl page re-queued"
        );
        Ok(())
    }

    async fn crawl_page(
        &self,
        job: &CrawlJob,
        key: &str,
        entry: &CrawlUrl,
        url: &Url,
        receive_count: u32,
        deadline: &Deadline,
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
            let Some(rules) = self.robots_for(job, url, deadline).await? else {
                return Ok(cut_short());
            };
            if !rules.allowed(url) {
                return Ok(Step::Finish(finish(
                    Outcome::SkippedRobots,
                    "disallowed by robots.txt",
                )));
            }
            if let Some(step) = self.pace(job, url, rules.crawl_delay(), deadline).await? {
                return Ok(step);
            }
        }
        let allow_hop = |next: &Url| scope.check(next).is_ok();
        let fetch = self.fetcher.get_if(url, &allow_hop, &could_be_html);
        let fetched = match within(deadline, fetch).await {
            None => return Ok(cut_short()),
            Some(Ok(fetched)) => fetched,
            Some(Err(error)) => return Ok(fetch_failure(error, receive_count)),
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
        if let Some(step) = self.deliver(job, document, receive_count, deadline).await {
            return Ok(step);
        }
        let mut skips = LinkSkips::default();
        let mut job_written = None;
        if job.kind() == JobKind::Crawl && entry.depth < job.spec.max_depth {
            let sitemap_urls = if entry.parent.is_none() && !job.spec.ignore_sitemap {
                self.sitemap_urls(job, url, deadline).await?
            } else {
                Vec::new()
            };
            let links = page.links.iter().map(|link| (link, entry.depth + 1));
            let sorted = self.sort_links(
                &job.id,
                &scope,
                links.chain(sitemap_urls.iter().map(|link| (link, 1))),
            );
            skips = LinkSkips {
                scope: sorted.out_of_scope.len() as u64,
                unsupported: sorted.unsupported.len() as u64,
            };
            self.remember(
                &job.id,
                sorted.out_of_scope.into_iter().chain(sorted.unsupported),
            );
            let checked: Vec<String> = sorted.in_scope.iter().map(|c| c.url.clone()).collect();
            let registered = self.jobs.register(&job.id, key, sorted.in_scope).await?;
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
            job_written = registered.job;
        }
        Ok(Step::Finish(Box::new(Finish {
            outcome: Outcome::Done,
            skips,
            reason: None,
            fetched: Some((status, fetched.final_url.to_string())),
            keep_markdown: job.spec.sink.is_none(),
            page: Some(page),
            document_id: Some(document_id),
            job_written,
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
        deadline: &Deadline,
    ) -> Option<Step> {
        let config = job.spec.sink.as_ref()?;
        let result = match self.sink(job, config) {
            // Re-delivery after a cut overwrites: document ids are stable.
            Ok(sink) => match within(deadline, sink.deliver(&[document])).await {
                Some(result) => result,
                None => return Some(cut_short()),
            },
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

    /// The job's sink. A directory sink does not sync to disk: a page lost to a power cut
    /// comes back with a re-run of the crawl, and two syncs per page cost more than the
    /// rest of writing it. Connector syncs keep syncing (their checkpoint moves past a
    /// delivered document for good).
    fn sink(&self, job: &CrawlJob, config: &SinkConfig) -> Result<Arc<dyn Sink>, SinkError> {
        if let SinkConfig::Directory { path } = config {
            crate::sinks::check_config(config, &self.sinks)?;
            return Ok(Arc::new(DirectorySink::new(path.clone()).without_sync()));
        }
        let sealed = job.spec.sink_secret_sealed.as_deref();
        self.sinks.build_stored(config, sealed, &job.sink_owner())
    }

    /// Moves the page's URL item (`entry`, as read when the message came in) to its outcome.
    async fn record(
        &self,
        job: &CrawlJob,
        key: &str,
        entry: CrawlUrl,
        mut finish: Finish,
    ) -> Result<(), EngineError> {
        let read = LastRead {
            job: finish.job_written.take(),
            url: Some(entry),
        };
        let updated = self
            .jobs
            .finish(&job.id, key, read, finish.outcome, finish.skips, |url| {
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
            self.ended.send_modify(|ended| *ended += 1);
        }
        Ok(())
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

/// Whether a response with this content type may be HTML, so its body is worth reading:
/// [`html::is_html`] decides by the content type when there is one, else by sniffing the
/// body, which a stand-in HTML body passes.
fn could_be_html(content_type: Option<&str>) -> bool {
    html::is_html(content_type, b"<html>")
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
        updated_at: rfc3339(now_epoch_seconds()),
        file: None,
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
