//! TZif files (RFC 8536, versions 1 to 3 and later), bytes to a [`Zone`]; pure.
//!
//! What this does: check the header's counts, read the transitions and local time types (the
//! 32-bit block of v1 files, the 64-bit block of v2+ ones) and the POSIX TZ footer of v2+ files,
//! which "slim" files rely on for every time after their last transition. What it does not do:
//! find or read the file (that is [`Zone::load`]), parse the footer's rule (that is
//! `posix.rs`), or apply leap seconds (`right/` zones are read, their corrections ignored).

use core::fmt;

use super::posix::PosixTz;
use super::{LocalType, Zone};

/// Local time types a zone may have (RFC 8536: typecnt is at most 256).
const MAX_TYPES: usize = 256;

/// Why a TZif file was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TzError {
    /// The file does not start with `TZif`.
    Magic,
    /// The file ends before the counts of its header say.
    Truncated,
    /// A count or index is out of range (no local time type, an index past the types, …).
    Invalid,
    /// The POSIX TZ footer is not a valid TZ string.
    Footer,
}

impl fmt::Display for TzError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TzError::Magic => "not a TZif file (no TZif magic)",
            TzError::Truncated => "TZif file shorter than its header says",
            TzError::Invalid => "TZif file with an out-of-range count or index",
            TzError::Footer => "TZif file with an invalid POSIX TZ footer",
        })
    }
}

/// Parses a TZif file. For v2+ files the 64-bit block and the footer are used.
pub(super) fn parse(bytes: &[u8]) -> Result<Zone, TzError> {
    let h1 = Header::parse(bytes)?;
    if h1.version == 0 {
        return h1.data(bytes, 44, 4, None);
    }
    let second = 44 + h1.data_len(4)?;
    let h2 = Header::parse(bytes.get(second..).ok_or(TzError::Truncated)?)?;
    let data_end = second
        .checked_add(44)
        .and_then(|s| s.checked_add(h2.data_len(8).ok()?))
        .ok_or(TzError::Invalid)?;
    let footer = footer_string(bytes.get(data_end..).ok_or(TzError::Truncated)?)?;
    let footer = match footer {
        Some(s) if !s.is_empty() => Some(PosixTz::parse(s).ok_or(TzError::Footer)?),
        _ => None,
    };
    h2.data(bytes, second + 44, 8, footer)
}

/// The counts of a TZif header.
struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

impl Header {
    fn parse(b: &[u8]) -> Result<Header, TzError> {
        if b.len() < 4 || &b[..4] != b"TZif" {
            return Err(if b.len() < 4 && b"TZif".starts_with(b) {
                TzError::Truncated
            } else {
                TzError::Magic
            });
        }
        let h = b.get(..44).ok_or(TzError::Truncated)?;
        let n = |i: usize| -> usize {
            let at = 20 + 4 * i;
            u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]) as usize
        };
        let version = match h[4] {
            0 => 0,
            b'2' => 2,
            b'3' => 3,
            // Later versions stay compatible with v3 readers (RFC 8536 §3.1).
            v if v > b'3' => 4,
            _ => return Err(TzError::Invalid),
        };
        let hdr = Header {
            version,
            isutcnt: n(0),
            isstdcnt: n(1),
            leapcnt: n(2),
            timecnt: n(3),
            typecnt: n(4),
            charcnt: n(5),
        };
        if hdr.typecnt == 0
            || hdr.typecnt > MAX_TYPES
            || hdr.charcnt == 0
            || (hdr.isutcnt != 0 && hdr.isutcnt != hdr.typecnt)
            || (hdr.isstdcnt != 0 && hdr.isstdcnt != hdr.typecnt)
        {
            return Err(TzError::Invalid);
        }
        Ok(hdr)
    }

    /// Bytes of the data block after the header, with `tsize`-byte times.
    fn data_len(&self, tsize: usize) -> Result<usize, TzError> {
        let parts = [
            self.timecnt.checked_mul(tsize),
            Some(self.timecnt),
            self.typecnt.checked_mul(6),
            Some(self.charcnt),
            self.leapcnt.checked_mul(tsize + 4),
            Some(self.isstdcnt),
            Some(self.isutcnt),
        ];
        parts
            .iter()
            .try_fold(0usize, |acc, p| acc.checked_add((*p)?))
            .ok_or(TzError::Invalid)
    }

    /// Reads the data block at `at` into a zone.
    fn data(
        &self,
        b: &[u8],
        at: usize,
        tsize: usize,
        footer: Option<PosixTz>,
    ) -> Result<Zone, TzError> {
        let len = self.data_len(tsize)?;
        let end = at.checked_add(len).ok_or(TzError::Invalid)?;
        let d = b.get(at..end).ok_or(TzError::Truncated)?;
        let (times, rest) = d.split_at(self.timecnt * tsize);
        let (idx, rest) = rest.split_at(self.timecnt);
        let (ttinfo, rest) = rest.split_at(self.typecnt * 6);
        let chars = &rest[..self.charcnt];
        let mut transitions = Vec::with_capacity(self.timecnt);
        for c in times.chunks_exact(tsize) {
            let t = if tsize == 8 {
                i64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
            } else {
                i64::from(i32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            };
            if transitions.last().is_some_and(|&last| t <= last) {
                return Err(TzError::Invalid);
            }
            transitions.push(t);
        }
        if idx.iter().any(|&i| usize::from(i) >= self.typecnt) {
            return Err(TzError::Invalid);
        }
        let mut types = Vec::with_capacity(self.typecnt);
        for t in ttinfo.chunks_exact(6) {
            let utoff = i32::from_be_bytes([t[0], t[1], t[2], t[3]]);
            if utoff == i32::MIN || utoff.unsigned_abs() > 25 * 3600 {
                return Err(TzError::Invalid);
            }
            let ai = usize::from(t[5]);
            let name = chars.get(ai..).ok_or(TzError::Invalid)?;
            let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
            types.push(LocalType {
                utoff,
                isdst: t[4] != 0,
                abbr: String::from_utf8_lossy(name).into_owned(),
            });
        }
        Ok(Zone {
            transitions,
            transition_types: idx.to_vec(),
            types,
            footer,
        })
    }
}

/// The footer `\n<TZ string>\n` of a v2+ file (`None` when absent: v2+ files must have one,
/// but an empty or missing one only means "no rule after the last transition").
fn footer_string(rest: &[u8]) -> Result<Option<&str>, TzError> {
    if rest.is_empty() {
        return Ok(None);
    }
    if rest[0] != b'\n' {
        return Err(TzError::Footer);
    }
    let body = &rest[1..];
    let end = body
        .iter()
        .position(|&c| c == b'\n')
        .ok_or(TzError::Footer)?;
    core::str::from_utf8(&body[..end])
        .map(Some)
        .map_err(|_| TzError::Footer)
}
