//! Times `crawl::html::parse` over every HTML file under a directory (profiling aid), next to
//! two floors on the same files: lol_html calling an empty handler for every element and
//! text chunk (what any converter on lol_html pays before doing anything), and lol_html
//! with an `a[href]` handler only (what a link-only crawler pays).
//! `cargo run --release -p tributary --example parse_dir -- /usr/share/doc/python3.11/html`
use std::time::{Duration, Instant};

use lol_html::{element, text, HtmlRewriter, Settings};

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let bodies = html_files(&dir);
    let bytes: usize = bodies.iter().map(String::len).sum();
    let base = url::Url::parse("http://127.0.0.1/").unwrap_or_else(|error| panic!("{error}"));
    let mut links = 0;
    let mut md = 0;
    let parse = timed(|| {
        for body in &bodies {
            let page = tributary::crawl::html::parse(body, &base, true, false);
            links += page.links.len();
            md += page.markdown.len();
        }
    });
    println!(
        "{} files, {:.1} MB HTML → {:.1} MB markdown, {} links",
        bodies.len(),
        bytes as f64 / 1e6,
        md as f64 / 1e6,
        links
    );
    report("html::parse", parse, &bodies);
    let every = timed(|| {
        for body in &bodies {
            tokenize(body, |_| {}, true);
        }
    });
    report("lol_html, empty handler per element + text", every, &bodies);
    let mut hrefs = 0;
    let anchors = timed(|| {
        for body in &bodies {
            tokenize(body, |_| hrefs += 1, false);
        }
    });
    report("lol_html, a[href] handler only", anchors, &bodies);
    println!("({hrefs} hrefs)");
}

fn html_files(dir: &str) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "html") {
                files.push(p);
            }
        }
    }
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

/// Runs lol_html over `body` with `on_href` per `a[href]`, or (`every`) with empty handlers
/// for every element and text chunk instead.
fn tokenize(body: &str, mut on_href: impl FnMut(&str), every: bool) {
    let settings = if every {
        Settings::new()
            .append_element_content_handler(element!("*", |_el| Ok(())))
            .append_element_content_handler(text!("*", |_chunk| Ok(())))
    } else {
        Settings::new().append_element_content_handler(element!("a[href]", |el| {
            if let Some(href) = el.get_attribute("href") {
                on_href(&href);
            }
            Ok(())
        }))
    };
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    let _ = rewriter.write(body.as_bytes());
    let _ = rewriter.end();
}

fn timed(work: impl FnOnce()) -> Duration {
    let start = Instant::now();
    work();
    start.elapsed()
}

fn report(what: &str, elapsed: Duration, bodies: &[String]) {
    println!(
        "{what}: {elapsed:.2?}, {:.3} ms a page",
        elapsed.as_secs_f64() * 1e3 / bodies.len() as f64
    );
}
