//! Crawls of generated local sites through the local stack: the exact set of pages
//! delivered, robots.txt, redirects, scope, limits, sitemaps, cancellation, bad input.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tributary::crawl::engine::{CrawlEngine, Deadline};
use tributary::crawl::fetch::{FetchLimits, Fetcher};
use tributary::crawl::ssrf::NetworkPolicy;
use tributary::queue::Queue;
use tributary::store::crawls::CrawlJob;
use tributary_e2e::app::{
    crawl_engine, crawl_engine_with_fetcher, crawl_request, embedded_table, spawn_app,
    spawn_app_with_crawl_policy, status_and_body, temp_dir, TestApp,
};
use tributary_e2e::site::{Resource, TestSite};
use tributary_local::crawl::{crawl_until_done, local_operator};

/// Runs the local workers until the job ends.
async fn drain(engine: &Arc<CrawlEngine>, queue: &Arc<dyn Queue>, job_id: &str) -> CrawlJob {
    drain_with(engine, queue, job_id, 4).await
}

/// [`drain`] with this many workers (one takes the pages in queue order).
async fn drain_with(
    engine: &Arc<CrawlEngine>,
    queue: &Arc<dyn Queue>,
    job_id: &str,
    workers: usize,
) -> CrawlJob {
    tokio::time::timeout(
        Duration::from_secs(60),
        crawl_until_done(engine.clone(), queue.clone(), job_id, workers, |_| {}),
    )
    .await
    .expect("the crawl ends within a minute")
    .expect("crawl")
}

/// The `url` of every markdown file a directory sink wrote.
fn delivered_urls(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read document");
            let line = text
                .lines()
                .find(|line| line.starts_with("url: "))
                .unwrap_or_else(|| panic!("no url in front matter of {}", path.display()));
            serde_json::from_str::<String>(line.trim_start_matches("url: "))
                .expect("url is a JSON string")
        })
        .collect()
}

fn expected(site: &TestSite, paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|path| site.url(path)).collect()
}

/// A site with a cycle, fragment/index/relative link variants, robots, a sitemap, a
/// redirect onto a known page, a non-HTML file, an external link and a depth chain.
async fn link_graph_site() -> TestSite {
    TestSite::start(vec![
        (
            "/robots.txt",
            Resource::text(
                "text/plain",
                "User-agent: *\nDisallow: /private/\nSitemap: {base}/sitemap-index.xml\n",
            ),
        ),
        (
            "/sitemap-index.xml",
            Resource::text(
                "application/xml",
                "<?xml version=\"1.0\"?><sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                 <sitemap><loc>{base}/sitemap-pages.xml</loc></sitemap></sitemapindex>",
            ),
        ),
        (
            "/sitemap-pages.xml",
            Resource::text(
                "application/xml",
                "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                 <url><loc>{base}/orphan.html</loc></url><url><loc>{base}/</loc></url></urlset>",
            ),
        ),
        (
            "/",
            Resource::page(
                "Home",
                &[
                    "a.html",
                    "/b/",
                    "#top",
                    "/b/index.html",
                    "{base}/a.html#section",
                    "mailto:someone@example.com",
                    "https://external.example/page",
                    "/private/secret.html",
                ],
            ),
        ),
        ("/a.html", Resource::page("A", &["/", "c.html", "b/"])),
        (
            "/b/",
            Resource::page("B", &["../a.html", "/file.bin", "/moved", "/missing.html"]),
        ),
        ("/c.html", Resource::page("C", &["/deep/1.html"])),
        ("/deep/1.html", Resource::page("Deep 1", &["/deep/2.html"])),
        ("/deep/2.html", Resource::page("Deep 2", &[])),
        ("/orphan.html", Resource::page("Orphan", &[])),
        ("/private/secret.html", Resource::page("Secret", &[])),
        ("/moved", Resource::redirect("/c.html")),
        (
            "/file.bin",
            Resource::Content {
                content_type: "application/octet-stream",
                body: vec![0, 1, 2, 3],
            },
        ),
    ])
    .await
}

async fn start_crawl(app: &TestApp, session: &str, body: Value) -> String {
    let response = app.post_json("/crawls", &body, Some(session)).await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    body["id"].as_str().expect("crawl id").to_owned()
}

#[tokio::test]
async fn a_crawl_delivers_exactly_the_reachable_pages_once() {
    let site = link_graph_site().await;
    let app = spawn_app().await;
    let session = app.signed_in("crawler@example.com").await;
    let out = temp_dir("crawl-out");
    let id = start_crawl(
        &app,
        &session,
        json!({"url": site.url("/"), "max_depth": 3, "sink": {"type": "directory", "path": out}}),
    )
    .await;
    let job = drain(&app.crawls, &app.crawl_queue, &id).await;

    assert_eq!(
        delivered_urls(&out),
        expected(
            &site,
            &[
                "/",
                "/a.html",
                "/b/",
                "/c.html",
                "/deep/1.html",
                "/orphan.html"
            ]
        ),
        "counters: {:?}",
        job.counters
    );
    assert_eq!(format!("{:?}", job.status), "Completed");
    let c = &job.counters;
    assert_eq!(c.pending(), 0);
    assert_eq!(c.skipped_robots, 1, "/private/secret.html");
    assert_eq!(c.skipped_unsupported, 1, "/file.bin");
    assert!(c.skipped_scope >= 1, "the external link: {c:?}");
    assert_eq!(c.failed, 1, "/missing.html is a 404");
    assert_eq!(
        site.count("/private/secret.html"),
        0,
        "robots.txt is obeyed"
    );
    assert_eq!(site.count("/deep/2.html"), 0, "beyond max_depth");
    assert_eq!(
        site.count("/robots.txt"),
        1,
        "robots.txt is fetched once per job"
    );
    for page in ["/", "/a.html", "/b/", "/orphan.html"] {
        assert_eq!(site.count(page), 1, "{page} fetched once");
    }
    assert_eq!(site.count("/b/index.html"), 0, "/b/index.html is /b/");
    assert_eq!(
        site.count("/sitemap-pages.xml"),
        1,
        "the sitemap index is followed"
    );
    assert_eq!(
        site.count("/sitemap.xml"),
        0,
        "robots.txt names the sitemap"
    );

    // The status endpoint pages through the results.
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/crawls/{id}?limit=3&cursor={cursor}"),
            None => format!("/crawls/{id}?limit=3"),
        };
        let (status, body) = status_and_body(app.get(&path, Some(&session)).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "completed");
        // `/moved` redirects to `/c.html`: fetched again, delivered as the same document.
        assert_eq!(body["counters"]["done"], 7);
        seen += body["results"].as_array().expect("results").len();
        match body["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert!(seen >= 6, "every finished URL is listed: {seen}");
}

#[tokio::test]
async fn the_limit_caps_the_pages_and_a_job_without_sink_keeps_markdown() {
    let pages: Vec<(String, Resource)> = (0..20)
        .map(|i| {
            let next = format!("/p{}.html", i + 1);
            (
                format!("/p{i}.html"),
                Resource::page(&format!("Page {i}"), &[&next, "/p0.html"]),
            )
        })
        .collect();
    let site = TestSite::start(pages.iter().map(|(p, r)| (p.as_str(), r.clone())).collect()).await;
    let app = spawn_app().await;
    let session = app.signed_in("limit@example.com").await;
    let id = start_crawl(
        &app,
        &session,
        json!({"url": site.url("/p0.html"), "limit": 5, "ignore_sitemap": true}),
    )
    .await;
    let job = drain(&app.crawls, &app.crawl_queue, &id).await;
    assert_eq!(job.counters.done, 5);
    assert_eq!(job.counters.discovered, 5);
    assert_eq!(site.count("/p5.html"), 0);
    let (_, body) = status_and_body(app.get(&format!("/crawls/{id}"), Some(&session)).await).await;
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    let first = results
        .iter()
        .find(|r| r["url"] == site.url("/p0.html"))
        .expect("the seed");
    assert_eq!(first["title"], "Page 0");
    let markdown = first["markdown"]
        .as_str()
        .expect("markdown kept without a sink");
    assert!(markdown.contains("# Page 0"), "{markdown}");
    assert!(
        !markdown.contains("Footer"),
        "main content only: {markdown}"
    );
}

/// A limit of 3 that the files would use up if they counted: the home page links an
/// extensionless image before its one page, and the page links the last one. One worker
/// takes the pages in queue order, so the image is answered before `/a.html` registers
/// `/b.html`.
#[tokio::test]
async fn files_are_skipped_before_fetching_and_do_not_use_up_the_limit() {
    let png = Resource::Content {
        content_type: "image/png",
        body: b"\x89PNG\r\n\x1a\n".to_vec(),
    };
    let site = TestSite::start(vec![
        (
            "/",
            Resource::page(
                "Home",
                &["/logo", "/photo.png", "/manual.pdf", "/site.css", "/a.html"],
            ),
        ),
        ("/logo", png.clone()),
        ("/photo.png", png),
        (
            "/manual.pdf",
            Resource::Content {
                content_type: "application/pdf",
                body: b"%PDF-1.7".to_vec(),
            },
        ),
        (
            "/site.css",
            Resource::text("text/css", "body { color: red }"),
        ),
        (
            "/a.html",
            Resource::page("A", &["/b.html", "/logo", "/PHOTO.PNG"]),
        ),
        ("/b.html", Resource::page("B", &[])),
    ])
    .await;
    let app = spawn_app().await;
    let session = app.signed_in("files@example.com").await;
    let out = temp_dir("crawl-files");
    let id = start_crawl(
        &app,
        &session,
        json!({"url": site.url("/"), "limit": 3, "ignore_sitemap": true,
               "sink": {"type": "directory", "path": out}}),
    )
    .await;
    let job = drain_with(&app.crawls, &app.crawl_queue, &id, 1).await;

    assert_eq!(
        delivered_urls(&out),
        expected(&site, &["/", "/a.html", "/b.html"]),
        "counters: {:?}",
        job.counters
    );
    for file in ["/photo.png", "/PHOTO.PNG", "/manual.pdf", "/site.css"] {
        assert_eq!(site.count(file), 0, "{file} is skipped by its extension");
    }
    assert_eq!(
        site.count("/logo"),
        1,
        "fetched once, skipped by its content type"
    );
    assert_eq!(format!("{:?}", job.status), "Completed");
    let c = &job.counters;
    // The three pages count against the limit; the image was queued and gave its place back.
    assert_eq!((c.discovered, c.queued, c.processed), (3, 4, 4), "{c:?}");
    assert_eq!((c.done, c.failed, c.pending()), (3, 0, 0), "{c:?}");
    assert_eq!(
        c.skipped_unsupported, 5,
        "/logo answered, four files by name: {c:?}"
    );
    assert_eq!(c.skipped_limit, 0, "{c:?}");

    // The status API shows the same counters, and the image among the results.
    let (status, body) =
        status_and_body(app.get(&format!("/crawls/{id}"), Some(&session)).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "completed");
    let counters = &body["counters"];
    for (name, value) in [
        ("discovered", 3),
        ("queued", 4),
        ("processed", 4),
        ("done", 3),
        ("skipped_unsupported", 5),
    ] {
        assert_eq!(counters[name], value, "{name}: {counters}");
    }
    let results = body["results"].as_array().expect("results");
    let logo = results
        .iter()
        .find(|result| result["url"] == site.url("/logo"))
        .expect("the image is a result");
    assert!(
        logo["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("image/png")),
        "{logo}"
    );
}

#[tokio::test]
async fn the_engine_tells_when_a_job_ends() {
    let site = TestSite::start(vec![("/", Resource::page("Home", &[]))]).await;
    let (engine, queue) = crawl_engine(embedded_table(), NetworkPolicy::allow_private());
    let spec = crawl_request(&site.url("/"), None)
        .validate(engine.fetcher().policy(), engine.sinks())
        .expect("valid crawl");
    let ended = engine.ended_jobs();
    engine.start(&local_operator(), spec).await.expect("start");
    let message = queue
        .receive(1, Duration::from_secs(30), Duration::ZERO)
        .await
        .expect("receive")
        .pop()
        .expect("the seed is queued");
    assert!(!ended.has_changed().expect("engine alive"));
    engine
        .handle(
            &message.body,
            message.receive_count,
            Deadline::after(Duration::from_secs(30)),
        )
        .await;
    assert!(
        ended.has_changed().expect("engine alive"),
        "the last page ended the job"
    );
}

#[tokio::test]
async fn include_and_exclude_patterns_choose_the_paths() {
    let site = TestSite::start(vec![
        (
            "/",
            Resource::page(
                "Home",
                &["/docs/a.html", "/docs/old/b.html", "/blog/c.html"],
            ),
        ),
        ("/docs/a.html", Resource::page("A", &[])),
        ("/docs/old/b.html", Resource::page("B", &[])),
        ("/blog/c.html", Resource::page("C", &[])),
    ])
    .await;
    let app = spawn_app().await;
    let session = app.signed_in("scope@example.com").await;
    let out = temp_dir("crawl-scope");
    let id = start_crawl(
        &app,
        &session,
        json!({
            "url": site.url("/"), "ignore_sitemap": true,
            "include_paths": ["^/$", "^/docs/"], "exclude_paths": ["/old/"],
            "sink": {"type": "directory", "path": out}
        }),
    )
    .await;
    let job = drain(&app.crawls, &app.crawl_queue, &id).await;
    assert_eq!(
        delivered_urls(&out),
        expected(&site, &["/", "/docs/a.html"])
    );
    assert_eq!(job.counters.skipped_scope, 2);
}

#[tokio::test]
async fn crawl_delay_spaces_the_requests_to_a_host() {
    let site = TestSite::start(vec![
        (
            "/robots.txt",
            Resource::text("text/plain", "User-agent: *\nCrawl-delay: 0.3\n"),
        ),
        (
            "/",
            Resource::page("Home", &["/1.html", "/2.html", "/3.html"]),
        ),
        ("/1.html", Resource::page("1", &[])),
        ("/2.html", Resource::page("2", &[])),
        ("/3.html", Resource::page("3", &[])),
    ])
    .await;
    let app = spawn_app().await;
    let session = app.signed_in("delay@example.com").await;
    let id = start_crawl(
        &app,
        &session,
        json!({"url": site.url("/"), "ignore_sitemap": true}),
    )
    .await;
    let job = drain(&app.crawls, &app.crawl_queue, &id).await;
    assert_eq!(job.counters.done, 4);
    let times = site.request_times(&["/robots.txt", "/sitemap.xml"]);
    assert_eq!(times.len(), 4);
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(gap >= Duration::from_millis(280), "requests {gap:?} apart");
    }
}

#[tokio::test]
async fn redirects_are_checked_hop_by_hop() {
    let site = TestSite::start(vec![
        (
            "/",
            Resource::page(
                "Home",
                &["/to-metadata", "/to-private", "/to-external", "/to-page"],
            ),
        ),
        (
            "/to-metadata",
            Resource::redirect("http://169.254.169.254/latest/meta-data/"),
        ),
        ("/to-private", Resource::redirect("http://10.1.2.3/admin")),
        (
            "/to-external",
            Resource::redirect("https://external.example/"),
        ),
        ("/to-page", Resource::redirect("/page.html")),
        ("/page.html", Resource::page("Page", &[])),
    ])
    .await;
    // Loopback is allowed (the site lives there); nothing else private is.
    let table = embedded_table();
    let policy = NetworkPolicy::with_allowed_networks(vec!["127.0.0.0/8".parse().expect("cidr")]);
    let (engine, queue) = crawl_engine(table, policy);
    let out = temp_dir("crawl-redirects");
    let spec = crawl_request(
        &site.url("/"),
        Some(tributary::sinks::SinkRequest::Directory { path: out.clone() }),
    )
    .validate(engine.fetcher().policy(), engine.sinks())
    .expect("valid crawl");
    let job = engine.start(&local_operator(), spec).await.expect("start");
    let job = drain(&engine, &queue, &job.id).await;
    assert_eq!(job.counters.skipped_ssrf, 2, "{:?}", job.counters);
    assert_eq!(job.counters.skipped_scope, 1, "{:?}", job.counters);
    assert_eq!(delivered_urls(&out), expected(&site, &["/", "/page.html"]));
}

#[tokio::test]
async fn oversized_slow_and_malformed_pages() {
    let huge = format!("<html><body>{}</body></html>", "x".repeat(3 * 1024 * 1024));
    let site = TestSite::start(vec![
        ("/", Resource::page("Home", &["/huge.html", "/slow.html", "/broken.html"])),
        ("/huge.html", Resource::html(huge)),
        ("/slow.html", Resource::Hang),
        (
            "/broken.html",
            Resource::html("<html><head><title>Broken</title><body><p>unclosed <b>bold <a href=\"/\">home</div></td>\u{0}"),
        ),
    ])
    .await;
    let limits = FetchLimits {
        max_bytes: 1024 * 1024,
        timeout: Duration::from_secs(1),
        ..FetchLimits::default()
    };
    let fetcher = Fetcher::new(
        Arc::new(NetworkPolicy::allow_private()),
        limits,
        "tributary-test",
    )
    .expect("fetcher");
    let (engine, queue) = crawl_engine_with_fetcher(embedded_table(), fetcher);
    let spec = crawl_request(&site.url("/"), None)
        .validate(engine.fetcher().policy(), engine.sinks())
        .expect("valid crawl");
    let job = engine.start(&local_operator(), spec).await.expect("start");
    let job = drain(&engine, &queue, &job.id).await;
    assert_eq!(
        job.counters.done, 2,
        "home and the broken page: {:?}",
        job.counters
    );
    assert_eq!(job.counters.failed, 2, "huge and slow: {:?}", job.counters);
    assert_eq!(
        site.count("/slow.html"),
        3,
        "a timeout is retried, then fails"
    );
}

#[tokio::test]
async fn cancelling_stops_new_fetches() {
    let pages: Vec<(String, Resource)> = (0..30)
        .map(|i| {
            (
                format!("/p{i}.html"),
                Resource::page(&format!("P{i}"), &[&format!("/p{}.html", i + 1)]),
            )
        })
        .collect();
    let site = TestSite::start(pages.iter().map(|(p, r)| (p.as_str(), r.clone())).collect()).await;
    let app = spawn_app().await;
    let session = app.signed_in("cancel@example.com").await;
    let id = start_crawl(
        &app,
        &session,
        json!({"url": site.url("/p0.html"), "ignore_sitemap": true}),
    )
    .await;
    // One page by hand: the seed, which queues /p1.html.
    let message = app
        .crawl_queue
        .receive(1, Duration::from_secs(30), Duration::from_secs(1))
        .await
        .expect("receive")
        .pop()
        .expect("the seed message");
    app.crawls
        .handle(
            &message.body,
            message.receive_count,
            Deadline::after(Duration::from_secs(60)),
        )
        .await;
    app.crawl_queue
        .delete(&message.receipt_handle)
        .await
        .expect("delete");

    let response = app.delete(&format!("/crawls/{id}"), &session).await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancelled");
    let fetched_before = site.requested().len();

    let job = drain_cancelled(&app, &id).await;
    assert_eq!(
        site.requested().len(),
        fetched_before,
        "nothing fetched after cancel"
    );
    assert_eq!(job.counters.done, 1);
    assert_eq!(job.counters.skipped_cancelled, 1);
    assert_eq!(job.counters.pending(), 0);
    let response = app.delete(&format!("/crawls/{id}"), &session).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

/// Handles whatever is left on the queue (a cancelled job is already inactive).
async fn drain_cancelled(app: &TestApp, id: &str) -> CrawlJob {
    loop {
        let messages = app
            .crawl_queue
            .receive(10, Duration::from_secs(30), Duration::ZERO)
            .await
            .expect("receive");
        if messages.is_empty() {
            break;
        }
        for message in messages {
            app.crawls
                .handle(
                    &message.body,
                    message.receive_count,
                    Deadline::after(Duration::from_secs(60)),
                )
                .await;
            app.crawl_queue
                .delete(&message.receipt_handle)
                .await
                .expect("delete");
        }
    }
    app.crawls.jobs().get(id).await.expect("get").expect("job")
}

#[tokio::test]
async fn a_batch_scrape_fetches_exactly_the_given_urls() {
    let site = TestSite::start(vec![
        ("/one.html", Resource::page("One", &["/linked.html"])),
        ("/two.html", Resource::page("Two", &[])),
        ("/linked.html", Resource::page("Linked", &[])),
    ])
    .await;
    let app = spawn_app().await;
    let session = app.signed_in("batch@example.com").await;
    let response = app
        .post_json(
            "/batch/scrape",
            &json!({"urls": [site.url("/one.html"), site.url("/two.html"), site.url("/gone.html")]}),
            Some(&session),
        )
        .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let job = drain(&app.crawls, &app.crawl_queue, &id).await;
    assert_eq!((job.counters.done, job.counters.failed), (2, 1));
    assert_eq!(site.count("/linked.html"), 0, "a batch follows no links");
    let (_, body) = status_and_body(app.get(&format!("/crawls/{id}"), Some(&session)).await).await;
    assert_eq!(body["kind"], "batch");
    assert_eq!(body["status"], "completed");
}

#[tokio::test]
async fn scrape_answers_with_markdown_metadata_and_links() {
    let site = TestSite::start(vec![(
        "/article.html",
        Resource::html(
            "<!doctype html><html lang=\"fr\"><head><title> Le titre </title>\
             <meta name=\"description\" content=\"Résumé\"><link rel=\"canonical\" href=\"/canonical\"></head>\
             <body><nav>Menu</nav><main><h1>Bonjour</h1><p>Un <a href=\"/next.html#x\">lien</a>.</p></main></body></html>",
        ),
    )])
    .await;
    let app = spawn_app().await;
    let session = app.signed_in("scrape@example.com").await;
    let response = app
        .post_json(
            "/scrape",
            &json!({"url": site.url("/article.html"), "formats": ["markdown", "links", "html"]}),
            Some(&session),
        )
        .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["metadata"]["title"], "Le titre");
    assert_eq!(body["metadata"]["description"], "Résumé");
    assert_eq!(body["metadata"]["language"], "fr");
    assert_eq!(body["metadata"]["status_code"], 200);
    assert_eq!(body["metadata"]["canonical_url"], site.url("/canonical"));
    let markdown = body["markdown"].as_str().expect("markdown");
    assert!(markdown.contains("# Bonjour"), "{markdown}");
    assert!(!markdown.contains("Menu"), "{markdown}");
    assert_eq!(body["links"], json!([site.url("/next.html")]));
    assert!(body["html"].as_str().expect("html").contains("<main>"));
}

#[tokio::test]
async fn bad_crawl_requests_are_400_and_start_nothing() {
    let app = spawn_app().await;
    let session = app.signed_in("bad-crawl@example.com").await;
    let cases = [
        (json!({"url": "not a url"}), "invalid_url"),
        (json!({"url": "ftp://example.com/"}), "unsupported_scheme"),
        (json!({"url": "file:///etc/passwd"}), "unsupported_scheme"),
        (json!({"url": "javascript:alert(1)"}), "unsupported_scheme"),
        (
            json!({"url": "http://example.com/", "include_paths": ["("]}),
            "invalid_pattern",
        ),
        (
            json!({"url": "http://example.com/", "exclude_paths": ["[a-"]}),
            "invalid_pattern",
        ),
        (
            json!({"url": "http://example.com/", "limit": 0}),
            "invalid_limit",
        ),
        (
            json!({"url": "http://example.com/", "limit": -3}),
            "invalid_limit",
        ),
        (
            json!({"url": "http://example.com/", "limit": 100001}),
            "invalid_limit",
        ),
        (
            json!({"url": "http://example.com/", "max_depth": -1}),
            "invalid_max_depth",
        ),
        (
            json!({"url": "http://example.com/", "sink": {"type": "ftp"}}),
            "invalid_body",
        ),
        (
            json!({"url": "http://example.com/", "limit": "ten"}),
            "invalid_body",
        ),
        (
            json!({"url": "http://example.com/", "surprise": true}),
            "invalid_body",
        ),
        (json!({"limit": 5}), "invalid_body"),
    ];
    for (body, code) in cases {
        let (status, answer) =
            status_and_body(app.post_json("/crawls", &body, Some(&session)).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(answer["code"], code, "{body} → {answer}");
    }
    let bad_batches = [
        (json!({"urls": []}), "invalid_urls"),
        (json!({"urls": ["gopher://x/"]}), "unsupported_scheme"),
        (json!({"urls": "http://example.com/"}), "invalid_body"),
    ];
    for (body, code) in bad_batches {
        let (status, answer) =
            status_and_body(app.post_json("/batch/scrape", &body, Some(&session)).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(answer["code"], code, "{body} → {answer}");
    }
    let malformed = app
        .client
        .post(app.url("/crawls"))
        .bearer_auth(&session)
        .header("content-type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .expect("request");
    let (status, answer) = status_and_body(malformed).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let queued = app
        .crawl_queue
        .receive(10, Duration::from_secs(1), Duration::ZERO)
        .await
        .expect("receive");
    assert!(queued.is_empty(), "a refused request enqueues nothing");
}

#[tokio::test]
async fn crawls_need_a_token_the_scope_and_the_same_tenant() {
    let site = TestSite::start(vec![("/", Resource::page("Home", &[]))]).await;
    let app = spawn_app().await;
    let owner = app.signed_in("owner@example.com").await;
    let other = app.signed_in("other@example.com").await;
    let body = json!({"url": site.url("/")});
    assert_eq!(
        app.post_json("/crawls", &body, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let read_only = app.api_token(&owner, &["crawls:read"]).await;
    let read_only = read_only["token"].as_str().expect("token");
    let (status, answer) =
        status_and_body(app.post_json("/crawls", &body, Some(read_only)).await).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let id = start_crawl(&app, &owner, body).await;
    let (status, answer) =
        status_and_body(app.get(&format!("/crawls/{id}"), Some(&other)).await).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("crawl_not_found"))
    );
    assert_eq!(
        app.delete(&format!("/crawls/{id}"), &other).await.status(),
        StatusCode::NOT_FOUND
    );
    let (status, _) =
        status_and_body(app.get(&format!("/crawls/{id}"), Some(read_only)).await).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = status_and_body(app.get("/crawls/no-such-crawl", Some(&owner)).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_ssrf_guard_refuses_every_private_target_without_fetching_it() {
    let canary = TestSite::start(vec![("/", Resource::page("Canary", &[]))]).await;
    let port = canary.base.rsplit(':').next().expect("port").to_owned();
    let app = spawn_app_with_crawl_policy(NetworkPolicy::strict()).await;
    let session = app.signed_in("ssrf@example.com").await;
    let targets = [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
        format!("http://0x7f000001:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00:ec2::254]/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://172.16.0.1/".to_owned(),
        "http://192.168.0.1/".to_owned(),
        "http://100.64.0.1/".to_owned(),
        "http://[fe80::1]/".to_owned(),
        "http://[fc00::1]/".to_owned(),
        "http://224.0.0.1/".to_owned(),
        "http://[::]/".to_owned(),
        "file:///etc/passwd".to_owned(),
        "gopher://127.0.0.1:70/".to_owned(),
        "ftp://127.0.0.1/".to_owned(),
    ];
    let mut started = Vec::new();
    for target in &targets {
        for (path, body) in [
            ("/scrape", json!({"url": target})),
            ("/crawls", json!({"url": target})),
            ("/batch/scrape", json!({"urls": [target]})),
        ] {
            let (status, answer) =
                status_and_body(app.post_json(path, &body, Some(&session)).await).await;
            // A host name is only resolved when fetched: the job starts and its page is refused.
            if status == StatusCode::ACCEPTED && path != "/scrape" {
                started.push(answer["id"].as_str().expect("id").to_owned());
                continue;
            }
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::BAD_GATEWAY,
                "{path} {target} → {status} {answer}"
            );
        }
    }
    assert!(
        started.len() <= 2,
        "only `localhost` gets past parsing: {started:?}"
    );
    for id in started {
        let job = drain(&app.crawls, &app.crawl_queue, &id).await;
        assert_eq!(job.counters.done, 0, "{:?}", job.counters);
        assert_eq!(
            job.counters.skipped_ssrf + job.counters.failed,
            1,
            "{:?}",
            job.counters
        );
    }
    assert!(
        canary.requested().is_empty(),
        "the canary was reached: {:?}",
        canary.requested()
    );
}

/// The local workers of one crawl stop when it ends; a page of another job that one of them
/// was working on goes back on the queue at once, instead of staying hidden for the queue's
/// visibility timeout (120 s) behind a worker that is gone.
#[tokio::test]
async fn stopped_workers_hand_back_the_page_they_were_working_on() {
    let site = TestSite::start(vec![
        ("/", Resource::page("Home", &[])),
        ("/hang.html", Resource::Hang),
    ])
    .await;
    let app = spawn_app().await;
    let session = app.signed_in("hand-back@example.com").await;
    // Queued first, so a worker takes it before the crawl's seed, and is still waiting on
    // the page (it never answers) when the crawl ends.
    let response = app
        .post_json(
            "/batch/scrape",
            &json!({"urls": [site.url("/hang.html")]}),
            Some(&session),
        )
        .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let stuck = body["id"].as_str().expect("id").to_owned();
    let quick = start_crawl(
        &app,
        &session,
        json!({"url": site.url("/"), "ignore_sitemap": true}),
    )
    .await;

    let job = drain(&app.crawls, &app.crawl_queue, &quick).await;
    assert_eq!(job.counters.done, 1, "{:?}", job.counters);

    let visible = app
        .crawl_queue
        .receive(10, Duration::from_secs(30), Duration::ZERO)
        .await
        .expect("receive");
    assert!(
        visible.iter().any(|message| message.body.contains(&stuck)),
        "the stuck job's page is visible again: {visible:?}"
    );
    let stuck = app
        .crawls
        .jobs()
        .get(&stuck)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(stuck.counters.pending(), 1, "{:?}", stuck.counters);
}

#[tokio::test]
async fn a_scheduled_crawl_starts_a_job_for_its_stored_owner() {
    let site = TestSite::start(vec![("/", Resource::page("Home", &[]))]).await;
    let app = spawn_app().await;
    let event = json!({
        "user_id": "owner-1",
        "tenant_id": "tenant-1",
        "crawl": {"url": site.url("/"), "limit": 5, "ignore_sitemap": true},
    });
    let scheduled: crawl_start::ScheduledCrawl = serde_json::from_value(event).expect("event");
    let job = crawl_start::start_scheduled(&app.crawls, scheduled)
        .await
        .expect("start");
    assert_eq!(
        (job.user_id.as_str(), job.tenant_id.as_str()),
        ("owner-1", "tenant-1")
    );
    let job = drain(&app.crawls, &app.crawl_queue, &job.id).await;
    assert_eq!(job.counters.done, 1);
    let invalid: crawl_start::ScheduledCrawl = serde_json::from_value(json!({
        "user_id": "owner-1", "tenant_id": "tenant-1", "crawl": {"url": "ftp://x/"}
    }))
    .expect("event");
    assert!(crawl_start::start_scheduled(&app.crawls, invalid)
        .await
        .is_err());
}
