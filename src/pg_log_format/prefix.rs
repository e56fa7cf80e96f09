//! `log_line_prefix`: compiled once into literals and fields, then matched against each line.
//!
//! What this does: turn a prefix such as `%m [%p] %q%u@%d ` into a sequence of items, and find
//! where a log line's prefix ends, what its fields hold (as byte ranges of the line, no
//! allocation), and which severity word (`LOG:  `, `DETAIL:  `, …) follows it. What it does
//! not do: build entries (see `mod.rs`), or know the values PostgreSQL would write (it only
//! checks their shape).
//!
//! Matching is a small backtracking search, not a regex: a field of fixed shape (`%p` digits,
//! `%m` a timestamp, `%e` five characters, …) is checked by its shape; a free-text field
//! (`%u`, `%d`, `%a`, `%b`, `%i`) ends at one of the places where what follows it matches,
//! earliest first. A match counts only if the whole prefix matched *and* a severity word
//! follows, which is what makes `%q` work: for background processes PostgreSQL stops the
//! prefix at `%q`, so at `%q` the search first tries "the prefix ends here".
//!
//! Quirks of the source format (elog.c `log_line_prefix`):
//! - padding `%10p` right-justifies (leading spaces), `%-10p` left-justifies (trailing spaces);
//!   an empty value with padding is written as that many spaces, without padding as nothing;
//! - `%r` is `host(port)` for TCP, `[local]` for a Unix socket, empty for background processes;
//! - `%t`/`%s` are `YYYY-MM-DD HH:MM:SS ZZZ`, `%m` adds `.mmm`, `%n` is `epoch.mmm`; `ZZZ` is
//!   the abbreviation of `log_timezone` (`CET`, `+03`);
//! - `%P` (leader pid) and `%v` (virtual xid) are empty when there is none; `%Q` may be
//!   negative.
//! - unknown escapes are written as nothing by the server (elog.c ignores them, one byte at a
//!   time), and are read as nothing here: a prefix the server accepts reads its lines.

use core::fmt;
use core::ops::Range;

use super::{Word, word_at};

/// Items (literals + fields) a compiled prefix may hold.
pub const MAX_ITEMS: usize = 64;
/// Bytes of a prefix string accepted.
pub const MAX_PREFIX_BYTES: usize = 1024;
/// Items whose failed literal searches are remembered (the first ones: a prefix with more
/// fields than that is still bounded by [`MATCH_BUDGET`]).
const MEMO_ITEMS: usize = 16;
/// Bytes of a value with a fixed shape (`%p`, `%c`, `%Q`, …) beyond its padding.
const SHAPED_MAX: usize = 64;
/// Steps one line's match may take: bounds the backtracking on adversarial lines.
const MATCH_BUDGET: u32 = 1024;

/// Why a prefix does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixError {
    /// More than [`MAX_ITEMS`] items or [`MAX_PREFIX_BYTES`] bytes.
    TooLong,
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixError::TooLong => write!(
                f,
                "longer than {MAX_PREFIX_BYTES} bytes or {MAX_ITEMS} escapes and literals"
            ),
        }
    }
}

/// The escapes of `log_line_prefix` that write a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// `%a`
    Application,
    /// `%u`
    User,
    /// `%d`
    Database,
    /// `%r`: `host(port)` or `[local]`.
    HostPort,
    /// `%h`
    Host,
    /// `%b`
    BackendType,
    /// `%p`
    Pid,
    /// `%P`
    LeaderPid,
    /// `%t`
    Time,
    /// `%m`
    TimeMs,
    /// `%n`
    Epoch,
    /// `%i`
    CommandTag,
    /// `%e`
    SqlState,
    /// `%c`
    SessionId,
    /// `%l`
    LineNum,
    /// `%s`
    SessionStart,
    /// `%v`
    Vxid,
    /// `%x`
    Txid,
    /// `%Q`
    QueryId,
}

impl Escape {
    fn from_letter(c: u8) -> Option<Escape> {
        Some(match c {
            b'a' => Escape::Application,
            b'u' => Escape::User,
            b'd' => Escape::Database,
            b'r' => Escape::HostPort,
            b'h' => Escape::Host,
            b'b' => Escape::BackendType,
            b'p' => Escape::Pid,
            b'P' => Escape::LeaderPid,
            b't' => Escape::Time,
            b'm' => Escape::TimeMs,
            b'n' => Escape::Epoch,
            b'i' => Escape::CommandTag,
            b'e' => Escape::SqlState,
            b'c' => Escape::SessionId,
            b'l' => Escape::LineNum,
            b's' => Escape::SessionStart,
            b'v' => Escape::Vxid,
            b'x' => Escape::Txid,
            b'Q' => Escape::QueryId,
            _ => return None,
        })
    }

    /// Bytes the value may consist of (padding spaces included); `None` = any byte.
    fn charset(self) -> Option<fn(u8) -> bool> {
        Some(match self {
            Escape::Pid | Escape::LeaderPid | Escape::LineNum | Escape::Txid => {
                |b| b.is_ascii_digit() || b == b' '
            }
            Escape::QueryId => |b| b.is_ascii_digit() || b == b' ' || b == b'-',
            Escape::SqlState => |b| b.is_ascii_alphanumeric() || b == b' ',
            Escape::SessionId => |b| b.is_ascii_hexdigit() || b == b'.' || b == b' ',
            Escape::Epoch => |b| b.is_ascii_digit() || b == b'.' || b == b' ',
            Escape::Vxid => |b| b.is_ascii_digit() || b == b'/' || b == b' ' || b == b'-',
            _ => return None,
        })
    }

    /// Whether `v` (padding removed) has this escape's shape.
    fn valid(self, v: &[u8]) -> bool {
        let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
        match self {
            Escape::Pid | Escape::LineNum | Escape::Txid => digits(v),
            Escape::LeaderPid => v.is_empty() || digits(v),
            Escape::QueryId => digits(v.strip_prefix(b"-").unwrap_or(v)),
            Escape::SqlState => {
                v.len() == 5
                    && v.iter()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            }
            Escape::SessionId => match v.iter().position(|&b| b == b'.') {
                Some(i) => {
                    let hex = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_hexdigit);
                    hex(&v[..i]) && hex(&v[i + 1..])
                }
                None => false,
            },
            Escape::Epoch => parse_epoch(v).is_some(),
            Escape::Vxid => {
                v.is_empty()
                    || match v.iter().position(|&b| b == b'/') {
                        Some(i) => {
                            digits(v[..i].strip_prefix(b"-").unwrap_or(&v[..i]))
                                && digits(&v[i + 1..])
                        }
                        None => false,
                    }
            }
            Escape::Time | Escape::SessionStart => timestamp_shape(v) == Some(false),
            Escape::TimeMs => timestamp_shape(v) == Some(true),
            Escape::Host => !v.contains(&b' '),
            Escape::HostPort => {
                !v.contains(&b' ')
                    && match v.iter().rposition(|&b| b == b'(') {
                        Some(i) => v.last() == Some(&b')') && digits(&v[i + 1..v.len() - 1]),
                        None => !v.contains(&b')'),
                    }
            }
            Escape::Application
            | Escape::User
            | Escape::Database
            | Escape::BackendType
            | Escape::CommandTag => true,
        }
    }
}

/// One piece of a compiled prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Literal bytes: a range of [`Prefix::literals`].
    Literal(Range<usize>),
    /// A value, with its padding (negative = left-justified).
    Field(Escape, i32),
    /// `%q`: background processes end the prefix here.
    StopUnlessSession,
}

/// A compiled `log_line_prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    literals: Vec<u8>,
    items: Vec<Item>,
}

/// Where the values of a matched line are: byte ranges of the line, padding removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Captures {
    /// The best timestamp of the line: `%m`, else `%n`, else `%t`.
    pub time: Option<(Escape, usize, usize)>,
    pub pid: Option<(usize, usize)>,
    pub user: Option<(usize, usize)>,
    pub database: Option<(usize, usize)>,
    pub application: Option<(usize, usize)>,
    /// Host only: `%h`, or the host of `%r`.
    pub client: Option<(usize, usize)>,
    pub sqlstate: Option<(usize, usize)>,
}

/// A line whose prefix matched and which a severity word follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub caps: Captures,
    /// `LOG`, `DETAIL`, …
    pub word: Word,
    /// Offset of the text after `WORD:  `.
    pub text: usize,
}

/// Search state of one line.
struct Search {
    caps: Captures,
    budget: u32,
    word: Word,
    text: usize,
    /// Per field followed by a literal: the literal does not occur at or after this offset
    /// (a failed search is not repeated from a later start: keeps hostile lines linear).
    literal_absent_from: [usize; MEMO_ITEMS],
}

impl Prefix {
    /// Compiles a `log_line_prefix` value.
    pub fn compile(prefix: &str) -> Result<Prefix, PrefixError> {
        let p = prefix.as_bytes();
        if p.len() > MAX_PREFIX_BYTES {
            return Err(PrefixError::TooLong);
        }
        let mut literals = Vec::new();
        let mut items = Vec::new();
        let mut lit_start = 0;
        let push_item = |items: &mut Vec<Item>, item: Item| {
            if items.len() >= MAX_ITEMS {
                return Err(PrefixError::TooLong);
            }
            items.push(item);
            Ok(())
        };
        let mut i = 0;
        while i < p.len() {
            if p[i] != b'%' {
                literals.push(p[i]);
                i += 1;
                continue;
            }
            i += 1;
            if p.get(i) == Some(&b'%') {
                literals.push(b'%');
                i += 1;
                continue;
            }
            let mut sign = 1;
            if p.get(i) == Some(&b'-') {
                sign = -1;
                i += 1;
            }
            let mut pad: i32 = 0;
            while let Some(d) = p.get(i).filter(|d| d.is_ascii_digit()) {
                pad = pad.saturating_mul(10).saturating_add(i32::from(d - b'0'));
                i += 1;
            }
            // Padding beyond a line is nonsense; keep the arithmetic small.
            let pad = sign * pad.min(1 << 16);
            // A '%' at the very end is written as nothing, like an unknown escape.
            let Some(&letter) = p.get(i) else {
                break;
            };
            i += 1;
            let item = if letter == b'q' {
                Item::StopUnlessSession
            } else if let Some(e) = Escape::from_letter(letter) {
                Item::Field(e, pad)
            } else {
                // The server writes nothing for an unknown escape (one byte, like elog.c:
                // the rest of a multi-byte letter stays literal text), so the same prefix
                // must read its lines.
                continue;
            };
            if literals.len() > lit_start {
                push_item(&mut items, Item::Literal(lit_start..literals.len()))?;
                lit_start = literals.len();
            }
            push_item(&mut items, item)?;
        }
        if literals.len() > lit_start {
            push_item(&mut items, Item::Literal(lit_start..literals.len()))?;
        }
        Ok(Prefix { literals, items })
    }

    /// Matches `line` (no '\n'): `None` unless the whole prefix matches and a severity word
    /// follows it.
    pub fn match_line(&self, line: &[u8]) -> Option<Match> {
        let mut s = Search {
            caps: Captures::default(),
            budget: MATCH_BUDGET,
            word: Word::Location,
            text: 0,
            literal_absent_from: [usize::MAX; MEMO_ITEMS],
        };
        if self.go(0, line, 0, &mut s) {
            Some(Match {
                caps: s.caps,
                word: s.word,
                text: s.text,
            })
        } else {
            None
        }
    }

    fn accept_end(line: &[u8], pos: usize, s: &mut Search) -> bool {
        match word_at(line, pos) {
            Some((w, text)) => {
                s.word = w;
                s.text = text;
                true
            }
            None => false,
        }
    }

    /// Matches items `i..` at `line[pos..]`; captures are set on the way back from a success.
    fn go(&self, i: usize, line: &[u8], pos: usize, s: &mut Search) -> bool {
        if s.budget == 0 {
            return false;
        }
        s.budget -= 1;
        match self.items.get(i) {
            None => Self::accept_end(line, pos, s),
            Some(Item::Literal(r)) => {
                let lit = &self.literals[r.clone()];
                line.get(pos..).is_some_and(|rest| rest.starts_with(lit))
                    && self.go(i + 1, line, pos + lit.len(), s)
            }
            Some(Item::StopUnlessSession) => {
                Self::accept_end(line, pos, s) || self.go(i + 1, line, pos, s)
            }
            Some(&Item::Field(esc, pad)) => {
                let extent = match esc.charset() {
                    Some(ok) => {
                        // Shaped values are short: padding plus at most SHAPED_MAX bytes.
                        let cap = line
                            .len()
                            .min(pos + pad.unsigned_abs() as usize + SHAPED_MAX);
                        pos + line[pos..cap]
                            .iter()
                            .position(|&b| !ok(b))
                            .unwrap_or(cap - pos)
                    }
                    None => line.len(),
                };
                if let Some(Item::Literal(r)) = self.items.get(i + 1) {
                    let lit = &self.literals[r.clone()];
                    let mut from = pos;
                    while from <= extent {
                        if s.literal_absent_from.get(i).is_some_and(|&a| from >= a) {
                            return false;
                        }
                        let Some(at) = find(&line[from..], lit) else {
                            if let Some(a) = s.literal_absent_from.get_mut(i) {
                                *a = from;
                            }
                            return false;
                        };
                        let end = from + at;
                        if end > extent {
                            return false;
                        }
                        if self.try_field(esc, pad, i, line, pos, end, s) {
                            return true;
                        }
                        if s.budget == 0 {
                            return false;
                        }
                        from = end + 1;
                    }
                    false
                } else {
                    for end in pos..=extent {
                        if self.try_field(esc, pad, i, line, pos, end, s) {
                            return true;
                        }
                        if s.budget == 0 {
                            return false;
                        }
                    }
                    false
                }
            }
        }
    }

    /// Tries `line[pos..end]` as the value of field `i`, then the rest of the prefix.
    #[allow(clippy::too_many_arguments)]
    fn try_field(
        &self,
        esc: Escape,
        pad: i32,
        i: usize,
        line: &[u8],
        pos: usize,
        end: usize,
        s: &mut Search,
    ) -> bool {
        let raw = &line[pos..end];
        let width = pad.unsigned_abs() as usize;
        if raw.len() < width {
            return false;
        }
        let (mut a, mut b) = (pos, end);
        if pad > 0 || esc.charset().is_some() {
            a += raw.iter().take_while(|&&c| c == b' ').count();
        }
        if pad < 0 || esc.charset().is_some() {
            b -= line[a..b].iter().rev().take_while(|&&c| c == b' ').count();
        }
        if !esc.valid(&line[a..b]) || !self.go(i + 1, line, end, s) {
            return false;
        }
        let c = &mut s.caps;
        let r = Some((a, b));
        match esc {
            Escape::Pid => c.pid = c.pid.or(r),
            Escape::User => c.user = c.user.or(r),
            Escape::Database => c.database = c.database.or(r),
            Escape::Application => c.application = c.application.or(r),
            Escape::SqlState => c.sqlstate = c.sqlstate.or(r),
            Escape::Host => c.client = c.client.or(r),
            Escape::HostPort => {
                let v = &line[a..b];
                let host_end = match v.iter().rposition(|&x| x == b'(') {
                    Some(k) => a + k,
                    None => b,
                };
                c.client = c.client.or(Some((a, host_end)));
            }
            Escape::TimeMs | Escape::Epoch | Escape::Time => {
                let rank = |e: Escape| match e {
                    Escape::TimeMs => 3,
                    Escape::Epoch => 2,
                    _ => 1,
                };
                if c.time.is_none_or(|(old, _, _)| rank(old) < rank(esc)) {
                    c.time = Some((esc, a, b));
                }
            }
            _ => {}
        }
        true
    }
}

/// First occurrence of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = super::find_byte(&hay[from..], first) {
        let at = from + i;
        if hay[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// `YYYY-MM-DD HH:MM:SS[.fff] [ABBR]` → (local seconds since the epoch, nanoseconds,
/// abbreviation, whether a fraction was present). The abbreviation is letters, digits, `+`,
/// `-` or `:` (`CET`, `+03`, `-0530`); it may be absent (csv `session_start_time` has one,
/// but accept both).
pub fn parse_timestamp(v: &[u8]) -> Option<(i64, u32, &[u8], bool)> {
    if v.len() < 19 {
        return None;
    }
    let n = |r: Range<usize>| -> Option<u32> {
        v[r].iter().try_fold(0u32, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    };
    if v[4] != b'-' || v[7] != b'-' || v[10] != b' ' || v[13] != b':' || v[16] != b':' {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &v[19..];
    let mut nanos = 0u32;
    let mut frac = false;
    if let Some(r) = rest.strip_prefix(b".") {
        let k = r.iter().take_while(|b| b.is_ascii_digit()).count();
        if k == 0 || k > 9 {
            return None;
        }
        let mut val = n(20..20 + k)?;
        for _ in k..9 {
            val *= 10;
        }
        nanos = val;
        frac = true;
        rest = &r[k..];
    }
    let abbr = match rest {
        [] => rest,
        [b' ', a @ ..]
            if !a.is_empty()
                && a.iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b':')) =>
        {
            a
        }
        _ => return None,
    };
    let days = crate::calendar::days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h * 3600 + mi * 60 + sec);
    Some((secs, nanos, abbr, frac))
}

/// Whether `v` has the shape `YYYY-MM-DD HH:MM:SS[.fff] ABBR` (the fraction's presence), the
/// cheap check made while matching; [`parse_timestamp`] reads the values of a kept entry.
fn timestamp_shape(v: &[u8]) -> Option<bool> {
    let head = v.get(..19)?;
    let ok = head.iter().enumerate().all(|(i, &b)| match i {
        4 | 7 => b == b'-',
        10 => b == b' ',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    let two = |i: usize| (head[i] - b'0') * 10 + (head[i + 1] - b'0');
    if !ok
        || !(1..=12).contains(&two(5))
        || !(1..=31).contains(&two(8))
        || two(11) > 23
        || two(14) > 59
        || two(17) > 60
    {
        return None;
    }
    let mut rest = &v[19..];
    let frac = rest.first() == Some(&b'.');
    if frac {
        let k = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if k == 0 || k > 9 {
            return None;
        }
        rest = &rest[1 + k..];
    }
    let abbr = rest.strip_prefix(b" ")?;
    let abbr_ok = !abbr.is_empty()
        && abbr
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b':'));
    abbr_ok.then_some(frac)
}

/// `%n`: `1234567890.123` → (seconds, nanoseconds).
pub fn parse_epoch(v: &[u8]) -> Option<(i64, u32)> {
    let dot = v.iter().position(|&b| b == b'.')?;
    let (s, f) = (&v[..dot], &v[dot + 1..]);
    if s.is_empty() || s.len() > 12 || f.is_empty() || f.len() > 9 {
        return None;
    }
    if !s.iter().chain(f).all(u8::is_ascii_digit) {
        return None;
    }
    let secs = s.iter().fold(0i64, |a, &b| a * 10 + i64::from(b - b'0'));
    let mut nanos = f.iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
    for _ in f.len()..9 {
        nanos *= 10;
    }
    Some((secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(prefix: &str, line: &str) -> Option<(Match, String)> {
        let p = Prefix::compile(prefix).unwrap();
        p.match_line(line.as_bytes())
            .map(|mm| (mm, line[mm.text..].to_string()))
    }

    fn get(line: &str, r: Option<(usize, usize)>) -> Option<&str> {
        r.map(|(a, b)| &line[a..b])
    }

    #[test]
    fn debian_default_session_and_background() {
        let pre = "%m [%p] %q%u@%d ";
        let l =
            "2026-11-27 21:33:02.966 CET [4242] app@shop ERROR:  relation \"foo\" does not exist";
        let (mm, text) = m(pre, l).unwrap();
        assert_eq!(mm.word, Word::Severity(8));
        assert_eq!(text, "relation \"foo\" does not exist");
        assert_eq!(get(l, mm.caps.pid), Some("4242"));
        assert_eq!(get(l, mm.caps.user), Some("app"));
        assert_eq!(get(l, mm.caps.database), Some("shop"));
        let (e, a, b) = mm.caps.time.unwrap();
        assert_eq!(
            (e, &l[a..b]),
            (Escape::TimeMs, "2026-11-27 21:33:02.966 CET")
        );
        // Background process: the prefix stops at %q, even with '@' in the message.
        let l = "2026-11-27 21:33:02.966 CET [77] LOG:  checkpoint by x@y z";
        let (mm, text) = m(pre, l).unwrap();
        assert_eq!(mm.word, Word::Severity(9));
        assert_eq!(text, "checkpoint by x@y z");
        assert_eq!(mm.caps.user, None);
        // A session line whose user is empty-ish still matches.
        let l = "2026-11-27 21:33:02.966 CET [78] [unknown]@[unknown] LOG:  connection received";
        let (mm, _) = m(pre, l).unwrap();
        assert_eq!(get(l, mm.caps.user), Some("[unknown]"));
        // Not a prefix line.
        assert!(m(pre, "\tcontinued text").is_none());
        assert!(m(pre, "2026-11-27 21:33:02.966 CET [78] no level here").is_none());
    }

    #[test]
    fn every_escape_with_padding() {
        let pre = "%%|%a|%u|%d|%r|%h|%b|%p|%P|%t|%m|%n|%i|%e|%c|%l|%s|%v|%x|%Q|%-10u|%8p|%q> ";
        let l = "%|psql app|bob|db x|10.0.0.5(5432)|10.0.0.5|client backend|4242||\
                 2026-07-01 12:00:00 CEST|2026-07-01 12:00:00.123 CEST|1782900000.123|\
                 SELECT|42P01|6a7b.1092|3|2026-07-01 11:59:00 CEST|3/17|0|-12345|\
                 bob       |    4242|> ERROR:  boom";
        let (mm, text) = m(pre, l).unwrap();
        assert_eq!(text, "boom");
        assert_eq!(get(l, mm.caps.application), Some("psql app"));
        assert_eq!(get(l, mm.caps.user), Some("bob"));
        assert_eq!(get(l, mm.caps.database), Some("db x"));
        assert_eq!(get(l, mm.caps.client), Some("10.0.0.5"));
        assert_eq!(get(l, mm.caps.pid), Some("4242"));
        assert_eq!(get(l, mm.caps.sqlstate), Some("42P01"));
        let (e, a, b) = mm.caps.time.unwrap();
        assert_eq!(
            (e, &l[a..b]),
            (Escape::TimeMs, "2026-07-01 12:00:00.123 CEST")
        );
        // The same prefix for a background process: stops at %q, empty session fields.
        let l = concat!(
            "%||||||checkpointer|4243||2026-07-01 12:00:00 CEST|2026-07-01 12:00:00.123 CEST|",
            "1782900000.123||00000|6a7c.1093|1|2026-07-01 11:00:00 CEST||0|0|",
            "          |    4243|LOG:  checkpoint starting: time"
        );
        let (mm, text) = m(pre, l).unwrap();
        assert_eq!(text, "checkpoint starting: time");
        assert_eq!(get(l, mm.caps.user), Some(""));
    }

    #[test]
    fn each_escape_alone() {
        let cases: &[(&str, &str, &str)] = &[
            ("%a ", "my app ", "LOG"),
            ("%u ", "bob ", "LOG"),
            ("%d ", "shop ", "LOG"),
            ("%r ", "[local] ", "LOG"),
            ("%r ", "::1(5432) ", "LOG"),
            ("%h ", "192.168.1.1 ", "LOG"),
            ("%b ", "autovacuum worker ", "LOG"),
            ("%p ", "1 ", "LOG"),
            ("%P ", " ", "LOG"),
            ("%P ", "77 ", "LOG"),
            ("%t ", "2026-01-01 00:00:00 +03 ", "LOG"),
            ("%m ", "2026-01-01 00:00:00.000 -0530 ", "LOG"),
            ("%n ", "1767225600.000 ", "LOG"),
            ("%i ", "idle in transaction ", "LOG"),
            ("%e ", "XX000 ", "PANIC"),
            ("%c ", "6a7b8c9d.3f2 ", "LOG"),
            ("%l ", "12 ", "LOG"),
            ("%s ", "2026-01-01 00:00:00 UTC ", "LOG"),
            ("%v ", "4/1234 ", "LOG"),
            ("%v ", " ", "LOG"),
            ("%x ", "0 ", "LOG"),
            ("%Q ", "-8453221 ", "LOG"),
            ("%%%p ", "%12 ", "WARNING"),
            ("%-6p|", "12    |", "NOTICE"),
            ("%6p|", "    12|", "INFO"),
            ("%-8d|", "        |", "DEBUG"),
            ("", "", "FATAL"),
        ];
        for (pre, head, level) in cases {
            let line = format!("{head}{level}:  message");
            let r = m(pre, &line);
            assert!(r.is_some(), "{pre:?} on {line:?}");
            assert_eq!(r.unwrap().1, "message", "{pre:?}");
        }
        // Shapes are checked.
        for (pre, head) in [
            ("%p ", "12a "),
            ("%e ", "42P0 "),
            ("%m ", "2026-01-01 00:00:00 CET "),
            ("%t ", "2026-13-01 00:00:00 CET "),
            ("%n ", "1767225600 "),
            ("%r ", "host (5432) "),
            ("%-6p|", "12|"),
        ] {
            assert!(
                m(pre, &format!("{head}LOG:  x")).is_none(),
                "{pre:?} {head:?}"
            );
        }
    }

    #[test]
    fn hostile_lines_stay_cheap() {
        // Many candidate ends for %u, no level word anywhere: bounded work, no match.
        let mut l = String::from("2026-11-27 21:33:02.966 CET [1] ");
        l.push_str(&"@".repeat(60_000));
        let p = Prefix::compile("%m [%p] %q%u@%d ").unwrap();
        assert!(p.match_line(l.as_bytes()).is_none());
        let mut l = String::from("2026-11-27 21:33:02.966 CET [1] ");
        l.push_str(&"@ ".repeat(30_000));
        assert!(p.match_line(l.as_bytes()).is_none());
        let p = Prefix::compile("%u%u%u%u%u%u%u%u ").unwrap();
        assert!(p.match_line(&[b'x'; 60_000]).is_none());
        let p = Prefix::compile("%p%l%x%p%l%x ").unwrap();
        assert!(p.match_line(&[b'1'; 60_000]).is_none());
    }

    #[test]
    fn compile_errors() {
        // Unknown escapes are nothing, as the server writes them.
        let p = Prefix::compile("%z%m [%p] ").unwrap();
        assert!(
            p.match_line(b"2026-11-27 21:33:02.966 CET [78] LOG:  x")
                .is_some()
        );
        let p = Prefix::compile("[%-5é] ").unwrap();
        assert!(p.match_line(b"[\xa9] LOG:  x").is_some());
        // So is a '%' at the end.
        let p = Prefix::compile("%p %-5").unwrap();
        assert!(p.match_line(b"78 LOG:  x").is_some());
        assert!(Prefix::compile(&"%p".repeat(100)).is_err());
    }

    #[test]
    fn timestamps() {
        let (s, n, abbr, frac) = parse_timestamp(b"2026-11-27 21:33:02.966 CET").unwrap();
        assert_eq!(
            (s, n, abbr, frac),
            (1_795_815_182, 966_000_000, &b"CET"[..], true)
        );
        assert_eq!(
            parse_epoch(b"1782900000.123"),
            Some((1_782_900_000, 123_000_000))
        );
        assert!(parse_timestamp(b"2026-11-27 21:33:02.966 ").is_none());
        assert!(parse_timestamp(b"2026-11-27T21:33:02").is_none());
        for v in [
            &b"2026-11-27 21:33:02.966 CET"[..],
            b"2026-11-27 21:33:02 +0530",
            b"2026-11-27 21:33:02.9 ",
            b"2026-11-27 21:33:02",
            b"2026-11-27 21:33:02.x CET",
            b"2026-11-27 21:33:02 C T",
            b"2026-13-27 21:33:02 CET",
            b"2026-12-27 24:33:02 CET",
        ] {
            // The matching check agrees with the full parse (which also takes no abbreviation).
            let full = parse_timestamp(v).filter(|(_, _, a, _)| !a.is_empty());
            assert_eq!(timestamp_shape(v), full.map(|(_, _, _, f)| f), "{v:?}");
        }
    }
}
