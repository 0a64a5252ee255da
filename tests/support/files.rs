//! File documents for tests: bytes spooled the way a source's download spools them.

use tributary::connectors::document::{Document, FileBody};
use tributary::connectors::kit::files::{spool, Downloaded, FileLimits};

/// `bytes` as a spooled file (in chunks, as a download arrives).
pub async fn spooled(name: &str, mime_type: &str, bytes: &[u8]) -> FileBody {
    let chunks: Vec<Result<Vec<u8>, std::convert::Infallible>> =
        bytes.chunks(1024).map(|chunk| Ok(chunk.to_vec())).collect();
    match spool(
        futures::stream::iter(chunks),
        name,
        mime_type,
        None,
        &FileLimits::default(),
    )
    .await
    {
        Ok(Downloaded::File(file)) => file,
        other => panic!("spooling {name}: {other:?}"),
    }
}

/// `document` as a file document holding `file`.
pub fn with_file(mut document: Document, file: FileBody) -> Document {
    document.markdown = String::new();
    document.file = Some(file);
    document
}
