//! The Confluence REST calls (search, attachments, downloads), the site's URLs, and how
//! their failures become connector errors.

use reqwest::header::{HeaderValue, ACCEPT};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use url::Url;

use super::super::convert::fence_for;
use super::super::document::Document;
use super::super::kit::{ApiClient, ApiResponse, Download, PageStyle, Paginator};
use super::super::ConnectorError;
use super::api::AttachmentPage;
use super::config::cql_string;
use super::convert::heading_text;
use super::ConfluenceConnector;
use crate::http::HttpError;

const ATTACHMENT_PAGE_SIZE: usize = 100;
/// A guard against an attachment listing whose next links never end.
const MAX_ATTACHMENT_PAGES: usize = 10_000;
/// `_links.next` as Confluence returns it; resolved by [`ConfluenceConnector::resolve_next`].
const NEXT_LINK: PageStyle = PageStyle::NextLink {
    next: "/_links/next",
    resume: None,
    base: None,
};
/// Longest server error message quoted in an error.
const MAX_QUOTED_MESSAGE: usize = 300;

impl ConfluenceConnector {
    /// `<base_url>/wiki/rest/api/<segments…>`, each segment percent-encoded.
    pub(super) fn api_url(&self, segments: &[&str]) -> Url {
        let mut url = self.config.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["wiki", "rest", "api"])
                .extend(segments);
        }
        url
    }

    pub(super) fn search_url(&self, cql: &str, limit: usize, expand: Option<&str>) -> Url {
        let mut url = self.api_url(&["content", "search"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("cql", cql);
            query.append_pair("limit", &limit.to_string());
            if let Some(expand) = expand {
                query.append_pair("expand", expand);
            }
        }
        url
    }

    pub(super) fn pull_cql(&self, window_since: Option<&str>) -> String {
        let mut cql = self.config.scope_cql();
        if let Some(since) = window_since {
            cql.push_str(&format!(" and lastmodified >= {}", cql_string(since)));
        }
        cql.push_str(" order by lastmodified asc");
        cql
    }

    pub(super) fn list_cql(&self) -> String {
        // Creation order does not change when content is edited during the listing.
        format!("{} order by created asc", self.config.scope_cql())
    }

    /// True for URLs of this site's REST API (the only place credentials are sent).
    pub(super) fn is_api_url(&self, url: &Url) -> bool {
        url.origin() == self.config.base_url.origin() && url.path().starts_with("/wiki/rest/api/")
    }

    pub(super) fn same_site(&self, url: &Url) -> bool {
        url.origin() == self.config.base_url.origin()
    }

    /// `_links.base` of an answer, if it is a usable http(s) URL, else `<base_url>/wiki`.
    pub(super) fn links_base(&self, base: Option<&str>) -> String {
        base.and_then(|base| Url::parse(base).ok())
            .filter(|base| matches!(base.scheme(), "http" | "https"))
            .map(|base| base.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_else(|| self.wiki_root.clone())
    }

    /// A `_links.next` (relative to `_links.base`) as an absolute URL of this site's API.
    pub(super) fn resolve_next(&self, links_base: &str, next: &str) -> Result<Url, ConnectorError> {
        let root = match Url::parse(links_base) {
            Ok(base) if self.same_site(&base) => links_base,
            _ => self.wiki_root.as_str(),
        };
        let resolved = if next.starts_with("http://") || next.starts_with("https://") {
            Url::parse(next)
        } else if next.starts_with('/') {
            Url::parse(&format!("{root}{next}"))
        } else {
            return Err(ConnectorError::Protocol("a next link is not a path".into()));
        };
        match resolved {
            Ok(url) if self.is_api_url(&url) => Ok(url),
            _ => Err(ConnectorError::Protocol(
                "a next link points outside the site's REST API".into(),
            )),
        }
    }

    /// One GET with retries; answers whatever status the server gave. Credentials go only
    /// to this site (the guarded client drops them on any hop that changes origin).
    pub(super) async fn send(&self, url: &Url, json: bool) -> Result<ApiResponse, ConnectorError> {
        self.call(url, json)?.send().await
    }

    fn call(&self, url: &Url, json: bool) -> Result<super::super::kit::ApiCall, ConnectorError> {
        if !self.same_site(url) {
            return Err(ConnectorError::Protocol(
                "a link points off the Confluence site".into(),
            ));
        }
        let call = self.api.get(url.clone());
        Ok(if json {
            call
        } else {
            call.header(ACCEPT, HeaderValue::from_static("*/*"))
        })
    }

    /// GET a JSON answer of the API; any non-2xx is an error.
    pub(super) async fn get_json<T: DeserializeOwned>(
        &self,
        url: &Url,
        what: &str,
    ) -> Result<T, ConnectorError> {
        let response = self.send(url, true).await?;
        let response = expect_success(response, what)?;
        serde_json::from_slice(response.body()).map_err(|error| {
            ConnectorError::Protocol(format!(
                "unreadable answer to the {what}: {}",
                shape(&error)
            ))
        })
    }

    /// Lists a page's attachments into its metadata and appends the small text ones.
    pub(super) async fn add_attachments(
        &self,
        document: &mut Document,
    ) -> Result<(), ConnectorError> {
        let mut url = self.api_url(&["content", &document.source_id, "child", "attachment"]);
        url.query_pairs_mut()
            .append_pair("limit", &ATTACHMENT_PAGE_SIZE.to_string());
        let pages = Paginator::new(
            self.api.clone(),
            NEXT_LINK,
            |_: &ApiClient, next: Option<&str>| match next {
                None => self.call(&url, true),
                Some(link) => self.call(&self.resolve_next(&self.wiki_root, link)?, true),
            },
        );
        // 404: deleted since it was listed; what was listed before stays.
        let listed_pages = pages
            .collect(MAX_ATTACHMENT_PAGES, Some(StatusCode::NOT_FOUND))
            .await?;
        let mut listed = Vec::new();
        let mut texts = Vec::new();
        for page in listed_pages.pages {
            let page: AttachmentPage = serde_json::from_value(page.body).map_err(|error| {
                ConnectorError::Protocol(format!(
                    "unreadable answer to the attachment listing: {}",
                    shape(&error)
                ))
            })?;
            let base = self.links_base(page.links.base.as_deref());
            for attachment in &page.results {
                let media_type = attachment.media_type();
                let size = attachment
                    .extensions
                    .as_ref()
                    .and_then(|extensions| extensions.file_size);
                let download = attachment
                    .links
                    .download
                    .as_deref()
                    .filter(|download| download.starts_with('/'))
                    .map(|download| format!("{base}{download}"));
                listed.push(json!({
                    "title": attachment.title,
                    "media_type": media_type,
                    "size": size,
                    "url": download,
                }));
                let wanted = media_type.is_some_and(|media| media.starts_with("text/"))
                    && size.is_none_or(|size| size <= self.config.max_attachment_bytes());
                if let (true, Some(download)) = (wanted, download) {
                    if let Some(text) = self.download_text(&download).await? {
                        texts.push((attachment.title.clone(), text));
                    }
                }
            }
        }
        if !listed.is_empty() {
            document
                .metadata
                .insert("attachments".into(), Value::Array(listed));
        }
        for (title, text) in texts {
            let fence = fence_for(&text, '`');
            document.markdown.push_str(&format!(
                "\n\n## Attachment: {}\n\n{fence}\n{}\n{fence}",
                heading_text(title.as_deref().unwrap_or("untitled")),
                text.trim_end_matches('\n')
            ));
        }
        Ok(())
    }

    /// The text of one attachment, following the download redirect (credentials go only to
    /// this site); `None` when it is gone or larger than the cap.
    pub(super) async fn download_text(
        &self,
        download: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let Ok(url) = Url::parse(download) else {
            return Ok(None);
        };
        if !self.same_site(&url) {
            return Ok(None);
        }
        let cap = self.config.max_attachment_bytes();
        let mut response = match self.call(&url, false)?.send_stream().await? {
            Download::Body(response) => response,
            Download::RefusedHop => return Ok(None),
            // A redirect the client did not follow (no usable Location) or a gone attachment.
            Download::Failed(failed)
                if failed.status.is_redirection()
                    || matches!(failed.status.as_u16(), 404 | 410) =>
            {
                return Ok(None)
            }
            Download::Failed(failed) => return Err(status_error(&failed, "attachment download")),
        };
        if response.content_length().is_some_and(|length| length > cap) {
            return Ok(None);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > cap {
                return Ok(None);
            }
        }
        Ok(Some(String::from_utf8_lossy(&body).into_owned()))
    }
}

pub(super) fn transport_error(error: impl Into<HttpError>) -> ConnectorError {
    let error = error.into();
    if error.is_refusal() {
        ConnectorError::Config(format!("blocked by the network policy: {error}"))
    } else if super::super::kit::client::refused_hop(&error) {
        ConnectorError::Protocol(error.to_string())
    } else if error.is_builder() {
        ConnectorError::Config(format!("cannot build the request: {error}"))
    } else if error.is_decode() {
        ConnectorError::Protocol(error.to_string())
    } else {
        ConnectorError::Unavailable(error.to_string())
    }
}

/// The response if it is a success, else the error its status means.
pub(super) fn expect_success(
    response: ApiResponse,
    what: &str,
) -> Result<ApiResponse, ConnectorError> {
    if response.status.is_success() {
        Ok(response)
    } else {
        Err(status_error(&response, what))
    }
}

/// The error an unsuccessful answer's status means, with Confluence's message.
fn status_error(response: &ApiResponse, what: &str) -> ConnectorError {
    let code = response.status.as_u16();
    let message = confluence_message(response.body());
    let detail = if message.is_empty() {
        format!("{what}: HTTP {code}")
    } else {
        format!("{what}: HTTP {code}: {message}")
    };
    match code {
        401 | 403 => ConnectorError::Unauthorized(detail),
        408 | 429 | 500..=599 => ConnectorError::Unavailable(detail),
        _ => ConnectorError::Protocol(detail),
    }
}

/// The `message` of a Confluence error body, bounded.
pub(super) fn confluence_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|body| {
            body.get("message")
                .and_then(Value::as_str)
                .map(quote_message)
        })
        .unwrap_or_default()
}

/// Where and how a JSON answer was unreadable, without quoting it (serde's messages can
/// quote values, and values can be page content).
pub(super) fn shape(error: &serde_json::Error) -> String {
    let kind = match error.classify() {
        serde_json::error::Category::Io => "i/o error",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected shape",
        serde_json::error::Category::Eof => "truncated",
    };
    if error.line() == 0 {
        kind.to_owned()
    } else {
        format!("{kind} at line {} column {}", error.line(), error.column())
    }
}

pub(super) fn quote_message(message: &str) -> String {
    let mut quoted: String = message.chars().take(MAX_QUOTED_MESSAGE).collect();
    if quoted.len() < message.len() {
        quoted.push('…');
    }
    quoted
}
