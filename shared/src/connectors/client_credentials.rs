//! An application's own credentials for the OAuth 2.0 client credentials grant (app-only
//! access, e.g. a Microsoft Entra app reading every SharePoint site of a tenant): a client
//! id with either a client secret or a certificate whose private key signs a JWT client
//! assertion. Stored sealed like every credential; neither secret prints.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::service_account::PrivateKeyPem;

/// A client secret (never printed).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(..)")
    }
}

/// A certificate registered with the provider and the private key it certifies.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertificate {
    /// The X.509 certificate, PEM (`-----BEGIN CERTIFICATE-----`): the provider finds the
    /// key by the certificate's SHA-256 thumbprint (`x5t#S256`).
    pub certificate: String,
    /// Its RSA private key, PEM (PKCS#8 or PKCS#1).
    pub private_key: PrivateKeyPem,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint_sha256().ok())
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// The certificate's DER bytes (the first `CERTIFICATE` block of the PEM).
    fn der(&self) -> Result<Vec<u8>, String> {
        const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
        const END: &str = "-----END CERTIFICATE-----";
        let start = self
            .certificate
            .find(BEGIN)
            .ok_or("certificate is not a PEM certificate")?
            + BEGIN.len();
        let length = self.certificate[start..]
            .find(END)
            .ok_or("certificate has no END line")?;
        let body: String = self.certificate[start..start + length]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| "certificate is not valid base64".to_owned())
    }

    /// `x5t#S256`: base64url (no padding) of the SHA-256 of the certificate's DER form.
    pub fn thumbprint_sha256(&self) -> Result<String, String> {
        let digest = Sha256::digest(self.der()?);
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
    }
}

/// The client credentials of `{"type": "client_credentials"}`: exactly one of a secret or a
/// certificate.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuthentication {
    Secret(ClientSecret),
    Certificate(ClientCertificate),
}

impl fmt::Debug for ClientAuthentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuthentication::Secret(_) => f.write_str("Secret(..)"),
            ClientAuthentication::Certificate(certificate) => certificate.fmt(f),
        }
    }
}

/// The checks the types cannot express (no network); `client_secret` and `certificate` are
/// the stored fields of `Credentials::ClientCredentials`.
pub fn check(
    client_id: &str,
    client_secret: Option<&ClientSecret>,
    certificate: Option<&ClientCertificate>,
) -> Result<ClientAuthentication, String> {
    if client_id.trim().is_empty() {
        return Err("client_id is required".into());
    }
    match (client_secret, certificate) {
        (Some(secret), None) if !secret.expose().is_empty() => {
            Ok(ClientAuthentication::Secret(secret.clone()))
        }
        (None, Some(certificate)) => {
            certificate.thumbprint_sha256()?;
            if !certificate
                .private_key
                .expose()
                .trim_start()
                .starts_with("-----BEGIN")
            {
                return Err("certificate.private_key is not a PEM private key".into());
            }
            Ok(ClientAuthentication::Certificate(certificate.clone()))
        }
        (Some(_), Some(_)) => Err("give client_secret or certificate, not both".into()),
        _ => Err("client_secret or certificate is required".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The DER of this "certificate" is the bytes b"certificate"; only the thumbprint
    // arithmetic is under test here (the e2e suite uses a real certificate).
    const FAKE_PEM: &str =
        "-----BEGIN CERTIFICATE-----\nY2VydGlm\naWNhdGU=\n-----END CERTIFICATE-----\n";

    fn certificate(pem: &str) -> ClientCertificate {
        ClientCertificate {
            certificate: pem.into(),
            private_key: PrivateKeyPem::new("-----BEGIN PRIVATE KEY-----\n..."),
        }
    }

    #[test]
    fn the_thumbprint_is_the_sha256_of_the_der_bytes_base64url() {
        let expected =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(b"certificate"));
        assert_eq!(certificate(FAKE_PEM).thumbprint_sha256(), Ok(expected));
        assert!(certificate("not pem").thumbprint_sha256().is_err());
    }

    #[test]
    fn exactly_one_of_secret_and_certificate() {
        let secret = ClientSecret::new("s3cret");
        let cert = certificate(FAKE_PEM);
        assert!(matches!(
            check("app", Some(&secret), None),
            Ok(ClientAuthentication::Secret(_))
        ));
        assert!(matches!(
            check("app", None, Some(&cert)),
            Ok(ClientAuthentication::Certificate(_))
        ));
        assert!(check("app", Some(&secret), Some(&cert)).is_err());
        assert!(check("app", None, None).is_err());
        assert!(check("", Some(&secret), None).is_err());
        assert!(check("app", Some(&ClientSecret::new("")), None).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let printed = format!(
            "{:?} {:?}",
            ClientSecret::new("s3cret"),
            ClientAuthentication::Certificate(certificate(FAKE_PEM))
        );
        assert!(!printed.contains("s3cret") && !printed.contains("PRIVATE"));
    }
}
