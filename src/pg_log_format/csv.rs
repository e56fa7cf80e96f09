//! `csvlog` records: RFC 4180 framing and the columns PostgreSQL writes.
//!
//! What this does: tell where a record ends (a '\n' outside quotes: quoted fields span lines),
//! split a record into raw fields (borrowed, unquoted on demand), and turn one into an
//! [`Entry`]. What it does not do: assemble entries across records (a csv record is a whole
//! entry: detail, hint, context and statement are columns).
//!
//! Columns (elog.c `write_csvlog`, 23 on PG 12, 24 on 13 with `backend_type`, 26 on 14+ with
//! `leader_pid` and `query_id`): log_time, user_name, database_name, process_id,
//! connection_from, session_id, session_line_num, command_tag, session_start_time,
//! virtual_transaction_id, transaction_id, error_severity, sql_state_code, message, detail,
//! hint, internal_query, internal_query_pos, context, query, query_pos, location,
//! application_name[, backend_type[, leader_pid, query_id]].
//!
//! Quirks: `connection_from` is `host:port` (IPv6 hosts have colons of their own, so the port
//! is what follows the last colon, when it is all digits), or `[local]`; empty fields are
//! unquoted and empty; a quote inside a quoted field is doubled.

use std::borrow::Cow;

use super::{
    Caps, Entry, NO_SQLSTATE, Pending, Section, Word, level_name, local_time, lossy, parse_i64,
    word,
};
use crate::tz::Zone;

/// Columns read (26 on PG 14+; more are ignored).
pub const COLUMNS: usize = 26;

const LOG_TIME: usize = 0;
const USER_NAME: usize = 1;
const DATABASE_NAME: usize = 2;
const PROCESS_ID: usize = 3;
const CONNECTION_FROM: usize = 4;
const ERROR_SEVERITY: usize = 11;
const SQL_STATE_CODE: usize = 12;
const MESSAGE: usize = 13;
const DETAIL: usize = 14;
const HINT: usize = 15;
const INTERNAL_QUERY_POS: usize = 17;
const CONTEXT: usize = 18;
const QUERY: usize = 19;
const QUERY_POS: usize = 20;
const APPLICATION_NAME: usize = 22;

/// Length of the record at the start of `s` including its '\n' (`None` when the record is
/// not complete), and the quote state where scanning stopped. `in_quotes` is the state at
/// `s[0]` (true when resuming inside a quoted field).
pub fn record_len(s: &[u8], mut in_quotes: bool) -> (Option<usize>, bool) {
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let Some(j) = rest.iter().position(|&b| b == b'"' || b == b'\n') else {
            return (None, in_quotes);
        };
        if rest[j] == b'"' {
            // A doubled quote inside a field toggles twice: same state, as it should.
            in_quotes = !in_quotes;
        } else if !in_quotes {
            return (Some(i + j + 1), false);
        }
        i += j + 1;
    }
    (None, in_quotes)
}

/// Whether `s` opens with `YYYY-MM-DD HH:MM:SS` (a plausible csv record start).
pub fn starts_with_timestamp(s: &[u8]) -> bool {
    let Some(h) = s.get(..19) else {
        return false;
    };
    h.iter().enumerate().all(|(i, &b)| match i {
        4 | 7 => b == b'-',
        10 => b == b' ',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    })
}

/// The raw fields of a record (no trailing '\n'), quotes included.
pub struct Fields<'a> {
    rest: &'a [u8],
    done: bool,
}

/// Iterates the raw fields of `record`.
pub fn fields(record: &[u8]) -> Fields<'_> {
    Fields {
        rest: record,
        done: false,
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        let r = self.rest;
        let mut end = 0;
        if r.first() == Some(&b'"') {
            end = 1;
            loop {
                match r[end..].iter().position(|&b| b == b'"') {
                    None => {
                        end = r.len();
                        break;
                    }
                    Some(q) => {
                        end += q + 1;
                        if r.get(end) == Some(&b'"') {
                            end += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
        }
        match r[end..].iter().position(|&b| b == b',') {
            Some(c) => {
                self.rest = &r[end + c + 1..];
                Some(&r[..end + c])
            }
            None => {
                self.done = true;
                Some(r)
            }
        }
    }
}

/// A raw field's value: quotes removed, doubled quotes undone.
pub fn unquote(raw: &[u8]) -> Cow<'_, [u8]> {
    let Some(inner) = raw.strip_prefix(b"\"") else {
        return Cow::Borrowed(raw);
    };
    let inner = inner.strip_suffix(b"\"").unwrap_or(inner);
    if !inner.windows(2).any(|w| w == b"\"\"") {
        return Cow::Borrowed(inner);
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        out.push(inner[i]);
        i += if inner[i] == b'"' && inner.get(i + 1) == Some(&b'"') {
            2
        } else {
            1
        };
    }
    Cow::Owned(out)
}

/// `host:port` → `host`; `[local]` and port-less values stay.
pub fn client_host(v: &[u8]) -> &[u8] {
    match v.iter().rposition(|&b| b == b':') {
        Some(i) if i + 1 < v.len() && v[i + 1..].iter().all(u8::is_ascii_digit) => &v[..i],
        _ => v,
    }
}

/// The entry of one record (no trailing '\n'), or `None` when its severity is below
/// `min_rank` or it has none.
pub(crate) fn entry(rec: &[u8], min_rank: u8, zone: &Zone, caps: Caps) -> Option<Entry> {
    let mut cols: [&[u8]; COLUMNS] = [&[]; COLUMNS];
    let mut n = 0;
    for (i, f) in fields(rec).take(COLUMNS).enumerate() {
        cols[i] = f;
        n = i + 1;
    }
    if n <= ERROR_SEVERITY {
        return None;
    }
    let Some(Word::Severity(r)) = word(&unquote(cols[ERROR_SEVERITY])) else {
        return None;
    };
    if r < min_rank {
        return None;
    }
    let text = |i: usize| -> Option<String> {
        let v = unquote(cols[i]);
        (!v.is_empty()).then(|| lossy(&v).into_owned())
    };
    let e = Entry {
        timestamp: local_time(&unquote(cols[LOG_TIME]), zone),
        level: level_name(r),
        message: String::new(),
        pid: parse_i64(&unquote(cols[PROCESS_ID])),
        user: text(USER_NAME),
        database: text(DATABASE_NAME),
        application: text(APPLICATION_NAME),
        client: {
            let v = unquote(cols[CONNECTION_FROM]);
            let h = client_host(&v);
            (!h.is_empty()).then(|| lossy(h).into_owned())
        },
        sqlstate: text(SQL_STATE_CODE).filter(|c| c != NO_SQLSTATE),
        detail: None,
        hint: None,
        context: None,
        statement: None,
        duration_ms: None,
        // elog.c's rule for stderr: the cursor position, else the internal one.
        cursor_position: [QUERY_POS, INTERNAL_QUERY_POS]
            .iter()
            .find_map(|&c| parse_i64(&unquote(cols[c])).filter(|&n| n > 0)),
        plan: None,
        plan_truncated: false,
        truncated: false,
    };
    let mut p = Pending::new(e, 0, 0);
    for (col, t) in [
        (MESSAGE, Section::Message),
        (DETAIL, Section::Detail),
        (HINT, Section::Hint),
        (CONTEXT, Section::Context),
        (QUERY, Section::Statement),
    ] {
        let v = unquote(cols[col]);
        if !v.is_empty() {
            p.append(t, "", &v, caps);
        }
    }
    Some(p.entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_with_quotes_and_newlines() {
        let rec = b"a,\"b,\n\"\"c\"\"\",d\nnext";
        assert_eq!(record_len(rec, false), (Some(15), false));
        // Every prefix of a record is incomplete and says so.
        for cut in 0..15 {
            assert_eq!(record_len(&rec[..cut], false).0, None, "cut {cut}");
        }
        // Resuming inside quotes.
        assert_eq!(record_len(b"x\n\",y\n", true), (Some(6), false));
        assert_eq!(record_len(b"x\nyy", true), (None, true));
    }

    #[test]
    fn fields_and_unquote() {
        let f: Vec<_> = fields(b"1,,\"a,b\",\"say \"\"hi\"\"\",x").collect();
        assert_eq!(f.len(), 5);
        assert_eq!(&*unquote(f[1]), b"");
        assert_eq!(&*unquote(f[2]), b"a,b");
        assert_eq!(&*unquote(f[3]), b"say \"hi\"");
        assert_eq!(&*unquote(f[4]), b"x");
        // Unclosed quote (a cut record): the rest is the field.
        let f: Vec<_> = fields(b"1,\"abc,def").collect();
        assert_eq!(&*unquote(f[1]), b"abc,def");
    }

    #[test]
    fn client_hosts() {
        assert_eq!(client_host(b"10.0.0.5:5432"), b"10.0.0.5");
        assert_eq!(client_host(b"::1:41000"), b"::1");
        assert_eq!(client_host(b"[local]"), b"[local]");
        assert_eq!(client_host(b"db.example:"), b"db.example:");
    }
}
