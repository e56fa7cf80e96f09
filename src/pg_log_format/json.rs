//! `jsonlog` records (PostgreSQL 15+): one JSON object per line.
//!
//! What this does: read the keys an [`Entry`] needs from one line, borrowing from it where no
//! escape has to be undone; unknown keys are ignored, a line that is not a JSON object is
//! skipped. What it does not do: framing (lines, done by the parser) or assembling entries
//! across lines (detail, hint, context and statement are keys of the same object).
//!
//! Quirks (jsonlog.c `write_jsonlog`): keys with no value are left out, not `null`; numbers
//! (`pid`, `remote_port`, `line_num`, `txid`, `query_id`) are JSON numbers; the server writes
//! the bytes of its encoding, so a line may hold invalid UTF-8: it is read again after a
//! lossy conversion. A line cut by the caller's buffer is closed (`"}`) before parsing, so the
//! start of an over-long entry is kept.

use std::borrow::Cow;

use super::{Caps, Entry, NO_SQLSTATE, Pending, Section, Word, level_name, local_time, word};
use crate::tz::Zone;

/// The keys read; every other key is ignored.
#[derive(Debug, Default, serde::Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dbname: Option<Cow<'a, str>>,
    pid: Option<i64>,
    #[serde(borrow)]
    remote_host: Option<Cow<'a, str>>,
    #[serde(borrow)]
    error_severity: Option<Cow<'a, str>>,
    #[serde(borrow)]
    state_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow)]
    detail: Option<Cow<'a, str>>,
    #[serde(borrow)]
    hint: Option<Cow<'a, str>>,
    #[serde(borrow)]
    context: Option<Cow<'a, str>>,
    #[serde(borrow)]
    statement: Option<Cow<'a, str>>,
    #[serde(borrow)]
    application_name: Option<Cow<'a, str>>,
    cursor_position: Option<i64>,
    internal_position: Option<i64>,
}

/// Endings tried on a cut line: inside a string, after a value, after an escape's backslash.
const CLOSERS: [&[u8]; 4] = [b"\"}", b"}", b"\\\"\"}", b"\"\"}"];
/// Bytes dropped at most from the end of a cut line to get out of a split escape (`\u12`).
const CUT_BACKOFF: usize = 6;

/// The entry of one line (no '\n'), or `None` when it is not a log object, has no known
/// severity, or is below `min_rank`. `complete = false`: the line was cut by the buffer.
pub(crate) fn entry(
    line: &[u8],
    complete: bool,
    min_rank: u8,
    zone: &Zone,
    caps: Caps,
) -> Option<Entry> {
    if complete {
        return match serde_json::from_slice::<Record>(line) {
            Ok(r) => build(r, min_rank, zone, caps),
            Err(_) => {
                let lossy = String::from_utf8_lossy(line);
                match lossy {
                    Cow::Owned(s) => build(serde_json::from_str(&s).ok()?, min_rank, zone, caps),
                    Cow::Borrowed(_) => None,
                }
            }
        };
    }
    let line = String::from_utf8_lossy(line);
    let b = line.as_bytes();
    for back in 0..=CUT_BACKOFF.min(b.len()) {
        for c in CLOSERS {
            let mut s = b[..b.len() - back].to_vec();
            s.extend_from_slice(c);
            if let Ok(r) = serde_json::from_slice::<Record>(&s) {
                return build(r, min_rank, zone, caps);
            }
        }
    }
    None
}

fn build(r: Record<'_>, min_rank: u8, zone: &Zone, caps: Caps) -> Option<Entry> {
    let Some(Word::Severity(rank)) = word(r.error_severity.as_deref()?.as_bytes()) else {
        return None;
    };
    if rank < min_rank {
        return None;
    }
    let s = |v: Option<Cow<'_, str>>| v.filter(|v| !v.is_empty()).map(Cow::into_owned);
    let e = Entry {
        timestamp: r
            .timestamp
            .as_deref()
            .and_then(|t| local_time(t.as_bytes(), zone)),
        level: level_name(rank),
        message: String::new(),
        pid: r.pid,
        user: s(r.user),
        database: s(r.dbname),
        application: s(r.application_name),
        client: s(r.remote_host),
        sqlstate: s(r.state_code).filter(|c| c != NO_SQLSTATE),
        detail: None,
        hint: None,
        context: None,
        statement: None,
        duration_ms: None,
        // elog.c's rule for stderr: the cursor position, else the internal one.
        cursor_position: [r.cursor_position, r.internal_position]
            .into_iter()
            .flatten()
            .find(|&n| n > 0),
        plan: None,
        plan_truncated: false,
        truncated: false,
    };
    let mut p = Pending::new(e, 0, 0);
    for (v, t) in [
        (r.message, Section::Message),
        (r.detail, Section::Detail),
        (r.hint, Section::Hint),
        (r.context, Section::Context),
        (r.statement, Section::Statement),
    ] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            p.append(t, "", v.as_bytes(), caps);
        }
    }
    Some(p.entry)
}
