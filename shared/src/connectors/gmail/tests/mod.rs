//! The Gmail connector's unit tests, by concern.

mod checkpoint;
mod config;
mod convert;
