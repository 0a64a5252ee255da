//! Paged listings without a hand-written loop: a [`PageStyle`] says where a provider puts
//! "the next page" in its JSON answers, a [`Paginator`] fetches one page from a stored
//! cursor ([`Paginator::page`], what one checkpointed `pull` does) or every page as a
//! stream ([`Paginator::pages`], [`Paginator::items`]).
//!
//! Cursors are plain strings (a provider cursor, a page token, an absolute next link or
//! an offset), so they go into checkpoints as they are.

use futures::Stream;
use serde::de::DeserializeOwned;
use serde_json::Value;

use reqwest::StatusCode;

use super::client::{ApiCall, ApiClient, ApiResponse};
use crate::connectors::ConnectorError;

/// Where the next page is found in an answer. Fields are JSON pointers (`/a/b`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageStyle {
    /// A cursor or page token in the body that the next request sends back. The listing
    /// ends when it is missing or empty, or when `has_more` is false; then a cursor still
    /// present is the place to resume from later (Dropbox).
    Cursor {
        cursor: &'static str,
        has_more: Option<&'static str>,
    },
    /// A page token with an explicit last-page flag (Jira search: `nextPageToken` +
    /// `isLast`); no flag: the last page is the one without a token.
    TokenUntilLast {
        token: &'static str,
        is_last: &'static str,
    },
    /// A link to the next page. `resume`: the link the last page carries to continue from
    /// in a later sync (Graph `@odata.deltaLink`). `base`: the field relative links are
    /// relative to (Atlassian `_links.base`); otherwise relative to the API base.
    NextLink {
        next: &'static str,
        resume: Option<&'static str>,
        base: Option<&'static str>,
    },
    /// `startAt`-style offsets: the cursor is the offset of the next page, which exists
    /// while the items seen are fewer than `total` and the page was not empty.
    Offset {
        items: &'static str,
        total: &'static str,
    },
}

impl PageStyle {
    /// Slack Web API: `response_metadata.next_cursor` (empty on the last page).
    pub const SLACK: PageStyle = PageStyle::Cursor {
        cursor: "/response_metadata/next_cursor",
        has_more: None,
    };
    /// Notion: `has_more` + `next_cursor` (sent as `start_cursor`).
    pub const NOTION: PageStyle = PageStyle::Cursor {
        cursor: "/next_cursor",
        has_more: Some("/has_more"),
    };
    /// Dropbox `list_folder[/continue]`: `has_more` + `cursor` (kept to resume).
    pub const DROPBOX: PageStyle = PageStyle::Cursor {
        cursor: "/cursor",
        has_more: Some("/has_more"),
    };
    /// Google APIs: `nextPageToken` (sent as `pageToken`).
    pub const GOOGLE: PageStyle = PageStyle::Cursor {
        cursor: "/nextPageToken",
        has_more: None,
    };
    /// Microsoft Graph: `@odata.nextLink`, then `@odata.deltaLink` on a delta's last page.
    pub const GRAPH: PageStyle = PageStyle::NextLink {
        next: "/@odata.nextLink",
        resume: Some("/@odata.deltaLink"),
        base: None,
    };
    /// Atlassian (Confluence): `_links.next`, relative to `_links.base`.
    pub const ATLASSIAN: PageStyle = PageStyle::NextLink {
        next: "/_links/next",
        resume: None,
        base: Some("/_links/base"),
    };

    /// Jira's enhanced search (`/rest/api/3/search/jql`): `nextPageToken` until `isLast`.
    pub const JIRA_SEARCH: PageStyle = PageStyle::TokenUntilLast {
        token: "/nextPageToken",
        is_last: "/isLast",
    };

    /// Jira-style `startAt`/`maxResults`/`total` over the list at `items`.
    pub const fn offset(items: &'static str) -> PageStyle {
        PageStyle::Offset {
            items,
            total: "/total",
        }
    }

    /// Where the listing goes after the page `body` fetched at `cursor`.
    pub fn after(&self, body: &Value, cursor: Option<&str>) -> Result<After, ConnectorError> {
        let after = match self {
            PageStyle::Cursor {
                cursor: at,
                has_more,
            } => {
                let found = string_at(body, at)?;
                let more = match has_more {
                    Some(pointer) => match body.pointer(pointer) {
                        None | Some(Value::Null) => found.is_some(),
                        Some(Value::Bool(more)) => *more,
                        Some(_) => return Err(protocol(pointer, "is not a boolean")),
                    },
                    None => found.is_some(),
                };
                match (more, found) {
                    (true, Some(next)) => After::Next(next),
                    (true, None) => return Err(protocol(at, "is missing but more pages follow")),
                    (false, resume) => After::Done {
                        resume: resume.filter(|_| has_more.is_some()),
                    },
                }
            }
            PageStyle::TokenUntilLast { token, is_last } => {
                let found = string_at(body, token)?;
                let last = match body.pointer(is_last) {
                    None | Some(Value::Null) => found.is_none(),
                    Some(Value::Bool(last)) => *last,
                    Some(_) => return Err(protocol(is_last, "is not a boolean")),
                };
                match (last, found) {
                    (true, _) => After::Done { resume: None },
                    (false, Some(next)) => After::Next(next),
                    (false, None) => {
                        return Err(protocol(token, "is missing but more pages follow"))
                    }
                }
            }
            PageStyle::NextLink { next, resume, base } => match string_at(body, next)? {
                Some(link) => After::Next(relative_to(body, *base, link)?),
                None => After::Done {
                    resume: match resume {
                        Some(pointer) => string_at(body, pointer)?
                            .map(|link| relative_to(body, *base, link))
                            .transpose()?,
                        None => None,
                    },
                },
            },
            PageStyle::Offset { items, total } => {
                let count = match body.pointer(items) {
                    Some(Value::Array(list)) => list.len() as u64,
                    _ => return Err(protocol(items, "is not a list")),
                };
                let start = match cursor {
                    None => 0,
                    Some(cursor) => cursor.parse::<u64>().map_err(|_| {
                        ConnectorError::Checkpoint("an offset cursor is not a number".into())
                    })?,
                };
                let total = body.pointer(total).and_then(Value::as_u64).unwrap_or(0);
                let next = start + count;
                if count == 0 || next >= total {
                    After::Done { resume: None }
                } else {
                    After::Next(next.to_string())
                }
            }
        };
        if let (After::Next(next), Some(cursor)) = (&after, cursor) {
            if next == cursor {
                return Err(ConnectorError::Protocol(
                    "the next page is the page just read (the listing does not advance)".into(),
                ));
            }
        }
        Ok(after)
    }
}

/// What follows a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum After {
    /// The cursor of the next page.
    Next(String),
    /// The listing is complete; `resume` continues it later (changes since), if any.
    Done { resume: Option<String> },
}

fn protocol(pointer: &str, problem: &str) -> ConnectorError {
    ConnectorError::Protocol(format!("a page's {pointer} {problem}"))
}

fn string_at(body: &Value, pointer: &str) -> Result<Option<String>, ConnectorError> {
    match body.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(protocol(pointer, "is not a string")),
    }
}

/// A path-absolute link made absolute against the body's base field, when there is one.
fn relative_to(body: &Value, base: Option<&str>, link: String) -> Result<String, ConnectorError> {
    match (base, link.starts_with('/')) {
        (Some(pointer), true) => match string_at(body, pointer)? {
            Some(root) => Ok(format!("{}{link}", root.trim_end_matches('/'))),
            None => Ok(link),
        },
        _ => Ok(link),
    }
}

/// One page of a listing.
#[derive(Clone, Debug)]
pub struct Page {
    pub body: Value,
    /// The cursor of the next page; `None`: this was the last.
    pub next: Option<String>,
    /// On the last page: where a later sync continues from (delta link, Dropbox cursor).
    pub resume: Option<String>,
}

impl Page {
    /// The list at `pointer` (missing or null: empty).
    pub fn items<T: DeserializeOwned>(&self, pointer: &str) -> Result<Vec<T>, ConnectorError> {
        match self.body.pointer(pointer) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(list @ Value::Array(_)) => serde_json::from_value(list.clone())
                .map_err(|error| ConnectorError::Protocol(format!("a page's {pointer}: {error}"))),
            Some(_) => Err(protocol(pointer, "is not a list")),
        }
    }

    pub fn is_last(&self) -> bool {
        self.next.is_none()
    }
}

/// Builds the request for the page at a cursor (`None`: the first page).
pub trait PageRequest:
    Fn(&ApiClient, Option<&str>) -> Result<ApiCall, ConnectorError> + Send + Sync
{
}

impl<F> PageRequest for F where
    F: Fn(&ApiClient, Option<&str>) -> Result<ApiCall, ConnectorError> + Send + Sync
{
}

/// A paged listing of one endpoint.
pub struct Paginator<F> {
    api: ApiClient,
    style: PageStyle,
    request: F,
}

impl<F: PageRequest> Paginator<F> {
    /// `request` turns a cursor into the call for that page, e.g. for Slack
    /// `|api, cursor| Ok(api.get(url.clone()).query_opt("cursor", cursor))`, for a next
    /// link `|api, link| Ok(api.get(match link { Some(l) => api.link(l)?, None => first.clone() }))`.
    pub fn new(api: ApiClient, style: PageStyle, request: F) -> Self {
        Self {
            api,
            style,
            request,
        }
    }

    /// Exactly one page, from a stored cursor: one checkpointed step of a sync.
    pub async fn page(&self, cursor: Option<&str>) -> Result<Page, ConnectorError> {
        self.try_page(cursor)
            .await?
            .map_err(|failed| failed.error())
    }

    /// Like [`Paginator::page`], but an unsuccessful answer is handed back as it is (for
    /// sources that read a status, e.g. 404 as "gone").
    pub async fn try_page(
        &self,
        cursor: Option<&str>,
    ) -> Result<Result<Page, ApiResponse>, ConnectorError> {
        let response = (self.request)(&self.api, cursor)?.send().await?;
        if !response.status.is_success() {
            return Ok(Err(response));
        }
        let body: Value = response.json()?;
        Ok(Ok(match self.style.after(&body, cursor)? {
            After::Next(next) => Page {
                body,
                next: Some(next),
                resume: None,
            },
            After::Done { resume } => Page {
                body,
                next: None,
                resume,
            },
        }))
    }

    /// Every page from `start` on, in order; stops at the first error.
    pub fn pages(
        &self,
        start: Option<String>,
    ) -> impl Stream<Item = Result<Page, ConnectorError>> + Send + '_ {
        futures::stream::try_unfold(Some(start), move |state| async move {
            let Some(cursor) = state else {
                return Ok(None);
            };
            let page = self.page(cursor.as_deref()).await?;
            let next = page.next.clone().map(Some);
            Ok(Some((page, next)))
        })
    }

    /// The items at `pointer` of at most `max_pages` pages from the first one; `true` with
    /// them when the listing was complete.
    pub async fn items<T: DeserializeOwned>(
        &self,
        pointer: &str,
        max_pages: usize,
    ) -> Result<(Vec<T>, bool), ConnectorError> {
        let collected = self.collect(max_pages, None).await?;
        Ok((collected.items(pointer)?, collected.end == End::Complete))
    }

    /// At most `max_pages` pages from the first; a page answering `gone` (e.g. 404: the
    /// parent was deleted meanwhile) ends the listing there, keeping the pages before it.
    pub async fn collect(
        &self,
        max_pages: usize,
        gone: Option<StatusCode>,
    ) -> Result<Collected, ConnectorError> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..max_pages {
            let page = match self.try_page(cursor.as_deref()).await? {
                Ok(page) => page,
                Err(failed) if Some(failed.status) == gone => {
                    return Ok(Collected {
                        pages,
                        end: End::Gone,
                    })
                }
                Err(failed) => return Err(failed.error()),
            };
            cursor = page.next.clone();
            pages.push(page);
            if cursor.is_none() {
                return Ok(Collected {
                    pages,
                    end: End::Complete,
                });
            }
        }
        Ok(Collected {
            pages,
            end: End::Truncated,
        })
    }
}

/// The pages [`Paginator::collect`] read and why it stopped.
#[derive(Debug)]
pub struct Collected {
    pub pages: Vec<Page>,
    pub end: End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The last page was read.
    Complete,
    /// `max_pages` were read and more follow.
    Truncated,
    /// A page answered the `gone` status.
    Gone,
}

impl Collected {
    /// The items at `pointer` of every page, in order.
    pub fn items<T: DeserializeOwned>(&self, pointer: &str) -> Result<Vec<T>, ConnectorError> {
        let mut items = Vec::new();
        for page in &self.pages {
            items.extend(page.items::<T>(pointer)?);
        }
        Ok(items)
    }
}

#[cfg(test)]
#[path = "tests/paginate.rs"]
mod tests;
