//! The scopes an API token can carry. Sessions hold every scope; an API token holds the
//! ones it was created with, which must be a subset of its creator's.

pub const TOKENS_READ: &str = "tokens:read";
pub const TOKENS_WRITE: &str = "tokens:write";
pub const PROFILE_READ: &str = "profile:read";
pub const CONNECTORS_READ: &str = "connectors:read";
pub const CONNECTORS_WRITE: &str = "connectors:write";
pub const CRAWLS_READ: &str = "crawls:read";
pub const CRAWLS_WRITE: &str = "crawls:write";

pub const ALL: [&str; 7] = [
    PROFILE_READ,
    TOKENS_READ,
    TOKENS_WRITE,
    CONNECTORS_READ,
    CONNECTORS_WRITE,
    CRAWLS_READ,
    CRAWLS_WRITE,
];

pub fn is_known(scope: &str) -> bool {
    ALL.contains(&scope)
}

pub fn all() -> Vec<String> {
    ALL.iter().map(|scope| scope.to_string()).collect()
}
