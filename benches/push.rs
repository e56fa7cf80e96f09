//! Push cost, on real data and the collector's own code:
//! - elements: what the shipped binary's `once` collects (sysstat, disk_usage, pg_stats,
//!   pg_query_stats, collector_health) from this host and a throw-away cluster with 300 tables
//!   and 900 statements, repeated until a push round holds about 200 KB of JSON;
//! - build the envelope (`pipeline::envelope::build`) and gzip it (`proto::gzip`, default level
//!   3): median of 50, and the compression ratio;
//! - the compression ratio on a realistic payload as well: one push round holding everything a
//!   real `once` with every metric type on collects from a cluster with 1 000 tables (2 000
//!   indexes) and as many distinct statements, as a `pg_monitor` member (not repeated);
//! - one push over loopback TLS 1.3 with the connection reused (`push::conn::Conn`, the
//!   collector's HTTPS client) to the contract backend of tests/support/backend.rs: median of 50;
//! - peak RSS (VmHWM) of the shipped binary `run` pushing over TLS with a nearly empty buffer,
//!   and after filling a 2 MiB buffer during a backend outage.
//!
//! `cargo build --release --target x86_64-unknown-linux-musl && cargo bench --bench push
//! --target x86_64-unknown-linux-musl`. `PGAC_BIN` names another binary. Prints numbers;
//! asserts nothing about time.

#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[path = "support/proc.rs"]
mod proc_figures;
use pganalytics_collector::collect::registry;
use pganalytics_collector::config::Config;
use pganalytics_collector::pipeline::envelope::{self, Header};
use pganalytics_collector::pipeline::{ElementBuffer, ElementMeta};
use pganalytics_collector::proto::gzip;
use pganalytics_collector::push::conn::{Conn, ConnSettings, Request};
use pganalytics_collector::util::WallTime;
use proc_figures::{median, vm_hwm_kib, write_secret};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::backend::{Backend, Fault, Options, PUSH};
use support::pg;

const ROUND_BYTES: usize = 200 * 1024;
const RUNS: usize = 50;

/// Real elements: one `once` of the shipped binary against a small cluster.
fn real_elements(bin: &str, dir: &Path) -> Vec<String> {
    let cluster = pg::Cluster::start(pg::Options::default());
    let mut sql = String::from("create extension pg_stat_statements;\n");
    for i in 0..300 {
        sql.push_str(&format!(
            "create table t{i} (id int primary key, v int, w text);\n\
             insert into t{i} select g, g % 7, 'row ' || g from generate_series(1, 50) g;\n\
             analyze t{i};\n\
             select count(*) from t{i} where v = 3;\n\
             select w from t{i} where id = 7;\n\
             update t{i} set v = v where id = 1;\n"
        ));
    }
    let file = dir.join("setup.sql");
    std::fs::write(&file, sql).unwrap();
    if let Err(e) = cluster.psql_file("postgres", &file) {
        panic!("setup.sql: {e}");
    }
    let pw = dir.join("pgpw");
    write_secret(&pw, pg::SUPERPASS);
    let cfg = dir.join("once.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nstate_dir = \"{d}\"\n[postgres]\nhost = \"{h}\"\nport = {p}\nuser = \"{u}\"\n\
             password_file = \"{pw}\"\nsslmode = \"disable\"\n",
            d = dir.display(),
            h = cluster.dir.display(),
            p = cluster.port,
            u = pg::SUPERUSER,
            pw = pw.display()
        ),
    )
    .unwrap();
    let out = Command::new(bin)
        .args(["once", "--sample-ms", "100", "-c"])
        .arg(&cfg)
        .args([
            "--only",
            "sysstat,disk_usage,pg_stats,pg_query_stats,collector_health",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    env["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect()
}

/// Every element of one `once` with every metric type on, as a `pg_monitor` member, against a
/// cluster with `tables` tables (an index each besides the key), one distinct statement per
/// table in pg_stat_statements and `logging_collector` writing a log for pg_log.
fn every_type_elements(bin: &str, dir: &Path, tables: usize) -> Vec<String> {
    let cluster = pg::Cluster::start(pg::Options {
        settings: vec![
            "pg_stat_statements.max=10000".to_string(),
            "max_locks_per_transaction=256".to_string(),
            "logging_collector=on".to_string(),
            "log_min_duration_statement=0".to_string(),
        ],
        ..pg::Options::default()
    });
    let mut sql = String::from("create extension pg_stat_statements;\n");
    sql.push_str(&pg::bench_tables_sql(tables));
    for i in 0..tables {
        sql.push_str(&format!(
            "select count(*), max(w) from t{i} where v = {};\n",
            i % 7
        ));
    }
    sql.push_str(&format!(
        "analyze;\ncreate role collector login password '{pw}' in role pg_monitor;\n\
         grant select on all tables in schema public to collector;\n",
        pw = pg::SUPERPASS
    ));
    let file = dir.join("every-type.sql");
    std::fs::write(&file, sql).unwrap();
    if let Err(e) = cluster.psql_file("postgres", &file) {
        panic!("every-type.sql: {e}");
    }
    let pw = dir.join("pgpw-every");
    write_secret(&pw, pg::SUPERPASS);
    let mut cfg_text = format!(
        "[collector]\nstate_dir = \"{d}\"\n[postgres]\nhost = \"{h}\"\nport = {p}\n\
         user = \"collector\"\npassword_file = \"{pw}\"\nsslmode = \"disable\"\n",
        d = dir.display(),
        h = cluster.dir.display(),
        p = cluster.port,
        pw = pw.display()
    );
    for name in registry::PLUGIN_NAMES {
        cfg_text.push_str(&format!("[{name}]\nenabled = true\n"));
    }
    let cfg = dir.join("every-type.toml");
    std::fs::write(&cfg, cfg_text).unwrap();
    let out = Command::new(bin)
        .args(["once", "--sample-ms", "100", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    env["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect()
}

/// A buffer holding about `ROUND_BYTES` of the real elements, in collection order.
fn round_buffer(elements: &[String]) -> ElementBuffer {
    let mut b = ElementBuffer::new(4 * ROUND_BYTES);
    let mut total = 0;
    for (i, e) in elements.iter().cycle().enumerate() {
        if total >= ROUND_BYTES {
            break;
        }
        let meta = ElementMeta {
            source: 0,
            tag: i as u64,
        };
        b.push(meta, e.as_bytes(), &mut |_, _| {}).unwrap();
        total += e.len();
    }
    b
}

/// `RUNS` pushes (after one that may open the connection) of a new batch of `elements`
/// (about `ROUND_BYTES`; none: an empty envelope): wall and client-thread CPU milliseconds.
/// Timed pushes of `elements`, then of an empty envelope, to `backend` over one kept-alive
/// connection of the collector's client: (wall ms, client CPU ms, empty-envelope wall ms).
fn push_rounds(
    backend: &Backend,
    dir: &std::path::Path,
    header: &Header<'_>,
    elements: &[String],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let certs = backend.certs.write(dir);
    let token = backend.issue_token("bench", "bench-host");
    let mut config = Config::default();
    config.backend.url =
        Some(pganalytics_collector::config::BackendUrl::parse(&backend.url).unwrap());
    config.tls.ca_file = Some(certs.ca.clone());
    config.collector.state_dir = dir.to_path_buf();
    let mut conn = Conn::new(ConnSettings::from_config(&config).unwrap(), None);
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
    ];
    let (push_ms, cpu_ms) = timed_pushes(&mut conn, &headers, header, elements);
    let (empty_ms, _) = timed_pushes(&mut conn, &headers, header, &[]);
    (push_ms, cpu_ms, empty_ms)
}

fn timed_pushes(
    conn: &mut Conn<'_>,
    headers: &[(&str, &str)],
    header: &Header<'_>,
    elements: &[String],
) -> (Vec<f64>, Vec<f64>) {
    let thread_cpu = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6
    };
    let (mut body, mut taken, mut gz) = (Vec::new(), Vec::new(), Vec::new());
    let (mut wall_ms, mut cpu_ms) = (Vec::new(), Vec::new());
    for i in 0..=RUNS {
        // A new batch each time (the backend records batch ids).
        let id = envelope::new_batch_id();
        let mut buffer = round_buffer(elements);
        taken.clear();
        gz.clear();
        envelope::build(
            &Header {
                batch_id: &id,
                ..*header
            },
            &mut buffer,
            None,
            &mut body,
            &mut taken,
        );
        gzip::compress(&body, gzip::DEFAULT_LEVEL, &mut gz);
        let t = Instant::now();
        let cpu = thread_cpu();
        let reply = conn
            .request(
                &Request {
                    method: "POST",
                    path: PUSH,
                    headers,
                    body: Some(&gz),
                },
                None,
            )
            .unwrap();
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        if i > 0 {
            wall_ms.push(t.elapsed().as_secs_f64() * 1e3);
            cpu_ms.push(thread_cpu() - cpu);
        }
    }
    (wall_ms, cpu_ms)
}

fn main() {
    let bin = std::env::var("PGAC_BIN").unwrap_or_else(|_| {
        "target/x86_64-unknown-linux-musl/release/pganalytics-collector".to_string()
    });
    if !Path::new(&bin).exists() {
        eprintln!(
            "push bench: {bin} not found; build it first: cargo build --release --target x86_64-unknown-linux-musl"
        );
        std::process::exit(2);
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("pgac-push-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let elements = real_elements(&bin, &dir);
    let kinds: Vec<String> = elements
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(e).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let once_bytes: usize = elements.iter().map(String::len).sum();

    // Envelope + gzip.
    let id = envelope::new_batch_id();
    let header = Header {
        collector_id: "bench",
        hostname: "bench-host",
        timestamp: WallTime {
            secs: 1_772_366_400,
            nanos: 0,
        },
        batch_id: &id,
        version: env!("CARGO_PKG_VERSION"),
    };
    let (mut body, mut taken, mut gz) = (Vec::new(), Vec::new(), Vec::new());
    let (mut build_ms, mut gzip_ms) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let mut buffer = round_buffer(&elements);
        taken.clear();
        gz.clear();
        let t = Instant::now();
        envelope::build(&header, &mut buffer, None, &mut body, &mut taken);
        let built = t.elapsed();
        gzip::compress(&body, gzip::DEFAULT_LEVEL, &mut gz);
        build_ms.push(built.as_secs_f64() * 1e3);
        gzip_ms.push((t.elapsed() - built).as_secs_f64() * 1e3);
    }
    let ratio = 100.0 * (1.0 - gz.len() as f64 / body.len() as f64);
    println!(
        "push round: {} B of JSON ({} elements; from one real `once`: {} B, types {:?})",
        body.len(),
        taken.len(),
        once_bytes,
        kinds
    );
    println!(
        "  build envelope: median {:.3} ms; gzip level {}: median {:.3} ms; together {:.3} ms (goal: <= 5 ms)",
        median(&mut build_ms),
        gzip::DEFAULT_LEVEL,
        median(&mut gzip_ms),
        median(&mut build_ms) + median(&mut gzip_ms)
    );
    println!(
        "  compressed {} B: ratio {ratio:.1} % smaller (goal: >= 80 %)",
        gz.len()
    );

    // The realistic payload: one round of everything an every-type `once` collects, as is.
    let every = every_type_elements(&bin, &dir, 1000);
    let mut buffer = ElementBuffer::new(every.iter().map(String::len).sum::<usize>() * 2 + 4096);
    for (i, e) in every.iter().enumerate() {
        let meta = ElementMeta {
            source: 0,
            tag: i as u64,
        };
        buffer.push(meta, e.as_bytes(), &mut |_, _| {}).unwrap();
    }
    let (mut body, mut taken, mut gz) = (Vec::new(), Vec::new(), Vec::new());
    envelope::build(&header, &mut buffer, None, &mut body, &mut taken);
    gzip::compress(&body, gzip::DEFAULT_LEVEL, &mut gz);
    let mut types: Vec<String> = every
        .iter()
        .filter_map(|e| {
            serde_json::from_str::<serde_json::Value>(e).ok()?["type"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    types.sort();
    types.dedup();
    println!(
        "  realistic payload (every type, 1 000 tables, pg_monitor): {} elements, {} B of JSON -> {} B gzip: ratio {:.1} % smaller (types {:?})",
        taken.len(),
        body.len(),
        gz.len(),
        100.0 * (1.0 - gz.len() as f64 / body.len() as f64),
        types
    );

    // One push over loopback TLS 1.3, connection reused, with the collector's client. The
    // backend answers at once and checks every push afterwards (the figure is the collector
    // and the transport); the same again with the backend checking inline, for comparison.
    let deferred = Backend::start(Options {
        defer_push_checks: true,
        ..Options::default()
    });
    let (mut push_ms, mut client_cpu_ms, mut empty_ms) =
        push_rounds(&deferred, &dir, &header, &elements);
    let checked = deferred
        .check_deferred()
        .unwrap_or_else(|v| panic!("pushes that break the contract: {v:?}"));
    println!(
        "  one push over loopback TLS 1.3, reused connection: median {:.3} ms over {RUNS} (goal: <= 5 ms; all {checked} pushes checked afterwards by the contract backend)",
        median(&mut push_ms)
    );
    println!(
        "    of which the collector's client CPU: median {:.3} ms; an empty envelope round trip: {:.3} ms",
        median(&mut client_cpu_ms),
        median(&mut empty_ms)
    );
    let backend = Backend::start(Options::default());
    let (mut inline_ms, _, _) = push_rounds(&backend, &dir, &header, &elements);
    println!(
        "    with the test backend (in this process, bench profile) decoding and checking each push before answering: median {:.3} ms ({} accepted)",
        median(&mut inline_ms),
        backend.requests_to(PUSH).len()
    );
    let certs = backend.certs.write(&dir);
    let token = backend.issue_token("bench", "bench-host");

    // Peak RSS of `run` pushing over TLS: nearly empty buffer, then a full one (the spool off,
    // so that the outage stays in memory: the worst case of memory).
    write_secret(&dir.join("collector.token"), &format!("{token}\n"));
    let run = |buffer_bytes: usize, settle: Duration, outage: bool| -> u64 {
        let cfg = dir.join("run.toml");
        std::fs::write(
            &cfg,
            format!(
                "[collector]\ninterval = 0.01\npush_interval = 0.1\nconfig_pull_interval = 0\nstate_dir = \"{d}\"\n\
                 [backend]\nurl = \"{u}\"\nbuffer_bytes = {buffer_bytes}\nmax_batch_bytes = {mb}\n\
                 retry_initial_secs = 0.2\nretry_max_secs = 1\nspool_bytes = 0\n\
                 [tls]\nca_file = \"{ca}\"\n[logging]\nlevel = \"error\"\n\
                 [pg_stats]\nenabled = false\n[pg_query_stats]\nenabled = false\n",
                d = dir.display(),
                u = backend.url,
                mb = buffer_bytes.min(4 << 20),
                ca = certs.ca.display()
            ),
        )
        .unwrap();
        backend.set_outage(outage.then_some(Fault::Status(503)));
        let mut child = Command::new(&bin)
            .args(["run", "-c"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let err = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            BufReader::new(err)
                .lines()
                .map_while(Result::ok)
                .take(3)
                .collect::<Vec<_>>()
        });
        std::thread::sleep(settle);
        let hwm = vm_hwm_kib(pid);
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let _ = child.wait();
        backend.set_outage(None);
        if !outage && let Ok(lines) = errors.join() {
            for l in lines {
                eprintln!("run: {l}");
            }
        }
        hwm
    };
    let before = backend.batches().len();
    let empty = run(16 << 20, Duration::from_secs(5), false);
    let pushed = backend.batches().len() - before;
    assert!(
        empty > 0 && pushed > 0,
        "run did not push (peak RSS {empty} KiB, {pushed} batches): its errors are above"
    );
    let full_buffer = 2 << 20;
    let full = run(full_buffer, Duration::from_secs(25), true);
    println!(
        "  peak RSS of `run` pushing over TLS, nearly empty buffer: {empty} KiB ({:.2} MiB; {pushed} batches in 5 s; goal: <= 4 MiB)",
        empty as f64 / 1024.0
    );
    println!(
        "  peak RSS after 25 s of outage with a {} KiB buffer: {full} KiB: {:+} KiB over the empty-buffer figure (goal: at most buffer_bytes more)",
        full_buffer / 1024,
        full as i64 - empty as i64
    );
    let _ = std::fs::remove_dir_all(&dir);
}
