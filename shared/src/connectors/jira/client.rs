//! The Jira REST calls (search, bulk fetch, comments, attachments) and how their failures
//! become connector errors.

use reqwest::header::{HeaderValue, ACCEPT};
use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;

use super::super::kit::client::{status_error, transport_error};
use super::super::kit::{ApiClient, ApiResponse, Download, End, PageStyle, Paginator};
use super::super::{is_loopback, ConnectorError, DocumentFailure};
use super::checkpoint::MAX_TOKEN_CHARS;
use super::config::jql_string;
use super::convert::{id_of, is_numeric_id, labels_of, text_language, AttachmentText, Issue};
use super::JiraConnector;

const COMMENT_PAGE_SIZE: usize = 100;
/// A guard against a comment endpoint that never reaches its `total`.
const MAX_COMMENT_PAGES: usize = 500;
const MAX_ERROR_CHARS: usize = 500;

/// One page of the issue search.
pub(super) struct SearchPage {
    /// Issue ids with their labels when they were asked for.
    pub(super) issues: Vec<(String, Vec<String>)>,
    pub(super) next: Option<String>,
}

pub(super) enum SearchFailure {
    /// 400: the JQL or the page token was refused, with Jira's messages.
    Rejected(String),
    Other(ConnectorError),
}

impl From<ConnectorError> for SearchFailure {
    fn from(error: ConnectorError) -> Self {
        SearchFailure::Other(error)
    }
}

pub(super) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Jira's error messages (`errorMessages` and `errors`) from an error body.
pub(super) fn jira_messages(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return String::new();
    };
    let mut messages: Vec<String> = value
        .get("errorMessages")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(errors) = value.get("errors").and_then(Value::as_object) {
        for (field, message) in errors {
            if let Some(message) = message.as_str() {
                messages.push(format!("{field}: {message}"));
            }
        }
    }
    truncate(&messages.join("; "), MAX_ERROR_CHARS)
}

/// [`jira_messages`] for the kit's API client.
pub(super) fn jira_error_messages(body: &[u8]) -> String {
    jira_messages(&String::from_utf8_lossy(body))
}

/// A successful answer's JSON body, or the error its status means.
pub(super) fn json_body(response: ApiResponse) -> Result<Value, ConnectorError> {
    response.error_for_status()?.json()
}

impl JiraConnector {
    pub(super) fn url(&self, path: &str) -> Result<Url, ConnectorError> {
        self.api.url(path)
    }

    /// An authenticated GET, retried on 408/429/5xx and timeouts; any final status.
    pub(super) async fn get(&self, url: &Url, what: &str) -> Result<ApiResponse, ConnectorError> {
        self.api.get(url.clone()).what(what).send().await
    }

    pub(super) fn window_jql(&self, window_since: Option<&str>) -> String {
        match window_since {
            Some(since) => format!(
                "{} AND updated >= {} ORDER BY updated ASC, id ASC",
                self.scope_jql,
                jql_string(since)
            ),
            None => format!("{} ORDER BY updated ASC, id ASC", self.scope_jql),
        }
    }

    /// One page of the enhanced JQL search, from a page token (one pull or one listing
    /// step). 400: Jira refused the JQL or the token.
    pub(super) async fn search(
        &self,
        jql: &str,
        fields: &str,
        max_results: usize,
        token: Option<&str>,
    ) -> Result<SearchPage, SearchFailure> {
        const WHAT: &str = "the issue search";
        let mut url = self.url("/rest/api/3/search/jql")?;
        url.query_pairs_mut()
            .append_pair("jql", jql)
            .append_pair("fields", fields)
            .append_pair("maxResults", &max_results.to_string());
        let pages = Paginator::new(
            self.api.clone(),
            PageStyle::JIRA_SEARCH,
            move |api: &ApiClient, token: Option<&str>| {
                Ok(api
                    .get(url.clone())
                    .what(WHAT)
                    .query_opt("nextPageToken", token))
            },
        );
        let page = match pages.try_page(token).await? {
            Ok(page) => page,
            Err(failed) if failed.status == StatusCode::BAD_REQUEST => {
                return Err(SearchFailure::Rejected(failed.message()))
            }
            Err(failed) => return Err(SearchFailure::Other(failed.error())),
        };
        let protocol = |message: &str| {
            SearchFailure::Other(ConnectorError::Protocol(format!("{WHAT}: {message}")))
        };
        let issues = match page.body.get("issues") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(issues)) => issues
                .iter()
                .map(|issue| {
                    id_of(issue)
                        .filter(|id| is_numeric_id(id))
                        .map(|id| (id, labels_of(issue.get("fields"))))
                        .ok_or_else(|| protocol("an issue without a numeric id"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(protocol("issues is not a list")),
        };
        if page
            .next
            .as_ref()
            .is_some_and(|next| next.len() > MAX_TOKEN_CHARS)
        {
            return Err(protocol("nextPageToken is not a usable string"));
        }
        Ok(SearchPage {
            issues,
            next: page.next,
        })
    }

    pub(super) fn issue_fields(&self) -> Vec<&'static str> {
        let mut fields = vec![
            "summary",
            "description",
            "labels",
            "updated",
            "created",
            "project",
            "status",
            "issuetype",
            "assignee",
            "reporter",
        ];
        if self.config.include_comments {
            fields.push("comment");
        }
        if self.config.attachments {
            fields.push("attachment");
        }
        fields
    }

    /// `POST issue/bulkfetch` (read-only, so retried like a GET).
    pub(super) async fn bulk_fetch(
        &self,
        ids: &[String],
    ) -> Result<(Vec<Value>, Vec<DocumentFailure>), ConnectorError> {
        const WHAT: &str = "the bulk issue fetch";
        let url = self.url("/rest/api/3/issue/bulkfetch")?;
        let body = json!({ "issueIdsOrKeys": ids, "fields": self.issue_fields() });
        let response = self
            .api
            .post(url)
            .what(WHAT)
            .json_body(&body)?
            .idempotent()
            .send()
            .await?;
        let mut value = json_body(response)?;
        let issues = match value.get_mut("issues").map(Value::take) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(issues)) => issues,
            Some(_) => {
                return Err(ConnectorError::Protocol(format!(
                    "{WHAT}: issues is not a list"
                )))
            }
        };
        let failures = value
            .get("issueErrors")
            .and_then(Value::as_array)
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|error| {
                        let id = id_of(error)?;
                        let message = error
                            .get("errorMessage")
                            .and_then(Value::as_str)
                            .unwrap_or("no message");
                        Some(DocumentFailure {
                            source_id: id,
                            error: format!(
                                "Jira could not return the issue: {}",
                                truncate(message, MAX_ERROR_CHARS)
                            ),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((issues, failures))
    }

    /// Every comment of the issue: the embedded page, or all pages of the comment endpoint
    /// when the embedded one is incomplete. `Ok(Err(_))`: this issue fails.
    pub(super) async fn comments(
        &self,
        issue: &Issue<'_>,
    ) -> Result<Result<Vec<Value>, String>, ConnectorError> {
        const WHAT: &str = "the comment listing";
        let embedded = issue.fields.get("comment").unwrap_or(&Value::Null);
        let comments: Vec<Value> = embedded
            .get("comments")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let total = embedded.get("total").and_then(Value::as_u64).unwrap_or(0);
        if comments.len() as u64 >= total {
            return Ok(Ok(comments));
        }
        let url = self.url(&format!("/rest/api/3/issue/{}/comment", issue.id))?;
        let pages = Paginator::new(
            self.api.clone(),
            PageStyle::offset("/comments"),
            move |api: &ApiClient, start: Option<&str>| {
                Ok(api
                    .get(url.clone())
                    .what(WHAT)
                    .query("startAt", start.unwrap_or("0"))
                    .query("maxResults", &COMMENT_PAGE_SIZE.to_string())
                    .query("orderBy", "created"))
            },
        );
        let listed = pages
            .collect(MAX_COMMENT_PAGES, Some(StatusCode::NOT_FOUND))
            .await?;
        if listed.end == End::Gone {
            return Ok(Err("the issue's comments are gone (404)".into()));
        }
        Ok(Ok(listed.items("/comments")?))
    }

    /// The text attachments that fit, in a stable order.
    pub(super) async fn attachments(
        &self,
        issue: &Issue<'_>,
    ) -> Result<Vec<AttachmentText>, ConnectorError> {
        let limit = self.config.max_attachment_bytes();
        let mut candidates: Vec<(String, String, String)> = issue
            .fields
            .get("attachment")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|attachment| {
                        let id = id_of(attachment).filter(|id| is_numeric_id(id))?;
                        let filename = attachment.get("filename")?.as_str()?.to_owned();
                        let mime = attachment.get("mimeType")?.as_str()?;
                        let size = attachment.get("size")?.as_u64()?;
                        let language = text_language(mime)?;
                        (size <= limit).then_some((filename, id, language))
                    })
                    .collect()
            })
            .unwrap_or_default();
        candidates.sort();
        let mut texts = Vec::new();
        for (filename, id, language) in candidates {
            let Some(bytes) = self.download(&id, limit).await? else {
                continue;
            };
            match String::from_utf8(bytes) {
                Ok(text) => texts.push(AttachmentText {
                    filename,
                    language,
                    text,
                }),
                Err(_) => {
                    tracing::info!(issue = %issue.key, attachment = %id, "attachment is not UTF-8; left out");
                }
            }
        }
        Ok(texts)
    }

    /// An attachment's bytes, or `None` when it cannot or should not be read. Jira
    /// redirects to the media service with a short-lived token in the URL; the guarded
    /// client follows the redirect without our credentials, only to https (or loopback)
    /// targets the network policy allows. A refused hop leaves the attachment out.
    pub(super) async fn download(
        &self,
        id: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, ConnectorError> {
        const WHAT: &str = "an attachment download";
        let url = self.url(&format!("/rest/api/3/attachment/content/{id}"))?;
        let safe_hop =
            |next: &Url| next.scheme() == "https" || (next.scheme() == "http" && is_loopback(next));
        let sent = self
            .api
            .get(url)
            .what(WHAT)
            .header(ACCEPT, HeaderValue::from_static("*/*"))
            .with(move |request| request.drop_auth_on_redirect().only_hops(safe_hop))
            .send_stream()
            .await?;
        let mut response = match sent {
            Download::Body(response) => response,
            Download::RefusedHop => {
                tracing::warn!(attachment = %id, "attachment redirect refused; left out");
                return Ok(None);
            }
            Download::Failed(failed) => {
                let status = failed.status;
                let error = status_error("Jira", status, WHAT, "");
                if error.is_transient() {
                    return Err(error);
                }
                tracing::warn!(attachment = %id, %status, "attachment not readable; left out");
                return Ok(None);
            }
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Ok(None);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| transport_error(error, WHAT))?
        {
            if (body.len() + chunk.len()) as u64 > limit {
                return Ok(None);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }
}
