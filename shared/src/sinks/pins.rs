//! Where the deployment's own sink credentials may be used: the operator's pins.

use super::{check_url, ragflow};

/// Where the deployment's own sink credentials may go (README "Sink credentials").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorPins {
    /// `TRIBUTARY_WEBHOOK_SINK_PINNED_URLS`: exact webhook URLs.
    pub webhook_urls: Vec<url::Url>,
    /// `TRIBUTARY_RAGFLOW_PINNED_BASE_URLS`: RAGFlow base URLs.
    pub ragflow_base_urls: Vec<url::Url>,
    /// `TRIBUTARY_RAGFLOW_PINNED_DATASETS`: `(tenant id, dataset id)`; under the operator key
    /// a tenant writes only into datasets pinned to it.
    pub ragflow_datasets: Vec<(String, String)>,
}

pub const WEBHOOK_PINNED_URLS_ENV: &str = "TRIBUTARY_WEBHOOK_SINK_PINNED_URLS";
pub const RAGFLOW_PINNED_BASE_URLS_ENV: &str = "TRIBUTARY_RAGFLOW_PINNED_BASE_URLS";
pub const RAGFLOW_PINNED_DATASETS_ENV: &str = "TRIBUTARY_RAGFLOW_PINNED_DATASETS";

impl OperatorPins {
    /// Parses the three comma-separated lists; an entry that does not parse is an error
    /// naming the variable.
    pub fn parse(
        webhook_urls: Option<&str>,
        ragflow_base_urls: Option<&str>,
        ragflow_datasets: Option<&str>,
    ) -> Result<Self, (&'static str, String)> {
        let urls = |name: &'static str, raw: Option<&str>| -> Result<Vec<url::Url>, _> {
            entries(raw)
                .map(|entry| {
                    let url = url::Url::parse(entry)
                        .map_err(|error| (name, format!("`{entry}`: {error}")))?;
                    check_url(name, &url).map_err(|error| (name, error.to_string()))?;
                    Ok(url)
                })
                .collect()
        };
        let datasets = entries(ragflow_datasets)
            .map(|entry| {
                let invalid = || {
                    (
                        RAGFLOW_PINNED_DATASETS_ENV,
                        format!("`{entry}`: expected <tenant id>:<dataset id>"),
                    )
                };
                let (tenant, dataset) = entry.split_once(':').ok_or_else(invalid)?;
                let (tenant, dataset) = (tenant.trim(), dataset.trim());
                if tenant.is_empty() || ragflow::validate_dataset_id(dataset).is_err() {
                    return Err(invalid());
                }
                Ok((tenant.to_owned(), dataset.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            webhook_urls: urls(WEBHOOK_PINNED_URLS_ENV, webhook_urls)?,
            ragflow_base_urls: urls(RAGFLOW_PINNED_BASE_URLS_ENV, ragflow_base_urls)?,
            ragflow_datasets: datasets,
        })
    }

    pub(super) fn webhook_pinned(&self, url: &url::Url) -> bool {
        self.webhook_urls.iter().any(|pinned| pinned == url)
    }

    pub(super) fn ragflow_pinned(
        &self,
        base_url: &url::Url,
        tenant_id: &str,
        dataset_id: &str,
    ) -> bool {
        self.ragflow_base_urls
            .iter()
            .any(|pinned| same_base(pinned, base_url))
            && self
                .ragflow_datasets
                .iter()
                .any(|(tenant, dataset)| tenant == tenant_id && dataset == dataset_id)
    }
}

fn entries(raw: Option<&str>) -> impl Iterator<Item = &str> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
}

/// Same scheme, host, port and path (ignoring a trailing `/`); no query or fragment.
fn same_base(pinned: &url::Url, url: &url::Url) -> bool {
    pinned.scheme() == url.scheme()
        && pinned.host_str() == url.host_str()
        && pinned.port_or_known_default() == url.port_or_known_default()
        && pinned.path().trim_end_matches('/') == url.path().trim_end_matches('/')
        && url.query().is_none()
        && url.fragment().is_none()
}
