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
use support::backend::{Backend, Fault, PUSH};
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
        Daemon::start_as(&["run", "--stdout"], cfg, entries, stderr)
    }

    /// `args` (`run` pushing to a backend prints nothing on stdout).
    fn start_as(
        args: &[&str],
        cfg: &Path,
        entries: Arc<Mutex<Vec<Value>>>,
        stderr: Arc<Mutex<String>>,
    ) -> Daemon {
        let mut child = cmd()
            .args(args)
            .arg("-c")
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

    /// Asks for a health line (SIGUSR1) and returns its `buffer_bytes`. The collector must be
    /// past its "started" line (signals are blocked from then on).
    fn health_buffer_bytes(&self) -> u64 {
        self.wait_log("\"msg\":\"started\"");
        let health = |text: &str| -> Vec<u64> {
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| v["msg"] == "health")
                .filter_map(|v| serde_json::from_str::<Value>(v["health"].as_str()?).ok())
                .filter_map(|h| h["buffer_bytes"].as_u64())
                .collect()
        };
        let seen = health(&self.stderr()).len();
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::USR1).unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(b) = health(&self.stderr()).get(seen) {
                return *b;
            }
            assert!(
                Instant::now() < deadline,
                "no health line:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
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
    // until it reopens its log. The collector must hold the file open first: a file renamed
    // before it was ever opened, to a name outside the log's pattern (`.1`), is not found.
    let cur = current_file(&c, dest);
    d.wait_log(&cur.display().to_string());
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

/// The workload entries (marker, level) of the pg_log elements in `batches`, in order.
fn pushed_entries(batches: &[support::backend::Batch]) -> Vec<(u32, String)> {
    batches
        .iter()
        .flat_map(|b| b.metrics().to_vec())
        .filter(|m| m["type"] == "pg_log")
        .flat_map(|m| m["entries"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| Some((marker(&e)?, e["level"].as_str()?.to_string())))
        .collect()
}

fn want_entries(range: std::ops::Range<u32>) -> Vec<(u32, String)> {
    range
        .flat_map(|n| expected(n).into_iter().map(move |l| (n, l.to_string())))
        .collect()
}

/// Waits until a push request answered `status` carries an entry of workload item `n`.
fn wait_pushed(b: &Backend, status: u16, n: u32, d: &Daemon) {
    let ok = b.wait(WAIT, |s| {
        s.requests.iter().any(|r| {
            r.path == PUSH
                && r.status == status
                && r.json().is_some_and(|v| {
                    v["metrics"].as_array().is_some_and(|ms| {
                        ms.iter().any(|m| {
                            m["entries"]
                                .as_array()
                                .is_some_and(|es| es.iter().any(|e| marker(e) == Some(n)))
                        })
                    })
                })
        })
    });
    assert!(ok, "item {n} never pushed (HTTP {status}):\n{}", d.stderr());
}

/// The real push sink, not `--stdout`: log offsets advance only over entries whose elements
/// the backend acknowledged. A stop while the backend fails keeps the unacknowledged entries
/// behind the offset; the restart reads them again, and once the backend recovers every entry
/// is delivered exactly once, in order.
#[test]
fn push_sink_restart_while_the_backend_fails_delivers_each_entry_once() {
    const HOST: &str = "pglog-push-host";
    // One log file (no size rotation), so offsets are positions in it.
    let c = Cluster::start(Options {
        settings: vec![
            "logging_collector=on".into(),
            "log_destination=stderr".into(),
            "log_rotation_size=0".into(),
            "log_rotation_age=0".into(),
            "log_min_duration_statement=0".into(),
            "log_line_prefix='%m [%p] %q%u@%d '".into(),
            "lc_messages=C".into(),
        ],
        pg_stat_statements: false,
        ..Options::default()
    });
    let b = Backend::start(support::backend::Options::default());
    let dir = Dir::shared("pglog-push");
    let state = dir.0.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let id = "c-pglog-push";
    std::fs::write(state.join("collector.id"), format!("{id}\n")).unwrap();
    std::fs::write(
        state.join("collector.token"),
        format!("{}\n", b.issue_token(id, HOST)),
    )
    .unwrap();
    // A token others can read is refused at start (SECURITY.md).
    std::fs::set_permissions(
        state.join("collector.token"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let ca = b.certs.write(&dir.0).ca;
    let cfg = config(&dir, &c, "start_at = \"beginning\"");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[collector]\n",
        &format!("[collector]\nhostname = \"{HOST}\"\nconfig_pull_interval = 0\n"),
    ) + &format!(
        // spool_bytes = 0: this test is the memory-only rule (offsets stay behind what is
        // unacknowledged); with the outage spool, spooled elements are final and offsets move.
        "[backend]\nurl = \"{}\"\nretry_initial_secs = 0.2\nretry_max_secs = 1\n\
             spool_bytes = 0\n[tls]\nca_file = {:?}\n",
        b.url,
        ca.display().to_string()
    );
    std::fs::write(&cfg, text).unwrap();
    let entries = Arc::new(Mutex::new(Vec::new()));
    let logs = Arc::new(Mutex::new(String::new()));
    let run = ["run"];

    // Healthy: items 0..100 delivered.
    let d = Daemon::start_as(&run, &cfg, entries.clone(), logs.clone());
    run_workload(&c, &dir, 0..100);
    wait_pushed(&b, 200, 99, &d);

    // Failing: items 100..200 are read into the buffer, never acknowledged; then a stop. The
    // batch in flight when the outage began is resent unchanged, so the requests do not show
    // what was read: the health line (SIGUSR1) does, as bytes waiting. Items 100..200 log the
    // same entries as 0..100 but for the digits of numbers, so most of them are read once
    // nine tenths of the JSON size of 0..100's entries is waiting.
    let phase1: usize = b
        .batches()
        .iter()
        .flat_map(|x| x.metrics().to_vec())
        .filter(|m| m["type"] == "pg_log")
        .flat_map(|m| m["entries"].as_array().cloned().unwrap_or_default())
        .filter(|e| marker(e).is_some_and(|n| n < 100))
        .map(|e| e.to_string().len())
        .sum();
    b.set_outage(Some(Fault::Status(503)));
    assert!(b.wait(WAIT, |s| s.requests.iter().any(|r| r.status == 503)));
    run_workload(&c, &dir, 100..200);
    let deadline = Instant::now() + WAIT;
    loop {
        let waiting = d.health_buffer_bytes();
        if waiting >= phase1 as u64 * 9 / 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} bytes waiting, {phase1} expected:\n{}",
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    d.stop();
    let file = current_file(&c, "stderr");
    let stored = std::fs::read_to_string(state.join("pg_log.offsets")).unwrap();
    let line = stored
        .lines()
        .skip(1)
        .find(|l| l.splitn(6, ' ').nth(5) == Some(file.to_str().unwrap()))
        .unwrap_or_else(|| panic!("{} not in the offsets file:\n{stored}", file.display()));
    let at: usize = line.split(' ').nth(4).unwrap().parse().unwrap();
    let log = std::fs::read_to_string(&file).unwrap();
    let line_start = |i: usize| log[..i].rfind('\n').map_or(0, |p| p + 1);
    let first_unacked = line_start(log.find("wl-00100").unwrap());
    let last_acked = log.rfind("wl-00099").unwrap();
    assert!(
        at <= first_unacked,
        "the offset ({at}) moved past unacknowledged entries (item 100 at {first_unacked}): {line}"
    );
    assert!(
        at > last_acked,
        "the offset ({at}) stayed before acknowledged entries (item 99 at {last_acked}): {line}"
    );

    // Restart while the backend still fails: item 100, behind the offset, is read again and
    // pushed (and refused); more items; then recovery.
    let restarted = Instant::now();
    let d = Daemon::start_as(&run, &cfg, entries.clone(), logs.clone());
    wait_pushed(&b, 503, 100, &d);
    assert!(
        b.requests_to(PUSH).iter().any(|r| r.at > restarted
            && r.status == 503
            && r.body.windows(8).any(|w| w == b"wl-00100")),
        "item 100 read again after the restart"
    );
    run_workload(&c, &dir, 200..250);
    b.set_outage(None);
    wait_pushed(&b, 200, 249, &d);
    d.stop();

    // A batch may be accepted twice only as the same batch (same id, same elements: a request
    // cut by the stop signal after the backend stored it is resent by the last push, which the
    // backend dedups by batch_id); count it once.
    let mut batches: Vec<support::backend::Batch> = Vec::new();
    for x in b.batches() {
        if let Some(first) = batches.iter().find(|y| y.batch_id == x.batch_id) {
            eprintln!(
                "resent: {} ({:?} after the first)",
                x.batch_id,
                x.at - first.at
            );
            assert_eq!(
                first.metrics(),
                x.metrics(),
                "a resend carries the same elements"
            );
            continue;
        }
        batches.push(x);
    }
    assert!(b.violations().is_empty(), "{:?}", b.violations());
    let got = pushed_entries(&batches);
    let want = want_entries(0..250);
    if got != want {
        let first = got
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{} entries delivered, {} written; first difference at {first}: got {:?}, want {:?}\ncollector:\n{}",
            got.len(),
            want.len(),
            got.get(first.saturating_sub(2)..(first + 3).min(got.len())),
            want.get(first.saturating_sub(2)..(first + 3).min(want.len())),
            logs.lock().unwrap()
        );
    }
    let stored = std::fs::read_to_string(state.join("pg_log.offsets")).unwrap();
    check_offsets_name(&stored, &current_file(&c, "stderr"));
}

/// Size rotations, counted: each chunk of the workload logs more than `log_rotation_size`
/// (16 kB; an item logs about 300 bytes) and less than twice it, so it rotates the file
/// exactly once; every file is read, in order, every entry once.
#[test]
fn size_rotations_are_counted_and_each_file_is_read_in_order() {
    const CHUNKS: u32 = 4;
    const ITEMS: u32 = 70;
    let c = Cluster::start(Options {
        settings: vec![
            "logging_collector=on".into(),
            "log_destination=stderr".into(),
            "log_rotation_size=16kB".into(),
            "log_rotation_age=0".into(),
            "log_min_duration_statement=0".into(),
            "log_line_prefix='%m [%p] %q%u@%d '".into(),
            "lc_messages=C".into(),
        ],
        pg_stat_statements: false,
        ..Options::default()
    });
    let dir = Dir::shared("pglog-size");
    let cfg = config(&dir, &c, "start_at = \"beginning\"");
    let entries = Arc::new(Mutex::new(Vec::new()));
    let logs = Arc::new(Mutex::new(String::new()));
    let d = Daemon::start(&cfg, entries.clone(), logs.clone());
    d.wait_log("from offset 0");
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let mut files = vec![current_file(&c, "stderr")];
    for k in 0..CHUNKS {
        // Log file names have a one-second resolution (a rotation within the second that
        // named the current file appends to it): start each chunk in a later second.
        let named = unix();
        while unix() == named {
            std::thread::sleep(Duration::from_millis(20));
        }
        run_workload(&c, &dir, k * ITEMS..(k + 1) * ITEMS);
        let deadline = Instant::now() + WAIT;
        loop {
            let now = current_file(&c, "stderr");
            if now != *files.last().unwrap() {
                files.push(now);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chunk {k} did not rotate the log:\n{}",
                listing(&c)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    d.wait_for(&c, CHUNKS * ITEMS - 1);
    d.stop();
    // The rotations, counted from the directory (file names sort by time): at least one per
    // chunk (a loaded machine may see the syslogger rotate twice in a chunk, when a chunk's
    // tail and the next chunk's head pass 16 kB again), and every file seen as current among
    // them in the order seen.
    let mut in_dir: Vec<_> = std::fs::read_dir(c.dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    in_dir.sort();
    assert!(
        in_dir.len() as u32 > CHUNKS,
        "one size rotation per chunk at least: {in_dir:?}"
    );
    let seen: Vec<usize> = files
        .iter()
        .map(|f| {
            in_dir
                .iter()
                .position(|p| p == f)
                .unwrap_or_else(|| panic!("{f:?} was current but is not in {in_dir:?}"))
        })
        .collect();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "{files:?} vs {in_dir:?}"
    );
    let all = entries.lock().unwrap().clone();
    let got: Vec<(u32, String)> = all
        .iter()
        .filter_map(|e| Some((marker(e)?, e["level"].as_str()?.to_string())))
        .collect();
    assert_eq!(
        got,
        want_entries(0..CHUNKS * ITEMS),
        "every entry once, in order"
    );
    // The sources of the workload's entries, in order: every file that holds workload lines,
    // each read in turn, none skipped and none gone back to.
    let mut sources: Vec<PathBuf> = Vec::new();
    for e in all.iter().filter(|e| marker(e).is_some()) {
        let s = PathBuf::from(e["source"].as_str().unwrap());
        if sources.last() != Some(&s) {
            sources.push(s);
        }
    }
    let with_items: Vec<PathBuf> = in_dir
        .iter()
        .filter(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).contains("wl-"))
        .cloned()
        .collect();
    assert_eq!(sources, with_items, "entries read from each file in turn");
}

/// The workload entries (marker, level) of the pg_log elements in the envelopes a command
/// printed (one JSON envelope per line).
fn printed_entries(stdout: &[u8]) -> Vec<(u32, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .flat_map(|l| {
            let v: Value = serde_json::from_str(l).expect("each line is one envelope");
            v["metrics"].as_array().cloned().unwrap_or_default()
        })
        .filter(|m| m["type"] == "pg_log")
        .flat_map(|m| m["entries"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| Some((marker(&e)?, e["level"].as_str()?.to_string())))
        .collect()
}

/// Waits until the server's current stderr log holds the `duration:` line of item `n` (the
/// last line item `n` makes it write).
fn wait_logged(c: &Cluster, n: u32) {
    let file = current_file(c, "stderr");
    let needle = format!("wl-{n:05}");
    let logged = || {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("duration:") && l.contains(&needle))
    };
    assert!(support::pg::eventually(WAIT, logged), "{needle} logged");
}

/// `run --once` (one round, then exit) sends the last entry of what it read, though no line
/// after it says it ended, and stores the offset after it: a second round sends exactly what
/// came after. `once` (a look) shows the last entry too.
#[test]
fn one_round_sends_the_last_entry_of_the_file() {
    let c = cluster("stderr");
    let dir = Dir::shared("run-once");
    // The file and its settings named: the collector asks the server nothing, so no query of
    // its own (logged under log_min_duration_statement = 0) comes after the workload's last
    // line and ends that entry for it.
    let named = format!(
        "start_at = \"beginning\"\npath = \"{}\"\nformat = \"stderr\"\n\
         log_line_prefix = \"%m [%p] %q%u@%d \"\nlog_timezone = \"UTC\"",
        current_file(&c, "stderr").display()
    );
    let cfg = config(&dir, &c, &named);
    // One collection per round: no second, quiet look ends the last entry.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace("[pg_log]\ninterval = 0.2\n", "[pg_log]\ninterval = 60\n");
    assert!(text.contains("interval = 60\nmin_level"));
    std::fs::write(&cfg, text).unwrap();
    let round = |args: &[&str], cfg: &Path| {
        let out = cmd().args(args).arg("-c").arg(cfg).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {err}");
        printed_entries(&out.stdout)
    };
    run_workload(&c, &dir, 0..8);
    wait_logged(&c, 7);
    // Item 7's last line (its `duration:` LOG) ends the file: nothing after it ends the entry.
    assert_eq!(
        round(&["run", "--stdout", "--once"], &cfg),
        want_entries(0..8),
        "every entry, the last one included, once"
    );
    run_workload(&c, &dir, 8..12);
    wait_logged(&c, 11);
    assert_eq!(
        round(&["run", "--stdout", "--once"], &cfg),
        want_entries(8..12),
        "the second round starts after the last entry of the first"
    );
    // A look with no stored offset: the last 64 KiB of the file.
    let fresh = Dir::shared("run-once-look");
    let look = round(
        &["once", "--sample-ms", "0", "--only", "pg_log"],
        &config(&fresh, &c, &named.replace("start_at = \"beginning\"\n", "")),
    );
    assert_eq!(look.last(), want_entries(11..12).last(), "{look:?}");
}
