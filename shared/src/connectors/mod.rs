//! Data sources and the document model they produce.

pub mod document;
