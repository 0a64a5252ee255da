//! Scraping and crawling websites into markdown documents (Firecrawl-style): scope rules,
//! an SSRF-guarded fetch, robots.txt, sitemaps, link extraction and HTML→markdown. The
//! `engine` drives one page at a time so the same code runs in `crawl-page` (SQS) and in
//! `tributary-local crawl` (embedded queue).

pub mod engine;
pub mod fetch;
pub mod html;
pub mod job;
pub mod normalize;
pub mod robots;
pub mod scope;
pub mod setup;
pub mod sitemap;
pub mod ssrf;
pub mod sweep;
