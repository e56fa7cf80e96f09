//! `sysstat` (metrics.md §1): CPU, memory, disk I/O, load and network from /proc.
//!
//! Each collection reads five files through one fixed line buffer into a preallocated
//! [`Sample`]; rates are computed against the previous sample of this plugin (the start-up
//! baseline for the first). Reading and parsing allocate nothing; only the JSON step writes
//! into a reused buffer.
//!
//! A file that cannot be read leaves its part `null` (or `[]`) and is reported in
//! `collector_health.errors` as `sysstat/<file>`; only when every file fails does the plugin
//! send nothing.

use super::{CollectError, Collector, Now, Output, round2};
use crate::config;
use crate::sys::file::{FileError, LineReader, read_small};
use crate::sys::procfs::diskstats::{DiskStat, Diskstats};
use crate::sys::procfs::loadavg::{self, Loadavg};
use crate::sys::procfs::meminfo::Meminfo;
use crate::sys::procfs::net_dev::{NetDev, NetDevStat};
use crate::sys::procfs::stat::{CpuTimes, Stat};
use core::ffi::CStr;
use serde::Serialize;
use serde::ser::SerializeSeq;

const PROC_STAT: &CStr = c"/proc/stat";
const PROC_MEMINFO: &CStr = c"/proc/meminfo";
const PROC_LOADAVG: &CStr = c"/proc/loadavg";
const PROC_DISKSTATS: &CStr = c"/proc/diskstats";
const PROC_NET_DEV: &CStr = c"/proc/net/dev";

/// Block devices whose partition status is remembered (beyond this, it is looked up again).
const PARTITION_CACHE: usize = 1024;

/// One reading of every source; `None` / empty where a file could not be read.
#[derive(Default)]
struct Sample {
    mono_ns: u64,
    stat: Option<Stat>,
    mem: Option<Meminfo>,
    load: Option<Loadavg>,
    disks: Option<Diskstats>,
    net: Option<NetDev>,
}

pub struct Sysstat {
    include_partitions: bool,
    reader: LineReader,
    prev: Box<Sample>,
    cur: Box<Sample>,
    /// (major, minor, is a partition), filled from /sys/dev/block as devices appear.
    partitions: heapless::Vec<(u32, u32, bool), PARTITION_CACHE>,
}

impl Sysstat {
    pub fn new(cfg: &config::Sysstat) -> Sysstat {
        Sysstat {
            include_partitions: cfg.include_partitions,
            reader: LineReader::new(),
            prev: Box::default(),
            cur: Box::default(),
            partitions: heapless::Vec::new(),
        }
    }

    /// Reads every source into `self.cur`; returns the first error of each failed file.
    fn read(&mut self, now: Now, out: Option<&mut Output<'_>>) -> usize {
        let cur = &mut *self.cur;
        cur.mono_ns = now.mono_ns;
        let mut failures = [None, None, None, None, None];

        let stat = cur.stat.get_or_insert_with(Stat::default);
        stat.reset();
        failures[0] = self
            .reader
            .read_lines(PROC_STAT, stat)
            .and_then(|()| stat.finish().map_err(FileError::Parse))
            .err()
            .map(|e| ("/proc/stat", e.to_string()));
        if failures[0].is_some() {
            cur.stat = None;
        }

        let mem = cur.mem.get_or_insert_with(Meminfo::default);
        *mem = Meminfo::default();
        failures[1] = self
            .reader
            .read_lines(PROC_MEMINFO, mem)
            .and_then(|()| mem.finish().map_err(FileError::Parse))
            .err()
            .map(|e| ("/proc/meminfo", e.to_string()));
        if failures[1].is_some() {
            cur.mem = None;
        }

        let mut small = [0u8; 256];
        cur.load = match read_small(PROC_LOADAVG, &mut small) {
            Ok(bytes) => match loadavg::parse(bytes) {
                Ok(l) => Some(l),
                Err(e) => {
                    failures[2] = Some(("/proc/loadavg", e.to_string()));
                    None
                }
            },
            Err(e) => {
                failures[2] = Some(("/proc/loadavg", e.to_string()));
                None
            }
        };

        let disks = cur.disks.get_or_insert_with(Diskstats::default);
        disks.clear();
        failures[3] = self
            .reader
            .read_lines(PROC_DISKSTATS, disks)
            .err()
            .map(|e| ("/proc/diskstats", e.to_string()));
        if failures[3].is_some() {
            cur.disks = None;
        }

        let net = cur.net.get_or_insert_with(NetDev::default);
        net.clear();
        failures[4] = self
            .reader
            .read_lines(PROC_NET_DEV, net)
            .err()
            .map(|e| ("/proc/net/dev", e.to_string()));
        if failures[4].is_some() {
            cur.net = None;
        }

        let mut failed = 0;
        if let Some(out) = out {
            for (file, msg) in failures.iter().flatten() {
                out.error(&format!("sysstat{file}"), format_args!("{file}: {msg}"));
                failed += 1;
            }
            if let Some(d) = &self.cur.disks
                && d.skipped > 0
            {
                out.error(
                    "sysstat/proc/diskstats",
                    format_args!(
                        "/proc/diskstats: {} devices over the limit of {} were skipped",
                        d.skipped,
                        crate::sys::procfs::diskstats::MAX_DISKS
                    ),
                );
            }
            if let Some(n) = &self.cur.net
                && n.skipped > 0
            {
                out.error(
                    "sysstat/proc/net/dev",
                    format_args!(
                        "/proc/net/dev: {} interfaces over the limit of {} were skipped",
                        n.skipped,
                        crate::sys::procfs::net_dev::MAX_INTERFACES
                    ),
                );
            }
        } else {
            failed = failures.iter().flatten().count();
        }
        failed
    }

    /// Whether `d` is a partition: /sys/dev/block/M:m/partition exists for partitions; without
    /// sysfs, the device name decides.
    fn is_partition(&mut self, d: &DiskStat) -> bool {
        if let Some(&(_, _, p)) = self
            .partitions
            .iter()
            .find(|(ma, mi, _)| *ma == d.major && *mi == d.minor)
        {
            return p;
        }
        let p = match sysfs_partition(d.major, d.minor) {
            Some(p) => p,
            None => name_looks_like_partition(&d.name),
        };
        let _ = self.partitions.push((d.major, d.minor, p));
        p
    }
}

/// `Some(true)` when /sys/dev/block/M:m/partition exists, `Some(false)` when the device
/// directory exists without it, `None` without sysfs.
fn sysfs_partition(major: u32, minor: u32) -> Option<bool> {
    use core::fmt::Write;
    let mut path: heapless::String<64> = heapless::String::new();
    write!(path, "/sys/dev/block/{major}:{minor}").ok()?;
    let dir_len = path.len();
    path.push_str("/partition\0").ok()?;
    let with_file = CStr::from_bytes_with_nul(path.as_bytes()).ok()?;
    if rustix::fs::access(with_file, rustix::fs::Access::EXISTS).is_ok() {
        return Some(true);
    }
    path.truncate(dir_len);
    path.push('\0').ok()?;
    let dir = CStr::from_bytes_with_nul(path.as_bytes()).ok()?;
    rustix::fs::access(dir, rustix::fs::Access::EXISTS)
        .ok()
        .map(|()| false)
}

/// Name rules for partitions when sysfs is absent: `sda1`, `vdb2`, `xvda1`, `hda3`,
/// `nvme0n1p1`, `mmcblk0p1`, `md0p1`.
pub fn name_looks_like_partition(name: &str) -> bool {
    let b = name.as_bytes();
    let trailing_digits = b.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    if trailing_digits == 0 {
        return false;
    }
    let stem = &name[..name.len() - trailing_digits];
    for prefix in ["sd", "vd", "xvd", "hd"] {
        if let Some(rest) = stem.strip_prefix(prefix) {
            return !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_lowercase());
        }
    }
    for prefix in ["nvme", "mmcblk", "md", "nbd", "rbd"] {
        if stem.starts_with(prefix) && stem.ends_with('p') && stem.len() > prefix.len() + 1 {
            return stem.as_bytes()[stem.len() - 2].is_ascii_digit();
        }
    }
    false
}

fn skipped_device(name: &str) -> bool {
    name.starts_with("loop") || name.starts_with("ram") || name.starts_with("zram")
}

impl Collector for Sysstat {
    fn name(&self) -> &'static str {
        "sysstat"
    }

    fn baseline(&mut self, now: Now) {
        self.read(now, None);
        core::mem::swap(&mut self.prev, &mut self.cur);
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        let failed = self.read(now, Some(out));
        if failed == 5 {
            return Err(CollectError(
                "every /proc source failed (see the sysstat/ errors); is /proc mounted?".into(),
            ));
        }
        // Classify the devices before the JSON step borrows the samples.
        let mut keep = [false; crate::sys::procfs::diskstats::MAX_DISKS];
        let disk_count = self.cur.disks.as_ref().map_or(0, |d| d.disks.len());
        for i in 0..disk_count {
            let Some(d) = self
                .cur
                .disks
                .as_ref()
                .and_then(|d| d.disks.get(i))
                .cloned()
            else {
                break;
            };
            keep[i] =
                !skipped_device(&d.name) && (self.include_partitions || !self.is_partition(&d));
        }
        let element = Element {
            kind: "sysstat",
            timestamp: now.wall.rfc3339(),
            cpu: cpu_json(&self.prev, &self.cur),
            memory: self.cur.mem.as_ref().map(memory_json),
            disk_io: DiskList {
                prev: &self.prev,
                cur: &self.cur,
                keep: &keep[..disk_count],
            },
            network: NetList {
                prev: &self.prev,
                cur: &self.cur,
            },
        };
        let r = out.emit(0, &element);
        core::mem::swap(&mut self.prev, &mut self.cur);
        r.map_err(|e| CollectError(e.to_string()))
    }
}

#[derive(Serialize)]
struct Element<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: crate::util::Rfc3339,
    cpu: CpuJson,
    memory: Option<MemoryJson>,
    disk_io: DiskList<'a>,
    network: NetList<'a>,
}

#[derive(Serialize, Default)]
struct CpuJson {
    user: Option<f64>,
    nice: Option<f64>,
    system: Option<f64>,
    idle: Option<f64>,
    iowait: Option<f64>,
    irq: Option<f64>,
    softirq: Option<f64>,
    steal: Option<f64>,
    cores: Option<u32>,
    load_1m: Option<f64>,
    load_5m: Option<f64>,
    load_15m: Option<f64>,
}

/// CPU shares over the interval; `null` when either sample is missing or a counter went down.
fn cpu_json(prev: &Sample, cur: &Sample) -> CpuJson {
    let mut j = CpuJson {
        cores: cur.stat.as_ref().map(|s| s.cores),
        load_1m: cur.load.map(|l| l.one),
        load_5m: cur.load.map(|l| l.five),
        load_15m: cur.load.map(|l| l.fifteen),
        ..CpuJson::default()
    };
    let (Some(a), Some(b)) = (
        prev.stat.as_ref().and_then(|s| s.cpu),
        cur.stat.as_ref().and_then(|s| s.cpu),
    ) else {
        return j;
    };
    if let Some(shares) = cpu_shares(&a, &b) {
        [
            j.user, j.nice, j.system, j.idle, j.iowait, j.irq, j.softirq, j.steal,
        ] = shares.map(Some);
    }
    j
}

/// Percent of each of user, nice, system, idle, iowait, irq, softirq, steal in the delta.
pub fn cpu_shares(a: &CpuTimes, b: &CpuTimes) -> Option<[f64; 8]> {
    let pa = [
        a.user, a.nice, a.system, a.idle, a.iowait, a.irq, a.softirq, a.steal,
    ];
    let pb = [
        b.user, b.nice, b.system, b.idle, b.iowait, b.irq, b.softirq, b.steal,
    ];
    let mut d = [0u64; 8];
    for i in 0..8 {
        d[i] = pb[i].checked_sub(pa[i])?;
    }
    let total: u64 = d.iter().sum();
    if total == 0 {
        return None;
    }
    Some(d.map(|x| round2(x as f64 * 100.0 / total as f64)))
}

#[derive(Serialize)]
struct MemoryJson {
    total_mb: u64,
    free_mb: u64,
    available_mb: Option<u64>,
    cached_mb: u64,
    used_mb: u64,
    used_percent: Option<f64>,
    swap_total_mb: u64,
    swap_used_mb: u64,
}

/// MiB, floored ("kB" in meminfo is KiB). used = total − free − cached − buffers.
fn memory_json(m: &Meminfo) -> MemoryJson {
    let cached = m.cached_kib.saturating_add(m.buffers_kib);
    let used = m
        .mem_total_kib
        .saturating_sub(m.mem_free_kib)
        .saturating_sub(cached);
    MemoryJson {
        total_mb: m.mem_total_kib / 1024,
        free_mb: m.mem_free_kib / 1024,
        available_mb: m.mem_available_kib.map(|k| k / 1024),
        cached_mb: cached / 1024,
        used_mb: used / 1024,
        used_percent: (m.mem_total_kib > 0)
            .then(|| round2(used as f64 * 100.0 / m.mem_total_kib as f64)),
        swap_total_mb: m.swap_total_kib / 1024,
        swap_used_mb: m.swap_total_kib.saturating_sub(m.swap_free_kib) / 1024,
    }
}

/// Seconds between two samples, if positive.
fn interval_secs(prev: &Sample, cur: &Sample) -> Option<f64> {
    let dt = cur.mono_ns.checked_sub(prev.mono_ns)?;
    (dt > 0).then(|| dt as f64 / 1e9)
}

/// `Δcounter / dt`, or `None` when the counter went down (reset, re-attach, wrap).
fn rate(prev: u64, cur: u64, dt: Option<f64>, scale: f64) -> Option<f64> {
    let d = cur.checked_sub(prev)?;
    Some(round2(d as f64 * scale / dt?))
}

struct DiskList<'a> {
    prev: &'a Sample,
    cur: &'a Sample,
    keep: &'a [bool],
}

#[derive(Serialize)]
struct DiskJson<'a> {
    device: &'a str,
    read_ops: u64,
    write_ops: u64,
    read_sectors: u64,
    write_sectors: u64,
    read_ops_per_sec: Option<f64>,
    write_ops_per_sec: Option<f64>,
    read_bytes_per_sec: Option<f64>,
    write_bytes_per_sec: Option<f64>,
    io_time_ms: Option<u64>,
    util_percent: Option<f64>,
}

impl Serialize for DiskList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        let Some(cur) = &self.cur.disks else {
            return seq.end();
        };
        let dt = interval_secs(self.prev, self.cur);
        let prev = self.prev.disks.as_ref().map_or(&[][..], |d| &d.disks[..]);
        for (i, d) in cur.disks.iter().enumerate() {
            if !self.keep.get(i).copied().unwrap_or(false) {
                continue;
            }
            // The same device is usually at the same position: check there first.
            let p = prev
                .get(i)
                .filter(|p| p.name == d.name)
                .or_else(|| prev.iter().find(|p| p.name == d.name));
            // Sectors are 512 bytes whatever the device's block size.
            let r = |f: fn(&DiskStat) -> u64, scale| p.and_then(|p| rate(f(p), f(d), dt, scale));
            let util = match (p.and_then(|p| p.io_ms), d.io_ms, dt) {
                (Some(a), Some(b), Some(dt)) => b
                    .checked_sub(a)
                    .map(|ms| round2((ms as f64 / 10.0 / dt).min(100.0))),
                _ => None,
            };
            seq.serialize_element(&DiskJson {
                device: &d.name,
                read_ops: d.reads,
                write_ops: d.writes,
                read_sectors: d.sectors_read,
                write_sectors: d.sectors_written,
                read_ops_per_sec: r(|x| x.reads, 1.0),
                write_ops_per_sec: r(|x| x.writes, 1.0),
                read_bytes_per_sec: r(|x| x.sectors_read, 512.0),
                write_bytes_per_sec: r(|x| x.sectors_written, 512.0),
                io_time_ms: d.io_ms,
                util_percent: util,
            })?;
        }
        seq.end()
    }
}

struct NetList<'a> {
    prev: &'a Sample,
    cur: &'a Sample,
}

#[derive(Serialize)]
struct NetJson<'a> {
    interface: &'a str,
    rx_bytes: u64,
    tx_bytes: u64,
    rx_packets: u64,
    tx_packets: u64,
    rx_errors: u64,
    tx_errors: u64,
    rx_bytes_per_sec: Option<f64>,
    tx_bytes_per_sec: Option<f64>,
}

impl Serialize for NetList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        let Some(cur) = &self.cur.net else {
            return seq.end();
        };
        let dt = interval_secs(self.prev, self.cur);
        let prev = self
            .prev
            .net
            .as_ref()
            .map_or(&[][..], |n| &n.interfaces[..]);
        for (i, n) in cur.interfaces.iter().enumerate() {
            if n.name == "lo" {
                continue;
            }
            let p = prev
                .get(i)
                .filter(|p| p.name == n.name)
                .or_else(|| prev.iter().find(|p| p.name == n.name));
            let r = |f: fn(&NetDevStat) -> u64| p.and_then(|p| rate(f(p), f(n), dt, 1.0));
            seq.serialize_element(&NetJson {
                interface: &n.name,
                rx_bytes: n.rx_bytes,
                tx_bytes: n.tx_bytes,
                rx_packets: n.rx_packets,
                tx_packets: n.tx_packets,
                rx_errors: n.rx_errors,
                tx_errors: n.tx_errors,
                rx_bytes_per_sec: r(|x| x.rx_bytes),
                tx_bytes_per_sec: r(|x| x.tx_bytes),
            })?;
        }
        seq.end()
    }
}
