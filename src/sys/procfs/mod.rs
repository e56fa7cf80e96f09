//! One pure parser per /proc file, named after the file.
//!
//! What this does: turn the bytes of `/proc/stat`, `/proc/loadavg`, `/proc/meminfo`,
//! `/proc/diskstats`, `/proc/net/dev`, `/proc/self/mountinfo` and `/proc/self/stat` into
//! fixed-size structs or `heapless` containers. What it does not do: open or read files (that is
//! [`crate::sys::file`]), allocate, compute rates or filter devices (the collectors do that).
//!
//! Line-oriented files implement [`LineParser`] and are fed one line at a time, either by the
//! file reader streaming a fixed buffer or by [`feed_all`] over a slice (tests, fuzzing). Both
//! split lines the same way, so a parser sees the same calls from either.
//!
//! Numbers are parsed strictly: ASCII decimal digits only, and a value that does not fit its type
//! is an error, never a wrap.

pub mod diskstats;
pub mod loadavg;
pub mod meminfo;
pub mod mountinfo;
pub mod net_dev;
pub mod pid_stat;
pub mod stat;

/// Longest line a parser is given whole: a longer one goes to [`LineParser::long_line`] with
/// its first `LINE_BUF` bytes. The file reader ([`crate::sys::file`]) streams through a buffer
/// of this size; it is defined here so that the pure parsers import nothing from the file
/// layer (the layer depends on them, not the other way).
pub const LINE_BUF: usize = 8192;

/// A parser fed one line at a time (the driver streams lines from a fixed buffer).
pub trait LineParser {
    type Error: core::fmt::Display;
    /// One line, without its '\n'.
    fn line(&mut self, line: &[u8]) -> Result<(), Self::Error>;
    /// A line longer than the read buffer: only its first bytes are known, the rest is skipped by the driver.
    /// Parsers that do not need such lines (the `intr` line of /proc/stat) ignore it; others return an error or count it.
    fn long_line(&mut self, prefix: &[u8]) -> Result<(), Self::Error>;
}

/// Pure whole-input driver: splits `input` into lines ('\n'; a last line without '\n' counts) and feeds them.
///
/// Mirrors [`crate::sys::file::LineReader`]: a line of [`LINE_BUF`] bytes or more (without its
/// '\n') goes to [`LineParser::long_line`] with its first `LINE_BUF` bytes, as it would when
/// streamed from a file. Stops at the first error.
pub fn feed_all<P: LineParser>(parser: &mut P, input: &[u8]) -> Result<(), P::Error> {
    let mut rest = input;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(pos) => (
                rest.get(..pos).unwrap_or(&[]),
                rest.get(pos + 1..).unwrap_or(&[]),
            ),
            None => (rest, &[][..]),
        };
        match line.get(..LINE_BUF) {
            Some(prefix) => parser.long_line(prefix)?,
            None => parser.line(line)?,
        }
        rest = next;
    }
    Ok(())
}

/// Fields of a line separated by runs of spaces or tabs (how /proc pads its columns).
pub(crate) fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b' ' || b == b'\t')
        .filter(|f| !f.is_empty())
}

/// A non-empty run of ASCII digits as a `u64`; `None` on any other byte or on overflow.
pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

/// Like [`parse_u64`], for values that must fit a `u32` (ids, device numbers).
pub(crate) fn parse_u32(digits: &[u8]) -> Option<u32> {
    parse_u64(digits).and_then(|v| u32::try_from(v).ok())
}

/// `line` without its leading and trailing spaces and tabs.
pub(crate) fn trim(line: &[u8]) -> &[u8] {
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !is_blank(b)).unwrap_or(line.len());
    let end = line
        .iter()
        .rposition(|b| !is_blank(b))
        .map_or(start, |p| p + 1);
    line.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what the driver fed, as (is_long, length, first byte).
    #[derive(Default)]
    struct Recorder {
        calls: heapless::Vec<(bool, usize, Option<u8>), 16>,
    }

    impl LineParser for Recorder {
        type Error = &'static str;
        fn line(&mut self, line: &[u8]) -> Result<(), Self::Error> {
            self.calls
                .push((false, line.len(), line.first().copied()))
                .map_err(|_| "full")
        }
        fn long_line(&mut self, prefix: &[u8]) -> Result<(), Self::Error> {
            self.calls
                .push((true, prefix.len(), prefix.first().copied()))
                .map_err(|_| "full")
        }
    }

    #[test]
    fn feed_all_splits_lines_like_the_reader() {
        let mut r = Recorder::default();
        feed_all(&mut r, b"ab\n\nc").unwrap();
        assert_eq!(
            r.calls.as_slice(),
            &[
                (false, 2, Some(b'a')),
                (false, 0, None),
                (false, 1, Some(b'c'))
            ]
        );

        let mut r = Recorder::default();
        feed_all(&mut r, b"ab\n").unwrap();
        assert_eq!(r.calls.as_slice(), &[(false, 2, Some(b'a'))]);

        let mut r = Recorder::default();
        feed_all(&mut r, b"").unwrap();
        assert!(r.calls.is_empty());
    }

    #[test]
    fn feed_all_reports_long_lines_with_their_prefix() {
        let mut input = [b'x'; 3 * LINE_BUF + 4];
        input[3 * LINE_BUF] = b'\n';
        input[3 * LINE_BUF + 1] = b'y';
        let mut r = Recorder::default();
        feed_all(&mut r, &input).unwrap();
        assert_eq!(
            r.calls.as_slice(),
            &[(true, LINE_BUF, Some(b'x')), (false, 3, Some(b'y'))]
        );
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"99999999999999999999999"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b"1a"), None);
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
    }

    /// Deterministic garbage (xorshift) biased towards the bytes the formats care about: every
    /// parser returns Ok or Err, never panics. The fuzz targets do the same at length.
    #[test]
    fn garbage_never_panics() {
        const ALPHABET: &[u8] = b"0123456789 \t\n:|()/-.\\,cpuMemTotal kB\xff\x00";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut input = [0u8; 512];
        let mut out = [0u8; 64];
        for round in 0..3000usize {
            let len = (next() as usize) % input.len();
            for b in input.iter_mut().take(len) {
                let r = next();
                *b = if r % 8 == 0 {
                    r.to_le_bytes()[1]
                } else {
                    ALPHABET[(r as usize >> 3) % ALPHABET.len()]
                };
            }
            let data = &input[..len];
            let _ = stat::Stat::parse(data);
            let _ = loadavg::parse(data);
            let _ = meminfo::Meminfo::parse(data);
            let _ = pid_stat::parse(data);
            if round % 4 == 0 {
                // The big fixed containers are slow to zero in a debug build.
                let _ = diskstats::Diskstats::parse(data);
                let _ = net_dev::NetDev::parse(data);
            }
            for line in data.split(|&b| b == b'\n') {
                if let Ok(m) = mountinfo::parse_line(line) {
                    let _ = mountinfo::unescape(m.mount_point, &mut out);
                }
            }
            let _ = mountinfo::unescape(data, &mut out);
        }
    }

    #[test]
    fn fields_and_trim() {
        let f: heapless::Vec<&[u8], 4> = fields(b"  a\tbb  c ").collect();
        assert_eq!(f.as_slice(), &[&b"a"[..], b"bb", b"c"]);
        assert_eq!(trim(b" \t x y \t"), b"x y");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(trim(b""), b"");
    }
}
