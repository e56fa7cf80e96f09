//! The collector at scale (issue 13, point 5), measured on the shipped binary: DBS databases of
//! TABLES tables each (every table with two indexes: its primary key and one on `v`),
//! `pg_stat_statements` full, and EVERY metric type on, `pg_wait_events` and one
//! `[[custom_query]]` on every database included.
//!
//! Starts a throw-away PostgreSQL cluster (tests/support/pg.rs, `pg_stat_statements` preloaded).
//! Setup: the tables of the first database are made by one `DO` block, analyzed, and the other
//! databases are copies of it (`CREATE DATABASE … TEMPLATE`); then, in each database, one psql
//! runs distinct statement shapes over its tables (so tables and indexes have activity
//! statistics) until `pg_stat_statements` holds `pg_stat_statements.max` entries. The collector
//! logs in as the documented `pg_monitor` role `collector` (not a superuser; SELECT on the
//! tables, as pg_bloat's estimate needs), with a password file of mode 0600.
//!
//! Runs the static release binary as `run --stdout` with every type on, every `interval` 1 s
//! (the loop is one thread: a cycle takes longer than that, so each cycle collects every type,
//! then pushes one envelope line), `[postgres] databases = "*"`, `pg_wait_events` sampling every
//! 200 ms and one custom query on every database, and reads:
//! - collector CPU per cycle: CPU time of the process (/proc/PID/schedstat, ns) over the
//!   measured cycles, after one warm-up cycle (connections opened, query texts fetched); also
//!   per 1 000 tables (all databases' tables together); with the host's steal over the same
//!   window (/proc/stat: in a VM, CPU time taken by other guests; where it is more than a few
//!   percent, that run's CPU figures are inflated);
//! - peak RSS (VmHWM of the collector's process) against 16 MiB plus the most bytes the element
//!   buffer held (`collector_health.buffer_bytes`, taken just before each push); the largest
//!   envelope line is printed too (`run --stdout` writes it in 64 KiB pieces, never whole);
//! - elements dropped (`collector_health.metrics_dropped`), with the `[backend] buffer_bytes`
//!   and `max_batch_bytes` the bench sets;
//! - wall time of each type's collection (`collector_health.collect_ms`, median), its elements
//!   and bytes per cycle;
//! - sessions the server saw open per cycle (`pg_stat_database.sessions`: `[postgres]
//!   max_connections` against the number of databases);
//! - server time of the collector's statements: `pg_stat_statements` restricted to the role
//!   `collector`, whose entries are reset just before the collector starts (so every cycle
//!   counts, the warm-up included), with the slowest one (max_exec_time) and its text.
//!
//! `cargo bench --bench pg_scale --target x86_64-unknown-linux-musl [-- DBS TABLES CYCLES]`
//! (default 20 1000 5; CI runs `-- 2 200 3`). `PGAC_BIN` names another binary, or several
//! separated by `:` to compare them on the same cluster, one after the other (with
//! `PGAC_REPEAT=N`, N times in turn: this machine's CPU figures move from minute to minute);
//! `PGAC_TYPES=pg_schema,…` turns on only those types (to see where the CPU goes), and
//! `PGAC_TYPES="pg_stats;pg_schema,pg_bloat"` measures each group by its own collector, one
//! after the other, on the same cluster; `PGAC_MAX_CONNECTIONS=N` sets `[postgres]
//! max_connections` (default: the collector's own, 4); `PGAC_BUFFER_BYTES` and
//! `PGAC_MAX_BATCH_BYTES` replace the bench's `[backend]` sizes.
//! Prints numbers; asserts nothing about time. Goals: <= 20 ms collector CPU per 1 000 tables
//! per cycle, peak RSS <= 16 MiB plus the buffer's filled bytes, no query over 50 ms on the
//! server, no element dropped.

#[path = "../tests/support/pg.rs"]
mod pg;
#[path = "support/proc.rs"]
mod proc_figures;
use proc_figures::{cpu_ns, median, steal_percent, steal_ticks, vm_hwm_kib};

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// Every metric type of docs/metrics.md but `collector_health` (always sent).
const TYPES: [&str; 15] = [
    "sysstat",
    "disk_usage",
    "pg_stats",
    "pg_query_stats",
    "pg_log",
    "pg_replication",
    "pg_server",
    "pg_connections",
    "pg_locks",
    "pg_cache",
    "pg_bloat",
    "pg_extensions",
    "pg_schema",
    "pg_wait_events",
    "pg_custom",
];
/// The documented `pg_monitor` role the collector logs in as.
const COLLECTOR_USER: &str = "collector";
/// `[backend] buffer_bytes`: room for one cycle of the full form (about 10 MB of elements for
/// 20 × 1 000 tables) several times over, so nothing is dropped while a cycle is collected.
const BUFFER_BYTES: usize = 64 << 20;
/// `[backend] max_batch_bytes` (the default, 4 MiB): no element may be over a quarter of it.
const MAX_BATCH_BYTES: usize = 4 << 20;
const SAMPLE_MS: u32 = 200;
const WARMUP: usize = 1;
/// The goals of issue 13, point 5.
const CPU_GOAL_MS_PER_1000: f64 = 20.0;
const RSS_GOAL_BASE: u64 = 16 << 20;
const SERVER_GOAL_MS: f64 = 50.0;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// The flag printed after a figure over its goal (the bench never fails on it).
fn flag(ok: bool) -> &'static str {
    if ok { "" } else { " OVER GOAL" }
}

/// Distinct statement shapes over table `t`: each (shape, table) pair is its own
/// `pg_stat_statements` entry. Shapes past the named ones select `id` n times (a longer target
/// list is another query id).
fn statement(shape: usize, t: usize) -> String {
    const SHAPES: [&str; 12] = [
        "select * from t{} where id = 3",
        "select count(*) from t{}",
        "select v, count(*) from t{} group by v",
        "select w from t{} where v > 2 order by id limit 5",
        "update t{} set w = w where id = 1",
        "select max(id), min(v) from t{}",
        "select id from t{} where w like 'row 1%'",
        "select sum(v) from t{} where id < 10",
        "select distinct v from t{} order by v",
        "select id, v from t{} where v = 4 order by id desc limit 3",
        "select exists (select 1 from t{} where v = 2)",
        "select avg(id) from t{} where v between 1 and 5",
    ];
    match SHAPES.get(shape) {
        Some(s) => s.replace("{}", &t.to_string()),
        None => {
            let cols = vec!["id"; shape - SHAPES.len() + 2].join(", ");
            format!("select {cols} from t{t} where id = 5")
        }
    }
}

fn main() {
    let nums: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let dbs = nums.first().copied().unwrap_or(20).max(1);
    let tables = nums.get(1).copied().unwrap_or(1000).max(1);
    let cycles = nums.get(2).copied().unwrap_or(5).max(1);
    let bins: Vec<String> = std::env::var("PGAC_BIN")
        .unwrap_or_else(|_| {
            "target/x86_64-unknown-linux-musl/release/pganalytics-collector".to_string()
        })
        .split(':')
        .filter(|b| !b.is_empty())
        .map(str::to_string)
        .collect();
    for bin in &bins {
        if !std::path::Path::new(bin).exists() {
            eprintln!(
                "pg_scale: {bin} not found; build it first: cargo build --release --target x86_64-unknown-linux-musl"
            );
            std::process::exit(2);
        }
    }
    let repeat = env_usize("PGAC_REPEAT").unwrap_or(1).max(1);

    // --- setup ---------------------------------------------------------------------------
    let t0 = std::time::Instant::now();
    let cluster = pg::Cluster::start(pg::Options {
        // One transaction (the DO block) creates a database's tables: five relations each
        // (table, TOAST table and its index, two indexes), so more lock slots than the default.
        // pg_log has entries to read: every statement over 10 ms is logged (at LOG), with its
        // text, as a server with slow-statement logging does.
        settings: vec![
            "max_locks_per_transaction=256".to_string(),
            "log_min_duration_statement=10".to_string(),
        ],
        ..pg::Options::default()
    });
    let dir = std::env::temp_dir().join(format!("pgac-bench-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run_file = |db: &str, name: &str, sql: &str| {
        let path = dir.join(name);
        std::fs::write(&path, sql).unwrap();
        if let Err(e) = cluster.psql_file(db, &path) {
            panic!("{name} in {db}: {e}");
        }
    };
    // The extension in template1 first: every database created afterwards has it.
    for db in ["template1", "postgres"] {
        cluster.psql(db, "create extension pg_stat_statements");
    }
    cluster.psql(
        "postgres",
        &format!(
            "create role {COLLECTOR_USER} login password '{pw}' in role pg_monitor",
            pw = pg::SUPERPASS
        ),
    );
    let names: Vec<String> = (1..=dbs).map(|i| format!("scale{i:02}")).collect();
    cluster.psql("postgres", &format!("create database {}", names[0]));
    run_file(
        &names[0],
        "tables.sql",
        &format!(
            "do $$ begin\n\
             for i in 0..{last} loop\n\
               execute format('create table t%s (id int primary key, v int, w text)', i);\n\
               execute format('create index t%s_v on t%s (v)', i, i);\n\
               execute format('insert into t%s select g, mod(g, 7), ''row '' || g from generate_series(1, 20) g', i);\n\
             end loop;\n\
             end $$;\n\
             grant select on all tables in schema public to {COLLECTOR_USER};\n\
             analyze;\n",
            last = tables - 1
        ),
    );
    let t_tables = t0.elapsed().as_secs_f64();
    // Copies: catalogs and pg_statistic come along; activity statistics do not (below).
    if dbs > 1 {
        let copies: String = names[1..]
            .iter()
            .map(|n| format!("create database {n} template {};\n", names[0]))
            .collect();
        run_file("postgres", "copies.sql", &copies);
    }
    let t_copies = t0.elapsed().as_secs_f64();
    let pgss_max: usize = cluster
        .psql("postgres", "show pg_stat_statements.max")
        .parse()
        .unwrap();
    // A little more than the maximum in all, spread over the databases (one entry per
    // statement, user and database): the view is full, as on a busy server.
    let per_db = (pgss_max + pgss_max / 20).div_ceil(dbs);
    for name in &names {
        let sql: String = (0..per_db)
            .map(|k| statement(k / tables, k % tables) + ";\n")
            .collect();
        run_file(name, "workload.sql", &sql);
    }
    let statements = cluster.psql("postgres", "select count(*) from pg_stat_statements");
    let indexes = cluster.psql(
        &names[0],
        "select count(*) from pg_class where relnamespace = 'public'::regnamespace and relkind = 'i'",
    );
    let version = cluster.version_num();
    println!(
        "pg scale: {dbs} databases × {tables} tables ({indexes} indexes each; {} tables in all), \
         {statements} of pg_stat_statements.max {pgss_max} entries; set up in {:.1} s \
         (first database {t_tables:.1} s, copies {:.1} s, statements {:.1} s), server {version}",
        dbs * tables,
        t0.elapsed().as_secs_f64(),
        t_copies - t_tables,
        t0.elapsed().as_secs_f64() - t_copies,
    );

    let bench = Bench {
        cluster: &cluster,
        dir: dir.clone(),
        dbs,
        tables,
        cycles,
        max_connections: std::env::var("PGAC_MAX_CONNECTIONS").ok(),
        buffer_bytes: env_usize("PGAC_BUFFER_BYTES").unwrap_or(BUFFER_BYTES),
        max_batch_bytes: env_usize("PGAC_MAX_BATCH_BYTES").unwrap_or(MAX_BATCH_BYTES),
    };
    // Groups separated by `;`, each measured by its own collector on the same cluster.
    let groups: Vec<(Vec<&str>, String)> = match std::env::var("PGAC_TYPES") {
        Ok(groups) => groups
            .split(';')
            .filter(|g| !g.is_empty())
            .map(|group| {
                let enabled = TYPES
                    .iter()
                    .copied()
                    .filter(|t| group.split(',').any(|x| x == *t))
                    .collect();
                (enabled, group.to_string())
            })
            .collect(),
        Err(_) => vec![(TYPES.to_vec(), "every type".to_string())],
    };
    let mut run = 0;
    for _ in 0..repeat {
        for (enabled, group) in &groups {
            for bin in &bins {
                let what = if bins.len() > 1 {
                    format!("{group}, {bin}")
                } else {
                    group.clone()
                };
                bench.measure(run, bin, enabled, &what);
                run += 1;
            }
        }
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

struct Bench<'c> {
    cluster: &'c pg::Cluster,
    dir: std::path::PathBuf,
    dbs: usize,
    tables: usize,
    cycles: usize,
    max_connections: Option<String>,
    buffer_bytes: usize,
    max_batch_bytes: usize,
}

impl Bench<'_> {
    /// Runs the collector with the `enabled` types until it has sent `WARMUP + cycles`
    /// cycles, and prints the figures (`run`: a number for its state directory).
    fn measure(&self, run: usize, bin: &str, enabled: &[&str], what: &str) {
        let (cluster, dir, cycles) = (self.cluster, &self.dir, self.cycles);
        // Only this collector's statements count.
        cluster.psql(
            "postgres",
            &format!(
                "select pg_stat_statements_reset((select oid from pg_roles where rolname = '{COLLECTOR_USER}'))"
            ),
        );
        let pw = dir.join("pw");
        std::fs::write(&pw, pg::SUPERPASS).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let state = dir.join(format!("state{run}"));
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        let cfg = dir.join(format!("collector{run}.toml"));
        let mut f = std::fs::File::create(&cfg).unwrap();
        write!(
            f,
            "[collector]\ninterval = 1\npush_interval = 1\nstate_dir = \"{state}\"\n\
             [logging]\nlevel = \"warn\"\n\
             [backend]\nbuffer_bytes = {buffer}\nmax_batch_bytes = {batch}\n\
             [postgres]\nhost = \"{host}\"\nport = {port}\nuser = \"{COLLECTOR_USER}\"\npassword_file = \"{pw}\"\n\
             database = \"postgres\"\ndatabases = \"*\"\nsslmode = \"disable\"\n",
            state = state.display(),
            buffer = self.buffer_bytes,
            batch = self.max_batch_bytes,
            host = cluster.dir.display(),
            port = cluster.port,
            pw = pw.display(),
        )
        .unwrap();
        if let Some(n) = &self.max_connections {
            writeln!(f, "max_connections = {n}").unwrap();
        }
        for t in TYPES {
            let on = enabled.contains(&t);
            writeln!(f, "[{t}]\nenabled = {on}\ninterval = 1").unwrap();
            match t {
                // The server's own log (pg_ctl -l), every entry from LOG up.
                "pg_log" => writeln!(
                    f,
                    "path = \"{}\"\nmin_level = \"LOG\"",
                    cluster.dir.join("server.log").display()
                )
                .unwrap(),
                "pg_wait_events" => writeln!(f, "sample_ms = {SAMPLE_MS}").unwrap(),
                _ => {}
            }
        }
        writeln!(
            f,
            "[[custom_query]]\nname = \"dead_tuples\"\n\
             sql = \"select relname, n_live_tup, n_dead_tup, seq_scan, idx_scan from pg_stat_user_tables order by n_dead_tup desc, relname limit 50\"\n\
             interval = 1\ndatabases = \"*\""
        )
        .unwrap();
        drop(f);

        let sessions_sql = "select sum(sessions) from pg_stat_database";
        let mut child = Command::new(bin)
            .args(["run", "--stdout", "-c"])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let pid = child.id();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = std::time::Instant::now();
        let mut seen_cycles = 0usize;
        let mut cpu_start = 0;
        let mut steal_start = (0, 0);
        let mut sessions_start = 0i64;
        let mut wall_start = std::time::Instant::now();
        let mut first_cycle_s = 0.0;
        let mut collect_ms: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        // Per type over the measured cycles: elements, bytes, largest element.
        let mut per_type: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        let mut buffer_max = 0u64;
        let mut buffer_capacity = 0u64;
        let mut line_max = 0u64;
        let mut dropped = 0u64;
        let mut errors: BTreeMap<String, String> = BTreeMap::new();
        let mut types_seen: BTreeSet<String> = BTreeSet::new();
        let mut databases: BTreeSet<String> = BTreeSet::new();
        for line in lines.map_while(Result::ok) {
            // One line per cycle: collections and pushes share one grid (interval =
            // push_interval, no push offset with --stdout), and a cycle that overruns skips the
            // grid points it missed, so each push follows one collection of every type.
            seen_cycles += 1;
            line_max = line_max.max(line.len() as u64 + 1);
            let env: serde_json::Value = serde_json::from_str(&line).unwrap();
            let metrics = env["metrics"].as_array().cloned().unwrap_or_default();
            let measured = seen_cycles > WARMUP;
            for m in &metrics {
                let ty = m["type"].as_str().unwrap_or("").to_string();
                if ty == "collector_health" {
                    buffer_max = buffer_max.max(m["buffer_bytes"].as_u64().unwrap_or(0));
                    buffer_capacity = m["buffer_capacity_bytes"].as_u64().unwrap_or(0);
                    dropped = m["metrics_dropped"].as_u64().unwrap_or(0);
                    for (k, v) in m["errors"].as_object().into_iter().flatten() {
                        errors
                            .entry(k.clone())
                            .or_insert_with(|| v.as_str().unwrap_or("").to_string());
                    }
                    if measured {
                        for t in enabled {
                            if let Some(ms) = m["collect_ms"][*t].as_f64() {
                                collect_ms.entry(t).or_default().push(ms);
                            }
                        }
                    }
                    continue;
                }
                if ty != "pg_log"
                    && let Some(d) = m["database"].as_str()
                {
                    databases.insert(d.to_string());
                }
                types_seen.insert(ty.clone());
                if measured {
                    let len = m.to_string().len();
                    let e = per_type.entry(ty).or_default();
                    e.0 += 1;
                    e.1 += len;
                    e.2 = e.2.max(len);
                }
            }
            if seen_cycles == WARMUP {
                first_cycle_s = started.elapsed().as_secs_f64();
                cpu_start = cpu_ns(pid);
                steal_start = steal_ticks();
                wall_start = std::time::Instant::now();
                sessions_start = cluster.psql("postgres", sessions_sql).parse().unwrap_or(0);
            }
            if seen_cycles >= WARMUP + cycles {
                break;
            }
        }
        let cpu = cpu_ns(pid).saturating_sub(cpu_start);
        let steal = steal_percent(steal_start, steal_ticks());
        let wall = wall_start.elapsed().as_secs_f64();
        let hwm_kib = vm_hwm_kib(pid);
        let _ = child.kill();
        let _ = child.wait();
        // Less the psql session that read the figure at the start.
        let sessions = cluster
            .psql("postgres", sessions_sql)
            .parse::<i64>()
            .unwrap_or(0)
            - sessions_start
            - 1;
        assert!(
            seen_cycles >= WARMUP + cycles,
            "the collector stopped after {seen_cycles} cycles"
        );

        // --- figures ---------------------------------------------------------------------
        let total_tables = self.dbs * self.tables;
        let cpu_ms = cpu as f64 / 1e6 / cycles as f64;
        let per_1000 = cpu_ms / (total_tables as f64 / 1000.0);
        println!(
            "  collector CPU per cycle ({what}): {cpu_ms:.1} ms over {cycles} cycles in {wall:.1} s ({:.1} s per cycle; the warm-up cycle took {first_cycle_s:.1} s; host steal {steal:.1} % of the CPU time)",
            wall / cycles as f64
        );
        println!(
            "  collector CPU per 1 000 tables per cycle: {per_1000:.2} ms ({total_tables} tables) (goal: <= {CPU_GOAL_MS_PER_1000} ms){}",
            flag(per_1000 <= CPU_GOAL_MS_PER_1000)
        );
        println!(
            "  sessions opened per cycle: {:.1} ([postgres] max_connections = {}, {} databases monitored)",
            sessions as f64 / cycles as f64,
            self.max_connections.as_deref().unwrap_or("4 (default)"),
            databases.len()
        );
        let hwm = hwm_kib * 1024;
        let rss_goal = RSS_GOAL_BASE + buffer_max;
        println!(
            "  peak RSS (VmHWM): {hwm_kib} KiB ({:.2} MiB); buffer filled at most {buffer_max} B ({:.2} MiB) of {buffer_capacity} B (goal: <= 16 MiB + that = {:.2} MiB){}",
            mib(hwm),
            mib(buffer_max),
            mib(rss_goal),
            flag(hwm <= rss_goal)
        );
        // The stdout sink writes a round's line in 64 KiB pieces as it takes elements from
        // the buffer: the line is never held whole beside it.
        println!(
            "  largest envelope line: {line_max} B ({:.2} MiB; run --stdout writes it in 64 KiB pieces)",
            mib(line_max)
        );
        println!(
            "  elements dropped (collector_health.metrics_dropped): {dropped} with buffer_bytes = {} and max_batch_bytes = {} (goal: 0){}",
            self.buffer_bytes,
            self.max_batch_bytes,
            flag(dropped == 0)
        );
        println!(
            "    (run --stdout delivers every round: the buffer is emptied at each push, so a drop here is a cycle that does not fit in buffer_bytes, or an element over max_batch_bytes / 4; a backend outage, which fills the buffer over many rounds, is not measured)"
        );
        let missing: Vec<&str> = enabled
            .iter()
            .copied()
            .filter(|t| !types_seen.contains(*t))
            .collect();
        if !missing.is_empty() {
            println!("  types that sent no element: {}", missing.join(", "));
        }
        for (k, v) in &errors {
            println!("  error {k}: {v}");
        }
        println!(
            "  per type over the measured cycles (wall per collection, median | elements | bytes per cycle | largest element):"
        );
        for t in enabled {
            let (n, bytes, largest) = per_type.get(*t).copied().unwrap_or_default();
            let ms = collect_ms.get_mut(t).map_or(f64::NAN, |v| median(v));
            println!(
                "    {t:<15} {ms:>9.1} ms | {:>6.1} | {:>9} B | {largest:>8} B",
                n as f64 / cycles as f64,
                bytes / cycles
            );
        }

        // Server side: the collector's statements since it started.
        let top = cluster.psql(
            "postgres",
            &format!(
                "select calls, round(mean_exec_time::numeric, 2), round(max_exec_time::numeric, 2), \
                 round(total_exec_time::numeric, 1), regexp_replace(left(query, 80), '\\s+', ' ', 'g') \
                 from pg_stat_statements s join pg_roles r on r.oid = s.userid \
                 where r.rolname = '{COLLECTOR_USER}' order by max_exec_time desc limit 12"
            ),
        );
        let totals = cluster.psql(
            "postgres",
            &format!(
                "select count(*), coalesce(round(sum(total_exec_time)::numeric, 1), 0) \
                 from pg_stat_statements s join pg_roles r on r.oid = s.userid \
                 where r.rolname = '{COLLECTOR_USER}'"
            ),
        );
        println!(
            "  server time of the collector's statements (pg_stat_statements, role {COLLECTOR_USER}, every cycle with the warm-up; entries | total ms): {}",
            totals.replace('|', " | ")
        );
        println!("    calls | mean ms | max ms | total ms | query (the 12 slowest by max)");
        let mut worst: Option<(f64, String)> = None;
        for line in top.lines() {
            let f: Vec<&str> = line.splitn(5, '|').collect();
            if let (Some(m), Some(q)) = (f.get(2).and_then(|v| v.parse::<f64>().ok()), f.get(4))
                && worst.as_ref().is_none_or(|(w, _)| m > *w)
            {
                worst = Some((m, q.to_string()));
            }
            println!("    {}", f.join(" | "));
        }
        let (worst_ms, worst_q) = worst.unwrap_or((0.0, String::new()));
        println!(
            "  slowest query: {worst_ms:.2} ms max (goal: none over {SERVER_GOAL_MS} ms){}: {worst_q}",
            flag(worst_ms <= SERVER_GOAL_MS)
        );
    }
}
