//! Configuration: the TOML file of `spec/config.md`, parsed with toml_edit and validated whole.
//!
//! - `model`: the validated config and its built-in defaults (what the collector reads);
//! - `cpp_syntax`: recognises the C++ collector's own file syntax to say how to write it in TOML;
//! - `load`: text → config with every problem at once (pure), plus the file-system checks;
//! - `render`: config → TOML, as `check-config` prints it.
mod cpp_syntax;
mod load;
mod model;
mod render;
pub use load::*;
pub use model::*;
pub use render::*;
