//! The SSRF policy moved to [`crate::http::policy`] (the guarded client owns it); this
//! re-export keeps `crawl::ssrf` paths working.

pub use crate::http::policy::*;
