//! A service account's key (Google's JSON key file): the credentials of sources that act
//! for many users of a domain through domain-wide delegation. Stored sealed like every
//! credential; the private key never prints.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A PEM private key (PKCS#8, as in Google's key files).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    pub fn new(pem: impl Into<String>) -> Self {
        Self(pem.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(..)")
    }
}

/// The fields of a service-account key file the JWT bearer grant needs; the file's other
/// fields (`type`, `project_id`, `client_id`, URLs) are accepted and dropped.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountKey {
    /// The service account's identity, the assertion's issuer.
    pub client_email: String,
    pub private_key: PrivateKeyPem,
    /// Sent as the JWT `kid`, so the provider picks the right public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_id: Option<String>,
    /// The token endpoint (Google's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_uri: Option<String>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// The checks the types cannot express (no network).
    pub fn check(&self) -> Result<(), String> {
        if !self.client_email.contains('@') {
            return Err("key.client_email is not a service account's email".into());
        }
        if !self
            .private_key
            .expose()
            .trim_start()
            .starts_with("-----BEGIN")
        {
            return Err("key.private_key is not a PEM private key".into());
        }
        if let Some(uri) = &self.token_uri {
            let url = url::Url::parse(uri).map_err(|_| "key.token_uri is not a URL")?;
            if url.scheme() != "https"
                && !matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
            {
                return Err("key.token_uri must be https".into());
            }
        }
        Ok(())
    }
}
