//! Which log files may be read (SECURITY.md, "Files named by the server"): a path that the
//! server names (`pg_current_logfile()`, `current_logfiles`, `log_directory`,
//! `data_directory`) is read only when it is a regular file directly in the server's log
//! directory, owned by the server's user and neither by root nor by the collector itself;
//! never through a symbolic link, never a FIFO or a device. A path the operator set
//! (`[pg_log] path`) is the operator's choice: only the regular-file, no-symlink and
//! non-blocking rules hold for it.
//!
//! How a server file is opened: the directory with `O_DIRECTORY`, then `fstatat(dirfd, name,
//! AT_SYMLINK_NOFOLLOW)` is judged, then `openat(dirfd, name, O_NOFOLLOW | O_NONBLOCK |
//! O_CLOEXEC)` and its `fstat` must show the same device and inode (nothing swapped in
//! between). The decisions ([`name_in`], [`judge`]) are pure; the syscalls are in
//! [`crate::sys::logfile`].

use crate::sys::logfile::{self, Errno, Kind, Meta, Owned, OwnedFd};
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

/// What may be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `[pg_log] path`: any owner; regular files only, no symbolic link, never blocking.
    Operator,
    /// Named by the server: only regular files directly in `dir`.
    Server {
        /// The server's log directory (or, for `current_logfiles`, its data directory).
        dir: PathBuf,
        /// The uid the files must belong to (the owner of `data_directory`; `None`: unknown,
        /// then any owner but root and the collector).
        owner: Option<u32>,
        /// The collector's own uid (files it owns are not the server's).
        me: u32,
    },
}

/// Why a file was not read: the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not directly in the log directory.
    Outside(PathBuf),
    /// A symbolic link.
    Symlink,
    /// A FIFO, a device, a socket or a directory.
    NotRegular(Kind),
    /// Owned by root, by the collector, or by another user than the server's.
    Owner { uid: u32, want: Option<u32> },
    /// Another file took its place between the check and the open.
    Swapped,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Outside(dir) => write!(
                f,
                "it is not directly in the server's log directory {}",
                dir.display()
            ),
            Refusal::Symlink => write!(f, "it is a symbolic link"),
            Refusal::NotRegular(k) => write!(f, "it is not a regular file but {}", kind_name(*k)),
            Refusal::Owner { uid: 0, .. } => write!(f, "it is owned by root"),
            Refusal::Owner { uid, want: None } => {
                write!(f, "it is owned by uid {uid}, the collector's own")
            }
            Refusal::Owner { uid, want: Some(w) } => write!(
                f,
                "it is owned by uid {uid}, not by the server's user (uid {w}, the owner of data_directory)"
            ),
            Refusal::Swapped => write!(f, "it was replaced while being opened"),
        }
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Regular => "a regular file",
        Kind::Directory => "a directory",
        Kind::Symlink => "a symbolic link",
        Kind::Fifo => "a FIFO",
        Kind::Other => "a device or socket",
    }
}

/// Why an open failed: a rule, or the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    Refused(Refusal),
    Sys(Errno),
}

impl OpenError {
    /// Whether nothing is at the path (a file not created yet, or gone).
    pub fn not_found(&self) -> bool {
        matches!(self, OpenError::Sys(e) if *e == Errno::NOENT)
    }
}

/// The name of `path` inside `dir` when `path` is directly in `dir` (compared by components,
/// so `a//b/./c` is `a/b/c`; a last component `..` or `.` is never a name).
pub fn name_in<'p>(dir: &Path, path: &'p Path) -> Result<&'p OsStr, Refusal> {
    let outside = || Refusal::Outside(dir.to_path_buf());
    let mut comps = path.components();
    let name = match comps.next_back() {
        Some(Component::Normal(n)) => n,
        _ => return Err(outside()),
    };
    if comps.ne(dir.components()) {
        return Err(outside());
    }
    Ok(name)
}

/// Whether a file described by `fstatat(AT_SYMLINK_NOFOLLOW)` may be read under `rule`.
pub fn judge(st: &Owned, rule: &Rule) -> Result<(), Refusal> {
    match st.kind {
        Kind::Regular => {}
        Kind::Symlink => return Err(Refusal::Symlink),
        k => return Err(Refusal::NotRegular(k)),
    }
    if let Rule::Server { owner, me, .. } = rule {
        let uid = st.uid;
        if uid == 0 || uid == *me {
            return Err(Refusal::Owner { uid, want: None });
        }
        if owner.is_some_and(|o| o != uid) {
            return Err(Refusal::Owner { uid, want: *owner });
        }
    }
    Ok(())
}

/// Opens `path` for reading as `rule` allows.
pub fn open(rule: &Rule, path: &Path) -> Result<(OwnedFd, Meta), OpenError> {
    match rule {
        Rule::Operator => {
            let (fd, meta, st) = logfile::open_nofollow(path).map_err(|e| {
                if e == Errno::LOOP {
                    OpenError::Refused(Refusal::Symlink)
                } else {
                    OpenError::Sys(e)
                }
            })?;
            judge(&st, rule).map_err(OpenError::Refused)?;
            Ok((fd, meta))
        }
        Rule::Server { dir, .. } => {
            let name = name_in(dir, path).map_err(OpenError::Refused)?;
            let dirfd = logfile::open_dir(dir).map_err(OpenError::Sys)?;
            let before = logfile::stat_at(&dirfd, name).map_err(OpenError::Sys)?;
            judge(&before, rule).map_err(OpenError::Refused)?;
            let (fd, meta, after) = logfile::open_at(&dirfd, name).map_err(|e| {
                if e == Errno::LOOP {
                    OpenError::Refused(Refusal::Swapped)
                } else {
                    OpenError::Sys(e)
                }
            })?;
            if (after.dev, after.ino) != (before.dev, before.ino) {
                return Err(OpenError::Refused(Refusal::Swapped));
            }
            judge(&after, rule).map_err(OpenError::Refused)?;
            Ok((fd, meta))
        }
    }
}

/// Whether `path` may be read under `rule`, without opening it (`fstatat` with
/// `AT_SYMLINK_NOFOLLOW` in its directory).
pub fn check(rule: &Rule, path: &Path) -> Result<(), OpenError> {
    let outside = |d: &Path| OpenError::Refused(Refusal::Outside(d.to_path_buf()));
    let (dir, name) = match rule {
        Rule::Server { dir, .. } => (dir.as_path(), name_in(dir, path).map_err(|_| outside(dir))?),
        Rule::Operator => match (path.parent(), path.file_name()) {
            (Some(d), Some(n)) => (
                if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                },
                n,
            ),
            _ => return Err(OpenError::Sys(Errno::INVAL)),
        },
    };
    let st = logfile::open_dir(dir)
        .and_then(|fd| logfile::stat_at(&fd, name))
        .map_err(OpenError::Sys)?;
    judge(&st, rule).map_err(OpenError::Refused)
}

/// Whether `path` may be read under `rule` (a directory listing's candidates: a refused one
/// is not a candidate).
pub fn allowed(rule: &Rule, path: &Path) -> bool {
    check(rule, path).is_ok()
}

/// Reads a small file named by the server (`current_logfiles`) under `rule` into `buf`:
/// `Ok(None)` when it does not exist or is larger than `buf`.
pub fn read_small<'b>(
    rule: &Rule,
    path: &Path,
    buf: &'b mut [u8],
) -> Result<Option<&'b [u8]>, OpenError> {
    let (fd, _) = match open(rule, path) {
        Ok(x) => x,
        Err(e) if e.not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    logfile::read_all_capped(&fd, buf).map_err(OpenError::Sys)
}

/// One line naming the file, the rule and what to do.
pub fn refusal_line(path: &Path, why: &Refusal) -> String {
    format!(
        "refused to read PostgreSQL log {}: {why}; the collector reads only regular files the server owns in its log directory (SECURITY.md); set [pg_log] path if this is really the log",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_directly_in_the_directory() {
        let d = Path::new("/var/lib/pg/data/log");
        assert_eq!(
            name_in(d, Path::new("/var/lib/pg/data/log/a.log")),
            Ok(OsStr::new("a.log"))
        );
        assert_eq!(
            name_in(d, Path::new("/var/lib/pg/data//log/./a.log")),
            Ok(OsStr::new("a.log"))
        );
        let out = Err(Refusal::Outside(d.to_path_buf()));
        assert_eq!(name_in(d, Path::new("/etc/shadow")), out);
        assert_eq!(
            name_in(d, Path::new("/var/lib/pg/data/log/../pg_hba.conf")),
            out
        );
        assert_eq!(name_in(d, Path::new("/var/lib/pg/data/log/sub/a.log")), out);
        assert_eq!(name_in(d, Path::new("/var/lib/pg/data/log/..")), out);
        assert_eq!(name_in(d, Path::new("/var/lib/pg/data/log")), out);
        assert_eq!(name_in(d, Path::new("log/a.log")), out);
        assert_eq!(name_in(d, Path::new("")), out);
        assert_eq!(
            name_in(Path::new("/"), Path::new("/x")),
            Ok(OsStr::new("x"))
        );
    }

    fn st(kind: Kind, uid: u32) -> Owned {
        Owned {
            kind,
            uid,
            dev: 1,
            ino: 2,
        }
    }

    #[test]
    fn judgements() {
        let server = Rule::Server {
            dir: "/l".into(),
            owner: Some(26),
            me: 999,
        };
        assert_eq!(judge(&st(Kind::Regular, 26), &server), Ok(()));
        assert_eq!(
            judge(&st(Kind::Regular, 0), &server),
            Err(Refusal::Owner { uid: 0, want: None })
        );
        assert_eq!(
            judge(&st(Kind::Regular, 999), &server),
            Err(Refusal::Owner {
                uid: 999,
                want: None
            })
        );
        assert_eq!(
            judge(&st(Kind::Regular, 27), &server),
            Err(Refusal::Owner {
                uid: 27,
                want: Some(26)
            })
        );
        assert_eq!(
            judge(&st(Kind::Symlink, 26), &server),
            Err(Refusal::Symlink)
        );
        assert_eq!(
            judge(&st(Kind::Fifo, 26), &server),
            Err(Refusal::NotRegular(Kind::Fifo))
        );
        assert_eq!(
            judge(&st(Kind::Other, 26), &server),
            Err(Refusal::NotRegular(Kind::Other))
        );
        let unknown = Rule::Server {
            dir: "/l".into(),
            owner: None,
            me: 999,
        };
        assert_eq!(judge(&st(Kind::Regular, 27), &unknown), Ok(()));
        // The operator's own path: any owner, but still regular files only.
        assert_eq!(judge(&st(Kind::Regular, 0), &Rule::Operator), Ok(()));
        assert_eq!(
            judge(&st(Kind::Fifo, 0), &Rule::Operator),
            Err(Refusal::NotRegular(Kind::Fifo))
        );
        for r in [
            Refusal::Outside("/l".into()),
            Refusal::Symlink,
            Refusal::NotRegular(Kind::Fifo),
            Refusal::Owner { uid: 0, want: None },
            Refusal::Owner {
                uid: 27,
                want: Some(26),
            },
            Refusal::Swapped,
        ] {
            let line = refusal_line(Path::new("/x"), &r);
            assert!(!line.contains('\n') && line.contains("/x"), "{line}");
        }
    }

    /// A server that claims `data_directory = '/'` and `log_directory = 'etc'` makes `/etc` its
    /// log directory; `/etc/shadow` (and `/etc/passwd`) still belong to root, the owner of the
    /// claimed data directory, and are refused as root's; `../etc/shadow` is outside.
    #[test]
    fn a_claimed_data_directory_does_not_open_root_files() {
        use super::super::discover::ServerLogging;
        let s = ServerLogging {
            log_destination: "stderr".into(),
            logging_collector: true,
            log_directory: Some("etc".into()),
            data_directory: Some("/".into()),
            current_logfile: Some("etc/passwd".into()),
            version_num: 150_004,
            ..ServerLogging::default()
        };
        let place = s.locate(crate::config::PgLogFormat::Auto, None).unwrap();
        let dir = place.dir.unwrap().dir;
        assert_eq!(dir, Path::new("/etc"));
        let rule = Rule::Server {
            dir: dir.clone(),
            owner: logfile::owner_of(Path::new("/")),
            me: logfile::euid().wrapping_add(1),
        };
        let current = place.current.unwrap();
        assert_eq!(
            open(&rule, &current).err(),
            Some(OpenError::Refused(Refusal::Owner { uid: 0, want: None }))
        );
        assert_eq!(
            check(&rule, Path::new("/etc/../etc/shadow")).err(),
            Some(OpenError::Refused(Refusal::Outside(dir)))
        );
    }

    /// Real files, real modes: a regular file, a symbolic link to it, a FIFO, `/dev/zero`,
    /// under both rules. Nothing blocks (the FIFO has no writer).
    #[test]
    fn opens_only_regular_files_without_following_links() {
        let dir = std::env::temp_dir().join(format!("pgac-contain-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.log");
        std::fs::write(&file, b"x\n").unwrap();
        std::os::unix::fs::symlink(&file, dir.join("link.log")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("fifo.log"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let me = logfile::euid();
        if me == 0 {
            // Root's files are never the server's: give it to another user, as the server's.
            rustix::fs::chown(&file, Some(rustix::fs::Uid::from_raw(4242)), None).unwrap();
        }
        let owner = logfile::owner_of(&file).unwrap();
        // As the owner of the file the collector would refuse it; judge as another uid.
        let server = Rule::Server {
            dir: dir.clone(),
            owner: Some(owner),
            me: me.wrapping_add(1),
        };
        for rule in [&Rule::Operator, &server] {
            assert!(open(rule, &file).is_ok());
            assert!(allowed(rule, &file));
            assert_eq!(
                open(rule, &dir.join("link.log")).err(),
                Some(OpenError::Refused(Refusal::Symlink))
            );
            assert!(!allowed(rule, &dir.join("link.log")));
            assert_eq!(
                open(rule, &dir.join("fifo.log")).err(),
                Some(OpenError::Refused(Refusal::NotRegular(Kind::Fifo)))
            );
            assert!(
                open(rule, &dir.join("missing.log"))
                    .unwrap_err()
                    .not_found()
            );
        }
        assert_eq!(
            open(&Rule::Operator, Path::new("/dev/zero")).err(),
            Some(OpenError::Refused(Refusal::NotRegular(Kind::Other)))
        );
        assert_eq!(
            open(&server, Path::new("/dev/zero")).err(),
            Some(OpenError::Refused(Refusal::Outside(dir.clone())))
        );
        let dev = Rule::Server {
            dir: "/dev".into(),
            owner: None,
            me: me.wrapping_add(1),
        };
        assert!(matches!(
            open(&dev, Path::new("/dev/zero")).err(),
            Some(OpenError::Refused(Refusal::NotRegular(Kind::Other)))
                | Some(OpenError::Refused(Refusal::Owner { uid: 0, .. }))
        ));
        // The collector's own files are not the server's.
        let mine = Rule::Server {
            dir: dir.clone(),
            owner: None,
            me: owner,
        };
        assert!(matches!(
            open(&mine, &file).err(),
            Some(OpenError::Refused(Refusal::Owner { .. }))
        ));
        let mut buf = [0u8; 4];
        assert_eq!(
            read_small(&server, &file, &mut buf).unwrap(),
            Some(&b"x\n"[..])
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"345"))
            .unwrap();
        assert_eq!(read_small(&server, &file, &mut buf).unwrap(), None);
        assert_eq!(
            read_small(&server, &dir.join("missing"), &mut buf).unwrap(),
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
