//! The PostgreSQL log format: server log bytes to entries (docs/metrics.md, `pg_log`); pure, no I/O.
//!
//! Not the agent's own logging (that is [`crate::agent_log`]), and not the collector that finds,
//! follows and acknowledges the log files ([`crate::collect::pg::pg_log`]).
//!
//! What this does: frame records of the three log formats (`stderr` lines, `csvlog` records
//! whose quoted fields span lines, `jsonlog` lines), assemble multi-line entries (`DETAIL:`,
//! `HINT:`, `CONTEXT:`, `STATEMENT:` lines and tab-indented continuations), keep the ones at or
//! above `min_level`, cap their size, and turn their timestamps to UTC with the log's zone.
//! What it does not do: open, follow or rotate files, remember offsets, or discover settings
//! (the `pg_log` collector does), nor read the clock (an entry without a timestamp has `None`).
//!
//! ```text
//!   caller's fixed buffer ──feed──▶ frame record ──▶ stderr: prefix match ─┐
//!        ▲      (consumed)          (whole lines,     csv: 23..26 fields  ├─▶ pending entry ─▶ sink
//!        └── unconsumed tail        quotes closed)    json: one object   ─┘   (next record
//!            fed again with more                                               or finish)
//! ```
//!
//! Memory never grows with the input: a record longer than the caller's buffer is cut (the
//! caller says so with `full`), its start kept within the caps, the rest skipped; one pending
//! entry is held at most, itself capped at `max_entry_bytes`.
//!
//! Quirks of the source format:
//! - PostgreSQL writes `DEBUG` for all of DEBUG1..DEBUG5 (elog.c `error_severity`); such lines
//!   pass any `min_level` of DEBUG5..DEBUG1.
//! - Severity words are translated when `lc_messages` is not English; only the English words
//!   are recognised (a translated line reads as a continuation of the entry before it).
//! - With `log_error_verbosity = verbose` the SQLSTATE opens the message (`ERROR:  42P01: …`)
//!   and a `LOCATION:` line follows; the location is part of the entry but not kept, like the
//!   internal `QUERY:` (the entry has no field for either).
//! - SQLSTATE `00000` (successful completion, the code of every LOG line) is written by csvlog
//!   and `%e`, left out by jsonlog: it is reported as no code (`None`) in all three formats.
//!   Likewise `[unknown]` (stderr's `%u`/`%d`/`%a` before the startup packet is read) is
//!   `None`, as csvlog and jsonlog have it.
//! - stderr appends ` at character N` (translated, so recognised in English only) to a message
//!   whose error has a cursor position, else an internal query position (elog.c
//!   `send_message_to_server_log`); csvlog (`query_pos`, `internal_query_pos`) and jsonlog
//!   (`cursor_position`, `internal_position`) carry them as fields. All three give
//!   [`Entry::cursor_position`] by that rule, and the stderr message loses the suffix.
//! - auto_explain writes `duration: N ms  plan:` and the plan in one message ([`plan`]): the
//!   message cap does not apply to it, the entry cap does. A json plan is parsed into a
//!   `serde_json::Value` (at most the 64 KiB entry, nesting at most serde_json's 128 levels).

pub mod csv;
pub mod json;
pub mod plan;
pub mod prefix;

use crate::config::PgSeverity;
use crate::tz;
use crate::util::WallTime;

pub use plan::Plan;
use prefix::{Escape, Prefix};

/// The log's format (`log_destination`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Stderr,
    Csvlog,
    Jsonlog,
}

impl Format {
    /// The format `[pg_log] format` names (`None` for `auto`: ask the server).
    pub fn from_config(f: crate::config::PgLogFormat) -> Option<Format> {
        use crate::config::PgLogFormat;
        match f {
            PgLogFormat::Auto => None,
            PgLogFormat::Stderr => Some(Format::Stderr),
            PgLogFormat::Csvlog => Some(Format::Csvlog),
            PgLogFormat::Jsonlog => Some(Format::Jsonlog),
        }
    }

    /// The format of a `log_destination` / `current_logfiles` word (`stderr`, `csvlog`,
    /// `jsonlog`); `None` for the others (`syslog`, `eventlog`).
    pub fn from_destination(word: &str) -> Option<Format> {
        match word.trim() {
            "stderr" => Some(Format::Stderr),
            "csvlog" => Some(Format::Csvlog),
            "jsonlog" => Some(Format::Jsonlog),
            _ => None,
        }
    }
}

/// What the parser needs to know about the log.
#[derive(Debug, Clone)]
pub struct ParseSettings {
    pub format: Format,
    /// Used by `Stderr`, e.g. `"%m [%p] %q%u@%d "`.
    pub log_line_prefix: String,
    /// Zone of the log's timestamps ([`tz::Zone::utc`] when unknown).
    pub zone: tz::Zone,
    /// Entries below this severity (server order) are dropped.
    pub min_level: PgSeverity,
    /// A message is cut here, on a UTF-8 character boundary.
    pub max_message_bytes: usize,
    /// The whole entry (message + detail + hint + context + statement) is cut here.
    pub max_entry_bytes: usize,
}

/// Bytes one entry may hold at most (docs/metrics.md, `pg_log`: one multi-line entry is cut at 64 KiB).
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;

/// One log entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entry {
    /// UTC; `None` when the record has none.
    #[serde(serialize_with = "ser_time")]
    pub timestamp: Option<WallTime>,
    /// `DEBUG` (DEBUG1..5), `INFO`, `NOTICE`, `WARNING`, `ERROR`, `LOG`, `FATAL`, `PANIC`.
    pub level: &'static str,
    pub message: String,
    pub pid: Option<i64>,
    pub user: Option<String>,
    pub database: Option<String>,
    pub application: Option<String>,
    /// Host only (no port): `10.0.0.5`, `[local]`.
    pub client: Option<String>,
    pub sqlstate: Option<String>,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub context: Option<String>,
    pub statement: Option<String>,
    /// From `duration: 12.345 ms`.
    pub duration_ms: Option<f64>,
    /// Where in the statement the error is (1-based, in characters): csvlog's `query_pos` /
    /// jsonlog's `cursor_position`, else the internal query's position; stderr's
    /// ` at character N`, taken off the message.
    pub cursor_position: Option<i64>,
    /// An auto_explain plan (the message is then its `duration: N ms  plan:` header).
    pub plan: Option<Plan>,
    /// The plan was cut by the entry cap (it is then text).
    pub plan_truncated: bool,
    /// The message or the entry was cut.
    pub truncated: bool,
}

fn ser_time<S: serde::Serializer>(t: &Option<WallTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(&t.rfc3339_millis()),
        None => s.serialize_none(),
    }
}

/// What `%u`, `%d` and `%a` write before a session knows its user, database, application.
const UNKNOWN: &str = "[unknown]";

/// SQLSTATE "successful completion": reported as no code.
pub(crate) const NO_SQLSTATE: &str = "00000";

/// The word after a prefix: a severity opens an entry, the others fill the entry before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    /// Rank in server order: `PgSeverity as u8` (DEBUG5 = 0 … PANIC = 11).
    Severity(u8),
    Detail,
    Hint,
    Context,
    Statement,
    Query,
    Location,
}

/// Rank of a severity, as [`Word::Severity`] holds it.
fn rank(s: PgSeverity) -> u8 {
    s as u8
}

/// The name an entry reports for a rank.
pub(crate) fn level_name(rank: u8) -> &'static str {
    match rank {
        0..=4 => "DEBUG",
        5 => "INFO",
        6 => "NOTICE",
        7 => "WARNING",
        8 => "ERROR",
        9 => "LOG",
        10 => "FATAL",
        _ => "PANIC",
    }
}

/// A severity or field word (`ERROR`, `DETAIL`, …), as written in all three formats.
pub fn word(w: &[u8]) -> Option<Word> {
    Some(match w {
        b"LOG" => Word::Severity(9),
        b"ERROR" => Word::Severity(8),
        b"WARNING" => Word::Severity(7),
        b"NOTICE" => Word::Severity(6),
        b"INFO" => Word::Severity(5),
        b"FATAL" => Word::Severity(10),
        b"PANIC" => Word::Severity(11),
        // elog.c writes DEBUG for every debug level: rank it as the highest, DEBUG1.
        b"DEBUG" | b"DEBUG1" => Word::Severity(4),
        b"DEBUG2" => Word::Severity(3),
        b"DEBUG3" => Word::Severity(2),
        b"DEBUG4" => Word::Severity(1),
        b"DEBUG5" => Word::Severity(0),
        b"DETAIL" => Word::Detail,
        b"HINT" => Word::Hint,
        b"CONTEXT" => Word::Context,
        b"STATEMENT" => Word::Statement,
        b"QUERY" => Word::Query,
        b"LOCATION" => Word::Location,
        _ => return None,
    })
}

/// `WORD:  ` at `line[pos..]` → the word and the offset of the text after it.
pub fn word_at(line: &[u8], pos: usize) -> Option<(Word, usize)> {
    let rest = line.get(pos..)?;
    // The longest word is STATEMENT / LOCATION (9 bytes).
    let colon = rest.iter().take(10).position(|&b| b == b':')?;
    let w = word(&rest[..colon])?;
    if rest.get(colon + 1..colon + 3) != Some(b"  ") {
        return None;
    }
    Some((w, pos + colon + 3))
}

/// The section of the pending entry that continuation text goes to (message, `DETAIL:`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Message,
    Detail,
    Hint,
    Context,
    Statement,
    /// `QUERY:` / `LOCATION:` text: part of the entry, not kept.
    Drop,
}

/// The entry being assembled.
#[derive(Debug)]
pub(crate) struct Pending {
    entry: Entry,
    /// File offset of its first record.
    start: u64,
    /// File offset just after its last record so far.
    end: u64,
    target: Section,
    /// Text bytes held (message + detail + hint + context + statement).
    bytes: usize,
    /// The message opens with an auto_explain header: `max_message_bytes` does not apply to
    /// it, the entry cap does.
    plan: bool,
}

/// Caps of one entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    message: usize,
    entry: usize,
}

impl Pending {
    pub(crate) fn new(entry: Entry, start: u64, end: u64) -> Pending {
        Pending {
            entry,
            start,
            end,
            target: Section::Message,
            bytes: 0,
            plan: false,
        }
    }

    /// Appends `text` (lossy UTF-8) to field `t`, after `sep` when the field is not empty,
    /// within the caps; marks the entry truncated when anything is cut.
    pub(crate) fn append(&mut self, t: Section, sep: &str, text: &[u8], caps: Caps) {
        let e = &mut self.entry;
        if t == Section::Message && e.message.is_empty() {
            self.plan = plan::header_len(&lossy(text)).is_some();
        }
        let message_cap = if self.plan {
            caps.entry
        } else {
            caps.message.min(caps.entry)
        };
        let (field, limit) = match t {
            Section::Message => (&mut e.message, message_cap),
            Section::Detail => (e.detail.get_or_insert_with(String::new), caps.entry),
            Section::Hint => (e.hint.get_or_insert_with(String::new), caps.entry),
            Section::Context => (e.context.get_or_insert_with(String::new), caps.entry),
            Section::Statement => (e.statement.get_or_insert_with(String::new), caps.entry),
            Section::Drop => return,
        };
        let room_field = limit.saturating_sub(field.len());
        let room = room_field.min(caps.entry.saturating_sub(self.bytes));
        let sep = if field.is_empty() { "" } else { sep };
        let text = lossy(text);
        let want = sep.len() + text.len();
        if want <= room {
            field.push_str(sep);
            field.push_str(&text);
            self.bytes += want;
            return;
        }
        e.truncated = true;
        if room < sep.len() {
            return;
        }
        field.push_str(sep);
        let cut = floor_char_boundary(&text, room - sep.len());
        field.push_str(&text[..cut]);
        self.bytes += sep.len() + cut;
    }

    /// Completes the entry: `duration_ms` from its message, the plan split off it;
    /// `stderr`: the ` at character N` suffix taken off the message as `cursor_position`.
    fn into_entry(mut self, stderr: bool, caps: Caps) -> (Entry, u64) {
        let e = &mut self.entry;
        e.duration_ms = duration_ms(&e.message);
        if stderr && let Some((keep, pos)) = cursor_suffix(&e.message) {
            e.message.truncate(keep);
            e.cursor_position = Some(pos);
        }
        if let Some(x) = plan::parse(&e.message, e.truncated) {
            e.message.truncate(x.header);
            e.plan_truncated = e.truncated && matches!(x.plan, Plan::Text(_));
            e.plan = Some(x.plan);
            if x.statement.is_some() {
                e.statement = x.statement;
            }
        } else if e.message.len() > caps.message {
            // A plan header with no plan after it: an ordinary message, held to its cap.
            let cut = floor_char_boundary(&e.message, caps.message);
            e.message.truncate(cut);
            e.truncated = true;
        }
        (self.entry, self.end)
    }
}

/// The largest char boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    let mut i = at;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// ` at character N` at the end of a stderr message (elog.c appends it, translated, when the
/// error has a cursor or internal position) → (length of the message before it, N).
fn cursor_suffix(message: &str) -> Option<(usize, i64)> {
    const AT: &str = " at character ";
    let digits = message.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 10 {
        return None;
    }
    let num_at = message.len() - digits;
    let keep = message[..num_at].strip_suffix(AT)?.len();
    let n: i64 = message[num_at..].parse().ok()?;
    (n > 0).then_some((keep, n))
}

/// `duration: 12.345 ms…` → 12.345.
fn duration_ms(message: &str) -> Option<f64> {
    let rest = message.strip_prefix("duration: ")?;
    let end = rest.find(" ms")?;
    let n = &rest[..end];
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    n.parse().ok()
}

/// What the rest of a cut record is skipped as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    No,
    /// Up to and including the next '\n' (stderr, json).
    Line,
    /// Up to the end of a csv record; `in_quotes` is the quote state where the cut happened.
    Csv {
        in_quotes: bool,
    },
}

/// Bytes → entries for one log file.
#[derive(Debug)]
pub struct Parser {
    format: Format,
    prefix: Prefix,
    zone: tz::Zone,
    min_rank: u8,
    caps: Caps,
    /// Absolute file offset of the next byte to consume.
    pos: u64,
    /// The entry being assembled (stderr: until the next record starts; csv/json: only while
    /// the rest of its cut record is skipped).
    pending: Option<Pending>,
    skip: Skip,
    /// Start of the cut record being skipped when no pending entry holds it (a filtered one).
    skip_start: Option<u64>,
    /// Looking for the first plausible record start (after `reset(_, true)`).
    resync: bool,
}

impl Parser {
    /// A parser at offset 0. Errors (a bad prefix) are one line.
    pub fn new(settings: ParseSettings) -> Result<Parser, String> {
        let prefix = match settings.format {
            Format::Stderr => Prefix::compile(&settings.log_line_prefix).map_err(|e| {
                format!(
                    "log_line_prefix {:?}: {e} (fix [pg_log] log_line_prefix)",
                    settings.log_line_prefix
                )
            })?,
            // Unused by csv and json.
            _ => Prefix::compile("").map_err(|e| e.to_string())?,
        };
        Ok(Parser {
            format: settings.format,
            prefix,
            zone: settings.zone,
            min_rank: rank(settings.min_level),
            caps: Caps {
                message: settings.max_message_bytes,
                entry: settings.max_entry_bytes,
            },
            pos: 0,
            pending: None,
            skip: Skip::No,
            skip_start: None,
            resync: false,
        })
    }

    /// Starts (again) at absolute offset `pos`; `resync` = `pos` may be inside a record: skip
    /// to the first plausible record start. Drops any pending entry.
    pub fn reset(&mut self, pos: u64, resync: bool) {
        self.pos = pos;
        self.pending = None;
        self.skip = Skip::No;
        self.skip_start = None;
        self.resync = resync;
    }

    /// Absolute position consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Where reading may safely resume: the start of the pending entry (or of a cut record
    /// being skipped), else the consumed position.
    pub fn resume_offset(&self) -> u64 {
        match (&self.pending, self.skip_start) {
            (Some(p), _) => p.start,
            (None, Some(s)) => s,
            (None, None) => self.pos,
        }
    }

    /// Feeds the next bytes of the file; returns how many were consumed (only whole records,
    /// unless `full`: then a record that does not fit is consumed cut). Completed entries that
    /// pass `min_level` go to `sink(entry, end offset)`.
    pub fn feed(&mut self, input: &[u8], full: bool, sink: &mut dyn FnMut(Entry, u64)) -> usize {
        let mut off = 0;
        while off < input.len() {
            let rest = &input[off..];
            if self.skip != Skip::No {
                off += self.skip_rest(rest, sink);
                continue;
            }
            if self.resync && self.format == Format::Csvlog {
                // Inside a quoted field, maybe: look at line starts until one opens with a
                // timestamp, then frame csv records from there.
                if find_newline(rest).is_none() && !(full && off == 0) && rest.len() < 19 {
                    break;
                }
                if csv::starts_with_timestamp(rest) {
                    self.resync = false;
                    continue;
                }
            }
            let framed = match self.format {
                Format::Csvlog if !self.resync => csv::record_len(rest, false).0,
                _ => find_newline(rest).map(|i| i + 1),
            };
            let (len, complete) = match framed {
                Some(n) => (n, true),
                None if full && off == 0 => (rest.len(), false),
                None => break,
            };
            let start = self.pos;
            self.pos += len as u64;
            off += len;
            let mut record = &rest[..len];
            if complete {
                record = &record[..len - 1];
                if let [head @ .., b'\r'] = record {
                    record = head;
                }
            }
            self.record(record, start, complete, sink);
            if !complete {
                self.skip = match self.format {
                    Format::Csvlog if !self.resync => Skip::Csv {
                        in_quotes: csv::record_len(record, false).1,
                    },
                    _ => Skip::Line,
                };
                if self.pending.is_none() {
                    self.skip_start = Some(start);
                }
            }
        }
        off
    }

    /// Ends the pending entry (no more bytes for now, or the file is finished).
    ///
    /// A record cut by a full buffer whose end has not been read yet ends its entry here too
    /// (its `end` is then the position reached); the rest of that record, when it comes, is
    /// still skipped by this parser.
    pub fn finish(&mut self, sink: &mut dyn FnMut(Entry, u64)) {
        self.flush(sink);
    }

    /// Skips the rest of a cut record; returns the bytes consumed.
    fn skip_rest(&mut self, rest: &[u8], sink: &mut dyn FnMut(Entry, u64)) -> usize {
        let (done, n) = match self.skip {
            Skip::Csv { in_quotes } => match csv::record_len(rest, in_quotes) {
                (Some(n), _) => (true, n),
                (None, q) => {
                    self.skip = Skip::Csv { in_quotes: q };
                    (false, rest.len())
                }
            },
            _ => match find_newline(rest) {
                Some(i) => (true, i + 1),
                None => (false, rest.len()),
            },
        };
        self.pos += n as u64;
        if let Some(p) = &mut self.pending {
            p.end = self.pos;
        }
        if done {
            self.skip = Skip::No;
            self.skip_start = None;
            if self.format != Format::Stderr {
                self.flush(sink);
            }
        }
        n
    }

    fn flush(&mut self, sink: &mut dyn FnMut(Entry, u64)) {
        if let Some(p) = self.pending.take() {
            let (e, end) = p.into_entry(self.format == Format::Stderr, self.caps);
            sink(e, end);
        }
    }

    /// One record (no trailing '\n'), at `start`; `complete` = not cut by the buffer.
    fn record(&mut self, rec: &[u8], start: u64, complete: bool, sink: &mut dyn FnMut(Entry, u64)) {
        match self.format {
            Format::Stderr => self.stderr_line(rec, start, sink),
            Format::Csvlog => {
                if self.resync {
                    // A line before the first record start.
                    return;
                }
                self.flush(sink);
                if let Some(mut e) = csv::entry(rec, self.min_rank, &self.zone, self.caps) {
                    e.truncated |= !complete;
                    self.pending = Some(Pending::new(e, start, self.pos));
                }
            }
            Format::Jsonlog => {
                if self.resync {
                    if rec.first() != Some(&b'{') {
                        return;
                    }
                    self.resync = false;
                }
                self.flush(sink);
                if let Some(mut e) =
                    json::entry(rec, complete, self.min_rank, &self.zone, self.caps)
                {
                    e.truncated |= !complete;
                    self.pending = Some(Pending::new(e, start, self.pos));
                }
            }
        }
        if complete && self.format != Format::Stderr {
            self.flush(sink);
        }
        if !complete && let Some(p) = &mut self.pending {
            p.entry.truncated = true;
        }
    }

    fn stderr_line(&mut self, line: &[u8], start: u64, sink: &mut dyn FnMut(Entry, u64)) {
        let end = self.pos;
        let Some(m) = self.prefix.match_line(line) else {
            if self.resync {
                return;
            }
            // Not a prefix line: continues the entry before (PostgreSQL indents its own
            // continuation lines with a tab; other writers to stderr do not).
            if let Some(p) = &mut self.pending {
                let text = line.strip_prefix(b"\t").unwrap_or(line);
                p.append(p.target, "\n", text, self.caps);
                p.end = end;
            }
            return;
        };
        let text = &line[m.text..];
        let target = match m.word {
            Word::Severity(r) => {
                self.resync = false;
                self.flush(sink);
                if r < self.min_rank {
                    return;
                }
                self.pending = Some(self.stderr_entry(line, &m, r, start, end));
                return;
            }
            Word::Detail => Section::Detail,
            Word::Hint => Section::Hint,
            Word::Context => Section::Context,
            Word::Statement => Section::Statement,
            Word::Query | Word::Location => Section::Drop,
        };
        if self.resync {
            return;
        }
        if let Some(p) = &mut self.pending {
            p.target = target;
            p.append(target, "\n", text, self.caps);
            p.end = end;
        }
    }

    fn stderr_entry(&self, line: &[u8], m: &prefix::Match, r: u8, start: u64, end: u64) -> Pending {
        let c = &m.caps;
        let s = |r: Option<(usize, usize)>| -> Option<String> {
            r.filter(|(a, b)| b > a)
                .map(|(a, b)| lossy(&line[a..b]).into_owned())
        };
        // `%u`, `%d`, `%a` read `[unknown]` before the startup packet is read; csvlog and
        // jsonlog leave those fields empty.
        let known = |r| s(r).filter(|v| v != UNKNOWN);
        let timestamp = c.time.and_then(|(esc, a, b)| {
            let v = &line[a..b];
            match esc {
                Escape::Epoch => {
                    prefix::parse_epoch(v).map(|(secs, nanos)| WallTime { secs, nanos })
                }
                _ => local_time(v, &self.zone),
            }
        });
        let mut text = &line[m.text..];
        let mut sqlstate = s(c.sqlstate).filter(|c| c != NO_SQLSTATE);
        if let Some((code, rest)) = verbose_sqlstate(text) {
            if sqlstate.is_none() && code != NO_SQLSTATE.as_bytes() {
                sqlstate = Some(String::from_utf8_lossy(code).into_owned());
            }
            text = rest;
        }
        let entry = Entry {
            timestamp,
            level: level_name(r),
            message: String::new(),
            pid: c.pid.and_then(|(a, b)| parse_i64(&line[a..b])),
            user: known(c.user),
            database: known(c.database),
            application: known(c.application),
            client: s(c.client),
            sqlstate,
            detail: None,
            hint: None,
            context: None,
            statement: None,
            duration_ms: None,
            cursor_position: None,
            plan: None,
            plan_truncated: false,
            truncated: false,
        };
        let mut p = Pending::new(entry, start, end);
        p.append(Section::Message, "", text, self.caps);
        p
    }
}

/// Bytes as text, invalid UTF-8 replaced; `str::from_utf8` first, whose ASCII fast path beats
/// `from_utf8_lossy`'s chunk walk on the (nearly always valid) log text.
pub(crate) fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match core::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// `42P01: rest` (log_error_verbosity = verbose) → (code, rest). A code has a digit, so a
/// message opening with a 5-letter word and a colon is not taken for one.
fn verbose_sqlstate(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let code = text.get(..5)?;
    let ok = code
        .iter()
        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        && code.iter().any(u8::is_ascii_digit)
        && text.get(5..7) == Some(b": ");
    ok.then(|| (code, &text[7..]))
}

/// `2026-11-27 21:33:02.966 CET` in the log's zone → UTC.
pub(crate) fn local_time(v: &[u8], zone: &tz::Zone) -> Option<WallTime> {
    let (local, nanos, abbr, _) = prefix::parse_timestamp(v)?;
    let abbr = core::str::from_utf8(abbr).unwrap_or("");
    Some(WallTime {
        secs: zone.to_utc(local, abbr),
        nanos,
    })
}

pub(crate) fn parse_i64(v: &[u8]) -> Option<i64> {
    core::str::from_utf8(v).ok()?.trim().parse().ok()
}

/// Index of the first '\n'.
fn find_newline(s: &[u8]) -> Option<usize> {
    find_byte(s, b'\n')
}

/// Index of the first `byte` in `s`, eight bytes at a time (the release profile optimises for
/// size, so the standard `position` loop stays a byte loop).
pub(crate) fn find_byte(s: &[u8], byte: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(byte);
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) ^ pattern;
        // A zero byte of `w` is a match; the lowest flagged byte is the first match.
        let z = w.wrapping_sub(LO) & !w & HI;
        if z != 0 {
            return Some(base + (z.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == byte)
        .map(|i| base + i)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod find_tests {
    #[test]
    fn find_byte_matches_position() {
        let hay: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
        for start in 0..40 {
            for b in [0u8, 1, b'\n', 0x80, 0xff, 37, 74] {
                let h = &hay[start..];
                assert_eq!(super::find_byte(h, b), h.iter().position(|&x| x == b));
            }
        }
        assert_eq!(super::find_byte(b"", b'x'), None);
    }
}
