//! `<state_dir>/pg_log.offsets`: where the log reader resumes after a restart.
//!
//! What this does: render and parse the file (pure, over bytes), and the file's identity
//! pieces it stores: [`FileId`] (path, device, inode) and [`Fingerprint`] (a hash of the
//! file's first bytes, so a reused inode or a truncated-and-refilled file is told apart).
//! What it does not do: read or write the file (the collector does, with
//! [`crate::sys::file::write_private`]), or decide what a stored offset means after a rotation
//! ([`super::tail`]).
//!
//! Format (text, one line per file, fields separated by one space, the path last because it
//! may hold spaces; `\\`, `\n` and bytes that are not printable UTF-8 are escaped as `\\`,
//! `\n` and `\xHH`):
//!
//! ```text
//! # pganalytics-collector pg_log offsets v1
//! <device> <inode> <fingerprint length> <fingerprint hash, 16 hex digits> <offset> <path>
//! ```
//!
//! Lines starting with `#` after the header and empty lines are ignored.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// First line of the file; a file with another first line is not ours (or a newer version).
pub const HEADER: &str = "# pganalytics-collector pg_log offsets v1";

/// Bytes of a file's beginning that its fingerprint covers (fewer while the file is smaller).
pub const FINGERPRINT_BYTES: usize = 1024;

/// Most lines a file may hold (the reader stores one or two); more is not ours.
pub const MAX_LINES: usize = 64;

/// A hash of a file's first `len` bytes (`len` ≤ [`FINGERPRINT_BYTES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint {
    pub len: u32,
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `head`, the file's first bytes (at most [`FINGERPRINT_BYTES`] used).
    pub fn of(head: &[u8]) -> Fingerprint {
        let head = &head[..head.len().min(FINGERPRINT_BYTES)];
        Fingerprint {
            len: head.len() as u32,
            hash: fnv1a(head),
        }
    }

    /// Whether it can still grow (the file was smaller than [`FINGERPRINT_BYTES`]).
    pub fn partial(&self) -> bool {
        (self.len as usize) < FINGERPRINT_BYTES
    }
}

/// 64-bit FNV-1a: small, no table, good enough to tell two log beginnings apart (they start
/// with timestamps). Not a defence against anyone forging a file.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Which file: where it was seen, and its identity on the file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileId {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn same_inode(&self, dev: u64, ino: u64) -> bool {
        self.dev == dev && self.ino == ino
    }
}

/// One stored line: the acknowledged offset in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub file: FileId,
    pub fingerprint: Fingerprint,
    pub offset: u64,
}

/// Why the file was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsError {
    /// The first line is not [`HEADER`].
    Header,
    /// Line `n` (1-based) is malformed: which field.
    Line(usize, &'static str),
    /// More than [`MAX_LINES`] lines.
    TooManyLines,
}

impl std::fmt::Display for OffsetsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OffsetsError::Header => write!(f, "first line is not `{HEADER}`"),
            OffsetsError::Line(n, what) => write!(f, "line {n}: bad {what}"),
            OffsetsError::TooManyLines => write!(f, "more than {MAX_LINES} lines"),
        }
    }
}

/// The file's text for `entries`.
pub fn render(entries: &[Stored]) -> String {
    let mut out = String::with_capacity(64 + entries.len() * 128);
    out.push_str(HEADER);
    out.push('\n');
    for e in entries {
        // unwrap-free: writing to a String cannot fail.
        let _ = write!(
            out,
            "{} {} {} {:016x} {} ",
            e.file.dev, e.file.ino, e.fingerprint.len, e.fingerprint.hash, e.offset
        );
        escape_path(e.file.path.as_os_str().as_bytes(), &mut out);
        out.push('\n');
    }
    out
}

fn escape_path(bytes: &[u8], out: &mut String) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                // unwrap: valid_up_to is a UTF-8 boundary.
                let s = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or("");
                (s, e.error_len().unwrap_or(rest.len() - e.valid_up_to()))
            }
        };
        for c in valid.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c if c.is_control() => {
                    let mut b = [0u8; 4];
                    for byte in c.encode_utf8(&mut b).bytes() {
                        let _ = write!(out, "\\x{byte:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        let bad_start = valid.len();
        for &b in &rest[bad_start..bad_start + bad] {
            let _ = write!(out, "\\x{b:02x}");
        }
        rest = &rest[bad_start + bad..];
    }
}

fn unescape_path(text: &[u8]) -> Option<PathBuf> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] != b'\\' {
            out.push(text[i]);
            i += 1;
            continue;
        }
        match text.get(i + 1)? {
            b'\\' => {
                out.push(b'\\');
                i += 2;
            }
            b'n' => {
                out.push(b'\n');
                i += 2;
            }
            b'x' => {
                let hex = text.get(i + 2..i + 4)?;
                let s = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(s, 16).ok()?);
                i += 4;
            }
            _ => return None,
        }
    }
    Some(PathBuf::from(OsString::from_vec(out)))
}

/// Parses the file's content. An empty input is an empty list (a file that was created but
/// never written is treated as absent).
pub fn parse(input: &[u8]) -> Result<Vec<Stored>, OffsetsError> {
    if input.is_empty() {
        return Ok(Vec::new());
    }
    let mut lines = input.split(|&b| b == b'\n');
    let header = lines.next().unwrap_or_default();
    if header.strip_suffix(b"\r").unwrap_or(header) != HEADER.as_bytes() {
        return Err(OffsetsError::Header);
    }
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        if out.len() == MAX_LINES {
            return Err(OffsetsError::TooManyLines);
        }
        out.push(parse_line(line).map_err(|what| OffsetsError::Line(n, what))?);
    }
    Ok(out)
}

fn parse_line(line: &[u8]) -> Result<Stored, &'static str> {
    let mut fields = line.splitn(6, |&b| b == b' ');
    let mut num = |what: &'static str| -> Result<u64, &'static str> {
        let f = fields.next().ok_or(what)?;
        std::str::from_utf8(f)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or(what)
    };
    let dev = num("device")?;
    let ino = num("inode")?;
    let len = num("fingerprint length")?;
    let len = u32::try_from(len)
        .ok()
        .filter(|&l| l as usize <= FINGERPRINT_BYTES)
        .ok_or("fingerprint length")?;
    let hash = fields
        .next()
        .filter(|f| f.len() == 16)
        .and_then(|f| std::str::from_utf8(f).ok())
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or("fingerprint hash")?;
    let mut num = |what: &'static str| -> Result<u64, &'static str> {
        let f = fields.next().ok_or(what)?;
        std::str::from_utf8(f)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or(what)
    };
    let offset = num("offset")?;
    let path = fields
        .next()
        .filter(|p| !p.is_empty())
        .and_then(unescape_path)
        .ok_or("path")?;
    if !path.is_absolute() {
        return Err("path");
    }
    Ok(Stored {
        file: FileId { path, dev, ino },
        fingerprint: Fingerprint { len, hash },
        offset,
    })
}

/// The stored line of the file with `path`, if any.
pub fn find<'a>(stored: &'a [Stored], path: &Path) -> Option<&'a Stored> {
    stored.iter().find(|s| s.file.path == path)
}

/// The acknowledged position, advanced over elements in emission order as their final
/// outcomes arrive (docs/protocol.md, "Delivery model"). Outcomes may come out of order (an overflow
/// drops newer elements while an older batch is in flight): the position moves only over the
/// contiguous prefix of settled elements.
///
/// ```text
///  pending: [e7 settled][e8 waiting][e9 settled][mark settled]   acked = cursor of e7
///  e8 settles ─▶ acked = cursor of the mark, pending empty
/// ```
///
/// Each element is numbered (`seq`, from 0); a *mark* is a position with nothing waiting of
/// its own (a collection that emitted nothing, lines filtered out): it settles when everything
/// before it has. Consecutive marks at the end are merged, so the queue holds at most about
/// twice the number of elements still waiting.
#[derive(Debug)]
pub struct AckQueue<C> {
    /// Seq of the next element.
    next_seq: u64,
    /// Waiting positions in emission order: (seq of the element or `None` for a mark,
    /// cursor after it, settled).
    pending: std::collections::VecDeque<(Option<u64>, C, bool)>,
    acked: Option<C>,
}

impl<C: Clone> AckQueue<C> {
    pub fn new(acked: Option<C>) -> Self {
        AckQueue {
            next_seq: 0,
            pending: std::collections::VecDeque::new(),
            acked,
        }
    }

    /// An element whose entries end at `cursor`: returns its seq (the tag's low bits).
    pub fn push_element(&mut self, cursor: C) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.push_back((Some(seq), cursor, false));
        seq
    }

    /// A position reached with nothing of its own waiting; true when the acknowledged
    /// position moved.
    pub fn push_mark(&mut self, cursor: C) -> bool {
        if self.pending.is_empty() {
            self.acked = Some(cursor);
            return true;
        }
        match self.pending.back_mut() {
            Some((None, c, _)) => *c = cursor,
            _ => self.pending.push_back((None, cursor, true)),
        }
        false
    }

    /// The element `seq` reached its final outcome; true when the acknowledged position
    /// moved. Unknown or repeated seqs are ignored.
    pub fn settle(&mut self, seq: u64) -> bool {
        let Some(item) = self.pending.iter_mut().find(|(s, _, _)| *s == Some(seq)) else {
            return false;
        };
        item.2 = true;
        let mut moved = false;
        while self.pending.front().is_some_and(|(_, _, done)| *done) {
            if let Some((_, c, _)) = self.pending.pop_front() {
                self.acked = Some(c);
                moved = true;
            }
        }
        moved
    }

    /// The position up to which everything emitted has a final outcome.
    pub fn acked(&self) -> Option<&C> {
        self.acked.as_ref()
    }

    /// Positions still waiting for an outcome (elements and marks behind them).
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(path: &[u8], offset: u64) -> Stored {
        Stored {
            file: FileId {
                path: PathBuf::from(OsString::from_vec(path.to_vec())),
                dev: 2049,
                ino: 131_075,
            },
            fingerprint: Fingerprint::of(b"2026-11-28 01:00:00.000 UTC [42] LOG:  x\n"),
            offset,
        }
    }

    #[test]
    fn render_parse_round_trip_with_awkward_paths() {
        let list = vec![
            stored(b"/var/log/postgresql/postgresql-15-main.log", 123_456),
            stored(b"/tmp/with space/and\\back\nline.log", 0),
            stored(b"/tmp/latin1-\xe9\x01.log", u64::MAX),
            stored("/tmp/ünïcödé.csv".as_bytes(), 7),
        ];
        let text = render(&list);
        assert!(text.starts_with(HEADER));
        assert_eq!(text.lines().count(), 5, "{text}");
        assert_eq!(parse(text.as_bytes()), Ok(list));
    }

    #[test]
    fn known_text() {
        let text =
            format!("{HEADER}\n2049 131075 41 00000000000000ff 99 /var/log/pg.log\n# note\n\n");
        let got = parse(text.as_bytes()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].file.dev, 2049);
        assert_eq!(got[0].file.ino, 131_075);
        assert_eq!(got[0].fingerprint, Fingerprint { len: 41, hash: 255 });
        assert_eq!(got[0].offset, 99);
        assert_eq!(got[0].file.path, Path::new("/var/log/pg.log"));
        assert_eq!(parse(b""), Ok(Vec::new()));
    }

    #[test]
    fn garbage_is_rejected_with_the_line() {
        assert_eq!(parse(b"hello\n"), Err(OffsetsError::Header));
        let bad = |line: &str| parse(format!("{HEADER}\n{line}\n").as_bytes());
        assert_eq!(
            bad("x 1 1 0000000000000000 1 /a"),
            Err(OffsetsError::Line(2, "device"))
        );
        assert_eq!(
            bad("1 -1 1 0000000000000000 1 /a"),
            Err(OffsetsError::Line(2, "inode"))
        );
        assert_eq!(
            bad("1 1 5000 0000000000000000 1 /a"),
            Err(OffsetsError::Line(2, "fingerprint length"))
        );
        assert_eq!(
            bad("1 1 1 00ff 1 /a"),
            Err(OffsetsError::Line(2, "fingerprint hash"))
        );
        assert_eq!(
            bad("1 1 1 0000000000000000 +1 /a"),
            Err(OffsetsError::Line(2, "offset"))
        );
        assert_eq!(
            bad("1 1 1 0000000000000000 1"),
            Err(OffsetsError::Line(2, "path"))
        );
        assert_eq!(
            bad("1 1 1 0000000000000000 1 rel.log"),
            Err(OffsetsError::Line(2, "path"))
        );
        assert_eq!(
            bad("1 1 1 0000000000000000 1 /a\\q"),
            Err(OffsetsError::Line(2, "path"))
        );
        assert_eq!(
            bad("1 1 1 0000000000000000 1 /a\\x4"),
            Err(OffsetsError::Line(2, "path"))
        );
        let many = format!(
            "{HEADER}\n{}",
            "1 1 1 0000000000000000 1 /a\n".repeat(MAX_LINES + 1)
        );
        assert_eq!(parse(many.as_bytes()), Err(OffsetsError::TooManyLines));
        assert_eq!(
            OffsetsError::Line(3, "offset").to_string(),
            "line 3: bad offset"
        );
    }

    #[test]
    fn fingerprint_covers_the_first_kib() {
        let a = vec![b'a'; 3000];
        let mut b = a.clone();
        b[2000] = b'b';
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&b));
        b[10] = b'b';
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&b));
        assert_eq!(Fingerprint::of(&a).len, 1024);
        assert!(!Fingerprint::of(&a).partial());
        assert!(Fingerprint::of(b"short").partial());
        // Known FNV-1a 64 values.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn acks_advance_over_the_settled_prefix_only() {
        let mut q = AckQueue::new(Some(0u64));
        let a = q.push_element(100);
        let b = q.push_element(200);
        let c = q.push_element(300);
        assert!(!q.push_mark(350));
        assert!(!q.push_mark(400), "marks at the end merge");
        assert_eq!(q.waiting(), 4);
        // Overflow drops the newest before the older batch is acknowledged.
        assert!(!q.settle(c));
        assert_eq!(q.acked(), Some(&0));
        assert!(q.settle(a));
        assert_eq!(q.acked(), Some(&100));
        assert!(!q.settle(a), "a repeated outcome changes nothing");
        assert!(!q.settle(99), "an unknown seq is ignored");
        assert!(q.settle(b));
        assert_eq!(
            q.acked(),
            Some(&400),
            "the mark behind the last element settles too"
        );
        assert_eq!(q.waiting(), 0);
        assert!(
            q.push_mark(500),
            "with nothing waiting a mark moves at once"
        );
        assert_eq!(q.acked(), Some(&500));
    }

    #[test]
    fn no_acked_position_until_one_settles() {
        let mut q: AckQueue<u64> = AckQueue::new(None);
        let a = q.push_element(10);
        q.push_mark(20);
        let b = q.push_element(30);
        assert_eq!(q.acked(), None);
        assert!(!q.settle(b));
        assert!(q.settle(a));
        assert_eq!(q.acked(), Some(&30));
    }
}
