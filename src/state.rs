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

/// What is wrong with the state directory at `dir` for a collector running as `uid`
/// (SECURITY.md, "Secrets at rest"): one line per problem, each saying what to run. The
/// directory must belong to `uid` and not be writable by group or others (anyone who can
/// write there can replace `remote-config.toml` or the offsets); the private key and the
/// token in it must not be readable by others. A directory that does not exist yet is fine
/// (it is created 0700).
pub fn check(dir: &Path, uid: u32) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut problems = Vec::new();
    let md = match std::fs::metadata(dir) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return problems,
        Err(e) => {
            problems.push(format!("state directory {}: {e}", dir.display()));
            return problems;
        }
    };
    let d = dir.display();
    if !md.is_dir() {
        problems.push(format!(
            "state directory {d} is not a directory; set [collector] state_dir to a directory"
        ));
        return problems;
    }
    if md.uid() != uid {
        problems.push(format!(
            "state directory {d} belongs to uid {}, not to the collector's uid {uid}; run chown {uid} {d}",
            md.uid()
        ));
    }
    if md.mode() & 0o022 != 0 {
        problems.push(format!(
            "state directory {d} is writable by group or others (mode {:o}); run chmod go-w {d}",
            md.mode() & 0o7777
        ));
    }
    for name in [KEY, TOKEN] {
        let f = dir.join(name);
        if std::fs::metadata(&f).is_ok_and(|m| m.mode() & 0o004 != 0) {
            problems.push(format!(
                "{} holds a secret and is readable by others; run chmod o-r {}",
                f.display(),
                f.display()
            ));
        }
    }
    problems
}

/// The private atomic write, for files kept elsewhere by configuration (`[auth] token_file`).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::sys::file::write_private(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Real directories and modes: the owner, group/other write, a token readable by others.
    #[test]
    fn the_state_directory_must_be_ours_and_closed() {
        let root = std::env::temp_dir().join(format!("pgac-statecheck-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("state");
        let me = rustix::process::geteuid().as_raw();
        assert!(check(&dir, me).is_empty(), "missing: created later");
        let state = StateDir::new(&dir);
        state.write(TOKEN, b"t\n").unwrap();
        assert!(check(&dir, me).is_empty());
        let other = me.wrapping_add(1);
        let p = check(&dir, other);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("not to the collector's uid") && p[0].contains("run chown"));
        let set = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        set(&dir, 0o770).unwrap();
        let p = check(&dir, me);
        assert_eq!(
            p,
            vec![format!(
                "state directory {} is writable by group or others (mode 770); run chmod go-w {}",
                dir.display(),
                dir.display()
            )]
        );
        set(&dir, 0o700).unwrap();
        set(&state.file(TOKEN), 0o644).unwrap();
        let p = check(&dir, me);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("collector.token holds a secret") && p[0].contains("chmod o-r"));
        set(&state.file(TOKEN), 0o640).unwrap();
        assert!(check(&dir, me).is_empty(), "group read is fine");
        std::fs::remove_dir_all(&root).unwrap();
    }

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
