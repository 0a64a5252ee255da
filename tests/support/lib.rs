//! Test support shared by the end-to-end and contract suites.

pub mod app;
pub mod moto;
pub mod oidc;
