//! Temporary directories for tests: unique per process and moment, removed when dropped.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `$TMPDIR/pgac-<tag>-<pid>-<nanos>`, created empty, mode 0700 (it holds secrets).
    pub fn new(tag: &str) -> TempDir {
        let d = TempDir::shared(tag);
        std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    }

    /// The same, with the default mode: other users (the `postgres` user running a test
    /// cluster) may reach files in it.
    pub fn shared(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "pgac-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` in it, mode 0600 (secrets must not be readable by others).
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
