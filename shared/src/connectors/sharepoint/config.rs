//! The SharePoint/OneDrive connector's configuration: which sites (by URL or id), which
//! document libraries, which folders, whose OneDrive, site pages, permissions, file limits.
//! Validated without the network.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use super::super::kit::files::default_max_file_bytes;
use super::super::microsoft::TenantId;
use super::super::registry::SourceConfig;
use super::super::{ConnectorError, DEFAULT_BATCH_SIZE};

const MAX_BATCH_SIZE: usize = 200;
const MAX_LIST: usize = 100;
const MAX_TEXT: usize = 400;
/// Larger files are never downloaded whatever the configuration says.
pub(super) const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// SharePoint Online hosts (commercial, GCC High/DoD, China); SharePoint Online has no
/// custom domains, so a site URL elsewhere is a mistake (or on-premises SharePoint, which
/// Graph does not serve).
const SHAREPOINT_SUFFIXES: &[&str] = &[
    ".sharepoint.com",
    ".sharepoint.us",
    ".sharepoint-mil.us",
    ".sharepoint.cn",
];

/// What a SharePoint/OneDrive connector syncs: document libraries of `sites` (all of them
/// unless `drives` names some), their site pages, and the OneDrive of `user_drives`. With a
/// delegated `microsoft` connection and neither, the signed-in user's OneDrive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharepointConfig {
    /// The Entra tenant (GUID or domain); required with client credentials.
    #[serde(default)]
    pub tenant_id: Option<TenantId>,
    /// Sites by URL (`https://contoso.sharepoint.com/sites/Eng`) or Graph site id
    /// (`contoso.sharepoint.com,<site guid>,<web guid>`).
    #[serde(default)]
    pub sites: Vec<String>,
    /// Only these document libraries of each site, by name (`Documents`) or drive id.
    /// Default: every document library.
    #[serde(default)]
    pub drives: Vec<String>,
    /// Only files below these folders of each library (`/Specs`, `/Shared/Policies`).
    #[serde(default)]
    pub folder_paths: Vec<String>,
    /// The sites' modern pages (web parts as markdown). Default true.
    #[serde(default = "yes")]
    pub include_site_pages: bool,
    /// The OneDrive of these users (user principal names or ids).
    #[serde(default)]
    pub user_drives: Vec<String>,
    /// Each file's `acl` from its permissions (one more call per file, 5 resource units
    /// with SharePoint's accounting). Default false: no acl.
    #[serde(default)]
    pub include_permissions: bool,
    /// Only files with these extensions (`pdf`, `docx`); all when empty.
    #[serde(default)]
    pub include_extensions: Vec<String>,
    /// Never files with these extensions, applied after `include_extensions`.
    #[serde(default)]
    pub exclude_extensions: Vec<String>,
    /// Larger files are skipped (counted, not failed). Default 50 MiB.
    #[serde(default = "default_max_file_bytes")]
    #[schemars(range(min = 1, max = 536870912))]
    pub max_file_bytes: u64,
    /// Delta items (or pages) per pull: default 50, 1..=200.
    #[serde(default)]
    #[schemars(range(min = 1, max = 200))]
    pub batch_size: Option<usize>,
}

fn yes() -> bool {
    true
}

/// What `{}` deserialises to.
impl Default for SharepointConfig {
    fn default() -> Self {
        Self {
            tenant_id: None,
            sites: Vec::new(),
            drives: Vec::new(),
            folder_paths: Vec::new(),
            include_site_pages: true,
            user_drives: Vec::new(),
            include_permissions: false,
            include_extensions: Vec::new(),
            exclude_extensions: Vec::new(),
            max_file_bytes: default_max_file_bytes(),
            batch_size: None,
        }
    }
}

/// A configured site: a URL's host and server-relative path, or a Graph site id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum SiteRef {
    Path { host: String, path: String },
    Id(String),
}

impl SiteRef {
    /// `site:<url or id>`: the source id of a site's failure in a run.
    pub(super) fn label(&self) -> String {
        match self {
            SiteRef::Path { host, path } => format!("site:https://{host}{path}"),
            SiteRef::Id(id) => format!("site:{id}"),
        }
    }
}

impl SourceConfig for SharepointConfig {
    fn check(&self) -> Result<(), ConnectorError> {
        self.validate()
    }
}

impl SharepointConfig {
    pub fn validate(&self) -> Result<(), ConnectorError> {
        let invalid = |message: String| Err(ConnectorError::Config(message));
        for (field, list) in [
            ("sites", &self.sites),
            ("drives", &self.drives),
            ("folder_paths", &self.folder_paths),
            ("user_drives", &self.user_drives),
            ("include_extensions", &self.include_extensions),
            ("exclude_extensions", &self.exclude_extensions),
        ] {
            if list.len() > MAX_LIST {
                return invalid(format!("{field} has more than {MAX_LIST} entries"));
            }
            if let Some(long) = list.iter().find(|v| v.len() > MAX_TEXT || v.trim().is_empty()) {
                return invalid(format!("{field} has an empty or too long entry {long:?}"));
            }
        }
        for raw in &self.sites {
            site_ref(raw)?;
        }
        for drive in &self.drives {
            if drive.chars().any(char::is_control) {
                return invalid(format!("drive {drive:?} has control characters"));
            }
        }
        for path in &self.folder_paths {
            folder_path(path)?;
        }
        for user in &self.user_drives {
            let ok = user
                .trim()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "@.-_'+".contains(c));
            if !ok {
                return invalid(format!(
                    "user_drives entry {user:?} is not a user principal name or id"
                ));
            }
        }
        for ext in self.include_extensions.iter().chain(&self.exclude_extensions) {
            let ext = ext.trim().trim_start_matches('.');
            if ext.is_empty() || !ext.chars().all(|c| c.is_ascii_alphanumeric()) {
                return invalid(format!("{ext:?} is not a file extension"));
            }
        }
        if !self.drives.is_empty() && self.sites.is_empty() {
            return invalid("drives selects libraries of sites: name some sites".into());
        }
        if self.max_file_bytes == 0 || self.max_file_bytes > MAX_FILE_BYTES {
            return invalid(format!(
                "max_file_bytes must be within 1..={MAX_FILE_BYTES}"
            ));
        }
        if let Some(size) = self.batch_size {
            if !(1..=MAX_BATCH_SIZE).contains(&size) {
                return invalid(format!("batch_size must be within 1..={MAX_BATCH_SIZE}"));
            }
        }
        Ok(())
    }

    pub(super) fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    /// The configured sites, parsed, without repeats.
    pub(super) fn site_refs(&self) -> Vec<SiteRef> {
        let mut out: Vec<SiteRef> = Vec::new();
        for site in self.sites.iter().filter_map(|raw| site_ref(raw).ok()) {
            if !out.contains(&site) {
                out.push(site);
            }
        }
        out
    }

    /// The configured folders as `/a/b` (lower-cased for comparison).
    pub(super) fn folders(&self) -> Vec<String> {
        self.folder_paths
            .iter()
            .filter_map(|p| folder_path(p).ok())
            .map(|p| p.to_lowercase())
            .collect()
    }

    pub(super) fn users(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for user in self.user_drives.iter().map(|u| u.trim().to_owned()) {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(&user)) {
                out.push(user);
            }
        }
        out
    }

    /// Whether a library (drive) is selected: every one, or by name or id.
    pub(super) fn drive_selected(&self, id: &str, name: &str) -> bool {
        self.drives.is_empty()
            || self
                .drives
                .iter()
                .any(|d| d.trim() == id || d.trim().eq_ignore_ascii_case(name))
    }

    /// Whether a file of this name is synced (extension filters).
    pub(super) fn extension_allowed(&self, name: &str) -> bool {
        let ext = name
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .unwrap_or_default();
        let matches = |list: &[String]| {
            list.iter()
                .any(|e| e.trim().trim_start_matches('.').eq_ignore_ascii_case(&ext))
        };
        (self.include_extensions.is_empty() || matches(&self.include_extensions))
            && !matches(&self.exclude_extensions)
    }
}

/// A site URL (https on a SharePoint Online host; its path is the site's server-relative
/// path) or a Graph site id (`host,guid,guid`).
pub(super) fn site_ref(raw: &str) -> Result<SiteRef, ConnectorError> {
    let raw = raw.trim();
    let invalid = |why: &str| {
        Err(ConnectorError::Config(format!(
            "site {raw:?} {why}"
        )))
    };
    if !raw.contains("://") {
        let parts: Vec<&str> = raw.split(',').collect();
        let guid = |s: &str| {
            s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        };
        if parts.len() == 3 && is_sharepoint_host(parts[0]) && guid(parts[1]) && guid(parts[2]) {
            return Ok(SiteRef::Id(raw.to_ascii_lowercase()));
        }
        return invalid("is neither a site URL nor a site id (host,site guid,web guid)");
    }
    let Ok(url) = Url::parse(raw) else {
        return invalid("is not a URL");
    };
    if url.scheme() != "https" {
        return invalid("must use https");
    }
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        return invalid("must not carry credentials or a port");
    }
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return invalid("has no host");
    };
    if !is_sharepoint_host(&host) {
        return invalid("is not on a SharePoint Online host (*.sharepoint.com)");
    }
    let path = url.path().trim_end_matches('/');
    let decoded = percent_decode(path);
    if decoded.contains("..") || decoded.chars().any(char::is_control) || decoded.contains(':') {
        return invalid("has an unusable path");
    }
    Ok(SiteRef::Path {
        host,
        path: if decoded.is_empty() { "/".into() } else { decoded },
    })
}

fn is_sharepoint_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    SHAREPOINT_SUFFIXES.iter().any(|suffix| {
        host.strip_suffix(suffix).is_some_and(|tenant| {
            !tenant.is_empty()
                && tenant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    })
}

fn percent_decode(path: &str) -> String {
    url::form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `/Specs/v2` from `Specs/v2/`, `/Specs//v2`; no `..`.
pub(super) fn folder_path(raw: &str) -> Result<String, ConnectorError> {
    let parts: Vec<&str> = raw
        .trim()
        .split('/')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() || parts.iter().any(|p| *p == ".." || *p == ".") {
        return Err(ConnectorError::Config(format!(
            "folder_paths entry {raw:?} is not a folder path like /Specs"
        )));
    }
    Ok(format!("/{}", parts.join("/")))
}
