//! Crawl-page under its deadline: Crawl-delay slots shared by concurrent consumers, pages
//! cut short by the deadline re-queued (not slept, not double counted), and the sweeper
//! ending jobs whose pending pages were lost.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use tributary::crawl::engine::{message_body, CrawlEngine, Deadline};
use tributary::crawl::ssrf::NetworkPolicy;
use tributary::crawl::sweep::sweep;
use tributary::queue::Queue;
use tributary::store::crawls::{CrawlJob, JobStatus, UrlState};
use tributary::store::Table;
use tributary::time::now_epoch_seconds;
use tributary_e2e::app::{
    crawl_engine, crawl_request, dynamo_table, embedded_table, sqs_record as record,
};
use tributary_e2e::site::{Resource, TestSite};
use tributary_local::crawl::local_operator;

/// Each simulated invocation's deadline: shorter than one Crawl-delay, so a consumer that
/// slept for its slot (the old behaviour) would overrun it.
const BATCH_DEADLINE: Duration = Duration::from_secs(3);
const MARGIN: Duration = Duration::from_millis(500);
const CRAWL_DELAY: Duration = Duration::from_secs(5);
const STALL_AFTER: Duration = Duration::from_secs(30 * 60);

/// One Lambda invocation of `crawl_page::handle` over up to 10 records, with its own
/// deadline; returns how long before the deadline it returned (`None`: after it), or no
/// invocation when the queue had nothing visible.
async fn invoke(
    engine: &CrawlEngine,
    queue: &dyn Queue,
    deadline_in: Duration,
) -> Option<Option<Duration>> {
    let messages = queue
        .receive(10, Duration::from_secs(30), Duration::from_millis(200))
        .await
        .expect("receive");
    if messages.is_empty() {
        return None;
    }
    let mut event = SqsEvent::default();
    event.records = messages.iter().map(record).collect();
    let deadline = Deadline::after(deadline_in).with_margin(MARGIN);
    let response = crawl_page::handle(engine, event, deadline).await;
    let slack = deadline.instant().checked_duration_since(Instant::now());
    for message in &messages {
        let failed = response
            .batch_item_failures
            .iter()
            .any(|failure| failure.item_identifier == message.receipt_handle);
        if failed {
            queue
                .change_visibility(&message.receipt_handle, Duration::ZERO)
                .await
                .expect("release");
        } else {
            queue.delete(&message.receipt_handle).await.expect("delete");
        }
    }
    Some(slack)
}

async fn job(engine: &CrawlEngine, id: &str) -> CrawlJob {
    engine.jobs().get(id).await.expect("get").expect("job")
}

/// `consumers` concurrent invocation loops until the job ends; every invocation's slack.
async fn consume_until_done(
    engine: &Arc<CrawlEngine>,
    queue: &Arc<dyn Queue>,
    job_id: &str,
    consumers: usize,
    deadline_in: Duration,
) -> Vec<Option<Duration>> {
    let slacks = Mutex::new(Vec::new());
    // Polled concurrently on this task (the handler's future is not `Send` for spawning).
    let consumer = || async {
        while job(engine, job_id).await.status.is_active() {
            if let Some(slack) = invoke(engine, queue.as_ref(), deadline_in).await {
                slacks.lock().expect("slacks").push(slack);
            }
        }
    };
    let all = futures::future::join_all((0..consumers).map(|_| consumer()));
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("the crawl ends within a minute");
    let slacks = slacks.lock().expect("slacks").clone();
    slacks
}

async fn start(engine: &CrawlEngine, url: &str) -> CrawlJob {
    let mut request = crawl_request(url, None);
    request.ignore_sitemap = true;
    let spec = request
        .validate(engine.fetcher().policy(), engine.sinks())
        .expect("valid");
    engine.start(&local_operator(), spec).await.expect("start")
}

#[tokio::test]
async fn three_consumers_share_the_crawl_delay_and_no_batch_passes_its_deadline() {
    let site = TestSite::start(vec![
        (
            "/robots.txt",
            Resource::text("text/plain", "User-agent: *\nCrawl-delay: 5\n"),
        ),
        (
            "/",
            Resource::page("Home", &["/1.html", "/2.html", "/3.html", "/4.html"]),
        ),
        ("/1.html", Resource::page("1", &[])),
        ("/2.html", Resource::page("2", &[])),
        ("/3.html", Resource::page("3", &[])),
        ("/4.html", Resource::page("4", &[])),
    ])
    .await;
    let (engine, queue) = crawl_engine(embedded_table(), NetworkPolicy::allow_private());
    let started = start(&engine, &site.url("/")).await;

    let slacks = consume_until_done(&engine, &queue, &started.id, 3, BATCH_DEADLINE).await;

    assert!(
        slacks.iter().all(Option::is_some),
        "an invocation returned after its deadline: {slacks:?}"
    );
    assert!(
        slacks.len() > 5,
        "pages waiting for their slot went back on the queue: {} invocations",
        slacks.len()
    );
    let times = site.request_times(&["/robots.txt", "/sitemap.xml"]);
    assert_eq!(
        times.len(),
        5,
        "each page fetched once: {:?}",
        site.requested()
    );
    let mut times = times;
    times.sort();
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(gap >= CRAWL_DELAY, "requests only {gap:?} apart");
    }
    let finished = job(&engine, &started.id).await;
    assert_eq!(finished.status, JobStatus::Completed);
    let counters = &finished.counters;
    assert_eq!(
        (counters.discovered, counters.queued, counters.processed),
        (5, 5, 5)
    );
    assert_eq!(
        (counters.done, counters.failed, counters.pending()),
        (5, 0, 0)
    );
}

#[tokio::test]
async fn a_page_cut_short_by_the_deadline_is_requeued_then_failed_once() {
    let site = TestSite::start(vec![(
        "/",
        Resource::Slow(
            Duration::from_secs(3),
            Box::new(Resource::page("Slow", &[])),
        ),
    )])
    .await;
    let (engine, queue) = crawl_engine(embedded_table(), NetworkPolicy::allow_private());
    let started = start(&engine, &site.url("/")).await;

    let slacks = consume_until_done(&engine, &queue, &started.id, 1, Duration::from_secs(2)).await;

    assert!(
        slacks.iter().all(Option::is_some),
        "an invocation returned after its deadline: {slacks:?}"
    );
    assert_eq!(site.count("/"), 3, "re-queued twice, then given up");
    let finished = job(&engine, &started.id).await;
    assert_eq!(finished.status, JobStatus::Failed);
    let counters = &finished.counters;
    assert_eq!(
        (counters.queued, counters.processed, counters.failed),
        (1, 1, 1)
    );
    let (results, _) = engine
        .jobs()
        .results(&started.id, 10, None)
        .await
        .expect("results");
    assert_eq!(results.len(), 1);
    let reason = results[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("deadline"), "{reason}");
}

/// Drops every visible message (lost or dead-lettered pages).
async fn lose_messages(queue: &dyn Queue) -> usize {
    let messages = queue
        .receive(10, Duration::from_secs(30), Duration::from_millis(200))
        .await
        .expect("receive");
    for message in &messages {
        queue.delete(&message.receipt_handle).await.expect("delete");
    }
    messages.len()
}

async fn sweeper_ends_stalled_jobs(table: Arc<dyn Table>) {
    let site = TestSite::start(vec![
        ("/", Resource::page("Home", &["/a.html", "/b.html"])),
        ("/a.html", Resource::page("A", &[])),
        ("/b.html", Resource::page("B", &[])),
    ])
    .await;
    let (engine, queue) = crawl_engine(table, NetworkPolicy::allow_private());
    // One page done, its two children lost.
    let partly = start(&engine, &site.url("/")).await;
    let seed = invoke(&engine, queue.as_ref(), Duration::from_secs(30)).await;
    assert!(
        seed.is_some_and(|slack| slack.is_some()),
        "the seed is handled in time"
    );
    assert_eq!(lose_messages(queue.as_ref()).await, 2);
    // Nothing done, the seed lost.
    let never = start(&engine, &site.url("/a.html")).await;
    assert_eq!(lose_messages(queue.as_ref()).await, 1);

    let now = now_epoch_seconds();
    let report = sweep(engine.jobs(), STALL_AFTER, now).await.expect("sweep");
    assert!(report.closed.is_empty(), "recent jobs are left alone");
    assert_eq!(job(&engine, &partly.id).await.status, JobStatus::Running);

    let later = now + STALL_AFTER.as_secs() as i64 + 1;
    let report = sweep(engine.jobs(), STALL_AFTER, later)
        .await
        .expect("sweep");
    let mut closed = report.closed.clone();
    closed.sort();
    let mut expected = vec![partly.id.clone(), never.id.clone()];
    expected.sort();
    assert_eq!(closed, expected);

    let partly_done = job(&engine, &partly.id).await;
    assert_eq!(partly_done.status, JobStatus::Completed);
    let c = &partly_done.counters;
    assert_eq!((c.queued, c.processed, c.done, c.failed), (3, 3, 1, 2));
    assert!(partly_done
        .end_reason
        .as_deref()
        .is_some_and(|reason| reason.contains("no progress")));
    let (results, _) = engine
        .jobs()
        .results(&partly.id, 10, None)
        .await
        .expect("results");
    let failed: Vec<_> = results
        .iter()
        .filter(|url| url.state == Some(UrlState::Failed))
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|url| url
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("no progress"))));

    let never_done = job(&engine, &never.id).await;
    assert_eq!(never_done.status, JobStatus::Failed);
    assert_eq!(
        (never_done.counters.processed, never_done.counters.failed),
        (1, 1)
    );

    // A page that turns up after all changes nothing, and ended jobs are not swept again.
    queue
        .send_batch(vec![message_body(&partly.id, &site.url("/a.html"), 1)])
        .await
        .expect("send");
    invoke(&engine, queue.as_ref(), Duration::from_secs(30)).await;
    assert_eq!(
        job(&engine, &partly.id).await.counters,
        partly_done.counters
    );
    let report = sweep(engine.jobs(), STALL_AFTER, later + 60)
        .await
        .expect("sweep");
    assert!(report.closed.is_empty());
}

#[tokio::test]
async fn the_sweeper_ends_stalled_crawls_with_exact_counters() {
    sweeper_ends_stalled_jobs(embedded_table()).await;
}

#[tokio::test]
async fn the_sweeper_finds_stalled_crawls_on_dynamodb() {
    sweeper_ends_stalled_jobs(dynamo_table().await).await;
}
