//! The provider's signing keys, cached for the `Cache-Control: max-age` the provider sends
//! (capped at [`MAX_CACHE_AGE`], [`DEFAULT_CACHE_AGE`] without one), so a key withdrawn
//! from the JWKS stops being trusted within minutes. An unknown `kid`, or a signature that
//! fails with the cached key (a provider rotating keys under the same `kid`), triggers one
//! refetch, but refetches triggered that way are spaced by a cooldown, so a flood of
//! tokens with made-up `kid`s or bad signatures cannot turn into a flood of requests to
//! the provider.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use reqwest::Url;
use tokio::sync::RwLock;

pub const DEFAULT_REFETCH_COOLDOWN: Duration = Duration::from_secs(60);
/// How long keys are trusted when the JWKS response has no `max-age`.
pub const DEFAULT_CACHE_AGE: Duration = Duration::from_secs(300);
/// The longest a fetched key set is trusted, whatever the provider says.
pub const MAX_CACHE_AGE: Duration = Duration::from_secs(600);
/// The shortest: `max-age=0` or `no-store` would otherwise mean one fetch per sign-in.
pub const MIN_CACHE_AGE: Duration = Duration::from_secs(1);

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
    /// When `keys` stop being trusted.
    fresh_until: Option<Instant>,
    last_refetch: Option<Instant>,
}

impl Cached {
    fn fresh(&self) -> Option<&JwkSet> {
        let fresh = self.fresh_until.is_some_and(|until| Instant::now() < until);
        self.keys.as_ref().filter(|_| fresh)
    }
}

pub struct JwksCache {
    http: reqwest::Client,
    cooldown: Duration,
    cached: RwLock<Cached>,
    fetches: AtomicU64,
}

/// How long a response may be cached: `max-age` (seconds) clamped to
/// [`MIN_CACHE_AGE`]..=[`MAX_CACHE_AGE`]; `no-store`/`no-cache` as the minimum; the
/// default when the header says nothing usable.
pub fn cache_age(cache_control: Option<&str>) -> Duration {
    let Some(header) = cache_control else {
        return DEFAULT_CACHE_AGE;
    };
    let mut age = None;
    for directive in header.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return MIN_CACHE_AGE;
        }
        if let Some(value) = lower.strip_prefix("max-age=") {
            age = value.trim_matches('"').parse::<u64>().ok();
        }
    }
    match age {
        Some(secs) => Duration::from_secs(secs).clamp(MIN_CACHE_AGE, MAX_CACHE_AGE),
        None => DEFAULT_CACHE_AGE,
    }
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

    async fn fetch(&self, uri: &Url) -> Result<(JwkSet, Duration), JwksError> {
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
        let age = cache_age(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|value| value.to_str().ok()),
        );
        let keys = response
            .json::<JwkSet>()
            .await
            .map_err(|e| JwksError::Fetch(e.to_string()))?;
        Ok((keys, age))
    }

    async fn store(&self, cached: &mut Cached, uri: &Url) -> Result<(), JwksError> {
        let (keys, age) = self.fetch(uri).await?;
        cached.keys = Some(keys);
        cached.fresh_until = Some(Instant::now() + age);
        Ok(())
    }

    fn find(keys: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
        match kid {
            Some(kid) => keys.find(kid).cloned(),
            // Without a kid, only an unambiguous single key will do.
            None if keys.keys.len() == 1 => keys.keys.first().cloned(),
            None => None,
        }
    }

    fn cooling(&self, cached: &Cached) -> bool {
        cached
            .last_refetch
            .is_some_and(|at| at.elapsed() < self.cooldown)
    }

    /// The key with `kid`: from a fresh cached set, else from a new fetch (first use or an
    /// expired set; a failing fetch then fails closed), else once more on a miss.
    pub async fn key(&self, uri: &Url, kid: Option<&str>) -> Result<Jwk, JwksError> {
        {
            let cached = self.cached.read().await;
            if let Some(jwk) = cached.fresh().and_then(|keys| Self::find(keys, kid)) {
                return Ok(jwk);
            }
        }
        let mut cached = self.cached.write().await;
        // Another request may have refreshed the set while this one waited.
        if let Some(jwk) = cached.fresh().and_then(|keys| Self::find(keys, kid)) {
            return Ok(jwk);
        }
        if cached.fresh().is_none() {
            self.store(&mut cached, uri).await?;
        } else if !self.cooling(&cached) {
            self.store(&mut cached, uri).await?;
            cached.last_refetch = Some(Instant::now());
        }
        cached
            .fresh()
            .and_then(|keys| Self::find(keys, kid))
            .ok_or_else(|| JwksError::UnknownKid(kid.unwrap_or("(none)").to_owned()))
    }

    /// After a signature failed with `rejected`: the provider may have rotated the key
    /// under the same `kid`. Refetches once (cooldown permitting) and returns the key now
    /// published for that `kid` if it differs from `rejected`.
    pub async fn replacement(
        &self,
        uri: &Url,
        kid: Option<&str>,
        rejected: &Jwk,
    ) -> Result<Option<Jwk>, JwksError> {
        let mut cached = self.cached.write().await;
        let current = |cached: &Cached| {
            cached
                .fresh()
                .and_then(|keys| Self::find(keys, kid))
                .filter(|jwk| jwk != rejected)
        };
        // Another request may have refetched already.
        if let Some(jwk) = current(&cached) {
            return Ok(Some(jwk));
        }
        if self.cooling(&cached) {
            return Ok(None);
        }
        self.store(&mut cached, uri).await?;
        cached.last_refetch = Some(Instant::now());
        Ok(current(&cached))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_age_honours_max_age_within_bounds() {
        assert_eq!(cache_age(None), DEFAULT_CACHE_AGE);
        assert_eq!(cache_age(Some("public")), DEFAULT_CACHE_AGE);
        assert_eq!(
            cache_age(Some("public, max-age=120")),
            Duration::from_secs(120)
        );
        assert_eq!(
            cache_age(Some("Max-Age=86400, must-revalidate")),
            MAX_CACHE_AGE
        );
        assert_eq!(cache_age(Some("max-age=0")), MIN_CACHE_AGE);
        assert_eq!(cache_age(Some("no-store")), MIN_CACHE_AGE);
        assert_eq!(cache_age(Some("max-age=soon")), DEFAULT_CACHE_AGE);
    }
}
