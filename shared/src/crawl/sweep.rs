//! The crawl sweeper: ends jobs whose pending pages stopped moving. A page message can be
//! lost for good (dead-lettered after its receives, deleted by hand, its queue purged); its
//! URL item then stays queued and the job would stay `running` forever. A job that has not
//! progressed for longer than any message can legitimately wait (SQS's 15 minute delay
//! plus a visibility timeout) has nothing in flight: its queued URLs end as failed with a
//! reason, which ends the job with exact counters.

use std::time::Duration;

use crate::store::crawls::{CrawlJob, CrawlJobs, CrawlStoreError};

/// Jobs without progress for this long are swept unless configured otherwise.
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(30 * 60);

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Active jobs looked at.
    pub checked: usize,
    /// Jobs the sweep ended.
    pub closed: Vec<String>,
}

/// Ends every active job whose last progress (`updated_at`) is at least `stall_after`
/// before `now` (epoch seconds).
pub async fn sweep(
    jobs: &CrawlJobs,
    stall_after: Duration,
    now: i64,
) -> Result<SweepReport, CrawlStoreError> {
    let mut report = SweepReport::default();
    let mut cursor = None;
    loop {
        let (page, next) = jobs.active(cursor).await?;
        for listed in page {
            report.checked += 1;
            // The index lags: decide on the job itself.
            let Some(job) = jobs.get(&listed.id).await? else {
                continue;
            };
            if !is_stalled(&job, stall_after, now) {
                continue;
            }
            let reason = format!(
                "no progress for {} minutes: its pending pages were lost (dead-lettered or expired)",
                stall_after.as_secs() / 60
            );
            let ended = jobs.abandon(&job.id, &reason).await?;
            tracing::warn!(
                crawl_id = %job.id,
                pending = job.counters.pending(),
                status = ?ended.status,
                "stalled crawl ended by the sweeper"
            );
            report.closed.push(job.id);
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    tracing::info!(
        checked = report.checked,
        closed = report.closed.len(),
        "crawl sweep"
    );
    Ok(report)
}

fn is_stalled(job: &CrawlJob, stall_after: Duration, now: i64) -> bool {
    let quiet = now.saturating_sub(job.updated_at);
    job.status.is_active() && quiet >= i64::try_from(stall_after.as_secs()).unwrap_or(i64::MAX)
}
