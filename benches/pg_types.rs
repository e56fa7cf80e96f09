//! Cost of the eight PostgreSQL types of docs/metrics.md, `pg_replication` … `pg_schema` together (pg_replication, pg_server,
//! pg_connections, pg_locks, pg_cache, pg_bloat, pg_extensions, pg_schema), measured on the
//! shipped binary against the 1 000-table database of the pg_cycle bench.
//!
//! Starts a throw-away cluster (tests/support/pg.rs) with 1 000 tables and 2 000 indexes
//! (analyzed, so pg_bloat has statistics), a logical and a physical replication slot, runs the
//! static release binary as `run --stdout` with only those eight plugins, all every cycle,
//! and reads:
//! - collector CPU per cycle: CPU time of the process (/proc/PID/schedstat, ns) over the measured
//!   cycles, after warm-up cycles (connections open);
//! - wall time per collection: `collector_health.collect_ms` of each plugin (median);
//! - peak RSS (VmHWM) of the process;
//! - server time per query: `pg_stat_statements` of the monitored server, reset after the
//!   warm-up, restricted to the collector's user's statements: calls, mean and max execution
//!   time of each.
//!
//! `cargo build --release --target x86_64-unknown-linux-musl && cargo bench --bench pg_types
//! [-- CYCLES]` (default 20). `PGAC_BIN` names another binary; `PGAC_TYPES=pg_schema,…`
//! measures only those types (to see where the CPU goes). Prints numbers; asserts nothing
//! about time. Goals: <= 20 ms collector CPU per cycle for all eight, no query over 50 ms.

#[path = "../tests/support/pg.rs"]
mod pg;
#[path = "support/proc.rs"]
mod proc_figures;
use proc_figures::{cpu_ns, median};

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const TABLES: usize = 1000;
const TYPES: [&str; 8] = [
    "pg_replication",
    "pg_server",
    "pg_connections",
    "pg_locks",
    "pg_cache",
    "pg_bloat",
    "pg_extensions",
    "pg_schema",
];
/// The collector connects as this user, so its statements can be told apart. A `pg_monitor`
/// member, as README documents for production (not a superuser: pg_bloat then reads the
/// pg_stats view, not pg_statistic), with SELECT on the tables as the bloat estimate needs.
const COLLECTOR_USER: &str = "collector";

fn main() {
    let cycles: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let bin = std::env::var("PGAC_BIN").unwrap_or_else(|_| {
        "target/x86_64-unknown-linux-musl/release/pganalytics-collector".to_string()
    });
    if !std::path::Path::new(&bin).exists() {
        eprintln!(
            "pg_types: {bin} not found; build it first: cargo build --release --target x86_64-unknown-linux-musl"
        );
        std::process::exit(2);
    }

    let t = std::time::Instant::now();
    let cluster = pg::Cluster::start(pg::Options {
        settings: vec![
            "pg_stat_statements.max=10000".to_string(),
            "max_locks_per_transaction=256".to_string(),
            "wal_level=logical".to_string(),
        ],
        ..pg::Options::default()
    });
    let mut schema = String::from("create extension pg_stat_statements;\n");
    schema.push_str(&pg::bench_tables_sql(TABLES));
    schema.push_str(&format!(
        "analyze;\n\
         create role {COLLECTOR_USER} login password '{pw}' in role pg_monitor;\n\
         grant select on all tables in schema public to {COLLECTOR_USER};\n\
         select pg_create_physical_replication_slot('bench_physical', true);\n",
        pw = pg::SUPERPASS
    ));
    let dir = std::env::temp_dir().join(format!("pgac-bench-types-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("schema.sql");
    std::fs::write(&path, &schema).unwrap();
    if let Err(e) = cluster.psql_file("postgres", &path) {
        panic!("schema.sql: {e}");
    }
    cluster.psql(
        "postgres",
        "select pg_create_logical_replication_slot('bench_logical', 'test_decoding')",
    );
    let version = cluster.version_num();
    println!(
        "pg types: {TABLES} tables, {} indexes (set up in {:.1} s), server {version}",
        cluster.psql("postgres", "select count(*) from pg_stat_user_indexes"),
        t.elapsed().as_secs_f64(),
    );

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
         [pg_stats]\nenabled = false\n[pg_query_stats]\nenabled = false\n",
        d = dir.display(),
        host = cluster.dir.display(),
        port = cluster.port,
        pw = pw.display(),
    )
    .unwrap();
    let only = std::env::var("PGAC_TYPES").ok();
    for t in TYPES {
        let on = only.as_deref().is_none_or(|o| o.split(',').any(|x| x == t));
        writeln!(f, "[{t}]\nenabled = {on}\ninterval = 1").unwrap();
    }
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
    let mut ticks_start = 0;
    let mut wall_start = std::time::Instant::now();
    let mut collect_ms: Vec<Vec<f64>> = vec![Vec::new(); TYPES.len()];
    let mut sizes = vec![0usize; TYPES.len()];
    let mut rounds = 0usize;
    let mut elements = 0usize;
    for line in lines.map_while(Result::ok) {
        rounds += 1;
        let env: serde_json::Value = serde_json::from_str(&line).unwrap();
        for m in env["metrics"].as_array().cloned().unwrap_or_default() {
            let ty = m["type"].as_str().unwrap_or("");
            if let Some(i) = TYPES.iter().position(|t| *t == ty) {
                if rounds > warmup {
                    elements += 1;
                }
                sizes[i] = sizes[i].max(m.to_string().len());
            }
            if ty == "collector_health" {
                if rounds > warmup {
                    for (i, t) in TYPES.iter().enumerate() {
                        if let Some(ms) = m["collect_ms"][t].as_f64() {
                            collect_ms[i].push(ms);
                        }
                    }
                }
                if !m["errors"].as_object().is_none_or(|e| e.is_empty()) {
                    eprintln!("errors: {}", m["errors"]);
                }
            }
        }
        if rounds == warmup {
            cluster.psql("postgres", "select pg_stat_statements_reset()");
            ticks_start = cpu_ns(pid);
            wall_start = std::time::Instant::now();
        }
        if rounds == warmup + cycles {
            break;
        }
    }
    let ticks = cpu_ns(pid) - ticks_start;
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
        rounds >= warmup + cycles,
        "the collector stopped after {rounds} rounds"
    );
    // Every plugin ran once per round (interval = push_interval).
    let collections = collect_ms
        .iter()
        .map(Vec::len)
        .filter(|n| *n > 0)
        .min()
        .unwrap_or(0);

    let cpu_ms = ticks as f64 / 1e6 / cycles as f64;
    println!(
        "  collector CPU per cycle ({} + envelope): {cpu_ms:.2} ms over {cycles} cycles in {wall:.1} s, {elements} elements, {collections} collections of each type (goal: <= 20 ms)",
        only.as_deref().unwrap_or("all eight")
    );
    println!(
        "  peak RSS (VmHWM): {hwm_kib} KiB ({:.2} MiB)",
        hwm_kib as f64 / 1024.0
    );
    for (i, t) in TYPES.iter().enumerate() {
        println!(
            "  {t:<15} wall per collection (median) {:>7.2} ms, largest element {:>8} B",
            median(&mut collect_ms[i]),
            sizes[i]
        );
    }

    // Server side: the collector's statements since the reset.
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
             where r.rolname = '{COLLECTOR_USER}' order by {max} desc"
        ),
    );
    println!("  server time per query (pg_stat_statements; calls | mean ms | max ms | query):");
    let mut worst = 0.0f64;
    for line in rows.lines() {
        let f: Vec<&str> = line.splitn(4, '|').collect();
        if let Some(m) = f.get(2).and_then(|v| v.parse::<f64>().ok()) {
            worst = worst.max(m);
        }
        println!("    {}", f.join(" | "));
    }
    println!("  slowest query: {worst:.2} ms max (goal: none over 50 ms)");
    let _ = std::fs::remove_dir_all(&dir);
}
