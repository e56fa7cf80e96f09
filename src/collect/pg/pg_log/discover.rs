//! Where the PostgreSQL log is and how it is written (docs/metrics.md, `pg_log`, "Formats").
//!
//! Order: `[pg_log] path` (a file, or a directory whose newest file matching `pattern` is the
//! current one); else the server itself (`log_destination`, `logging_collector`,
//! `log_directory`, `data_directory`, `pg_current_logfile()`, the `current_logfiles` file of
//! the data directory, `log_line_prefix`, `log_timezone`), asked over the `[postgres]
//! database` connection; else the Debian location `/var/log/postgresql/postgresql-<major>-
//! <cluster>.log` (the newest `postgresql-*-*.log` there when the server cannot be asked).
//!
//! The pure parts (the `current_logfiles` parser, the glob, the format from a file name, the
//! Debian name) have no I/O; [`Located`] is what one collection found. What this does not do:
//! read the log (that is [`super::tail`]).

use super::contain::Rule;
use crate::config::PgLogFormat;
use crate::pg_log_format::Format;
use std::path::{Path, PathBuf};

/// Directory of Debian's `pg_ctlcluster` logs.
pub const DEBIAN_LOG_DIR: &str = "/var/log/postgresql";

/// The prefix PostgreSQL uses when `log_line_prefix` is unknown (its default since 10).
pub const DEFAULT_PREFIX: &str = "%m [%p] ";

/// Rotated files compressed by logrotate and the like: never read.
pub const COMPRESSED: [&str; 5] = [".gz", ".bz2", ".xz", ".zst", ".lz4"];

/// Most bytes of `current_logfiles` read (it holds one line per destination).
pub const CURRENT_LOGFILES_MAX: usize = 4096;

/// Which files of a directory are logs of this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `[pg_log] pattern` (`*` and `?`).
    Glob(String),
    /// Files ending like the current one (`.log`, `.csv`, `.json`): the server's own
    /// directory, whose `log_filename` may hold any escape.
    Suffix(String),
}

impl Filter {
    pub fn matches(&self, name: &[u8]) -> bool {
        if is_compressed(name) {
            return false;
        }
        match self {
            Filter::Glob(p) => glob(p.as_bytes(), name),
            Filter::Suffix(s) => name.ends_with(s.as_bytes()) && name.len() > s.len(),
        }
    }

    /// Whether `name` is a log of this server or one rotated by renaming: a matching name
    /// followed by `.` and anything (`postgresql-15-main.log.1`), compressed ones excepted.
    pub fn matches_rotated(&self, name: &[u8]) -> bool {
        if self.matches(name) {
            return true;
        }
        if is_compressed(name) {
            return false;
        }
        name.iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'.' && i > 0 && i + 1 < name.len())
            .any(|(i, _)| self.matches(&name[..i]))
    }
}

/// The log directory to look into for rotated and new files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirScan {
    pub dir: PathBuf,
    pub filter: Filter,
}

/// What one collection found: the current file (if any) and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file being written now (`None`: none yet, e.g. an empty directory).
    pub current: Option<PathBuf>,
    /// Where rotated and new files appear (`None`: a single file, followed by name).
    pub dir: Option<DirScan>,
    pub format: Format,
    pub prefix: String,
    /// Zone name of the timestamps (`None`: UTC).
    pub zone: Option<String>,
    /// Which files may be read (`None`: as before).
    pub rule: Option<Rule>,
}

/// Whether `name` is a compressed rotated file.
pub fn is_compressed(name: &[u8]) -> bool {
    COMPRESSED.iter().any(|s| name.ends_with(s.as_bytes()))
}

/// Shell-style match of `name` against `pattern` with `*` (any run) and `?` (one byte).
pub fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// The format of a file: the configured one, else its extension (`.csv`, `.json`), else
/// stderr.
pub fn format_for(config: PgLogFormat, file: &Path) -> Format {
    Format::from_config(config).unwrap_or_else(|| match file.extension().and_then(|e| e.to_str()) {
        Some("csv") => Format::Csvlog,
        Some("json") => Format::Jsonlog,
        _ => Format::Stderr,
    })
}

/// The destination to follow when `log_destination` names several: the one of `[pg_log]
/// format` when it is set and written; otherwise the structured ones first (they carry every
/// field), then stderr. `None` when none of the three is written to a file.
pub fn pick_destination(log_destination: &str, format: PgLogFormat) -> Option<&'static str> {
    let has = |d: &str| {
        log_destination
            .split(',')
            .any(|x| x.trim().eq_ignore_ascii_case(d))
    };
    let asked = match format {
        PgLogFormat::Auto => None,
        PgLogFormat::Stderr => Some("stderr"),
        PgLogFormat::Csvlog => Some("csvlog"),
        PgLogFormat::Jsonlog => Some("jsonlog"),
    };
    asked
        .filter(|d| has(d))
        .or_else(|| ["jsonlog", "csvlog", "stderr"].into_iter().find(|d| has(d)))
}

/// The file suffix PostgreSQL gives a destination's file (`log_filename` then gets `.csv` or
/// `.json` in place of `.log`).
pub fn destination_suffix(destination: &str) -> &'static str {
    match destination {
        "csvlog" => ".csv",
        "jsonlog" => ".json",
        _ => ".log",
    }
}

/// Why `current_logfiles` was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentLogfilesError {
    /// Line `n` (1-based) is not `<destination> <path>`.
    Line(usize),
}

impl std::fmt::Display for CurrentLogfilesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CurrentLogfilesError::Line(n) => {
                write!(f, "line {n} is not `<destination> <path>`")
            }
        }
    }
}

/// Parses the `current_logfiles` file of a data directory: lines `stderr log/postgresql-….log`
/// (the path relative to the data directory unless `log_directory` is absolute). Returns
/// (destination, path) pairs; unknown destinations are kept (a later version may add some).
pub fn parse_current_logfiles(input: &[u8]) -> Result<Vec<(&str, &[u8])>, CurrentLogfilesError> {
    let mut out = Vec::new();
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let sp = line
            .iter()
            .position(|&b| b == b' ')
            .ok_or(CurrentLogfilesError::Line(i + 1))?;
        let dest = std::str::from_utf8(&line[..sp])
            .ok()
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_alphanumeric()))
            .ok_or(CurrentLogfilesError::Line(i + 1))?;
        let path = &line[sp + 1..];
        if path.is_empty() {
            return Err(CurrentLogfilesError::Line(i + 1));
        }
        out.push((dest, path));
    }
    Ok(out)
}

/// Debian's `pg_ctlcluster` log of a cluster: `/var/log/postgresql/postgresql-15-main.log`.
pub fn debian_log_path(major: &str, cluster: &str) -> PathBuf {
    Path::new(DEBIAN_LOG_DIR).join(format!("postgresql-{major}-{cluster}.log"))
}

/// The Debian cluster name: `cluster_name` (`15/main` → `main`), else the data directory's
/// last component (`/var/lib/postgresql/15/main` → `main`).
pub fn debian_cluster(cluster_name: &str, data_directory: &str) -> Option<String> {
    let from_name = cluster_name.rsplit('/').next().filter(|s| !s.is_empty());
    let from_dir = Path::new(data_directory)
        .file_name()
        .and_then(|s| s.to_str());
    from_name
        .or(from_dir)
        .filter(|s| !s.contains(['/', '\0']))
        .map(str::to_string)
}

/// PostgreSQL major version as Debian names it, from `server_version_num` (150004 → `15`,
/// 90624 → `9.6`).
pub fn major_of(version_num: u32) -> String {
    if version_num >= 100_000 {
        (version_num / 10_000).to_string()
    } else {
        format!("{}.{}", version_num / 10_000, version_num / 100 % 100)
    }
}

/// `p` made absolute against `base` (server paths relative to the data directory).
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The newest regular file of `dir` matching `filter` that `rule` allows (latest mtime, then
/// greatest name); symbolic links are not candidates.
pub fn newest_in(dir: &Path, filter: &Filter, rule: &Rule) -> std::io::Result<Option<PathBuf>> {
    use std::os::unix::ffi::OsStrExt;
    let mut best: Option<((i64, i64), std::ffi::OsString)> = None;
    for e in crate::sys::logfile::read_dir(dir)? {
        let name = e.name();
        if !filter.matches(name.as_bytes()) {
            continue;
        }
        let Some(md) = e.lstat_regular() else {
            continue;
        };
        if !super::contain::allowed(rule, &e.path()) {
            continue;
        }
        let key = md.mtime;
        if best.as_ref().is_none_or(|(k, n)| (key, &name) > (*k, n)) {
            best = Some((key, name));
        }
    }
    Ok(best.map(|(_, n)| dir.join(n)))
}

/// What the server says about its logging (the settings this reader needs), as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerLogging {
    pub log_destination: String,
    pub logging_collector: bool,
    pub log_directory: Option<String>,
    pub data_directory: Option<String>,
    pub log_line_prefix: Option<String>,
    pub log_timezone: Option<String>,
    pub cluster_name: Option<String>,
    pub version_num: u32,
    /// `pg_current_logfile(<destination>)` (None: not allowed, or no file).
    pub current_logfile: Option<String>,
}

impl ServerLogging {
    /// Where the log is, from these settings (`current_logfiles` text if it could be read).
    pub fn locate(&self, format: PgLogFormat, current_logfiles: Option<&[u8]>) -> Option<Place> {
        let data = self.data_directory.as_deref().map(Path::new);
        if self.logging_collector {
            let dest = pick_destination(&self.log_destination, format)?;
            let dir = self.log_directory.as_deref().map(|d| match data {
                Some(base) => resolve(base, Path::new(d)),
                None => PathBuf::from(d),
            })?;
            let mut current = self.current_logfile.as_deref().map(PathBuf::from);
            if current.is_none()
                && let Some(text) = current_logfiles
                && let Ok(list) = parse_current_logfiles(text)
            {
                use std::os::unix::ffi::OsStrExt;
                current = list
                    .iter()
                    .find(|(d, _)| *d == dest)
                    .map(|(_, p)| PathBuf::from(std::ffi::OsStr::from_bytes(p)));
            }
            let current = current.map(|c| match data {
                Some(base) => resolve(base, &c),
                None => c,
            });
            let suffix = match format {
                PgLogFormat::Auto => destination_suffix(dest),
                PgLogFormat::Stderr => ".log",
                PgLogFormat::Csvlog => ".csv",
                PgLogFormat::Jsonlog => ".json",
            };
            return Some(Place {
                current,
                dir: Some(DirScan {
                    dir,
                    filter: Filter::Suffix(suffix.to_string()),
                }),
            });
        }
        // No collector: stderr goes where the server was started with; on Debian that is
        // pg_ctlcluster's file.
        let cluster = debian_cluster(
            self.cluster_name.as_deref().unwrap_or(""),
            self.data_directory.as_deref().unwrap_or(""),
        )?;
        Some(Place {
            current: Some(debian_log_path(&major_of(self.version_num), &cluster)),
            dir: None,
        })
    }
}

/// A log location: the current file and the directory of its rotated siblings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub current: Option<PathBuf>,
    pub dir: Option<DirScan>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_a_shell() {
        assert!(glob(b"*.log", b"postgresql-15-main.log"));
        assert!(!glob(b"*.log", b"postgresql-15-main.log.1"));
        assert!(glob(b"postgresql-*-*.log", b"postgresql-15-main.log"));
        assert!(!glob(b"postgresql-*-*.log", b"postgresql.log"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"ac"));
        assert!(glob(b"*", b""));
        assert!(glob(b"**x", b"aax"));
        assert!(!glob(b"", b"a"));
        assert!(glob(b"*a*b*", b"xxaxxbxx"));
    }

    #[test]
    fn filters_skip_compressed_files() {
        let f = Filter::Glob("*".into());
        assert!(f.matches(b"postgresql.log.1"));
        for n in ["a.log.gz", "a.log.2.bz2", "a.xz", "a.zst", "a.lz4"] {
            assert!(!f.matches(n.as_bytes()), "{n}");
        }
        let s = Filter::Suffix(".csv".into());
        assert!(s.matches(b"postgresql-2026-11-28_010000.csv"));
        assert!(!s.matches(b"postgresql-2026-11-28_010000.log"));
        assert!(!s.matches(b".csv"));
        let g = Filter::Glob("*.log".into());
        assert!(g.matches_rotated(b"postgresql-15-main.log"));
        assert!(g.matches_rotated(b"postgresql-15-main.log.1"));
        assert!(!g.matches(b"postgresql-15-main.log.1"));
        assert!(!g.matches_rotated(b"postgresql-15-main.log.2.gz"));
        assert!(!g.matches_rotated(b"postgresql-15-main.log."));
        assert!(!g.matches_rotated(b"postgresql.csv.1"));
        assert!(s.matches_rotated(b"postgresql-2026.csv.renamed"));
    }

    #[test]
    fn formats_from_config_and_extension() {
        let p = Path::new;
        assert_eq!(format_for(PgLogFormat::Auto, p("/l/a.csv")), Format::Csvlog);
        assert_eq!(
            format_for(PgLogFormat::Auto, p("/l/a.json")),
            Format::Jsonlog
        );
        assert_eq!(format_for(PgLogFormat::Auto, p("/l/a.log")), Format::Stderr);
        assert_eq!(format_for(PgLogFormat::Auto, p("/l/a")), Format::Stderr);
        assert_eq!(
            format_for(PgLogFormat::Csvlog, p("/l/a.log")),
            Format::Csvlog
        );
        assert_eq!(
            pick_destination("stderr", PgLogFormat::Auto),
            Some("stderr")
        );
        assert_eq!(
            pick_destination("stderr, csvlog", PgLogFormat::Auto),
            Some("csvlog")
        );
        assert_eq!(
            pick_destination("csvlog,jsonlog", PgLogFormat::Auto),
            Some("jsonlog")
        );
        // `[pg_log] format` names the destination to follow when the server writes it.
        assert_eq!(
            pick_destination("stderr,jsonlog", PgLogFormat::Stderr),
            Some("stderr")
        );
        assert_eq!(
            pick_destination("stderr,csvlog,jsonlog", PgLogFormat::Csvlog),
            Some("csvlog")
        );
        assert_eq!(
            pick_destination("jsonlog", PgLogFormat::Stderr),
            Some("jsonlog")
        );
        assert_eq!(pick_destination("syslog", PgLogFormat::Stderr), None);
    }

    /// Captured from PostgreSQL 15.18 (Debian 12) with `logging_collector = on` and
    /// `log_destination = 'stderr,csvlog,jsonlog'` (also the fuzz seed
    /// `pg15.18-debian12-stderr-csvlog-jsonlog`).
    #[test]
    fn current_logfiles_lines() {
        let text = b"stderr log/postgresql-2026-11-28_011631.log\ncsvlog log/postgresql-2026-11-28_011631.csv\njsonlog log/postgresql-2026-11-28_011631.json\n";
        let got = parse_current_logfiles(text).unwrap();
        assert_eq!(
            got,
            vec![
                ("stderr", &b"log/postgresql-2026-11-28_011631.log"[..]),
                ("csvlog", &b"log/postgresql-2026-11-28_011631.csv"[..]),
                ("jsonlog", &b"log/postgresql-2026-11-28_011631.json"[..]),
            ]
        );
        assert_eq!(parse_current_logfiles(b""), Ok(vec![]));
        assert_eq!(
            parse_current_logfiles(b"stderr /abs/with space.log\r\n"),
            Ok(vec![("stderr", &b"/abs/with space.log"[..])])
        );
        assert_eq!(
            parse_current_logfiles(b"stderr a\nnospace\n"),
            Err(CurrentLogfilesError::Line(2))
        );
        assert_eq!(
            parse_current_logfiles(b"stderr \n"),
            Err(CurrentLogfilesError::Line(1))
        );
        assert_eq!(
            parse_current_logfiles(b"st-derr x\n"),
            Err(CurrentLogfilesError::Line(1))
        );
    }

    #[test]
    fn debian_names() {
        assert_eq!(
            debian_log_path("15", "main"),
            Path::new("/var/log/postgresql/postgresql-15-main.log")
        );
        assert_eq!(debian_cluster("15/main", ""), Some("main".into()));
        assert_eq!(
            debian_cluster("", "/var/lib/postgresql/13/other"),
            Some("other".into())
        );
        assert_eq!(debian_cluster("", ""), None);
        assert_eq!(major_of(150_004), "15");
        assert_eq!(major_of(90_624), "9.6");
    }

    fn settings() -> ServerLogging {
        ServerLogging {
            log_destination: "stderr".into(),
            logging_collector: true,
            log_directory: Some("log".into()),
            data_directory: Some("/var/lib/postgresql/15/main".into()),
            log_line_prefix: Some("%m [%p] %q%u@%d ".into()),
            log_timezone: Some("Etc/UTC".into()),
            cluster_name: Some("15/main".into()),
            version_num: 150_004,
            current_logfile: None,
        }
    }

    #[test]
    fn server_places() {
        let mut s = settings();
        s.current_logfile = Some("log/postgresql-2026-11-28_000000.log".into());
        let p = s.locate(PgLogFormat::Auto, None).unwrap();
        assert_eq!(
            p.current.as_deref(),
            Some(Path::new(
                "/var/lib/postgresql/15/main/log/postgresql-2026-11-28_000000.log"
            ))
        );
        assert_eq!(
            p.dir,
            Some(DirScan {
                dir: "/var/lib/postgresql/15/main/log".into(),
                filter: Filter::Suffix(".log".into())
            })
        );
        // pg_current_logfile() refused: the data directory's current_logfiles answers.
        let mut s = settings();
        s.log_destination = "stderr,csvlog".into();
        s.log_directory = Some("/var/log/pg".into());
        let p = s
            .locate(
                PgLogFormat::Auto,
                Some(b"stderr /var/log/pg/a.log\ncsvlog /var/log/pg/a.csv\n"),
            )
            .unwrap();
        assert_eq!(p.current.as_deref(), Some(Path::new("/var/log/pg/a.csv")));
        assert_eq!(p.dir.unwrap().filter, Filter::Suffix(".csv".into()));
        // `format = "stderr"` follows the stderr file even when a structured one is written.
        let mut s = settings();
        s.log_destination = "stderr,jsonlog".into();
        s.log_directory = Some("/var/log/pg".into());
        let p = s
            .locate(
                PgLogFormat::Stderr,
                Some(b"stderr /var/log/pg/a.log\njsonlog /var/log/pg/a.json\n"),
            )
            .unwrap();
        assert_eq!(p.current.as_deref(), Some(Path::new("/var/log/pg/a.log")));
        assert_eq!(p.dir.unwrap().filter, Filter::Suffix(".log".into()));
        // No logging collector: Debian's file.
        let mut s = settings();
        s.logging_collector = false;
        let p = s.locate(PgLogFormat::Auto, None).unwrap();
        assert_eq!(
            p.current.as_deref(),
            Some(Path::new("/var/log/postgresql/postgresql-15-main.log"))
        );
        assert_eq!(p.dir, None);
        // Only syslog: nothing to read.
        let mut s = settings();
        s.log_destination = "syslog".into();
        assert_eq!(s.locate(PgLogFormat::Auto, None), None);
    }
}
