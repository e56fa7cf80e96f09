//! The whole chain at once: a real PostgreSQL (pg_stat_statements loaded, `logging_collector`
//! rotating by size and writing both stderr and jsonlog) with every metric type on → the real
//! binary (`run`) → the contract backend over TLS 1.3 with a client certificate, while things go
//! wrong on both sides:
//!
//! - the backend answers a run of 503s, cuts a reply after accepting the batch (reset), sends
//!   bytes that are not HTTP, a 429 and a 401 (a token refresh);
//! - PostgreSQL is restarted, then frozen (SIGSTOP on the postmaster and every child for a few
//!   seconds, then SIGCONT);
//! - the collector is reloaded (SIGHUP), then stopped (SIGTERM) and started again on the same
//!   state directory.
//!
//! What must hold: every WARNING of the workload that the server wrote to its jsonlog files
//! arrives exactly once, read from the stderr files (`[pg_log] format = "stderr"`); no element
//! arrives twice (a batch id repeats only after a cut reply, with the same elements); both runs
//! exit 0; the backend saw no contract violation; every metric type that has something to say
//! on a single server was delivered.
//!
//! The short form (the default, in CI) runs the fault cycle once in each run of the collector.
//! `PGAC_E2E_SECS=600 cargo test --test e2e -- --nocapture` repeats it in the second run until
//! that many seconds have passed.
mod support;

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::backend::{Backend, Batch, Fault, Mode, Options, PUSH};
use support::pg::{Cluster, SUPERPASS, SUPERUSER};
use support::tmp::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");
const HOSTNAME: &str = "e2e-host";

/// Conditions are polled up to this long (a loaded 2-core machine); never slept for.
const WAIT: Duration = Duration::from_secs(120);

/// The marker of workload entries: `e2e-<n> <padding>`.
const MARK: &str = "e2e-";

fn cmd() -> Command {
    let mut c = Command::new(BIN);
    for v in [
        "PGANALYTICS_CONFIG",
        "PGANALYTICS_REGISTRATION_SECRET",
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

fn signal(pid: i32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    let _ = rustix::process::kill_process(pid, sig);
}

/// A running `run` child; its stderr lines are kept.
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
        let d = Daemon { child, stderr };
        // Signals are blocked (queued, not fatal) once the loop has said "started".
        d.wait_log("\"msg\":\"started\"");
        d
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no collector log line with {needle:?}:\n{}", self.log());
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM, then the exit status, which must be 0.
    fn stop(mut self) {
        signal(self.pid(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status}:\n{}", self.log());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The cluster: both log destinations, size rotation at 64 kB, WARNINGs logged (the workload),
/// no statement logging (the collector's own queries stay out of the log).
fn cluster() -> Cluster {
    Cluster::start(support::pg::Options {
        settings: vec![
            "logging_collector=on".into(),
            "log_destination='stderr,jsonlog'".into(),
            "log_rotation_size=64kB".into(),
            "log_rotation_age=0".into(),
            "log_line_prefix='%m [%p] %q%u@%d '".into(),
            "lc_messages=C".into(),
            "track_io_timing=on".into(),
        ],
        pg_stat_statements: true,
        ..support::pg::Options::default()
    })
}

/// Every metric type on; PostgreSQL ones every second, the log read every 0.3 s, pushes every
/// 0.5 s; mTLS with the test CA's client certificate.
fn config(dir: &TempDir, c: &Cluster, b: &Backend) -> PathBuf {
    let files = b.certs.write(&dir.0);
    let pw = dir.file("pgpass", &format!("{SUPERPASS}\n"));
    let mut text = format!(
        "[collector]\nhostname = {HOSTNAME:?}\nstate_dir = {state:?}\ninterval = 1\n\
         push_interval = 0.5\nconfig_pull_interval = 0\n\
         [backend]\nurl = {url:?}\nretry_initial_secs = 0.2\nretry_max_secs = 1\n\
         connect_timeout_secs = 2\nrequest_timeout_secs = 3\n\
         [tls]\nca_file = {ca:?}\ncert_file = {cert:?}\nkey_file = {key:?}\n\
         [logging]\nformat = \"json\"\nlevel = \"info\"\n\
         [postgres]\nhost = {host:?}\nport = {port}\nuser = {SUPERUSER:?}\npassword_file = {pw:?}\n\
         [pg_log]\ninterval = 0.3\nformat = \"stderr\"\nstart_at = \"beginning\"\n",
        state = dir.0.display().to_string(),
        url = b.url,
        ca = files.ca.display().to_string(),
        cert = files.client_cert.display().to_string(),
        key = files.client_key.display().to_string(),
        host = c.dir.display().to_string(),
        port = c.port,
        pw = pw.display().to_string(),
    );
    for p in [
        "pg_connections",
        "pg_locks",
        "pg_cache",
        "pg_bloat",
        "pg_extensions",
        "pg_schema",
    ] {
        text.push_str(&format!("[{p}]\nenabled = true\ninterval = 1\n"));
    }
    dir.file("collector.toml", &text)
}

/// `collector.id` and a backend-issued `collector.token`, as a registration writes them.
fn provision(dir: &TempDir, b: &Backend) {
    let id = "c-e2e".to_string();
    dir.file("collector.id", &format!("{id}\n"));
    dir.file(
        "collector.token",
        &format!("{}\n", b.issue_token(&id, HOSTNAME)),
    );
}

/// PIDs of the postmaster (first line of postmaster.pid) and all its children.
fn server_pids(c: &Cluster) -> Vec<i32> {
    let text = std::fs::read_to_string(c.dir.join("postmaster.pid")).unwrap();
    let pm: i32 = text.lines().next().unwrap().trim().parse().unwrap();
    let mut pids = vec![pm];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(pm) {
            pids.push(pid);
        }
    }
    pids
}

/// Writes WARNINGs `e2e-<n>` (n counting up) in groups of 20 every 0.1 s until stopped; a
/// group that fails (the server restarting) is simply not written. The server's jsonlog is the
/// truth the test compares with, not this counter.
struct Workload {
    stop: Arc<AtomicBool>,
    next: Arc<AtomicU32>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn warnings_sql(from: u32, to: u32) -> String {
    format!(
        "DO $$ BEGIN FOR i IN {from}..{to} LOOP RAISE WARNING '{MARK}% %', i, repeat('w', 200); END LOOP; END $$"
    )
}

impl Workload {
    fn start(c: &Arc<Cluster>) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU32::new(0));
        let (s, n, c) = (stop.clone(), next.clone(), c.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let from = n.fetch_add(20, Ordering::Relaxed);
                let _ = c.try_psql("postgres", &warnings_sql(from, from + 19));
                // Some table traffic for pg_stats, pg_query_stats and pg_cache.
                let _ = c.try_psql(
                    "postgres",
                    &format!("INSERT INTO e2e_t SELECT g, md5(g::text) FROM generate_series({from}, {from} + 19) g"),
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Workload {
            stop,
            next,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.next.load(Ordering::Relaxed)
    }
}

/// `e2e-<n>` of a message, when it is one of the workload's.
fn marker(msg: &str) -> Option<u32> {
    msg.strip_prefix(MARK)?.split(' ').next()?.parse().ok()
}

/// The workload's messages in every jsonlog file of the cluster, counted.
fn jsonlog_messages(c: &Cluster) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(c.dir.join("log")).unwrap().flatten() {
        if e.path().extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("{}: {err}: {line}", e.path().display()));
            if v["error_severity"] != "WARNING" {
                continue;
            }
            if let Some(m) = v["message"].as_str().filter(|m| marker(m).is_some()) {
                *out.entry(m.to_string()).or_default() += 1;
            }
        }
    }
    out
}

/// The elements of the accepted batches, each batch once. A batch id may repeat only with the
/// same elements (docs/protocol.md: kept by every resend, so that a backend recognises a
/// duplicate after a lost reply, whether the backend cut it on purpose or the collector gave
/// up waiting for it on this loaded machine); the repeats are printed with what the backend
/// answered to each copy. No collector_health or sysstat element twice across distinct batches.
fn delivered_once(b: &Backend) -> Vec<Value> {
    let batches = b.batches();
    let requests = b.requests_to(PUSH);
    let mut by_id: HashMap<String, &Batch> = HashMap::new();
    let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
    let mut twice = Vec::new();
    let mut out = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        if let Some(first) = by_id.get(&batch.batch_id) {
            assert_eq!(
                first.metrics(),
                batch.metrics(),
                "a resend carries the same elements"
            );
            let copies: Vec<String> = requests
                .iter()
                .filter(|r| r.batch_id().as_deref() == Some(batch.batch_id.as_str()))
                .map(|r| {
                    format!(
                        "{} on conn {} {:.1} s after the first ({})",
                        r.status,
                        r.conn,
                        r.at.duration_since(first.at).as_secs_f64(),
                        r.note
                    )
                })
                .collect();
            println!(
                "batch {} accepted again (reply cut on purpose: {}): {copies:?}",
                batch.batch_id, first.reply_lost
            );
            continue;
        }
        by_id.insert(batch.batch_id.clone(), batch);
        for (j, m) in batch.metrics().iter().enumerate() {
            // Timestamps are whole seconds: two collections of an unchanged pg_locks in one
            // second (a late run after a frozen server, then the next on time) are the same
            // text and both real. collector_health (its own round number) and sysstat (moving
            // counters) never repeat, so an element sent again under a new batch id shows there.
            let unique = m["type"] == "collector_health" || m["type"] == "sysstat";
            if !unique {
                out.push(m.clone());
                continue;
            }
            if let Some((bi, bj)) = seen.insert(m.to_string(), (i, j)) {
                twice.push(format!(
                    "batch {bi} #{bj} and batch {i} #{j} ({} then {}): {m}",
                    batches[bi].batch_id, batch.batch_id
                ));
            }
            out.push(m.clone());
        }
    }
    assert!(
        twice.is_empty(),
        "elements delivered twice:\n{}",
        twice.join("\n")
    );
    out
}

/// Workload messages among the delivered pg_log entries, counted.
fn delivered_messages(elements: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in elements.iter().filter(|e| e["type"] == "pg_log") {
        for entry in e["entries"].as_array().into_iter().flatten() {
            if let Some(m) = entry["message"].as_str().filter(|m| marker(m).is_some()) {
                assert_eq!(entry["level"], "WARNING", "{entry}");
                *out.entry(m.to_string()).or_default() += 1;
            }
        }
    }
    out
}

fn delivered_max_marker(batches: &[Batch]) -> Option<u32> {
    batches
        .iter()
        .flat_map(|x| x.metrics().to_vec())
        .filter(|e| e["type"] == "pg_log")
        .flat_map(|e| e["entries"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| marker(e["message"].as_str()?))
        .max()
}

/// Waits until a push is accepted after `since`.
fn wait_accepted_after(b: &Backend, since: Instant, d: &Daemon) {
    assert!(
        b.wait(WAIT, |s| s.batches.iter().any(|x| x.at > since)),
        "no batch accepted after {since:?}:\n{}",
        d.log()
    );
}

/// One cycle of faults: the backend's, PostgreSQL's restart and freeze, the collector's reload.
fn fault_cycle(b: &Backend, c: &Cluster, d: &Daemon, cycle: u32) {
    // Backend: a run of 503s, a reset after accepting, garbage, a 429, a 401.
    for _ in 0..4 {
        b.push_faults(1, Fault::Status(503));
    }
    b.push_faults(1, Fault::Reset);
    b.push_faults(1, Fault::Garbage);
    b.push_faults(1, Fault::TooMany(Some(1)));
    b.push_faults(1, Fault::Unauthorized);
    assert!(
        b.wait(WAIT, |s| s.faults.is_empty()),
        "cycle {cycle}: the faults were not all served:\n{}",
        d.log()
    );
    wait_accepted_after(b, Instant::now(), d);

    // PostgreSQL restarted under the collector.
    c.restart();
    wait_accepted_after(b, Instant::now(), d);

    // PostgreSQL frozen: every process stopped for 4 s (its sessions hang, nothing answers).
    let pids = server_pids(c);
    for &p in &pids {
        signal(p, rustix::process::Signal::STOP);
    }
    let frozen = Instant::now();
    // The collector keeps pushing host samples meanwhile (its waits have deadlines).
    wait_accepted_after(b, frozen, d);
    while frozen.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for &p in &pids {
        signal(p, rustix::process::Signal::CONT);
    }

    // The collector reloaded.
    signal(d.pid(), rustix::process::Signal::HUP);
    wait_accepted_after(b, Instant::now(), d);
}

#[test]
fn whole_chain_with_faults_on_both_sides() {
    let secs: u64 = std::env::var("PGAC_E2E_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let started = Instant::now();
    let c = Arc::new(cluster());
    c.psql(
        "postgres",
        "CREATE TABLE e2e_t (id int, v text); CREATE INDEX ON e2e_t (id); \
         CREATE EXTENSION pg_stat_statements",
    );
    let b = Backend::start(Options {
        mode: Mode::Mtls,
        ..Options::default()
    });
    let dir = TempDir::new("e2e");
    provision(&dir, &b);
    let cfg = config(&dir, &c, &b);

    let d = Daemon::start(&cfg);
    wait_accepted_after(&b, started, &d);
    let w = Workload::start(&c);

    let mut cycle = 0;
    fault_cycle(&b, &c, &d, cycle);
    // The collector stopped and started again on the same state directory.
    d.stop();
    let d = Daemon::start(&cfg);
    wait_accepted_after(&b, Instant::now(), &d);
    // The second run goes through the faults too (its first token refresh, its first resend).
    cycle += 1;
    fault_cycle(&b, &c, &d, cycle);
    while started.elapsed() < Duration::from_secs(secs) {
        cycle += 1;
        fault_cycle(&b, &c, &d, cycle);
        println!(
            "cycle {cycle} done at {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }

    let written = w.finish();
    // One more entry after the workload's: the reader holds the last entry of a file until a
    // next line shows it complete.
    c.psql("postgres", "DO $$ BEGIN RAISE WARNING 'e2e-tail'; END $$");
    let want = jsonlog_messages(&c);
    let last = want.keys().filter_map(|m| marker(m)).max().unwrap();
    if !b.wait(WAIT, |s| delivered_max_marker(&s.batches) >= Some(last)) {
        let files: Vec<String> = std::fs::read_dir(c.dir.join("log"))
            .unwrap()
            .flatten()
            .map(|e| format!("{} {}", e.path().display(), e.metadata().unwrap().len()))
            .collect();
        panic!(
            "the last workload entry ({last}) never arrived (last delivered: {:?}); files {files:#?}; \
             offsets {:?}; current_logfiles {:?}; collector:\n{}",
            delivered_max_marker(&b.batches()),
            std::fs::read_to_string(dir.0.join("pg_log.offsets")),
            std::fs::read_to_string(c.dir.join("current_logfiles")),
            d.log()
        );
    }
    d.stop();

    assert!(b.violations().is_empty(), "{:?}", b.violations());
    let elements = delivered_once(&b);
    let got = delivered_messages(&elements);
    let missing: Vec<&String> = want.keys().filter(|m| !got.contains_key(*m)).collect();
    let extra: Vec<&String> = got.keys().filter(|m| !want.contains_key(*m)).collect();
    let twice: Vec<(&String, &usize)> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && twice.is_empty(),
        "{} written to jsonlog, {} delivered; missing {:?}, not written {:?}, twice {:?}",
        want.len(),
        got.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        extra.iter().take(5).collect::<Vec<_>>(),
        twice.iter().take(5).collect::<Vec<_>>()
    );
    assert!(want.values().all(|n| *n == 1), "the server logged twice?");

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in &elements {
        *counts
            .entry(e["type"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    // pg_replication says nothing on a lone primary with no slots; every other type must.
    for t in [
        "sysstat",
        "disk_usage",
        "collector_health",
        "pg_stats",
        "pg_query_stats",
        "pg_log",
        "pg_server",
        "pg_connections",
        "pg_locks",
        "pg_cache",
        "pg_bloat",
        "pg_extensions",
        "pg_schema",
    ] {
        assert!(counts.contains_key(t), "no {t} delivered: {counts:?}");
    }
    let pushes = b.requests_to(PUSH);
    let statuses: BTreeMap<u16, usize> = pushes.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.status).or_default() += 1;
        m
    });
    println!(
        "e2e: {:.0} s, {} fault cycles, {} workload groups written ({} entries in jsonlog, each delivered once), \
         {} batches, push statuses {statuses:?}, elements {counts:?}",
        started.elapsed().as_secs_f64(),
        cycle + 1,
        written / 20,
        want.len(),
        b.batches().len(),
    );
}
