//! Host cycle cost: collecting `sysstat` + `disk_usage` (read + parse + build the JSON) on this
//! machine's real /proc, as the poll loop does it, plus heap allocations counted by a counting
//! global allocator: none are expected in reading and parsing, and the JSON step reuses its
//! buffers. Every figure comes from the production collectors (no bench-local copy of a path):
//! sysstat's read + parse is its `baseline`, disk_usage's is its whole `collect`.
//!
//! `cargo bench --bench host_cycle [-- CYCLES]` (default 10 000). Prints numbers; asserts
//! nothing about time.

use pganalytics_collector::collect::disk_usage::DiskUsage;
use pganalytics_collector::collect::sysstat::Sysstat;
use pganalytics_collector::collect::{Collector, Now, Output};
use pganalytics_collector::config::Config;
use pganalytics_collector::pipeline::{ElementBuffer, ElementMeta, Outcome, Stats};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

/// What the engine keeps between collections.
struct State {
    buffer: ElementBuffer,
    scratch: Vec<u8>,
    stats: Stats,
    outcomes: Vec<(ElementMeta, Outcome)>,
    errors: Vec<(String, String)>,
}

/// One host cycle as the engine runs it: each collector writes its element into the buffer.
fn cycle(sysstat: &mut Sysstat, disk: &mut DiskUsage, s: &mut State, now: Now) {
    collect(&mut [sysstat as &mut dyn Collector, disk], s, now);
}

/// Runs `collectors` as the engine does, each writing its element into the buffer.
fn collect(collectors: &mut [&mut dyn Collector], s: &mut State, now: Now) {
    for c in collectors.iter_mut() {
        let mut out = Output::new(
            c.name(),
            &mut s.buffer,
            &mut s.scratch,
            1 << 20,
            &mut s.stats,
            &mut s.outcomes,
            &mut s.errors,
        );
        c.collect(now, &mut out).expect("collect");
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let cycles: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let config = Config::default();
    let mut sysstat = Sysstat::new(&config.sysstat);
    let mut disk = DiskUsage::new(&config.disk_usage);
    let mut state = State {
        buffer: ElementBuffer::new(1 << 20),
        scratch: Vec::new(),
        stats: Stats::default(),
        outcomes: Vec::new(),
        errors: Vec::new(),
    };
    let mut drained = Vec::new();
    sysstat.baseline(Now::read());

    // Warm-up: buffers reach their steady sizes.
    let mut sizes = (0, 0);
    for _ in 0..100 {
        cycle(&mut sysstat, &mut disk, &mut state, Now::read());
        drained.clear();
        state.buffer.pop_into(&mut drained);
        sizes.0 = drained.len();
        drained.clear();
        state.buffer.pop_into(&mut drained);
        sizes.1 = drained.len();
    }

    let mut times = Vec::with_capacity(cycles);
    let before = allocs();
    for _ in 0..cycles {
        let t = std::time::Instant::now();
        cycle(&mut sysstat, &mut disk, &mut state, Now::read());
        times.push(t.elapsed().as_secs_f64() * 1e6);
        drained.clear();
        while state.buffer.pop_into(&mut drained).is_some() {}
    }
    let cycle_allocs = allocs() - before;

    // Each collector alone, through its production path: sysstat's baseline is exactly its
    // read + parse (no JSON); disk_usage's collect is its whole path (mountinfo, statfs and
    // the element's JSON in its reused buffer).
    let before = allocs();
    for _ in 0..cycles {
        sysstat.baseline(Now::read());
    }
    let read_parse_allocs = allocs() - before;
    let before = allocs();
    for _ in 0..cycles {
        collect(&mut [&mut disk], &mut state, Now::read());
        drained.clear();
        while state.buffer.pop_into(&mut drained).is_some() {}
    }
    let disk_allocs = allocs() - before;

    times.sort_by(|a, b| a.total_cmp(b));
    println!("host cycle: sysstat + disk_usage (read + parse + JSON), {cycles} cycles, real /proc");
    println!(
        "  per cycle: median {:.1} µs, p10 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs (goal: median <= 100 µs)",
        percentile(&times, 0.5),
        percentile(&times, 0.1),
        percentile(&times, 0.9),
        percentile(&times, 0.99)
    );
    println!(
        "  heap allocations in sysstat's read + parse: {read_parse_allocs} in {cycles} cycles ({:.2} per cycle; goal 0)",
        read_parse_allocs as f64 / cycles as f64
    );
    println!(
        "  heap allocations in disk_usage's collection (read, parse, statfs, JSON): {disk_allocs} in {cycles} cycles ({:.2} per cycle; goal 0)",
        disk_allocs as f64 / cycles as f64
    );
    println!(
        "  heap allocations per full cycle incl. the JSON step: {:.2} ({cycle_allocs} in {cycles} cycles, after warm-up)",
        cycle_allocs as f64 / cycles as f64
    );
    println!(
        "  element sizes: sysstat {} B, disk_usage {} B",
        sizes.0, sizes.1
    );
}
