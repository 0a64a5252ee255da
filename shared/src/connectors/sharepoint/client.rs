//! The Graph calls of the SharePoint/OneDrive source and how their refusals are read:
//! a site or drive that answers 403/404/423 is refused (a per-site failure), 410 on a delta
//! link means "enumerate again", anything else is the kit's error.

use reqwest::header::{HeaderValue, ACCEPT};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::super::kit::files::{self, Downloaded, FileLimits};
use super::super::kit::{ApiClient, ApiResponse, Download};
use super::super::microsoft::{error_code, error_message};
use super::super::ConnectorError;
use super::config::SiteRef;
use super::convert::Permission;

const MAX_LIST_PAGES: usize = 20;

/// Why Graph refused a site, a drive or a listing (403, 404, 423).
#[derive(Clone, Debug)]
pub(super) struct Refusal {
    pub(super) status: u16,
    pub(super) code: Option<String>,
    pub(super) message: String,
}

impl Refusal {
    fn of(response: &ApiResponse) -> Option<Self> {
        matches!(response.status.as_u16(), 403 | 404 | 423).then(|| Self {
            status: response.status.as_u16(),
            code: error_code(response.body()),
            message: error_message(response.body()),
        })
    }

    /// What a run shows: the status, what it means, Graph's message.
    pub(super) fn describe(&self, app_only: bool) -> String {
        let meaning = match (self.status, self.code.as_deref()) {
            (423, _) | (_, Some("resourceLocked")) => "the site is locked (read-only or archived)".to_owned(),
            (_, Some("notAllowed")) => "the site does not allow this access (notAllowed)".to_owned(),
            (403, _) => format!(
                "access denied: the app needs {}",
                if app_only {
                    "Sites.Read.All / Files.Read.All (application), or Sites.Selected granted on this site"
                } else {
                    "Sites.Read.All / Files.Read.All (delegated), and the user needs access to the site"
                }
            ),
            (404, _) => "not found (or not visible to these credentials)".to_owned(),
            _ => "refused".to_owned(),
        };
        format!("Graph answered {}: {meaning}: {}", self.status, self.message)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Site {
    pub(super) id: String,
    #[serde(default)]
    pub(super) display_name: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) web_url: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Drive {
    pub(super) id: String,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) drive_type: Option<String>,
}

/// One page of a delta or children listing.
pub(super) enum ItemsPage {
    Page {
        items: Vec<Value>,
        next: Option<String>,
        delta: Option<String>,
    },
    /// 410 Gone (`resyncRequired` or another resync code): the link is dead.
    Resync,
    Refused(Refusal),
}

pub(super) enum PagesPage {
    Page { pages: Vec<Value>, next: Option<String> },
    /// 400 on the list with `$expand=canvasLayout`: read each page on its own.
    ExpandRefused,
    Refused(Refusal),
}

/// A path segment, percent-encoded (site paths and ids carry spaces, commas, `!`).
pub(super) fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!,@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn site_path(site: &SiteRef) -> String {
    match site {
        SiteRef::Id(id) => format!("/sites/{}", segment(id)),
        SiteRef::Path { host, path } if path == "/" => format!("/sites/{}", segment(host)),
        SiteRef::Path { host, path } => {
            let encoded: Vec<String> = path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(segment)
                .collect();
            format!("/sites/{}:/{}", segment(host), encoded.join("/"))
        }
    }
}

/// The Graph calls, through one API client.
#[derive(Clone, Debug)]
pub(super) struct GraphApi {
    pub(super) api: ApiClient,
}

impl GraphApi {
    fn link_or(&self, link: Option<&str>, first: impl FnOnce() -> Result<Url, ConnectorError>) -> Result<Url, ConnectorError> {
        match link {
            Some(link) => self.api.link(link),
            None => first(),
        }
    }

    /// `GET /sites/{host}:/{path}` or `/sites/{id}`.
    pub(super) async fn site(&self, site: &SiteRef) -> Result<Result<Site, Refusal>, ConnectorError> {
        let url = self.api.url(&site_path(site))?;
        let response = self
            .api
            .get(url)
            .what("get site")
            .query("$select", "id,displayName,name,webUrl")
            .send()
            .await?;
        if let Some(refusal) = Refusal::of(&response) {
            return Ok(Err(refusal));
        }
        Ok(Ok(response.error_for_status()?.json()?))
    }

    /// `GET /sites/{id}/drives`: the site's document libraries.
    pub(super) async fn site_drives(&self, site_id: &str) -> Result<Result<Vec<Drive>, Refusal>, ConnectorError> {
        let first = self.api.url(&format!("/sites/{}/drives", segment(site_id)))?;
        let mut link: Option<String> = None;
        let mut drives = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let url = self.link_or(link.as_deref(), || Ok(first.clone()))?;
            let mut call = self.api.get(url).what("list site drives");
            if link.is_none() {
                call = call.query("$select", "id,name,driveType");
            }
            let response = call.send().await?;
            if let Some(refusal) = Refusal::of(&response) {
                return Ok(Err(refusal));
            }
            let body: Value = response.error_for_status()?.json()?;
            drives.extend(values::<Drive>(&body, "drives")?);
            match next_link(&body) {
                Some(next) => link = Some(next),
                None => break,
            }
        }
        // Document libraries only (a site's drives are those).
        drives.retain(|d| d.drive_type.as_deref().is_none_or(|t| t == "documentLibrary"));
        Ok(Ok(drives))
    }

    /// `GET /users/{upn}/drive`, or `GET /me/drive` for `None`.
    pub(super) async fn user_drive(&self, user: Option<&str>) -> Result<Result<Drive, Refusal>, ConnectorError> {
        let path = match user {
            Some(user) => format!("/users/{}/drive", segment(user)),
            None => "/me/drive".to_owned(),
        };
        let response = self
            .api
            .get(self.api.url(&path)?)
            .what("get user drive")
            .query("$select", "id,name,driveType")
            .send()
            .await?;
        if let Some(refusal) = Refusal::of(&response) {
            return Ok(Err(refusal));
        }
        Ok(Ok(response.error_for_status()?.json()?))
    }

    /// One page of `GET /drives/{id}/root/delta` (or of the stored link).
    pub(super) async fn delta_page(
        &self,
        drive: &str,
        link: Option<&str>,
        select: &str,
        top: usize,
    ) -> Result<ItemsPage, ConnectorError> {
        let url = self.link_or(link, || self.api.url(&format!("/drives/{}/root/delta", segment(drive))))?;
        let mut call = self.api.get(url).what("drive delta");
        if link.is_none() {
            call = call.query("$select", select).query("$top", &top.to_string());
        }
        let response = call.send().await?;
        if response.status == StatusCode::GONE {
            tracing::warn!(code = ?error_code(response.body()), "Graph refused a delta link; enumerating again");
            return Ok(ItemsPage::Resync);
        }
        items_page(response)
    }

    /// One page of `GET /drives/{d}/items/{folder}/children`.
    pub(super) async fn children_page(
        &self,
        drive: &str,
        folder: &str,
        link: Option<&str>,
        select: &str,
        top: usize,
    ) -> Result<ItemsPage, ConnectorError> {
        let url = self.link_or(link, || {
            self.api.url(&format!("/drives/{}/items/{}/children", segment(drive), segment(folder)))
        })?;
        let mut call = self.api.get(url).what("folder children");
        if link.is_none() {
            call = call.query("$select", select).query("$top", &top.to_string());
        }
        items_page(call.send().await?)
    }

    /// Every permission of an item; `Ok(Err)`: not readable.
    pub(super) async fn permissions(&self, drive: &str, item: &str) -> Result<Result<Vec<Permission>, String>, ConnectorError> {
        let first = self.api.url(&format!("/drives/{}/items/{}/permissions", segment(drive), segment(item)))?;
        let mut link: Option<String> = None;
        let mut all = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let url = self.link_or(link.as_deref(), || Ok(first.clone()))?;
            let response = self.api.get(url).what("item permissions").send().await?;
            if let Some(refusal) = Refusal::of(&response) {
                return Ok(Err(format!("permissions: {}", refusal.message)));
            }
            let body: Value = response.error_for_status()?.json()?;
            all.extend(values::<Permission>(&body, "permissions")?);
            match next_link(&body) {
                Some(next) => link = Some(next),
                None => break,
            }
        }
        Ok(Ok(all))
    }

    /// A file's bytes: `/content` answers 302 to a pre-authenticated URL on another host,
    /// which the guarded client follows without the Authorization header.
    pub(super) async fn content(
        &self,
        drive: &str,
        item: &str,
        name: &str,
        limits: &FileLimits,
    ) -> Result<Result<Downloaded, String>, ConnectorError> {
        let url = self.api.url(&format!("/drives/{}/items/{}/content", segment(drive), segment(item)))?;
        let sent = self
            .api
            .get(url)
            .what("download a file")
            .header(ACCEPT, HeaderValue::from_static("*/*"))
            .with(|request| request.drop_auth_on_redirect())
            .send_stream()
            .await?;
        match sent {
            Download::Body(response) => Ok(Ok(files::from_response(response, name, limits)
                .await
                .map_err(ConnectorError::from)?)),
            Download::Failed(failed) => match Refusal::of(&failed) {
                Some(refusal) => Ok(Err(format!("download: {}", refusal.message))),
                None if failed.status == StatusCode::GONE => Ok(Err("download: the file is gone".into())),
                None => Err(failed.error()),
            },
            Download::RefusedHop => Ok(Err("the download redirect was refused".into())),
        }
    }

    /// One page of a site's pages, with their canvas (`expand`) or without.
    pub(super) async fn pages_page(&self, site: &str, link: Option<&str>, expand: bool) -> Result<PagesPage, ConnectorError> {
        let url = self.link_or(link, || {
            self.api.url(&format!("/sites/{}/pages/microsoft.graph.sitePage", segment(site)))
        })?;
        let mut call = self.api.get(url).what("list site pages");
        if link.is_none() {
            call = call.query(
                "$select",
                "id,name,title,webUrl,eTag,lastModifiedDateTime,createdDateTime,createdBy,lastModifiedBy,description",
            );
            if expand {
                call = call.query("$expand", "canvasLayout");
            }
        }
        let response = call.send().await?;
        if expand && response.status == StatusCode::BAD_REQUEST {
            return Ok(PagesPage::ExpandRefused);
        }
        if let Some(refusal) = Refusal::of(&response) {
            return Ok(PagesPage::Refused(refusal));
        }
        let body: Value = response.error_for_status()?.json()?;
        Ok(PagesPage::Page {
            pages: values::<Value>(&body, "pages")?,
            next: next_link(&body),
        })
    }

    /// One page with its canvas: `GET /sites/{id}/pages/{page}/microsoft.graph.sitePage?$expand=canvasLayout`.
    pub(super) async fn page(&self, site: &str, page: &str) -> Result<Result<Value, String>, ConnectorError> {
        let url = self.api.url(&format!(
            "/sites/{}/pages/{}/microsoft.graph.sitePage",
            segment(site),
            segment(page)
        ))?;
        let response = self.api.get(url).what("get a site page").query("$expand", "canvasLayout").send().await?;
        if let Some(refusal) = Refusal::of(&response) {
            return Ok(Err(format!("page: {}", refusal.message)));
        }
        Ok(Ok(response.error_for_status()?.json()?))
    }
}

fn items_page(response: ApiResponse) -> Result<ItemsPage, ConnectorError> {
    if let Some(refusal) = Refusal::of(&response) {
        return Ok(ItemsPage::Refused(refusal));
    }
    let body: Value = response.error_for_status()?.json()?;
    let items = match body.get("value") {
        Some(Value::Array(items)) => items.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(ConnectorError::Protocol("a page's value is not a list".into())),
    };
    let next = next_link(&body);
    let delta = body
        .get("@odata.deltaLink")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .map(str::to_owned);
    Ok(ItemsPage::Page { items, next, delta })
}

fn next_link(body: &Value) -> Option<String> {
    body.get("@odata.nextLink")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
}

fn values<T: serde::de::DeserializeOwned>(body: &Value, what: &str) -> Result<Vec<T>, ConnectorError> {
    match body.get("value") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(list) => serde_json::from_value(list.clone())
            .map_err(|error| ConnectorError::Protocol(format!("{what}: {error}"))),
    }
}
