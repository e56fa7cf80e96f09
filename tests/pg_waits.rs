//! `pg_wait_events` against a real server (docs/metrics.md, `pg_wait_events`): sessions that
//! really wait on a row lock, really burn CPU, and really sit idle, sampled by the binary.
//! Part of the version matrix (scripts/pg-matrix.sh): `query_id` is null before PG 14.
mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::pg::{Cluster, Options, SUPERPASS, SUPERUSER, eventually};
use support::tmp::TempDir as Dir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");

fn config(dir: &Dir, c: &Cluster, collector: &str, postgres_extra: &str, extra: &str) -> PathBuf {
    let pw = dir.0.join("pw");
    std::fs::write(&pw, format!("{SUPERPASS}\n")).unwrap();
    // Secret files others can read are refused (SECURITY.md).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.0.join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nstate_dir = \"{}\"\n{collector}\n[logging]\nformat = \"json\"\n\
             [postgres]\nhost = \"{}\"\nport = {}\nuser = \"{SUPERUSER}\"\npassword_file = \"{}\"\n\
             {postgres_extra}\n{extra}\n",
            dir.0.display(),
            c.dir.display(),
            c.port,
            pw.display()
        ),
    )
    .unwrap();
    cfg
}

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

/// Waits until the session named `app` is in `state` (and, when given, waits on `wait`).
fn wait_for(c: &Cluster, app: &str, state: &str, wait: Option<&str>) {
    let cond = match wait {
        Some(w) => format!("and wait_event_type = '{w}'"),
        None => "and wait_event_type is null".to_string(),
    };
    let sql = format!(
        "select count(*) from pg_stat_activity where application_name = '{app}' and state = '{state}' {cond}"
    );
    assert!(
        eventually(Duration::from_secs(20), || c.psql("postgres", &sql) == "1"),
        "{app} never reached {state} {wait:?}"
    );
}

fn once(cfg: &Path, sample_ms: u32) -> Value {
    let out = cmd()
        .args([
            "once",
            "--sample-ms",
            &sample_ms.to_string(),
            "--only",
            "pg_wait_events,collector_health",
            "-c",
        ])
        .arg(cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"))
}

fn element<'a>(v: &'a Value, ty: &str) -> &'a Value {
    v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in {v}"))
}

fn top<'a>(w: &'a Value, text: &str) -> Option<&'a Value> {
    w["top_queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["query"].as_str().is_some_and(|t| t.contains(text)))
}

/// A cluster that trusts local connections: a SCRAM exchange in a debug build takes long
/// enough (hundreds of ms) to hold the loop past several 100 ms samples, and `pg_stats`
/// reconnects at every collection in the `run` test.
fn trusting() -> Options {
    Options {
        hba: Some("local all all trust\nhost all all 127.0.0.1/32 trust\n".into()),
        ..Options::default()
    }
}

const BLOCKED: &str = "update t set v = 2 where id = 1";
const CPU: &str = "select count(*) from (select generate_series(1, 100000000000) as g) s";
/// The same statement with another constant: the same query id (PG 14+), another text.
const CPU2: &str = "select count(*) from (select generate_series(1, 100000000002) as g) s";

#[test]
fn lock_waits_cpu_and_never_idle_or_own_sessions() {
    let c = Cluster::start(trusting());
    let version = c.version_num();
    c.psql("postgres", "create database app");
    c.psql(
        "app",
        "create table t (id int primary key, v int); insert into t values (1, 0)",
    );
    // Idle in a transaction, holding the row lock; and a plain idle session.
    let mut holder = c.session("app", "holder");
    holder.send("begin; update t set v = 1 where id = 1; select 'holder marker';");
    wait_for(&c, "holder", "idle in transaction", Some("Client"));
    let mut idle = c.session("app", "idle");
    idle.send("select 'idle marker';");
    wait_for(&c, "idle", "idle", Some("Client"));
    // Blocked on the holder's transaction id; and one burning CPU.
    let mut blocked = c.session("app", "blocked");
    blocked.send(&format!("{BLOCKED};"));
    wait_for(&c, "blocked", "active", Some("Lock"));
    let mut cpu = c.session("app", "cpu");
    cpu.send(&format!("{CPU};"));
    let mut cpu2 = c.session("app", "cpu2");
    cpu2.send(&format!("{CPU2};"));
    wait_for(&c, "cpu", "active", None);
    wait_for(&c, "cpu2", "active", None);

    let dir = Dir::shared("waits");
    let cfg = config(
        &dir,
        &c,
        "",
        "",
        "[pg_wait_events]\nenabled = true\nsample_ms = 100\n",
    );
    let v = once(&cfg, 500);
    let w = element(&v, "pg_wait_events");
    let health = element(&v, "collector_health");
    assert!(health["errors"].as_object().unwrap().is_empty(), "{health}");
    let samples = w["samples"].as_u64().unwrap();
    // once samples during its --sample-ms wait: at start, then every 100 ms.
    assert!(samples >= 2, "{w}");
    assert!(w["period_secs"].as_f64().unwrap() > 0.0, "{w}");

    // The blocked session: Lock/transactionid, with its query, in every sample.
    let by_wait = w["by_wait"].as_array().unwrap();
    let lock = by_wait
        .iter()
        .find(|b| b["wait_event_type"] == "Lock")
        .unwrap_or_else(|| panic!("no Lock wait: {w}"));
    assert_eq!(lock["wait_event"], "transactionid", "{w}");
    assert_eq!(lock["database"], "app", "{w}");
    assert_eq!(lock["backend_type"], "client backend", "{w}");
    assert_eq!(lock["samples"].as_u64(), Some(samples), "{w}");
    assert_eq!(lock["average_active_sessions"].as_f64(), Some(1.0), "{w}");
    let q = top(w, BLOCKED).unwrap_or_else(|| panic!("blocked query missing: {w}"));
    assert_eq!(q["database"], "app");
    assert_eq!(q["samples"].as_u64(), Some(samples), "{q}");
    assert_eq!(
        q["waits"],
        serde_json::json!({ "Lock:transactionid": samples }),
        "{q}"
    );

    // The CPU-bound query: no wait event, so CPU, in every sample.
    let on_cpu = by_wait
        .iter()
        .find(|b| b["wait_event_type"] == "CPU" && b["database"] == "app")
        .unwrap_or_else(|| panic!("no CPU: {w}"));
    assert_eq!(on_cpu["wait_event"], "CPU");
    // Two sessions run the CPU-bound statement (two constants): each counts in every sample
    // (the server sends them as one row when they share a query id).
    assert_eq!(on_cpu["samples"].as_u64(), Some(2 * samples), "{w}");
    let q = top(w, "generate_series").unwrap_or_else(|| panic!("cpu query missing: {w}"));
    if version < 140000 {
        // No query id: one key per text.
        assert_eq!(q["waits"], serde_json::json!({ "CPU": samples }), "{q}");
        let texts = w["top_queries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| {
                q["query"]
                    .as_str()
                    .is_some_and(|t| t.contains("generate_series"))
            })
            .count();
        assert_eq!(texts, 2, "{w}");
    } else {
        assert_eq!(q["waits"], serde_json::json!({ "CPU": 2 * samples }), "{q}");
    }

    // query_id: null before 14; from 14 with compute_query_id (auto: on, since the harness
    // loads pg_stat_statements), pg_stat_statements' queryid of the statement.
    if version < 140000 {
        assert!(q["query_id"].is_null(), "{q}");
    } else {
        assert!(q["query_id"].is_i64(), "{q}");
        let id = c.psql(
            "app",
            "select query_id from pg_stat_activity where application_name = 'cpu'",
        );
        assert_eq!(q["query_id"].as_i64().unwrap().to_string(), id, "{q}");
    }

    // Never the idle sessions (idle, idle in a transaction), never the collector's own.
    assert!(top(w, "marker").is_none(), "an idle session counted: {w}");
    assert!(
        by_wait.iter().all(|b| b["wait_event_type"] != "Client"),
        "an idle session counted: {w}"
    );
    assert!(
        top(w, "pg_stat_activity").is_none(),
        "the collector's own sampling query counted: {w}"
    );
    // Exactly the three busy sessions, in every sample.
    assert_eq!(w["average_active_sessions"].as_f64(), Some(3.0), "{w}");

    // compute_query_id off (PG 14+): a statement started afterwards has no query id, and
    // its samples are grouped by text.
    if version >= 140000 {
        c.psql("postgres", "alter system set compute_query_id = off");
        c.psql("postgres", "select pg_reload_conf()");
        let mut late = c.session("app", "late");
        late.send("select count(*) from (select generate_series(1, 100000000001) as late) s;");
        wait_for(&c, "late", "active", None);
        let v = once(&cfg, 0);
        let w = element(&v, "pg_wait_events");
        assert_eq!(w["samples"], 1, "--sample-ms 0 still takes one sample: {w}");
        let q = top(w, "as late").unwrap_or_else(|| panic!("{w}"));
        assert!(q["query_id"].is_null(), "{q}");
        assert_eq!(q["waits"], serde_json::json!({ "CPU": 1 }));
        c.psql(
            "postgres",
            "select pg_cancel_backend(pid) from pg_stat_activity where application_name = 'late'",
        );
        drop(late);
    }
    c.psql(
        "postgres",
        "select pg_cancel_backend(pid) from pg_stat_activity where application_name in ('cpu', 'cpu2')",
    );
    drop((holder, idle, blocked, cpu, cpu2));
}

/// A `run --stdout` child; its stdout lines arrive through a channel.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    fn start(cfg: &Path) -> Daemon {
        let mut child = cmd()
            .args(["run", "--stdout", "-c"])
            .arg(cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Daemon { child, lines }
    }

    /// The next `pg_wait_events` element (within 20 s).
    fn next_waits(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let l = self.lines.recv_timeout(left).expect("an envelope");
            let v: Value = serde_json::from_str(&l).unwrap();
            if let Some(w) = v["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["type"] == "pg_wait_events")
            {
                return w.clone();
            }
        }
        panic!("no pg_wait_events element");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `run`: samples between elements, the first element one interval after start, and the
/// cluster connection kept open while pg_stats takes turns over three databases with
/// `max_connections = 2`.
#[test]
fn run_samples_between_elements_and_keeps_its_connection() {
    let c = Cluster::start(trusting());
    c.psql("postgres", "create database a");
    c.psql("postgres", "create database b");
    let mut blocked_holder = c.session("a", "holder");
    blocked_holder.send("create table t (id int primary key); insert into t values (1);");
    blocked_holder.send("begin; delete from t where id = 1;");
    wait_for(&c, "holder", "idle in transaction", Some("Client"));
    let mut blocked = c.session("a", "blocked");
    blocked.send("delete from t where id = 1;");
    wait_for(&c, "blocked", "active", Some("Lock"));

    let dir = Dir::shared("waits-run");
    let cfg = config(
        &dir,
        &c,
        "interval = 0.5\npush_interval = 0.5",
        "databases = [\"a\", \"b\", \"postgres\"]\nmax_connections = 2",
        "[sysstat]\nenabled = false\n[disk_usage]\nenabled = false\n\
         [pg_query_stats]\nenabled = false\n[pg_log]\nenabled = false\n\
         [pg_replication]\nenabled = false\n[pg_server]\nenabled = false\n\
         [pg_wait_events]\nenabled = true\ninterval = 1\nsample_ms = 100\n",
    );
    let sampler_pid = || {
        c.psql(
            "postgres",
            "select string_agg(pid::text, ',') from pg_stat_activity \
             where application_name = 'pganalytics-collector' and datname = 'postgres'",
        )
    };
    let d = Daemon::start(&cfg);
    let first = d.next_waits();
    // Not the collection right after start: an interval of samples.
    assert!(first["samples"].as_u64().unwrap() >= 3, "{first}");
    let pid = sampler_pid();
    assert!(!pid.is_empty() && !pid.contains(','), "{pid}");
    for _ in 0..2 {
        let w = d.next_waits();
        let samples = w["samples"].as_u64().unwrap();
        assert!(samples >= 3, "{w}");
        let lock = w["by_wait"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["wait_event"] == "transactionid")
            .unwrap_or_else(|| panic!("{w}"));
        assert_eq!(lock["samples"].as_u64(), Some(samples), "{w}");
        assert_eq!(lock["database"], "a");
        // pg_stats went through a, b and postgres on two connections in between: the
        // sampling connection is the same session.
        assert_eq!(sampler_pid(), pid);
        let open = c.psql(
            "postgres",
            "select count(*) from pg_stat_activity where application_name = 'pganalytics-collector'",
        );
        assert!(open == "1" || open == "2", "max_connections = 2: {open}");
    }
    drop(d);
    drop((blocked, blocked_holder));
}
