//! `collector_health` (docs/metrics.md, `collector_health`): the collector describing itself, one
//! element per push round (and one log line on SIGUSR1).

use super::Errors;
use crate::pipeline::Stats;
use crate::sys::file::{ProcFile, read_small_file};
use crate::sys::procfs::pid_stat;
use crate::util::Rfc3339;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Resident memory and CPU time of this process, from /proc/self/stat.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessUsage {
    pub rss_bytes: u64,
    pub cpu_user_secs: f64,
    pub cpu_system_secs: f64,
}

thread_local! {
    /// /proc/self/stat, kept open (one thread, one process: `self` is resolved at the open).
    static SELF_STAT: RefCell<ProcFile> = RefCell::new(ProcFile::new(c"/proc/self/stat".into()));
}

/// Reads /proc/self/stat (None when /proc is unreadable: the fields are then `null`).
pub fn process_usage() -> Option<ProcessUsage> {
    let mut buf = [0u8; 1024];
    let bytes = SELF_STAT
        .with(|f| {
            let mut f = f.try_borrow_mut().ok()?;
            read_small_file(&mut f, &mut buf).ok().map(<[u8]>::len)
        })
        .and_then(|n| buf.get(..n))?;
    let st = pid_stat::parse(bytes).ok()?;
    let ticks = crate::sys::process::clock_ticks_per_second().max(1) as f64;
    let page = crate::sys::process::page_size() as u64;
    Some(ProcessUsage {
        rss_bytes: st.rss_pages.saturating_mul(page),
        cpu_user_secs: super::round2(st.utime_ticks as f64 / ticks),
        cpu_system_secs: super::round2(st.stime_ticks as f64 / ticks),
    })
}

/// The `collector_health` element.
#[derive(Debug, Serialize)]
pub struct Health<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: Rfc3339,
    pub version: &'static str,
    pub uptime_secs: u64,
    /// **+** Push rounds since start, this one included: each health element has its own,
    /// so a backend sees lost rounds as gaps and a restart as a return to 1.
    pub round: u64,
    pub rss_bytes: Option<u64>,
    pub cpu_user_secs: Option<f64>,
    pub cpu_system_secs: Option<f64>,
    /// Duration of each plugin's latest collection, milliseconds.
    pub collect_ms: &'a BTreeMap<&'static str, f64>,
    /// JSON bytes waiting in the buffer.
    pub buffer_bytes: usize,
    pub buffer_capacity_bytes: usize,
    pub metrics_dropped: u64,
    pub batches_rejected: u64,
    pub push_failures: u64,
    pub last_push_status: Option<u16>,
    pub log_entries_truncated: u64,
    /// **+** The outage spool (docs/protocol.md, "Spool"), with `run` and a backend: bytes and
    /// elements not yet delivered, bad records skipped. Absent without a spool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool_elements: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool_corrupt: Option<u64>,
    pub errors: &'a Errors,
}

/// Everything the element is made of, gathered by the loop.
pub struct Inputs<'a> {
    pub now: super::Now,
    /// Push rounds since start, this one included.
    pub round: u64,
    pub started_mono_ns: u64,
    pub collect_ms: &'a BTreeMap<&'static str, f64>,
    pub buffer_bytes: usize,
    pub buffer_capacity_bytes: usize,
    pub stats: &'a Stats,
    pub log_entries_truncated: u64,
    pub errors: &'a Errors,
    pub usage: Option<ProcessUsage>,
}

pub fn element<'a>(i: &Inputs<'a>) -> Health<'a> {
    Health {
        kind: "collector_health",
        timestamp: i.now.wall.rfc3339(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: i.now.mono_ns.saturating_sub(i.started_mono_ns) / 1_000_000_000,
        round: i.round,
        rss_bytes: i.usage.map(|u| u.rss_bytes),
        cpu_user_secs: i.usage.map(|u| u.cpu_user_secs),
        cpu_system_secs: i.usage.map(|u| u.cpu_system_secs),
        collect_ms: i.collect_ms,
        buffer_bytes: i.buffer_bytes,
        buffer_capacity_bytes: i.buffer_capacity_bytes,
        metrics_dropped: i.stats.metrics_dropped,
        batches_rejected: i.stats.batches_rejected,
        push_failures: i.stats.push_failures,
        last_push_status: i.stats.last_push_status,
        log_entries_truncated: i.log_entries_truncated,
        spool_bytes: i.stats.spool.map(|s| s.bytes),
        spool_elements: i.stats.spool.map(|s| s.elements),
        spool_corrupt: i.stats.spool.map(|s| s.corrupt),
        errors: i.errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let u = process_usage().expect("/proc/self/stat");
        assert!(u.rss_bytes > 100 * 1024, "rss {}", u.rss_bytes);
        assert!(u.cpu_user_secs >= 0.0 && u.cpu_system_secs >= 0.0);
    }

    #[test]
    fn element_has_every_field_of_the_spec() {
        let collect_ms = BTreeMap::from([("sysstat", 0.05)]);
        let mut errors = Errors::new();
        errors.insert("pg_stats/app".into(), "connection refused".into());
        let stats = Stats::default();
        let inputs = Inputs {
            now: super::super::Now {
                mono_ns: 90_000_000_000,
                wall: crate::util::WallTime {
                    secs: 1_772_366_400,
                    nanos: 0,
                },
            },
            round: 7,
            started_mono_ns: 3_000_000_000,
            collect_ms: &collect_ms,
            buffer_bytes: 10,
            buffer_capacity_bytes: 100,
            stats: &stats,
            log_entries_truncated: 0,
            errors: &errors,
            usage: None,
        };
        let v = serde_json::to_value(element(&inputs)).unwrap();
        for key in [
            "type",
            "timestamp",
            "version",
            "uptime_secs",
            "rss_bytes",
            "cpu_user_secs",
            "cpu_system_secs",
            "collect_ms",
            "buffer_bytes",
            "buffer_capacity_bytes",
            "metrics_dropped",
            "batches_rejected",
            "push_failures",
            "last_push_status",
            "log_entries_truncated",
            "errors",
        ] {
            assert!(v.get(key).is_some(), "{key} missing");
        }
        assert_eq!(v["uptime_secs"], 87);
        assert_eq!(v["round"], 7);
        assert!(v["rss_bytes"].is_null());
        assert_eq!(v["errors"]["pg_stats/app"], "connection refused");
        assert_eq!(v["collect_ms"]["sysstat"], 0.05);
        assert!(v.get("spool_bytes").is_none(), "no spool, no spool figures");
        let stats = Stats {
            spool: Some(crate::pipeline::SpoolFigures {
                bytes: 3,
                elements: 2,
                corrupt: 1,
            }),
            ..Stats::default()
        };
        let v = serde_json::to_value(element(&Inputs {
            stats: &stats,
            ..inputs
        }))
        .unwrap();
        assert_eq!(
            (&v["spool_bytes"], &v["spool_elements"], &v["spool_corrupt"]),
            (&3.into(), &2.into(), &1.into())
        );
    }
}
