//! The system layer: pure /proc parsers, the fixed-buffer line reader, statfs, clocks and
//! signals. Everything that makes a syscall lives here, behind thin functions named after it.
pub mod file;
pub mod logfile;
pub mod process;
pub mod procfs;
pub mod signals;
pub mod statfs;
pub mod time;
