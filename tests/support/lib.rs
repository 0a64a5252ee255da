//! Test support shared by the end-to-end and contract suites.

pub mod moto;
