//! Helpers shared by the integration tests.
pub mod backend;
pub mod certs;
pub mod client;
pub mod pg;
pub mod tmp;
