//! `pg_log` against real servers with `logging_collector = on`, through the binary (`run
//! --stdout`, `once`): in each format (stderr, csvlog, jsonlog on PG ≥ 15) a numbered workload
//! of statements, multi-line statements, errors with DETAIL and HINT, and warnings with slow
//! statements is logged while the log rotates by size, by `pg_rotate_logfile()`, by a rename
//! and a truncation done by hand, and while the collector is stopped and started again. The
//! entries collected of the workload must be exactly those written: same count, messages and
//! levels, in order, none twice.
mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::pg::{Cluster, Options, SUPERPASS, SUPERUSER};
use support::tmp::TempDir as Dir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");

/// Long enough for a heavily oversubscribed 2-core machine (one run under three parallel
/// builds took over 90 s); conditions are polled, never slept for. A hang still fails.
const WAIT: Duration = Duration::from_secs(180);

fn cmd() -> Command {
    let mut c = Command::new(BIN);
    for v in [
        "PGANALYTICS_CONFIG",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
    ] {
        c.env_remove(v);
    }
    c
}

/// A config that runs only `pg_log` (every 0.2 s, pushing every 0.2 s) against `c`.
fn config(dir: &Dir, c: &Cluster, pg_log: &str) -> PathBuf {
    let pw = dir.0.join("pw");
    std::fs::write(&pw, format!("{SUPERPASS}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.0.join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nstate_dir = \"{}\"\ninterval = 60\npush_interval = 0.2\n\
             [logging]\nformat = \"json\"\n\
             [postgres]\nhost = \"{}\"\nport = {}\nuser = \"{SUPERUSER}\"\npassword_file = \"{}\"\n\
             [sysstat]\nenabled = false\n[disk_usage]\nenabled = false\n\
             [pg_stats]\nenabled = false\n[pg_query_stats]\nenabled = false\n\
             [pg_replication]\nenabled = false\n[pg_server]\nenabled = false\n\
             [pg_log]\ninterval = 0.2\nmin_level = \"WARNING\"\n{pg_log}\n",
            dir.0.join("state").display(),
            c.dir.display(),
            c.port,
            pw.display()
        ),
    )
    .unwrap();
    cfg
}

/// A `run --stdout` child; the pg_log entries it prints are gathered by a thread.
struct Daemon {
    child: Child,
    entries: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    fn start(cfg: &Path, entries: Arc<Mutex<Vec<Value>>>, stderr: Arc<Mutex<String>>) -> Daemon {
        let mut child = cmd()
            .args(["run", "--stdout", "-c"])
            .arg(cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let sink = entries.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&l).expect("each line is one envelope");
                for m in v["metrics"].as_array().unwrap() {
                    if m["type"] == "pg_log" {
                        let mut all = sink.lock().unwrap();
                        all.extend(m["entries"].as_array().unwrap().iter().cloned());
                    }
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let keep = stderr.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = keep.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
        Daemon {
            child,
            entries,
            stderr,
        }
    }

    /// SIGTERM, then wait for exit 0 (the last push is made before).
    fn stop(mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status}: {}", self.stderr());
                return;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the collector logged a line containing `needle`.
    fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no collector log line with {needle:?}:\n{}", self.stderr());
    }

    /// Waits until an entry of the workload item `n` was collected.
    fn wait_for(&self, c: &Cluster, n: u32) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self
                .entries
                .lock()
                .unwrap()
                .iter()
                .any(|e| marker(e) == Some(n))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let last: Vec<u32> = self
            .entries
            .lock()
            .unwrap()
            .iter()
            .filter_map(marker)
            .rev()
            .take(5)
            .collect();
        panic!(
            "item {n} not collected (latest: {last:?}); log files:\n{}collector:\n{}",
            listing(c),
            self.stderr()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The log directory's files with their sizes (for failure messages).
fn listing(c: &Cluster) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(c.dir.join("log"))
        .into_iter()
        .flatten()
        .flatten()
    {
        use std::os::unix::fs::MetadataExt;
        let (len, ino, mtime) = e
            .metadata()
            .map(|m| (m.len(), m.ino(), (m.mtime(), m.mtime_nsec())))
            .unwrap_or_default();
        out.push_str(&format!(
            "{} {len} bytes, inode {ino}, mtime {}.{:09}\n",
            e.file_name().to_string_lossy(),
            mtime.0,
            mtime.1
        ));
    }
    out
}

/// The workload number in an entry's message (`wl-00042`).
fn marker(e: &Value) -> Option<u32> {
    let m = e["message"].as_str()?;
    let at = m.find("wl-")?;
    m.get(at + 3..at + 8)?.parse().ok()
}

/// What item `n` makes the server log: (level, with duration), in order.
fn expected(n: u32) -> Vec<&'static str> {
    match n % 4 {
        0 | 2 => vec!["LOG"],
        1 => vec!["ERROR"],
        _ => vec!["WARNING", "LOG"],
    }
}

/// The SQL of items `range`: plain, error with DETAIL and HINT, multi-line, warning + sleep.
fn workload(dir: &Dir, range: std::ops::Range<u32>) -> PathBuf {
    let mut sql = String::new();
    for n in range {
        let w = format!("wl-{n:05}");
        match n % 4 {
            0 => sql.push_str(&format!("SELECT '{w}' AS m;\n")),
            1 => sql.push_str(&format!(
                "DO $$ BEGIN RAISE EXCEPTION '{w} failed' USING DETAIL = 'detail of {w}', HINT = 'hint of {w}'; END $$;\n"
            )),
            2 => sql.push_str(&format!(
                "SELECT '{w}' AS m,\n  2 AS two,\n  'a, \"quoted\" text' AS three;\n"
            )),
            _ => sql.push_str(&format!(
                "DO $$ BEGIN RAISE WARNING '{w} warned'; PERFORM pg_sleep(0.002); END $$;\n"
            )),
        }
    }
    let f = dir.0.join("workload.sql");
    std::fs::write(&f, sql).unwrap();
    f
}

fn run_workload(c: &Cluster, dir: &Dir, range: std::ops::Range<u32>) {
    let f = workload(dir, range);
    c.psql_file_continue("postgres", &f).unwrap();
}

/// The log file the server writes now (from `current_logfiles` in the data directory).
fn current_file(c: &Cluster, dest: &str) -> PathBuf {
    let text = std::fs::read_to_string(c.dir.join("current_logfiles")).unwrap();
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{dest} ")))
        .unwrap_or_else(|| panic!("no {dest} in current_logfiles: {text}"));
    c.dir.join(rel)
}

fn cluster(dest: &str) -> Cluster {
    Cluster::start(Options {
        settings: vec![
            "logging_collector=on".into(),
            format!("log_destination={dest}"),
            "log_rotation_size=64kB".into(),
            "log_rotation_age=0".into(),
            "log_min_duration_statement=0".into(),
            "log_line_prefix='%m [%p] %q%u@%d '".into(),
            "lc_messages=C".into(),
        ],
        pg_stat_statements: false,
        ..Options::default()
    })
}

/// The major version of the server binaries the clusters run (`postgres -V`).
fn server_major() -> u32 {
    let mut c = Command::new(support::pg::bin_dir().join("postgres"));
    if let Ok(ld) = std::env::var("PG_LD_LIBRARY_PATH") {
        c.env("LD_LIBRARY_PATH", ld);
    }
    let out = c.arg("-V").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
    text.split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the version of: {text}"))
}

/// The full scenario in one format.
fn scenario(dest: &str) {
    if dest == "jsonlog" && server_major() < 15 {
        println!(
            "jsonlog needs PostgreSQL 15 or later; skipped on {}",
            server_major()
        );
        return;
    }
    let c = cluster(dest);
    let dir = Dir::shared(dest);
    let cfg = config(&dir, &c, "start_at = \"beginning\"");
    let entries = Arc::new(Mutex::new(Vec::new()));
    let logs = Arc::new(Mutex::new(String::new()));
    let d = Daemon::start(&cfg, entries.clone(), logs.clone());
    d.wait_log("from offset 0");

    // Size rotations while the workload runs, then one asked for.
    run_workload(&c, &dir, 0..150);
    c.psql("postgres", "SELECT pg_rotate_logfile()");
    run_workload(&c, &dir, 150..300);
    d.wait_for(&c, 299);

    // A restart in the middle: what is logged while it is down is read after.
    d.stop();
    run_workload(&c, &dir, 300..400);
    let d = Daemon::start(&cfg, entries.clone(), logs.clone());
    d.wait_for(&c, 399);

    // Rotation by rename (as logrotate does): the server goes on writing to the renamed file
    // until it reopens its log.
    let cur = current_file(&c, dest);
    let mut renamed = cur.clone().into_os_string();
    renamed.push(".1");
    std::fs::rename(&cur, &renamed).unwrap();
    run_workload(&c, &dir, 400..450);
    c.psql("postgres", "SELECT pg_rotate_logfile()");
    run_workload(&c, &dir, 450..550);
    d.wait_for(&c, 549);

    // copytruncate: the file is cut to 0 once everything in it was read.
    let cur = current_file(&c, dest);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cur)
        .unwrap()
        .set_len(0)
        .unwrap();
    run_workload(&c, &dir, 550..650);
    d.wait_for(&c, 649);
    d.stop();

    let all = entries.lock().unwrap().clone();
    let got: Vec<(u32, String)> = all
        .iter()
        .filter_map(|e| Some((marker(e)?, e["level"].as_str()?.to_string())))
        .collect();
    let want: Vec<(u32, String)> = (0..650)
        .flat_map(|n| expected(n).into_iter().map(move |l| (n, l.to_string())))
        .collect();
    if got != want {
        let first = got
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{dest}: {} entries collected, {} written; first difference at {first}: got {:?}, want {:?}\ncollector:\n{}",
            got.len(),
            want.len(),
            got.get(first.saturating_sub(2)..(first + 3).min(got.len())),
            want.get(first.saturating_sub(2)..(first + 3).min(want.len())),
            logs.lock().unwrap()
        );
    }

    // The fields of each kind.
    for e in all.iter().filter(|e| marker(e).is_some()) {
        let n = marker(e).unwrap();
        let w = format!("wl-{n:05}");
        let level = e["level"].as_str().unwrap();
        let msg = e["message"].as_str().unwrap();
        assert!(e["timestamp"].as_str().unwrap().ends_with('Z'), "{e}");
        assert_eq!(e["user"], SUPERUSER, "{e}");
        assert_eq!(e["database"], "postgres", "{e}");
        assert!(e["pid"].as_i64().unwrap() > 0, "{e}");
        let source = e["source"].as_str().unwrap();
        assert!(
            source.starts_with(c.dir.join("log").to_str().unwrap()),
            "{e}"
        );
        match (n % 4, level) {
            (1, "ERROR") => {
                assert_eq!(msg, format!("{w} failed"), "{e}");
                assert_eq!(e["detail"], format!("detail of {w}"), "{e}");
                assert_eq!(e["hint"], format!("hint of {w}"), "{e}");
                assert_eq!(
                    e["sqlstate"],
                    if dest == "stderr" {
                        Value::Null
                    } else {
                        "P0001".into()
                    }
                );
                assert!(
                    e["statement"].as_str().unwrap().contains("RAISE EXCEPTION"),
                    "{e}"
                );
                assert!(e["context"].as_str().unwrap().contains("PL/pgSQL"), "{e}");
            }
            (3, "WARNING") => assert_eq!(msg, format!("{w} warned"), "{e}"),
            (_, "LOG") => {
                assert!(msg.starts_with("duration: "), "{e}");
                assert!(e["duration_ms"].as_f64().unwrap() >= 0.0, "{e}");
                if n % 4 == 2 {
                    assert!(
                        msg.contains(&format!(
                            "'{w}' AS m,\n  2 AS two,\n  'a, \"quoted\" text' AS three;"
                        )),
                        "the multi-line statement whole: {e}"
                    );
                }
                if n % 4 == 3 {
                    assert!(e["duration_ms"].as_f64().unwrap() >= 2.0, "{e}");
                }
            }
            other => panic!("unexpected {other:?}: {e}"),
        }
    }

    // The offsets file names the current file by device and inode, read to its end (the last
    // push after SIGTERM delivered everything, so the offset is the file's length).
    let stored = std::fs::read_to_string(dir.0.join("state/pg_log.offsets")).unwrap();
    assert!(
        stored.starts_with("# pganalytics-collector pg_log offsets v1\n"),
        "{stored}"
    );
    let cur = current_file(&c, dest);
    check_offsets_name(&stored, &cur);
}

/// `stored` (pg_log.offsets) has a line for `file` (`<device> <inode> <fingerprint length>
/// <hash> <offset> <path>`) with the file's device and inode, the fingerprint length of its
/// first bytes, and an offset past every workload entry.
fn check_offsets_name(stored: &str, file: &Path) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file).unwrap();
    let line = stored
        .lines()
        .skip(1)
        .find(|l| l.splitn(6, ' ').nth(5) == Some(file.to_str().unwrap()))
        .unwrap_or_else(|| panic!("{} not in the offsets file:\n{stored}", file.display()));
    let f: Vec<&str> = line.splitn(6, ' ').collect();
    assert_eq!(f[0].parse::<u64>().unwrap(), meta.dev(), "device: {line}");
    assert_eq!(f[1].parse::<u64>().unwrap(), meta.ino(), "inode: {line}");
    assert_eq!(
        f[2].parse::<u64>().unwrap(),
        meta.len().min(1024),
        "fingerprint length: {line}"
    );
    // Read to its end but for the last entry, which stays pending until a next line shows it
    // is complete (here the collector's own statement, logged after the last workload item).
    let at = f[4].parse::<usize>().unwrap();
    let text = std::fs::read(file).unwrap();
    let rest = String::from_utf8_lossy(&text[at.min(text.len())..]).into_owned();
    assert!(
        at <= text.len() && (at == 0 || text[at - 1] == b'\n'),
        "offset: {line}"
    );
    assert!(
        !rest.contains("wl-") && rest.len() < 1024,
        "more than the last entry after the offset: {line}: {rest:?}"
    );
}

#[test]
fn stderr_every_entry_once_across_rotations_and_restarts() {
    scenario("stderr");
}

#[test]
fn csvlog_every_entry_once_across_rotations_and_restarts() {
    scenario("csvlog");
}

#[test]
fn jsonlog_every_entry_once_across_rotations_and_restarts() {
    scenario("jsonlog");
}

/// `once` with no `[pg_log] path` asks the server where its log is and shows recent entries.
#[test]
fn once_finds_the_log_from_the_server() {
    let c = cluster("stderr");
    let dir = Dir::shared("once");
    let cfg = config(&dir, &c, "");
    run_workload(&c, &dir, 0..8);
    let last = current_file(&c, "stderr");
    let wrote = || {
        std::fs::read_to_string(&last)
            .unwrap_or_default()
            .contains("wl-00007 warned")
    };
    assert!(
        support::pg::eventually(WAIT, wrote),
        "the server logged the workload"
    );
    let out = cmd()
        .args(["once", "--sample-ms", "0", "--only", "pg_log", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let el = v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == "pg_log")
        .unwrap_or_else(|| panic!("no pg_log element: {v} {err}"));
    let entries = el["entries"].as_array().unwrap();
    let markers: Vec<u32> = entries.iter().filter_map(marker).collect();
    assert!(markers.contains(&7), "{el}");
    assert!(
        entries
            .iter()
            .all(|e| e["source"] == last.to_str().unwrap()),
        "{el}"
    );
    assert!(
        !dir.0.join("state/pg_log.offsets").exists(),
        "once is a look: no offsets stored"
    );
}
