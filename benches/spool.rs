//! The outage spool's cost: what one collection round's append (one `fdatasync`) takes, how
//! fast a spool is read back (replay), and how long opening a spool left by a crash takes
//! (every record's CRC-32C checked).
//!
//! `cargo bench --bench spool [-- ROUNDS]` (default 300 rounds of 10 elements of ~1.5 KB, a
//! sysstat element's size) in a directory under `$TMPDIR` (put it on the disk you care about:
//! `TMPDIR=/var/lib/pganalytics-bench`). Prints numbers; asserts nothing about time.

use pganalytics_collector::pipeline::spool::NO_BATCH;
use pganalytics_collector::push::spool::Spool;
use std::time::Instant;

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let per_round = 10;
    let dir = std::env::temp_dir().join(format!("pgac-bench-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let element = format!(
        "{{\"type\":\"sysstat\",\"timestamp\":\"2026-03-01T12:00:00Z\",\"pad\":\"{}\"}}",
        "x".repeat(1450)
    );
    let mut spool = Spool::open(&dir, 64 << 20).unwrap();
    let mut commits = Vec::with_capacity(rounds);
    let started = Instant::now();
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..per_round {
            spool.stage(&NO_BATCH, &[element.as_bytes()]);
        }
        spool.commit().unwrap();
        commits.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let write_s = started.elapsed().as_secs_f64();
    let bytes = spool.figures().bytes;
    commits.sort_by(f64::total_cmp);
    let pct = |p: f64| commits[((commits.len() - 1) as f64 * p) as usize];
    println!(
        "append: {rounds} rounds of {per_round} elements ({:.1} MiB): per round (one fdatasync) median {:.2} ms, p99 {:.2} ms, max {:.2} ms; {:.1} MiB/s",
        bytes as f64 / 1048576.0,
        pct(0.5),
        pct(0.99),
        pct(1.0),
        bytes as f64 / 1048576.0 / write_s
    );
    drop(spool);
    let t = Instant::now();
    let mut spool = Spool::open(&dir, 64 << 20).unwrap();
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let elements = spool.figures().elements;
    println!("open (every record checked): {elements} elements in {open_ms:.1} ms");
    let t = Instant::now();
    let mut batches = 0;
    while let Some(b) = spool.next_batch(4 << 20, usize::MAX).unwrap() {
        spool.delivered(b.end, b.lens.len()).unwrap();
        batches += 1;
    }
    let replay_s = t.elapsed().as_secs_f64();
    println!(
        "replay (read, form, cursor written per batch): {batches} batches of <= 4 MiB in {:.1} ms, {:.1} MiB/s",
        replay_s * 1e3,
        bytes as f64 / 1048576.0 / replay_s
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
