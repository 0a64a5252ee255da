//! The Confluence REST calls (search, attachments, downloads), the site's URLs, and how
//! their failures become connector errors.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use url::Url;

use super::super::authorized::{send_authorized, SendError};
use super::super::convert::fence_for;
use super::super::document::Document;
use super::super::ConnectorError;
use super::api::AttachmentPage;
use super::config::cql_string;
use super::convert::heading_text;
use super::ConfluenceConnector;
use crate::http::{send_with_retry, HttpError};

const ATTACHMENT_PAGE_SIZE: usize = 100;
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

    /// One GET with retries; answers whatever status the server gave.
    pub(super) async fn send(
        &self,
        url: &Url,
        json: bool,
    ) -> Result<reqwest::Response, ConnectorError> {
        self.send_guarded(url, json)
            .await
            .map_err(|error| error.into_connector(transport_error))
    }

    /// [`Self::send`] with the client's own error, so a refused redirect can be told apart.
    /// Credentials go only to this site; the guarded client drops them on any hop that
    /// changes origin.
    pub(super) async fn send_guarded(
        &self,
        url: &Url,
        json: bool,
    ) -> Result<reqwest::Response, SendError> {
        let build = || {
            let request = self.http.get(url.clone());
            if json {
                request.header(reqwest::header::ACCEPT, "application/json")
            } else {
                request
            }
        };
        if self.same_site(url) {
            send_authorized(&self.auth, build, &self.retry).await
        } else {
            Ok(send_with_retry(build, &self.retry).await?)
        }
    }

    /// GET a JSON answer of the API; any non-2xx is an error.
    pub(super) async fn get_json<T: DeserializeOwned>(
        &self,
        url: &Url,
        what: &str,
    ) -> Result<T, ConnectorError> {
        let response = self.send(url, true).await?;
        let response = expect_success(response, what).await?;
        let bytes = response.bytes().await.map_err(transport_error)?;
        serde_json::from_slice(&bytes).map_err(|error| {
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
        let mut listed = Vec::new();
        let mut texts = Vec::new();
        let mut next = Some(url);
        while let Some(url) = next.take() {
            let response = self.send(&url, true).await?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                // Deleted since it was listed: nothing to attach.
                break;
            }
            let response = expect_success(response, "attachment listing").await?;
            let bytes = response.bytes().await.map_err(transport_error)?;
            let page: AttachmentPage = serde_json::from_slice(&bytes).map_err(|error| {
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
            next = match page.links.next.as_deref() {
                Some(link) => Some(self.resolve_next(&base, link)?),
                None => None,
            };
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
        let response = match self.send_guarded(&url, false).await {
            Ok(response) => response,
            Err(SendError::Http(error)) if refused_hop(&error) => {
                tracing::warn!(%error, "attachment redirect refused; left out");
                return Ok(None);
            }
            Err(error) => return Err(error.into_connector(transport_error)),
        };
        let status = response.status();
        // A redirect the client did not follow (no usable Location) or a gone attachment.
        if status.is_redirection() || matches!(status.as_u16(), 404 | 410) {
            return Ok(None);
        }
        let mut response = expect_success(response, "attachment download").await?;
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

/// A redirect the guarded client would not follow (network policy, loop, bad Location).
pub(super) fn refused_hop(error: &HttpError) -> bool {
    error.is_refusal()
        || matches!(
            error,
            HttpError::TooManyRedirects | HttpError::BadRedirect(_)
        )
}

pub(super) fn transport_error(error: impl Into<HttpError>) -> ConnectorError {
    let error = error.into();
    if error.is_refusal() {
        ConnectorError::Config(format!("blocked by the network policy: {error}"))
    } else if refused_hop(&error) {
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
pub(super) async fn expect_success(
    response: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, ConnectorError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let code = status.as_u16();
    let message = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|body| {
                body.get("message")
                    .and_then(Value::as_str)
                    .map(quote_message)
            }),
        Err(_) => None,
    };
    let detail = match message {
        Some(message) => format!("{what}: HTTP {code}: {message}"),
        None => format!("{what}: HTTP {code}"),
    };
    Err(match code {
        401 | 403 => ConnectorError::Unauthorized(detail),
        408 | 429 | 500..=599 => ConnectorError::Unavailable(detail),
        _ => ConnectorError::Protocol(detail),
    })
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
