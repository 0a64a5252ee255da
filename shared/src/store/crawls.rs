//! Crawl jobs (`CRAWL#<id>`/`JOB`), the URLs they have seen (`CRAWL#<id>`/`URL#<sha256>`)
//! the robots.txt files they fetched (`CRAWL#<id>`/`ROBOTS#<origin>`) and, per origin, the
//! next Crawl-delay slot shared by every consumer (`CRAWL#<id>`/`PACE#<origin>`). Active jobs
//! are also listed in `gsi1` (`CRAWLS#ACTIVE`) so the sweeper can find stalled ones.
//!
//! Every URL item is created by a conditional put in the same transaction that counts it on
//! the job, so a URL is queued once however many pages link to it and however many
//! Lambdas race, and the job's counters never disagree with its URL items. A URL item
//! leaves the `queued` state exactly once, again in one transaction with the job's counters.
//! All items expire (TTL) some time after the job was created.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    decode_item, now_epoch_seconds, record_attributes, Index, Item, Key, Query, StoreError, Table,
    WriteOp,
};
use crate::crawl::job::{CrawlSpec, JobKind};

/// How long a job and its results stay readable.
pub const RETENTION_SECS: i64 = 30 * 24 * 3600;
/// Optimistic-locking retries on the job item before giving up (the message is retried).
const MAX_ATTEMPTS: usize = 64;
/// URL items per transaction; one more slot holds the job.
const URLS_PER_TRANSACTION: usize = super::MAX_TRANSACTION_OPS - 1;
/// The `gsi1` partition listing active jobs (an ended job's item drops its index key).
const ACTIVE_JOBS_INDEX: &str = "CRAWLS#ACTIVE";
/// Conditional-write rounds when taking a pacing slot before reporting a full wait.
const PACE_ATTEMPTS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    Cancelled,
    Failed,
}

impl JobStatus {
    pub fn is_active(self) -> bool {
        matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// Distinct in-scope URLs registered that count against the job's limit (at most the
    /// limit): a URL whose response turns out not to be HTML gives its place back.
    pub discovered: u64,
    /// URLs put on the queue; each ends in exactly one of the outcomes below.
    pub queued: u64,
    pub processed: u64,
    pub done: u64,
    pub failed: u64,
    pub skipped_robots: u64,
    pub skipped_scope: u64,
    pub skipped_ssrf: u64,
    /// Not HTML: URLs fetched and answered with another content type (counted in
    /// `processed`), plus distinct links never registered because their extension names a
    /// file a crawl does not read (an image, a stylesheet, a PDF).
    pub skipped_unsupported: u64,
    pub skipped_cancelled: u64,
    /// In-scope links not registered because the limit was reached.
    pub skipped_limit: u64,
}

impl Counters {
    pub fn pending(&self) -> u64 {
        self.queued.saturating_sub(self.processed)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrawlJob {
    pub id: String,
    pub user_id: String,
    pub tenant_id: String,
    pub spec: CrawlSpec,
    pub status: JobStatus,
    pub counters: Counters,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// Why the job ended when it did not end by itself (the sweeper closed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    #[serde(skip)]
    pub item_version: u64,
}

impl CrawlJob {
    pub fn kind(&self) -> JobKind {
        self.spec.kind
    }

    fn expires_at(&self) -> i64 {
        self.created_at + RETENTION_SECS
    }

    /// The owner the job's sink credential is sealed for.
    pub fn sink_owner(&self) -> crate::sinks::SinkOwner<'_> {
        crate::sinks::SinkOwner::Crawl {
            tenant_id: &self.tenant_id,
            job_id: &self.id,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UrlState {
    Queued,
    Done,
    Failed,
    Skipped,
}

/// How a queued URL ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
    SkippedRobots,
    SkippedScope,
    SkippedSsrf,
    SkippedUnsupported,
    SkippedCancelled,
}

impl Outcome {
    fn state(self) -> UrlState {
        match self {
            Outcome::Done => UrlState::Done,
            Outcome::Failed => UrlState::Failed,
            _ => UrlState::Skipped,
        }
    }

    fn count(self, counters: &mut Counters) {
        counters.processed += 1;
        let counter = match self {
            Outcome::Done => &mut counters.done,
            Outcome::Failed => &mut counters.failed,
            Outcome::SkippedRobots => &mut counters.skipped_robots,
            Outcome::SkippedScope => &mut counters.skipped_scope,
            Outcome::SkippedSsrf => &mut counters.skipped_ssrf,
            Outcome::SkippedUnsupported => &mut counters.skipped_unsupported,
            Outcome::SkippedCancelled => &mut counters.skipped_cancelled,
        };
        *counter += 1;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CrawlUrl {
    pub url: String,
    pub depth: u32,
    pub state: Option<UrlState>,
    /// The URL key of the page whose links registered this one (None for seeds).
    pub parent: Option<String>,
    pub reason: Option<String>,
    pub status_code: Option<u16>,
    pub final_url: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub language: Option<String>,
    pub document_id: Option<String>,
    /// The page's markdown, kept here only when the job has no sink.
    pub markdown: Option<String>,
    #[serde(default)]
    pub markdown_truncated: bool,
    pub finished_at: Option<i64>,
    #[serde(skip)]
    pub item_version: u64,
}

impl CrawlUrl {
    pub fn queued(url: String, depth: u32, parent: Option<String>) -> Self {
        Self {
            url,
            depth,
            state: Some(UrlState::Queued),
            parent,
            ..Self::default()
        }
    }

    pub fn is_queued(&self) -> bool {
        self.state == Some(UrlState::Queued)
    }
}

/// A URL found on a page, before registration.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub key: String,
    pub url: String,
    pub depth: u32,
}

/// Distinct links a page found that were never registered, counted on the job with the
/// page's outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkSkips {
    pub scope: u64,
    pub unsupported: u64,
}

/// What registering a page's links achieved.
#[derive(Debug, Default)]
pub struct Registered {
    /// Newly queued by this call, plus those this parent queued earlier that are still
    /// queued (its previous attempt may have crashed before enqueueing them).
    pub to_enqueue: Vec<CrawlUrl>,
    /// The job as this call last wrote it, if it wrote it.
    pub job: Option<CrawlJob>,
}

/// Items as a caller last read or wrote them, for [`CrawlJobs::finish`] to start from.
#[derive(Debug, Default)]
pub struct LastRead {
    pub job: Option<CrawlJob>,
    pub url: Option<CrawlUrl>,
}

#[derive(Debug, thiserror::Error)]
pub enum CrawlStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the crawl job changed too often concurrently; try again")]
    Contention,
    #[error("no such crawl job")]
    NotFound,
    #[error("the crawl has already ended")]
    Finished,
}

/// What taking an origin's Crawl-delay slot gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaceSlot {
    /// The caller may request the origin now; the next slot is one delay later.
    Granted,
    /// Another consumer holds the origin until this much later.
    Wait(Duration),
}

fn job_key(id: &str) -> Key {
    Key::new(format!("CRAWL#{id}"), "JOB")
}

fn url_item_key(job_id: &str, url_key: &str) -> Key {
    Key::new(format!("CRAWL#{job_id}"), format!("URL#{url_key}"))
}

fn robots_key(job_id: &str, origin: &str) -> Key {
    Key::new(format!("CRAWL#{job_id}"), format!("ROBOTS#{origin}"))
}

fn pace_key(job_id: &str, origin: &str) -> Key {
    Key::new(format!("CRAWL#{job_id}"), format!("PACE#{origin}"))
}

fn job_item(job: &CrawlJob) -> Result<Item, StoreError> {
    let key = job_key(&job.id);
    let item =
        Item::new(key.clone(), record_attributes(job, &key)?).with_expiry(Some(job.expires_at()));
    Ok(if job.status.is_active() {
        item.with_gsi1(Key::new(ACTIVE_JOBS_INDEX, job.id.clone()))
    } else {
        item
    })
}

fn url_item(job: &CrawlJob, url_key: &str, url: &CrawlUrl) -> Result<Item, StoreError> {
    let key = url_item_key(&job.id, url_key);
    Ok(Item::new(key.clone(), record_attributes(url, &key)?).with_expiry(Some(job.expires_at())))
}

#[derive(Clone)]
pub struct CrawlJobs {
    table: Arc<dyn Table>,
}

impl CrawlJobs {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    /// Stores a new job with its seeds queued (counted as discovered and queued).
    pub async fn create(&self, job: &CrawlJob, seeds: &[Candidate]) -> Result<(), StoreError> {
        let mut job = job.clone();
        job.counters.discovered = seeds.len() as u64;
        job.counters.queued = seeds.len() as u64;
        let mut ops = vec![WriteOp::PutIfAbsent(job_item(&job)?)];
        for seed in seeds {
            let url = CrawlUrl::queued(seed.url.clone(), seed.depth, None);
            ops.push(WriteOp::PutIfAbsent(url_item(&job, &seed.key, &url)?));
        }
        // A batch larger than one transaction: the job first, then its seeds.
        for chunk in ops.chunks(super::MAX_TRANSACTION_OPS) {
            self.table.transact(chunk.to_vec()).await?;
        }
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Option<CrawlJob>, StoreError> {
        let Some(item) = self.table.get(&job_key(id)).await? else {
            return Ok(None);
        };
        let (mut job, version): (CrawlJob, u64) = decode_item(item)?;
        job.item_version = version;
        Ok(Some(job))
    }

    pub async fn get_url(
        &self,
        job_id: &str,
        url_key: &str,
    ) -> Result<Option<CrawlUrl>, StoreError> {
        let Some(item) = self.table.get(&url_item_key(job_id, url_key)).await? else {
            return Ok(None);
        };
        let (mut url, version): (CrawlUrl, u64) = decode_item(item)?;
        url.item_version = version;
        Ok(Some(url))
    }

    /// Cancels an active job; finished jobs are left as they are.
    pub async fn cancel(&self, id: &str) -> Result<CrawlJob, CrawlStoreError> {
        self.modify_job(id, |job| {
            if !job.status.is_active() {
                return Err(CrawlStoreError::Finished);
            }
            job.status = JobStatus::Cancelled;
            job.finished_at = Some(job.updated_at);
            Ok(true)
        })
        .await
    }

    /// Reads the job, lets `change` edit it (`Ok(false)`: leave it as it is) and saves it
    /// with a version check, re-reading on a concurrent write. `updated_at` is set to now
    /// before `change` runs.
    async fn modify_job(
        &self,
        id: &str,
        change: impl Fn(&mut CrawlJob) -> Result<bool, CrawlStoreError>,
    ) -> Result<CrawlJob, CrawlStoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let stored = self.get(id).await?.ok_or(CrawlStoreError::NotFound)?;
            let mut job = stored.clone();
            job.updated_at = now_epoch_seconds();
            if !change(&mut job)? {
                return Ok(stored);
            }
            match self.save_job(&job).await {
                Ok(saved) => return Ok(saved),
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(CrawlStoreError::Contention)
    }

    async fn save_job(&self, job: &CrawlJob) -> Result<CrawlJob, StoreError> {
        self.table
            .update_if_version(job_item(job)?, job.item_version)
            .await?;
        let mut saved = job.clone();
        saved.item_version += 1;
        Ok(saved)
    }

    /// Registers the in-scope links of page `parent_key`: new URLs are queued (up to the
    /// job's limit); URLs seen before change nothing. Nothing is registered once the job
    /// has ended.
    pub async fn register(
        &self,
        job_id: &str,
        parent_key: &str,
        candidates: Vec<Candidate>,
    ) -> Result<Registered, CrawlStoreError> {
        let mut registered = Registered::default();
        // One transaction may not write the same key twice.
        let mut seen = std::collections::HashSet::new();
        let mut remaining: Vec<Candidate> = candidates
            .into_iter()
            .filter(|candidate| seen.insert(candidate.key.clone()))
            .collect();
        let mut attempts = 0;
        while !remaining.is_empty() {
            attempts += 1;
            if attempts > MAX_ATTEMPTS {
                return Err(CrawlStoreError::Contention);
            }
            let job = self.get(job_id).await?.ok_or(CrawlStoreError::NotFound)?;
            let full = job.counters.discovered >= u64::from(job.spec.limit);
            if !job.status.is_active() || full {
                break;
            }
            let fresh = self
                .unseen(job_id, parent_key, &mut remaining, &mut registered)
                .await?;
            let chunk: Vec<Candidate> = fresh.into_iter().take(URLS_PER_TRANSACTION).collect();
            if chunk.is_empty() {
                break;
            }
            match self.register_chunk(job, parent_key, &chunk).await {
                Ok((queued, job)) => {
                    registered.to_enqueue.extend(queued);
                    registered.job = Some(job);
                    let done: std::collections::HashSet<&str> =
                        chunk.iter().map(|c| c.key.as_str()).collect();
                    remaining.retain(|c| !done.contains(c.key.as_str()));
                }
                // Another page registered one of these URLs, or the job moved on: re-read.
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Ok(registered)
    }

    /// Drops candidates that already have an item, remembering those this parent queued
    /// earlier and that are still waiting; returns the rest in order.
    async fn unseen(
        &self,
        job_id: &str,
        parent_key: &str,
        remaining: &mut Vec<Candidate>,
        registered: &mut Registered,
    ) -> Result<Vec<Candidate>, StoreError> {
        let lookups = remaining
            .iter()
            .map(|candidate| self.get_url(job_id, &candidate.key));
        let existing = futures::future::try_join_all(lookups).await?;
        let mut fresh = Vec::new();
        for (candidate, found) in remaining.drain(..).zip(existing) {
            match found {
                Some(url) => {
                    let mine = url.parent.as_deref() == Some(parent_key);
                    if mine && url.is_queued() {
                        registered.to_enqueue.push(url);
                    }
                }
                None => fresh.push(candidate),
            }
        }
        remaining.clone_from(&fresh);
        Ok(fresh)
    }

    async fn register_chunk(
        &self,
        mut job: CrawlJob,
        parent_key: &str,
        chunk: &[Candidate],
    ) -> Result<(Vec<CrawlUrl>, CrawlJob), StoreError> {
        let mut ops = Vec::with_capacity(chunk.len() + 1);
        let mut queued = Vec::new();
        let capacity = u64::from(job.spec.limit).saturating_sub(job.counters.discovered);
        for candidate in chunk {
            let url = CrawlUrl::queued(
                candidate.url.clone(),
                candidate.depth,
                Some(parent_key.to_owned()),
            );
            if (queued.len() as u64) < capacity {
                job.counters.discovered += 1;
                job.counters.queued += 1;
                queued.push(url.clone());
            } else {
                // Not stored: the URL may be linked again, and the limit stays reached.
                job.counters.skipped_limit += 1;
                continue;
            }
            ops.push(WriteOp::PutIfAbsent(url_item(&job, &candidate.key, &url)?));
        }
        job.updated_at = now_epoch_seconds();
        ops.push(WriteOp::UpdateIfVersion {
            item: job_item(&job)?,
            expected: job.item_version,
        });
        self.table.transact(ops).await?;
        job.item_version += 1;
        Ok((queued, job))
    }

    /// Moves a queued URL to its outcome and counts it on the job with the links its page
    /// skipped, completing the job when nothing is pending. A URL found not to be HTML
    /// leaves `discovered`, so it does not use up the limit. Returns `Ok(None)` when the
    /// URL had already left the queued state (a duplicate delivery), or the job afterwards.
    /// `read` holds the items as the caller last read or wrote them, used instead of the
    /// first attempt's reads: the version checks fail the write if either changed since,
    /// and the next attempt reads both.
    pub async fn finish(
        &self,
        job_id: &str,
        url_key: &str,
        read: LastRead,
        outcome: Outcome,
        skips: LinkSkips,
        update: impl Fn(&mut CrawlUrl),
    ) -> Result<Option<CrawlJob>, CrawlStoreError> {
        let LastRead {
            job: mut read_job,
            url: mut read_url,
        } = read;
        for _ in 0..MAX_ATTEMPTS {
            let mut job = match read_job.take() {
                Some(job) => job,
                None => self.get(job_id).await?.ok_or(CrawlStoreError::NotFound)?,
            };
            let url = match read_url.take() {
                Some(url) => Some(url),
                None => self.get_url(job_id, url_key).await?,
            };
            let Some(mut url) = url else {
                return Ok(None);
            };
            if !url.is_queued() {
                return Ok(None);
            }
            let now = now_epoch_seconds();
            update(&mut url);
            url.state = Some(outcome.state());
            url.finished_at = Some(now);
            outcome.count(&mut job.counters);
            if outcome == Outcome::SkippedUnsupported {
                job.counters.discovered = job.counters.discovered.saturating_sub(1);
            }
            job.counters.skipped_scope += skips.scope;
            job.counters.skipped_unsupported += skips.unsupported;
            job.updated_at = now;
            if job.status == JobStatus::Queued {
                job.status = JobStatus::Running;
            }
            if job.status == JobStatus::Running && job.counters.pending() == 0 {
                job.status = if job.counters.done == 0 && job.counters.failed > 0 {
                    JobStatus::Failed
                } else {
                    JobStatus::Completed
                };
                job.finished_at = Some(now);
            }
            let ops = vec![
                WriteOp::UpdateIfVersion {
                    item: url_item(&job, url_key, &url)?,
                    expected: url.item_version,
                },
                WriteOp::UpdateIfVersion {
                    item: job_item(&job)?,
                    expected: job.item_version,
                },
            ];
            match self.table.transact(ops).await {
                Ok(()) => {
                    job.item_version += 1;
                    return Ok(Some(job));
                }
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(CrawlStoreError::Contention)
    }

    /// The job's URLs that have ended, in key order, a page at a time.
    pub async fn results(
        &self,
        job_id: &str,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(Vec<CrawlUrl>, Option<String>), StoreError> {
        let page = self
            .table
            .query(
                Query::new(format!("CRAWL#{job_id}"), "URL#")
                    .limit(limit)
                    .after(cursor),
            )
            .await?;
        let mut urls = Vec::with_capacity(page.items.len());
        for item in page.items {
            let (url, _): (CrawlUrl, u64) = decode_item(item)?;
            if !url.is_queued() {
                urls.push(url);
            }
        }
        Ok((urls, page.next))
    }

    pub async fn robots(&self, job_id: &str, origin: &str) -> Result<Option<Value>, StoreError> {
        Ok(self
            .table
            .get(&robots_key(job_id, origin))
            .await?
            .and_then(|item| item.attributes.get("rules").cloned()))
    }

    /// Keeps the first robots.txt stored for an origin (every page of the job obeys the same file).
    pub async fn save_robots(
        &self,
        job: &CrawlJob,
        origin: &str,
        rules: Value,
    ) -> Result<(), StoreError> {
        let mut attributes = super::Attributes::new();
        attributes.insert("rules".into(), rules);
        let item =
            Item::new(robots_key(&job.id, origin), attributes).with_expiry(Some(job.expires_at()));
        match self.table.put_if_absent(item).await {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Takes the origin's next Crawl-delay slot for a request starting at `now_ms` (epoch
    /// milliseconds): granted when the slot is free, and the next one moves `delay` later.
    /// A conditional write on one item per (job, origin), so every consumer of the queue,
    /// in any process, shares the same spacing.
    pub async fn take_pace_slot(
        &self,
        job: &CrawlJob,
        origin: &str,
        delay: Duration,
        now_ms: i64,
    ) -> Result<PaceSlot, StoreError> {
        let key = pace_key(&job.id, origin);
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        for _ in 0..PACE_ATTEMPTS {
            let current = self.table.get(&key).await?;
            let next_at = current
                .as_ref()
                .and_then(|item| item.attributes.get("next_at_ms"))
                .and_then(Value::as_i64);
            if let Some(next_at) = next_at.filter(|next_at| *next_at > now_ms) {
                return Ok(PaceSlot::Wait(Duration::from_millis(
                    (next_at - now_ms).unsigned_abs(),
                )));
            }
            let mut attributes = super::Attributes::new();
            attributes.insert("next_at_ms".into(), now_ms.saturating_add(delay_ms).into());
            let item = Item::new(key.clone(), attributes).with_expiry(Some(job.expires_at()));
            let written = match &current {
                Some(current) => self.table.update_if_version(item, current.version).await,
                None => self.table.put_if_absent(item).await,
            };
            match written {
                Ok(()) => return Ok(PaceSlot::Granted),
                // Another consumer took the slot: read when the next one is.
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(PaceSlot::Wait(delay))
    }

    /// Active jobs (queued or running), a page at a time. The index is eventually
    /// consistent: read the job itself before acting on it.
    pub async fn active(
        &self,
        cursor: Option<String>,
    ) -> Result<(Vec<CrawlJob>, Option<String>), StoreError> {
        let page = self
            .table
            .query(
                Query::new(ACTIVE_JOBS_INDEX, "")
                    .on(Index::Gsi1)
                    .limit(100)
                    .after(cursor),
            )
            .await?;
        let mut jobs = Vec::with_capacity(page.items.len());
        for item in page.items {
            let (mut job, version): (CrawlJob, u64) = decode_item(item)?;
            job.item_version = version;
            jobs.push(job);
        }
        Ok((jobs, page.next))
    }

    /// Ends a stalled job: each URL still queued becomes failed with `reason` (counted like
    /// any outcome, so `processed` reaches `queued` and the counters stay exact), and the
    /// job records why it ended. Returns the job afterwards.
    pub async fn abandon(&self, job_id: &str, reason: &str) -> Result<CrawlJob, CrawlStoreError> {
        let mut abandoned = 0;
        let mut cursor = None;
        loop {
            let page = self
                .table
                .query(
                    Query::new(format!("CRAWL#{job_id}"), "URL#")
                        .limit(super::MAX_PAGE_SIZE)
                        .after(cursor),
                )
                .await?;
            for item in page.items {
                let url_key = item.key.sk.trim_start_matches("URL#").to_owned();
                let (mut url, version): (CrawlUrl, u64) = decode_item(item)?;
                if !url.is_queued() {
                    continue;
                }
                url.item_version = version;
                let finished = self
                    .finish(
                        job_id,
                        &url_key,
                        LastRead {
                            job: None,
                            url: Some(url),
                        },
                        Outcome::Failed,
                        LinkSkips::default(),
                        |url| {
                            url.reason = Some(reason.to_owned());
                        },
                    )
                    .await?;
                abandoned += usize::from(finished.is_some());
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        self.close(job_id, reason, abandoned).await
    }

    /// Records `reason` on the job and fails it if it is still active (its counters claim
    /// pending URLs that have no item). A job that ended by itself meanwhile is left alone.
    async fn close(
        &self,
        job_id: &str,
        reason: &str,
        abandoned: usize,
    ) -> Result<CrawlJob, CrawlStoreError> {
        self.modify_job(job_id, |job| {
            if !job.status.is_active() && abandoned == 0 {
                return Ok(false);
            }
            if job.status.is_active() {
                job.status = JobStatus::Failed;
                job.finished_at = Some(job.updated_at);
            }
            job.end_reason = Some(reason.to_owned());
            Ok(true)
        })
        .await
    }
}
