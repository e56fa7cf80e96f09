//! `/proc/diskstats`: I/O counters of every block device and partition (proc(5),
//! Documentation/admin-guide/iostats.rst).
//!
//! What this does: read each line's device numbers, name and the counters sysstat reports into
//! a fixed [`heapless::Vec`]. What it does not do: decide which devices are whole disks, skip
//! `loop*`/`ram*`/`zram*`, or compute rates (the sysstat collector does), nor keep the discard
//! and flush counters.
//!
//! Formats, by number of whitespace-separated fields on a line:
//! - 14: major minor name + 11 counters (all kernels since 2.6);
//! - 18: + 4 discard counters (4.18); 20: + 2 flush counters (5.5);
//! - 7: partitions on kernels 2.6.0–2.6.24: major minor name reads sectors_read writes
//!   sectors_written; the other counters are 0 and `io_ms`/`weighted_io_ms` are `None`.
//!
//! Any other count is an error naming the line. Sectors are 512 bytes whatever the device's
//! block size. More than [`MAX_DISKS`] devices, or a name longer than [`DISK_NAME_CAP`] bytes,
//! are counted in [`Diskstats::skipped`], never dropped silently.

use core::fmt;

use super::{LineParser, fields, parse_u32, parse_u64};

/// Most devices kept from one read.
pub const MAX_DISKS: usize = 512;
/// Longest device name kept, in bytes.
pub const DISK_NAME_CAP: usize = 32;

/// Most fields on a line (the 5.5 format).
const MAX_FIELDS: usize = 20;

/// One line of /proc/diskstats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStat {
    pub major: u32,
    pub minor: u32,
    pub name: heapless::String<DISK_NAME_CAP>,
    /// Reads completed.
    pub reads: u64,
    pub reads_merged: u64,
    /// 512-byte sectors read.
    pub sectors_read: u64,
    /// Milliseconds spent reading.
    pub read_ms: u64,
    /// Writes completed.
    pub writes: u64,
    pub writes_merged: u64,
    /// 512-byte sectors written.
    pub sectors_written: u64,
    /// Milliseconds spent writing.
    pub write_ms: u64,
    /// I/Os currently in progress (the only counter that goes down).
    pub in_progress: u64,
    /// Milliseconds spent doing I/O; `None` in the 7-field partition format.
    pub io_ms: Option<u64>,
    /// Weighted milliseconds spent doing I/O; `None` in the 7-field partition format.
    pub weighted_io_ms: Option<u64>,
}

/// The devices of one read of /proc/diskstats.
#[derive(Debug, Default)]
pub struct Diskstats {
    pub disks: heapless::Vec<DiskStat, MAX_DISKS>,
    /// Devices beyond [`MAX_DISKS`] or with a name longer than [`DISK_NAME_CAP`].
    pub skipped: u32,
    /// Lines fed so far, for error messages.
    line_no: u32,
}

/// Why /proc/diskstats could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskstatsError {
    /// A field count other than 7, 14, 18 or 20.
    Fields { line: u32, found: usize },
    /// A field that is not a number or does not fit its type.
    Number { line: u32 },
    /// A device name that is not UTF-8.
    Name { line: u32 },
    /// A line longer than the read buffer.
    LongLine { line: u32 },
}

impl fmt::Display for DiskstatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskstatsError::Fields { line, found } => {
                write!(
                    f,
                    "line {line}: expected 7, 14, 18 or 20 fields, found {found}"
                )
            }
            DiskstatsError::Number { line } => write!(f, "line {line}: bad number"),
            DiskstatsError::Name { line } => write!(f, "line {line}: device name is not utf-8"),
            DiskstatsError::LongLine { line } => {
                write!(f, "line {line}: longer than the read buffer")
            }
        }
    }
}

impl Diskstats {
    /// Parses a whole /proc/diskstats.
    pub fn parse(input: &[u8]) -> Result<Diskstats, DiskstatsError> {
        let mut d = Diskstats::default();
        super::feed_all(&mut d, input)?;
        Ok(d)
    }

    /// Forgets everything, to parse the file again.
    pub fn clear(&mut self) {
        self.disks.clear();
        self.skipped = 0;
        self.line_no = 0;
    }
}

impl LineParser for Diskstats {
    type Error = DiskstatsError;

    fn line(&mut self, line: &[u8]) -> Result<(), DiskstatsError> {
        self.line_no = self.line_no.saturating_add(1);
        let ln = self.line_no;
        let mut f: [&[u8]; MAX_FIELDS] = [&[]; MAX_FIELDS];
        let mut found = 0usize;
        for field in fields(line) {
            if let Some(slot) = f.get_mut(found) {
                *slot = field;
            }
            found += 1;
        }
        if found == 0 {
            return Ok(());
        }
        if !matches!(found, 7 | 14 | 18 | 20) {
            return Err(DiskstatsError::Fields { line: ln, found });
        }
        let num_err = DiskstatsError::Number { line: ln };
        let [major, minor, name, rest @ ..] = f;
        let major = parse_u32(major).ok_or(num_err)?;
        let minor = parse_u32(minor).ok_or(num_err)?;
        let name = core::str::from_utf8(name).map_err(|_| DiskstatsError::Name { line: ln })?;
        // Validate every number, kept or not, so a corrupt line is never half-used.
        let mut n = [0u64; MAX_FIELDS - 3];
        for (slot, field) in n.iter_mut().zip(rest.iter().take(found - 3)) {
            *slot = parse_u64(field).ok_or(num_err)?;
        }
        let disk = if found == 7 {
            let [reads, sectors_read, writes, sectors_written, ..] = n;
            DiskStat {
                major,
                minor,
                name: heapless::String::new(),
                reads,
                reads_merged: 0,
                sectors_read,
                read_ms: 0,
                writes,
                writes_merged: 0,
                sectors_written,
                write_ms: 0,
                in_progress: 0,
                io_ms: None,
                weighted_io_ms: None,
            }
        } else {
            let [
                reads,
                reads_merged,
                sectors_read,
                read_ms,
                writes,
                writes_merged,
                sectors_written,
                write_ms,
                in_progress,
                io_ms,
                weighted_io_ms,
                ..,
            ] = n;
            DiskStat {
                major,
                minor,
                name: heapless::String::new(),
                reads,
                reads_merged,
                sectors_read,
                read_ms,
                writes,
                writes_merged,
                sectors_written,
                write_ms,
                in_progress,
                io_ms: Some(io_ms),
                weighted_io_ms: Some(weighted_io_ms),
            }
        };
        let mut disk = disk;
        if disk.name.push_str(name).is_err() || self.disks.push(disk).is_err() {
            self.skipped = self.skipped.saturating_add(1);
        }
        Ok(())
    }

    fn long_line(&mut self, _prefix: &[u8]) -> Result<(), DiskstatsError> {
        self.line_no = self.line_no.saturating_add(1);
        Err(DiskstatsError::LongLine { line: self.line_no })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &[u8] = include_bytes!("../../../fixtures/proc/vm-debian12/diskstats");
    const FORMATS: &[u8] = include_bytes!("../../../fixtures/proc/synthetic/diskstats-formats");

    #[test]
    fn real_capture() {
        let d = Diskstats::parse(REAL).unwrap();
        assert_eq!(d.skipped, 0);
        assert_eq!(d.disks.len(), 10);
        assert_eq!(d.disks[0].name, "loop0");
        let vda = d.disks.iter().find(|d| d.name == "vda").unwrap();
        assert_eq!(
            *vda,
            DiskStat {
                major: 254,
                minor: 0,
                name: heapless::String::try_from("vda").unwrap(),
                reads: 35359,
                reads_merged: 5164,
                sectors_read: 2511906,
                read_ms: 37082,
                writes: 3088,
                writes_merged: 19543,
                sectors_written: 2630664,
                write_ms: 13763,
                in_progress: 0,
                io_ms: Some(7484),
                weighted_io_ms: Some(51425),
            }
        );
    }

    #[test]
    fn every_format() {
        let d = Diskstats::parse(FORMATS).unwrap();
        assert_eq!(d.skipped, 1, "the 33-byte name");
        let by_name = |n: &str| d.disks.iter().find(|d| d.name == n).unwrap();
        // 14 fields (kernel 2.6–4.17).
        let sda = by_name("sda");
        assert_eq!((sda.major, sda.minor), (8, 0));
        assert_eq!(sda.reads, 1001);
        assert_eq!(sda.weighted_io_ms, Some(1011));
        assert_eq!(sda.in_progress, 1009);
        // 18 fields (4.18+).
        let nvme = by_name("nvme0n1");
        assert_eq!(nvme.sectors_written, 2007);
        assert_eq!(nvme.io_ms, Some(2010));
        // 20 fields (5.5+).
        let dm = by_name("dm-0");
        assert_eq!((dm.major, dm.minor), (253, 0));
        assert_eq!(dm.write_ms, 3008);
        assert_eq!(dm.weighted_io_ms, Some(3011));
        // 7 fields: an old partition line.
        let part = by_name("hda1");
        assert_eq!(
            *part,
            DiskStat {
                major: 3,
                minor: 1,
                name: heapless::String::try_from("hda1").unwrap(),
                reads: 40,
                reads_merged: 0,
                sectors_read: 80,
                read_ms: 0,
                writes: 7,
                writes_merged: 0,
                sectors_written: 56,
                write_ms: 0,
                in_progress: 0,
                io_ms: None,
                weighted_io_ms: None,
            }
        );
        // A name of exactly DISK_NAME_CAP bytes is kept.
        assert!(d.disks.iter().any(|d| d.name.len() == DISK_NAME_CAP));
    }

    #[test]
    fn more_devices_than_capacity_are_counted() {
        let mut d = Diskstats::default();
        for i in 0..MAX_DISKS + 3 {
            let line = format!("7 {i} loop{i} 0 0 0 0 0 0 0 0 0 0 0");
            d.line(line.as_bytes()).unwrap();
        }
        assert_eq!(d.disks.len(), MAX_DISKS);
        assert_eq!(d.skipped, 3);
        d.clear();
        assert!(d.disks.is_empty());
        assert_eq!(d.skipped, 0);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Diskstats::parse(b"8 0 sda 1 2 3\n")
                .unwrap_err()
                .to_string(),
            "line 1: expected 7, 14, 18 or 20 fields, found 6"
        );
        assert_eq!(
            Diskstats::parse(b"8 0 sda 1 2 3 4\n8 0 sda 1 2 3 4 5 6 7 8 9 10 11 12\n").unwrap_err(),
            DiskstatsError::Fields { line: 2, found: 15 }
        );
        assert_eq!(
            Diskstats::parse(b"8 0 sda 1 2 3 18446744073709551616\n").unwrap_err(),
            DiskstatsError::Number { line: 1 }
        );
        assert_eq!(
            Diskstats::parse(b"8 0 sda 1 2 3 4 5 6 7 8 9 10 -11\n").unwrap_err(),
            DiskstatsError::Number { line: 1 }
        );
        assert_eq!(
            Diskstats::parse(b"4294967296 0 sda 1 2 3 4\n").unwrap_err(),
            DiskstatsError::Number { line: 1 }
        );
        assert_eq!(
            Diskstats::parse(b"8 0 sd\xff 1 2 3 4\n").unwrap_err(),
            DiskstatsError::Name { line: 1 }
        );
        let mut long = b"8 0 sda ".to_vec();
        long.extend(std::iter::repeat_n(b'1', crate::sys::procfs::LINE_BUF));
        assert_eq!(
            Diskstats::parse(&long).unwrap_err(),
            DiskstatsError::LongLine { line: 1 }
        );
        assert!(Diskstats::parse(b"\x00\x01\x02 garbage \xff\n").is_err());
    }

    #[test]
    fn every_prefix_is_ok_or_err() {
        for input in [REAL, FORMATS] {
            for end in 0..=input.len() {
                let _ = Diskstats::parse(&input[..end]);
            }
        }
    }
}
