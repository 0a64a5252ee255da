//! API token format: `trb_` + 43 base64url characters (256 random bits). The prefix lets
//! secret scanners recognise leaked tokens and lets the check skip JWT parsing.

use base64::Engine as _;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "trb_";
const RANDOM_BYTES: usize = 32;
const ENCODED_LEN: usize = 43;

/// A freshly minted token: the plaintext (shown once) and the hash that is stored.
pub struct MintedToken {
    pub plaintext: String,
    pub hash: String,
}

pub fn mint() -> Result<MintedToken, getrandom::Error> {
    let mut random = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut random)?;
    let plaintext = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    );
    let hash = hash(&plaintext);
    Ok(MintedToken { plaintext, hash })
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Shape check only; existence is the store's to answer.
pub fn is_well_formed(token: &str) -> bool {
    token.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == ENCODED_LEN
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_are_well_formed_unique_and_hashed() {
        let first = mint().unwrap();
        let second = mint().unwrap();
        assert!(is_well_formed(&first.plaintext));
        assert_ne!(first.plaintext, second.plaintext);
        assert_eq!(first.hash, hash(&first.plaintext));
        assert_eq!(first.hash.len(), 64);
        assert!(!first.hash.contains(&first.plaintext[4..]));
    }

    #[test]
    fn malformed_tokens() {
        assert!(!is_well_formed("trb_short"));
        assert!(!is_well_formed(&format!("xyz_{}", "a".repeat(43))));
        assert!(!is_well_formed(&format!("trb_{}", "+".repeat(43))));
    }
}
