//! argon2id password hashing (OWASP parameters: 19 MiB, 2 passes, 1 lane) and a strength
//! floor based on zxcvbn's guess estimate rather than composition rules (NIST 800-63B).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Bounds hashing cost per request; longer inputs add nothing to security.
pub const MAX_PASSWORD_BYTES: usize = 256;
/// zxcvbn's score 3: "safely unguessable", about 10^8 guesses or more.
const MIN_SCORE: zxcvbn::Score = zxcvbn::Score::Three;

/// Verified against when the email is unknown, so both failures cost one argon2 run.
/// A hash of random bytes nobody knows, with the same parameters as real hashes.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Bp7Rr0y8wJuyX2n2zVmvKA$1vhkT0fBTsjN6sg4xOGR9lP1Bp0wpQ8tH1hJcqcZ4aQ";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("password is too easy to guess{0}")]
    TooWeak(String),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Rejects short, long and guessable passwords; `context` holds the user's email and name,
/// which a password must not be built from.
pub fn check_strength(password: &str, context: &[&str]) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let estimate = zxcvbn::zxcvbn(password, context);
    if estimate.score() >= MIN_SCORE {
        return Ok(());
    }
    let hint = estimate
        .feedback()
        .and_then(|feedback| feedback.warning().map(|warning| format!(": {warning}")))
        .unwrap_or_default();
    Err(PasswordError::TooWeak(hint))
}

pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hashing(error.to_string()))
}

/// False for a wrong password and for a hash that cannot be parsed.
pub fn verify_password(hash: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let first = hash_password("correct horse battery staple").unwrap();
        let second = hash_password("correct horse battery staple").unwrap();
        assert_ne!(first, second);
        assert!(first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(&first, "correct horse battery staple"));
        assert!(!verify_password(&first, "correct horse battery stapler"));
        assert!(!verify_password("not a hash", "anything"));
    }

    #[test]
    fn dummy_hash_parses_with_the_real_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        let real = hash_password("whatever it is, really").unwrap();
        let real = PasswordHash::new(&real).unwrap();
        assert_eq!(parsed.algorithm, real.algorithm);
        assert_eq!(parsed.params, real.params);
        assert!(!verify_password(DUMMY_HASH, "password123456"));
    }

    #[test]
    fn strength_floor() {
        assert_eq!(check_strength("short", &[]), Err(PasswordError::TooShort));
        assert_eq!(
            check_strength(&"a".repeat(300), &[]),
            Err(PasswordError::TooLong)
        );
        assert!(matches!(
            check_strength("password123", &[]),
            Err(PasswordError::TooWeak(_))
        ));
        assert!(matches!(
            check_strength("ada.lovelace@example.com", &["ada.lovelace@example.com"]),
            Err(PasswordError::TooWeak(_))
        ));
        assert_eq!(check_strength("plum-orbit-cactus-41-velvet", &[]), Ok(()));
    }
}
