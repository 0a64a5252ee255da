//! The provider's signing keys, cached. An unknown `kid` triggers one refetch (keys
//! rotate), but refetches triggered that way are spaced by a cooldown, so a flood of
//! tokens with made-up `kid`s cannot turn into a flood of requests to the provider.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use reqwest::Url;
use tokio::sync::RwLock;

pub const DEFAULT_REFETCH_COOLDOWN: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot fetch the provider's keys: {0}")]
    Fetch(String),
    #[error("the ID token's key `{0}` is not among the provider's keys")]
    UnknownKid(String),
}

#[derive(Default)]
struct Cached {
    keys: Option<JwkSet>,
    last_refetch: Option<Instant>,
}

pub struct JwksCache {
    http: reqwest::Client,
    cooldown: Duration,
    cached: RwLock<Cached>,
    fetches: AtomicU64,
}

impl JwksCache {
    pub fn new(http: reqwest::Client, cooldown: Duration) -> Self {
        Self {
            http,
            cooldown,
            cached: RwLock::new(Cached::default()),
            fetches: AtomicU64::new(0),
        }
    }

    /// How many times the JWKS was fetched (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    async fn fetch(&self, uri: &Url) -> Result<JwkSet, JwksError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let response = self
            .http
            .get(uri.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| JwksError::Fetch(e.to_string()))?;
        if !response.status().is_success() {
            return Err(JwksError::Fetch(format!("HTTP {}", response.status())));
        }
        response
            .json::<JwkSet>()
            .await
            .map_err(|e| JwksError::Fetch(e.to_string()))
    }

    fn find(keys: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
        match kid {
            Some(kid) => keys.find(kid).cloned(),
            // Without a kid, only an unambiguous single key will do.
            None if keys.keys.len() == 1 => keys.keys.first().cloned(),
            None => None,
        }
    }

    /// The key with `kid`, fetching the set on first use and once more on a miss.
    pub async fn key(&self, uri: &Url, kid: Option<&str>) -> Result<Jwk, JwksError> {
        {
            let cached = self.cached.read().await;
            if let Some(keys) = &cached.keys {
                if let Some(jwk) = Self::find(keys, kid) {
                    return Ok(jwk);
                }
            }
        }
        let mut cached = self.cached.write().await;
        // Another request may have refreshed the set while this one waited.
        if let Some(jwk) = cached.keys.as_ref().and_then(|keys| Self::find(keys, kid)) {
            return Ok(jwk);
        }
        let first_fetch = cached.keys.is_none();
        let cooling = cached
            .last_refetch
            .is_some_and(|at| at.elapsed() < self.cooldown);
        if first_fetch || !cooling {
            let keys = self.fetch(uri).await?;
            if !first_fetch {
                cached.last_refetch = Some(Instant::now());
            }
            cached.keys = Some(keys);
        }
        cached
            .keys
            .as_ref()
            .and_then(|keys| Self::find(keys, kid))
            .ok_or_else(|| JwksError::UnknownKid(kid.unwrap_or("(none)").to_owned()))
    }
}
