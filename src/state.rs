//! The state directory (`[collector] state_dir`, by default `/var/lib/pganalytics`): every
//! file the collector keeps between runs is named here, and written through here (privately:
//! 0600 in a 0700 directory, atomically: a temporary file, fsync, rename, fsync of the
//! directory).
//!
//! | file | written by | read by |
//! |---|---|---|
//! | `collector.id` | `register`, re-registration | the envelope identity |
//! | `collector.token` | `register`, token refresh | token authentication (unless `[auth] token_file`) |
//! | `collector.crt`, `collector.key` | `register` (when the backend issues them) | the client certificate of mTLS (unless `[tls]` names files) |
//! | `remote-config.toml` | config pull | start, SIGHUP, `check-config` |
//! | `pg_log.offsets` | the pg_log collector | the pg_log collector at start |
//! | `lock` | `run` (flock, its pid) | a second `run`, refused |
//! | `spool/` | `run` during a backend outage (`push::spool`) | `run` at start and while replaying |
//!
//! Not here: what the files hold (the registration reply: `push::register`; the pulled
//! document: `config::pull`; the offsets format: the pg_log collector's `offsets`), nor the
//! syscalls (`sys::file::write_private`).

use std::path::{Path, PathBuf};

/// The registered collector id (one line).
pub const COLLECTOR_ID: &str = "collector.id";
/// The backend's token (JWT on the first line).
pub const TOKEN: &str = "collector.token";
/// The client certificate and key the registration returned (PEM).
pub const CERT: &str = "collector.crt";
pub const KEY: &str = "collector.key";
/// The last pulled configuration document, with its version in a leading comment.
pub const REMOTE_CONFIG: &str = "remote-config.toml";
/// Where the pg_log collector resumes after a restart.
pub const PG_LOG_OFFSETS: &str = "pg_log.offsets";
/// Held (`flock`) by the one `run` of this state directory; holds its pid.
pub const LOCK: &str = "lock";
/// The outage spool's directory: segment files and `cursor` (`push::spool`).
pub const SPOOL: &str = "spool";

/// The state directory of one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: &Path) -> StateDir {
        StateDir {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The path of one of the files named above.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The registered id: the first line of `collector.id`, when there is a non-empty one.
    pub fn collector_id(&self) -> Option<String> {
        std::fs::read_to_string(self.file(COLLECTOR_ID))
            .ok()
            .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
            .filter(|s| !s.is_empty())
    }

    /// Seconds since `name` was last modified, at `now_unix` (`None` when it does not exist).
    pub fn age_secs(&self, name: &str, now_unix: i64) -> Option<i64> {
        let modified = std::fs::metadata(self.file(name)).ok()?.modified().ok()?;
        let secs = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Some(now_unix.saturating_sub(secs))
    }

    /// Writes `name` privately and atomically (the directory is created 0700 if missing).
    pub fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        write_private(&self.file(name), bytes)
    }
}

/// The private atomic write, for files kept elsewhere by configuration (`[auth] token_file`).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::sys::file::write_private(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_private_and_the_id_is_its_first_line() {
        let dir = std::env::temp_dir()
            .join(format!("pgac-state-{}", std::process::id()))
            .join("state");
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
        let state = StateDir::new(&dir);
        assert_eq!(state.collector_id(), None);
        state.write(COLLECTOR_ID, b"3f0c\nignored\n").unwrap();
        assert_eq!(state.collector_id().as_deref(), Some("3f0c"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&state.file(COLLECTOR_ID)), 0o600);
        state.write(COLLECTOR_ID, b"  \n").unwrap();
        assert_eq!(state.collector_id(), None);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
