//! End to end: the real binary (`register`, `run`, `run --once`) against the test backend of
//! tests/support/backend.rs, which checks docs/protocol.md independently of the collector's code and
//! injects faults. Each test runs the binary as a child process (signals are blocked
//! process-wide in the collector, so nothing here runs in-process).
//!
//! The backend itself is covered by tests/backend_selftest.rs. Do not relax an assertion to
//! make a test pass: each one is a line of docs/protocol.md.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::backend::{self, Backend, Batch, ConfigReply, Fault, Mode, Options, PUSH, REFRESH};
use support::tmp::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");
const HOSTNAME: &str = "push-test-host";

fn cmd() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("PGANALYTICS_CONFIG")
        .env_remove("PGANALYTICS_REGISTRATION_SECRET")
        .env_remove("PGHOST")
        .env_remove("PGPORT");
    c
}

/// A collector config as tables of `key = value` lines; [`Cfg::set`] replaces or adds a key.
/// Defaults: sysstat alone every 0.1 s, push every 0.2 s, fast retries, no config pull, the
/// backend's CA, JSON logs at debug level.
struct Cfg(BTreeMap<String, Vec<(String, String)>>);

impl Cfg {
    fn new(dir: &TempDir, b: &Backend) -> Cfg {
        let mut c = Cfg(BTreeMap::new());
        let ca = b.certs.write(&dir.0).ca;
        for (t, k, v) in [
            ("collector", "hostname", format!("{HOSTNAME:?}")),
            ("collector", "interval", "0.1".into()),
            ("collector", "push_interval", "0.2".into()),
            ("collector", "config_pull_interval", "0".into()),
            (
                "collector",
                "state_dir",
                format!("{:?}", dir.0.display().to_string()),
            ),
            ("backend", "url", format!("{:?}", b.url)),
            ("backend", "retry_initial_secs", "0.2".into()),
            ("backend", "retry_max_secs", "1".into()),
            ("backend", "connect_timeout_secs", "2".into()),
            ("backend", "request_timeout_secs", "2".into()),
            ("tls", "ca_file", format!("{:?}", ca.display().to_string())),
            ("logging", "format", "\"json\"".into()),
            ("logging", "level", "\"debug\"".into()),
            ("sysstat", "interval", "0.1".into()),
        ] {
            c.set(t, k, &v);
        }
        for t in [
            "disk_usage",
            "pg_stats",
            "pg_query_stats",
            "pg_log",
            "pg_replication",
            "pg_server",
        ] {
            c.set(t, "enabled", "false");
        }
        c
    }
    fn set(&mut self, table: &str, key: &str, value: &str) -> &mut Cfg {
        let t = self.0.entry(table.to_string()).or_default();
        t.retain(|(k, _)| k != key);
        t.push((key.to_string(), value.to_string()));
        self
    }
    fn unset(&mut self, table: &str, key: &str) -> &mut Cfg {
        if let Some(t) = self.0.get_mut(table) {
            t.retain(|(k, _)| k != key);
        }
        self
    }
    fn write(&self, dir: &TempDir) -> PathBuf {
        let mut text = String::new();
        for (t, kv) in &self.0 {
            text.push_str(&format!("[{t}]\n"));
            for (k, v) in kv {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        dir.file("collector.toml", &text)
    }
}

/// A daemon with the default configuration pushing to a default backend, past its first
/// accepted batch. The state directory is returned so that it outlives the daemon.
fn pushing(tag: &str) -> (Backend, TempDir, Daemon) {
    let b = Backend::start(Options::default());
    let dir = TempDir::new(tag);
    provision(&dir, &b);
    let cfg = Cfg::new(&dir, &b).write(&dir);
    let d = Daemon::start(&cfg);
    assert!(b.wait(Duration::from_secs(10), |s| !s.batches.is_empty()));
    (b, dir, d)
}

/// Waits (20 s at most) for the first push the backend answered with `status`, and returns it.
fn first_push_answered(b: &Backend, status: u16) -> backend::Request {
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.requests.iter().any(|r| r.status == status)
    }));
    b.requests_to(PUSH)
        .into_iter()
        .find(|r| r.status == status)
        .unwrap()
}

/// Writes `collector.id` and a backend-issued `collector.token` into the state directory, as a
/// registration would; returns the id.
fn provision(dir: &TempDir, b: &Backend) -> String {
    let id = format!("c-{}", backend::b64url(&rand4()));
    dir.file("collector.id", &format!("{id}\n"));
    dir.file(
        "collector.token",
        &format!("{}\n", b.issue_token(&id, HOSTNAME)),
    );
    id
}

fn rand4() -> [u8; 4] {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    n.to_le_bytes()
}

/// A running `run` child; its stderr lines are collected for inspection.
struct Daemon {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = cmd()
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
    /// Waits for a stderr line for which `f` holds.
    fn log_line(&self, within: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.stderr.lock().unwrap().iter().find(|l| f(l)) {
                return Some(l.clone());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    fn term(&self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    }
    fn usr1(&self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::USR1).unwrap();
    }
    /// Asks for health lines (SIGUSR1) until one reports at least `bytes` of JSON waiting in
    /// the buffer; returns that figure.
    fn waiting_at_least(&self, bytes: u64, within: Duration) -> u64 {
        // Signals are blocked (and so queued, not fatal) once the loop has said "started".
        assert!(
            self.log_line(within, |l| l.contains("\"msg\":\"started\""))
                .is_some(),
            "{}",
            self.log()
        );
        let deadline = Instant::now() + within;
        let health = |l: &String| -> Option<u64> {
            let v: Value = serde_json::from_str(l).ok()?;
            if v["msg"] != "health" {
                return None;
            }
            let h: Value = serde_json::from_str(v["health"].as_str()?).ok()?;
            h["buffer_bytes"].as_u64()
        };
        loop {
            let seen = self.stderr.lock().unwrap().len();
            self.usr1();
            // The answer to this signal: the first health line after `seen`.
            let answer = loop {
                let got = self.stderr.lock().unwrap()[seen..].iter().find_map(health);
                if let Some(w) = got {
                    break w;
                }
                assert!(
                    Instant::now() < deadline,
                    "no health line on SIGUSR1: {}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            if answer >= bytes {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "never {bytes} bytes waiting: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn hup(&self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    }
    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "did not exit within {within:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `run --once -c cfg`: (exit code, stderr).
fn run_once(cfg: &Path) -> (Option<i32>, String) {
    let out = cmd()
        .args(["run", "--once", "-c"])
        .arg(cfg)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn types(b: &Batch) -> Vec<&str> {
    b.metrics()
        .iter()
        .map(|m| m["type"].as_str().unwrap_or("?"))
        .collect()
}

/// Unix seconds of an RFC 3339 UTC timestamp (`YYYY-MM-DDTHH:MM:SS[.f]Z`).
fn unix_of(ts: &str) -> i64 {
    let n = |a: usize, b: usize| ts[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}

fn unix_now() -> i64 {
    backend::unix_now() as i64
}

/// Checks the accepted batches: no contract violation; a batch id accepted twice only when its
/// reply was cut on purpose (and then with the same elements); no element (by its full JSON
/// text, keyed with type and timestamp) in two different batches. Returns the delivered
/// elements, each once.
fn delivered_once(b: &Backend) -> Vec<Value> {
    assert!(b.violations().is_empty(), "{:?}", b.violations());
    let mut by_id: HashMap<String, &Batch> = HashMap::new();
    let batches = b.batches();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for batch in &batches {
        if let Some(first) = by_id.get(&batch.batch_id) {
            assert!(
                first.reply_lost,
                "batch {} accepted twice without a lost reply",
                batch.batch_id
            );
            assert_eq!(
                first.metrics(),
                batch.metrics(),
                "a resend carries the same elements"
            );
            continue;
        }
        by_id.insert(batch.batch_id.clone(), batch);
        for m in batch.metrics() {
            // Two sysstat samples 0.1 s apart can be byte-identical, so element text alone
            // cannot tell a resend. A batch resent under a new id would repeat whole runs of
            // elements, including that round's collector_health, which carries its own round
            // number: check those (text: rounds restart at 1 when a test restarts the daemon,
            // and then the timestamp and uptime differ).
            if m["type"] == "collector_health" {
                assert!(
                    m["round"].as_u64().is_some(),
                    "collector_health without a round: {m}"
                );
                assert!(seen.insert(m.to_string()), "element delivered twice: {m}");
            }
            out.push(m.clone());
        }
    }
    out
}

/// Delivered sysstat elements per unix second.
fn sysstat_per_second(elements: &[Value]) -> BTreeMap<i64, usize> {
    let mut m = BTreeMap::new();
    for e in elements.iter().filter(|e| e["type"] == "sysstat") {
        *m.entry(unix_of(e["timestamp"].as_str().unwrap()))
            .or_default() += 1;
    }
    m
}

fn healths(b: &Backend) -> Vec<Value> {
    b.batches()
        .iter()
        .flat_map(|x| x.metrics().to_vec())
        .filter(|m| m["type"] == "collector_health")
        .collect()
}

fn json_lines_at(log: &str, levels: &[&str]) -> Vec<String> {
    log.lines()
        .filter(|l| {
            levels
                .iter()
                .any(|lv| l.contains(&format!("\"level\":\"{lv}\"")))
        })
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn register_writes_the_state_files_0600_and_refuses_a_second_time() {
    use std::os::unix::fs::PermissionsExt;
    let b = Backend::start(Options::default());
    let dir = TempDir::new("register");
    let cfg = Cfg::new(&dir, &b).write(&dir);
    let secret = dir.file("secret", "registration-secret\n");
    let out = cmd()
        .args(["register", "-c"])
        .arg(&cfg)
        .arg("--secret-file")
        .arg(&secret)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(b.registered().len(), 1);
    let id = b.registered()[0].clone();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
    assert!(!stderr.contains("registration-secret"), "secret logged");
    let reg = &b.requests()[0];
    assert_eq!(reg.json().unwrap()["hostname"], HOSTNAME);
    for f in [
        "collector.id",
        "collector.token",
        "collector.crt",
        "collector.key",
    ] {
        let p = dir.0.join(f);
        let mode = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{f}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let state = |f: &str| std::fs::read_to_string(dir.0.join(f)).unwrap();
    assert_eq!(state("collector.id").trim(), id);
    assert_eq!(
        state("collector.token").lines().next().unwrap(),
        b.tokens()[0]
    );
    assert!(state("collector.crt").contains("BEGIN CERTIFICATE"));
    assert!(state("collector.key").contains("PRIVATE KEY"));

    let again = cmd()
        .args(["register", "-c"])
        .arg(&cfg)
        .arg("--secret-file")
        .arg(&secret)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(b.registered().len(), 1, "no second collector created");
    let forced = cmd()
        .args(["register", "--force", "-c"])
        .arg(&cfg)
        .arg("--secret-file")
        .arg(&secret)
        .output()
        .unwrap();
    assert!(forced.status.success());
    assert_eq!(b.registered().len(), 2);
    assert_eq!(state("collector.id").trim(), b.registered()[1]);

    // A wrong secret: 401, the backend's message in one line.
    let wrong = dir.file("wrong", "nope\n");
    let out = cmd()
        .args(["register", "--force", "-c"])
        .arg(&cfg)
        .arg("--secret-file")
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid registration secret"), "{err}");
}

#[test]
fn run_pushes_every_element_once_gzip_by_default_with_health_each_round() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("happy");
    provision(&dir, &b);
    // A reply later than request_timeout_secs is a failed push, and its resend (same batch id,
    // correctly) would read as a duplicate here: on a loaded CI machine the test backend can
    // take over the default 2 s, so this test, which is not about timeouts, waits longer.
    let cfg = Cfg::new(&dir, &b)
        .set("backend", "request_timeout_secs", "15")
        .write(&dir);
    let mut d = Daemon::start(&cfg);
    assert!(
        b.wait(Duration::from_secs(10), |s| s.batches.len() >= 10),
        "{}",
        d.log()
    );
    d.term();
    assert!(d.wait_exit(Duration::from_secs(6)).success());
    let batches = b.batches();
    for x in &batches {
        assert!(x.gzip(), "gzip by default");
        assert_eq!(
            types(x)
                .iter()
                .filter(|t| **t == "collector_health")
                .count(),
            1,
            "one collector_health per round: {:?}",
            types(x)
        );
        assert!(
            types(x)
                .iter()
                .all(|t| *t == "sysstat" || *t == "collector_health")
        );
    }
    let elements = delivered_once(&b);
    let per_second = sysstat_per_second(&elements);
    // 0.1 s interval: about ten a second; a duplicate resend would double a second.
    for (sec, n) in per_second.iter().skip(1).rev().skip(1) {
        assert!((3..=12).contains(n), "{n} sysstat elements in second {sec}");
    }
    // One connection reused (keep-alive).
    let conns: HashSet<u64> = b.requests_to(PUSH).iter().map(|r| r.conn).collect();
    assert_eq!(conns.len(), 1, "one kept-alive connection");
    let push = &b.requests_to(PUSH)[0];
    assert_eq!(push.header("content-type"), Some("application/json"));
    assert!(push.header("authorization").unwrap().starts_with("Bearer "));
}

#[test]
fn compression_none_sends_plain_json() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("plain");
    provision(&dir, &b);
    let cfg = Cfg::new(&dir, &b)
        .set("backend", "compression", "\"none\"")
        .write(&dir);
    let d = Daemon::start(&cfg);
    assert!(
        b.wait(Duration::from_secs(10), |s| s.batches.len() >= 3),
        "{}",
        d.log()
    );
    for r in b.requests_to(PUSH) {
        assert_eq!(r.header("content-encoding"), None);
        assert_eq!(r.wire_len, r.body.len());
        assert!(r.json().is_some());
    }
    delivered_once(&b);
}

/// RFC 3986: the scheme is case-insensitive. One parser at load serves `check-config` and
/// `run` alike, so what `check-config` accepts, `run` dials.
#[test]
fn an_upper_case_scheme_works_in_check_config_and_run_alike() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("scheme");
    provision(&dir, &b);
    let url = b.url.replacen("https://", "HTTPS://", 1);
    assert_ne!(url, b.url);
    let cfg = Cfg::new(&dir, &b)
        .set("backend", "url", &format!("{url:?}"))
        .write(&dir);
    let check = cmd()
        .args(["check-config", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains(&url));
    let (code, log) = run_once(&cfg);
    assert_eq!(code, Some(0), "{log}");
    assert!(!b.batches().is_empty(), "{log}");
}

#[test]
fn outage_backs_off_with_jitter_then_delivers_everything_once() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("outage");
    provision(&dir, &b);
    // Heartbeat every 0.1 s: paced by push_interval, a 2.5 s outage would see ~25 attempts.
    let cfg = Cfg::new(&dir, &b)
        .set("collector", "push_interval", "0.1")
        .write(&dir);
    let d = Daemon::start(&cfg);
    assert!(b.wait(Duration::from_secs(10), |s| s.batches.len() >= 3));
    let t0 = Instant::now();
    let outage_from = unix_now();
    b.set_outage(Some(Fault::Status(503)));
    // The stimulus: a 2.5 s outage.
    std::thread::sleep(Duration::from_millis(2500));
    b.set_outage(None);
    let t1 = Instant::now();
    let outage_to = unix_now();
    // Backoff caps 0.2, 0.4, 0.8, 1, 1 … with full jitter (each wait uniform in [0, cap]):
    // 7 attempts on average in 2.5 s, 14 at the 99.99th percentile (simulated); pacing by the
    // 0.1 s push_interval would make ~25, a busy loop hundreds.
    let during = b.pushes_between(t0, t1);
    assert!(
        (2..=15).contains(&during),
        "{during} pushes during a 2.5 s outage"
    );
    // Everything collected during the outage is through once an element of a later second is.
    assert!(b.wait(Duration::from_secs(30), |s| delivered_past(
        s,
        outage_to + 1
    )));
    // Every 503'd batch id is accepted later, unchanged.
    let accepted: HashSet<String> = b.batches().iter().map(|x| x.batch_id.clone()).collect();
    for r in b.requests_to(PUSH).iter().filter(|r| r.status == 503) {
        assert!(
            accepted.contains(&r.batch_id().unwrap()),
            "503'd batch resent with the same id"
        );
    }
    let per_second = sysstat_per_second(&delivered_once(&b));
    for sec in outage_from..=outage_to {
        let n = per_second.get(&sec).copied().unwrap_or(0);
        assert!(
            (3..=12).contains(&n),
            "second {sec} of the outage: {n} sysstat elements ({per_second:?})"
        );
    }
    let health = healths(&b);
    assert_eq!(health.last().unwrap()["metrics_dropped"], 0);
    assert!(
        health
            .iter()
            .any(|h| h["push_failures"].as_u64().unwrap_or(0) > 0)
    );
    // Logged on the first failure and on backoff steps, not every attempt at debug noise level.
    assert!(
        d.log_line(Duration::from_secs(5), |l| l.contains("503"))
            .is_some(),
        "{}",
        d.log()
    );
}

#[test]
fn buffer_overflow_drops_the_oldest_and_counts_them() {
    const BUFFER: usize = 8000;
    let b = Backend::start(Options::default());
    let dir = TempDir::new("overflow");
    provision(&dir, &b);
    let cfg = Cfg::new(&dir, &b)
        .set("backend", "buffer_bytes", &BUFFER.to_string())
        .set("backend", "max_batch_bytes", "32000")
        // Memory alone: with the outage spool the outage would go to disk, nothing dropped.
        .set("backend", "spool_bytes", "0")
        .write(&dir);
    let d = Daemon::start(&cfg);
    assert!(b.wait(Duration::from_secs(10), |s| s.batches.len() >= 2));
    let size = delivered_once(&b)
        .iter()
        .filter(|e| e["type"] == "sysstat")
        .map(|e| e.to_string().len())
        .min()
        .unwrap();
    let capacity = BUFFER / size; // sysstat elements the buffer holds at most
    let outage_from = unix_now();
    let t0 = Instant::now();
    b.set_outage(Some(Fault::Status(503)));
    // The stimulus: an outage of ~60 collections, several buffers' worth.
    std::thread::sleep(Duration::from_secs(6));
    let outage_to = unix_now();
    b.set_outage(None);
    let t1 = Instant::now();
    // Everything waiting is through once elements of 4 s after the outage are.
    assert!(
        b.wait(Duration::from_secs(30), |s| delivered_past(
            s,
            outage_to + 4
        )),
        "{}",
        d.log()
    );
    let elements = delivered_once(&b);
    let per_second = sysstat_per_second(&elements);
    // The batch in flight when the outage began (formed within one push interval of its
    // start, so of seconds <= outage_from + 1) is kept and resent; everything newer competes
    // for the buffer. The second in which the outage ended is left out: what was collected
    // after recovery in that second is rightly delivered too.
    let from_outage: usize = (outage_from + 2..outage_to)
        .map(|s| per_second.get(&s).copied().unwrap_or(0))
        .sum();
    assert!(
        from_outage <= capacity + 1,
        "{from_outage} elements of the outage delivered, buffer holds {capacity}: {per_second:?}"
    );
    assert_eq!(
        per_second.get(&(outage_from + 2)).copied().unwrap_or(0),
        0,
        "the oldest were dropped: {per_second:?}"
    );
    // What survived is the newest: once delivery resumes after the dropped seconds, every
    // later second has its elements (the retry after recovery may come up to
    // retry_max_secs late, so which second that is depends on timing, not the gap rule).
    let resumed = per_second
        .range(outage_from + 2..)
        .map(|(s, _)| *s)
        .next()
        .expect("elements after the outage were delivered");
    let last = *per_second.keys().next_back().unwrap();
    assert!(
        (resumed..=last).all(|s| per_second.get(&s).copied().unwrap_or(0) > 0),
        "the newest were kept, without gaps after the dropped ones: {per_second:?}"
    );

    // Lower bound: about a buffer's worth was kept, not less (clearing the buffer on overflow,
    // or dropping more than needed, fails here). The first new batch after the outage is the
    // buffer as it was when the retry formed it: full, so its elements' JSON fills the
    // buffer_bytes bound to within one element (the largest) and the record headers
    // (16 bytes each, pipeline/buffer.rs).
    let resent: HashSet<String> = b
        .requests_to(PUSH)
        .iter()
        .filter(|r| r.status == 503)
        .filter_map(|r| r.batch_id())
        .collect();
    let refill = b
        .batches()
        .into_iter()
        .find(|x| x.at > t1 && !resent.contains(&x.batch_id))
        .expect("a new batch after the outage");
    let lens: Vec<usize> = refill
        .metrics()
        .iter()
        .map(|m| m.to_string().len())
        .collect();
    let json: usize = lens.iter().sum();
    let largest = *lens.iter().max().unwrap();
    assert!(
        json <= BUFFER,
        "{json} bytes of JSON kept, above the {BUFFER} bound"
    );
    assert!(
        json + 16 * (lens.len() + 1) + largest > BUFFER,
        "only {json} bytes ({} elements) kept of a {BUFFER}-byte buffer that was full",
        lens.len()
    );

    // metrics_dropped ≈ collected − kept: the collections of the outage (at the rate seen
    // after it), plus one collector_health per push round, less what the buffer kept.
    let rate = {
        let mut full: Vec<usize> = (outage_to + 1..=outage_to + 3)
            .map(|s| per_second.get(&s).copied().unwrap_or(0))
            .collect();
        full.sort();
        full[1] as f64
    };
    let rounds = b.pushes_between(t0, refill.at) as f64;
    let collected = rate * (refill.at - t0).as_secs_f64() + rounds;
    let expected = collected - refill.metrics().len() as f64;
    let dropped = healths(&b)
        .iter()
        .map(|h| h["metrics_dropped"].as_u64().unwrap())
        .max()
        .unwrap() as f64;
    let tolerance = (0.25 * expected).max(2.0 * rate);
    assert!(
        (dropped - expected).abs() <= tolerance,
        "metrics_dropped {dropped}, expected {expected:.0} ± {tolerance:.0} \
         ({collected:.0} collected at {rate}/s, {} kept)",
        refill.metrics().len()
    );
}

/// Whether a sysstat element collected after unix second `sec` was accepted: the buffer sends
/// in collection order, so everything collected up to `sec` is through.
fn delivered_past(s: &backend::State, sec: i64) -> bool {
    s.batches.iter().any(|x| {
        x.metrics().iter().any(|m| {
            m["type"] == "sysstat" && m["timestamp"].as_str().is_some_and(|t| unix_of(t) > sec)
        })
    })
}

#[test]
fn retry_after_is_honoured_and_without_it_the_backoff_is_followed() {
    // Backoff from 0.5 s doubling to a 2 s cap, pushes every 0.1 s when healthy: a retry paced
    // by push_interval, or with an uncapped or undoubled ceiling, shows in the gaps. The
    // Retry-After of 2 s is within the cap (it is capped at retry_max_secs, security rule S5).
    const INITIAL: f64 = 0.5;
    const CAP: f64 = 2.0;
    let b = Backend::start(Options::default());
    let dir = TempDir::new("429");
    provision(&dir, &b);
    let cfg = Cfg::new(&dir, &b)
        .set("collector", "push_interval", "0.1")
        .set("backend", "retry_initial_secs", &INITIAL.to_string())
        .set("backend", "retry_max_secs", &CAP.to_string())
        .write(&dir);
    let _d = Daemon::start(&cfg);
    assert!(b.wait(Duration::from_secs(10), |s| !s.batches.is_empty()));
    b.push_faults(1, Fault::TooMany(Some(2)));
    let limited = first_push_answered(&b, 429);
    assert!(b.wait(Duration::from_secs(10), |s| {
        s.batches.iter().any(|x| x.at > limited.at)
    }));
    let next = b
        .requests_to(PUSH)
        .into_iter()
        .find(|r| r.at > limited.at)
        .unwrap();
    assert!(
        next.at - limited.at >= Duration::from_millis(1950),
        "next push {:?} after a Retry-After: 2",
        next.at - limited.at
    );
    assert_eq!(next.batch_id(), limited.batch_id(), "the buffer was kept");

    // Without Retry-After: the normal backoff. Attempt k (from 0) after a 429 waits a random
    // time in [10 ms, min(INITIAL·2^k, CAP)] (full jitter, push/backoff.rs MIN_DELAY_NS), plus
    // the loop's reaction time (given 0.5 s: a collection round and a TLS request). Each gap
    // is checked against its ceiling; the lower side only as a sum (below), since a single
    // gap may rightly be as short as the 10 ms minimum, less the time the first request took
    // to reach the backend.
    const FAULTS: usize = 7;
    let before = b.requests_to(PUSH).len();
    b.push_faults(FAULTS, Fault::TooMany(None));
    // The series starts at the first 429 (a push already under way when the faults were
    // queued may still be answered 200) and ends at the first success after it.
    let series_of = |s: &backend::State| -> Vec<backend::Request> {
        s.requests
            .iter()
            .filter(|r| r.path == PUSH)
            .skip(before)
            .skip_while(|r| r.status != 429)
            .cloned()
            .collect()
    };
    assert!(
        b.wait(Duration::from_secs(60), |s| {
            series_of(s).iter().any(|r| r.status == 200)
        }),
        "delivered after the 429s"
    );
    let series = series_of(&b.state());
    let n429 = series.iter().take_while(|r| r.status == 429).count();
    assert_eq!(n429, FAULTS, "every 429 answered once");
    assert_eq!(series[FAULTS].status, 200, "then success");
    let mut total = 0.0;
    for k in 0..FAULTS {
        let gap = (series[k + 1].at - series[k].at).as_secs_f64();
        let ceiling = (INITIAL * 2f64.powi(k as i32)).min(CAP);
        assert!(
            gap <= ceiling + 0.5,
            "attempt {k}: {gap:.3} s after a 429, above the backoff ceiling {ceiling} s"
        );
        assert_eq!(series[k + 1].batch_id(), series[k].batch_id(), "same batch");
        total += gap;
    }
    // Paced by the 0.1 s push_interval the seven gaps would take ~0.7 s; with full jitter
    // under ceilings 0.5, 1, 2, 2, 2, 2, 2 they take 5.75 s on average and less than 1.5 s
    // with a probability below 3e-4 (the volume of that simplex over the box of ceilings).
    assert!(
        total >= 1.5,
        "{total:.2} s for {FAULTS} retries: not backing off"
    );
    delivered_once(&b);
}

#[test]
fn unauthorized_once_refreshes_the_token_and_retries() {
    let (b, dir, _d) = pushing("401");
    b.push_faults(1, Fault::Unauthorized);
    let rejected = first_push_answered(&b, 401);
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.batches
            .iter()
            .any(|x| Some(&x.batch_id) == rejected.batch_id().as_ref())
    }));
    let refresh: Vec<_> = b
        .requests_to(REFRESH)
        .into_iter()
        .filter(|r| r.at > rejected.at)
        .collect();
    assert_eq!(refresh.len(), 1, "exactly one refresh");
    assert_eq!(refresh[0].status, 200);
    let new_token = b.tokens().last().unwrap().clone();
    let retry = b
        .requests_to(PUSH)
        .into_iter()
        .find(|r| r.at > refresh[0].at)
        .unwrap();
    assert_eq!(
        retry.header("authorization"),
        Some(format!("Bearer {new_token}").as_str())
    );
    let stored = std::fs::read_to_string(dir.0.join("collector.token")).unwrap();
    assert_eq!(stored.lines().next(), Some(new_token.as_str()), "persisted");
}

#[test]
fn a_short_lived_token_is_refreshed_before_it_expires() {
    let b = Backend::start(Options {
        token_lifetime: Duration::from_secs(4),
        ..Options::default()
    });
    let dir = TempDir::new("refresh");
    provision(&dir, &b);
    let cfg = Cfg::new(&dir, &b).write(&dir);
    let d = Daemon::start(&cfg);
    // Two refreshes take two half-lifetimes (~4 s); a missed one shows as a 401'd push first.
    assert!(
        b.wait(Duration::from_secs(30), |s| {
            s.requests.iter().filter(|r| r.path == REFRESH).count() >= 2
        }),
        "refresh at half the lifetime: {}",
        d.log()
    );
    let refreshes = b.requests_to(REFRESH);
    assert!(refreshes.iter().all(|r| r.status == 200));
    let pushes = b.requests_to(PUSH);
    assert!(
        pushes.iter().all(|r| r.status == 200),
        "no push with an expired token: {:?}",
        pushes
            .iter()
            .map(|r| (r.status, &r.note))
            .collect::<Vec<_>>()
    );
}

#[test]
fn bad_request_drops_the_batch_counts_it_and_later_batches_pass() {
    let (b, _dir, d) = pushing("400");
    b.push_faults(1, Fault::BadRequest);
    let bad = first_push_answered(&b, 400);
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.batches.iter().filter(|x| x.at > bad.at).count() >= 3
    }));
    let batches = b.batches();
    assert!(
        batches
            .iter()
            .all(|x| Some(&x.batch_id) != bad.batch_id().as_ref())
    );
    assert!(batches.iter().filter(|x| x.at > bad.at).count() >= 3);
    assert_eq!(healths(&b).last().unwrap()["batches_rejected"], 1);
    assert!(
        d.log().contains("injected: metrics[0] rejected"),
        "details logged"
    );
}

#[test]
fn payload_too_large_splits_the_batch_into_new_smaller_ones() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("413");
    provision(&dir, &b);
    let cfg = Cfg::new(&dir, &b)
        .set("backend", "compression", "\"none\"")
        .write(&dir);
    let _d = Daemon::start(&cfg);
    assert!(b.wait(Duration::from_secs(10), |s| s.batches.len() >= 2));
    let size = b.batches()[1]
        .metrics()
        .iter()
        .map(|m| m.to_string().len())
        .max()
        .unwrap();
    // Let ~15 elements pile up, then allow only ~4 per request.
    let from = unix_now();
    b.set_outage(Some(Fault::Status(503)));
    // The stimulus: 1.5 s of outage.
    std::thread::sleep(Duration::from_millis(1500));
    let limit = 4 * size + 600;
    b.set_max_body(Some(limit));
    b.set_outage(None);
    let to = unix_now();
    assert!(b.wait(Duration::from_secs(30), |s| delivered_past(s, to + 2)));
    let pushes = b.requests_to(PUSH);
    let too_large: Vec<_> = pushes.iter().filter(|r| r.status == 413).collect();
    assert!(!too_large.is_empty());
    let accepted: HashSet<String> = b.batches().iter().map(|x| x.batch_id.clone()).collect();
    for r in &too_large {
        assert!(
            !accepted.contains(&r.batch_id().unwrap()),
            "a split gets new ids"
        );
    }
    for r in pushes.iter().filter(|r| r.status == 200) {
        assert!(r.wire_len <= limit);
    }
    let elements = delivered_once(&b);
    let per_second = sysstat_per_second(&elements);
    for sec in from + 1..to {
        assert!(
            per_second.get(&sec).copied().unwrap_or(0) >= 3,
            "second {sec} lost: {per_second:?}"
        );
    }
    // Each element once: a sub-batch delivered twice (under any id) would put older elements
    // after newer ones, or more than a second's worth into a second.
    let stamps: Vec<i64> = elements
        .iter()
        .filter(|e| e["type"] == "sysstat")
        .map(|e| unix_of(e["timestamp"].as_str().unwrap()))
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "delivered out of collection order (a resent part?): {stamps:?}"
    );
    for (sec, n) in per_second.iter().skip(1).rev().skip(1) {
        assert!(
            *n <= 12,
            "{n} sysstat elements in second {sec}: {per_second:?}"
        );
    }
    // And exactly: the elements of every batch that got a 413 are delivered as one run, once,
    // in the accepted batches that followed.
    let flat: Vec<String> = elements.iter().map(Value::to_string).collect();
    for r in &too_large {
        let parts: Vec<String> = r.json().unwrap()["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect();
        let runs = flat
            .windows(parts.len())
            .filter(|w| *w == parts.as_slice())
            .count();
        assert_eq!(
            runs,
            1,
            "the {} elements of a 413'd batch delivered {runs} times",
            parts.len()
        );
    }
    assert_eq!(healths(&b).last().unwrap()["metrics_dropped"], 0);
}

#[test]
fn a_slow_reply_times_out_and_the_same_batch_is_retried() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("slow");
    provision(&dir, &b);
    let cfg = Cfg::new(&dir, &b)
        .set("backend", "request_timeout_secs", "1")
        .write(&dir);
    let d = Daemon::start(&cfg);
    assert!(b.wait(Duration::from_secs(10), |s| !s.batches.is_empty()));
    b.push_faults(1, Fault::Slow(Duration::from_secs(3)));
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.requests.iter().any(|r| r.note.contains("Slow"))
    }));
    let slow = b
        .requests_to(PUSH)
        .into_iter()
        .find(|r| r.note.contains("Slow"))
        .unwrap();
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.batches
            .iter()
            .any(|x| Some(&x.batch_id) == slow.batch_id().as_ref())
    }));
    // The backend records an accepted batch a moment before the request that carried it.
    assert!(b.wait(Duration::from_secs(2), |s| {
        s.requests.iter().any(|r| r.path == PUSH && r.at > slow.at)
    }));
    let retry = b
        .requests_to(PUSH)
        .into_iter()
        .find(|r| r.at > slow.at)
        .unwrap();
    assert!(
        retry.at - slow.at >= Duration::from_millis(950),
        "waited for the timeout"
    );
    assert!(
        d.log().to_lowercase().contains("timed out") || d.log().to_lowercase().contains("timeout"),
        "{}",
        d.log()
    );
    delivered_once(&b);
}

#[test]
fn a_reset_mid_reply_resends_the_same_batch() {
    let (b, _dir, _d) = pushing("reset");
    b.push_faults(1, Fault::Reset);
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.batches.iter().any(|x| x.reply_lost)
    }));
    let lost = b.batches().into_iter().find(|x| x.reply_lost).unwrap();
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.batches
            .iter()
            .filter(|x| x.batch_id == lost.batch_id)
            .count()
            == 2
    }));
    // Two more batches after the resend: a second resend would have come by then.
    let resent = b
        .batches()
        .into_iter()
        .filter(|x| x.batch_id == lost.batch_id)
        .nth(1)
        .unwrap();
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.batches.iter().filter(|x| x.at > resent.at).count() >= 2
    }));
    delivered_once(&b); // the only duplicate allowed is that one
    let conns: HashSet<u64> = b.requests_to(PUSH).iter().map(|r| r.conn).collect();
    assert_eq!(conns.len(), 2, "reconnected once");
}

#[test]
fn a_garbage_reply_is_logged_clearly_and_retried() {
    let (b, _dir, d) = pushing("garbage");
    b.push_faults(1, Fault::Garbage);
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.requests.iter().any(|r| r.note.contains("Garbage"))
    }));
    let bad = b
        .requests_to(PUSH)
        .into_iter()
        .find(|r| r.note.contains("Garbage"))
        .unwrap();
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.batches
            .iter()
            .any(|x| Some(&x.batch_id) == bad.batch_id().as_ref())
    }));
    let port = b.addr.port().to_string();
    let line = d.log_line(Duration::from_secs(5), |l| {
        (l.contains("\"level\":\"warn\"") || l.contains("\"level\":\"error\""))
            && l.contains("\"component\":\"push\"")
            && l.contains(&port)
    });
    assert!(line.is_some(), "a warning naming the backend: {}", d.log());
    delivered_once(&b);
}

/// Security rule S8: a backend's body is not a channel into the operator's log. A 500 whose body
/// starts with terminal escapes and a carriage return, forges a log line after a newline and
/// runs on for 512 KiB reaches the text log as one line, escaped and cut at 512 bytes.
#[test]
fn a_hostile_error_body_reaches_the_text_log_escaped_and_cut() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("hostile-body");
    provision(&dir, &b);
    let mut cfg = Cfg::new(&dir, &b);
    cfg.set("logging", "format", "\"text\"");
    let d = Daemon::start(&cfg.write(&dir));
    assert!(b.wait(Duration::from_secs(10), |s| !s.batches.is_empty()));
    b.push_faults(1, Fault::HostileBody(500));
    let answered = |s: &backend::State| s.requests.iter().any(|r| r.note.contains("HostileBody"));
    assert!(b.wait(Duration::from_secs(20), answered));
    let line = d.log_line(Duration::from_secs(10), |l| l.contains("500"));
    let Some(line) = line else {
        panic!("no log line names the 500: {}", d.log());
    };
    assert!(
        line.contains("backend down"),
        "the body's start is shown: {line}"
    );
    assert!(
        line.contains("\\u{1b}[2J"),
        "the escape is shown escaped: {line}"
    );
    assert!(
        line.len() < 1024,
        "{} bytes logged: the body was not cut",
        line.len()
    );
    // Past the 500: the whole log, every line the collector wrote.
    let filler = "A".repeat(600);
    assert!(b.wait(Duration::from_secs(20), |s| s.batches.len() >= 3));
    for l in d.stderr.lock().unwrap().iter() {
        assert!(
            !l.chars().any(|c| c.is_control() && c != '\t'),
            "a control character reached the log: {l:?}"
        );
        assert!(!l.starts_with(backend::FORGED_LINE), "a forged line: {l}");
        assert!(!l.contains(&filler), "{} bytes of filler logged", l.len());
    }
}

#[test]
fn a_redirect_is_a_configuration_error_and_is_not_followed() {
    let (b, _dir, d) = pushing("redirect");
    b.push_faults(1, Fault::Redirect);
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.requests.iter().any(|r| r.status == 301)
    }));
    let line = d.log_line(Duration::from_secs(5), |l| {
        let l = l.to_lowercase();
        // A configuration error: says so, or points at the setting to change.
        l.contains("redirect") && (l.contains("config") || l.contains("[backend] url"))
    });
    assert!(line.is_some(), "{}", d.log());
    assert!(!d.log().contains("elsewhere.invalid:"), "not followed");
    let moved = b
        .requests_to(PUSH)
        .into_iter()
        .find(|r| r.status == 301)
        .unwrap();
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.batches
            .iter()
            .any(|x| Some(&x.batch_id) == moved.batch_id().as_ref())
    }));
}

// --- TLS ---------------------------------------------------------------------------------------

#[test]
fn tls_with_the_test_ca_works_and_a_wrong_ca_is_refused_naming_the_host() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("tlsca");
    provision(&dir, &b);
    let cfg = Cfg::new(&dir, &b).write(&dir);
    let (code, err) = run_once(&cfg);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(b.batches().len(), 1);

    let other = support::certs::Certs::new();
    let other_dir = TempDir::new("otherca");
    let wrong = other.write(&other_dir.0).ca;
    let cfg = Cfg::new(&dir, &b)
        .set(
            "tls",
            "ca_file",
            &format!("{:?}", wrong.display().to_string()),
        )
        .write(&dir);
    let (code, err) = run_once(&cfg);
    assert_ne!(code, Some(0));
    let lines = json_lines_at(&err, &["error", "warn"]);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("localhost") && l.to_lowercase().contains("certificate")),
        "{err}"
    );
    assert_eq!(b.batches().len(), 1);
    // The server thread records the failed handshake on its own time.
    assert!(b.wait(Duration::from_secs(20), |s| !s.tls_errors.is_empty()));
}

#[test]
fn a_tls12_only_backend_is_refused_with_a_clear_message() {
    let b = Backend::start(Options {
        mode: Mode::Tls12Only,
        ..Options::default()
    });
    let dir = TempDir::new("tls12");
    provision(&dir, &b);
    let cfg = Cfg::new(&dir, &b).write(&dir);
    let (code, err) = run_once(&cfg);
    assert_ne!(code, Some(0));
    assert!(b.requests().is_empty(), "no HTTP over TLS 1.2");
    let port = b.addr.port();
    let lines = json_lines_at(&err, &["error", "warn"]);
    assert!(
        lines.iter().any(|l| l.contains(&format!(
            "localhost:{port} offers no TLS 1.3: pganalytics-collector speaks TLS 1.3 only; upgrade the proxy"
        ))),
        "{err}"
    );
    // The server saw the collector offer nothing it accepts (1.3 only against 1.2 only).
    assert!(b.wait(Duration::from_secs(20), |s| !s.tls_errors.is_empty()));
}

#[test]
fn mtls_works_with_a_client_certificate_and_fails_clearly_without() {
    let b = Backend::start(Options {
        mode: Mode::Mtls,
        ..Options::default()
    });
    let dir = TempDir::new("mtls");
    provision(&dir, &b);
    let files = b.certs.write(&dir.0);
    let cfg = Cfg::new(&dir, &b)
        .set(
            "tls",
            "cert_file",
            &format!("{:?}", files.client_cert.display().to_string()),
        )
        .set(
            "tls",
            "key_file",
            &format!("{:?}", files.client_key.display().to_string()),
        )
        .write(&dir);
    let (code, err) = run_once(&cfg);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(b.batches().len(), 1);

    let cfg = Cfg::new(&dir, &b)
        .unset("tls", "cert_file")
        .unset("tls", "key_file")
        .write(&dir);
    let (code, err) = run_once(&cfg);
    assert_ne!(code, Some(0));
    let lines = json_lines_at(&err, &["error", "warn"]);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("localhost") && l.to_lowercase().contains("certificate")),
        "{err}"
    );
    assert_eq!(b.batches().len(), 1);
}

#[test]
fn sighup_loads_a_client_certificate_without_a_restart() {
    let b = Backend::start(Options {
        mode: Mode::Mtls,
        ..Options::default()
    });
    let dir = TempDir::new("mtls-hup");
    provision(&dir, &b);
    let files = b.certs.write(&dir.0);
    // No client certificate yet: the backend refuses every handshake.
    let cfg = Cfg::new(&dir, &b).write(&dir);
    let d = Daemon::start(&cfg);
    assert!(
        b.wait(Duration::from_secs(10), |s| !s.tls_errors.is_empty()),
        "{}",
        d.log()
    );
    assert!(
        d.log_line(Duration::from_secs(5), |l| l
            .to_lowercase()
            .contains("certificate"))
            .is_some(),
        "{}",
        d.log()
    );
    assert!(b.batches().is_empty());
    // The same file now names one; SIGHUP re-reads it and the TLS identity with it.
    Cfg::new(&dir, &b)
        .set(
            "tls",
            "cert_file",
            &format!("{:?}", files.client_cert.display().to_string()),
        )
        .set(
            "tls",
            "key_file",
            &format!("{:?}", files.client_key.display().to_string()),
        )
        .write(&dir);
    d.hup();
    assert!(
        b.wait(Duration::from_secs(15), |s| !s.batches.is_empty()),
        "{}",
        d.log()
    );
}

#[test]
fn registered_client_certificate_is_used_for_mtls_by_default() {
    let b = Backend::start(Options {
        mode: Mode::Mtls,
        ..Options::default()
    });
    let dir = TempDir::new("mtlsreg");
    let files = b.certs.write(&dir.0);
    // Registration itself needs a client certificate on this backend: give it the test one.
    let cfg = Cfg::new(&dir, &b)
        .set(
            "tls",
            "cert_file",
            &format!("{:?}", files.client_cert.display().to_string()),
        )
        .set(
            "tls",
            "key_file",
            &format!("{:?}", files.client_key.display().to_string()),
        )
        .write(&dir);
    let secret = dir.file("secret", "registration-secret\n");
    let out = cmd()
        .args(["register", "-c"])
        .arg(&cfg)
        .arg("--secret-file")
        .arg(&secret)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Now no cert_file: collector.crt/collector.key from the state directory are used.
    let cfg = Cfg::new(&dir, &b).write(&dir);
    let (code, err) = run_once(&cfg);
    assert_eq!(code, Some(0), "{err}");
}

/// `openssl s_server` as an out-of-process TLS peer: a TLS 1.3 server gets through the
/// handshake, a TLS 1.2-only one is refused for its version. openssl is a CI requirement
/// (`apt-get install openssl`): a missing one fails the test rather than skipping it.
#[test]
fn openssl_s_server_tls13_is_spoken_and_tls12_refused() {
    let version = Command::new("openssl").arg("version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "openssl is needed for this test (apt-get install openssl): {version:?}"
    );
    let certs = support::certs::Certs::new();
    for (flag, ok) in [("-tls1_3", true), ("-tls1_2", false)] {
        let dir = TempDir::new("openssl");
        let files = certs.write(&dir.0);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Command::new("openssl")
            .args(["s_server", flag, "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&files.server_cert)
            .arg("-key")
            .arg(&files.server_key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the listener.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let cfg_text = format!(
            "[collector]\nid = \"ossl\"\nhostname = \"h\"\nstate_dir = {:?}\n\
             [backend]\nurl = \"https://localhost:{port}\"\nrequest_timeout_secs = 2\n\
             connect_timeout_secs = 2\n[tls]\nca_file = {:?}\n[auth]\nmode = \"shared_secret\"\n\
             jwt_secret_file = {:?}\n[logging]\nformat = \"json\"\n\
             [disk_usage]\nenabled = false\n[pg_stats]\nenabled = false\n\
             [pg_query_stats]\nenabled = false\n[pg_log]\nenabled = false\n\
             [pg_replication]\nenabled = false\n[pg_server]\nenabled = false\n",
            dir.0.display().to_string(),
            files.ca.display().to_string(),
            dir.file("jwt", "k-0123456789abcdef0123456789abcdef\n")
                .display()
                .to_string(),
        );
        let cfg = dir.file("c.toml", &cfg_text);
        let (_, err) = run_once(&cfg);
        let _ = server.kill();
        let _ = server.wait();
        let msgs: Vec<String> = json_lines_at(&err, &["error", "warn"])
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["msg"].as_str().map(str::to_string))
            .collect();
        let expected = if ok {
            // The handshake and the request went through: `s_server -www` answers GET only,
            // so the POST waits for a reply until request_timeout_secs.
            format!("localhost:{port}: timed out waiting for the response")
        } else {
            format!(
                "localhost:{port} offers no TLS 1.3: pganalytics-collector speaks TLS 1.3 only; upgrade the proxy"
            )
        };
        assert!(!msgs.is_empty(), "{flag}: {err}");
        assert!(
            msgs.iter().all(|m| *m == expected),
            "{flag}: {expected:?} expected: {err}"
        );
    }
}

// --- signals, shared secret, config pull -----------------------------------------------------

#[test]
fn sigterm_makes_a_last_push_of_everything_waiting_and_exits_0_within_5_seconds() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("term");
    provision(&dir, &b);
    // A long push interval: only the last push on SIGTERM sends the data (the first push is
    // at a random phase within the hour).
    let cfg = Cfg::new(&dir, &b)
        .set("collector", "push_interval", "3600")
        .write(&dir);
    let mut d = Daemon::start(&cfg);
    // Several sysstat elements (under 1 kB each) waiting.
    let waiting = d.waiting_at_least(4000, Duration::from_secs(30));
    let before = b.batches().len();
    let t = Instant::now();
    d.term();
    let status = d.wait_exit(Duration::from_secs(10));
    let took = t.elapsed();
    assert!(status.success(), "{status:?} {}", d.log());
    // config.md: one last push bounded by 5 s, then exit 0.
    assert!(took < Duration::from_secs(5), "{took:?}");
    let batches = b.batches();
    assert!(batches.len() > before, "a last push: {}", d.log());
    let last: Vec<Value> = batches[before..]
        .iter()
        .flat_map(|x| x.metrics().to_vec())
        .collect();
    let (health, rest) = last.split_last().unwrap();
    assert_eq!(
        health["type"], "collector_health",
        "the last round's health"
    );
    assert_eq!(health["metrics_dropped"], 0);
    // Everything waiting when the last round began (its health counts those bytes) went out.
    let sent: u64 = rest.iter().map(|m| m.to_string().len() as u64).sum();
    assert_eq!(
        Some(sent),
        health["buffer_bytes"].as_u64(),
        "the last push delivers everything waiting"
    );
    assert!(sent >= waiting, "{sent} bytes sent, {waiting} were waiting");
    delivered_once(&b);
}

#[test]
fn sigterm_with_the_backend_unreachable_exits_0_within_5_seconds() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("termrefused");
    provision(&dir, &b);
    // A port nobody listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = Cfg::new(&dir, &b)
        .set("backend", "url", &format!("\"https://localhost:{port}\""))
        .write(&dir);
    let mut d = Daemon::start(&cfg);
    let failure = d.log_line(Duration::from_secs(20), |l| {
        l.contains("\"level\":\"warn\"") || l.contains("\"level\":\"error\"")
    });
    assert!(
        failure.is_some_and(|l| l.contains(&port.to_string())),
        "the failure names the backend: {}",
        d.log()
    );
    let t = Instant::now();
    d.term();
    assert!(d.wait_exit(Duration::from_secs(10)).success());
    // A refused connection fails at once: the 5 s bound of the last push is not even needed.
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(
        d.log_line(Duration::from_secs(5), |l| l
            .contains("last push not delivered"))
            .is_some(),
        "{}",
        d.log()
    );
}

#[test]
fn sigterm_with_the_backend_hanging_makes_a_last_push_and_exits_after_5_seconds() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("termdown");
    provision(&dir, &b);
    let cfg = Cfg::new(&dir, &b)
        .set("backend", "request_timeout_secs", "30")
        .write(&dir);
    let mut d = Daemon::start(&cfg);
    assert!(b.wait(Duration::from_secs(10), |s| !s.batches.is_empty()));
    b.set_outage(Some(Fault::Slow(Duration::from_secs(20))));
    // A push is hanging in the backend.
    assert!(b.wait(Duration::from_secs(10), |s| {
        s.requests.iter().any(|r| r.note.contains("Slow"))
    }));
    let t = Instant::now();
    d.term();
    // The hung request ends at once; the last push attempt is bounded by 5 s, then exit.
    let status = d.wait_exit(Duration::from_secs(10));
    let took = t.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(
        b.wait(Duration::from_secs(2), |s| {
            s.requests.iter().any(|r| r.path == PUSH && r.at > t)
        }),
        "no last push request after SIGTERM: {}",
        d.log()
    );
    assert!(
        d.log_line(Duration::from_secs(5), |l| l
            .contains("\"level\":\"error\"")
            && l.contains("last push not delivered"))
            .is_some(),
        "{}",
        d.log()
    );
}

#[test]
fn shared_secret_tokens_verify_and_carry_exactly_the_protocol_claims() {
    let b = Backend::start(Options {
        shared_key: Some(b"the shared key, at least 32 bytes long".to_vec()),
        ..Options::default()
    });
    let dir = TempDir::new("shared");
    let key = dir.file("jwt.key", "the shared key, at least 32 bytes long\n");
    let cfg = Cfg::new(&dir, &b)
        .set("collector", "id", "\"shared-1\"")
        .set("auth", "mode", "\"shared_secret\"")
        .set(
            "auth",
            "jwt_secret_file",
            &format!("{:?}", key.display().to_string()),
        )
        .write(&dir);
    let (code, err) = run_once(&cfg);
    assert_eq!(code, Some(0), "{err}");
    let push = &b.requests_to(PUSH)[0];
    let auth = push.header("authorization").unwrap();
    let token = auth.strip_prefix("Bearer ").unwrap();
    assert!(
        !token.contains(' ') && !token.contains('='),
        "one space, no padding"
    );
    let claims = backend::verify(b"the shared key, at least 32 bytes long", token)
        .expect("HMAC over the key without its newline");
    let header: Value =
        serde_json::from_slice(&backend::b64url_decode(token.split('.').next().unwrap()).unwrap())
            .unwrap();
    assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "JWT"}));
    let keys: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "collector_id",
        "exp",
        "hostname",
        "iat",
        "iss",
        "nbf",
        "sub",
        "type",
    ];
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(claims["collector_id"], "shared-1");
    assert_eq!(claims["hostname"], HOSTNAME);
    assert_eq!(claims["type"], "access");
    assert_eq!(claims["sub"], "collector:shared-1");
    assert_eq!(claims["iss"], "pganalytics-collector");
    let (iat, nbf, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["nbf"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(iat, nbf);
    assert_eq!(exp - iat, 900);
    assert!((unix_now() - iat).abs() <= 5);
    assert!(!err.contains("the shared key"), "secret logged");
}

#[test]
fn config_pull_is_applied_persisted_filtered_and_reapplied_after_a_restart() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("pull");
    provision(&dir, &b);
    let cfg = Cfg::new(&dir, &b)
        .set("collector", "config_pull_interval", "0.5")
        .set("disk_usage", "enabled", "true")
        .set("disk_usage", "interval", "0.1")
        .write(&dir);
    b.set_config(Some(ConfigReply::Document {
        version: 2,
        // push_interval within what a backend may set (S5: 10..300 s) would slow this test;
        // the clamping itself is a unit test of config::pull.
        body: "[pg_stats]\nmax_tables = 7\n\n[sysstat]\nenabled = false\n\n\
               [backend]\nurl = \"https://evil.invalid\"\n"
            .into(),
    }));
    let mut d = Daemon::start(&cfg);
    let id = std::fs::read_to_string(dir.0.join("collector.id")).unwrap();
    assert!(b.wait(Duration::from_secs(10), |s| s.requests.iter().any(
        |r| r.path == format!("/api/v1/config/{}", id.trim()) && r.status == 200
    )));
    let pulled = b
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/api/v1/config/"))
        .unwrap();
    assert!(
        pulled
            .header("accept")
            .unwrap()
            .contains("application/toml")
    );
    assert!(b.wait(Duration::from_secs(20), |s| {
        s.batches.iter().filter(|x| x.at > pulled.at).count() >= 4
    }));
    // After the pull (applied between cycles: two batches of slack) no sysstat, disk_usage
    // still.
    let after: Vec<Batch> = b
        .batches()
        .into_iter()
        .filter(|x| x.at > pulled.at)
        .collect();
    assert!(after.len() >= 4, "{}", after.len());
    for x in &after[2..] {
        assert!(!types(x).contains(&"sysstat"), "{:?}", types(x));
        assert!(types(x).contains(&"disk_usage"), "{:?}", types(x));
    }
    let remote = std::fs::read_to_string(dir.0.join("remote-config.toml")).unwrap();
    assert!(
        remote.contains("max_tables = 7") && remote.contains("version: 2"),
        "{remote}"
    );
    assert!(
        !remote.contains("evil.invalid"),
        "ignored keys not kept: {remote}"
    );
    let warning = d.log_line(Duration::from_secs(5), |l| {
        l.contains("\"level\":\"warn\"") && l.contains("url")
    });
    assert!(
        warning.is_some(),
        "a warning for the ignored key: {}",
        d.log()
    );
    assert!(
        b.wait(Duration::from_secs(20), |s| s
            .requests
            .iter()
            .filter(|r| r.path.starts_with("/api/v1/config/"))
            .count()
            >= 3),
        "pulled every 0.5 s; version 2 skipped once applied"
    );
    d.term();
    assert!(d.wait_exit(Duration::from_secs(6)).success());

    // Restart with the backend serving nothing: the stored document is applied at start-up.
    b.set_config(Some(ConfigReply::NotFound));
    let restart = Instant::now();
    let _d = Daemon::start(&cfg);
    assert!(b.wait(
        Duration::from_secs(10),
        |s| s.batches.iter().filter(|x| x.at > restart).count() >= 3
    ));
    for x in b.batches().iter().filter(|x| x.at > restart) {
        assert!(!types(x).contains(&"sysstat"), "re-applied: {:?}", types(x));
    }
}

/// Runs today: every config these tests write is valid for the collector as it is (no error,
/// no unknown key), so a failure above is about the push, not about a test's config.
#[test]
fn the_configs_these_tests_write_are_valid() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("cfgcheck");
    let key = dir.file("jwt.key", "k-0123456789abcdef0123456789abcdef\n");
    let files = b.certs.write(&dir.0);
    let path = |p: &Path| format!("{:?}", p.display().to_string());
    let mut cfg = Cfg::new(&dir, &b);
    cfg.set("backend", "compression", "\"none\"")
        .set("backend", "buffer_bytes", "8000")
        .set("backend", "max_batch_bytes", "32000")
        .set("collector", "config_pull_interval", "0.5")
        .set("collector", "id", "\"shared-1\"")
        .set("auth", "mode", "\"shared_secret\"")
        .set("auth", "jwt_secret_file", &path(&key))
        .set("tls", "cert_file", &path(&files.client_cert))
        .set("tls", "key_file", &path(&files.client_key))
        .set("disk_usage", "enabled", "true");
    let out = cmd()
        .args(["check-config", "-c"])
        .arg(cfg.write(&dir))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("did you mean") && !err.contains("unknown"),
        "{err}"
    );
}

/// Security rule S5: a backend cannot stop pushes for longer than `retry_max_secs`.
/// `Retry-After: 99999999` (three years) is waited only `retry_max_secs` (1 s here).
#[test]
fn a_huge_retry_after_is_capped_at_retry_max() {
    let (b, _dir, d) = pushing("retry-cap");
    b.push_faults(1, Fault::TooMany(Some(99_999_999)));
    let limited = first_push_answered(&b, 429);
    assert!(
        b.wait(Duration::from_secs(30), |s| {
            s.batches.iter().any(|x| x.at > limited.at)
        }),
        "no push after the 429 within 30 s: the Retry-After was obeyed\n{}",
        d.log()
    );
    let next = b
        .requests_to(PUSH)
        .into_iter()
        .find(|r| r.at > limited.at)
        .unwrap();
    let gap = next.at - limited.at;
    // At least retry_max (the cap is a floor too), and nowhere near the asked-for delay.
    assert!(gap >= Duration::from_millis(950), "next push after {gap:?}");
    assert_eq!(next.batch_id(), limited.batch_id(), "the buffer was kept");
    delivered_once(&b);
}

/// Security rule S5: a 404 from the refresh endpoint is a backend problem, not a lost
/// identity: the collector never registers again for it (a new identity at every failing push
/// before), keeps its batch, and delivers it once the backend accepts the token again.
#[test]
fn a_404_on_refresh_never_registers_again() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("refresh404");
    let id = provision(&dir, &b);
    // Registered two hours ago: only the 404 rule can keep it from registering again.
    std::fs::File::options()
        .write(true)
        .open(dir.0.join("collector.id"))
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    let secret = dir.file("registration.secret", "registration-secret\n");
    let cfg = Cfg::new(&dir, &b)
        .set(
            "auth",
            "registration_secret_file",
            &format!("{:?}", secret.display().to_string()),
        )
        .write(&dir);
    b.set_refresh_status(Some(404));
    // Pushes answered 401 (only pushes: refresh answers 404, registration would succeed).
    b.push_faults(4, Fault::Unauthorized);
    let d = Daemon::start(&cfg);
    // Several rounds of push 401 → refresh 404.
    assert!(
        b.wait(Duration::from_secs(30), |s| {
            s.requests.iter().filter(|r| r.path == REFRESH).count() >= 3
        }),
        "{}",
        d.log()
    );
    let register_requests = || b.requests_to(backend::REGISTER).len();
    assert_eq!(register_requests(), 0, "registered again:\n{}", d.log());
    b.set_refresh_status(None);
    assert!(
        b.wait(Duration::from_secs(30), |s| !s.batches.is_empty()),
        "{}",
        d.log()
    );
    assert_eq!(register_requests(), 0);
    assert_eq!(
        std::fs::read_to_string(dir.0.join("collector.id"))
            .unwrap()
            .trim(),
        id,
        "the identity is kept"
    );
    delivered_once(&b);
}

/// Security rule S5, played by a hostile backend: a pulled document that tries every
/// local-only key and out-of-range values. Local keys are ignored and intervals and limits
/// brought within bounds, each with a warning; what is kept is only what a backend may set.
#[test]
fn a_hostile_pulled_config_is_reduced_to_bounded_collection_settings() {
    let b = Backend::start(Options::default());
    let dir = TempDir::new("pull-hostile");
    provision(&dir, &b);
    let cfg = Cfg::new(&dir, &b)
        .set("collector", "config_pull_interval", "0.5")
        .write(&dir);
    b.set_config(Some(ConfigReply::Document {
        version: 9,
        body: "[collector]\ninterval = 0.01\npush_interval = 86400\nconfig_pull_interval = 0\n\
               state_dir = \"/tmp\"\n[postgres]\ndatabases = \"*\"\nhost = \"evil.example\"\n\
               [disk_usage]\ninclude_fstypes = [\"nfs\"]\n[pg_log]\nenabled = true\n\
               min_level = \"DEBUG5\"\npath = \"/etc/shadow\"\n[pg_bloat]\nenabled = true\n\
               interval = 0.01\nmax_tables = 1000000\n[tls]\nverify = false\n\
               [backend]\nurl = \"https://evil.invalid\"\n"
            .into(),
    }));
    let d = Daemon::start(&cfg);
    assert!(
        b.wait(Duration::from_secs(10), |_| dir
            .0
            .join("remote-config.toml")
            .exists()),
        "{}",
        d.log()
    );
    let remote = std::fs::read_to_string(dir.0.join("remote-config.toml")).unwrap();
    for kept in [
        "interval = 10\n",
        "push_interval = 300\n",
        "interval = 60\n",
        "max_tables = 5000\n",
    ] {
        assert!(remote.contains(kept), "{kept:?} in {remote}");
    }
    for local in [
        "databases",
        "host",
        "state_dir",
        "include_fstypes",
        "min_level",
        "path",
        "enabled",
        "verify",
        "url",
        "config_pull_interval",
    ] {
        assert!(!remote.contains(local), "{local} kept: {remote}");
    }
    for warned in [
        "postgres.databases",
        "pg_log.path",
        "pg_bloat.enabled",
        "tls.verify",
        "config_pull_interval = 0",
        "push_interval = 86400",
    ] {
        assert!(
            d.log_line(Duration::from_secs(5), |l| l.contains("\"level\":\"warn\"")
                && l.contains(warned))
                .is_some(),
            "a warning naming {warned}: {}",
            d.log()
        );
    }
}
