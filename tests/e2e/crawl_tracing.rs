//! Each page of a crawl is traced in its own `crawl_page` span: pages handled at the same
//! time on one thread never nest in each other's span (a span guard held across an await
//! did that, and on a multi-threaded runtime the registry then panicked in a worker, which
//! left its page hidden for the queue's whole visibility timeout).

use std::sync::{Arc, Mutex};

use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;
use tributary::crawl::ssrf::NetworkPolicy;
use tributary_e2e::app::{crawl_engine, crawl_request, embedded_table};
use tributary_e2e::site::{Resource, TestSite};
use tributary_local::crawl::{crawl_until_done, local_operator};

/// For every `crawl_page` span opened, how many `crawl_page` spans it is inside (itself
/// included).
#[derive(Clone, Default)]
struct PageSpanDepths(Arc<Mutex<Vec<usize>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for PageSpanDepths {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "crawl_page" {
            return;
        }
        let span = ctx.span(id).expect("a new span is registered");
        let depth = span
            .scope()
            .filter(|span| span.name() == "crawl_page")
            .count();
        self.0.lock().expect("depths").push(depth);
    }
}

#[tokio::test]
async fn pages_handled_together_are_traced_apart() {
    let links: Vec<String> = (0..12).map(|n| format!("/p{n}.html")).collect();
    let link_refs: Vec<&str> = links.iter().map(String::as_str).collect();
    let mut pages = vec![("/".to_owned(), Resource::page("Home", &link_refs))];
    pages.extend(
        links
            .iter()
            .map(|path| (path.clone(), Resource::page("Page", &[]))),
    );
    let site = TestSite::start(pages.iter().map(|(p, r)| (p.as_str(), r.clone())).collect()).await;

    let depths = PageSpanDepths::default();
    // This test's runtime has one thread, so every worker runs under this subscriber.
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(depths.clone()));
    let (engine, queue) = crawl_engine(embedded_table(), NetworkPolicy::allow_private());
    let spec = crawl_request(&site.url("/"), None)
        .validate(engine.fetcher().policy(), engine.sinks())
        .expect("valid crawl");
    let job = engine.start(&local_operator(), spec).await.expect("start");
    let job = crawl_until_done(engine.clone(), queue.clone(), &job.id, 4, |_| {})
        .await
        .expect("crawl");
    assert_eq!(job.counters.done, 13, "{:?}", job.counters);

    let depths = depths.0.lock().expect("depths").clone();
    assert!(depths.len() >= 13, "one span a page at least: {depths:?}");
    assert!(
        depths.iter().all(|&depth| depth == 1),
        "a page's span opened inside another page's: {depths:?}"
    );
}
