//! Log files named by the server are read only inside its log directory (SECURITY.md, "Files
//! named by the server"), against a real PostgreSQL that this test turns hostile: its
//! `current_logfiles` (which `pg_current_logfile()` reads) and its `log_directory` are pointed
//! at `/etc/shadow`, a symbolic link, a FIFO, `/dev/zero`, files of root and of another user;
//! `current_logfiles` itself becomes a FIFO. Each is refused with one line naming the path and
//! the rule, `once` ends, and the legitimate log is still read. The legitimate layouts keep
//! working: `log_directory` inside the data directory, outside it, and Debian's
//! `/var/log/postgresql` for a server without `logging_collector`.
//!
//! The collector runs as root here (tests run as root): root's own files are refused as the
//! collector's files would be.
mod support;

use serde_json::Value;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::pg::{Cluster, Options, SUPERPASS, SUPERUSER};
use support::tmp::TempDir as Dir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");
const WAIT: Duration = Duration::from_secs(120);

/// A config that runs only `pg_log` against `c` as `user`.
fn config(dir: &Dir, c: &Cluster, name: &str, user: &str, password: &str) -> PathBuf {
    let pw = dir.0.join(format!("{name}.pw"));
    std::fs::write(&pw, format!("{password}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.0.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nstate_dir = \"{}\"\n[logging]\nformat = \"json\"\n\
             [postgres]\nhost = \"{}\"\nport = {}\nuser = \"{user}\"\npassword_file = \"{}\"\n\
             [sysstat]\nenabled = false\n[disk_usage]\nenabled = false\n\
             [pg_stats]\nenabled = false\n[pg_query_stats]\nenabled = false\n\
             [pg_replication]\nenabled = false\n[pg_server]\nenabled = false\n\
             [pg_log]\nmin_level = \"WARNING\"\n",
            dir.0.join("state").display(),
            c.dir.display(),
            c.port,
            pw.display()
        ),
    )
    .unwrap();
    cfg
}

/// What one `once` showed: the pg_log entries (source, message) and all it printed.
struct Look {
    entries: Vec<(String, String)>,
    text: String,
}

/// Runs `once` for pg_log; fails if it does not end within a minute (a FIFO must not block).
fn once(cfg: &Path) -> Look {
    let mut cmd = Command::new(BIN);
    for v in [
        "PGANALYTICS_CONFIG",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
    ] {
        cmd.env_remove(v);
    }
    let mut child = cmd
        .args(["once", "--sample-ms", "0", "--only", "pg_log", "-c"])
        .arg(cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ended = support::pg::eventually(Duration::from_secs(60), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !ended {
        let _ = child.kill();
        panic!("once did not end within 60 s");
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("once printed no JSON ({e}): {stdout}\n{stderr}"));
    let mut entries = Vec::new();
    for m in v["metrics"].as_array().into_iter().flatten() {
        if m["type"] != "pg_log" {
            continue;
        }
        for e in m["entries"].as_array().into_iter().flatten() {
            entries.push((
                e["source"].as_str().unwrap_or("").to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    Look {
        entries,
        text: format!("{stdout}\n{stderr}"),
    }
}

fn warn(c: &Cluster, marker: &str) {
    c.psql(
        "postgres",
        &format!("DO $$ BEGIN RAISE WARNING '{marker}'; END $$"),
    );
}

/// The file `current_logfiles` names for stderr, resolved against the data directory.
fn current_file(c: &Cluster) -> PathBuf {
    let text = std::fs::read_to_string(c.dir.join("current_logfiles")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("stderr "))
        .map(|rel| c.dir.join(rel))
        .unwrap_or_default()
}

fn wait_logged(c: &Cluster, marker: &str) -> PathBuf {
    let mut file = PathBuf::new();
    assert!(
        support::pg::eventually(WAIT, || {
            file = current_file(c);
            std::fs::read_to_string(&file).is_ok_and(|t| t.contains(marker))
        }),
        "the server logged {marker}: {}",
        c.log()
    );
    file
}

fn set_log_directory(c: &Cluster, dir: &str) {
    c.psql(
        "postgres",
        &format!("ALTER SYSTEM SET log_directory = '{dir}'"),
    );
    c.psql("postgres", "SELECT pg_reload_conf()");
    assert!(support::pg::eventually(WAIT, || c
        .psql("postgres", "SHOW log_directory")
        .contains(dir)));
}

fn mkfifo(p: &Path, uid: u32, gid: u32) {
    let _ = std::fs::remove_file(p);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
}

/// One hostile path after another, then the legitimate layouts inside and outside the data
/// directory, on one server.
#[test]
fn files_the_server_names_outside_its_log_directory_are_refused() {
    let c = Cluster::start(Options {
        settings: vec![
            "logging_collector=on".into(),
            "log_destination=stderr".into(),
            "log_rotation_age=0".into(),
            "log_line_prefix='%m [%p] '".into(),
            "log_timezone=UTC".into(),
            "lc_messages=C".into(),
        ],
        pg_stat_statements: false,
        ..Options::default()
    });
    let md = std::fs::metadata(&c.dir).unwrap();
    let (pg_uid, pg_gid) = (md.uid(), md.gid());
    let dir = Dir::shared("contain");
    let cfg = config(&dir, &c, "super", SUPERUSER, SUPERPASS);

    // Legitimate: a relative log_directory inside the data directory.
    warn(&c, "contain-inside-1");
    let real = wait_logged(&c, "contain-inside-1");
    let look = once(&cfg);
    assert!(
        look.entries
            .iter()
            .any(|(s, m)| m.contains("contain-inside-1") && Path::new(s) == real),
        "{}",
        look.text
    );
    assert!(!look.text.contains("refused"), "{}", look.text);

    // Hostile: current_logfiles (what pg_current_logfile() answers) names other files.
    let log = c.dir.join("log");
    let cl = c.dir.join("current_logfiles");
    let saved = std::fs::read(&cl).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", log.join("link.log")).unwrap();
    std::os::unix::fs::lchown(log.join("link.log"), Some(pg_uid), Some(pg_gid)).unwrap();
    mkfifo(&log.join("fifo.log"), pg_uid, pg_gid);
    std::fs::write(log.join("root.log"), "secret of root\n").unwrap();
    std::fs::write(log.join("other.log"), "secret of another user\n").unwrap();
    std::os::unix::fs::chown(log.join("other.log"), Some(4243), Some(4243)).unwrap();
    let cases = [
        (
            "/etc/shadow",
            "/etc/shadow: it is not directly in the server's log directory",
        ),
        ("log/link.log", "link.log: it is a symbolic link"),
        (
            "log/fifo.log",
            "fifo.log: it is not a regular file but a FIFO",
        ),
        (
            "/dev/zero",
            "/dev/zero: it is not directly in the server's log directory",
        ),
        ("log/root.log", "root.log: it is owned by root"),
        (
            "log/other.log",
            "other.log: it is owned by uid 4243, not by the server's user",
        ),
    ];
    for (named, refusal) in cases {
        std::fs::write(&cl, format!("stderr {named}\n")).unwrap();
        let look = once(&cfg);
        assert!(
            look.text.contains("refused to read PostgreSQL log") && look.text.contains(refusal),
            "{named}: {}",
            look.text
        );
        // Collection goes on: the newest file the rules allow is read instead.
        assert!(!look.entries.is_empty(), "{named}: {}", look.text);
        assert!(
            look.entries.iter().all(|(s, _)| Path::new(s) == real),
            "{named}: {}",
            look.text
        );
    }

    // Hostile: current_logfiles itself is a FIFO (read by the collector when the role may
    // not call pg_current_logfile()). Nothing blocks.
    c.psql(
        "postgres",
        "CREATE ROLE weak LOGIN PASSWORD 'weak-password'; GRANT pg_read_all_settings TO weak",
    );
    let weak = config(&dir, &c, "weak", "weak", "weak-password");
    mkfifo(&cl, pg_uid, pg_gid);
    let look = once(&weak);
    assert!(
        look.text
            .contains("current_logfiles: it is not a regular file but a FIFO"),
        "{}",
        look.text
    );
    assert!(
        look.entries.iter().any(|(s, _)| Path::new(s) == real),
        "{}",
        look.text
    );
    std::fs::remove_file(&cl).unwrap();
    std::fs::write(&cl, &saved).unwrap();
    std::os::unix::fs::chown(&cl, Some(pg_uid), Some(pg_gid)).unwrap();

    // Hostile: log_directory itself moved to /dev and /etc, naming /dev/zero and /etc/shadow.
    for (directory, named, refusal) in [
        (
            "/dev",
            "/dev/zero",
            "/dev/zero: it is not a regular file but a device",
        ),
        ("/etc", "/etc/shadow", "/etc/shadow: it is owned by root"),
    ] {
        set_log_directory(&c, directory);
        std::fs::write(&cl, format!("stderr {named}\n")).unwrap();
        let look = once(&cfg);
        assert!(look.text.contains(refusal), "{directory}: {}", look.text);
        assert!(
            look.entries.iter().all(|(s, _)| !s.starts_with(directory)),
            "{directory}: {}",
            look.text
        );
    }

    // Legitimate: an absolute log_directory outside the data directory.
    let outside = dir.0.join("pglogs");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::chown(&outside, Some(pg_uid), Some(pg_gid)).unwrap();
    set_log_directory(&c, outside.to_str().unwrap());
    assert!(
        support::pg::eventually(WAIT, || current_file(&c).starts_with(&outside)),
        "the server rotated into {}: {}",
        outside.display(),
        c.log()
    );
    warn(&c, "contain-outside-1");
    let file = wait_logged(&c, "contain-outside-1");
    let look = once(&cfg);
    assert!(
        look.entries
            .iter()
            .any(|(s, m)| m.contains("contain-outside-1") && Path::new(s) == file),
        "{}",
        look.text
    );
    assert!(!look.text.contains("refused"), "{}", look.text);
    c.stop();
}

/// Debian's layout: no logging_collector, `/var/log/postgresql` (root:postgres 1775) holding
/// `postgresql-<major>-<cluster>.log` owned by the server's user; a symbolic link there in
/// its place is refused.
#[test]
fn debian_var_log_postgresql_is_read_and_a_symlink_there_is_refused() {
    let cluster = format!("pgacdeb{}", std::process::id());
    let c = Cluster::start(Options {
        settings: vec![
            "logging_collector=off".into(),
            format!("cluster_name={cluster}"),
            "log_line_prefix='%m [%p] '".into(),
            "log_timezone=UTC".into(),
        ],
        pg_stat_statements: false,
        ..Options::default()
    });
    let md = std::fs::metadata(&c.dir).unwrap();
    let (pg_uid, pg_gid) = (md.uid(), md.gid());
    let num: u32 = c
        .psql("postgres", "SHOW server_version_num")
        .trim()
        .parse()
        .unwrap();
    let major = num / 10_000;
    let debian = Path::new("/var/log/postgresql");
    let created = !debian.exists();
    if created {
        std::fs::create_dir(debian).unwrap();
        std::os::unix::fs::chown(debian, Some(0), Some(pg_gid)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(debian, std::fs::Permissions::from_mode(0o1775)).unwrap();
    }
    let file = debian.join(format!("postgresql-{major}-{cluster}.log"));
    std::fs::write(
        &file,
        "2026-12-02 21:00:00.000 UTC [4242] WARNING:  contain-debian-1\n\
         2026-12-02 21:00:01.000 UTC [4242] LOG:  checkpoint starting: time\n",
    )
    .unwrap();
    std::os::unix::fs::chown(&file, Some(pg_uid), Some(pg_gid)).unwrap();
    let dir = Dir::shared("contain-debian");
    let cfg = config(&dir, &c, "super", SUPERUSER, SUPERPASS);
    let look = once(&cfg);
    let ok = look
        .entries
        .iter()
        .any(|(s, m)| m.contains("contain-debian-1") && Path::new(s) == file);

    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", &file).unwrap();
    let hostile = once(&cfg);
    std::fs::remove_file(&file).unwrap();
    if created {
        let _ = std::fs::remove_dir(debian);
    }
    c.stop();
    assert!(ok, "{}", look.text);
    assert!(
        hostile.text.contains("it is a symbolic link"),
        "{}",
        hostile.text
    );
    assert!(hostile.entries.is_empty(), "{}", hostile.text);
}
