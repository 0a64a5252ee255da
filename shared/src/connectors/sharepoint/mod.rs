//! SharePoint document libraries, site pages and OneDrive, kept current from Graph's drive
//! delta (Microsoft Graph v1.0).
//!
//! Calls (learn.microsoft.com/graph/api):
//! - sites: `GET /sites/{hostname}:/{server-relative-path}` (a configured URL) or
//!   `/sites/{id}`, then `GET /sites/{id}/drives` (its document libraries, all unless
//!   `drives` names some); OneDrives: `GET /users/{upn}/drive`, or `GET /me/drive` with a
//!   delegated connection and nothing else configured. Re-resolved at the start of every
//!   pass (libraries come and go).
//! - files: `GET /drives/{id}/root/delta?$select=…&$top=…`, one page per pull, following
//!   `@odata.nextLink` (kept in the checkpoint, so a killed sync resumes at its page), and
//!   the whole `@odata.deltaLink` kept per drive for the next sync. **Every** item delta
//!   returns is applied (never filtered by `lastModifiedDateTime`: a copied file keeps its
//!   old one). Items with the `deleted` facet become tombstones (`Batch::deleted`); delta
//!   reports a deleted folder's descendants too. Delta gives no paths: each drive's folder
//!   tree (id → parent, name) is kept in the checkpoint and paths are names up it. A folder
//!   whose name or parent changed gets its subtree walked (`/items/{id}/children`) so the
//!   files below get their new paths, or leave the configured `folder_paths` (tombstones).
//!   410 Gone (`resyncRequired`, …) on a delta link: the drive is enumerated again from a
//!   fresh delta; the engine's prune after the completed sync removes what is gone.
//! - content: `GET /drives/{d}/items/{i}/content` → 302 to a pre-authenticated download
//!   URL on another host, followed by the guarded client without the Authorization header;
//!   streamed into a spool (`kit::files`), capped by `max_file_bytes`. A file whose
//!   fingerprint (content hash `quickXorHash`, else cTag/eTag; name, path, URL, ACL) matches
//!   the last delivery is not downloaded again (delta also reports metadata-only changes).
//! - site pages (`include_site_pages`): `GET /sites/{id}/pages/microsoft.graph.sitePage
//!   ?$expand=canvasLayout`; when the list refuses the expand (400), each page on its own
//!   (`/pages/{id}/microsoft.graph.sitePage?$expand=canvasLayout`). No delta for pages:
//!   listed every pass, unchanged `eTag`s skipped, removed pages go with the prune.
//! - ACL (`include_permissions`): `GET /drives/{d}/items/{i}/permissions` per delivered
//!   file: users → `user:<email>`, Entra/SharePoint groups → `group:<email or name>`,
//!   anonymous links → `anyone`, organisation links → `domain:<tenant>`. Off: no ACL.
//! - a site or drive answering 403, 404 or 423 (locked) is a per-site failure in the run
//!   (`site:<url>` / `user:<upn>` / `drive:<id>`); the others sync. The slim listing then
//!   fails, so the prune is skipped rather than deleting that site's documents.

mod checkpoint;
mod client;
mod config;
mod convert;
mod listing;
mod pages;
mod pass;
#[cfg(test)]
mod tests;

use serde_json::Value;
use url::Url;

use super::document::Document;
use super::kit::files::FileLimits;
use super::kit::SourceAuth;
use super::microsoft::{self, GraphAuth};
use super::{Batch, Connector, ConnectorError, DocumentFailure, IdPage, SkippedFile};
use crate::http::{GuardedClient, RetryPolicy};
use checkpoint::{Checkpoint, Task};
use client::GraphApi;
use config::SiteRef;

pub use config::SharepointConfig;

pub const SOURCE: &str = "sharepoint";
const TITLE: &str = "SharePoint and OneDrive";

/// The registry's description of this source.
pub fn source() -> super::Source {
    use super::registry::{ConnectionProvider, CredentialKind};
    super::Source::new::<SharepointConfig>(SOURCE, TITLE, |context| {
        let config = context.typed_config::<SharepointConfig>()?;
        let auth = GraphAuth::from_context(&context, config.tenant_id.as_ref())?;
        let base = microsoft::graph_base(&context)?;
        let connector = SharepointConnector::with_auth(
            &context.connector_id,
            config,
            auth,
            context.http,
            context.retry,
            base,
        )?;
        Ok(Box::new(connector))
    })
    .accepting(&[CredentialKind::Connection, CredentialKind::ClientCredentials])
    .with_provider(ConnectionProvider::Only("microsoft"))
}

pub struct SharepointConnector {
    /// `connector:<id>`, the id space of this connector's documents.
    scope: String,
    config: SharepointConfig,
    graph: GraphApi,
    app_only: bool,
    sites: Vec<SiteRef>,
    users: Vec<String>,
    /// The signed-in user's OneDrive (`/me/drive`).
    me: bool,
    /// `folder_paths`, normalised and lower-cased.
    folders: Vec<String>,
    limits: FileLimits,
}

impl std::fmt::Debug for SharepointConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharepointConnector")
            .field("scope", &self.scope)
            .field("sites", &self.sites)
            .field("users", &self.users)
            .field("app_only", &self.app_only)
            .finish_non_exhaustive()
    }
}

/// What one pull gathered.
#[derive(Default)]
struct Work {
    documents: Vec<Document>,
    failures: Vec<DocumentFailure>,
    skipped: Vec<SkippedFile>,
    deleted: Vec<String>,
}

impl SharepointConnector {
    /// `credentials` as a [`GraphAuth`] (client credentials become app-only tokens from
    /// `login_base`); `graph_base` is Graph's (deployment configuration).
    pub fn new(
        connector_id: &str,
        config: SharepointConfig,
        credentials: impl Into<SourceAuth>,
        http: GuardedClient,
        retry: RetryPolicy,
        graph_base: Url,
        login_base: Url,
    ) -> Result<Self, ConnectorError> {
        let auth = GraphAuth::new(
            credentials.into(),
            config.tenant_id.as_ref(),
            &login_base,
            http.clone(),
        )?;
        Self::with_auth(connector_id, config, auth, http, retry, graph_base)
    }

    pub fn with_auth(
        connector_id: &str,
        config: SharepointConfig,
        auth: GraphAuth,
        http: GuardedClient,
        retry: RetryPolicy,
        graph_base: Url,
    ) -> Result<Self, ConnectorError> {
        if connector_id.trim().is_empty() {
            return Err(ConnectorError::Config("the connector id is empty".into()));
        }
        config.validate()?;
        let sites = config.site_refs();
        let users = config.users();
        if auth.app_only && sites.is_empty() && users.is_empty() {
            return Err(ConnectorError::Config(
                "app-only (client credentials) access has no signed-in user: name sites or user_drives"
                    .into(),
            ));
        }
        let me = !auth.app_only && sites.is_empty() && users.is_empty();
        let api = microsoft::api_client(TITLE, connector_id, graph_base, auth.auth, http, retry);
        Ok(Self {
            scope: format!("connector:{connector_id}"),
            folders: config.folders(),
            limits: FileLimits::new(config.max_file_bytes),
            config,
            graph: GraphApi { api },
            app_only: auth.app_only,
            sites,
            users,
            me,
        })
    }

    /// What organisation-wide sharing links become: `domain:<tenant>` (the configured
    /// tenant, else the first site's SharePoint host).
    fn tenant_label(&self) -> String {
        if let Some(tenant) = &self.config.tenant_id {
            return tenant.as_str().to_owned();
        }
        self.sites
            .iter()
            .find_map(|site| match site {
                SiteRef::Path { host, .. } => Some(host.clone()),
                SiteRef::Id(id) => id.split(',').next().map(str::to_owned),
            })
            .unwrap_or_else(|| "organization".into())
    }
}

#[async_trait::async_trait]
impl Connector for SharepointConnector {
    fn source(&self) -> &'static str {
        SOURCE
    }

    /// Resolves every site (and its libraries) and user drive once; a refusal names the
    /// permission to grant.
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        let refused = |label: String, refusal: client::Refusal| {
            let message = format!("{label}: {}", refusal.describe(self.app_only));
            if refusal.status == 403 {
                ConnectorError::Unauthorized(message)
            } else {
                ConnectorError::Config(message)
            }
        };
        for site in &self.sites {
            let found = self.graph.site(site).await?.map_err(|r| refused(site.label(), r))?;
            self.graph
                .site_drives(&found.id)
                .await?
                .map_err(|r| refused(site.label(), r))?;
        }
        for user in &self.users {
            self.graph
                .user_drive(Some(user))
                .await?
                .map_err(|r| refused(format!("user:{user}"), r))?;
        }
        if self.me {
            self.graph
                .user_drive(None)
                .await?
                .map_err(|r| refused("user:me".into(), r))?;
        }
        Ok(())
    }

    async fn pull(&self, checkpoint: Option<&Value>) -> Result<Batch, ConnectorError> {
        let mut state = match checkpoint {
            Some(value) => Checkpoint::parse(value)?,
            None => Checkpoint::new(),
        };
        if state.tasks.is_empty() {
            state.tasks.push_back(Task::Resolve);
        }
        let mut work = Work::default();
        self.step(&mut state, &mut work).await?;
        let done = state.tasks.is_empty();
        tracing::debug!(
            documents = work.documents.len(),
            deleted = work.deleted.len(),
            failures = work.failures.len(),
            skipped = work.skipped.len(),
            done,
            "SharePoint batch"
        );
        Ok(Batch {
            documents: work.documents,
            failures: work.failures,
            skipped: work.skipped,
            deleted: work.deleted,
            checkpoint: state.to_value(),
            done,
        })
    }

    async fn list_ids(&self, cursor: Option<&str>) -> Result<IdPage, ConnectorError> {
        self.list_page(cursor).await
    }
}
