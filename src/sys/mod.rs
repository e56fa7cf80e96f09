//! The system layer: pure /proc parsers, the fixed-buffer line reader, statfs, clocks, signals.
pub mod file;
pub mod procfs;
