//! The provider's API calls, through the kit's [`ApiClient`] (credentials, the rate
//! governor, retries, error mapping) and [`Paginator`] (no hand-written page loop).
//! Replace the invented `/api/..` routes and the [`PAGES`] style with the provider's.

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::connectors::kit::{
    ApiClient, Governor, PageStyle, Paginator, SourceAuth, ThrottleShape,
};
use crate::connectors::ConnectorError;
use crate::http::{GuardedClient, RetryPolicy};

/// Where the API puts the next page's cursor (the listing ends when it is null).
const PAGES: PageStyle = PageStyle::Cursor {
    cursor: "/next_cursor",
    has_more: None,
};
/// Where a page's items are.
const ITEMS: &str = "/items";

/// One page of a listing: its items and the cursor of the next (`None`: the last page).
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Clone, Debug)]
pub struct GmailClient {
    api: ApiClient,
}

impl GmailClient {
    /// One rate state per base URL and connector (shared by concurrent syncs of it); a
    /// throttle longer than the retry budget defers the sync instead of holding it.
    pub fn new(
        connector_id: &str,
        base: Url,
        auth: SourceAuth,
        http: GuardedClient,
        retry: RetryPolicy,
    ) -> Self {
        let governor = Governor::shared_with_budget(
            super::SOURCE,
            &format!("{base}#{connector_id}"),
            ThrottleShape::Standard,
            retry.budget,
        );
        let api = ApiClient::new("Gmail", http, base, auth)
            .with_retry(retry)
            .with_governor(governor);
        Self { api }
    }

    /// Who the credentials belong to: proves they work.
    pub async fn me(&self) -> Result<(), ConnectorError> {
        let url = self.api.url("/api/me")?;
        let _: Value = self.api.get(url).what("the account lookup").json().await?;
        Ok(())
    }

    /// The page of items at `cursor` (raw, so one malformed item fails alone).
    pub async fn items(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Value>, ConnectorError> {
        let limit = limit.to_string();
        let listing = Paginator::new(self.api.clone(), PAGES, |api: &ApiClient, cursor| {
            Ok(api
                .get(api.url("/api/items")?)
                .what("the item listing")
                .query("limit", &limit)
                .query_opt("cursor", cursor))
        });
        let page = listing.page(cursor).await?;
        Ok(Page {
            items: page.items(ITEMS)?,
            next: page.next,
        })
    }

    /// The page of the slim listing (ids only) at `cursor`.
    pub async fn ids(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<String>, ConnectorError> {
        let limit = limit.to_string();
        let listing = Paginator::new(self.api.clone(), PAGES, |api: &ApiClient, cursor| {
            Ok(api
                .get(api.url("/api/items")?)
                .what("the id listing")
                .query("fields", "id")
                .query("limit", &limit)
                .query_opt("cursor", cursor))
        });
        let page = listing.page(cursor).await?;
        let ids: Vec<IdOnly> = page.items(ITEMS)?;
        Ok(Page {
            items: ids.into_iter().map(|item| item.id).collect(),
            next: page.next,
        })
    }
}
