//! Log parsing throughput and memory: a generated stderr log with the Debian default prefix
//! (`%m [%p] %q%u@%d `), read through one fixed 64 KiB buffer with `Parser::feed`, as the
//! `pg_log` collector reads it, each entry serialized to its JSON by the collector's own
//! `entry_json`. One line in 100 starts a multi-line entry (an ERROR with DETAIL, HINT,
//! STATEMENT and a tab-indented continuation of the statement).
//!
//! `cargo bench --bench log_parse [-- MB]` (default 100; the shipped profile:
//! `--target x86_64-unknown-linux-musl`). For a file of MB/4 and of MB megabytes it prints:
//! - (a) lines per second with `min_level = WARNING`, where 1 % of the lines pass (goal
//!   >= 2 000 000 lines/s);
//! - (b) entries per second with `min_level = DEBUG5`, every line an entry but the multi-line
//!   ones (goal >= 500 000/s);
//! - peak RSS (VmHWM, reset through /proc/self/clear_refs before each file) to show that
//!   memory does not grow with the file.
//!
//! Then (c): the auto_explain capture (fixtures/pglog/auto-explain: 6 plans, 2 of them over
//! 64 KiB and cut) in each format, read whole many times, every entry serialized: CPU time per
//! entry with a plan and MB/s of log.
//!
//! Rates are given per wall-clock second and per CPU second of the parsing thread (the second
//! is what the code costs when the machine is shared).
//!
//! The file is in the page cache when it is read (it was just written): this measures the
//! parser plus `read`, not the disk. Prints numbers; asserts nothing about time.

use std::io::{BufWriter, Read, Write};
use std::time::Instant;

use pganalytics_collector::collect::pg::pg_log::entry_json;
use pganalytics_collector::config::PgSeverity;
use pganalytics_collector::pg_log_format::{Format, MAX_ENTRY_BYTES, ParseSettings, Parser};
use pganalytics_collector::tz::Zone;

/// The caller's fixed read buffer (the collector's).
const BUF: usize = 64 * 1024;
const PREFIX: &str = "%m [%p] %q%u@%d ";

/// Writes a log of at least `bytes` bytes; returns its line count.
fn generate(path: &std::path::Path, bytes: u64) -> u64 {
    let f = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let mut written = 0u64;
    let mut lines = 0u64;
    let mut i = 0u64;
    let mut line = String::with_capacity(512);
    let (mut sec, mut ms) = (0u32, 0u32);
    while written < bytes {
        use std::fmt::Write as _;
        line.clear();
        ms += 7;
        if ms >= 1000 {
            ms -= 1000;
            sec += 1;
        }
        let (h, m, s) = (sec / 3600 % 24, sec / 60 % 60, sec % 60);
        let pid = 4000 + i % 97;
        // unwrap: writing to a String cannot fail.
        let _ = write!(line, "2026-11-27 {h:02}:{m:02}:{s:02}.{ms:03} CET [{pid}] ");
        let _ = match i % 100 {
            // 1 %: passes WARNING; a multi-line entry of five lines.
            0 => {
                let _ = writeln!(
                    line,
                    "app@shop ERROR:  duplicate key value violates unique constraint \"orders_pkey\""
                );
                let head = format!("2026-11-27 {h:02}:{m:02}:{s:02}.{ms:03} CET [{pid}] app@shop ");
                let _ = writeln!(line, "{head}DETAIL:  Key (id)=({lines}) already exists.");
                let _ = writeln!(line, "{head}HINT:  Retry with another id.");
                let _ = writeln!(line, "{head}STATEMENT:  insert into orders (id, total)");
                writeln!(line, "\tvalues ({lines}, 12.50) returning id;")
            }
            1..=30 => writeln!(
                line,
                "DEBUG:  autovacuum: processing database \"shop\", table \"public.orders\" {lines}"
            ),
            31..=70 => writeln!(
                line,
                "app@shop NOTICE:  relation \"tmp_{lines}\" already exists, skipping"
            ),
            _ => writeln!(
                line,
                "report@warehouse INFO:  vacuuming \"public.events_{}\" pages: 0 removed, 1024 remain",
                lines % 13
            ),
        };
        w.write_all(line.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        written += line.len() as u64;
        lines += line.bytes().filter(|&b| b == b'\n').count() as u64;
        i += 1;
    }
    w.flush()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    lines
}

/// CPU seconds of this thread (the machine may be shared: wall time alone overstates the cost).
fn cpu_secs() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// Reads the file through one fixed buffer; returns (entries, wall seconds, CPU seconds).
fn parse(path: &std::path::Path, min_level: PgSeverity) -> (u64, f64, f64) {
    let settings = ParseSettings {
        format: Format::Stderr,
        log_line_prefix: PREFIX.to_string(),
        zone: Zone::from_posix_tz("CET-1CEST,M3.5.0,M10.5.0/3").unwrap_or_else(|_| Zone::utc()),
        min_level,
        max_message_bytes: 8192,
        max_entry_bytes: MAX_ENTRY_BYTES,
    };
    let mut p = Parser::new(settings).unwrap_or_else(|e| panic!("{e}"));
    let mut f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0u8; BUF];
    let mut filled = 0;
    let mut entries = 0u64;
    let mut json = Vec::with_capacity(MAX_ENTRY_BYTES + 1024);
    let source = path.to_string_lossy().into_owned();
    let read_time = pganalytics_collector::util::WallTime { secs: 0, nanos: 0 };
    let mut sink = |e: pganalytics_collector::pg_log_format::Entry, _end: u64| {
        entries += 1;
        entry_json(&mut json, &e, &source, read_time);
        std::hint::black_box(&json);
    };
    let start = Instant::now();
    let cpu = cpu_secs();
    loop {
        let n = f
            .read(&mut buf[filled..])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        filled += n;
        let used = p.feed(&buf[..filled], filled == BUF, &mut sink);
        buf.copy_within(used..filled, 0);
        filled -= used;
        if n == 0 {
            break;
        }
    }
    p.finish(&mut sink);
    (entries, start.elapsed().as_secs_f64(), cpu_secs() - cpu)
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux 4.0+); false when not allowed.
fn reset_hwm() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn main() {
    let mb: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let path = std::env::temp_dir().join(format!("pgac-log-parse-{}.log", std::process::id()));
    println!(
        "log parse: stderr, prefix {PREFIX:?}, fixed {} KiB buffer",
        BUF / 1024
    );
    for size in [mb / 4, mb] {
        let lines = generate(&path, size * 1_000_000);
        let file_mb = std::fs::metadata(&path).map_or(0, |m| m.len()) as f64 / 1e6;
        let reset = reset_hwm();
        let before = vm_hwm_kib();
        let (kept, secs_a, cpu_a) = parse(&path, PgSeverity::Warning);
        let (all, secs_b, cpu_b) = parse(&path, PgSeverity::Debug5);
        let hwm = vm_hwm_kib();
        println!("  file: {file_mb:.1} MB, {lines} lines");
        println!(
            "    (a) min_level WARNING: {kept} entries kept ({:.2} %), {:.0} lines/s, {:.0} MB/s; per CPU second: {:.0} lines (goal: >= 2 000 000 lines/s)",
            kept as f64 * 100.0 / lines as f64,
            lines as f64 / secs_a,
            file_mb / secs_a,
            lines as f64 / cpu_a
        );
        println!(
            "    (b) min_level DEBUG5: {all} entries, {:.0} entries/s, {:.0} MB/s; per CPU second: {:.0} entries (goal: >= 500 000 entries/s)",
            all as f64 / secs_b,
            file_mb / secs_b,
            all as f64 / cpu_b
        );
        println!(
            "    peak RSS (VmHWM) while parsing: {hwm} KiB{}",
            if reset {
                format!(" (reset to {before} KiB before)")
            } else {
                " (cumulative: clear_refs not allowed)".to_string()
            }
        );
    }
    let _ = std::fs::remove_file(&path);
    plans();
}

/// (c) The auto_explain capture in its three formats.
fn plans() {
    const ROUNDS: u32 = 50;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/pglog/auto-explain");
    println!("  (c) auto_explain capture, {ROUNDS} reads of each file:");
    for (format, file, prefix) in [
        (Format::Stderr, "postgresql.log", PREFIX),
        (Format::Csvlog, "postgresql.csv", ""),
        (Format::Jsonlog, "postgresql.json", ""),
    ] {
        let log = std::fs::read(format!("{dir}/{file}")).unwrap_or_else(|e| panic!("{file}: {e}"));
        let mut json = Vec::with_capacity(MAX_ENTRY_BYTES * 4);
        let read_time = pganalytics_collector::util::WallTime { secs: 0, nanos: 0 };
        let (mut entries, mut plans, mut out_bytes) = (0u64, 0u64, 0u64);
        let cpu = cpu_secs();
        for _ in 0..ROUNDS {
            let mut p = Parser::new(ParseSettings {
                format,
                log_line_prefix: prefix.to_string(),
                zone: Zone::utc(),
                min_level: PgSeverity::Debug5,
                max_message_bytes: 8192,
                max_entry_bytes: MAX_ENTRY_BYTES,
            })
            .unwrap_or_else(|e| panic!("{e}"));
            let mut sink = |e: pganalytics_collector::pg_log_format::Entry, _end: u64| {
                entries += 1;
                plans += u64::from(e.plan.is_some());
                entry_json(&mut json, &e, file, read_time);
                out_bytes += json.len() as u64;
                std::hint::black_box(&json);
            };
            // Through the collector's 64 KiB buffer.
            let mut at = 0;
            while at < log.len() {
                let end = (at + BUF).min(log.len());
                let used = p.feed(&log[at..end], end - at == BUF, &mut sink);
                at += used.max(usize::from(used == 0 && end == log.len()) * (end - at));
            }
            p.finish(&mut sink);
        }
        let cpu = cpu_secs() - cpu;
        let mb = log.len() as f64 * f64::from(ROUNDS) / 1e6;
        println!(
            "    {file}: {} entries ({} with a plan) per read, {:.1} µs CPU per entry with a plan (all entries' CPU / plans), {:.0} MB/s of log per CPU second, {:.0} KB of entry JSON per read",
            entries / u64::from(ROUNDS),
            plans / u64::from(ROUNDS),
            cpu * 1e6 / plans.max(1) as f64,
            mb / cpu,
            out_bytes as f64 / f64::from(ROUNDS) / 1e3
        );
    }
}
