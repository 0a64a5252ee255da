//! Test support shared by the end-to-end and contract suites.

pub mod app;
pub mod bench;
pub mod browser;
pub mod fake_confluence;
pub mod fake_github;
pub mod fake_gmail;
pub mod fake_google_drive;
pub mod fake_graph;
pub mod fake_jira;
pub mod fake_oidc;
pub mod fake_ragflow;
pub mod faults;
pub mod files;
pub mod google;
pub mod local_serve;
pub mod microsoft;
pub mod moto;
pub mod oidc;
pub mod passes;
pub mod signin;
pub mod site;
pub mod tokens;
