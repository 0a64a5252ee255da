//! Prints one HTML file's markdown (main content): `cargo run -p tributary --example to_markdown -- page.html [full]`
fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_default();
    let full = args.next().is_some();
    let html = std::fs::read(&path).unwrap_or_default();
    let html = tributary::crawl::html::decode(None, &html);
    let base = url::Url::parse("http://127.0.0.1/page.html").unwrap();
    let page = tributary::crawl::html::parse(&html, &base, !full, false);
    println!("{}", page.markdown);
}
