//! Configuration: the TOML file of `spec/config.md`, parsed with toml_edit and validated whole.
//!
//! - `model`: the validated config and its built-in defaults (what the collector reads);
//! - `load`: text → config with every problem at once (pure), plus the file-system checks;
//! - `render`: config → TOML, as `check-config` prints it.
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
