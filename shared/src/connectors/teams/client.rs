//! Graph's Teams calls (learn.microsoft.com/graph/api/resources/teams-api-overview) through
//! the kit's [`ApiClient`] (credentials, Graph's governor, retries) and [`Paginator`]
//! (`@odata.nextLink` pages, `@odata.deltaLink` at a delta round's end):
//! - teams: `GET /teams` (app-only) or `GET /me/joinedTeams` (delegated), or the
//!   configured ids (`GET /teams/{id}`); channels: `GET /teams/{id}/channels`;
//! - `GET /teams/{t}/channels/{c}/messages/delta?$top=&$expand=replies`: root messages
//!   new or changed since the delta link (a root changes when a reply is posted, edited or
//!   deleted), each with its replies; a root whose replies do not all fit carries
//!   `replies@odata.nextLink` and its replies are read with
//!   `GET …/messages/{id}/replies`;
//! - the slim listing: `GET /teams/{t}/channels/{c}/messages?$top=50` (roots only).

use reqwest::StatusCode;
use serde::Deserialize;
use url::Url;

use super::convert::Message;
use crate::connectors::kit::{ApiClient, ApiResponse, Page, PageStyle, Paginator};
use crate::connectors::microsoft;
use crate::connectors::ConnectorError;

/// Pages followed for one list of teams, channels or replies (50 per page at least).
const MAX_PAGES: usize = 2000;

/// What a channel's delta page answered.
pub enum DeltaAnswer {
    Page {
        roots: Vec<Message>,
        next: Option<String>,
        delta: Option<String>,
    },
    /// The delta link is no longer accepted (expired, or a token Graph refuses): the
    /// channel's feed starts over with a full round.
    Expired,
}

/// A team or a channel: what the documents are filed under.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Named {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct TeamsApi {
    api: ApiClient,
    app_only: bool,
}

/// The permission message of a 403 on channel messages: which one to ask for, rather
/// than Graph's generic refusal.
pub fn messages_refused(where_: &str, graph_message: &str, app_only: bool) -> ConnectorError {
    let ask = if app_only {
        "grant the app the application permission ChannelMessage.Read.All (a protected API: \
         Microsoft must approve it for the app first, https://aka.ms/teamsgraph/requestaccess) \
         and admin-consent it"
    } else {
        "reconnect Microsoft with the delegated permission ChannelMessage.Read.All (admin \
         consent required)"
    };
    ConnectorError::Unauthorized(format!(
        "Teams refused to read the messages of {where_}: {ask}. Graph said: {graph_message}"
    ))
}

impl TeamsApi {
    pub fn new(api: ApiClient, app_only: bool) -> Self {
        Self { api, app_only }
    }

    fn listing(
        &self,
        first: Url,
    ) -> Paginator<impl Fn(&ApiClient, Option<&str>) -> Result<crate::connectors::kit::ApiCall, ConnectorError>>
    {
        Paginator::new(self.api.clone(), PageStyle::GRAPH, move |api, link| {
            let url = match link {
                Some(link) => api.link(link)?,
                None => first.clone(),
            };
            Ok(api.get(url).idempotent())
        })
    }

    async fn all<T: serde::de::DeserializeOwned>(&self, first: Url) -> Result<Vec<T>, ConnectorError> {
        let (items, _complete) = self.listing(first).items("/value", MAX_PAGES).await?;
        Ok(items)
    }

    /// Every team the credentials can see: the app's tenant (`/teams`), or the signed-in
    /// user's (`/me/joinedTeams`).
    pub async fn teams(&self) -> Result<Vec<Named>, ConnectorError> {
        let path = if self.app_only {
            "/teams?$select=id,displayName"
        } else {
            "/me/joinedTeams?$select=id,displayName"
        };
        self.all(self.api.url(path)?).await
    }

    /// One configured team (404: it does not exist or the app cannot see it).
    pub async fn team(&self, id: &str) -> Result<Named, ConnectorError> {
        let url = self.api.url(&format!("/teams/{}?$select=id,displayName", segment(id)))?;
        self.api.get(url).idempotent().json().await
    }

    pub async fn channels(&self, team: &str) -> Result<Vec<Named>, ConnectorError> {
        let url = self.api.url(&format!(
            "/teams/{}/channels?$select=id,displayName",
            segment(team)
        ))?;
        self.all(url).await
    }

    /// The first page of a full delta round of a channel.
    pub fn delta_start(&self, team: &str, channel: &str, top: usize) -> Result<Url, ConnectorError> {
        self.api.url(&format!(
            "/teams/{}/channels/{}/messages/delta?$top={top}&$expand=replies",
            segment(team),
            segment(channel)
        ))
    }

    /// A stored link (next page or delta link); it must point at Graph.
    pub fn link(&self, link: &str) -> Result<Url, ConnectorError> {
        self.api.link(link)
    }

    /// One page of a channel's delta round.
    pub async fn delta_page(&self, url: Url, where_: &str) -> Result<DeltaAnswer, ConnectorError> {
        let response = self.api.get(url).idempotent().send().await?;
        if expired(&response) {
            tracing::warn!(status = %response.status,
                code = ?microsoft::error_code(response.body()), "Teams refused a delta link");
            return Ok(DeltaAnswer::Expired);
        }
        let page = self.page_of(response, where_)?;
        Ok(DeltaAnswer::Page {
            roots: page.items("/value")?,
            next: page.next,
            delta: page.resume,
        })
    }

    fn page_of(&self, response: ApiResponse, where_: &str) -> Result<Page, ConnectorError> {
        if response.status == StatusCode::FORBIDDEN {
            return Err(messages_refused(where_, &response.message(), self.app_only));
        }
        let body = response.error_for_status()?.json()?;
        let (next, resume) = match PageStyle::GRAPH.after(&body, None)? {
            crate::connectors::kit::After::Next(next) => (Some(next), None),
            crate::connectors::kit::After::Done { resume } => (None, resume),
        };
        Ok(Page { body, next, resume })
    }

    /// Every reply of a root message, oldest first.
    pub async fn replies(
        &self,
        team: &str,
        channel: &str,
        root: &str,
    ) -> Result<Vec<Message>, ConnectorError> {
        let url = self.api.url(&format!(
            "/teams/{}/channels/{}/messages/{}/replies?$top=50",
            segment(team),
            segment(channel),
            segment(root)
        ))?;
        let mut replies: Vec<Message> = self.all(url).await?;
        replies.sort_by(|a, b| a.created_date_time.cmp(&b.created_date_time));
        Ok(replies)
    }

    /// One page of a channel's root messages (the slim listing).
    pub async fn roots_page(
        &self,
        team: &str,
        channel: &str,
        link: Option<&str>,
    ) -> Result<(Vec<Message>, Option<String>), ConnectorError> {
        let url = match link {
            Some(link) => self.api.link(link)?,
            None => self.api.url(&format!(
                "/teams/{}/channels/{}/messages?$top=50",
                segment(team),
                segment(channel)
            ))?,
        };
        let response = self.api.get(url).idempotent().send().await?;
        let page = self.page_of(response, &format!("channel {channel}"))?;
        Ok((page.items("/value")?, page.next))
    }
}

/// Graph's answer to a delta link it no longer honours: 410 Gone (`resyncRequired`,
/// `syncStateNotFound`), or 400 naming the token.
fn expired(response: &ApiResponse) -> bool {
    match response.status {
        StatusCode::GONE => true,
        StatusCode::BAD_REQUEST => microsoft::error_code(response.body())
            .map(|code| code.to_ascii_lowercase())
            .is_some_and(|code| code.contains("resync") || code.contains("syncstate") || code.contains("token")),
        _ => false,
    }
}

/// An id as one path segment (channel ids hold `:` and `@`, which are fine in a path;
/// anything that could end the segment is escaped).
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace("%3A", ":")
        .replace("%40", "@")
}
