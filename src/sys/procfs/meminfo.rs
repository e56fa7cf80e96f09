//! `/proc/meminfo`: the memory and swap totals sysstat reports (proc(5)).
//!
//! What this does: read `MemTotal`, `MemFree`, `MemAvailable`, `Buffers`, `Cached`,
//! `SwapTotal` and `SwapFree`. What it does not do: keep any other key (unknown keys are
//! skipped without being looked at), or derive "used" memory (the collector does).
//!
//! Quirks handled here:
//! - "kB" in meminfo is KiB (the kernel prints `pages << (PAGE_SHIFT - 10)`); values are kept
//!   in KiB, and a known key with another unit (or none) is an error.
//! - `MemAvailable` exists since Linux 3.14: missing, it is `None`, never a made-up value.
//! - `MemTotal` and `MemFree` are required ([`Meminfo::finish`]); the others default to 0.
//! - a known key seen twice is an error (which value would be right?).

use core::fmt;

use super::{LineParser, fields, parse_u64};

/// The memory figures sysstat needs, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meminfo {
    pub mem_total_kib: u64,
    pub mem_free_kib: u64,
    /// `None` on kernels before 3.14.
    pub mem_available_kib: Option<u64>,
    pub buffers_kib: u64,
    pub cached_kib: u64,
    pub swap_total_kib: u64,
    pub swap_free_kib: u64,
    /// Bit `k` set when `KEYS[k]` was seen.
    seen: u8,
}

/// The keys kept, in the order of the bits of `Meminfo::seen`.
const KEYS: [&[u8]; 7] = [
    b"MemTotal",
    b"MemFree",
    b"MemAvailable",
    b"Buffers",
    b"Cached",
    b"SwapTotal",
    b"SwapFree",
];
const MEM_TOTAL: usize = 0;
const MEM_FREE: usize = 1;

/// Why /proc/meminfo could not be parsed. Keys are `'static` names of [`KEYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeminfoError {
    /// A known key whose value is not `<number> kB`.
    Value { key: &'static str },
    /// A known key seen twice.
    Duplicate { key: &'static str },
    /// A line of a known key longer than the read buffer.
    LongLine { key: &'static str },
    /// A required key (MemTotal, MemFree) is missing.
    Missing { key: &'static str },
}

impl fmt::Display for MeminfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MeminfoError::Value { key } => write!(f, "{key}: expected '<number> kB'"),
            MeminfoError::Duplicate { key } => write!(f, "{key}: seen twice"),
            MeminfoError::LongLine { key } => write!(f, "{key}: line longer than the read buffer"),
            MeminfoError::Missing { key } => write!(f, "no {key} line"),
        }
    }
}

/// Index in [`KEYS`] of the key before the line's ':', if it is one we keep.
fn key_index(line: &[u8]) -> Option<usize> {
    let colon = line.iter().position(|&b| b == b':')?;
    let key = line.get(..colon)?;
    KEYS.iter().position(|k| *k == key)
}

/// The name of `KEYS[i]` for error messages (they are ASCII).
fn key_name(i: usize) -> &'static str {
    match i {
        0 => "MemTotal",
        1 => "MemFree",
        2 => "MemAvailable",
        3 => "Buffers",
        4 => "Cached",
        5 => "SwapTotal",
        _ => "SwapFree",
    }
}

impl Meminfo {
    /// Parses a whole /proc/meminfo and checks the required keys.
    pub fn parse(input: &[u8]) -> Result<Meminfo, MeminfoError> {
        let mut m = Meminfo::default();
        super::feed_all(&mut m, input)?;
        m.finish()?;
        Ok(m)
    }

    /// MemTotal and MemFree are required (call after the last line).
    pub fn finish(&self) -> Result<(), MeminfoError> {
        for k in [MEM_TOTAL, MEM_FREE] {
            if self.seen & (1 << k) == 0 {
                return Err(MeminfoError::Missing { key: key_name(k) });
            }
        }
        Ok(())
    }

    /// Forgets everything, to parse the file again.
    pub fn reset(&mut self) {
        *self = Meminfo::default();
    }
}

impl LineParser for Meminfo {
    type Error = MeminfoError;

    fn line(&mut self, line: &[u8]) -> Result<(), MeminfoError> {
        let Some(k) = key_index(line) else {
            return Ok(());
        };
        let key = key_name(k);
        let rest = line
            .get(KEYS.get(k).map_or(0, |n| n.len()) + 1..)
            .unwrap_or(&[]);
        let mut it = fields(rest);
        let value = match (it.next(), it.next(), it.next()) {
            (Some(n), Some(b"kB"), None) => parse_u64(n),
            _ => None,
        }
        .ok_or(MeminfoError::Value { key })?;
        if self.seen & (1 << k) != 0 {
            return Err(MeminfoError::Duplicate { key });
        }
        self.seen |= 1 << k;
        match k {
            0 => self.mem_total_kib = value,
            1 => self.mem_free_kib = value,
            2 => self.mem_available_kib = Some(value),
            3 => self.buffers_kib = value,
            4 => self.cached_kib = value,
            5 => self.swap_total_kib = value,
            _ => self.swap_free_kib = value,
        }
        Ok(())
    }

    fn long_line(&mut self, prefix: &[u8]) -> Result<(), MeminfoError> {
        match key_index(prefix) {
            Some(k) => Err(MeminfoError::LongLine { key: key_name(k) }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &[u8] = include_bytes!("../../../fixtures/proc/vm-debian12/meminfo");
    const OLD: &[u8] = include_bytes!("../../../fixtures/proc/synthetic/meminfo-3.2");

    #[test]
    fn key_names_match_keys() {
        for (i, k) in KEYS.iter().enumerate() {
            assert_eq!(key_name(i).as_bytes(), *k);
        }
    }

    #[test]
    fn real_capture() {
        let m = Meminfo::parse(REAL).unwrap();
        assert_eq!(m.mem_total_kib, 24684084);
        assert_eq!(m.mem_free_kib, 23134488);
        assert_eq!(m.mem_available_kib, Some(24300716));
        assert_eq!(m.buffers_kib, 8804);
        assert_eq!(m.cached_kib, 1333020);
        assert_eq!(m.swap_total_kib, 0);
        assert_eq!(m.swap_free_kib, 0);
    }

    #[test]
    fn old_kernel_without_mem_available() {
        let m = Meminfo::parse(OLD).unwrap();
        assert_eq!(m.mem_available_kib, None);
        assert_eq!(m.mem_total_kib, 8010844);
        assert_eq!(m.swap_total_kib, 2097148);
        assert_eq!(m.swap_free_kib, 2097000);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Meminfo::parse(b"MemFree: 1 kB\n").unwrap_err().to_string(),
            "no MemTotal line"
        );
        assert_eq!(
            Meminfo::parse(b"MemTotal: 1 kB\n").unwrap_err(),
            MeminfoError::Missing { key: "MemFree" }
        );
        assert_eq!(
            Meminfo::parse(b"MemTotal: 1 MB\nMemFree: 1 kB\n")
                .unwrap_err()
                .to_string(),
            "MemTotal: expected '<number> kB'"
        );
        assert_eq!(
            Meminfo::parse(b"MemTotal: 18446744073709551616 kB\n").unwrap_err(),
            MeminfoError::Value { key: "MemTotal" }
        );
        assert_eq!(
            Meminfo::parse(b"Cached:\n").unwrap_err(),
            MeminfoError::Value { key: "Cached" }
        );
        assert_eq!(
            Meminfo::parse(b"Cached: 1 kB\nCached: 2 kB\n").unwrap_err(),
            MeminfoError::Duplicate { key: "Cached" }
        );
        let mut long = b"MemTotal: ".to_vec();
        long.extend(std::iter::repeat_n(b'1', crate::sys::procfs::LINE_BUF));
        assert_eq!(
            Meminfo::parse(&long).unwrap_err(),
            MeminfoError::LongLine { key: "MemTotal" }
        );
    }

    #[test]
    fn unknown_keys_garbage_and_non_utf8_are_ignored() {
        let m = Meminfo::parse(
            b"\xff\xfe:\nMemTotal:\t 10 kB\nHugePages_Total: 0\nnonsense\nMemFree: 5 kB\nmemtotal: x\n",
        )
        .unwrap();
        assert_eq!((m.mem_total_kib, m.mem_free_kib), (10, 5));
        let mut long = b"Unknown: ".to_vec();
        long.extend(std::iter::repeat_n(b'1', crate::sys::procfs::LINE_BUF));
        long.extend_from_slice(b"\nMemTotal: 1 kB\nMemFree: 1 kB");
        assert!(Meminfo::parse(&long).is_ok());
    }

    #[test]
    fn reset_allows_reuse() {
        let mut m = Meminfo::default();
        super::super::feed_all(&mut m, REAL).unwrap();
        m.reset();
        super::super::feed_all(&mut m, REAL).unwrap();
        m.finish().unwrap();
    }

    #[test]
    fn every_prefix_is_ok_or_err() {
        for input in [REAL, OLD] {
            for end in 0..=input.len() {
                let _ = Meminfo::parse(&input[..end]);
            }
        }
    }
}
