//! Configuration: the TOML file of `spec/config.md`, parsed with toml_edit and validated whole.
mod model;
pub use model::*;
