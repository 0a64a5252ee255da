//! The Drive v3 and Sheets v4 calls, and how their failures become connector errors.

use reqwest::header::{HeaderValue, ACCEPT};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::super::google::error_reason;
use super::super::kit::files::{self, Downloaded, FileLimits};
use super::super::kit::{ApiClient, ApiResponse, Download, PageStyle, Paginator};
use super::super::ConnectorError;
use super::convert::{cell_rows, sheet_range, DriveFile, Permission, FILE_FIELDS};

/// files.export refuses larger exports; reading stops there too.
pub(super) const MAX_EXPORT_BYTES: usize = 10 * 1024 * 1024;
const PERMISSIONS_PAGE: &str = "100";
const MAX_PERMISSION_PAGES: usize = 20;
/// Sheets read per `values:batchGet` call.
const SHEETS_PER_CALL: usize = 50;
const MAX_SHEETS: usize = 200;

/// One user's view of the APIs.
#[derive(Clone, Debug)]
pub(super) struct UserApi {
    /// `None`: the connected account (or the service account's default subject).
    pub(super) user: Option<String>,
    pub(super) drive: ApiClient,
    pub(super) sheets: ApiClient,
}

/// One page of a listing.
pub(super) struct FilesPage {
    pub(super) files: Vec<DriveFile>,
    pub(super) next: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Change {
    #[serde(default)]
    pub(super) change_type: Option<String>,
    #[serde(default)]
    pub(super) file_id: Option<String>,
    #[serde(default)]
    pub(super) removed: bool,
    #[serde(default)]
    pub(super) file: Option<DriveFile>,
}

pub(super) enum ChangesPage {
    Page {
        changes: Vec<Change>,
        /// Set mid-feed; else `new_start` is.
        next: Option<String>,
        new_start: Option<String>,
    },
    /// Drive refused the page token: the feed must start over from a full listing.
    Rejected,
}

/// A refusal that is about this one file (not the credentials, not an outage): the file
/// is reported as a failure, the sync goes on.
fn file_failure(response: &ApiResponse) -> Option<String> {
    let error = response.error();
    if error.is_transient() || response.status == StatusCode::UNAUTHORIZED {
        return None;
    }
    Some(format!(
        "Drive answered {} ({})",
        response.status.as_u16(),
        error_reason(response.body()).unwrap_or_else(|| "no reason".into())
    ))
}

impl UserApi {
    pub(super) async fn start_page_token(&self) -> Result<String, ConnectorError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Start {
            start_page_token: String,
        }
        let url = self.drive.url("/changes/startPageToken")?;
        let start: Start = self
            .drive
            .get(url)
            .what("changes.getStartPageToken")
            .query("supportsAllDrives", "true")
            .json()
            .await?;
        Ok(start.start_page_token)
    }

    /// One `files.list` page. `Ok(None)`: Drive refused the page token (400 on a token).
    pub(super) async fn files_page(
        &self,
        corpora: &str,
        drive_id: Option<&str>,
        q: &str,
        page_size: usize,
        fields: &str,
        token: Option<&str>,
    ) -> Result<Option<FilesPage>, ConnectorError> {
        let url = self.drive.url("/files")?;
        let (corpora, drive_id, q) = (corpora.to_owned(), drive_id.map(str::to_owned), q.to_owned());
        let (fields, size) = (format!("nextPageToken,files({fields})"), page_size.to_string());
        let pages = Paginator::new(
            self.drive.clone(),
            PageStyle::GOOGLE,
            move |api: &ApiClient, token: Option<&str>| {
                Ok(api
                    .get(url.clone())
                    .what("files.list")
                    .query("corpora", &corpora)
                    .query_opt("driveId", drive_id.as_deref())
                    .query("includeItemsFromAllDrives", "true")
                    .query("supportsAllDrives", "true")
                    .query("q", &q)
                    .query("pageSize", &size)
                    .query("fields", &fields)
                    .query_opt("pageToken", token))
            },
        );
        match pages.try_page(token).await? {
            Ok(page) => Ok(Some(FilesPage {
                files: page.items("/files")?,
                next: page.next,
            })),
            Err(failed) if token.is_some() && failed.status == StatusCode::BAD_REQUEST => Ok(None),
            Err(failed) => Err(failed.error()),
        }
    }

    /// One `drives.list` page: the shared drives' ids.
    pub(super) async fn drives_page(
        &self,
        token: Option<&str>,
    ) -> Result<Option<(Vec<String>, Option<String>)>, ConnectorError> {
        let url = self.drive.url("/drives")?;
        let pages = Paginator::new(
            self.drive.clone(),
            PageStyle::GOOGLE,
            move |api: &ApiClient, token: Option<&str>| {
                Ok(api
                    .get(url.clone())
                    .what("drives.list")
                    .query("pageSize", "100")
                    .query("fields", "nextPageToken,drives(id,name)")
                    .query_opt("pageToken", token))
            },
        );
        match pages.try_page(token).await? {
            Ok(page) => {
                let drives: Vec<Value> = page.items("/drives")?;
                let ids = drives
                    .iter()
                    .filter_map(|d| d.get("id")?.as_str().map(str::to_owned))
                    .collect();
                Ok(Some((ids, page.next)))
            }
            Err(failed) if token.is_some() && failed.status == StatusCode::BAD_REQUEST => Ok(None),
            Err(failed) => Err(failed.error()),
        }
    }

    /// One `changes.list` page from `token`.
    pub(super) async fn changes_page(
        &self,
        token: &str,
        all_drives: bool,
        page_size: usize,
    ) -> Result<ChangesPage, ConnectorError> {
        let url = self.drive.url("/changes")?;
        let response = self
            .drive
            .get(url)
            .what("changes.list")
            .query("pageToken", token)
            .query("pageSize", &page_size.to_string())
            .query("includeRemoved", "true")
            .query("supportsAllDrives", "true")
            .query(
                "includeItemsFromAllDrives",
                if all_drives { "true" } else { "false" },
            )
            .query(
                "fields",
                &format!(
                    "nextPageToken,newStartPageToken,\
                     changes(changeType,fileId,removed,time,driveId,file({FILE_FIELDS}))"
                ),
            )
            .send()
            .await?;
        if matches!(
            response.status,
            StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::GONE
        ) {
            tracing::warn!(status = %response.status, reason = ?error_reason(response.body()),
                "Drive refused the change page token");
            return Ok(ChangesPage::Rejected);
        }
        let body: Value = response.error_for_status()?.json()?;
        let changes: Vec<Change> = match body.get("changes") {
            None | Some(Value::Null) => Vec::new(),
            Some(list) => serde_json::from_value(list.clone()).map_err(|error| {
                ConnectorError::Protocol(format!("changes.list: {error}"))
            })?,
        };
        let text = |key: &str| {
            body.get(key)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        };
        let (next, new_start) = (text("nextPageToken"), text("newStartPageToken"));
        if next.is_none() && new_start.is_none() {
            return Err(ConnectorError::Protocol(
                "changes.list gave neither nextPageToken nor newStartPageToken".into(),
            ));
        }
        if next.as_deref() == Some(token) {
            return Err(ConnectorError::Protocol(
                "changes.list does not advance".into(),
            ));
        }
        Ok(ChangesPage::Page {
            changes,
            next,
            new_start,
        })
    }

    /// `files.get`; `None` when the file is gone or this user cannot see it.
    pub(super) async fn file(
        &self,
        id: &str,
        fields: &str,
    ) -> Result<Option<DriveFile>, ConnectorError> {
        let url = self.drive.url(&format!("/files/{}", encode(id)))?;
        let response = self
            .drive
            .get(url)
            .what("files.get")
            .query("supportsAllDrives", "true")
            .query("fields", fields)
            .send()
            .await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(response.error_for_status()?.json()?))
    }

    /// A shared drive's name (`drives.get`).
    pub(super) async fn drive_name(&self, id: &str) -> Result<Option<String>, ConnectorError> {
        let url = self.drive.url(&format!("/drives/{}", encode(id)))?;
        let response = self
            .drive
            .get(url)
            .what("drives.get")
            .query("fields", "id,name")
            .send()
            .await?;
        if response.status == StatusCode::NOT_FOUND || response.status == StatusCode::FORBIDDEN {
            return Ok(None);
        }
        let body: Value = response.error_for_status()?.json()?;
        Ok(body.get("name").and_then(Value::as_str).map(str::to_owned))
    }

    /// Every permission of a file (`permissions.list`, paged); `Ok(Err)`: not readable.
    pub(super) async fn permissions(
        &self,
        id: &str,
    ) -> Result<Result<Vec<Permission>, String>, ConnectorError> {
        let url = self.drive.url(&format!("/files/{}/permissions", encode(id)))?;
        let pages = Paginator::new(
            self.drive.clone(),
            PageStyle::GOOGLE,
            move |api: &ApiClient, token: Option<&str>| {
                Ok(api
                    .get(url.clone())
                    .what("permissions.list")
                    .query("supportsAllDrives", "true")
                    .query("pageSize", PERMISSIONS_PAGE)
                    .query(
                        "fields",
                        "nextPageToken,permissions(id,type,emailAddress,domain,role)",
                    )
                    .query_opt("pageToken", token))
            },
        );
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PERMISSION_PAGES {
            let page = match pages.try_page(token.as_deref()).await? {
                Ok(page) => page,
                Err(failed) => {
                    return match file_failure(&failed) {
                        Some(message) => Ok(Err(message)),
                        None => Err(failed.error()),
                    }
                }
            };
            all.extend(page.items::<Permission>("/permissions")?);
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(Ok(all)),
            }
        }
        Ok(Ok(all))
    }

    /// `files.export` as text (`Ok(Err)`: this file cannot be exported).
    pub(super) async fn export(
        &self,
        id: &str,
        mime: &str,
    ) -> Result<Result<String, String>, ConnectorError> {
        let url = self.drive.url(&format!("/files/{}/export", encode(id)))?;
        let response = self
            .drive
            .get(url)
            .what("files.export")
            .header(ACCEPT, HeaderValue::from_static("*/*"))
            .query("mimeType", mime)
            .send()
            .await?;
        if !response.status.is_success() {
            return match file_failure(&response) {
                Some(message) => Ok(Err(message)),
                None => Err(response.error()),
            };
        }
        let body = response.into_body();
        if body.len() > MAX_EXPORT_BYTES {
            return Ok(Err("the export is larger than 10 MB".into()));
        }
        Ok(Ok(String::from_utf8_lossy(&body)
            .trim_start_matches('\u{feff}')
            .to_owned()))
    }

    /// Every sheet of a spreadsheet (Sheets API), titles and rows, in sheet order.
    pub(super) async fn sheets(
        &self,
        id: &str,
    ) -> Result<Result<Vec<(String, Vec<Vec<String>>)>, String>, ConnectorError> {
        let url = self.sheets.url(&format!("/spreadsheets/{}", encode(id)))?;
        let response = self
            .sheets
            .get(url)
            .what("spreadsheets.get")
            .query("fields", "sheets.properties(title,index,sheetType)")
            .send()
            .await?;
        if !response.status.is_success() {
            return match file_failure(&response) {
                Some(message) => Ok(Err(message)),
                None => Err(response.error()),
            };
        }
        let body: Value = response.json()?;
        let mut titles: Vec<(i64, String)> = body
            .get("sheets")
            .and_then(Value::as_array)
            .map(|sheets| {
                sheets
                    .iter()
                    .filter_map(|sheet| {
                        let properties = sheet.get("properties")?;
                        // Charts and data-source sheets have no cells to read.
                        let kind = properties.get("sheetType").and_then(Value::as_str);
                        if kind.is_some_and(|k| k != "GRID") {
                            return None;
                        }
                        let title = properties.get("title")?.as_str()?.to_owned();
                        let index = properties.get("index").and_then(Value::as_i64).unwrap_or(0);
                        Some((index, title))
                    })
                    .collect()
            })
            .unwrap_or_default();
        titles.sort();
        titles.truncate(MAX_SHEETS);
        let mut sheets = Vec::new();
        for chunk in titles.chunks(SHEETS_PER_CALL) {
            let url = self
                .sheets
                .url(&format!("/spreadsheets/{}/values:batchGet", encode(id)))?;
            let mut call = self
                .sheets
                .get(url)
                .what("spreadsheets.values.batchGet")
                .query("majorDimension", "ROWS")
                .query("valueRenderOption", "FORMATTED_VALUE");
            for (_, title) in chunk {
                call = call.query("ranges", &sheet_range(title));
            }
            let response = call.send().await?;
            if !response.status.is_success() {
                return match file_failure(&response) {
                    Some(message) => Ok(Err(message)),
                    None => Err(response.error()),
                };
            }
            let body: Value = response.json()?;
            let ranges = body
                .get("valueRanges")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for ((_, title), range) in chunk.iter().zip(ranges.iter()) {
                sheets.push((title.clone(), cell_rows(range.get("values"))));
            }
        }
        Ok(Ok(sheets))
    }

    /// A binary's bytes (`alt=media`) spooled to disk; `Ok(Err)`: not downloadable.
    pub(super) async fn media(
        &self,
        file: &DriveFile,
        limits: &FileLimits,
    ) -> Result<Result<Downloaded, String>, ConnectorError> {
        let url = self.drive.url(&format!("/files/{}", encode(&file.id)))?;
        let sent = self
            .drive
            .get(url)
            .what("files.get alt=media")
            .header(ACCEPT, HeaderValue::from_static("*/*"))
            .query("alt", "media")
            .query("supportsAllDrives", "true")
            .send_stream()
            .await?;
        match sent {
            Download::Body(response) => Ok(Ok(files::from_response(response, &file.name, limits)
                .await
                .map_err(ConnectorError::from)?)),
            Download::Failed(failed) => match file_failure(&failed) {
                Some(message) => Ok(Err(message)),
                None => Err(failed.error()),
            },
            Download::RefusedHop => Ok(Err("the download redirect was refused".into())),
        }
    }
}

/// A path segment (Drive ids are URL-safe already; this keeps a hostile one in its segment).
fn encode(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
