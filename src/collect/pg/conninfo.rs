//! Connection settings the way libpq finds them: where to connect, as whom, with which
//! password. The rules are pure functions over values and bytes; [`Resolver`] is the thin edge
//! that reads the environment, `/etc/passwd`, the password file and `~/.pgpass`.
//!
//! - host: a name or IP is TCP; an absolute path is a Unix socket directory; none means the
//!   candidates `/var/run/postgresql/.s.PGSQL.<port>`, `/tmp/.s.PGSQL.<port>` (those whose
//!   socket file exists), then `localhost:<port>` over TCP, tried in that order at connect time.
//! - user: `[postgres] user` (PGUSER is already merged into it by the config loader), else the
//!   operating-system user of our uid (`/etc/passwd`), else `USER` / `LOGNAME`.
//! - password: `password_file` (its first line), else `password` (the file or PGPASSWORD),
//!   else `~/.pgpass` (`PGPASSFILE` overrides the path) by the rules of [`super::pgpass`].
//!   A pgpass file that is group- or world-accessible is ignored with a warning, as libpq does.
//!
//! - requirepeer (Unix sockets only): `[postgres] requirepeer`, else `postgres` when
//!   `/etc/passwd` has that user, else no check (said once at info); `""` = no check. A
//!   configured user that does not exist is an error for every socket target.
//!
//! Not handled: `service` files, multiple hosts in one `host` value, `hostaddr`.

use super::client::{ConnectParams, Target};
use super::pgpass;
use crate::config;
use crate::proto::postgres::RequirePeer;
use std::path::{Path, PathBuf};

/// The socket directories tried, in order, when no host is configured (Debian's, then the
/// PostgreSQL default).
pub const DEFAULT_SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// Where to connect, in the order to try: `host` as configured, or libpq's defaults.
/// `socket_exists` tells whether a socket file exists (injected for tests).
pub fn candidates(
    host: Option<&str>,
    port: u16,
    socket_exists: impl Fn(&Path) -> bool,
) -> Vec<Target> {
    match host.map(str::trim).filter(|h| !h.is_empty()) {
        Some(h) if h.starts_with('/') => vec![Target::Unix {
            dir: PathBuf::from(h),
            port,
        }],
        Some(h) => vec![Target::Tcp {
            host: h.to_string(),
            port,
        }],
        None => {
            let mut v: Vec<Target> = DEFAULT_SOCKET_DIRS
                .iter()
                .map(PathBuf::from)
                .filter(|d| socket_exists(&d.join(format!(".s.PGSQL.{port}"))))
                .map(|dir| Target::Unix { dir, port })
                .collect();
            v.push(Target::Tcp {
                host: "localhost".to_string(),
                port,
            });
            v
        }
    }
}

pub use crate::sys::passwd::PasswdEntry;

/// The `/etc/passwd` entry of `uid` (`name:x:uid:gid:gecos:home:shell`).
pub fn passwd_entry(passwd: &[u8], uid: u32) -> Option<PasswdEntry<'_>> {
    crate::sys::passwd::by_uid(passwd, uid)
}

/// The first line of a password file's content, without its line end.
pub fn first_line(content: &[u8]) -> String {
    let line = content.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line).into_owned()
}

/// What the process environment gives the resolver, the way libpq reads it (`PGPASSFILE`,
/// `HOME`, the user name): read once at the edge; tests fill it. Not [`crate::config::Env`].
#[derive(Debug, Clone, Default)]
pub struct LibpqEnv {
    /// The operating-system user name (from `/etc/passwd`, else `USER` / `LOGNAME`).
    pub os_user: Option<String>,
    /// `HOME`, else the passwd home directory.
    pub home: Option<PathBuf>,
    /// `PGPASSFILE`.
    pub pgpassfile: Option<PathBuf>,
    /// `/etc/passwd`'s content (users for `requirepeer`).
    pub passwd: Vec<u8>,
}

impl LibpqEnv {
    /// Reads the real environment and `/etc/passwd`.
    pub fn read() -> LibpqEnv {
        let var = |n: &str| std::env::var_os(n).filter(|v| !v.is_empty());
        let passwd = crate::sys::passwd::read();
        let uid = crate::sys::process::getuid();
        let entry = passwd_entry(&passwd, uid);
        let os_user = entry
            .as_ref()
            .map(|e| e.name.to_string())
            .or_else(|| var("USER").and_then(|v| v.into_string().ok()))
            .or_else(|| var("LOGNAME").and_then(|v| v.into_string().ok()));
        let home = var("HOME").map(PathBuf::from).or_else(|| {
            entry
                .map(|e| PathBuf::from(e.home))
                .filter(|p| p.is_absolute())
        });
        LibpqEnv {
            os_user,
            home,
            pgpassfile: var("PGPASSFILE").map(PathBuf::from),
            passwd,
        }
    }

    /// Where the pgpass file is: `PGPASSFILE`, else `~/.pgpass`.
    pub fn pgpass_path(&self) -> Option<PathBuf> {
        self.pgpassfile
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".pgpass")))
    }
}

/// The user name to connect as: the configured one, else the operating-system user.
pub fn user(cfg: &config::Postgres, env: &LibpqEnv) -> String {
    cfg.user
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| env.os_user.clone())
        .unwrap_or_else(|| "postgres".to_string())
}

/// Who must own a Unix socket (`requirepeer`, SECURITY.md "who is the PostgreSQL server").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRule {
    /// No check (`""`, or unset without a `postgres` user).
    Off,
    Require(RequirePeer),
    /// The configured user is not in `/etc/passwd`: an error for socket targets.
    UnknownUser(String),
}

/// `requirepeer` as configured (`None` = unset) against `/etc/passwd`'s content.
pub fn peer_rule(requirepeer: Option<&str>, passwd: &[u8]) -> PeerRule {
    let name = requirepeer.unwrap_or("postgres");
    if name.is_empty() {
        return PeerRule::Off;
    }
    match crate::sys::passwd::uid_of(passwd, name) {
        Some(uid) => PeerRule::Require(RequirePeer {
            name: name.to_string(),
            uid,
        }),
        None if requirepeer.is_none() => PeerRule::Off,
        None => PeerRule::UnknownUser(name.to_string()),
    }
}

/// Builds [`ConnectParams`] for every connection of one pool: the settings of `[postgres]`
/// plus the resolved user; passwords are looked up per connection (they depend on the target
/// and database, and a password file may be rotated).
#[derive(Debug, Clone)]
pub struct Resolver {
    cfg: config::Postgres,
    env: LibpqEnv,
    user: String,
    peer: PeerRule,
    /// Whether the pgpass permission warning was already logged.
    warned: std::cell::Cell<bool>,
}

impl Resolver {
    pub fn new(cfg: &config::Postgres, env: LibpqEnv) -> Resolver {
        let peer = peer_rule(cfg.requirepeer.as_deref(), &env.passwd);
        if peer == PeerRule::Off && cfg.requirepeer.is_none() {
            crate::agent_log::info(
                "pg",
                "no user postgres on this host: the owner of PostgreSQL's Unix socket is not checked (set [postgres] requirepeer to the server's user)",
                &[],
            );
        }
        Resolver {
            peer,
            user: user(cfg, &env),
            cfg: cfg.clone(),
            env,
            warned: std::cell::Cell::new(false),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn settings(&self) -> &config::Postgres {
        &self.cfg
    }

    /// Where to connect, in order (socket files are looked for now).
    pub fn candidates(&self) -> Vec<Target> {
        candidates(
            self.cfg.host.as_deref(),
            self.cfg.port,
            crate::sys::file::exists,
        )
    }

    /// The configured target as people write it (for messages when nothing was tried yet).
    pub fn describe_host(&self) -> String {
        match self.cfg.host.as_deref().filter(|h| !h.is_empty()) {
            Some(h) if h.starts_with('/') => format!("{h}/.s.PGSQL.{}", self.cfg.port),
            Some(h) => format!("{h}:{}", self.cfg.port),
            None => format!("default socket or localhost:{}", self.cfg.port),
        }
    }

    /// The parameters to connect to `database` at `target`.
    pub fn params(&self, target: &Target, database: &str) -> Result<ConnectParams, String> {
        let requirepeer = match (&self.peer, target) {
            (_, Target::Tcp { .. }) | (PeerRule::Off, _) => None,
            (PeerRule::Require(p), _) => Some(p.clone()),
            (PeerRule::UnknownUser(name), _) => {
                return Err(format!(
                    "[postgres] requirepeer: no user {name:?} in /etc/passwd; set it to the user PostgreSQL runs as, or \"\" to skip the check"
                ));
            }
        };
        Ok(ConnectParams {
            requirepeer,
            require_auth: self.cfg.require_auth.clone(),
            channel_binding: self.cfg.channel_binding,
            target: target.clone(),
            user: self.user.clone(),
            password: self.password(target, database)?,
            database: database.to_string(),
            application_name: self.cfg.application_name.clone(),
            sslmode: self.cfg.sslmode,
            sslrootcert: self.cfg.sslrootcert.clone(),
            connect_timeout: self.cfg.connect_timeout,
            statement_timeout: self.cfg.statement_timeout,
            lock_timeout: self.cfg.lock_timeout,
        })
    }

    /// `password_file` → `password` → pgpass. An unreadable `password_file` is an error (it
    /// was named on purpose); an unusable pgpass is skipped.
    fn password(&self, target: &Target, database: &str) -> Result<Option<String>, String> {
        if let Some(path) = &self.cfg.password_file {
            return crate::sys::file::read(path)
                .map(|b| Some(first_line(&b)).filter(|p| !p.is_empty()))
                .map_err(|e| format!("password_file {}: {e}", path.display()));
        }
        if let Some(p) = self.cfg.password.clone().filter(|p| !p.is_empty()) {
            return Ok(Some(p));
        }
        let Some(path) = self.env.pgpass_path() else {
            return Ok(None);
        };
        let Some(content) = self.read_pgpass(&path) else {
            return Ok(None);
        };
        let (host, unix, port) = match target {
            Target::Tcp { host, port } => (host.clone(), false, *port),
            Target::Unix { dir, port } => (dir.display().to_string(), true, *port),
        };
        Ok(pgpass::find(
            &content,
            &pgpass::Lookup {
                host: &host,
                unix,
                port,
                database,
                user: &self.user,
            },
        ))
    }

    /// The pgpass file's content, if it is a regular file only its owner can access.
    fn read_pgpass(&self, path: &Path) -> Option<Vec<u8>> {
        let meta = crate::sys::file::file_mode(path)?;
        let problem = if !meta.regular {
            Some("is not a plain file")
        } else if !pgpass::mode_ok(meta.mode) {
            Some("has group or world access; it is ignored (run chmod 0600 on it)")
        } else {
            None
        };
        if let Some(problem) = problem {
            if !self.warned.replace(true) {
                crate::agent_log::warn(
                    "pg",
                    &format!("password file {} {problem}", path.display()),
                    &[("file", &path.display().to_string())],
                );
            }
            return None;
        }
        crate::sys::file::read(path).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tests_support::TempDir;

    #[test]
    fn candidates_follow_libpq() {
        let none = |_: &Path| false;
        assert_eq!(
            candidates(Some("db.example"), 6432, none),
            [Target::Tcp {
                host: "db.example".into(),
                port: 6432
            }]
        );
        assert_eq!(
            candidates(Some("/run/pg"), 5432, none),
            [Target::Unix {
                dir: "/run/pg".into(),
                port: 5432
            }]
        );
        assert_eq!(
            candidates(None, 5433, none),
            [Target::Tcp {
                host: "localhost".into(),
                port: 5433
            }]
        );
        let only_tmp = |p: &Path| p == Path::new("/tmp/.s.PGSQL.5432");
        assert_eq!(
            candidates(Some(""), 5432, only_tmp),
            [
                Target::Unix {
                    dir: "/tmp".into(),
                    port: 5432
                },
                Target::Tcp {
                    host: "localhost".into(),
                    port: 5432
                }
            ]
        );
        let both = |p: &Path| p.ends_with(".s.PGSQL.5432");
        let c = candidates(None, 5432, both);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0],
            Target::Unix {
                dir: "/var/run/postgresql".into(),
                port: 5432
            }
        );
    }

    #[test]
    fn passwd_lookup_by_uid() {
        let p = b"root:x:0:0:root:/root:/bin/bash\nbroken\npostgres:x:107:113:PG,,,:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(
            passwd_entry(p, 107),
            Some(PasswdEntry {
                name: "postgres",
                uid: 107,
                home: "/var/lib/postgresql"
            })
        );
        assert_eq!(passwd_entry(p, 0).map(|e| e.name), Some("root"));
        assert_eq!(passwd_entry(p, 5), None);
        assert_eq!(passwd_entry(b"\xff\xfe", 0), None);
    }

    #[test]
    fn requirepeer_defaults_to_postgres_when_it_exists() {
        let with = b"root:x:0:0::/root:/bin/sh\npostgres:x:101:104::/var/lib/postgresql:/bin/sh\n";
        let without = b"root:x:0:0::/root:/bin/sh\n";
        let postgres = PeerRule::Require(RequirePeer {
            name: "postgres".into(),
            uid: 101,
        });
        assert_eq!(peer_rule(None, with), postgres);
        assert_eq!(peer_rule(None, without), PeerRule::Off);
        assert_eq!(peer_rule(Some(""), with), PeerRule::Off);
        assert_eq!(peer_rule(Some("postgres"), with), postgres);
        assert_eq!(
            peer_rule(Some("pgsrv"), with),
            PeerRule::UnknownUser("pgsrv".into())
        );
        // The unknown user is an error for sockets only; TCP has no peer to check.
        let mut c = cfg();
        c.requirepeer = Some("pgsrv".into());
        let env = LibpqEnv {
            passwd: with.to_vec(),
            ..LibpqEnv::default()
        };
        let r = Resolver::new(&c, env.clone());
        let sock = Target::Unix {
            dir: "/tmp".into(),
            port: 5432,
        };
        let tcp = Target::Tcp {
            host: "db".into(),
            port: 5432,
        };
        let e = r.params(&sock, "d").unwrap_err();
        assert!(e.contains("requirepeer") && e.contains("pgsrv"), "{e}");
        assert_eq!(r.params(&tcp, "d").unwrap().requirepeer, None);
        c.requirepeer = None;
        let r = Resolver::new(&c, env);
        assert_eq!(r.params(&sock, "d").unwrap().requirepeer.unwrap().uid, 101);
    }

    #[test]
    fn first_line_strips_the_line_end() {
        assert_eq!(first_line(b"secret\n"), "secret");
        assert_eq!(first_line(b"secret\r\nsecond\n"), "secret");
        assert_eq!(first_line(b"secret"), "secret");
        assert_eq!(first_line(b""), "");
    }

    fn cfg() -> config::Postgres {
        config::Config::default().postgres
    }

    #[test]
    fn user_from_config_else_os() {
        let env = LibpqEnv {
            os_user: Some("alice".into()),
            ..LibpqEnv::default()
        };
        let mut c = cfg();
        c.user = None;
        assert_eq!(user(&c, &env), "alice");
        c.user = Some("bob".into());
        assert_eq!(user(&c, &env), "bob");
    }

    #[test]
    fn password_sources_in_order() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new();
        let pgpass = dir.path().join("pgpass");
        std::fs::write(
            &pgpass,
            "localhost:5432:*:u:from-pgpass\n127.0.0.1:*:*:u:tcp\n",
        )
        .unwrap();
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let env = LibpqEnv {
            os_user: Some("u".into()),
            home: None,
            pgpassfile: Some(pgpass.clone()),
            passwd: Vec::new(),
        };
        let sock = Target::Unix {
            dir: "/tmp".into(),
            port: 5432,
        };
        let tcp = Target::Tcp {
            host: "127.0.0.1".into(),
            port: 9,
        };
        let mut c = cfg();
        c.user = None;
        let r = Resolver::new(&c, env.clone());
        assert_eq!(
            r.params(&sock, "d").unwrap().password.as_deref(),
            Some("from-pgpass")
        );
        assert_eq!(
            r.params(&tcp, "d").unwrap().password.as_deref(),
            Some("tcp")
        );
        assert_eq!(r.params(&sock, "d").unwrap().user, "u");

        // Group-readable: ignored.
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(r.params(&sock, "d").unwrap().password, None);

        c.password = Some("from-config".into());
        let r = Resolver::new(&c, env.clone());
        assert_eq!(
            r.params(&sock, "d").unwrap().password.as_deref(),
            Some("from-config")
        );

        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, "from-file\nignored\n").unwrap();
        c.password_file = Some(pwfile);
        let r = Resolver::new(&c, env.clone());
        assert_eq!(
            r.params(&sock, "d").unwrap().password.as_deref(),
            Some("from-file")
        );

        c.password_file = Some(dir.path().join("missing"));
        let r = Resolver::new(&c, env);
        let e = r.params(&sock, "d").unwrap_err();
        assert!(e.contains("missing"), "{e}");
    }

    #[test]
    fn pgpass_path_prefers_pgpassfile() {
        let env = LibpqEnv {
            os_user: None,
            home: Some("/home/a".into()),
            pgpassfile: None,
            passwd: Vec::new(),
        };
        assert_eq!(env.pgpass_path(), Some(PathBuf::from("/home/a/.pgpass")));
        let env = LibpqEnv {
            pgpassfile: Some("/etc/pw".into()),
            ..env
        };
        assert_eq!(env.pgpass_path(), Some(PathBuf::from("/etc/pw")));
    }
}
