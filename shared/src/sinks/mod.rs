//! Where documents go: a RAG pipeline's webhook, a RAGFlow dataset (deployed), or a local
//! directory (`tributary-local` only).

pub mod directory;
pub mod ragflow;
pub mod webhook;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::connectors::document::Document;

pub use directory::DirectorySink;
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
}

impl SinkError {
    /// Whether retrying the same delivery later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SinkError::Unavailable(_) | SinkError::Io(_))
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

/// A sink as a crawl/connector configuration names it: JSON
/// `{"type": "directory", "path": "..."}`, `{"type": "webhook", "url": "https://..."}` or
/// `{"type": "ragflow", "base_url": "https://...", "dataset_id": "..."}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    Directory {
        path: PathBuf,
    },
    Webhook {
        url: url::Url,
    },
    /// A RAGFlow dataset; the API key comes from the deployment
    /// ([`SinkEnvironment::ragflow_api_key`]), never from the configuration.
    Ragflow {
        base_url: url::Url,
        dataset_id: String,
    },
}

/// What building a sink needs from the deployment.
#[derive(Clone)]
pub struct SinkEnvironment {
    /// True only in `tributary-local`: a deployed function must not write where a
    /// configuration tells it to.
    pub directory_sinks_allowed: bool,
    /// The HMAC key webhook requests are signed with (`TRIBUTARY_WEBHOOK_SINK_SECRET`).
    pub webhook_secret: Option<Vec<u8>>,
    /// The client webhook and RAGFlow requests go through; the caller passes an SSRF-guarded
    /// one.
    pub http: crate::http::GuardedClient,
    /// The RAGFlow API key (`TRIBUTARY_RAGFLOW_API_KEY`); RAGFlow sinks need it.
    pub ragflow_api_key: Option<String>,
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
            .finish_non_exhaustive()
    }
}

/// Builds the sink a configuration names. `Config` errors: a directory sink where they are
/// not allowed (or with an empty path); a webhook without a configured (non-empty) secret; a
/// webhook or RAGFlow URL that is not http(s) or carries credentials; a RAGFlow sink without
/// a configured (non-empty) API key or with a dataset id outside `[A-Za-z0-9_-]{1,64}`.
pub fn build(config: &SinkConfig, env: &SinkEnvironment) -> Result<Arc<dyn Sink>, SinkError> {
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
            Ok(Arc::new(DirectorySink::new(path.clone())))
        }
        SinkConfig::Webhook { url } => {
            check_url("webhook sink url", url)?;
            let secret = match &env.webhook_secret {
                Some(secret) if !secret.is_empty() => secret.clone(),
                _ => {
                    return Err(SinkError::Config(
                        "webhook sinks need TRIBUTARY_WEBHOOK_SINK_SECRET".into(),
                    ))
                }
            };
            Ok(Arc::new(WebhookSink::new(
                env.http.clone(),
                url.clone(),
                secret,
            )))
        }
        SinkConfig::Ragflow {
            base_url,
            dataset_id,
        } => {
            check_url("ragflow sink base_url", base_url)?;
            ragflow::validate_dataset_id(dataset_id)?;
            let api_key = match &env.ragflow_api_key {
                Some(key) if !key.trim().is_empty() => key.clone(),
                _ => {
                    return Err(SinkError::Config(format!(
                        "ragflow sinks need {}",
                        ragflow::API_KEY_ENV
                    )))
                }
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

/// An http(s) URL without credentials.
fn check_url(what: &str, url: &url::Url) -> Result<(), SinkError> {
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
        }
    }

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
        let err = build(&config, &env(false, Some(b"k"))).err().unwrap();
        assert!(matches!(err, SinkError::Config(_)), "{err:?}");
        assert!(!err.is_transient());
        let sink = build(&config, &env(true, None)).unwrap();
        assert_eq!(sink.kind(), "directory");
        let empty = SinkConfig::Directory { path: "".into() };
        assert!(matches!(
            build(&empty, &env(true, None)).err().unwrap(),
            SinkError::Config(_)
        ));
    }

    #[tokio::test]
    async fn build_webhook_needs_secret_and_http_url() {
        let config = webhook("https://rag.example/in");
        for missing in [env(false, None), env(false, Some(b""))] {
            let err = build(&config, &missing).err().unwrap();
            assert!(matches!(err, SinkError::Config(_)), "{err:?}");
        }
        for bad in [
            "ftp://rag.example/in",
            "file:///etc/passwd",
            "https://u:p@rag.example/in",
        ] {
            let err = build(&webhook(bad), &env(false, Some(b"k"))).err().unwrap();
            assert!(matches!(err, SinkError::Config(_)), "{bad}: {err:?}");
        }
        let sink = build(&config, &env(false, Some(b"k"))).unwrap();
        assert_eq!(sink.kind(), "webhook");
        assert_eq!(
            build(&webhook("http://127.0.0.1:9/in"), &env(false, Some(b"k")))
                .unwrap()
                .kind(),
            "webhook"
        );
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

    #[tokio::test]
    async fn build_ragflow_needs_key_http_url_and_valid_dataset() {
        let config = ragflow("https://rag.example", "dataset_1");
        for missing in [
            ragflow_env(None),
            ragflow_env(Some("")),
            ragflow_env(Some("  ")),
        ] {
            let err = build(&config, &missing).err().unwrap();
            assert!(matches!(err, SinkError::Config(_)), "{err:?}");
            assert!(
                err.to_string().contains("TRIBUTARY_RAGFLOW_API_KEY"),
                "{err}"
            );
        }
        for (base, dataset) in [
            ("ftp://rag.example", "d"),
            ("file:///tmp", "d"),
            ("https://u:p@rag.example", "d"),
            ("https://rag.example", ""),
            ("https://rag.example", "../other"),
            ("https://rag.example", "a b"),
        ] {
            let err = build(&ragflow(base, dataset), &ragflow_env(Some("k")))
                .err()
                .unwrap();
            assert!(
                matches!(err, SinkError::Config(_)),
                "{base} {dataset}: {err:?}"
            );
        }
        let sink = build(&config, &ragflow_env(Some("k"))).unwrap();
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
