//! `disk_usage` (metrics.md §2): filesystems from /proc/self/mountinfo and `statfs`.
//!
//! mountinfo is streamed line by line through the fixed line buffer; each kept mount is
//! statted and written into the element as it comes, so a container host with thousands of
//! mounts costs no more memory than one with ten.
//!
//! Kept: sources that are block devices (`/dev/…`) plus the fstypes of `include_fstypes` (an
//! allowlist: statfs cannot be bounded in time and hangs on a dead network mount, so network and
//! FUSE filesystems are statted only when the user asks). A device (major:minor) mounted several
//! times (bind mounts) is reported once, at its first mount point. A mount that cannot be
//! statted is reported in `collector_health.errors` as `disk_usage/<mount point>` and skipped.

use super::{CollectError, Collector, Now, Output, round2};
use crate::config;
use crate::sys::file::{FileError, Line, LineReader};
use crate::sys::procfs::mountinfo::{self, MOUNT_PATH_CAP, MountInfo};
use crate::sys::statfs::{FsUsage, statfs};
use core::ffi::CStr;
use serde::Serialize;

const MOUNTINFO: &CStr = c"/proc/self/mountinfo";

/// Devices remembered per collection for bind-mount de-duplication.
pub const MAX_DEVICES: usize = 4096;

const GIB: u64 = 1 << 30;

pub struct DiskUsage {
    include_fstypes: Vec<String>,
    reader: LineReader,
    /// major:minor of the devices reported in this collection.
    seen: Box<heapless::Vec<u64, MAX_DEVICES>>,
    /// Decoded mount point, NUL-terminated for statfs.
    mount: Box<[u8; MOUNT_PATH_CAP + 1]>,
    /// Decoded source.
    source: Box<[u8; MOUNT_PATH_CAP]>,
    /// The element being written.
    json: Vec<u8>,
}

impl DiskUsage {
    pub fn new(cfg: &config::DiskUsage) -> DiskUsage {
        DiskUsage {
            include_fstypes: cfg.include_fstypes.clone(),
            reader: LineReader::new(),
            seen: Box::default(),
            mount: Box::new([0; MOUNT_PATH_CAP + 1]),
            source: Box::new([0; MOUNT_PATH_CAP]),
            json: Vec::new(),
        }
    }
}

/// Whether a mount is reported: block-device sources, or an fstype the user listed.
fn wanted(include_fstypes: &[String], m: &MountInfo<'_>) -> bool {
    m.source.starts_with(b"/dev/") || include_fstypes.iter().any(|t| t.as_bytes() == m.fstype)
}

#[derive(Serialize)]
struct FsJson<'a> {
    device: &'a str,
    mount: &'a str,
    fstype: &'a str,
    total_gb: u64,
    used_gb: u64,
    free_gb: u64,
    percent_used: Option<f64>,
    total_bytes: u64,
    used_bytes: u64,
    available_bytes: u64,
    inodes_total: u64,
    inodes_used: u64,
    inodes_percent_used: Option<f64>,
    read_only: bool,
}

/// The JSON of one filesystem, `df`'s arithmetic: used = total − free (root's free), percent
/// = used / (used + available) since `available` is what an unprivileged user can write.
fn fs_json<'a>(
    device: &'a str,
    mount: &'a str,
    fstype: &'a str,
    u: &FsUsage,
    ro: bool,
) -> FsJson<'a> {
    let used = u.total_bytes.saturating_sub(u.free_bytes);
    let denom = used.saturating_add(u.available_bytes);
    let inodes_used = u.inodes_total.saturating_sub(u.inodes_free);
    FsJson {
        device,
        mount,
        fstype,
        total_gb: u.total_bytes / GIB,
        used_gb: used / GIB,
        free_gb: u.available_bytes / GIB,
        percent_used: (denom > 0).then(|| round2(used as f64 * 100.0 / denom as f64)),
        total_bytes: u.total_bytes,
        used_bytes: used,
        available_bytes: u.available_bytes,
        inodes_total: u.inodes_total,
        inodes_used,
        // Some filesystems (btrfs, vfat) report no inode counts: unknown, not 0 %.
        inodes_percent_used: (u.inodes_total > 0)
            .then(|| round2(inodes_used as f64 * 100.0 / u.inodes_total as f64)),
        read_only: ro,
    }
}

/// Bytes as text for JSON: mount points and sources are bytes; invalid UTF-8 is replaced
/// rather than dropped (rare, and the mount is still worth reporting).
fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

impl Collector for DiskUsage {
    fn name(&self) -> &'static str {
        "disk_usage"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        self.seen.clear();
        let mut json = core::mem::take(&mut self.json);
        json.clear();
        json.extend_from_slice(b"{\"type\":\"disk_usage\",\"timestamp\":\"");
        {
            use std::io::Write;
            let _ = write!(json, "{}", now.wall.rfc3339());
        }
        json.extend_from_slice(b"\",\"filesystems\":[");
        let mut count = 0usize;
        let mut bad_lines = 0usize;
        let mut first_bad: Option<String> = None;
        let mut line_no = 0usize;

        let DiskUsage {
            include_fstypes,
            reader,
            seen,
            mount,
            source,
            ..
        } = self;
        let result = reader.for_each_line(MOUNTINFO, |line| {
            line_no += 1;
            let raw = match line {
                Line::Full(l) => l,
                Line::Long(_) => {
                    bad_lines += 1;
                    first_bad.get_or_insert_with(|| {
                        format!("line {line_no}: longer than the read buffer, skipped")
                    });
                    return Ok::<(), ()>(());
                }
            };
            let m = match mountinfo::parse_line(raw) {
                Ok(m) => m,
                Err(e) => {
                    bad_lines += 1;
                    first_bad.get_or_insert_with(|| format!("line {line_no}: {e}"));
                    return Ok(());
                }
            };
            if !wanted(include_fstypes, &m) {
                return Ok(());
            }
            let dev = (u64::from(m.major) << 32) | u64::from(m.minor);
            if seen.contains(&dev) {
                return Ok(());
            }
            let mount_len = match mountinfo::unescape(m.mount_point, &mut mount[..MOUNT_PATH_CAP]) {
                Ok(s) => s.len(),
                Err(e) => {
                    bad_lines += 1;
                    first_bad.get_or_insert_with(|| format!("line {line_no}: {e}"));
                    return Ok(());
                }
            };
            mount[mount_len] = 0;
            let mount_text = text(&mount[..mount_len]);
            let Ok(path) = CStr::from_bytes_with_nul(&mount[..=mount_len]) else {
                // A NUL inside a decoded path (\000): not a path statfs can take.
                out.error(
                    &format!("disk_usage/{mount_text}"),
                    format_args!("{mount_text}: mount point contains a NUL byte; skipped"),
                );
                return Ok(());
            };
            let usage = match statfs(path) {
                Ok(u) => u,
                Err(e) => {
                    out.error(
                        &format!("disk_usage/{mount_text}"),
                        format_args!("statfs {mount_text}: {e}; skipped"),
                    );
                    return Ok(());
                }
            };
            let _ = seen.push(dev);
            let source_len = mountinfo::unescape(m.source, &mut source[..])
                .map(|s| s.len())
                .unwrap_or(0);
            let source = text(&source[..source_len]);
            let fstype = text(m.fstype);
            if count > 0 {
                json.push(b',');
            }
            let fs = fs_json(&source, &mount_text, &fstype, &usage, m.read_only());
            // unwrap: serializing plain fields into a Vec cannot fail.
            serde_json::to_writer(&mut json, &fs).unwrap();
            count += 1;
            Ok(())
        });
        json.extend_from_slice(b"]}");
        if bad_lines > 0 {
            out.error(
                "disk_usage/proc/self/mountinfo",
                format_args!(
                    "/proc/self/mountinfo: {bad_lines} unreadable lines skipped (first: {})",
                    first_bad.as_deref().unwrap_or("?")
                ),
            );
        }
        let r = match result {
            Ok(()) => out
                .emit_raw(0, &json)
                .map_err(|e| CollectError(e.to_string())),
            Err(FileError::Parse(())) => Ok(()),
            Err(e) => Err(CollectError(format!("/proc/self/mountinfo: {e}"))),
        };
        self.json = json;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_arithmetic() {
        let u = FsUsage {
            total_bytes: 100 * GIB,
            free_bytes: 55 * GIB,
            available_bytes: 50 * GIB,
            inodes_total: 1000,
            inodes_free: 750,
        };
        let j = serde_json::to_value(fs_json("/dev/sda1", "/", "ext4", &u, false)).unwrap();
        assert_eq!(j["total_gb"], 100);
        assert_eq!(j["used_gb"], 45);
        assert_eq!(j["free_gb"], 50);
        assert_eq!(j["used_bytes"], 45 * GIB);
        // 45 / (45 + 50)
        assert_eq!(j["percent_used"], 47.37);
        assert_eq!(j["inodes_used"], 250);
        assert_eq!(j["inodes_percent_used"], 25.0);
        assert_eq!(j["read_only"], false);
    }

    #[test]
    fn no_inode_counts_is_null_not_zero() {
        let u = FsUsage {
            total_bytes: 0,
            free_bytes: 0,
            available_bytes: 0,
            inodes_total: 0,
            inodes_free: 0,
        };
        let j = serde_json::to_value(fs_json("/dev/x", "/x", "btrfs", &u, true)).unwrap();
        assert!(j["inodes_percent_used"].is_null());
        assert!(j["percent_used"].is_null());
        assert_eq!(j["read_only"], true);
    }
}
