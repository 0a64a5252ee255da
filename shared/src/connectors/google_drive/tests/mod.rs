//! The Google Drive connector's unit tests, by concern.

mod checkpoint;
mod config;
mod convert;
