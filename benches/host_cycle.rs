//! Host cycle cost: collecting `sysstat` + `disk_usage` (read + parse + build the JSON) on this
//! machine's real /proc, as the poll loop does it, plus heap allocations counted by a counting
//! global allocator: none are expected in reading and parsing, and the JSON step reuses its
//! buffers.
//!
//! `cargo bench --bench host_cycle [-- CYCLES]` (default 10 000). Prints numbers; asserts
//! nothing about time.

use pganalytics_collector::collect::disk_usage::DiskUsage;
use pganalytics_collector::collect::sysstat::Sysstat;
use pganalytics_collector::collect::{Collector, Now, Output};
use pganalytics_collector::config::Config;
use pganalytics_collector::pipeline::{ElementBuffer, ElementMeta, Outcome, Stats};
use pganalytics_collector::sys::file::{Line, LineReader, ProcFile};
use pganalytics_collector::sys::procfs::mountinfo;
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

/// What the disk_usage collector reads and parses, without its JSON: stream mountinfo, parse
/// each line, decode the mount point, statfs the block-device mounts.
fn disk_usage_read_parse(reader: &mut LineReader, file: &mut ProcFile, path: &mut [u8]) -> usize {
    let mut statted = 0;
    let _ = reader.for_each_file_line(file, |line| {
        if let Line::Full(raw) = line
            && let Ok(m) = mountinfo::parse_line(raw)
            && m.source.starts_with(b"/dev/")
            && let Ok(p) =
                mountinfo::unescape(m.mount_point, &mut path[..mountinfo::MOUNT_PATH_CAP])
        {
            let n = p.len();
            path[n] = 0;
            if let Ok(c) = core::ffi::CStr::from_bytes_with_nul(&path[..=n]) {
                statted += usize::from(pganalytics_collector::sys::statfs::statfs(c).is_ok());
            }
        }
        Ok::<(), core::convert::Infallible>(())
    });
    statted
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
    for c in [sysstat as &mut dyn Collector, disk] {
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

    // Reading and parsing alone (sysstat's baseline is exactly its read + parse).
    let mut reader = LineReader::new();
    let mut mountinfo = ProcFile::new(c"/proc/self/mountinfo".to_owned());
    let mut path = vec![0u8; mountinfo::MOUNT_PATH_CAP + 1];
    let before = allocs();
    let mut statted = 0;
    for _ in 0..cycles {
        sysstat.baseline(Now::read());
        statted = disk_usage_read_parse(&mut reader, &mut mountinfo, &mut path);
    }
    let read_parse_allocs = allocs() - before;

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
        "  heap allocations in read + parse: {read_parse_allocs} in {cycles} cycles ({:.2} per cycle; goal 0)",
        read_parse_allocs as f64 / cycles as f64
    );
    println!(
        "  heap allocations per full cycle incl. the JSON step: {:.2} ({cycle_allocs} in {cycles} cycles, after warm-up)",
        cycle_allocs as f64 / cycles as f64
    );
    println!(
        "  element sizes: sysstat {} B, disk_usage {} B; mounts statted per cycle: {statted}",
        sizes.0, sizes.1
    );
}
