//! The result of one query: column names, every DataRow body in one buffer and the offset of
//! each field in it, so a field is found in constant time (no walk over the fields before it).
//! Text fields are decoded from PostgreSQL's text format: the session asks for
//! `DateStyle=ISO`, `TimeZone=UTC` and `extra_float_digits=3`, which the timestamp and float
//! decoders below rely on.

use super::PgError;
use crate::calendar;
use crate::util::WallTime;

/// Longest value quoted in a [`PgError::Decode`].
const MAX_QUOTED_VALUE: usize = 64;

/// The rows of one query.
///
/// Invariants (kept by [`RowsBuilder::push_row`], which validates each DataRow before storing
/// it): `data` holds the DataRow bodies back to back, each field an `i32` length (`-1` = NULL)
/// followed by that many bytes; `fields` holds `columns.len()` entries per row, the offset in
/// `data` of each field's length, so a field is found without walking the ones before it.
#[derive(Debug, Default, Clone)]
pub struct Rows {
    columns: Vec<String>,
    data: Vec<u8>,
    fields: Vec<u32>,
    /// Rows stored (a row may have no columns: `select from t`).
    count: usize,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        let width = self.columns.len();
        (0..self.count).map(move |i| Row {
            columns: &self.columns,
            data: &self.data,
            fields: self
                .fields
                .get(i * width..(i + 1) * width)
                .unwrap_or_default(),
        })
    }

    /// The position of column `name`, for the `*_at` getters of [`Row`] (hot loops resolve
    /// their columns once per result instead of once per field).
    pub fn column_index(&self, name: &str) -> Result<usize, PgError> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| PgError::Decode {
                column: name.to_string(),
                value: String::new(),
                expected: "a column of the result",
            })
    }

    /// [`Rows::column_index`] of each of `names`.
    pub fn column_indexes<const N: usize>(&self, names: [&str; N]) -> Result<[usize; N], PgError> {
        let mut indexes = [0; N];
        for (i, name) in indexes.iter_mut().zip(names) {
            *i = self.column_index(name)?;
        }
        Ok(indexes)
    }

    /// Bytes held (for callers that bound what they keep).
    pub fn data_bytes(&self) -> usize {
        self.data.len() + self.fields.len() * size_of::<u32>()
    }

    /// Bytes allocated for the rows (what keeping this result for reuse holds).
    pub fn capacity_bytes(&self) -> usize {
        self.data.capacity() + self.fields.capacity() * size_of::<u32>()
    }
}

/// Collects a result while the messages arrive.
#[derive(Debug, Default)]
pub(crate) struct RowsBuilder {
    rows: Rows,
    /// The column names of the result being reused, for the next RowDescription to write
    /// into (a query sent again and again, as `pg_wait_events`' sample, allocates none).
    names: Vec<String>,
}

impl RowsBuilder {
    /// A builder that fills `spare` (a result the caller is done with), keeping its buffers.
    pub(crate) fn reusing(mut spare: Rows) -> RowsBuilder {
        let names = std::mem::take(&mut spare.columns);
        spare.data.clear();
        spare.fields.clear();
        spare.count = 0;
        RowsBuilder { rows: spare, names }
    }

    /// Room for the column names of a RowDescription: the Strings of the result reused (to
    /// be overwritten, and cut to the number of columns), or none; handed back through
    /// [`RowsBuilder::set_columns`].
    pub(crate) fn take_names(&mut self) -> Vec<String> {
        std::mem::take(&mut self.names)
    }

    /// A RowDescription with columns came: rows may follow.
    pub(crate) fn has_columns(&self) -> bool {
        !self.rows.columns.is_empty()
    }

    pub(crate) fn set_columns(&mut self, columns: Vec<String>) {
        // A second RowDescription (several statements in one query string): keep the last set.
        self.rows.columns = columns;
        self.rows.data.clear();
        self.rows.fields.clear();
        self.rows.count = 0;
    }

    /// Appends one DataRow body (the bytes after the field count), validated against the
    /// invariant of [`Rows`].
    pub(crate) fn push_row(&mut self, count: u16, body: &[u8]) -> Result<(), String> {
        if usize::from(count) != self.rows.columns.len() {
            return Err(format!(
                "data row with {count} fields for {} columns",
                self.rows.columns.len()
            ));
        }
        let base = self.rows.data.len();
        if base + body.len() > u32::MAX as usize {
            return Err("query result too large".to_string());
        }
        // Each field's offset is noted while the row is validated; a bad row leaves the
        // result as it was.
        let first = self.rows.fields.len();
        self.rows.fields.resize(first + usize::from(count), 0);
        let offsets = self.rows.fields.get_mut(first..).unwrap_or_default();
        // Where the next field starts; past the body when a field runs beyond it.
        let mut at = 0;
        for offset in offsets {
            *offset = (base + at) as u32;
            match body.get(at..).and_then(split_len) {
                Some((len, _)) => at += 4 + len.unwrap_or(0),
                None => {
                    at = usize::MAX;
                    break;
                }
            }
        }
        let error = match at.cmp(&body.len()) {
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some("truncated data row"),
            std::cmp::Ordering::Less => Some("trailing bytes in data row"),
        };
        if let Some(e) = error {
            self.rows.fields.truncate(first);
            return Err(e.to_string());
        }
        self.rows.data.extend_from_slice(body);
        self.rows.count += 1;
        Ok(())
    }

    pub(crate) fn bytes(&self) -> usize {
        self.rows.data_bytes()
    }

    /// What storing a DataRow of `count` fields and `body` adds to [`RowsBuilder::bytes`].
    pub(crate) fn row_bytes(count: u16, body: &[u8]) -> usize {
        body.len() + usize::from(count) * size_of::<u32>()
    }

    pub(crate) fn finish(self) -> Rows {
        self.rows
    }
}

/// `i32` field length (`None` = NULL) and the bytes after it.
fn split_len(b: &[u8]) -> Option<(Option<usize>, &[u8])> {
    let (head, tail) = b.split_first_chunk::<4>()?;
    let n = i32::from_be_bytes(*head);
    if n == -1 {
        Some((None, tail))
    } else {
        Some((Some(usize::try_from(n).ok()?), tail))
    }
}

/// One row of [`Rows`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    /// The result's DataRow bodies.
    data: &'a [u8],
    /// This row's entries of [`Rows`]' `fields`.
    fields: &'a [u32],
}

impl<'a> Row<'a> {
    /// The raw text of a column; NULL → `None`.
    fn raw(&self, column: &str) -> Result<Option<&'a [u8]>, PgError> {
        let Some(index) = self.columns.iter().position(|c| c == column) else {
            return Err(PgError::Decode {
                column: column.to_string(),
                value: String::new(),
                expected: "a column of the result",
            });
        };
        Ok(self.raw_at(index))
    }

    /// The raw text of the column at `index`; NULL (or no such column) → `None`.
    fn raw_at(&self, index: usize) -> Option<&'a [u8]> {
        let at = *self.fields.get(index)? as usize;
        // The invariant of Rows makes these lookups succeed; a failure reads as NULL.
        let (len, tail) = split_len(self.data.get(at..)?)?;
        tail.get(..len?)
    }

    /// The raw bytes (text or binary, as the query asked) of the column at `index`; NULL → `None`.
    pub fn bytes_at(&self, index: usize) -> Option<&'a [u8]> {
        self.raw_at(index)
    }

    /// The name of the column at `index` (for errors).
    fn name_at(&self, index: usize) -> &'a str {
        self.columns.get(index).map_or("", String::as_str)
    }

    fn text(column: &str, raw: Option<&'a [u8]>) -> Result<Option<&'a str>, PgError> {
        match raw {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(Some)
                .map_err(|_| decode_error(column, &String::from_utf8_lossy(b), "utf-8 text")),
        }
    }

    fn parse_text<T>(
        column: &str,
        text: Option<&str>,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, PgError> {
        match text {
            None => Ok(None),
            Some(s) => parse(s)
                .map(Some)
                .ok_or_else(|| decode_error(column, s, expected)),
        }
    }

    /// NULL → `Ok(None)`; text that is not UTF-8 is a decode error.
    pub fn get_str(&self, column: &str) -> Result<Option<&'a str>, PgError> {
        Self::text(column, self.raw(column)?)
    }

    /// [`Row::get_str`] of the column at `index` (from [`Rows::column_index`]).
    pub fn str_at(&self, index: usize) -> Result<Option<&'a str>, PgError> {
        Self::text(self.name_at(index), self.raw_at(index))
    }

    fn parsed<T>(
        &self,
        column: &str,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, PgError> {
        Self::parse_text(column, self.get_str(column)?, expected, parse)
    }

    fn parsed_at<T>(
        &self,
        index: usize,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, PgError> {
        Self::parse_text(self.name_at(index), self.str_at(index)?, expected, parse)
    }

    pub fn get_i64(&self, column: &str) -> Result<Option<i64>, PgError> {
        self.parsed(column, "an integer", parse_i64)
    }

    /// [`Row::get_i64`] of the column at `index`.
    pub fn i64_at(&self, index: usize) -> Result<Option<i64>, PgError> {
        // Nearly every integer a collector reads is short decimal text: read its digits
        // without the UTF-8 check and `str::parse` (a tenth of `pg_stats`' CPU went there).
        match self.raw_at(index).map(short_decimal) {
            None => Ok(None),
            Some(Some(v)) => Ok(Some(v)),
            Some(None) => self.parsed_at(index, "an integer", parse_i64),
        }
    }

    /// Also accepts numeric text without a fraction ("123" from `sum(bigint)`).
    pub fn get_u64(&self, column: &str) -> Result<Option<u64>, PgError> {
        self.parsed(column, "a non-negative integer", |s| s.parse().ok())
    }

    /// `NaN` and `±Infinity` are decode errors: no metric carries them.
    pub fn get_f64(&self, column: &str) -> Result<Option<f64>, PgError> {
        self.parsed(column, "a finite number", parse_finite)
    }

    /// [`Row::get_f64`] of the column at `index`.
    pub fn f64_at(&self, index: usize) -> Result<Option<f64>, PgError> {
        self.parsed_at(index, "a finite number", parse_finite)
    }

    /// `t` / `f`.
    pub fn get_bool(&self, column: &str) -> Result<Option<bool>, PgError> {
        self.parsed(column, "a boolean", parse_bool)
    }

    /// [`Row::get_bool`] of the column at `index`.
    pub fn bool_at(&self, index: usize) -> Result<Option<bool>, PgError> {
        self.parsed_at(index, "a boolean", parse_bool)
    }

    /// `timestamptz` text in ISO style with a UTC offset → UTC wall time.
    pub fn get_timestamptz(&self, column: &str) -> Result<Option<WallTime>, PgError> {
        self.parsed(column, "a timestamp with time zone", parse_timestamptz)
    }

    /// [`Row::get_timestamptz`] of the column at `index`.
    pub fn timestamptz_at(&self, index: usize) -> Result<Option<WallTime>, PgError> {
        self.parsed_at(index, "a timestamp with time zone", parse_timestamptz)
    }
}

fn parse_i64(s: &str) -> Option<i64> {
    s.parse().ok()
}

/// `text` as an i64 when it is an optional `-` and 1 to 18 ASCII digits (which cannot
/// overflow); anything else (`+`, 19 digits, not a number) is `None`, for `str::parse` to
/// decide. Where both give a value, it is the same.
fn short_decimal(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(d - b'0');
    }
    Some(if negative { -v } else { v })
}

fn parse_finite(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "t" => Some(true),
        "f" => Some(false),
        _ => None,
    }
}

fn decode_error(column: &str, value: &str, expected: &'static str) -> PgError {
    let mut end = value.len().min(MAX_QUOTED_VALUE);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let mut quoted = value[..end].to_string();
    if end < value.len() {
        quoted.push('…');
    }
    PgError::Decode {
        column: column.to_string(),
        value: quoted,
        expected,
    }
}

/// `YYYY-MM-DD HH:MM:SS[.f{1,6}]±HH[:MM[:SS]]` (PostgreSQL's ISO output; `infinity` and BC
/// dates are rejected).
pub fn parse_timestamptz(s: &str) -> Option<WallTime> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(d).ok()?.parse().ok()
    };
    // Years have at least four digits and may have more.
    let dash = b.iter().position(|&c| c == b'-')?;
    if dash < 4 {
        return None;
    }
    let year = num(0..dash)?;
    let p = dash;
    if b.get(p) != Some(&b'-') || b.get(p + 3) != Some(&b'-') || b.get(p + 6) != Some(&b' ') {
        return None;
    }
    // Two digits each: they fit u32.
    let month = u32::try_from(num(p + 1..p + 3)?).ok()?;
    let day = u32::try_from(num(p + 4..p + 6)?).ok()?;
    let t = p + 7;
    if b.get(t + 2) != Some(&b':') || b.get(t + 5) != Some(&b':') {
        return None;
    }
    let (hour, min, sec) = (num(t..t + 2)?, num(t + 3..t + 5)?, num(t + 6..t + 8)?);
    let mut i = t + 8;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        let frac = u32::try_from(num(start..i)?).ok()?;
        nanos = frac * 10u32.pow(9 - digits as u32);
    }
    let sign = match b.get(i) {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    let mut offset = num(i + 1..i + 3)? * 3600;
    i += 3;
    for unit in [60, 1] {
        if b.get(i) == Some(&b':') {
            offset += num(i + 1..i + 3)? * unit;
            i += 3;
        }
    }
    if i != b.len()
        || !(1..=12).contains(&month)
        || !(1..=calendar::days_in_month(year, month)).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let days = calendar::days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - sign * offset;
    Some(WallTime { secs, nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Option<(i64, u32)> {
        parse_timestamptz(s).map(|w| (w.secs, w.nanos))
    }

    #[test]
    fn short_decimals_read_as_str_parse_reads_them() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "+5",
            "",
            "-",
            "1.0",
            "1e3",
            " 1",
            "1 ",
            "0x10",
            "٣",
            "--1",
            "00000000000000000001",
        ] {
            let fast = short_decimal(text.as_bytes());
            let slow = text.parse::<i64>().ok();
            // The fast path gives the same value, or leaves the text to str::parse.
            assert!(
                fast.is_none() || fast == slow,
                "{text:?}: {fast:?} {slow:?}"
            );
            assert_eq!(fast.or_else(|| parse_i64(text)), slow, "{text:?}");
        }
    }

    #[test]
    fn timestamps_in_iso_style_with_offsets() {
        assert_eq!(
            ts("2026-11-27 21:33:02.966761+00"),
            Some((1_795_815_182, 966_761_000))
        );
        assert_eq!(ts("1970-01-01 00:00:00+00"), Some((0, 0)));
        assert_eq!(ts("1970-01-01 05:30:00+05:30"), Some((0, 0)));
        assert_eq!(ts("1969-12-31 16:00:00-08"), Some((0, 0)));
        assert_eq!(
            ts("2000-02-29 00:00:00.5+00"),
            Some((951_782_400, 500_000_000))
        );
        assert_eq!(ts("1970-01-01 00:00:00+00:00:30"), Some((-30, 0)));
        for bad in [
            "infinity",
            "-infinity",
            "2026-11-27 21:33:02",
            "2026-11-27T21:33:02+00",
            "2026-02-30 00:00:00+00",
            "0044-03-15 12:00:00+00 BC",
            "2026-11-27 21:33:02.+00",
            "2026-11-27 21:33:02+0",
            "",
            "é",
        ] {
            assert_eq!(ts(bad), None, "{bad}");
        }
    }

    fn field(body: &mut Vec<u8>, f: Option<&[u8]>) {
        match f {
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(f) => {
                body.extend_from_slice(&(f.len() as i32).to_be_bytes());
                body.extend_from_slice(f);
            }
        }
    }

    #[test]
    fn fields_of_many_rows_keep_their_bounds_nulls_and_empties() {
        let mut b = RowsBuilder::default();
        b.set_columns(vec!["a".into(), "b".into(), "c".into()]);
        let rows: [[Option<&[u8]>; 3]; 4] = [
            [Some(b"1"), None, Some(b"")],
            [None, None, None],
            [Some(b""), Some(b"xyz"), None],
            [Some(b"22"), Some(b""), Some(b"\xff\x00")],
        ];
        for r in &rows {
            let mut body = Vec::new();
            for f in r {
                field(&mut body, *f);
            }
            b.push_row(3, &body).unwrap();
        }
        // A bad row is refused whole: what was stored stays as it was.
        assert!(b.push_row(3, &[0, 0, 0, 1, b'x']).is_err());
        let got = b.finish();
        assert_eq!(got.len(), 4);
        for (row, want) in got.iter().zip(&rows) {
            for (i, w) in want.iter().enumerate() {
                assert_eq!(row.bytes_at(i), *w);
            }
            assert_eq!(row.bytes_at(3), None);
        }
        assert_eq!(got.iter().count(), 4);
        // Rows without columns (`select from t`) are still counted.
        let mut b = RowsBuilder::default();
        b.set_columns(Vec::new());
        b.push_row(0, &[]).unwrap();
        b.push_row(0, &[]).unwrap();
        let got = b.finish();
        assert_eq!((got.len(), got.iter().count()), (2, 2));
    }

    #[test]
    fn rows_are_validated_and_read_by_name() {
        let mut b = RowsBuilder::default();
        b.set_columns(vec!["a".into(), "b".into()]);
        let mut body = Vec::new();
        body.extend_from_slice(&2i32.to_be_bytes());
        body.extend_from_slice(b"42");
        body.extend_from_slice(&(-1i32).to_be_bytes());
        b.push_row(2, &body).unwrap();
        assert!(b.push_row(1, &body).is_err());
        assert!(b.push_row(2, &body[..body.len() - 1]).is_err());
        let mut long = body.clone();
        long.push(0);
        assert!(b.push_row(2, &long).is_err());
        let rows = b.finish();
        assert_eq!(rows.len(), 1);
        let row = rows.iter().next().unwrap();
        assert_eq!(row.get_i64("a").unwrap(), Some(42));
        assert_eq!(row.get_str("b").unwrap(), None);
        let e = row.get_bool("a").unwrap_err().to_string();
        assert!(e.contains("\"a\"") && e.contains("42"), "{e}");
        assert!(row.get_str("zz").is_err());
        assert!(rows.column_index("zz").is_err());
        let (a, b2) = (
            rows.column_index("a").unwrap(),
            rows.column_index("b").unwrap(),
        );
        assert_eq!(row.i64_at(a).unwrap(), Some(42));
        assert_eq!(row.str_at(b2).unwrap(), None);
        let e = row.bool_at(a).unwrap_err().to_string();
        assert!(e.contains("\"a\"") && e.contains("42"), "{e}");
    }
}
