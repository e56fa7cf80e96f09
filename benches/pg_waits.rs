//! Cost of `pg_wait_events` (docs/metrics.md, `pg_wait_events`) with 100 active sessions,
//! measured on the shipped binary.
//!
//! Starts a throw-away cluster (tests/support/pg.rs) and 100 psql sessions: 60 in
//! `pg_sleep` (a Timeout wait) and 40 blocked on one row lock (Lock/transactionid or
//! Lock/tuple), each with its own statement text, so every sample reads and aggregates 100
//! rows with texts. Runs the static release binary as `run --stdout` with only
//! `pg_wait_events` on (`sample_ms = 100`, `interval = 1`) and reads:
//! - collector CPU per sample: CPU time of the process (/proc/PID/schedstat, ns) over the
//!   measured intervals, divided by the samples taken in them; this includes each interval's
//!   element and its envelope on stdout (one per 10 samples);
//! - sessions per sample (`average_active_sessions`) and missed samples;
//! - peak RSS (VmHWM) of the process;
//! - server time of one sample: `pg_stat_statements` of the collector's user (calls, mean and
//!   max execution time of the sampling statement), reset after the warm-up.
//!
//! `cargo build --release --target x86_64-unknown-linux-musl && cargo bench --bench pg_waits
//! [-- INTERVALS]` (default 20 one-second intervals). `PGAC_BIN` names another binary. Prints
//! numbers; asserts nothing about time. Goal: <= 0.2 ms collector CPU per sample.

#[path = "../tests/support/pg.rs"]
mod pg;
#[path = "support/proc.rs"]
mod proc_figures;
use proc_figures::{cpu_ns, steal_percent, steal_ticks};

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const SESSIONS: usize = 100;
const SLEEPING: usize = 60;
/// The collector connects as this `pg_monitor` member (as README documents for production),
/// so its statements can be told apart and it sees every session's query text.
const COLLECTOR_USER: &str = "collector";

fn main() {
    let intervals: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let bin = std::env::var("PGAC_BIN").unwrap_or_else(|_| {
        "target/x86_64-unknown-linux-musl/release/pganalytics-collector".to_string()
    });
    if !std::path::Path::new(&bin).exists() {
        eprintln!(
            "pg_waits: {bin} not found; build it first: cargo build --release --target x86_64-unknown-linux-musl"
        );
        std::process::exit(2);
    }

    let t = std::time::Instant::now();
    let cluster = pg::Cluster::start(pg::Options {
        settings: vec![format!("max_connections={}", SESSIONS + 20)],
        ..pg::Options::default()
    });
    cluster.psql(
        "postgres",
        &format!(
            "create extension pg_stat_statements; \
             create table hot (id int primary key, v int); insert into hot values (1, 0); \
             create role {COLLECTOR_USER} login password '{pw}' in role pg_monitor",
            pw = pg::SUPERPASS
        ),
    );
    let mut sessions = Vec::with_capacity(SESSIONS + 1);
    let mut holder = cluster.session("postgres", "holder");
    holder.send("begin; update hot set v = 0 where id = 1;");
    for i in 0..SESSIONS {
        let mut s = cluster.session("postgres", &format!("bench{i}"));
        if i < SLEEPING {
            s.send(&format!("select pg_sleep(3600), {i} as session_{i};"));
        } else {
            s.send(&format!("update hot set v = {i} where id = 1;"));
        }
        sessions.push(s);
    }
    let busy = "select count(*) from pg_stat_activity where application_name like 'bench%' \
                and state = 'active' and wait_event_type in ('Timeout', 'Lock')";
    let ready = pg::eventually(std::time::Duration::from_secs(120), || {
        cluster.psql("postgres", busy) == SESSIONS.to_string()
    });
    assert!(ready, "the {SESSIONS} sessions never all became active");
    let version = cluster.version_num();
    println!(
        "pg_waits: {SESSIONS} active sessions ({SLEEPING} in pg_sleep, {} blocked on a row lock; set up in {:.1} s), server {version}",
        SESSIONS - SLEEPING,
        t.elapsed().as_secs_f64(),
    );

    let dir = std::env::temp_dir().join(format!("pgac-bench-waits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pw = dir.join("pw");
    std::fs::write(&pw, pg::SUPERPASS).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.join("collector.toml");
    let mut f = std::fs::File::create(&cfg).unwrap();
    write!(
        f,
        "[collector]\ninterval = 1\npush_interval = 1\nstate_dir = \"{d}\"\n\
         [logging]\nlevel = \"warn\"\n\
         [postgres]\nhost = \"{host}\"\nport = {port}\nuser = \"{COLLECTOR_USER}\"\npassword_file = \"{pw}\"\n\
         database = \"postgres\"\ndatabases = [\"postgres\"]\nsslmode = \"disable\"\n\
         [sysstat]\nenabled = false\n[disk_usage]\nenabled = false\n[pg_log]\nenabled = false\n\
         [pg_stats]\nenabled = false\n[pg_query_stats]\nenabled = false\n\
         [pg_replication]\nenabled = false\n[pg_server]\nenabled = false\n\
         [pg_wait_events]\nenabled = true\ninterval = 1\nsample_ms = 100\n",
        d = dir.display(),
        host = cluster.dir.display(),
        port = cluster.port,
        pw = pw.display(),
    )
    .unwrap();
    drop(f);

    let mut child = Command::new(&bin)
        .args(["run", "--stdout", "-c"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let warmup = 2;
    let (mut seen, mut samples, mut missed) = (0usize, 0u64, 0u64);
    let mut sessions_per_sample = Vec::new();
    let mut largest = 0usize;
    let mut cpu_start = 0;
    let mut steal_start = (0, 0);
    let mut wall_start = std::time::Instant::now();
    for line in lines.map_while(Result::ok) {
        let env: serde_json::Value = serde_json::from_str(&line).unwrap();
        for m in env["metrics"].as_array().cloned().unwrap_or_default() {
            if m["type"] == "collector_health"
                && !m["errors"].as_object().is_none_or(|e| e.is_empty())
            {
                eprintln!("errors: {}", m["errors"]);
            }
            if m["type"] != "pg_wait_events" {
                continue;
            }
            seen += 1;
            if seen > warmup {
                samples += m["samples"].as_u64().unwrap_or(0);
                missed += m["missed_samples"].as_u64().unwrap_or(0);
                if let Some(a) = m["average_active_sessions"].as_f64() {
                    sessions_per_sample.push(a);
                }
                largest = largest.max(m.to_string().len());
            }
            if seen == warmup {
                cluster.psql("postgres", "select pg_stat_statements_reset()");
                cpu_start = cpu_ns(pid);
                steal_start = steal_ticks();
                wall_start = std::time::Instant::now();
            }
        }
        if seen >= warmup + intervals {
            break;
        }
    }
    let cpu = cpu_ns(pid) - cpu_start;
    let steal = steal_percent(steal_start, steal_ticks());
    let wall = wall_start.elapsed().as_secs_f64();
    let hwm_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen >= warmup + intervals && samples > 0,
        "the collector stopped after {seen} elements ({samples} samples)"
    );
    let avg_sessions =
        sessions_per_sample.iter().sum::<f64>() / sessions_per_sample.len().max(1) as f64;
    println!(
        "  collector CPU per sample: {:.3} ms ({:.1} ms over {samples} samples, {missed} missed, in {intervals} intervals of {wall:.1} s; includes each interval's element and envelope; host steal {steal:.1} % of the CPU time) (goal: <= 0.2 ms)",
        cpu as f64 / 1e6 / samples as f64,
        cpu as f64 / 1e6,
    );
    println!("  sessions per sample: {avg_sessions:.1}; largest element {largest} B");
    println!(
        "  peak RSS (VmHWM): {hwm_kib} KiB ({:.2} MiB)",
        hwm_kib as f64 / 1024.0
    );
    let (mean, max) = if version >= 130_000 {
        ("mean_exec_time", "max_exec_time")
    } else {
        ("mean_time", "max_time")
    };
    let rows = cluster.psql(
        "postgres",
        &format!(
            "select calls, round({mean}::numeric, 3), round({max}::numeric, 3), \
             regexp_replace(left(query, 70), '\\s+', ' ', 'g') \
             from pg_stat_statements s join pg_roles r on r.oid = s.userid \
             where r.rolname = '{COLLECTOR_USER}' order by calls desc"
        ),
    );
    println!("  server time per statement (pg_stat_statements; calls | mean ms | max ms | query):");
    for line in rows.lines() {
        println!("    {}", line.split('|').collect::<Vec<_>>().join(" | "));
    }
    let sample = cluster.psql(
        "postgres",
        &format!(
            "select calls, round({mean}::numeric, 3), round({max}::numeric, 3) \
             from pg_stat_statements s join pg_roles r on r.oid = s.userid \
             where r.rolname = '{COLLECTOR_USER}' and query like '%from pg_stat_activity%' \
             order by calls desc limit 1"
        ),
    );
    let f: Vec<&str> = sample.split('|').collect();
    if let [calls, mean, max] = f[..] {
        println!("  server time of one sample: {mean} ms mean, {max} ms max over {calls} samples");
    }
    drop(sessions);
    drop(holder);
    let _ = std::fs::remove_dir_all(&dir);
}
