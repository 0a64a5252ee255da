//! The cloud shape of a crawl on moto: DynamoDB for the job, SQS for the pages, and the
//! real `crawl-page` handler consuming SQS batches the way the Lambda service feeds it
//! (records the handler reports as failures stay on the queue; the rest are deleted).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use tributary::crawl::engine::{message_body, CrawlEngine, Deadline};
use tributary::crawl::ssrf::NetworkPolicy;
use tributary::queue::{create_queue_with_dlq, Queue, SqsQueue};
use tributary::store::crawls::{
    Candidate, Counters, CrawlJob, JobStatus, LastRead, LinkSkips, Outcome,
};
use tributary_e2e::app::{
    crawl_engine_with_queue, crawl_request, dynamo_table, sqs_record as record, temp_dir,
};
use tributary_e2e::moto;
use tributary_e2e::site::{Resource, TestSite};
use tributary_local::crawl::local_operator;

/// Receives before the DLQ: low for the poison test, roomy where a transient moto error
/// under a loaded test run must not push a real page into the DLQ.
const POISON_MAX_RECEIVES: u32 = 4;
const MAX_RECEIVES: u32 = 10;

struct Cloud {
    engine: Arc<CrawlEngine>,
    queue: Arc<dyn Queue>,
    dlq: SqsQueue,
}

async fn cloud(max_receives: u32) -> Cloud {
    let client = moto::sqs_client().await;
    let (queue_url, dlq_url) =
        create_queue_with_dlq(&client, &moto::unique_name("crawl"), max_receives)
            .await
            .expect("queues on moto");
    let queue: Arc<dyn Queue> = Arc::new(SqsQueue::new(client.clone(), queue_url));
    let (engine, queue) =
        crawl_engine_with_queue(dynamo_table().await, queue, NetworkPolicy::allow_private());
    Cloud {
        engine,
        queue,
        dlq: SqsQueue::new(client, dlq_url),
    }
}

/// One Lambda invocation: a batch of up to 10 records through `crawl_page::handle`; the
/// records it does not report as failed are deleted, the failed ones made visible again.
async fn invoke_once(cloud: &Cloud) -> usize {
    let messages = cloud
        .queue
        .receive(10, Duration::from_secs(60), Duration::ZERO)
        .await
        .expect("receive");
    if messages.is_empty() {
        return 0;
    }
    let mut event = SqsEvent::default();
    event.records = messages.iter().map(record).collect();
    let deadline = Deadline::after(Duration::from_secs(60));
    let response = crawl_page::handle(&cloud.engine, event, deadline).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    for message in &messages {
        if failed.contains(&message.receipt_handle.as_str()) {
            cloud
                .queue
                .change_visibility(&message.receipt_handle, Duration::ZERO)
                .await
                .expect("release");
        } else {
            cloud
                .queue
                .delete(&message.receipt_handle)
                .await
                .expect("delete");
        }
    }
    messages.len()
}

/// Invokes until the queue is empty (bounded).
async fn run_until_empty(cloud: &Cloud) {
    for _ in 0..200 {
        if invoke_once(cloud).await == 0 {
            return;
        }
    }
    panic!("the crawl queue never emptied");
}

async fn job(cloud: &Cloud, id: &str) -> CrawlJob {
    cloud
        .engine
        .jobs()
        .get(id)
        .await
        .expect("get")
        .expect("job")
}

#[tokio::test]
async fn a_crawl_runs_on_dynamodb_and_sqs_and_duplicates_change_nothing() {
    let site = TestSite::start(vec![
        ("/", Resource::page("Home", &["/a.html", "/b.html"])),
        ("/a.html", Resource::page("A", &["/", "/b.html", "/c.html"])),
        ("/b.html", Resource::page("B", &["/a.html"])),
        ("/c.html", Resource::page("C", &[])),
    ])
    .await;
    let cloud = cloud(MAX_RECEIVES).await;
    let out = temp_dir("crawl-cloud");
    let spec = crawl_request(
        &site.url("/"),
        Some(tributary::sinks::SinkRequest::Directory { path: out.clone() }),
    )
    .validate(cloud.engine.fetcher().policy(), cloud.engine.sinks())
    .expect("valid");
    let started = cloud
        .engine
        .start(&local_operator(), spec)
        .await
        .expect("start");

    run_until_empty(&cloud).await;
    let finished = job(&cloud, &started.id).await;
    if finished.status.is_active() {
        let dead = cloud
            .dlq
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await;
        panic!(
            "not finished: {:?}, fetched {:?}, dead letters {dead:?}",
            finished.counters,
            site.requested()
        );
    }
    assert_eq!(format!("{:?}", finished.status), "Completed");
    assert_eq!(finished.counters.done, 4);
    assert_eq!(finished.counters.pending(), 0);
    assert_eq!(markdown_files(&out), 4);
    let fetches = site.requested().len();

    // Every page delivered again (as SQS may): nothing is fetched, counted or written again.
    let again: Vec<String> = ["/", "/a.html", "/b.html", "/c.html"]
        .iter()
        .map(|path| message_body(&started.id, &site.url(path), 1))
        .collect();
    cloud
        .queue
        .send_batch(again)
        .await
        .expect("send duplicates");
    run_until_empty(&cloud).await;
    let after = job(&cloud, &started.id).await;
    assert_eq!(after.counters, finished.counters);
    assert_eq!(site.requested().len(), fetches);
    assert_eq!(markdown_files(&out), 4);
}

/// Documents in a directory sink's folder (its hidden staging folder is not one).
fn markdown_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .expect("out dir")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.path().extension().is_some_and(|ext| ext == "md"))
        })
        .count()
}

#[tokio::test]
async fn a_poison_message_lands_in_the_dead_letter_queue() {
    let cloud = cloud(POISON_MAX_RECEIVES).await;
    cloud
        .queue
        .send_batch(vec!["{not json".to_owned()])
        .await
        .expect("send poison");
    for _ in 0..POISON_MAX_RECEIVES {
        assert_eq!(
            invoke_once(&cloud).await,
            1,
            "the poison message is retried"
        );
    }
    assert_eq!(
        invoke_once(&cloud).await,
        0,
        "then it is gone from the queue"
    );
    let dead = cloud
        .dlq
        .receive(10, Duration::from_secs(30), Duration::from_secs(1))
        .await
        .expect("receive from the DLQ");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "{not json");
}

#[tokio::test]
async fn cancelling_on_dynamodb_skips_the_rest() {
    let site = TestSite::start(vec![
        (
            "/",
            Resource::page("Home", &["/1.html", "/2.html", "/3.html"]),
        ),
        ("/1.html", Resource::page("1", &[])),
        ("/2.html", Resource::page("2", &[])),
        ("/3.html", Resource::page("3", &[])),
    ])
    .await;
    let cloud = cloud(MAX_RECEIVES).await;
    let spec = crawl_request(&site.url("/"), None)
        .validate(cloud.engine.fetcher().policy(), cloud.engine.sinks())
        .expect("valid");
    let started = cloud
        .engine
        .start(&local_operator(), spec)
        .await
        .expect("start");
    assert_eq!(invoke_once(&cloud).await, 1, "the seed");
    cloud
        .engine
        .jobs()
        .cancel(&started.id)
        .await
        .expect("cancel");
    let fetched = site.requested().len();
    run_until_empty(&cloud).await;
    let after = job(&cloud, &started.id).await;
    assert_eq!(format!("{:?}", after.status), "Cancelled");
    assert_eq!(after.counters.done, 1);
    assert_eq!(after.counters.skipped_cancelled, 3);
    assert_eq!(site.requested().len(), fetched);
}

/// Pages of one job finishing at once on DynamoDB, as the records of one batch do: each
/// finish is one transaction on the job's item version, so every page is counted exactly
/// once and none goes back to queued. (On a store without isolated transactions, e.g.
/// moto's threaded server before `infra/scripts/moto_server.py` serialized it, a failed
/// transaction's rollback or a lost update left a page counted short, and a crawl stuck
/// with one page pending and nothing left on the queue.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_page_finishes_on_dynamodb_count_every_page_once() {
    const PAGES: usize = 40;
    let cloud = cloud(MAX_RECEIVES).await;
    let seed = "http://127.0.0.1:9/";
    let spec = crawl_request(seed, None)
        .validate(cloud.engine.fetcher().policy(), cloud.engine.sinks())
        .expect("valid");
    let pages: Vec<Candidate> = (0..PAGES)
        .map(|n| Candidate {
            key: format!("page-{n}"),
            url: format!("{seed}{n}.html"),
            depth: 0,
        })
        .collect();
    let keys: Vec<String> = pages.iter().map(|page| page.key.clone()).collect();
    let started = CrawlJob {
        id: moto::unique_name("concurrent"),
        user_id: "user".into(),
        tenant_id: "tenant".into(),
        spec,
        status: JobStatus::Queued,
        counters: Counters::default(),
        created_at: tributary::time::now_epoch_seconds(),
        updated_at: tributary::time::now_epoch_seconds(),
        finished_at: None,
        end_reason: None,
        item_version: 1,
    };
    let jobs = cloud.engine.jobs();
    jobs.create(&started, &pages).await.expect("create");

    // Every finish starts from the job as created and the URL as queued: all but the first
    // job snapshot are stale by the time they are written, and must be re-read, not lost.
    let created = jobs.get(&started.id).await.expect("get").expect("job");
    let mut queued_urls = Vec::new();
    for key in &keys {
        queued_urls.push(
            jobs.get_url(&started.id, key)
                .await
                .expect("get")
                .expect("url"),
        );
    }
    let finishes = keys.iter().zip(queued_urls.clone()).map(|(key, url)| {
        let jobs = jobs.clone();
        let id = started.id.clone();
        let key = key.clone();
        let read = LastRead {
            job: Some(created.clone()),
            url: Some(url),
        };
        tokio::spawn(async move {
            jobs.finish(&id, &key, read, Outcome::Done, LinkSkips::default(), |_| {})
                .await
        })
    });
    let mut moved = 0;
    for finished in futures::future::join_all(finishes).await {
        moved += usize::from(finished.expect("task").expect("finish").is_some());
    }

    let after = job(&cloud, &started.id).await;
    assert_eq!(after.counters.done, PAGES as u64, "{:?}", after.counters);
    assert_eq!(
        moved, PAGES,
        "each page left the queued state by its own finish"
    );
    assert_eq!(after.counters.processed, PAGES as u64);
    assert_eq!(after.counters.pending(), 0);
    assert_eq!(format!("{:?}", after.status), "Completed");
    let (urls, _) = jobs
        .results(&started.id, 1000, None)
        .await
        .expect("results");
    assert_eq!(urls.len(), PAGES, "no page went back to queued");

    // A duplicate delivery holding the URL as it was before its page finished.
    let again = LastRead {
        job: Some(after.clone()),
        url: queued_urls.first().cloned(),
    };
    let duplicate = jobs
        .finish(
            &started.id,
            &keys[0],
            again,
            Outcome::Failed,
            LinkSkips::default(),
            |_| {},
        )
        .await
        .expect("finish");
    assert!(duplicate.is_none(), "a finished page is not finished twice");
    let unchanged = job(&cloud, &started.id).await;
    assert_eq!(unchanged.counters, after.counters);
}
