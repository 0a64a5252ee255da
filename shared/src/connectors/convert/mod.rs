//! Source formats → markdown, for any source that meets them: Atlassian Document Format
//! (Jira, Confluence's newer bodies), Confluence's storage format, and HTML through the
//! crawl's converter (mail bodies, exported pages).

pub mod adf;
pub mod html;
pub mod storage;

pub use adf::adf_to_markdown;
pub use html::html_to_markdown;
pub use storage::storage_to_markdown;

/// The shortest fence of `mark` longer than any run of it in `text` (at least three).
pub fn fence_for(text: &str, mark: char) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == mark {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    std::iter::repeat_n(mark, (longest + 1).max(3)).collect()
}
