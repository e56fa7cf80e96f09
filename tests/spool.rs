//! The outage spool (docs/protocol.md, "Spool") and the state directory's lock, end to end:
//! the real binary against the contract backend of tests/support/backend.rs (TLS 1.3), real
//! files, real `kill -9`, a real full tmpfs and a real read-only bind mount (tests run as root,
//! so file modes would prove nothing).
//!
//! The spool's files are read here with a walker written for the test (magic, length, skip),
//! so that "what was on disk" is known independently of the collector's reader.

mod support;

use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::backend::{Backend, Fault, Options};
use support::tmp::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");
const HOSTNAME: &str = "spool-test-host";

fn config(dir: &Path, state: &Path, b: &Backend, extra: &str) -> PathBuf {
    let ca = b.certs.write(dir).ca;
    let text = format!(
        r#"[collector]
hostname = "{HOSTNAME}"
interval = 0.2
push_interval = 0.2
config_pull_interval = 0
state_dir = {state:?}

[backend]
url = "{url}"
retry_initial_secs = 0.2
retry_max_secs = 0.5
connect_timeout_secs = 2
request_timeout_secs = 2
{extra}

[tls]
ca_file = {ca:?}

[logging]
format = "json"
level = "info"

[sysstat]
interval = 0.2

[disk_usage]
enabled = false
[pg_stats]
enabled = false
[pg_query_stats]
enabled = false
[pg_log]
enabled = false
[pg_replication]
enabled = false
[pg_server]
enabled = false
"#,
        url = b.url,
        state = state.display().to_string(),
        ca = ca.display().to_string(),
    );
    let p = dir.join("collector.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `collector.id` and a backend-issued token in `state`, as a registration would write them.
fn provision(state: &Path, b: &Backend) {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let id = format!("c-{n:08x}");
    std::fs::create_dir_all(state).unwrap();
    std::fs::write(state.join("collector.id"), format!("{id}\n")).unwrap();
    std::fs::write(
        state.join("collector.token"),
        format!("{}\n", b.issue_token(&id, HOSTNAME)),
    )
    .unwrap();
    // A token others can read is refused at start (SECURITY.md, "Secrets at rest").
    std::fs::set_permissions(
        state.join("collector.token"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
}

struct Daemon {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = Command::new(BIN)
            .env_remove("PGANALYTICS_CONFIG")
            .args(["run", "-c"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        Daemon { child, stderr }
    }
    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
    fn lines_with(&self, text: &str) -> usize {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }
    fn signal(&self, s: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, s).unwrap();
    }
    fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 20 ms until it holds (panics after `within`).
fn until(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The records in the spool's segment files, in order, as (batch id hex, JSON), walked by
/// magic and length only; stops at a record cut short.
fn spool_records(state: &Path) -> Vec<(String, Value)> {
    let dir = state.join("spool");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|r| {
            r.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".seg"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let bytes = std::fs::read(dir.join(&n)).unwrap();
        let mut at = 0;
        while at + 28 <= bytes.len() {
            assert_eq!(&bytes[at..at + 4], b"PGAS", "{n} at {at}");
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            if at + 28 + len > bytes.len() {
                break;
            }
            let id: String = bytes[at + 12..at + 28]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            out.push((
                id,
                serde_json::from_slice(&bytes[at + 28..at + 28 + len]).unwrap(),
            ));
            at += 28 + len;
        }
    }
    out
}

fn spool_exists(state: &Path) -> bool {
    state.join("spool").exists()
}

/// Every accepted element, after checking: no contract violation, a batch id accepted twice
/// only after a lost reply. Panics when an element arrives twice: a `collector_health` (each
/// carries its round and uptime, so two equal texts are one element sent twice), or more
/// sysstat samples in one second than the 0.2 s grid can take (5, plus one whose tick ran
/// late across the second). Sysstat texts alone cannot tell: timestamps have a one-second
/// resolution, and on a machine whose load is steady two samples 0.2 s apart can be
/// byte-identical.
fn delivered(b: &Backend) -> Vec<Value> {
    assert!(b.violations().is_empty(), "{:?}", b.violations());
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    let mut healths = HashSet::new();
    for batch in b.batches() {
        if !ids.insert(batch.batch_id.clone()) {
            continue;
        }
        for m in batch.metrics() {
            if m["type"] == "collector_health" {
                assert!(healths.insert(m.to_string()), "delivered twice: {m}");
            }
            out.push(m.clone());
        }
    }
    for (sec, n) in per_second(&out) {
        assert!(
            n <= 6,
            "{n} sysstat samples in second {sec}: some delivered twice"
        );
    }
    out
}

/// Sysstat samples per unix second.
fn per_second(elements: &[Value]) -> std::collections::BTreeMap<i64, usize> {
    let mut m = std::collections::BTreeMap::new();
    for e in elements.iter().filter(|e| e["type"] == "sysstat") {
        *m.entry(secs_of(e["timestamp"].as_str().unwrap()) as i64)
            .or_default() += 1;
    }
    m
}

/// The latest second with a sample.
fn last_sample(elements: &[Value]) -> f64 {
    per_second(elements)
        .keys()
        .next_back()
        .map_or(0.0, |&s| s as f64)
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SS[.f]Z`.
fn secs_of(ts: &str) -> f64 {
    let n = |a: usize, b: usize| ts[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let whole = days * 86400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19);
    let frac = ts[19..].trim_end_matches('Z').parse::<f64>().unwrap_or(0.0);
    whole as f64 + frac
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The seconds, between the first and the last with a sample (both left out: partly
/// covered), with fewer than 3 samples (5 are taken per second, 0.2 s apart).
fn gaps(elements: &[Value]) -> Vec<(i64, usize)> {
    let m = per_second(elements);
    let (Some(&first), Some(&last)) = (m.keys().next(), m.keys().next_back()) else {
        return Vec::new();
    };
    (first + 1..last)
        .map(|s| (s, m.get(&s).copied().unwrap_or(0)))
        .filter(|&(_, n)| n < 3)
        .collect()
}

fn healths(elements: &[Value]) -> Vec<Value> {
    elements
        .iter()
        .filter(|e| e["type"] == "collector_health")
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn a_healthy_run_never_writes_the_spool_and_a_second_run_is_refused() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("spool-healthy");
    let state = dir.0.join("state");
    provision(&state, &b);
    let cfg = config(&dir.0, &state, &b, "");
    let d = Daemon::start(&cfg);
    // The stimulus: 15 push rounds against a healthy backend, the spool directory watched.
    let mut rounds = 0;
    until(Duration::from_secs(30), "15 accepted pushes", || {
        assert!(!spool_exists(&state), "spool written while healthy");
        rounds = b.batches().len();
        rounds >= 15
    });
    assert!(!spool_exists(&state));
    let els = delivered(&b);
    let h = healths(&els);
    assert_eq!(h.last().unwrap()["spool_elements"], 0, "{h:?}");
    assert_eq!(h.last().unwrap()["spool_bytes"], 0);

    // One run per state directory: the second one says who holds it and exits 2.
    let out = Command::new(BIN)
        .args(["run", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("(pid {})", d.child.id())) && err.contains("lock"),
        "{err}"
    );
    drop(d);
}

/// Runs a collector into a 503 outage until the spool holds at least `records` records;
/// returns it and the time the outage began.
fn into_outage(b: &Backend, cfg: &Path, state: &Path, records: usize) -> (Daemon, f64) {
    let d = Daemon::start(cfg);
    until(Duration::from_secs(20), "a first accepted push", || {
        !b.batches().is_empty()
    });
    let from = now_secs();
    b.set_outage(Some(Fault::Status(503)));
    until(Duration::from_secs(30), "records in the spool", || {
        spool_records(state).len() >= records
    });
    (d, from)
}

#[test]
fn kill_9_during_an_outage_loses_at_most_the_round_in_progress() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("spool-kill");
    let state = dir.0.join("state");
    provision(&state, &b);
    let cfg = config(&dir.0, &state, &b, "");
    let (mut d, _) = into_outage(&b, &cfg, &state, 15);
    // The stimulus: kill -9 in the middle of the outage.
    d.kill9();
    let killed = now_secs();
    let on_disk = spool_records(&state);
    // The batch in flight when the outage began was spooled with its id.
    assert!(
        on_disk.iter().any(|(id, _)| id != &"0".repeat(32)),
        "{on_disk:?}"
    );
    b.set_outage(None);
    let restarted = now_secs();
    let d2 = Daemon::start(&cfg);
    until(Duration::from_secs(30), "the spool replayed", || {
        last_sample(&delivered(&b)) > restarted + 1.0
    });
    let els = delivered(&b);
    // Every element on disk at the kill arrived (exactly once: `delivered` checks it).
    let got: HashSet<String> = els.iter().map(Value::to_string).collect();
    for (_, e) in &on_disk {
        assert!(got.contains(&e.to_string()), "spooled element lost: {e}");
    }
    // Contiguous except the kill-to-restart gap: every second before the kill is whole.
    let g = gaps(&els);
    assert!(
        g.iter()
            .all(|&(s, _)| s as f64 >= killed.floor() && (s as f64) < restarted.ceil() + 1.0),
        "gaps {g:?} outside the kill ({killed}) to restart ({restarted}) time"
    );
    // And the samples before the kill reach into its second or the one before.
    let before: Vec<i64> = per_second(&els)
        .keys()
        .copied()
        .filter(|&s| (s as f64) <= killed)
        .collect();
    assert!(
        before
            .last()
            .is_some_and(|&s| s as f64 >= killed.floor() - 1.0),
        "{before:?} killed {killed}"
    );
    // The spool is gone once delivered, and the new run reports it empty.
    until(Duration::from_secs(10), "the spool emptied", || {
        spool_records(&state).is_empty()
    });
    assert!(d2.lines_with("the outage spool holds elements from an earlier run") == 1);
}

#[test]
fn a_power_loss_loses_only_the_damaged_records_and_counts_them() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("spool-power");
    let state = dir.0.join("state");
    provision(&state, &b);
    let cfg = config(&dir.0, &state, &b, "");
    let (mut d, _) = into_outage(&b, &cfg, &state, 12);
    d.kill9();
    let on_disk = spool_records(&state);
    // The stimulus: the last segment cut in its last record, one byte flipped in the JSON of
    // an earlier record (the 4th).
    let seg = {
        let mut names: Vec<PathBuf> = std::fs::read_dir(state.join("spool"))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        names.sort();
        assert_eq!(names.len(), 1, "one segment at this size");
        names.pop().unwrap()
    };
    let mut bytes = std::fs::read(&seg).unwrap();
    let mut starts = Vec::new();
    let mut at = 0;
    while at + 28 <= bytes.len() {
        starts.push(at);
        at += 28 + u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
    }
    assert_eq!(starts.len(), on_disk.len());
    bytes[starts[3] + 28 + 10] ^= 0x01;
    let cut = bytes.len() - 7;
    bytes.truncate(cut);
    std::fs::write(&seg, &bytes).unwrap();
    let lost: HashSet<String> = [3, on_disk.len() - 1]
        .iter()
        .map(|&i| on_disk[i].1.to_string())
        .collect();

    b.set_outage(None);
    let restarted = now_secs();
    let mut d2 = Daemon::start(&cfg);
    until(Duration::from_secs(30), "the spool replayed", || {
        last_sample(&delivered(&b)) > restarted + 1.0
    });
    assert!(d2.alive());
    let els = delivered(&b);
    let got: HashSet<String> = els.iter().map(Value::to_string).collect();
    for (_, e) in &on_disk {
        let text = e.to_string();
        assert_eq!(
            got.contains(&text),
            !lost.contains(&text),
            "{text}: only the damaged records are lost"
        );
    }
    // Counted: the flipped record and the torn tail, in the new run's health.
    let h = healths(&els);
    let corrupt: Vec<u64> = h
        .iter()
        .filter_map(|x| x["spool_corrupt"].as_u64())
        .collect();
    assert!(corrupt.contains(&2), "{corrupt:?}");
    d2.signal(rustix::process::Signal::TERM);
    assert!(d2.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn sigterm_during_an_outage_spools_memory_and_the_next_start_sends_it() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("spool-term");
    let state = dir.0.join("state");
    provision(&state, &b);
    let cfg = config(&dir.0, &state, &b, "");
    let (mut d, _) = into_outage(&b, &cfg, &state, 5);
    let before = b.batches().len();
    d.signal(rustix::process::Signal::TERM);
    assert!(
        d.wait_exit(Duration::from_secs(15)).success(),
        "{}",
        d.log()
    );
    assert_eq!(
        b.batches().len(),
        before,
        "nothing accepted during the outage"
    );
    let on_disk = spool_records(&state);
    // The last health element (the last push round) was spooled at exit.
    assert!(
        on_disk
            .last()
            .is_some_and(|(_, e)| e["type"] == "collector_health"),
        "{on_disk:?}"
    );
    b.set_outage(None);
    let _d2 = Daemon::start(&cfg);
    until(Duration::from_secs(30), "the spool sent", || {
        let got: HashSet<String> = delivered(&b).iter().map(Value::to_string).collect();
        on_disk.iter().all(|(_, e)| got.contains(&e.to_string()))
    });
    // Oldest first: the spooled elements arrive before anything the new run collected.
    let order: Vec<String> = b
        .batches()
        .iter()
        .skip(before)
        .flat_map(|x| x.metrics().to_vec())
        .map(|e| e.to_string())
        .collect();
    let spooled: Vec<String> = on_disk.iter().map(|(_, e)| e.to_string()).collect();
    assert_eq!(&order[..spooled.len()], &spooled[..]);
}

/// A mount for the length of a test, undone when dropped.
struct Mount(PathBuf);

impl Mount {
    fn run(args: &[&str]) {
        let out = Command::new("mount").args(args).output().unwrap();
        assert!(out.status.success(), "mount {args:?}: {out:?}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// An outage with a spool that cannot be written: one error line, memory keeps everything,
/// the process lives on, and after the outage every sample arrives once and without a gap.
fn unwritable_spool_keeps_memory(b: &Backend, cfg: &Path, state: &Path) {
    let mut d = Daemon::start(cfg);
    until(Duration::from_secs(20), "a first accepted push", || {
        !b.batches().is_empty()
    });
    b.set_outage(Some(Fault::Status(503)));
    until(Duration::from_secs(20), "the spool error", || {
        d.lines_with("cannot write the outage spool") >= 1
    });
    let first_error = d.log();
    // Several more rounds fail to spool.
    let failing = Instant::now();
    until(Duration::from_secs(20), "rounds", || {
        failing.elapsed() > Duration::from_millis(1500)
    });
    assert!(d.alive(), "{}", d.log());
    // Logged on the repeated-failure rule (1st, 2nd, 4th … failure), not every round.
    let n = d.lines_with("cannot write the outage spool");
    assert!((1..=5).contains(&n), "{n} error lines\n{first_error}");
    let line = d
        .stderr
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("cannot write the outage spool"))
        .cloned()
        .unwrap();
    assert!(line.contains("stay in memory"), "{line}");
    // Nothing half-written stays in the spool.
    for (_, e) in spool_records(state) {
        assert!(e.is_object());
    }
    b.set_outage(None);
    let back = now_secs();
    until(Duration::from_secs(30), "delivery after the outage", || {
        last_sample(&delivered(b)) > back + 1.0
    });
    assert_eq!(gaps(&delivered(b)), vec![], "no sample lost");
}

#[test]
fn a_full_disk_keeps_the_outage_in_memory() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("spool-enospc");
    let state = dir.0.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let _m = Mount(state.clone());
    Mount::run(&[
        "-t",
        "tmpfs",
        "-o",
        "size=64k,mode=0700",
        "tmpfs",
        state.to_str().unwrap(),
    ]);
    provision(&state, &b);
    // Leave a few KiB free: the first spool round fills them.
    let free = || {
        let s = rustix::fs::statvfs(&state).unwrap();
        s.f_bavail * s.f_frsize
    };
    let filler = vec![b'x'; (free() as usize).saturating_sub(8 * 1024)];
    std::fs::write(state.join("filler"), &filler).unwrap();
    assert!(free() <= 12 * 1024, "{}", free());
    let cfg = config(&dir.0, &state, &b, "");
    unwritable_spool_keeps_memory(&b, &cfg, &state);
}

#[test]
fn a_read_only_state_directory_keeps_the_outage_in_memory() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("spool-erofs");
    let real = dir.0.join("real");
    provision(&real, &b);
    // The lock file exists (a read-only file system cannot create it); flock works on it.
    std::fs::write(real.join("lock"), "").unwrap();
    let state = dir.0.join("state");
    std::fs::create_dir_all(&state).unwrap();
    Mount::run(&["--bind", real.to_str().unwrap(), state.to_str().unwrap()]);
    let _m = Mount(state.clone());
    Mount::run(&["-o", "remount,ro,bind", state.to_str().unwrap()]);
    assert!(
        std::fs::write(state.join("probe"), "").is_err(),
        "read-only"
    );
    let cfg = config(&dir.0, &state, &b, "");
    unwritable_spool_keeps_memory(&b, &cfg, &state);
}

/// Bytes of the spool's segment files on disk.
fn spool_bytes_on_disk(state: &Path) -> u64 {
    std::fs::read_dir(state.join("spool"))
        .map(|r| {
            r.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The spool's bound (docs/protocol.md, "Spool"): an outage that writes more than
/// `spool_bytes` drops the oldest segments, never the newest, and counts their elements in
/// `metrics_dropped`. The volume comes from pg_log reading a 30 MB log file from its beginning
/// (its file and settings named, so no server is asked), with the backend down from the start.
/// When it comes back, what arrives is one contiguous run of the newest entries up to the last
/// one, each once (a batch already read from a dropped segment, waiting for the backend, goes
/// with its segment), and the warnings add up to `metrics_dropped`.
#[test]
fn a_full_spool_drops_its_oldest_segment_and_counts_it() {
    const ENTRIES: usize = 100_000;
    const PER_ELEMENT: usize = 2_000;
    const SPOOL_BYTES: u64 = 8 << 20; // the smallest bound a configuration may set
    let b = Backend::start(Options::default());
    b.set_outage(Some(Fault::Status(503)));
    let dir = TempDir::new("spool-bound");
    let state = dir.0.join("state");
    provision(&state, &b);
    let log = dir.0.join("postgresql.log");
    let mut text = String::with_capacity(ENTRIES * 300);
    let pad = "x".repeat(240);
    for i in 0..ENTRIES {
        text.push_str(&format!(
            "2026-12-03 05:00:00.000 UTC [4242] LOG:  entry {i:06} {pad}\n"
        ));
    }
    std::fs::write(&log, &text).unwrap();
    let cfg = config(&dir.0, &state, &b, &format!("spool_bytes = {SPOOL_BYTES}"));
    let toml = std::fs::read_to_string(&cfg).unwrap().replace(
        "[pg_log]\nenabled = false\n",
        &format!(
            "[pg_log]\nenabled = true\ninterval = 0.2\nstart_at = \"beginning\"\npath = {:?}\n\
             format = \"stderr\"\nlog_line_prefix = \"%m [%p] \"\nlog_timezone = \"UTC\"\n\
             min_level = \"LOG\"\nmax_entries = {PER_ELEMENT}\n",
            log.display().to_string()
        ),
    );
    assert!(toml.contains("max_entries"), "{toml}");
    std::fs::write(&cfg, toml).unwrap();

    let mut d = Daemon::start(&cfg);
    // The stimulus: the whole file read during the outage, past the spool's bound.
    let dropped_line = "its oldest segment was dropped";
    let mut on_disk_max = 0;
    until(Duration::from_secs(120), "a dropped segment", || {
        on_disk_max = on_disk_max.max(spool_bytes_on_disk(&state));
        d.lines_with(dropped_line) > 0
    });
    let offsets = state.join("pg_log.offsets");
    let size = text.len().to_string();
    until(Duration::from_secs(120), "the whole file read", || {
        on_disk_max = on_disk_max.max(spool_bytes_on_disk(&state));
        std::fs::read_to_string(&offsets).is_ok_and(|o| {
            o.lines()
                .skip(1)
                .any(|l| l.split(' ').nth(4) == Some(size.as_str()))
        })
    });
    // A round's append may pass the bound before the oldest segment goes; never much more.
    assert!(
        on_disk_max <= SPOOL_BYTES + (4 << 20),
        "{on_disk_max} bytes of spool on disk with spool_bytes = {SPOOL_BYTES}"
    );
    b.set_outage(None);
    let last = format!("entry {:06} ", ENTRIES - 1);
    until(Duration::from_secs(120), "the last entry delivered", || {
        b.batches().iter().any(|x| {
            x.metrics()
                .iter()
                .any(|m| m["type"] == "pg_log" && m.to_string().contains(&last))
        })
    });
    // One more health element after the replay, then a clean stop.
    let rounds = healths(&delivered(&b)).len();
    until(
        Duration::from_secs(30),
        "a health element after the replay",
        || healths(&delivered(&b)).len() > rounds + 1,
    );
    d.signal(rustix::process::Signal::TERM);
    assert!(
        d.wait_exit(Duration::from_secs(10)).success(),
        "{}",
        d.log()
    );

    let elements = delivered(&b);
    let mut seen = Vec::new();
    for m in elements.iter().filter(|m| m["type"] == "pg_log") {
        for e in m["entries"].as_array().unwrap() {
            let msg = e["message"].as_str().unwrap();
            let n: usize = msg["entry ".len().."entry ".len() + 6].parse().unwrap();
            seen.push(n);
        }
    }
    let count = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), count, "an entry delivered twice");
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &n in &seen {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => runs.push((n, n)),
        }
    }
    let first = seen[0];
    assert!(first > 0, "nothing was lost: the bound was not reached");
    assert_eq!(
        runs,
        [(first, ENTRIES - 1)],
        "not one contiguous run of the newest entries"
    );
    let dropped = healths(&elements)
        .iter()
        .filter_map(|h| h["metrics_dropped"].as_u64())
        .max()
        .unwrap();
    // An element holds at most PER_ELEMENT entries (max_entries per collection), so the
    // entries lost need at least first / PER_ELEMENT dropped elements; sysstat and health
    // elements of the outage went with them, so metrics_dropped may count more.
    assert!(
        dropped >= (first / PER_ELEMENT) as u64,
        "{first} entries lost, {dropped} elements counted"
    );
    let warned: u64 = d
        .stderr
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(dropped_line))
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            v["elements"].as_str()?.parse::<u64>().ok()
        })
        .sum();
    assert_eq!(
        warned,
        dropped,
        "the warnings and metrics_dropped disagree\n{}",
        d.log()
    );
}
