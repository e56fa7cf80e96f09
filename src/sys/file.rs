//! Fixed-buffer line reader.
