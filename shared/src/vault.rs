//! Secrets at rest (DESIGN §4): connector credentials and webhook secrets are sealed with
//! AES-256-GCM under a key from configuration, bound to the item they belong to (the
//! associated data), so a sealed value copied onto another item does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

pub const ENCRYPTION_KEY: &str = "TRIBUTARY_ENCRYPTION_KEY";
const NONCE_BYTES: usize = 12;
/// Prefix naming the format, so a later key rotation can tell versions apart.
const FORMAT: &str = "v1:";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("{ENCRYPTION_KEY} is not set")]
    MissingKey,
    #[error("{ENCRYPTION_KEY} must be 32 random bytes as 64 hex characters (e.g. `openssl rand -hex 32`)")]
    BadKey,
    #[error("cannot generate a nonce")]
    Random,
    #[error("the sealed value is damaged or belongs to another item")]
    Open,
}

#[derive(Clone)]
pub struct Vault {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    /// A key of 64 hex characters; all-equal bytes (placeholders like `000…`) are refused.
    pub fn from_hex(hex_key: &str) -> Result<Self, VaultError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| VaultError::BadKey)?;
        if bytes.len() != 32 || bytes.iter().all(|b| *b == bytes[0]) {
            return Err(VaultError::BadKey);
        }
        Ok(Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }

    pub fn from_env() -> Result<Self, VaultError> {
        let key = std::env::var(ENCRYPTION_KEY)
            .ok()
            .filter(|key| !key.trim().is_empty())
            .ok_or(VaultError::MissingKey)?;
        Self::from_hex(&key)
    }

    /// `v1:` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plaintext: &[u8], bound_to: &str) -> Result<String, VaultError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| VaultError::Random)?;
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: bound_to.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{FORMAT}{}", STANDARD.encode(out)))
    }

    pub fn open(&self, sealed: &str, bound_to: &str) -> Result<Vec<u8>, VaultError> {
        let encoded = sealed.strip_prefix(FORMAT).ok_or(VaultError::Open)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| VaultError::Open)?;
        if bytes.len() <= NONCE_BYTES {
            return Err(VaultError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: bound_to.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "6f1c2b3a5d6e7f8091a2b3c4d5e6f7080f1e2d3c4b5a69788796a5b4c3d2e1f0";

    #[test]
    fn sealed_values_open_only_for_their_item() {
        let vault = Vault::from_hex(KEY).expect("key");
        let sealed = vault.seal(b"api-token", "connector-1").expect("seal");
        assert!(!sealed.contains("api-token"));
        assert_eq!(
            vault.open(&sealed, "connector-1").expect("open"),
            b"api-token"
        );
        assert_eq!(vault.open(&sealed, "connector-2"), Err(VaultError::Open));
        assert_ne!(
            sealed,
            vault.seal(b"api-token", "connector-1").expect("seal")
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('A');
        assert_eq!(vault.open(&tampered, "connector-1"), Err(VaultError::Open));
    }

    #[test]
    fn weak_or_malformed_keys_are_refused() {
        for key in [
            "",
            "abc",
            &"00".repeat(32),
            &"zz".repeat(32),
            &"ab".repeat(31),
        ] {
            assert_eq!(
                Vault::from_hex(key).err(),
                Some(VaultError::BadKey),
                "{key}"
            );
        }
    }
}
