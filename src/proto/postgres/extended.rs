//! The extended query protocol for one statement without parameters (custom queries,
//! docs/metrics.md `pg_custom`), as pure message builders and a pure reply reader
//! ([`Exchange`]); [`describe`] and [`run`] drive them over a [`Client`].
//!
//! ```text
//!   describe:  Parse("", sql) + Describe(S, "") + Sync
//!              ◄─ 1 ParseComplete, t ParameterDescription, T RowDescription | n NoData, Z
//!   execute:   Bind("", "", result formats per column) + Execute("", max_rows) + Sync
//!              ◄─ 2 BindComplete, D DataRow…, C CommandComplete | s PortalSuspended, Z
//! ```
//!
//! Several statements in one text are refused by the server at Parse (SQLSTATE 42601); a
//! statement with parameters (`$1`) or without result columns (`SET`, DDL) is refused here,
//! before it runs. Results use the binary format for the
//! types [`super::binary`] decodes and text for the others. Messages are capped as the simple
//! query reader caps them ([`MAX_MESSAGE_BYTES`] each, [`MAX_RESULT_BYTES`] for all rows).

use super::binary;
use super::rows::{Rows, RowsBuilder};
use super::session::{MAX_MESSAGE_BYTES, MAX_RESULT_BYTES};
use super::{Client, PgError};
use crate::sys::signals::Signals;
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::{ErrorFields, Message};
use postgres_protocol::message::frontend;
use std::time::{Duration, Instant};

/// SQLSTATE undefined_parameter: what a custom query with `$1` gets.
pub const PARAMETERS_REFUSED: &str = "42P02";
/// SQLSTATE feature_not_supported: what a statement without result columns gets (`SET`,
/// `CREATE`, `CALL` …): it is refused before it runs.
pub const NO_ROWS_REFUSED: &str = "0A000";

/// A refusal of ours, shaped as the server's.
fn refused(code: &str, message: String) -> PgError {
    PgError::Server {
        severity: "ERROR".to_string(),
        code: code.to_string(),
        message,
        detail: None,
        hint: None,
    }
}

/// Columns of a statement that returns rows; a statement without any is refused.
fn returning_rows(columns: Vec<Column>) -> Result<Vec<Column>, PgError> {
    if columns.is_empty() {
        return Err(refused(
            NO_ROWS_REFUSED,
            "the statement returns no rows (no result columns); a custom query must be a \
             query such as select, values or show"
                .to_string(),
        ));
    }
    Ok(columns)
}

/// One result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
    /// Asked for in binary (the type has a decoder), else text.
    pub binary: bool,
}

/// The rows of an executed statement.
#[derive(Debug, Default)]
pub struct Executed {
    pub columns: Vec<Column>,
    pub rows: Rows,
    /// The row limit stopped the portal (PortalSuspended).
    pub truncated: bool,
}

/// Parse + Describe(statement) + Sync for `sql` as the unnamed statement.
pub fn describe_messages(sql: &str, out: &mut BytesMut) -> Result<(), PgError> {
    let bad = |e: std::io::Error| PgError::Protocol(format!("parse message: {e}"));
    frontend::parse("", sql, std::iter::empty(), out).map_err(bad)?;
    frontend::describe(b'S', "", out).map_err(bad)?;
    frontend::sync(out);
    Ok(())
}

/// Bind (no parameters, a result format per column) + Execute(`max_rows`, 0 = all) + Sync.
pub fn execute_messages(
    columns: &[Column],
    max_rows: u32,
    out: &mut BytesMut,
) -> Result<(), PgError> {
    let formats: Vec<i16> = columns.iter().map(|c| i16::from(c.binary)).collect();
    frontend::bind(
        "",
        "",
        std::iter::empty(),
        std::iter::empty::<()>(),
        |_, _| Ok(postgres_protocol::IsNull::Yes),
        formats,
        out,
    )
    .map_err(|_| PgError::Protocol("bind message".to_string()))?;
    let max_rows = i32::try_from(max_rows).unwrap_or(i32::MAX);
    frontend::execute("", max_rows, out)
        .map_err(|e| PgError::Protocol(format!("execute message: {e}")))?;
    frontend::sync(out);
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Describe,
    Execute,
    Done,
}

/// The replies to one of the two message groups, read until ReadyForQuery.
#[derive(Debug)]
pub struct Exchange {
    phase: Phase,
    columns: Vec<Column>,
    parameters: usize,
    rows: RowsBuilder,
    truncated: bool,
    /// The first ErrorResponse, kept until ReadyForQuery.
    error: Option<PgError>,
}

/// How the driver hands received bytes to an [`Exchange`].
pub type Feed<'a> = dyn FnMut(&[u8]) -> Result<Option<Step>, PgError> + 'a;

/// What [`Exchange::try_message`] consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Bytes consumed; keep feeding.
    Continue(usize),
    /// ReadyForQuery consumed: the result can be taken.
    Ready(usize),
}

impl Exchange {
    /// Reads the replies to [`describe_messages`].
    pub fn describe() -> Exchange {
        Exchange {
            phase: Phase::Describe,
            columns: Vec::new(),
            parameters: 0,
            rows: RowsBuilder::default(),
            truncated: false,
            error: None,
        }
    }

    /// Reads the replies to [`execute_messages`] for `columns`.
    pub fn execute(columns: Vec<Column>) -> Exchange {
        let mut rows = RowsBuilder::default();
        rows.set_columns(columns.iter().map(|c| c.name.clone()).collect());
        Exchange {
            phase: Phase::Execute,
            columns,
            parameters: 0,
            rows,
            truncated: false,
            error: None,
        }
    }

    /// Processes the first message of `input` if it is complete (`Ok(None)`: need more bytes,
    /// nothing consumed). An error means the connection is out of sync or lost.
    pub fn try_message(&mut self, input: &[u8]) -> Result<Option<Step>, PgError> {
        if self.phase == Phase::Done {
            return Err(PgError::Protocol("message after ReadyForQuery".to_string()));
        }
        let Some((&[tag], rest)) = input.split_first_chunk::<1>() else {
            return Ok(None);
        };
        let Some((len, _)) = rest.split_first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len < 4 {
            return Err(PgError::Protocol(format!("message with length {len} < 4")));
        }
        if len > MAX_MESSAGE_BYTES {
            return Err(PgError::Protocol(format!(
                "message of {len} bytes exceeds the {MAX_MESSAGE_BYTES} byte limit"
            )));
        }
        let total = len + 1;
        let Some(whole) = input.get(..total) else {
            return Ok(None);
        };
        if tag == b'D' && self.phase == Phase::Execute {
            let Some((count, body)) = whole.get(5..).and_then(|p| p.split_first_chunk::<2>())
            else {
                return Err(PgError::Protocol("bad data row".to_string()));
            };
            self.rows
                .push_row(u16::from_be_bytes(*count), body)
                .map_err(PgError::Protocol)?;
            if self.rows.bytes() > MAX_RESULT_BYTES {
                return Err(PgError::Protocol(format!(
                    "query result exceeds the {MAX_RESULT_BYTES} byte limit"
                )));
            }
            return Ok(Some(Step::Continue(total)));
        }
        let mut buf = BytesMut::from(whole);
        let message = match Message::parse(&mut buf) {
            Ok(Some(m)) => m,
            Ok(None) => return Err(PgError::Protocol("incomplete message".to_string())),
            Err(e) => return Err(PgError::Protocol(format!("bad message: {e}"))),
        };
        self.handle(tag, message)?;
        Ok(Some(if self.phase == Phase::Done {
            Step::Ready(total)
        } else {
            Step::Continue(total)
        }))
    }

    fn handle(&mut self, tag: u8, message: Message) -> Result<(), PgError> {
        use Message as M;
        match (self.phase, message) {
            (_, M::NoticeResponse(_) | M::ParameterStatus(_) | M::NotificationResponse(_)) => {}
            (_, M::ErrorResponse(body)) => {
                let (e, fatal) = server_error(body.fields());
                if fatal {
                    return Err(e);
                }
                self.error.get_or_insert(e);
            }
            (_, M::ReadyForQuery(_)) => self.phase = Phase::Done,
            (Phase::Describe, M::ParseComplete | M::NoData) => {}
            (Phase::Describe, M::ParameterDescription(body)) => {
                self.parameters = body
                    .parameters()
                    .count()
                    .map_err(|e| PgError::Protocol(format!("bad parameter description: {e}")))?;
            }
            (Phase::Describe, M::RowDescription(body)) => {
                let mut fields = body.fields();
                while let Some(f) = fields
                    .next()
                    .map_err(|e| PgError::Protocol(format!("bad row description: {e}")))?
                {
                    self.columns.push(Column {
                        name: f.name().to_string(),
                        type_oid: f.type_oid(),
                        binary: binary::has_binary(f.type_oid()),
                    });
                }
            }
            (Phase::Execute, M::BindComplete | M::CommandComplete(_) | M::EmptyQueryResponse) => {}
            (Phase::Execute, M::PortalSuspended) => self.truncated = true,
            (phase, _) => {
                return Err(PgError::Protocol(format!(
                    "unexpected message '{}' during {phase:?}",
                    tag.escape_ascii()
                )));
            }
        }
        Ok(())
    }

    /// After [`Step::Ready`] of a describe: the result columns, or the server's error (a
    /// statement with parameters is refused with [`PARAMETERS_REFUSED`]).
    pub fn described(self) -> Result<Vec<Column>, PgError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.parameters > 0 {
            return Err(refused(
                PARAMETERS_REFUSED,
                format!(
                    "the query has {} parameter(s) ($1 …); a custom query takes none",
                    self.parameters
                ),
            ));
        }
        Ok(self.columns)
    }

    /// After [`Step::Ready`] of an execute: the rows, or the server's error.
    pub fn executed(self) -> Result<Executed, PgError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(Executed {
            columns: self.columns,
            rows: self.rows.finish(),
            truncated: self.truncated,
        })
    }
}

/// An ErrorResponse as [`PgError::Server`], and whether it ends the session (FATAL, PANIC).
fn server_error(mut fields: ErrorFields<'_>) -> (PgError, bool) {
    let (mut severity, mut localized, mut code, mut message) =
        (String::new(), String::new(), String::new(), String::new());
    let (mut detail, mut hint) = (None, None);
    while let Ok(Some(f)) = fields.next() {
        let value = String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'V' => severity = value,
            b'S' => localized = value,
            b'C' => code = value,
            b'M' => message = value,
            b'D' => detail = Some(value),
            b'H' => hint = Some(value),
            _ => {}
        }
    }
    if severity.is_empty() {
        severity = localized;
    }
    let fatal = matches!(severity.as_str(), "FATAL" | "PANIC");
    let e = PgError::Server {
        severity,
        code,
        message,
        detail,
        hint,
    };
    (e, fatal)
}

/// Parse + Describe of `sql` (nothing executed): its columns, or the server's error (42601
/// for a syntax error or several statements).
pub fn describe(
    client: &mut Client,
    sql: &str,
    timeout: Duration,
    signals: Option<&Signals>,
) -> Result<Vec<Column>, PgError> {
    let deadline = Instant::now() + timeout;
    let mut out = BytesMut::new();
    describe_messages(sql, &mut out)?;
    let mut exchange = Exchange::describe();
    client.exchange(&out, deadline, signals, &mut |b| exchange.try_message(b))?;
    returning_rows(exchange.described()?)
}

/// Describes then executes `sql` with at most `max_rows` rows, within `timeout` in all.
pub fn run(
    client: &mut Client,
    sql: &str,
    max_rows: u32,
    timeout: Duration,
    signals: Option<&Signals>,
) -> Result<Executed, PgError> {
    let deadline = Instant::now() + timeout;
    let mut out = BytesMut::new();
    describe_messages(sql, &mut out)?;
    let mut exchange = Exchange::describe();
    client.exchange(&out, deadline, signals, &mut |b| exchange.try_message(b))?;
    let columns = returning_rows(exchange.described()?)?;
    out.clear();
    execute_messages(&columns, max_rows, &mut out)?;
    let mut exchange = Exchange::execute(columns);
    client.exchange(&out, deadline, signals, &mut |b| exchange.try_message(b))?;
    exchange.executed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn row_description(cols: &[(&str, u32)]) -> Vec<u8> {
        let mut b = (cols.len() as u16).to_be_bytes().to_vec();
        for (name, oid) in cols {
            b.extend_from_slice(name.as_bytes());
            b.push(0);
            b.extend_from_slice(&0u32.to_be_bytes());
            b.extend_from_slice(&0u16.to_be_bytes());
            b.extend_from_slice(&oid.to_be_bytes());
            b.extend_from_slice(&4i16.to_be_bytes());
            b.extend_from_slice(&(-1i32).to_be_bytes());
            b.extend_from_slice(&0u16.to_be_bytes());
        }
        msg(b'T', &b)
    }

    /// Feeds `input` whole, returning the steps; checks every prefix needs more bytes.
    fn feed(x: &mut Exchange, input: &[u8]) -> Result<bool, PgError> {
        let mut rest = input;
        while !rest.is_empty() {
            let before = format!("{x:?}");
            let mut probe = Exchange::describe();
            std::mem::swap(&mut probe, x);
            for n in 0..5.min(rest.len()) {
                assert_eq!(probe.try_message(&rest[..n]).unwrap(), None);
            }
            std::mem::swap(&mut probe, x);
            assert_eq!(before, format!("{x:?}"));
            match x.try_message(rest)? {
                None => panic!("a whole message needs more bytes"),
                Some(Step::Continue(n)) => rest = &rest[n..],
                Some(Step::Ready(n)) => {
                    assert_eq!(n, rest.len());
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    #[test]
    fn describe_then_execute_with_binary_formats_and_suspension() {
        let mut out = BytesMut::new();
        describe_messages("select 1", &mut out).unwrap();
        assert_eq!(out[0], b'P');
        let mut x = Exchange::describe();
        let mut input = msg(b'1', b"");
        input.extend(msg(b't', &0u16.to_be_bytes()));
        input.extend(row_description(&[("n", binary::INT4), ("p", 600)]));
        input.extend(msg(b'Z', b"I"));
        assert!(feed(&mut x, &input).unwrap());
        let cols = x.described().unwrap();
        assert_eq!(
            cols.iter().map(|c| c.binary).collect::<Vec<_>>(),
            [true, false]
        );
        let mut out = BytesMut::new();
        execute_messages(&cols, 1, &mut out).unwrap();
        // Bind: portal "", statement "", 0 param formats, 0 params, 2 result formats 1 and 0.
        assert_eq!(&out[5..13], &[0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(&out[13..17], &[0, 1, 0, 0]);
        let mut x = Exchange::execute(cols);
        let mut row = 2u16.to_be_bytes().to_vec();
        row.extend_from_slice(&4i32.to_be_bytes());
        row.extend_from_slice(&7i32.to_be_bytes());
        row.extend_from_slice(&(-1i32).to_be_bytes());
        let mut input = msg(b'2', b"");
        input.extend(msg(b'D', &row));
        input.extend(msg(b's', b""));
        input.extend(msg(b'Z', b"I"));
        assert!(feed(&mut x, &input).unwrap());
        let e = x.executed().unwrap();
        assert!(e.truncated);
        let r = e.rows.iter().next().unwrap();
        assert_eq!(r.bytes_at(0), Some(&7i32.to_be_bytes()[..]));
        assert_eq!(r.bytes_at(1), None);
    }

    #[test]
    fn errors_parameters_caps_and_stray_messages() {
        // A syntax error is kept until ReadyForQuery.
        let mut x = Exchange::describe();
        let mut input = msg(
            b'E',
            b"SERROR\0VERROR\0C42601\0Msyntax error at or near \"x\"\0\0",
        );
        input.extend(msg(b'Z', b"I"));
        assert!(feed(&mut x, &input).unwrap());
        let e = x.described().unwrap_err();
        assert_eq!(e.sqlstate(), Some("42601"));
        assert!(!e.is_connection_lost());
        // FATAL ends it at once.
        let mut x = Exchange::describe();
        let fatal = msg(b'E', b"SFATAL\0VFATAL\0C57P01\0Mterminating\0\0");
        assert!(x.try_message(&fatal).unwrap_err().is_connection_lost());
        // Parameters are refused.
        let mut x = Exchange::describe();
        let mut input = msg(b'1', b"");
        input.extend(msg(b't', &[0, 1, 0, 0, 0, 23]));
        input.extend(msg(b'n', b""));
        input.extend(msg(b'Z', b"I"));
        assert!(feed(&mut x, &input).unwrap());
        assert_eq!(
            x.described().unwrap_err().sqlstate(),
            Some(PARAMETERS_REFUSED)
        );
        // A header announcing more than the cap; a DataRow while describing; a short length.
        let mut x = Exchange::describe();
        let mut huge = vec![b'D'];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(x.try_message(&huge).is_err());
        let mut x = Exchange::describe();
        assert!(x.try_message(&msg(b'D', &[0, 0])).is_err());
        let mut x = Exchange::describe();
        assert!(x.try_message(&[b'1', 0, 0, 0, 3]).is_err());
        // A data row that does not match the columns.
        let mut x = Exchange::execute(vec![Column {
            name: "a".into(),
            type_oid: 23,
            binary: true,
        }]);
        assert!(x.try_message(&msg(b'D', &[0, 2])).is_err());
    }
}
