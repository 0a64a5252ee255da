//! Where documents go: a RAG pipeline's webhook, a RAGFlow dataset (deployed), or a local
//! directory (`tributary-local` only).

pub mod directory;
mod pins;
pub mod ragflow;
pub mod webhook;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::connectors::document::Document;
use crate::vault::{Vault, VaultError};

pub use directory::DirectorySink;
pub use pins::{
    OperatorPins, RAGFLOW_PINNED_BASE_URLS_ENV, RAGFLOW_PINNED_DATASETS_ENV,
    WEBHOOK_PINNED_URLS_ENV,
};
pub use ragflow::RagflowSink;
pub use webhook::WebhookSink;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Local I/O failed (directory sink) or a document could not be encoded. Treated as
    /// transient: a full disk or a busy file may clear; the caller's retry budget bounds it.
    #[error("sink i/o error: {0}")]
    Io(String),
    /// The sink refused the request (a 4xx other than 408/429, or an invalid document id):
    /// retrying the same request will not help.
    #[error("sink rejected the request with status {status}: {message}")]
    Rejected { status: u16, message: String },
    /// The sink could not be reached or is overloaded (network error, 5xx, 408, 429): retry
    /// later.
    #[error("sink unavailable: {0}")]
    Unavailable(String),
    /// The sink configuration is not usable in this deployment.
    #[error("sink misconfigured: {0}")]
    Config(String),
    /// The sink has no credential of its own and the operator's may not be sent where it
    /// points: the sink's `api_key`/`secret` must be given (again).
    #[error("sink_credentials_required: {0}")]
    CredentialsRequired(String),
}

impl SinkError {
    /// Whether retrying the same delivery later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SinkError::Unavailable(_) | SinkError::Io(_))
    }

    /// The API error code for a sink that cannot be built.
    pub fn code(&self) -> &'static str {
        match self {
            SinkError::CredentialsRequired(_) => "sink_credentials_required",
            _ => "invalid_sink",
        }
    }
}

#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// Delivers (creates or replaces by `id`) every document; idempotent.
    async fn deliver(&self, documents: &[Document]) -> Result<(), SinkError>;
    /// Removes documents by id; removing a missing one is not an error.
    async fn delete(&self, ids: &[String]) -> Result<(), SinkError>;
    /// A short name for logs and metrics: `"directory"`, `"webhook"` or `"ragflow"`.
    fn kind(&self) -> &'static str;
}

/// A sink as it is stored and shown: JSON `{"type": "directory", "path": "..."}`,
/// `{"type": "webhook", "url": "https://..."}` or
/// `{"type": "ragflow", "base_url": "https://...", "dataset_id": "..."}`. Never holds a
/// credential: the sink's own secret is sealed beside it (see [`SinkRequest`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    Directory {
        path: PathBuf,
    },
    Webhook {
        url: url::Url,
    },
    Ragflow {
        base_url: url::Url,
        dataset_id: String,
    },
}

/// A sink's own credential (a RAGFlow API key or a webhook signing secret): write-only,
/// never serialized, redacted in `Debug`/`Display`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SinkSecret(String);

impl SinkSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SinkSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SinkSecret(<redacted>)")
    }
}

impl fmt::Display for SinkSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Shortest per-sink webhook secret accepted.
pub const MIN_WEBHOOK_SECRET_CHARS: usize = 16;

/// The sink JSON of a create/update request: a [`SinkConfig`] plus, optionally, the sink's
/// own credential (`"api_key"` for RAGFlow, `"secret"` for a webhook).
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkRequest {
    Directory {
        path: PathBuf,
    },
    Webhook {
        url: url::Url,
        secret: Option<SinkSecret>,
    },
    Ragflow {
        base_url: url::Url,
        dataset_id: String,
        api_key: Option<SinkSecret>,
    },
}

impl SinkRequest {
    /// Whether the request carries the sink's own credential.
    pub fn has_credential(&self) -> bool {
        matches!(
            self,
            SinkRequest::Webhook {
                secret: Some(_),
                ..
            } | SinkRequest::Ragflow {
                api_key: Some(_),
                ..
            }
        )
    }

    /// What is stored (and shown) and the credential to seal.
    pub fn into_parts(self) -> (SinkConfig, Option<SinkSecret>) {
        match self {
            SinkRequest::Directory { path } => (SinkConfig::Directory { path }, None),
            SinkRequest::Webhook { url, secret } => (SinkConfig::Webhook { url }, secret),
            SinkRequest::Ragflow {
                base_url,
                dataset_id,
                api_key,
            } => (
                SinkConfig::Ragflow {
                    base_url,
                    dataset_id,
                },
                api_key,
            ),
        }
    }
}

impl From<SinkConfig> for SinkRequest {
    fn from(config: SinkConfig) -> Self {
        match config {
            SinkConfig::Directory { path } => SinkRequest::Directory { path },
            SinkConfig::Webhook { url } => SinkRequest::Webhook { url, secret: None },
            SinkConfig::Ragflow {
                base_url,
                dataset_id,
            } => SinkRequest::Ragflow {
                base_url,
                dataset_id,
                api_key: None,
            },
        }
    }
}

/// Whose sink it is: the tenant (operator pins are per tenant) and the item its sealed
/// credential is bound to.
#[derive(Clone, Copy, Debug)]
pub enum SinkOwner<'a> {
    Connector {
        workspace_id: &'a str,
        connector_id: &'a str,
    },
    Crawl {
        tenant_id: &'a str,
        job_id: &'a str,
    },
}

impl SinkOwner<'_> {
    pub fn tenant_id(&self) -> &str {
        match self {
            SinkOwner::Connector { workspace_id, .. } => workspace_id,
            SinkOwner::Crawl { tenant_id, .. } => tenant_id,
        }
    }

    /// The vault's associated data: a sealed credential copied onto another tenant's or
    /// another item's sink does not open.
    fn bound_to(&self) -> String {
        match self {
            SinkOwner::Connector {
                workspace_id,
                connector_id,
            } => format!("sink:connector:{workspace_id}:{connector_id}"),
            SinkOwner::Crawl { tenant_id, job_id } => format!("sink:crawl:{tenant_id}:{job_id}"),
        }
    }
}

/// Seals a sink's own credential for storage beside its [`SinkConfig`].
pub fn seal_secret(
    vault: &Vault,
    secret: &SinkSecret,
    owner: &SinkOwner<'_>,
) -> Result<String, VaultError> {
    vault.seal(secret.expose().as_bytes(), &owner.bound_to())
}

fn open_secret(
    vault: &Vault,
    sealed: &str,
    owner: &SinkOwner<'_>,
) -> Result<SinkSecret, SinkError> {
    let plaintext = vault
        .open(sealed, &owner.bound_to())
        .map_err(|error| SinkError::Config(format!("sink credentials: {error}")))?;
    String::from_utf8(plaintext)
        .map(SinkSecret)
        .map_err(|_| SinkError::Config("sink credentials: not text".into()))
}

/// What building a sink needs from the deployment.
#[derive(Clone)]
pub struct SinkEnvironment {
    /// True only in `tributary-local`: a deployed function must not write where a
    /// configuration tells it to.
    pub directory_sinks_allowed: bool,
    /// The operator's webhook HMAC key (`TRIBUTARY_WEBHOOK_SINK_SECRET`): only for webhook
    /// sinks without their own secret whose URL is in `webhook_pinned_urls`.
    pub webhook_secret: Option<Vec<u8>>,
    /// The client webhook and RAGFlow requests go through; the caller passes an SSRF-guarded
    /// one.
    pub http: crate::http::GuardedClient,
    /// The operator's RAGFlow API key (`TRIBUTARY_RAGFLOW_API_KEY`): only for RAGFlow sinks
    /// without their own key, at a pinned base URL, into a dataset pinned to the tenant.
    pub ragflow_api_key: Option<String>,
    /// The operator pins: where the operator's credentials may be sent.
    pub pins: OperatorPins,
    /// Opens sealed per-sink credentials (`TRIBUTARY_ENCRYPTION_KEY`); a sealed credential
    /// without it is a configuration error.
    pub vault: Option<Vault>,
}

impl fmt::Debug for SinkEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkEnvironment")
            .field("directory_sinks_allowed", &self.directory_sinks_allowed)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "ragflow_api_key",
                &self.ragflow_api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("pins", &self.pins)
            .finish_non_exhaustive()
    }
}

impl SinkEnvironment {
    /// Builds a stored sink: its sealed credential (if any) opened for its owner, else the
    /// operator's where pinned.
    pub fn build_stored(
        &self,
        config: &SinkConfig,
        sealed: Option<&str>,
        owner: &SinkOwner<'_>,
    ) -> Result<Arc<dyn Sink>, SinkError> {
        let secret = match sealed {
            Some(sealed) => {
                let vault = self.vault.as_ref().ok_or_else(|| {
                    SinkError::Config(format!(
                        "sealed sink credentials need {}",
                        crate::vault::ENCRYPTION_KEY
                    ))
                })?;
                Some(open_secret(vault, sealed, owner)?)
            }
            None => None,
        };
        build(config, secret.as_ref(), owner.tenant_id(), self)
    }
}

/// Builds the sink a configuration names, with the sink's own credential when it has one.
/// `Config` errors: a directory sink where they are not allowed (or with an empty path); a
/// webhook or RAGFlow URL that is not http(s) or carries credentials; a RAGFlow dataset id
/// outside `[A-Za-z0-9_-]{1,64}`; a webhook secret shorter than
/// [`MIN_WEBHOOK_SECRET_CHARS`] or an empty API key. `CredentialsRequired`: no credential of
/// its own, and the operator's is not pinned to this URL (and, for RAGFlow, this tenant's
/// dataset).
pub fn build(
    config: &SinkConfig,
    secret: Option<&SinkSecret>,
    tenant_id: &str,
    env: &SinkEnvironment,
) -> Result<Arc<dyn Sink>, SinkError> {
    check_config(config, env)?;
    match config {
        SinkConfig::Directory { path } => Ok(Arc::new(DirectorySink::new(path.clone()))),
        SinkConfig::Webhook { url } => {
            let secret = match secret {
                Some(secret) if secret.expose().chars().count() < MIN_WEBHOOK_SECRET_CHARS => {
                    return Err(SinkError::Config(format!(
                        "the webhook sink secret needs at least {MIN_WEBHOOK_SECRET_CHARS} characters"
                    )))
                }
                Some(secret) => secret.expose().as_bytes().to_vec(),
                None => match &env.webhook_secret {
                    Some(operator) if !operator.is_empty() && env.pins.webhook_pinned(url) => {
                        operator.clone()
                    }
                    _ => {
                        return Err(SinkError::CredentialsRequired(
                            "this webhook sink has no secret of its own and its url is not \
                             pinned by the operator: give the sink's \"secret\""
                                .into(),
                        ))
                    }
                },
            };
            let file_max_bytes = webhook::file_max_bytes_from(|name| std::env::var(name).ok())?;
            Ok(Arc::new(
                WebhookSink::new(env.http.clone(), url.clone(), secret)
                    .with_file_max_bytes(file_max_bytes),
            ))
        }
        SinkConfig::Ragflow {
            base_url,
            dataset_id,
        } => {
            let api_key = match secret {
                Some(key) if key.expose().trim().is_empty() => {
                    return Err(SinkError::Config(
                        "the ragflow sink api_key is empty".into(),
                    ))
                }
                Some(key) => key.expose().to_owned(),
                None => match &env.ragflow_api_key {
                    Some(key)
                        if !key.trim().is_empty()
                            && env.pins.ragflow_pinned(base_url, tenant_id, dataset_id) =>
                    {
                        key.clone()
                    }
                    _ => {
                        return Err(SinkError::CredentialsRequired(
                            "this ragflow sink has no api_key of its own and the operator has \
                             not pinned its base_url and dataset to this tenant: give the \
                             sink's \"api_key\""
                                .into(),
                        ))
                    }
                },
            };
            Ok(Arc::new(RagflowSink::new(
                env.http.clone(),
                base_url.clone(),
                dataset_id.clone(),
                api_key,
            )))
        }
    }
}

/// The configuration's shape, without credentials: a directory sink only where allowed and
/// with a path; http(s) URLs without credentials; a RAGFlow dataset id in
/// `[A-Za-z0-9_-]{1,64}`.
pub fn check_config(config: &SinkConfig, env: &SinkEnvironment) -> Result<(), SinkError> {
    match config {
        SinkConfig::Directory { path } => {
            if !env.directory_sinks_allowed {
                return Err(SinkError::Config(
                    "directory sinks are only available in tributary-local".into(),
                ));
            }
            if path.as_os_str().is_empty() {
                return Err(SinkError::Config("directory sink path is empty".into()));
            }
            Ok(())
        }
        SinkConfig::Webhook { url } => check_url("webhook sink url", url),
        SinkConfig::Ragflow {
            base_url,
            dataset_id,
        } => {
            check_url("ragflow sink base_url", base_url)?;
            ragflow::validate_dataset_id(dataset_id)
        }
    }
}

/// An http(s) URL without credentials.
pub(crate) fn check_url(what: &str, url: &url::Url) -> Result<(), SinkError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SinkError::Config(format!(
            "{what} must be http or https, not {}",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SinkError::Config(format!(
            "{what} must not carry credentials"
        )));
    }
    Ok(())
}

impl SinkConfig {
    /// The network endpoint this sink sends to, if any (checked by the SSRF policy).
    pub fn endpoint(&self) -> Option<&url::Url> {
        match self {
            SinkConfig::Directory { .. } => None,
            SinkConfig::Webhook { url } => Some(url),
            SinkConfig::Ragflow { base_url, .. } => Some(base_url),
        }
    }

    /// Where the sink's credential goes: a stored credential may only keep being used while
    /// this stays the same (a new host must be given the credential again).
    pub fn credential_target(&self) -> Option<String> {
        match self {
            SinkConfig::Directory { .. } => None,
            SinkConfig::Webhook { url } => {
                Some(format!("webhook {}", url.origin().ascii_serialization()))
            }
            SinkConfig::Ragflow { base_url, .. } => Some(format!(
                "ragflow {}",
                base_url.origin().ascii_serialization()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(directory_sinks_allowed: bool, secret: Option<&[u8]>) -> SinkEnvironment {
        SinkEnvironment {
            directory_sinks_allowed,
            webhook_secret: secret.map(<[u8]>::to_vec),
            http: crate::http::GuardedClient::with_policy(
                crate::http::policy::NetworkPolicy::allow_private(),
            )
            .unwrap(),
            ragflow_api_key: None,
            pins: OperatorPins::default(),
            vault: None,
        }
    }

    fn own(secret: &str) -> SinkSecret {
        SinkSecret::new(secret)
    }

    const TENANT: &str = "tenant-1";

    fn ragflow_env(key: Option<&str>) -> SinkEnvironment {
        SinkEnvironment {
            ragflow_api_key: key.map(str::to_owned),
            ..env(false, None)
        }
    }

    fn ragflow(base_url: &str, dataset_id: &str) -> SinkConfig {
        SinkConfig::Ragflow {
            base_url: url::Url::parse(base_url).unwrap(),
            dataset_id: dataset_id.into(),
        }
    }

    fn webhook(url: &str) -> SinkConfig {
        SinkConfig::Webhook {
            url: url::Url::parse(url).unwrap(),
        }
    }

    #[test]
    fn config_json_shape() {
        let directory: SinkConfig =
            serde_json::from_value(json!({"type": "directory", "path": "/tmp/out"})).unwrap();
        assert_eq!(
            directory,
            SinkConfig::Directory {
                path: "/tmp/out".into()
            }
        );
        let hook: SinkConfig =
            serde_json::from_value(json!({"type": "webhook", "url": "https://rag.example/in"}))
                .unwrap();
        assert_eq!(hook, webhook("https://rag.example/in"));
        assert_eq!(
            serde_json::to_value(&hook).unwrap(),
            json!({"type": "webhook", "url": "https://rag.example/in"})
        );
        assert!(serde_json::from_value::<SinkConfig>(
            json!({"type": "webhook", "url": "https://rag.example/in", "extra": 1})
        )
        .is_err());
        assert!(
            serde_json::from_value::<SinkConfig>(json!({"type": "s3", "bucket": "b"})).is_err()
        );
        assert!(
            serde_json::from_value::<SinkConfig>(json!({"type": "webhook", "url": "nope"}))
                .is_err()
        );
    }

    #[tokio::test]
    async fn build_refuses_directory_sinks_when_not_allowed() {
        let config = SinkConfig::Directory {
            path: "/tmp/out".into(),
        };
        let err = build(&config, None, TENANT, &env(false, Some(b"k")))
            .err()
            .unwrap();
        assert!(matches!(err, SinkError::Config(_)), "{err:?}");
        assert!(!err.is_transient());
        let sink = build(&config, None, TENANT, &env(true, None)).unwrap();
        assert_eq!(sink.kind(), "directory");
        let empty = SinkConfig::Directory { path: "".into() };
        assert!(matches!(
            build(&empty, None, TENANT, &env(true, None)).err().unwrap(),
            SinkError::Config(_)
        ));
    }

    #[tokio::test]
    async fn build_webhook_needs_its_own_secret_or_a_pin_and_http_url() {
        let config = webhook("https://rag.example/in");
        // The operator secret alone is not enough: it is pinned to no URL.
        for deployment in [env(false, None), env(false, Some(b"operator-secret"))] {
            let err = build(&config, None, TENANT, &deployment).err().unwrap();
            assert!(matches!(err, SinkError::CredentialsRequired(_)), "{err:?}");
            assert_eq!(err.code(), "sink_credentials_required");
            assert!(err.to_string().starts_with("sink_credentials_required"));
        }
        let err = build(&config, Some(&own("short")), TENANT, &env(false, None))
            .err()
            .unwrap();
        assert!(matches!(err, SinkError::Config(_)), "{err:?}");
        let secret = own("a-sink-secret-of-its-own");
        for bad in [
            "ftp://rag.example/in",
            "file:///etc/passwd",
            "https://u:p@rag.example/in",
        ] {
            let err = build(&webhook(bad), Some(&secret), TENANT, &env(false, None))
                .err()
                .unwrap();
            assert!(matches!(err, SinkError::Config(_)), "{bad}: {err:?}");
        }
        let sink = build(&config, Some(&secret), TENANT, &env(false, None)).unwrap();
        assert_eq!(sink.kind(), "webhook");
        // Pinned: the operator secret works there, and only there.
        let mut pinned = env(false, Some(b"operator-secret"));
        pinned.pins.webhook_urls = vec![url::Url::parse("https://rag.example/in").unwrap()];
        assert!(build(&config, None, TENANT, &pinned).is_ok());
        for other in ["https://rag.example/other", "https://evil.example/in"] {
            let err = build(&webhook(other), None, TENANT, &pinned).err().unwrap();
            assert!(matches!(err, SinkError::CredentialsRequired(_)), "{other}");
        }
    }

    #[test]
    fn ragflow_config_json_shape() {
        let value = json!({
            "type": "ragflow",
            "base_url": "https://rag.example/",
            "dataset_id": "7898da028a0511efbf750242ac120005"
        });
        let config: SinkConfig = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(
            config,
            ragflow("https://rag.example/", "7898da028a0511efbf750242ac120005")
        );
        assert_eq!(serde_json::to_value(&config).unwrap(), value);
        for bad in [
            json!({"type": "ragflow", "base_url": "https://rag.example/"}),
            json!({"type": "ragflow", "dataset_id": "d"}),
            json!({"type": "ragflow", "base_url": "https://r/", "dataset_id": "d", "api_key": "k"}),
        ] {
            assert!(
                serde_json::from_value::<SinkConfig>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_request_carries_the_secret_and_the_stored_config_does_not() {
        let request: SinkRequest = serde_json::from_value(json!({
            "type": "ragflow", "base_url": "https://r/", "dataset_id": "d", "api_key": "k-123"
        }))
        .unwrap();
        assert!(!format!("{request:?}").contains("k-123"));
        let (config, secret) = request.into_parts();
        assert_eq!(secret.as_ref().map(SinkSecret::expose), Some("k-123"));
        assert_eq!(secret.unwrap().to_string(), "<redacted>");
        let stored = serde_json::to_string(&config).unwrap();
        assert!(!stored.contains("k-123"), "{stored}");
        let hook: SinkRequest = serde_json::from_value(
            json!({"type": "webhook", "url": "https://h/in", "secret": "s-123"}),
        )
        .unwrap();
        assert_eq!(hook.into_parts().1.unwrap().expose(), "s-123");
        assert!(serde_json::from_value::<SinkRequest>(
            json!({"type": "webhook", "url": "https://h/in", "api_key": "x"})
        )
        .is_err());
    }

    #[test]
    fn sealed_secrets_open_only_for_their_owner() {
        let vault =
            Vault::from_hex("6f1c2b3a5d6e7f8091a2b3c4d5e6f7080f1e2d3c4b5a69788796a5b4c3d2e1f0")
                .unwrap();
        let owner = SinkOwner::Connector {
            workspace_id: "ws-1",
            connector_id: "c-1",
        };
        let sealed = seal_secret(&vault, &own("the-key"), &owner).unwrap();
        assert_eq!(
            open_secret(&vault, &sealed, &owner).unwrap().expose(),
            "the-key"
        );
        for other in [
            SinkOwner::Connector {
                workspace_id: "ws-2",
                connector_id: "c-1",
            },
            SinkOwner::Connector {
                workspace_id: "ws-1",
                connector_id: "c-2",
            },
            SinkOwner::Crawl {
                tenant_id: "ws-1",
                job_id: "c-1",
            },
        ] {
            assert!(open_secret(&vault, &sealed, &other).is_err(), "{other:?}");
        }
    }

    #[test]
    fn pins_parse_and_refuse_malformed_entries() {
        let pins = OperatorPins::parse(
            Some("https://hooks.example/in, https://hooks.example/b"),
            Some("https://rag.example/"),
            Some("t1:ds_1, t2:ds-2"),
        )
        .unwrap();
        assert_eq!(pins.webhook_urls.len(), 2);
        assert_eq!(
            pins.ragflow_datasets,
            vec![("t1".into(), "ds_1".into()), ("t2".into(), "ds-2".into())]
        );
        let base = url::Url::parse("https://rag.example").unwrap();
        assert!(pins.ragflow_pinned(&base, "t1", "ds_1"));
        assert!(
            !pins.ragflow_pinned(&base, "t2", "ds_1"),
            "another tenant's dataset"
        );
        assert!(!pins.ragflow_pinned(
            &url::Url::parse("https://rag.example:8443").unwrap(),
            "t1",
            "ds_1"
        ));
        assert_eq!(
            OperatorPins::parse(None, None, None).unwrap(),
            OperatorPins::default()
        );
        for (hooks, bases, datasets, name) in [
            (Some("not a url"), None, None, WEBHOOK_PINNED_URLS_ENV),
            (Some("ftp://h/x"), None, None, WEBHOOK_PINNED_URLS_ENV),
            (
                None,
                Some("https://u:p@rag.example"),
                None,
                RAGFLOW_PINNED_BASE_URLS_ENV,
            ),
            (None, None, Some("ds_1"), RAGFLOW_PINNED_DATASETS_ENV),
            (None, None, Some(":ds_1"), RAGFLOW_PINNED_DATASETS_ENV),
            (None, None, Some("t1:../x"), RAGFLOW_PINNED_DATASETS_ENV),
        ] {
            assert_eq!(
                OperatorPins::parse(hooks, bases, datasets).unwrap_err().0,
                name
            );
        }
    }

    #[tokio::test]
    async fn build_ragflow_needs_key_http_url_and_valid_dataset() {
        let config = ragflow("https://rag.example", "dataset_1");
        // The operator key is not used unpinned.
        for deployment in [ragflow_env(None), ragflow_env(Some("operator"))] {
            let err = build(&config, None, TENANT, &deployment).err().unwrap();
            assert!(matches!(err, SinkError::CredentialsRequired(_)), "{err:?}");
        }
        for empty in ["", "  "] {
            let err = build(&config, Some(&own(empty)), TENANT, &ragflow_env(None))
                .err()
                .unwrap();
            assert!(matches!(err, SinkError::Config(_)), "{err:?}");
        }
        for (base, dataset) in [
            ("ftp://rag.example", "d"),
            ("file:///tmp", "d"),
            ("https://u:p@rag.example", "d"),
            ("https://rag.example", ""),
            ("https://rag.example", "../other"),
            ("https://rag.example", "a b"),
        ] {
            let err = build(
                &ragflow(base, dataset),
                Some(&own("k")),
                TENANT,
                &ragflow_env(None),
            )
            .err()
            .unwrap();
            assert!(
                matches!(err, SinkError::Config(_)),
                "{base} {dataset}: {err:?}"
            );
        }
        let sink = build(&config, Some(&own("k")), TENANT, &ragflow_env(None)).unwrap();
        assert_eq!(sink.kind(), "ragflow");
    }

    #[test]
    fn transient_classification_and_redacted_debug() {
        assert!(SinkError::Unavailable("x".into()).is_transient());
        assert!(SinkError::Io("x".into()).is_transient());
        assert!(!SinkError::Rejected {
            status: 400,
            message: "x".into()
        }
        .is_transient());
        assert!(!SinkError::Config("x".into()).is_transient());
        let shown = format!("{:?}", env(true, Some(b"super-secret")));
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let shown = format!("{:?}", ragflow_env(Some("ragflow-api-key")));
        assert!(!shown.contains("ragflow-api-key"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
