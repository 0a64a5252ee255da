//! Times `crawl::html::parse` over every HTML file under a directory (profiling aid).
//! `cargo run --release -p tributary --example parse_dir -- /usr/share/doc/python3.11/html`
fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
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
    let base = url::Url::parse("http://127.0.0.1/").unwrap();
    let bodies: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    let bytes: usize = bodies.iter().map(String::len).sum();
    let start = std::time::Instant::now();
    let mut links = 0;
    let mut md = 0;
    for body in &bodies {
        let page = tributary::crawl::html::parse(body, &base, true, false);
        links += page.links.len();
        md += page.markdown.len();
    }
    let elapsed = start.elapsed();
    println!(
        "{} files, {:.1} MB HTML → {:.1} MB markdown, {} links in {:?} ({:.1} MB/s)",
        bodies.len(),
        bytes as f64 / 1e6,
        md as f64 / 1e6,
        links,
        elapsed,
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
}
