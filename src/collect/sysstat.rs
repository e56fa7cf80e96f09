//! `sysstat` (docs/metrics.md, `sysstat`): CPU, memory, disk I/O, load and network from /proc.
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
use crate::sys::file::{FileError, LineReader, ProcFile, access_exists, read_small_file};
use crate::sys::procfs::diskstats::{DiskStat, Diskstats, MAX_DISKS};
use crate::sys::procfs::loadavg::{self, Loadavg};
use crate::sys::procfs::meminfo::Meminfo;
use crate::sys::procfs::net_dev::{MAX_INTERFACES, NetDev, NetDevStat};
use crate::sys::procfs::stat::{CpuTimes, Stat};
use core::ffi::CStr;
use serde::Serialize;
use serde::ser::SerializeSeq;
use std::ffi::CString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

/// The files read, relative to the proc root, in the order of [`Paths`].
const FILES: [&str; 5] = ["stat", "meminfo", "loadavg", "diskstats", "net/dev"];

/// [`FILES`] under the proc root, kept open across cycles.
struct Files {
    stat: ProcFile,
    meminfo: ProcFile,
    loadavg: ProcFile,
    diskstats: ProcFile,
    net_dev: ProcFile,
}

impl Files {
    fn under(root: &Path) -> Files {
        let p = |name: &str| {
            // A root with an interior NUL gives an empty path, which then fails to open with
            // an error naming the file: never a panic.
            ProcFile::new(
                CString::new(root.join(name).into_os_string().into_vec()).unwrap_or_default(),
            )
        };
        Files {
            stat: p(FILES[0]),
            meminfo: p(FILES[1]),
            loadavg: p(FILES[2]),
            diskstats: p(FILES[3]),
            net_dev: p(FILES[4]),
        }
    }
}

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
    files: Files,
    /// Displayed names of the files, for errors (`/proc/stat`).
    names: [String; 5],
    reader: LineReader,
    prev: Box<Sample>,
    cur: Box<Sample>,
    /// (major, minor, is a partition), filled from /sys/dev/block as devices appear.
    partitions: heapless::Vec<(u32, u32, bool), PARTITION_CACHE>,
}

impl Sysstat {
    pub fn new(cfg: &config::Sysstat) -> Sysstat {
        Sysstat::with_proc_root(cfg, Path::new("/proc"))
    }

    /// Reads the files under `root` instead of /proc (tests use captured files).
    pub fn with_proc_root(cfg: &config::Sysstat, root: &Path) -> Sysstat {
        Sysstat {
            include_partitions: cfg.include_partitions,
            files: Files::under(root),
            names: FILES.map(|f| root.join(f).display().to_string()),
            reader: LineReader::new(),
            prev: Box::default(),
            cur: Box::default(),
            partitions: heapless::Vec::new(),
        }
    }

    /// Reads every source into `self.cur`, reporting each file that failed to `out` as
    /// `sysstat/<file>`; returns how many failed.
    fn read(&mut self, now: Now, out: Option<&mut Output<'_>>) -> usize {
        let cur = &mut *self.cur;
        cur.mono_ns = now.mono_ns;
        let reader = &mut self.reader;
        let mut failures: [Option<String>; 5] = Default::default();

        let stat = cur.stat.get_or_insert_with(Stat::default);
        stat.reset();
        if let Err(e) = reader
            .read_file_lines(&mut self.files.stat, stat)
            .and_then(|()| stat.finish().map_err(FileError::Parse))
        {
            failures[0] = Some(e.to_string());
            cur.stat = None;
        }

        let mem = cur.mem.get_or_insert_with(Meminfo::default);
        *mem = Meminfo::default();
        if let Err(e) = reader
            .read_file_lines(&mut self.files.meminfo, mem)
            .and_then(|()| mem.finish().map_err(FileError::Parse))
        {
            failures[1] = Some(e.to_string());
            cur.mem = None;
        }

        let mut small = [0u8; 256];
        cur.load = match read_small_file(&mut self.files.loadavg, &mut small) {
            Ok(bytes) => loadavg::parse(bytes)
                .map_err(|e| failures[2] = Some(e.to_string()))
                .ok(),
            Err(e) => {
                failures[2] = Some(e.to_string());
                None
            }
        };

        let disks = cur.disks.get_or_insert_with(Diskstats::default);
        disks.clear();
        if let Err(e) = reader.read_file_lines(&mut self.files.diskstats, disks) {
            failures[3] = Some(e.to_string());
            cur.disks = None;
        }

        let net = cur.net.get_or_insert_with(NetDev::default);
        net.clear();
        if let Err(e) = reader.read_file_lines(&mut self.files.net_dev, net) {
            failures[4] = Some(e.to_string());
            cur.net = None;
        }

        if let Some(out) = out {
            for (i, failure) in failures.iter().enumerate() {
                if let Some(msg) = failure {
                    out.error(
                        &format!("sysstat/{}", FILES[i]),
                        format_args!("{}: {msg}", self.names[i]),
                    );
                }
            }
            let skipped = [
                (
                    3,
                    cur.disks.as_ref().map_or(0, |d| d.skipped),
                    MAX_DISKS,
                    "devices",
                ),
                (
                    4,
                    cur.net.as_ref().map_or(0, |n| n.skipped),
                    MAX_INTERFACES,
                    "interfaces",
                ),
            ];
            for (i, n, cap, what) in skipped {
                if n > 0 {
                    out.error(
                        &format!("sysstat/{}", FILES[i]),
                        format_args!(
                            "{}: {n} {what} over the limit of {cap} (or with over-long names) were skipped",
                            self.names[i]
                        ),
                    );
                }
            }
        }
        failures.iter().flatten().count()
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
    if access_exists(with_file).is_ok() {
        return Some(true);
    }
    path.truncate(dir_len);
    path.push('\0').ok()?;
    let dir = CStr::from_bytes_with_nul(path.as_bytes()).ok()?;
    access_exists(dir).ok().map(|()| false)
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
            return Err(CollectError::Failed(
                "every /proc source failed (see the sysstat/ errors); is /proc mounted?".into(),
            ));
        }
        // Classify the devices before the JSON step borrows the samples.
        let mut keep = [false; MAX_DISKS];
        let disk_count = self.cur.disks.as_ref().map_or(0, |d| d.disks.len());
        for (i, kept) in keep.iter_mut().enumerate().take(disk_count) {
            // A copy (fixed size, no heap): `is_partition` needs `self` mutably.
            let Some(d) = self
                .cur
                .disks
                .as_ref()
                .and_then(|d| d.disks.get(i))
                .cloned()
            else {
                break;
            };
            *kept = !skipped_device(&d.name) && (self.include_partitions || !self.is_partition(&d));
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
        r.map_err(|e| CollectError::Failed(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tests_support::{OutputHarness, copy_dir};
    use crate::util::WallTime;

    fn fixture_root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/proc/vm-debian12")
    }

    fn at(secs: u64) -> Now {
        Now {
            mono_ns: secs * 1_000_000_000,
            wall: WallTime {
                secs: 1_772_366_400 + secs as i64,
                nanos: 0,
            },
        }
    }

    #[test]
    fn cpu_shares_sum_to_100_and_a_counter_going_down_is_null() {
        let a = CpuTimes {
            user: 100,
            system: 50,
            idle: 800,
            iowait: 50,
            ..CpuTimes::default()
        };
        let b = CpuTimes {
            user: 130,
            system: 60,
            idle: 850,
            iowait: 60,
            ..a
        };
        let s = cpu_shares(&a, &b).unwrap();
        assert_eq!(s[0], 30.0);
        assert_eq!(s[3], 50.0);
        assert!((s.iter().sum::<f64>() - 100.0).abs() < 0.05);
        assert_eq!(cpu_shares(&b, &a), None);
        assert_eq!(cpu_shares(&a, &a), None, "no time passed: unknown, not 0");
    }

    #[test]
    fn rates_are_null_on_reset_and_without_interval() {
        assert_eq!(rate(10, 30, Some(2.0), 1.0), Some(10.0));
        assert_eq!(rate(10, 30, Some(2.0), 512.0), Some(5120.0));
        assert_eq!(rate(30, 10, Some(2.0), 1.0), None);
        assert_eq!(rate(10, 30, None, 1.0), None);
    }

    #[test]
    fn partition_names() {
        for p in [
            "sda1",
            "vdb12",
            "xvda1",
            "hda3",
            "nvme0n1p1",
            "mmcblk0p2",
            "md0p1",
        ] {
            assert!(name_looks_like_partition(p), "{p}");
        }
        for d in [
            "sda", "vda", "nvme0n1", "mmcblk0", "md0", "dm-0", "sr0", "nbd0",
        ] {
            assert!(!name_looks_like_partition(d), "{d}");
        }
    }

    #[test]
    fn memory_uses_the_classic_definition() {
        let mut m = Meminfo::default();
        m.mem_total_kib = 16_383_000;
        m.mem_free_kib = 1_234_000;
        m.mem_available_kib = None;
        m.buffers_kib = 100_000;
        m.cached_kib = 9_000_000;
        m.swap_total_kib = 2_096_128;
        m.swap_free_kib = 2_096_128;
        let j = serde_json::to_value(memory_json(&m)).unwrap();
        assert_eq!(j["total_mb"], 15_999);
        assert_eq!(j["cached_mb"], 8886); // (9 000 000 + 100 000) / 1024, floored
        assert_eq!(j["used_mb"], (16_383_000 - 1_234_000 - 9_100_000) / 1024);
        assert!(j["available_mb"].is_null());
        assert_eq!(j["swap_used_mb"], 0);
    }

    #[test]
    fn element_from_captured_files_has_every_field() {
        let mut h = OutputHarness::new();
        let mut c = Sysstat::with_proc_root(&config::Config::default().sysstat, &fixture_root());
        c.baseline(at(0));
        c.collect(at(1), &mut h.output("sysstat")).unwrap();
        let v = h.single();
        assert_eq!(v["type"], "sysstat");
        assert_eq!(v["timestamp"], "2026-03-01T12:00:01Z");
        for k in [
            "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
        ] {
            // Same file twice: no CPU time passed, so the shares are unknown.
            assert!(v["cpu"][k].is_null(), "{k}");
        }
        assert_eq!(v["cpu"]["cores"], 2);
        assert!(v["cpu"]["load_1m"].is_f64());
        assert!(v["memory"]["total_mb"].as_u64().unwrap() > 0);
        let disks = v["disk_io"].as_array().unwrap();
        assert!(!disks.is_empty());
        for d in disks {
            let name = d["device"].as_str().unwrap();
            assert!(
                !name.starts_with("loop") && !name.starts_with("ram"),
                "{name}"
            );
            assert_eq!(d["read_ops_per_sec"], 0.0);
            assert_eq!(d["util_percent"], 0.0);
        }
        let nets = v["network"].as_array().unwrap();
        assert!(nets.iter().all(|n| n["interface"] != "lo"));
        assert!(h.errors.is_empty(), "{:?}", h.errors);
    }

    #[test]
    fn a_missing_or_malformed_file_nulls_its_part_and_names_the_file() {
        let dir = copy_dir(&fixture_root());
        std::fs::remove_file(dir.path().join("diskstats")).unwrap();
        std::fs::write(dir.path().join("meminfo"), b"garbage without numbers\n").unwrap();
        std::fs::write(dir.path().join("loadavg"), b"\xff\xfe").unwrap();
        let mut h = OutputHarness::new();
        let mut c = Sysstat::with_proc_root(&config::Config::default().sysstat, dir.path());
        c.baseline(at(0));
        c.collect(at(1), &mut h.output("sysstat")).unwrap();
        let v = h.single();
        assert!(v["memory"].is_null());
        assert_eq!(v["disk_io"], serde_json::json!([]));
        assert!(v["cpu"]["load_1m"].is_null());
        assert_eq!(v["cpu"]["cores"], 2, "the readable files still count");
        let keys: Vec<&str> = h.errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["sysstat/meminfo", "sysstat/loadavg", "sysstat/diskstats"]
        );
        for (_, msg) in &h.errors {
            assert!(msg.starts_with(&dir.path().display().to_string()), "{msg}");
            assert!(!msg.contains('\n'));
        }
    }

    #[test]
    fn every_file_missing_fails_the_plugin_and_stores_nothing() {
        let dir = tempdir();
        let mut h = OutputHarness::new();
        let mut c = Sysstat::with_proc_root(&config::Config::default().sysstat, dir.path());
        c.baseline(at(0));
        let err = c.collect(at(1), &mut h.output("sysstat")).unwrap_err();
        assert!(
            err.to_string().contains("every /proc source failed"),
            "{err}"
        );
        assert!(h.buffer.is_empty());
        assert_eq!(h.errors.len(), 5);
    }

    #[test]
    fn rates_over_two_real_samples_of_this_machine() {
        let mut h = OutputHarness::new();
        let mut c = Sysstat::new(&config::Config::default().sysstat);
        c.baseline(Now::read());
        std::thread::sleep(std::time::Duration::from_millis(50));
        c.collect(Now::read(), &mut h.output("sysstat")).unwrap();
        let v = h.single();
        let sum: f64 = [
            "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
        ]
        .iter()
        .map(|k| v["cpu"][k].as_f64().unwrap_or(0.0))
        .sum();
        assert!(
            sum == 0.0 || (sum - 100.0).abs() < 0.1,
            "shares sum to {sum}"
        );
        for d in v["disk_io"].as_array().unwrap() {
            let u = d["util_percent"].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&u));
        }
    }

    fn tempdir() -> crate::collect::tests_support::TempDir {
        crate::collect::tests_support::TempDir::new()
    }
}
