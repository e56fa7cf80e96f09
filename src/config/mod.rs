//! Configuration: the TOML file (docs/configuration.md), parsed with toml_edit and validated
//! whole.
//!
//! - `model`: the validated config (what the collector reads), types only;
//! - `defaults`: every key's built-in value (the plugins' from the registry);
//! - `cpp_syntax`: recognises the C++ collector's own file syntax to say how to write it in TOML;
//! - `load`: text → config with every problem at once (pure), plus the file-system checks;
//! - `render`: config → TOML, as `check-config` prints it;
//! - `url`: `[backend] url`, parsed once into [`BackendUrl`];
//! - `pull`: the pure part of the config pull (what a backend may set, the overlay).
mod cpp_syntax;
mod defaults;
mod load;
mod model;
pub mod pull;
mod render;
mod url;
pub use load::*;
pub use model::*;
pub use render::*;
pub use url::BackendUrl;
