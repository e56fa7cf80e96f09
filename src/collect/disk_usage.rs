//! `disk_usage` (docs/metrics.md, `disk_usage`): filesystems from /proc/self/mountinfo and `statfs`.
//!
//! mountinfo is read only when the kernel says the mount table changed (`poll` on the kept-open
//! file reports `POLLPRI`), and at the first collection; the mounts it keeps are remembered in
//! a bounded table ([`KEPT_BYTES`] of paths, [`MAX_DEVICES`] mounts) and `statfs` runs on each
//! of them every collection. A steady host therefore pays one `poll` and one `statfs` per
//! filesystem per collection, not the kernel's generation of its whole mount table. It is
//! streamed line by line through the fixed line buffer, so a container host with thousands of
//! mounts costs no more memory than the mounts kept.
//!
//! Kept: sources that are block devices (`/dev/…`) plus the fstypes of `include_fstypes` (an
//! allowlist: statfs cannot be bounded in time and hangs on a dead network mount, so network and
//! FUSE filesystems are statted only when the user asks). A device (major:minor) mounted several
//! times (bind mounts) is reported once, at its first mount point that can be statted. A mount
//! that cannot be statted is reported in `collector_health.errors` as `disk_usage/<mount point>`
//! and skipped.

use super::{CollectError, Collector, Now, Output, round2};
use crate::config;
use crate::sys::file::{FileError, Line, LineReader, ProcFile};
use crate::sys::procfs::mountinfo::{self, MOUNT_PATH_CAP, MountInfo};
use crate::sys::statfs::{FsUsage, statfs};
use core::ffi::CStr;
use core::ops::Range;
use serde::Serialize;

/// Devices remembered per collection for bind-mount de-duplication, and mounts kept.
pub const MAX_DEVICES: usize = 4096;

/// Bytes of mount points, sources and fstypes kept between reads of mountinfo. Past it, the
/// further bind mounts of a device already kept are dropped first (it is reported at its
/// first mount point anyway), then other mounts, counted in an error.
pub const KEPT_BYTES: usize = 256 * 1024;

const GIB: u64 = 1 << 30;

/// A mount kept from mountinfo: ranges into [`DiskUsage::names`].
struct Kept {
    dev: u64,
    read_only: bool,
    /// The decoded mount point; `names[mount.end]` is its NUL.
    mount: Range<usize>,
    source: Range<usize>,
    fstype: Range<usize>,
}

pub struct DiskUsage {
    include_fstypes: Vec<String>,
    /// `<proc root>/self/mountinfo`, kept open.
    mountinfo: ProcFile,
    mountinfo_name: String,
    reader: LineReader,
    /// The mounts kept at the last read of mountinfo, in its order.
    kept: Vec<Kept>,
    /// Their names, back to back.
    names: Vec<u8>,
    /// Whether `kept` reflects a complete read (false: read mountinfo at the next collection).
    loaded: bool,
    /// Lines of the last read that could not be parsed, and the first one's story.
    bad_lines: usize,
    first_bad: Option<String>,
    /// Mounts of the last read that did not fit [`KEPT_BYTES`] or [`MAX_DEVICES`].
    not_kept: usize,
    /// major:minor of the devices reported in this collection.
    seen: Box<heapless::Vec<u64, MAX_DEVICES>>,
    /// Decoded mount point (scratch of a read).
    mount: Box<[u8; MOUNT_PATH_CAP]>,
    /// Decoded source (scratch of a read).
    source: Box<[u8; MOUNT_PATH_CAP]>,
    /// The element being written.
    json: Vec<u8>,
}

impl DiskUsage {
    pub fn new(cfg: &config::DiskUsage) -> DiskUsage {
        DiskUsage::with_proc_root(cfg, std::path::Path::new("/proc"))
    }

    /// Reads `<root>/self/mountinfo` instead of /proc's (tests use captured files).
    pub fn with_proc_root(cfg: &config::DiskUsage, root: &std::path::Path) -> DiskUsage {
        use std::os::unix::ffi::OsStringExt;
        let path = root.join("self/mountinfo");
        DiskUsage {
            include_fstypes: cfg.include_fstypes.clone(),
            mountinfo_name: path.display().to_string(),
            mountinfo: ProcFile::new(
                std::ffi::CString::new(path.into_os_string().into_vec()).unwrap_or_default(),
            ),
            reader: LineReader::new(),
            kept: Vec::new(),
            names: Vec::new(),
            loaded: false,
            bad_lines: 0,
            first_bad: None,
            not_kept: 0,
            seen: Box::default(),
            mount: Box::new([0; MOUNT_PATH_CAP]),
            source: Box::new([0; MOUNT_PATH_CAP]),
            json: Vec::new(),
        }
    }

    /// Reads mountinfo into `kept` (the mounts [`wanted`], in order). On a read error the
    /// table is left incomplete and marked so: the next collection reads again.
    fn load(&mut self) -> Result<(), FileError<core::convert::Infallible>> {
        let DiskUsage {
            include_fstypes,
            mountinfo: file,
            reader,
            kept,
            names,
            loaded,
            bad_lines,
            first_bad,
            not_kept,
            mount,
            source,
            ..
        } = self;
        kept.clear();
        names.clear();
        *loaded = false;
        *bad_lines = 0;
        *first_bad = None;
        *not_kept = 0;
        let mut line_no = 0usize;
        reader.for_each_file_line(file, |line| {
            line_no += 1;
            let mut bad = |story: String| {
                *bad_lines += 1;
                first_bad.get_or_insert(story);
            };
            let raw = match line {
                Line::Full(l) => l,
                Line::Long(_) => {
                    bad(format!(
                        "line {line_no}: longer than the read buffer, skipped"
                    ));
                    return Ok(());
                }
            };
            let m = match mountinfo::parse_line(raw) {
                Ok(m) => m,
                Err(e) => {
                    bad(format!("line {line_no}: {e}"));
                    return Ok(());
                }
            };
            if !wanted(include_fstypes, &m) {
                return Ok(());
            }
            let mount_point = match mountinfo::unescape(m.mount_point, &mut mount[..]) {
                Ok(p) => p,
                Err(e) => {
                    bad(format!("line {line_no}: {e}"));
                    return Ok(());
                }
            };
            let src = mountinfo::unescape(m.source, &mut source[..]).unwrap_or(&[]);
            let dev = (u64::from(m.major) << 32) | u64::from(m.minor);
            let need = mount_point.len() + 1 + src.len() + m.fstype.len();
            if names.len() + need > KEPT_BYTES || kept.len() >= MAX_DEVICES {
                // Another bind mount of a device already kept adds nothing but a fallback.
                if !kept.iter().any(|k| k.dev == dev) {
                    *not_kept += 1;
                }
                return Ok(());
            }
            let push = |names: &mut Vec<u8>, bytes: &[u8]| {
                let start = names.len();
                names.extend_from_slice(bytes);
                start..names.len()
            };
            let mount_range = push(names, mount_point);
            names.push(0);
            let source_range = push(names, src);
            let fstype_range = push(names, m.fstype);
            kept.push(Kept {
                dev,
                read_only: m.read_only(),
                mount: mount_range,
                source: source_range,
                fstype: fstype_range,
            });
            Ok::<(), core::convert::Infallible>(())
        })?;
        *loaded = true;
        Ok(())
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
        if !self.loaded || self.mountinfo.changed() {
            match self.load() {
                Ok(()) => {}
                Err(FileError::Parse(never)) => match never {},
                Err(e) => {
                    return Err(CollectError::Failed(format!(
                        "{}: {e}",
                        self.mountinfo_name
                    )));
                }
            }
        }
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
        for k in &self.kept {
            if self.seen.contains(&k.dev) {
                continue;
            }
            let name = |r: &Range<usize>| text(self.names.get(r.clone()).unwrap_or(&[]));
            let mount_text = name(&k.mount);
            let with_nul = self.names.get(k.mount.start..=k.mount.end).unwrap_or(&[]);
            let Ok(path) = CStr::from_bytes_with_nul(with_nul) else {
                // A NUL inside a decoded path (\000): not a path statfs can take.
                out.error(
                    &format!("disk_usage/{mount_text}"),
                    format_args!("{mount_text}: mount point contains a NUL byte; skipped"),
                );
                continue;
            };
            let usage = match statfs(path) {
                Ok(u) => u,
                Err(e) => {
                    out.error(
                        &format!("disk_usage/{mount_text}"),
                        format_args!("statfs {mount_text}: {e}; skipped"),
                    );
                    continue;
                }
            };
            let _ = self.seen.push(k.dev);
            if count > 0 {
                json.push(b',');
            }
            let (source, fstype) = (name(&k.source), name(&k.fstype));
            let fs = fs_json(&source, &mount_text, &fstype, &usage, k.read_only);
            // unwrap: serializing plain fields into a Vec cannot fail.
            serde_json::to_writer(crate::collect::JsonWriter(&mut json), &fs).unwrap();
            count += 1;
        }
        json.extend_from_slice(b"]}");
        if self.bad_lines > 0 {
            out.error(
                "disk_usage/self/mountinfo",
                format_args!(
                    "{}: {} unreadable lines skipped (first: {})",
                    self.mountinfo_name,
                    self.bad_lines,
                    self.first_bad.as_deref().unwrap_or("?")
                ),
            );
        }
        if self.not_kept > 0 {
            out.error(
                "disk_usage/kept",
                format_args!(
                    "{}: {} mounts not reported: more than {MAX_DEVICES} mounts or {} KiB of names kept; \
                     narrow include_fstypes",
                    self.mountinfo_name,
                    self.not_kept,
                    KEPT_BYTES / 1024
                ),
            );
        }
        let r = out
            .emit_raw(0, &json)
            .map_err(|e| CollectError::Failed(e.to_string()));
        self.json = json;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tests_support::{OutputHarness, TempDir};

    fn now() -> Now {
        Now {
            mono_ns: 1,
            wall: crate::util::WallTime {
                secs: 1_772_366_400,
                nanos: 0,
            },
        }
    }

    /// A proc root whose self/mountinfo is `text`.
    fn proc_with_mountinfo(text: &str) -> TempDir {
        let t = TempDir::new();
        std::fs::create_dir_all(t.path().join("self")).unwrap();
        std::fs::write(t.path().join("self/mountinfo"), text).unwrap();
        t
    }

    #[test]
    fn keeps_block_devices_once_decodes_escapes_and_reports_unreadable_mounts() {
        let tmp = TempDir::new();
        let spaced = tmp.path().join("with space");
        std::fs::create_dir_all(&spaced).unwrap();
        let spaced_escaped = spaced.display().to_string().replace(' ', "\\040");
        let text = format!(
            "1 0 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
             2 1 0:22 / /proc rw - proc proc rw\n\
             3 1 0:30 / /dev/shm rw - tmpfs tmpfs rw\n\
             4 1 254:0 /srv /srv-bind rw - ext4 /dev/vda rw\n\
             5 1 8:1 / {spaced_escaped} ro,noatime - xfs /dev/sdb1 ro,attr2\n\
             6 1 8:2 / /definitely/not/mounted rw - ext4 /dev/sdc1 rw\n\
             7 1 0:50 / /mnt/nfs rw - nfs4 server:/export rw\n\
             this line is garbage\n"
        );
        let root = proc_with_mountinfo(&text);
        let mut h = OutputHarness::new();
        let cfg = crate::config::Config::default().disk_usage;
        let mut c = DiskUsage::with_proc_root(&cfg, root.path());
        c.collect(now(), &mut h.output("disk_usage")).unwrap();
        let v = h.single();
        assert_eq!(v["type"], "disk_usage");
        let fs = v["filesystems"].as_array().unwrap();
        let mounts: Vec<&str> = fs.iter().map(|f| f["mount"].as_str().unwrap()).collect();
        // /srv-bind is the same device as /: reported once, at its first mount point.
        assert_eq!(mounts, ["/", spaced.to_str().unwrap()]);
        assert_eq!(fs[0]["device"], "/dev/vda");
        assert_eq!(fs[0]["fstype"], "ext4");
        assert!(fs[0]["total_bytes"].as_u64().unwrap() > 0);
        assert_eq!(fs[1]["read_only"], true);
        let keys: Vec<&str> = h.errors.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "disk_usage//definitely/not/mounted",
                "disk_usage/self/mountinfo"
            ]
        );
        assert!(
            h.errors[0].1.contains("statfs /definitely/not/mounted"),
            "{:?}",
            h.errors
        );
        assert!(
            h.errors[1].1.contains("1 unreadable lines skipped"),
            "{:?}",
            h.errors
        );
    }

    #[test]
    fn listed_fstypes_are_statted_too() {
        let root = proc_with_mountinfo("1 0 0:30 / / rw - tmpfs tmpfs rw\n");
        let mut h = OutputHarness::new();
        let mut cfg = crate::config::Config::default().disk_usage;
        cfg.include_fstypes = vec!["tmpfs".into()];
        let mut c = DiskUsage::with_proc_root(&cfg, root.path());
        c.collect(now(), &mut h.output("disk_usage")).unwrap();
        assert_eq!(h.single()["filesystems"][0]["fstype"], "tmpfs");
    }

    #[test]
    fn a_missing_mountinfo_fails_the_plugin_with_the_file_named() {
        let root = TempDir::new();
        let mut h = OutputHarness::new();
        let cfg = crate::config::Config::default().disk_usage;
        let mut c = DiskUsage::with_proc_root(&cfg, root.path());
        let err = c.collect(now(), &mut h.output("disk_usage")).unwrap_err();
        assert!(err.to_string().contains("self/mountinfo"), "{err}");
        assert!(h.buffer.is_empty());
    }

    #[test]
    fn this_machine() {
        let mut h = OutputHarness::new();
        let mut c = DiskUsage::new(&crate::config::Config::default().disk_usage);
        c.collect(now(), &mut h.output("disk_usage")).unwrap();
        let v = h.single();
        assert!(!v["filesystems"].as_array().unwrap().is_empty());
    }

    /// mountinfo is read once, then only when the kernel reports a change: a captured file
    /// (a regular file never reports one) rewritten after the first collection is not read
    /// again, while statfs still runs every collection.
    #[test]
    fn mountinfo_is_not_read_again_without_a_change() {
        let root = proc_with_mountinfo("1 0 254:0 / / rw - ext4 /dev/vda rw\n");
        let mut c =
            DiskUsage::with_proc_root(&crate::config::Config::default().disk_usage, root.path());
        let mut h = OutputHarness::new();
        c.collect(now(), &mut h.output("disk_usage")).unwrap();
        std::fs::write(
            root.path().join("self/mountinfo"),
            "1 0 254:0 / / rw - ext4 /dev/vda rw\n2 1 8:1 / /tmp rw - ext4 /dev/sdb1 rw\n",
        )
        .unwrap();
        let mut h = OutputHarness::new();
        c.collect(now(), &mut h.output("disk_usage")).unwrap();
        let v = h.single();
        assert_eq!(v["filesystems"].as_array().unwrap().len(), 1, "{v}");
    }

    /// The real thing: a tmpfs mounted (tests run as root) after the first collection appears
    /// in the next one, because the kept-open /proc/self/mountinfo reports POLLPRI; unmounted,
    /// it goes. Without a change, the second collection reuses the table.
    #[test]
    fn a_mount_and_an_unmount_are_seen_through_pollpri() {
        struct Mounted(std::path::PathBuf);
        impl Drop for Mounted {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg(&self.0).status();
            }
        }
        let tmp = TempDir::new();
        let point = tmp.path().join("pollpri tmpfs");
        std::fs::create_dir_all(&point).unwrap();
        let mut cfg = crate::config::Config::default().disk_usage;
        cfg.include_fstypes = vec!["tmpfs".into()];
        let mut c = DiskUsage::new(&cfg);
        let mounts = |c: &mut DiskUsage| -> Vec<String> {
            let mut h = OutputHarness::new();
            c.collect(now(), &mut h.output("disk_usage")).unwrap();
            h.single()["filesystems"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["mount"].as_str().unwrap().to_string())
                .collect()
        };
        let want = point.to_str().unwrap().to_string();
        assert!(!mounts(&mut c).contains(&want));
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "pollpri-test"])
            .arg(&point)
            .status()
            .unwrap();
        assert!(status.success(), "mount (tests run as root)");
        let guard = Mounted(point.clone());
        assert!(mounts(&mut c).contains(&want));
        assert!(mounts(&mut c).contains(&want), "kept without a change");
        drop(guard);
        assert!(!mounts(&mut c).contains(&want));
    }

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
