//! The system layer: pure /proc parsers, the fixed-buffer line reader and the other file calls,
//! the followed log files (`logfile`), the process's identity and units (`process`), statfs,
//! clocks, signals and the allocator (`alloc`). Everything that makes a syscall lives here,
//! behind thin functions named after it; the pure parsers in `procfs` import nothing from the
//! rest of it.
pub mod alloc;
pub mod file;
pub mod logfile;
pub mod pages;
pub mod passwd;
pub mod process;
pub mod procfs;
pub mod signals;
pub mod spoolfile;
pub mod statfs;
pub mod stdout;
pub mod time;
