//! Push cost: ~200 KB of typical metrics (sysstat and pg_stats elements shaped like the real
//! ones) → the envelope (`pipeline::envelope::build`, the collector's own code) → gzip at the
//! default level 3, median of 50; the compression ratio; and one push over loopback TLS 1.3
//! on a reused connection to the test backend (tests/support/backend.rs), median of 50.
//!
//! Stand-ins, until the push sink lands on this branch (check `git log` for `proto::gzip` and
//! `push`): gzip is raw DEFLATE from miniz_oxide at level 3 (the engine the collector uses)
//! with RFC 1952 framing written here; the HTTPS client is tests/support/client.rs (rustls,
//! ring, TLS 1.3), not the collector's. Replace both with `proto::gzip` / the push client when
//! they exist.
//!
//! `cargo bench --bench push` (the bench profile is the release profile; on a shared machine
//! `cargo bench --profile dev --bench push` gives a rough debug-build figure).
//! Prints numbers; asserts nothing about time.

#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use pganalytics_collector::pipeline::envelope::{self, Header};
use pganalytics_collector::pipeline::{ElementBuffer, ElementMeta};
use pganalytics_collector::util::WallTime;
use serde_json::{Value, json};
use std::time::Instant;
use support::backend::{Backend, Options, PUSH};
use support::client::Client;

const TARGET_BYTES: usize = 200 * 1024;
const RUNS: usize = 50;
const LEVEL: u8 = 3;

fn sysstat(i: usize) -> Value {
    json!({"type": "sysstat", "timestamp": format!("2026-03-01T12:{:02}:{:02}Z", i / 60 % 60, i % 60),
        "cpu": {"user": 3.51 + i as f64 * 0.01, "nice": 0.0, "system": 1.27, "idle": 94.8, "iowait": 0.3,
                "irq": 0.0, "softirq": 0.12, "steal": 0.0, "cores": 8, "load_1m": 0.82, "load_5m": 0.61, "load_15m": 0.55},
        "memory": {"total_mb": 32011, "free_mb": 1204 + i, "available_mb": 20411, "cached_mb": 17888,
                   "used_mb": 10419, "used_percent": 32.55, "swap_total_mb": 2047, "swap_used_mb": 12},
        "disk_io": (0..3).map(|d| json!({"device": format!("nvme0n{d}"), "read_ops": 5_263_180 + i * 17,
            "write_ops": 345_940 + i * 3, "read_sectors": 152_631_060u64, "write_sectors": 349_705_440u64,
            "read_ops_per_sec": 183.45, "write_ops_per_sec": 12.1, "read_kb_per_sec": 1480.2,
            "write_kb_per_sec": 96.5, "util_percent": 4.2})).collect::<Vec<_>>(),
        "network": (["lo", "eth0"].iter().map(|n| json!({"interface": n, "rx_bytes": 9_812_331_012u64 + i as u64,
            "tx_bytes": 4_112_093_222u64, "rx_packets": 8_112_331, "tx_packets": 6_001_214, "rx_errors": 0,
            "tx_errors": 0, "rx_bytes_per_sec": 10211.5, "tx_bytes_per_sec": 8822.1})).collect::<Vec<_>>())})
}

fn pg_stats(i: usize) -> Value {
    json!({"type": "pg_stats", "timestamp": "2026-03-01T12:00:00Z", "database": "app",
        "tables": (0..20).map(|t| json!({"schema": "public", "table": format!("orders_{}", i * 20 + t),
            "seq_scan": 1200 + t, "seq_tup_read": 9_120_044, "idx_scan": 88_120_331 + t, "idx_tup_fetch": 88_000_120,
            "n_tup_ins": 1_201_332, "n_tup_upd": 320_112, "n_tup_del": 1_201, "n_live_tup": 1_100_200,
            "n_dead_tup": 3_120, "last_autovacuum": "2026-03-01T11:52:10Z", "last_autoanalyze": "2026-03-01T11:40:02Z",
            "total_bytes": 312_000_512u64, "table_bytes": 220_000_256u64, "index_bytes": 92_000_256u64}))
            .collect::<Vec<_>>()})
}

/// The elements' JSON texts, about [`TARGET_BYTES`] in all.
fn elements() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut total = 0;
    let mut i = 0;
    while total < TARGET_BYTES {
        let e = if i % 3 == 2 { pg_stats(i) } else { sysstat(i) };
        let text = serde_json::to_vec(&e).unwrap();
        total += text.len();
        out.push(text);
        i += 1;
    }
    out
}

/// gzip stand-in: RFC 1952 header, raw DEFLATE (miniz_oxide), CRC-32 + ISIZE little-endian.
fn gzip(data: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(data, LEVEL));
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn fill(buffer: &mut ElementBuffer, elements: &[Vec<u8>]) {
    for (i, e) in elements.iter().enumerate() {
        let meta = ElementMeta {
            source: 0,
            tag: i as u64,
        };
        buffer.push(meta, e, &mut |_, _| {}).unwrap();
    }
}

fn main() {
    let elements = elements();
    let raw: usize = elements.iter().map(Vec::len).sum();
    let backend = Backend::start(Options::default());
    let collector_id = "bench-collector";
    let token = backend.issue_token(collector_id, "bench-host");
    let header = Header {
        collector_id,
        hostname: "bench-host",
        timestamp: WallTime {
            secs: 1_772_366_400,
            nanos: 0,
        },
        batch_id: "6f1c0d2a9b8e4f70a1c3d5e7f9021436",
        version: env!("CARGO_PKG_VERSION"),
    };

    let mut buffer = ElementBuffer::new(4 << 20);
    let (mut body, mut gz, mut taken) = (Vec::new(), Vec::new(), Vec::new());
    let (mut build_us, mut gzip_us) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        fill(&mut buffer, &elements);
        taken.clear();
        let t = Instant::now();
        envelope::build(&header, &mut buffer, None, &mut body, &mut taken);
        build_us.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        gzip(&body, &mut gz);
        gzip_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    assert_eq!(taken.len(), elements.len(), "every element in the envelope");

    let mut client = Client::connect(&backend.url, &backend.certs.ca_pem, None).unwrap();
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
    ];
    // Warm-up: the handshake happens here, then the connection is reused.
    let r = client.request("POST", PUSH, &headers, &gz).unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut push_ms = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let r = client.request("POST", PUSH, &headers, &gz).unwrap();
        push_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.status, 200);
    }

    println!(
        "push: {} elements, {raw} B of element JSON, envelope {} B",
        elements.len(),
        body.len()
    );
    println!(
        "  envelope build (pipeline::envelope::build): median {:.0} µs of {RUNS}",
        median(build_us)
    );
    println!(
        "  gzip level {LEVEL} (stand-in: miniz_oxide + framing here): median {:.0} µs of {RUNS}; {} B, ratio {:.1}:1",
        median(gzip_us),
        gz.len(),
        body.len() as f64 / gz.len() as f64
    );
    println!(
        "  one push over loopback TLS 1.3, reused connection (stand-in client tests/support/client.rs; \
         backend decodes gzip + parses JSON): median {:.2} ms of {RUNS}",
        median(push_ms)
    );
}
