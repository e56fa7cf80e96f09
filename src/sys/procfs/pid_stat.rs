//! `/proc/<pid>/stat` (used as `/proc/self/stat`): the collector's own CPU time, start time and
//! resident set (proc(5)).
//!
//! What this does: read fields 14 (utime), 15 (stime), 22 (starttime) and 24 (rss), 1-based as
//! proc(5) numbers them. What it does not do: convert ticks to seconds or pages to bytes (clock
//! ticks and page size are system constants the caller passes to its own arithmetic).
//!
//! Quirk handled here: comm (field 2) is in parentheses and may contain ')' and spaces (a
//! thread can name itself "a) b"): the fields after it are found after the LAST ')'.

use core::fmt;

use super::{fields, parse_u64};

/// The fields of /proc/self/stat the collector reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidStat {
    /// Field 14: user-mode time, in clock ticks.
    pub utime_ticks: u64,
    /// Field 15: kernel-mode time, in clock ticks.
    pub stime_ticks: u64,
    /// Field 22: start time after boot, in clock ticks.
    pub starttime_ticks: u64,
    /// Field 24: resident set size, in pages.
    pub rss_pages: u64,
}

/// Why a stat line could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidStatError {
    /// No `pid (comm)` at the start.
    Comm,
    /// The line ends before field 24.
    Short { fields: usize },
    /// A field that is not a number or does not fit a u64 (1-based field number).
    Number { field: u8 },
}

impl fmt::Display for PidStatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidStatError::Comm => f.write_str("expected 'pid (comm)' at the start"),
            PidStatError::Short { fields } => {
                write!(f, "expected at least 24 fields, found {fields}")
            }
            PidStatError::Number { field } => write!(f, "field {field}: bad number"),
        }
    }
}

/// 1-based numbers of the fields kept.
const UTIME: usize = 14;
const STIME: usize = 15;
const STARTTIME: usize = 22;
const RSS: usize = 24;
/// Fields before the ones that follow comm's ')': pid and comm.
const HEAD: usize = 2;

/// Parses the contents of /proc/<pid>/stat (one line; the trailing '\n' is optional).
pub fn parse(input: &[u8]) -> Result<PidStat, PidStatError> {
    let open = input
        .iter()
        .position(|&b| b == b'(')
        .ok_or(PidStatError::Comm)?;
    let close = input
        .iter()
        .rposition(|&b| b == b')')
        .filter(|&c| c > open)
        .ok_or(PidStatError::Comm)?;
    let pid = input.get(..open).and_then(|p| p.strip_suffix(b" "));
    if pid.and_then(parse_u64).is_none() {
        return Err(PidStatError::Comm);
    }
    let rest = input.get(close + 1..).unwrap_or(&[]);
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
    let mut kept = [0u64; 4];
    let mut count = HEAD;
    for field in fields(rest) {
        count += 1;
        let slot = match count {
            UTIME => 0,
            STIME => 1,
            STARTTIME => 2,
            RSS => 3,
            _ => continue,
        };
        let number = u8::try_from(count).unwrap_or(u8::MAX);
        let value = parse_u64(field).ok_or(PidStatError::Number { field: number })?;
        if let Some(k) = kept.get_mut(slot) {
            *k = value;
        }
    }
    if count < RSS {
        return Err(PidStatError::Short { fields: count });
    }
    let [utime_ticks, stime_ticks, starttime_ticks, rss_pages] = kept;
    Ok(PidStat {
        utime_ticks,
        stime_ticks,
        starttime_ticks,
        rss_pages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &[u8] = include_bytes!("../../../fixtures/proc/vm-debian12/self/stat");
    const ODD_COMM: &[u8] = include_bytes!("../../../fixtures/proc/synthetic/pid-stat-odd-comm");

    #[test]
    fn real_capture() {
        assert_eq!(
            parse(REAL).unwrap(),
            PidStat {
                utime_ticks: 0,
                stime_ticks: 0,
                starttime_ticks: 29098,
                rss_pages: 383,
            }
        );
    }

    #[test]
    fn comm_with_parentheses_and_spaces() {
        assert_eq!(
            parse(ODD_COMM).unwrap(),
            PidStat {
                utime_ticks: 1234,
                stime_ticks: 567,
                starttime_ticks: 89012,
                rss_pages: 4567,
            }
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse(b"").unwrap_err(), PidStatError::Comm);
        assert_eq!(parse(b"12 cat) S").unwrap_err(), PidStatError::Comm);
        assert_eq!(parse(b"12 )cat( S").unwrap_err(), PidStatError::Comm);
        assert_eq!(parse(b"x (cat) S").unwrap_err(), PidStatError::Comm);
        assert_eq!(
            parse(b"12 (cat) R 1 2 3\n").unwrap_err().to_string(),
            "expected at least 24 fields, found 6"
        );
        let mut huge = b"1 (a) R 0 0 0 0 -1 0 0 0 0 0 ".to_vec();
        huge.extend_from_slice(b"18446744073709551616 0 0 0 20 0 1 0 5 0 7\n");
        assert_eq!(
            parse(&huge).unwrap_err().to_string(),
            "field 14: bad number"
        );
        assert_eq!(
            parse(b"1 (a) R 0 0 0 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 5 0 -7\n").unwrap_err(),
            PidStatError::Number { field: 24 }
        );
        assert!(parse(b"1 (\xff\xfe) R \xff").is_err());
    }

    #[test]
    fn exactly_24_fields_is_enough() {
        // Fields 1–24 (old kernels stop early; this one ends at rss), then one short.
        let full = b"1 (a) R 0 0 0 0 -1 0 0 0 0 0 11 12 0 0 20 0 1 0 22 0 24\n";
        assert_eq!(
            parse(full).unwrap(),
            PidStat {
                utime_ticks: 11,
                stime_ticks: 12,
                starttime_ticks: 22,
                rss_pages: 24,
            }
        );
        assert_eq!(
            parse(&full[..full.len() - 4]).unwrap_err(),
            PidStatError::Short { fields: 23 }
        );
    }

    #[test]
    fn every_prefix_is_ok_or_err() {
        for input in [REAL, ODD_COMM] {
            for end in 0..=input.len() {
                let _ = parse(&input[..end]);
            }
        }
    }
}
