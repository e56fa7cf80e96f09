//! Cost of a `pg_stats` + `pg_query_stats` cycle, measured on the shipped binary.
//!
//! Starts a throw-away cluster (tests/support/pg.rs) with 1 000 tables, 2 000 indexes and
//! 5 000 distinct statements in pg_stat_statements, runs the static release binary as
//! `run --stdout` with only those two plugins, and reads:
//! - collector CPU per cycle: CPU time of the process (/proc/PID/schedstat, ns) over the measured
//!   cycles, after warm-up cycles (connections open, query texts cached);
//! - wall time per collection: `collector_health.collect_ms` of each plugin;
//! - peak RSS: VmHWM of the process at the end.
//!
//! Each measured cycle also brings new statements into the top 100 (`NEW_PER_CYCLE` shapes
//! not seen before, each run long enough to rank), so the collector fetches new query texts
//! every cycle, as on a server whose workload changes, not only the cached ones.
//!
//! `cargo build --release --target x86_64-unknown-linux-musl && cargo bench --bench pg_cycle
//! [-- CYCLES]` (default 40). `PGAC_BIN` names another binary. Prints numbers; asserts nothing
//! about time.

#[path = "../tests/support/pg.rs"]
mod pg;
#[path = "support/proc.rs"]
mod proc_figures;
use proc_figures::{cpu_ns, median};

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const TABLES: usize = 1000;
/// New statements per measured cycle (each a shape never run before).
const NEW_PER_CYCLE: usize = 10;

fn proc_field(pid: u32, file: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let cycles: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(40);
    let bin = std::env::var("PGAC_BIN").unwrap_or_else(|_| {
        "target/x86_64-unknown-linux-musl/release/pganalytics-collector".to_string()
    });
    if !std::path::Path::new(&bin).exists() {
        eprintln!(
            "pg_cycle: {bin} not found; build it first: cargo build --release --target x86_64-unknown-linux-musl"
        );
        std::process::exit(2);
    }

    let t = std::time::Instant::now();
    let cluster = pg::Cluster::start(pg::Options {
        settings: vec![
            "pg_stat_statements.max=10000".to_string(),
            "max_locks_per_transaction=256".to_string(),
        ],
        ..pg::Options::default()
    });
    let mut schema = String::from("create extension pg_stat_statements;\n");
    schema.push_str(&pg::bench_tables_sql(TABLES));
    let mut workload = String::from("select pg_stat_statements_reset();\n");
    for i in 0..TABLES {
        workload.push_str(&format!(
            "select * from t{i} where id = 3;\n\
             select count(*) from t{i};\n\
             select v, count(*) from t{i} group by v;\n\
             select w from t{i} where v > 2 order by id limit 5;\n\
             update t{i} set w = w where id = 1;\n"
        ));
    }
    let dir = std::env::temp_dir().join(format!("pgac-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, sql) in [("schema.sql", &schema), ("workload.sql", &workload)] {
        let path = dir.join(name);
        std::fs::write(&path, sql).unwrap();
        if let Err(e) = cluster.psql_file("postgres", &path) {
            panic!("{name}: {e}");
        }
    }
    let statements: usize = cluster
        .psql("postgres", "select count(*) from pg_stat_statements")
        .parse()
        .unwrap();
    let indexes: usize = cluster
        .psql("postgres", "select count(*) from pg_stat_user_indexes")
        .parse()
        .unwrap();
    println!(
        "pg cycle: {TABLES} tables, {indexes} indexes, {statements} statements in pg_stat_statements (set up in {:.1} s), server {}",
        t.elapsed().as_secs_f64(),
        cluster.version_num()
    );

    let pw = dir.join("pw");
    std::fs::write(&pw, pg::SUPERPASS).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.join("collector.toml");
    let mut f = std::fs::File::create(&cfg).unwrap();
    write!(
        f,
        "[collector]\ninterval = 0.5\npush_interval = 0.5\nstate_dir = \"{d}\"\n\
         [logging]\nlevel = \"warn\"\n\
         [postgres]\nhost = \"{host}\"\nport = {port}\nuser = \"{user}\"\npassword_file = \"{pw}\"\n\
         database = \"postgres\"\ndatabases = [\"postgres\"]\nsslmode = \"disable\"\n\
         [sysstat]\nenabled = false\n[disk_usage]\nenabled = false\n[pg_log]\nenabled = false\n\
         [pg_replication]\nenabled = false\n[pg_server]\nenabled = false\n\
         [pg_stats]\nenabled = true\n[pg_query_stats]\nenabled = true\n",
        d = dir.display(),
        host = cluster.dir.display(),
        port = cluster.port,
        user = pg::SUPERUSER,
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
    let warmup = 3;
    let (mut ticks_start, mut wall_start) = (0, std::time::Instant::now());
    let mut stats_ms = Vec::new();
    let mut query_ms = Vec::new();
    let mut first = (0.0, 0.0);
    let mut sizes = (0usize, 0usize);
    let mut seen_queries = 0usize;
    let mut hashes = std::collections::HashSet::new();
    let mut new_per_cycle = Vec::new();
    let mut rounds = 0usize;
    for line in lines.map_while(Result::ok) {
        rounds += 1;
        let env: serde_json::Value = serde_json::from_str(&line).unwrap();
        let metrics = env["metrics"].as_array().cloned().unwrap_or_default();
        for m in &metrics {
            match m["type"].as_str() {
                Some("pg_stats") => sizes.0 = m.to_string().len(),
                Some("pg_query_stats") => {
                    sizes.1 = m.to_string().len();
                    let mut new = 0;
                    for q in m["queries"].as_array().into_iter().flatten() {
                        new += usize::from(hashes.insert(q["hash"].as_i64().unwrap_or(0)));
                    }
                    if rounds > warmup + 1 {
                        new_per_cycle.push(new as f64);
                    }
                    seen_queries = m["queries"].as_array().map_or(0, Vec::len);
                    if let Some(e) = m.get("error") {
                        eprintln!("pg_query_stats error: {e}");
                    }
                }
                Some("collector_health") => {
                    let ms = &m["collect_ms"];
                    let (s, q) = (
                        ms["pg_stats"].as_f64().unwrap_or(f64::NAN),
                        ms["pg_query_stats"].as_f64().unwrap_or(f64::NAN),
                    );
                    if rounds == 1 {
                        first = (s, q);
                    } else if rounds > warmup {
                        stats_ms.push(s);
                        query_ms.push(q);
                    }
                    if !m["errors"].as_object().is_none_or(|e| e.is_empty()) {
                        eprintln!("errors: {}", m["errors"]);
                    }
                }
                _ => {}
            }
        }
        if rounds == warmup {
            ticks_start = cpu_ns(pid);
            wall_start = std::time::Instant::now();
        }
        if rounds >= warmup {
            // New shapes (a table never counted this way before), each sleeping a little
            // longer than the last cycle's so that the newest rank first by total time.
            let sleep = 0.02 + rounds as f64 * 0.001;
            let sql: String = (0..NEW_PER_CYCLE)
                .map(|k| {
                    let t = (rounds * NEW_PER_CYCLE + k) % TABLES;
                    format!("select (select count(*) from t{t} where v >= 0), pg_sleep({sleep});")
                })
                .collect();
            cluster.psql("postgres", &sql);
        }
        if rounds == warmup + cycles {
            break;
        }
    }
    let ticks = cpu_ns(pid) - ticks_start;
    let wall = wall_start.elapsed().as_secs_f64();
    let hwm_kib = proc_field(pid, "status", "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        rounds >= warmup + cycles,
        "the collector stopped after {rounds} rounds"
    );

    let cpu_ms = ticks as f64 / 1e6 / cycles as f64;
    println!(
        "  collector CPU per cycle (pg_stats + pg_query_stats + envelope): {cpu_ms:.2} ms over {cycles} cycles in {wall:.1} s (goal: <= 20 ms)"
    );
    println!(
        "  wall per collection, median: pg_stats {:.2} ms, pg_query_stats {:.2} ms; first cycle (connect, all texts): {:.2} ms, {:.2} ms",
        median(&mut stats_ms),
        median(&mut query_ms),
        first.0,
        first.1
    );
    println!(
        "  peak RSS (VmHWM): {hwm_kib} KiB ({:.2} MiB; goal: <= 8 MiB)",
        hwm_kib as f64 / 1024.0
    );
    println!(
        "  element sizes: pg_stats {} B, pg_query_stats {} B ({seen_queries} queries, limit 100)",
        sizes.0, sizes.1
    );
    println!(
        "  new statements in pg_query_stats per measured cycle (median): {} (texts fetched for them; {NEW_PER_CYCLE} run per cycle)",
        median(&mut new_per_cycle)
    );
}
