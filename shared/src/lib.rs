//! Tributary's domain and adapters. Function crates and `tributary-local` build on it;
//! it has no entrypoints of its own.

pub mod auth;
pub mod config;
#[cfg(feature = "crawl")]
pub mod connectors;
#[cfg(feature = "crawl")]
pub mod crawl;
#[cfg(any(feature = "oauth", feature = "crawl"))]
pub mod http;
#[cfg(feature = "sync")]
pub mod integrations;
pub mod mail;
pub mod queue;
pub mod services;
#[cfg(feature = "crawl")]
pub mod sinks;
#[cfg(feature = "embedded")]
pub mod sqlite;
pub mod store;
#[cfg(feature = "sync")]
pub mod sync;
pub mod telemetry;
pub mod time;
#[cfg(feature = "crawl")]
pub mod vault;
pub mod web;
#[cfg(feature = "sync")]
pub mod webhooks;

pub use services::Services;
