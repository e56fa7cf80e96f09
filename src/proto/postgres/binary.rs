//! Values of a custom query's result as JSON (docs/metrics.md, `pg_custom`): the binary wire
//! form of the types that have a mapping (integers, floats, numeric, bool, json/jsonb,
//! timestamps, date, text types and arrays of these), the text form of every other type. Pure:
//! bytes in, a [`serde_json::Value`] or a one-line reason out; nothing here panics on any input.
//!
//! | type | JSON |
//! |---|---|
//! | `int2`, `int4`, `int8`, `oid` | integer |
//! | `float4`, `float8` | number; NaN and ±Infinity → `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | `numeric` | number with at most 15 significant digits, else its exact decimal text |
//! | `bool` | boolean |
//! | `json`, `jsonb` | the JSON value itself |
//! | `timestamptz` / `timestamp` | `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` / the same without `Z` |
//! | `date` | `YYYY-MM-DD`; infinite dates and timestamps → `"infinity"` / `"-infinity"` |
//! | arrays of the above | JSON arrays (nested for several dimensions) |
//! | anything else | its text form |

use crate::calendar;
use serde_json::{Number, Value};

pub const BOOL: u32 = 16;
pub const NAME: u32 = 19;
pub const INT8: u32 = 20;
pub const INT2: u32 = 21;
pub const INT4: u32 = 23;
pub const TEXT: u32 = 25;
pub const OID: u32 = 26;
pub const JSON: u32 = 114;
pub const FLOAT4: u32 = 700;
pub const FLOAT8: u32 = 701;
pub const BPCHAR: u32 = 1042;
pub const VARCHAR: u32 = 1043;
pub const DATE: u32 = 1082;
pub const TIMESTAMP: u32 = 1114;
pub const TIMESTAMPTZ: u32 = 1184;
pub const NUMERIC: u32 = 1700;
pub const JSONB: u32 = 3802;

/// The scalar types decoded from their binary form, with their array type and name.
const SCALARS: [(u32, u32, &str); 17] = [
    (BOOL, 1000, "bool"),
    (NAME, 1003, "name"),
    (INT8, 1016, "int8"),
    (INT2, 1005, "int2"),
    (INT4, 1007, "int4"),
    (TEXT, 1009, "text"),
    (OID, 1028, "oid"),
    (JSON, 199, "json"),
    (FLOAT4, 1021, "float4"),
    (FLOAT8, 1022, "float8"),
    (BPCHAR, 1014, "bpchar"),
    (VARCHAR, 1015, "varchar"),
    (DATE, 1182, "date"),
    (TIMESTAMP, 1115, "timestamp"),
    (TIMESTAMPTZ, 1185, "timestamptz"),
    (NUMERIC, 1231, "numeric"),
    (JSONB, 3807, "jsonb"),
];

/// Array types' names (`_int4` …) as PostgreSQL spells them.
const ARRAY_NAMES: [&str; 17] = [
    "_bool",
    "_name",
    "_int8",
    "_int2",
    "_int4",
    "_text",
    "_oid",
    "_json",
    "_float4",
    "_float8",
    "_bpchar",
    "_varchar",
    "_date",
    "_timestamp",
    "_timestamptz",
    "_numeric",
    "_jsonb",
];

/// PostgreSQL's MAXDIM.
const MAX_ARRAY_DIMENSIONS: usize = 6;
/// NUMERIC_DSCALE_MAX.
const MAX_NUMERIC_SCALE: u16 = 0x3FFF;
/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;

/// Whether the result column of type `oid` is asked for in binary (`true`) or text.
pub fn has_binary(oid: u32) -> bool {
    SCALARS.iter().any(|&(s, a, _)| s == oid || a == oid)
}

/// The name of a type this module knows (`None`: look it up in `pg_type`).
pub fn type_name(oid: u32) -> Option<&'static str> {
    SCALARS.iter().enumerate().find_map(|(i, &(s, a, name))| {
        if s == oid {
            Some(name)
        } else if a == oid {
            ARRAY_NAMES.get(i).copied()
        } else {
            None
        }
    })
}

/// The element type of an array type this module knows.
fn element_of(array: u32) -> Option<u32> {
    SCALARS
        .iter()
        .find(|&&(_, a, _)| a == array)
        .map(|&(s, _, _)| s)
}

/// One field: `None` is SQL NULL; `binary` says which form the server sent (as asked by
/// [`has_binary`]).
pub fn decode(oid: u32, binary: bool, bytes: Option<&[u8]>) -> Result<Value, String> {
    let Some(bytes) = bytes else {
        return Ok(Value::Null);
    };
    if !binary {
        return Ok(text_value(oid, bytes));
    }
    if let Some(element) = element_of(oid) {
        return decode_array(element, bytes);
    }
    decode_scalar(oid, bytes)
}

/// A value in text form: json stays JSON, everything else is a string.
fn text_value(oid: u32, bytes: &[u8]) -> Value {
    if oid == JSON
        && let Ok(v) = serde_json::from_slice(bytes)
    {
        return v;
    }
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

fn fixed<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], String> {
    <[u8; N]>::try_from(bytes)
        .map_err(|_| format!("{what} of {} bytes (expected {N})", bytes.len()))
}

/// A scalar in binary form.
pub fn decode_scalar(oid: u32, b: &[u8]) -> Result<Value, String> {
    Ok(match oid {
        BOOL => Value::Bool(fixed::<1>(b, "bool")?[0] != 0),
        INT2 => Value::from(i16::from_be_bytes(fixed(b, "int2")?)),
        INT4 => Value::from(i32::from_be_bytes(fixed(b, "int4")?)),
        INT8 => Value::from(i64::from_be_bytes(fixed(b, "int8")?)),
        OID => Value::from(u32::from_be_bytes(fixed(b, "oid")?)),
        FLOAT4 => {
            let v = f32::from_be_bytes(fixed(b, "float4")?);
            // The shortest text of the f32 read as f64: 0.1f32 stays 0.1.
            float(v.to_string().parse().unwrap_or(f64::from(v)))
        }
        FLOAT8 => float(f64::from_be_bytes(fixed(b, "float8")?)),
        NUMERIC => numeric_value(&numeric_text(b)?),
        JSON => text_value(JSON, b),
        JSONB => match b.split_first() {
            Some((1, rest)) => text_value(JSON, rest),
            Some((v, _)) => return Err(format!("jsonb version {v} (expected 1)")),
            None => return Err("empty jsonb".to_string()),
        },
        TIMESTAMPTZ => timestamp(i64::from_be_bytes(fixed(b, "timestamptz")?), "Z"),
        TIMESTAMP => timestamp(i64::from_be_bytes(fixed(b, "timestamp")?), ""),
        DATE => date(i32::from_be_bytes(fixed(b, "date")?)),
        _ => text_value(oid, b),
    })
}

/// A float as a JSON number, or the string PostgreSQL writes for it.
pub fn float(v: f64) -> Value {
    if v.is_nan() {
        Value::String("NaN".to_string())
    } else if v.is_infinite() {
        Value::String(if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string())
    } else {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

fn timestamp(micros: i64, zone: &str) -> Value {
    match micros {
        i64::MAX => return Value::String("infinity".to_string()),
        i64::MIN => return Value::String("-infinity".to_string()),
        _ => {}
    }
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400) + PG_EPOCH_DAYS;
    let in_day = secs.rem_euclid(86_400);
    let (y, m, d) = calendar::civil_from_days(days);
    let mut s = format!(
        "{}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        year(y),
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    );
    if frac != 0 {
        s.push_str(&format!(".{frac:06}"));
    }
    s.push_str(zone);
    Value::String(s)
}

fn date(days: i32) -> Value {
    match days {
        i32::MAX => return Value::String("infinity".to_string()),
        i32::MIN => return Value::String("-infinity".to_string()),
        _ => {}
    }
    let (y, m, d) = calendar::civil_from_days(i64::from(days) + PG_EPOCH_DAYS);
    Value::String(format!("{}-{m:02}-{d:02}", year(y)))
}

/// Four digits, or a sign and at least four (ISO 8601's expanded years) outside 0..=9999.
fn year(y: i64) -> String {
    if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:04}", y.unsigned_abs())
    } else {
        format!("+{y}")
    }
}

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// A binary `numeric` as PostgreSQL writes it in text (`-12.50`, `NaN`, `Infinity`).
pub fn numeric_text(b: &[u8]) -> Result<String, String> {
    let (head, rest) = b
        .split_first_chunk::<8>()
        .ok_or_else(|| format!("numeric of {} bytes (header is 8)", b.len()))?;
    let ndigits = i16::from_be_bytes([head[0], head[1]]);
    let weight = i64::from(i16::from_be_bytes([head[2], head[3]]));
    let sign = u16::from_be_bytes([head[4], head[5]]);
    let dscale = u16::from_be_bytes([head[6], head[7]]);
    match sign {
        NUMERIC_NAN => return Ok("NaN".to_string()),
        NUMERIC_PINF => return Ok("Infinity".to_string()),
        NUMERIC_NINF => return Ok("-Infinity".to_string()),
        NUMERIC_POS | NUMERIC_NEG => {}
        other => return Err(format!("numeric sign 0x{other:04x}")),
    }
    let ndigits = usize::try_from(ndigits).map_err(|_| "negative numeric digit count")?;
    if rest.len() != ndigits * 2 {
        return Err(format!(
            "numeric with {ndigits} digits in {} bytes",
            rest.len()
        ));
    }
    if dscale > MAX_NUMERIC_SCALE {
        return Err(format!("numeric scale {dscale}"));
    }
    let mut digits = Vec::with_capacity(ndigits);
    for pair in rest.chunks_exact(2) {
        let d = i16::from_be_bytes([pair[0], pair[1]]);
        if !(0..10_000).contains(&d) {
            return Err(format!("numeric digit {d}"));
        }
        digits.push(d as u16);
    }
    // Base-10000 digit i has weight `weight - i`.
    let digit = |w: i64| -> u16 {
        let i = weight - w;
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut s = String::new();
    if sign == NUMERIC_NEG {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        s.push_str(&digit(weight).to_string());
        for w in (0..weight).rev() {
            s.push_str(&format!("{:04}", digit(w)));
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut left = usize::from(dscale);
        let mut w = -1;
        while left > 0 {
            let group = format!("{:04}", digit(w));
            let take = left.min(4);
            s.push_str(&group[..take]);
            left -= take;
            w -= 1;
        }
    }
    Ok(s)
}

/// Most significant digits a numeric may have and still be sent as a JSON number.
pub const MAX_NUMBER_DIGITS: usize = 15;

/// The JSON of a numeric's text: a number when it has at most 15 significant digits, else the
/// text (NaN and the infinities as strings, like floats).
pub fn numeric_value(text: &str) -> Value {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    if !unsigned.starts_with(|c: char| c.is_ascii_digit()) {
        return Value::String(text.to_string());
    }
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all = format!("{int}{frac}");
    let significant = all.trim_start_matches('0').trim_end_matches('0').len();
    if significant > MAX_NUMBER_DIGITS {
        return Value::String(text.to_string());
    }
    if frac.bytes().all(|c| c == b'0') {
        let int_text = if text.starts_with('-') {
            format!("-{int}")
        } else {
            int.to_string()
        };
        if let Ok(i) = int_text.parse::<i64>() {
            return Value::from(i);
        }
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => float(v),
        _ => Value::String(text.to_string()),
    }
}

/// A decimal text (`-?digits(.digits)?`) in `numeric`'s binary form, as PostgreSQL sends it
/// (the inverse of [`numeric_text`], for tests and the fuzz target). `None` for other text.
pub fn encode_numeric(text: &str) -> Option<Vec<u8>> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(u) => (true, u),
        None => (false, text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits_only = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits_only(int) || !digits_only(frac) || unsigned.ends_with('.') {
        return None;
    }
    let dscale = u16::try_from(frac.len())
        .ok()
        .filter(|&d| d <= MAX_NUMERIC_SCALE)?;
    // Pad the integer part on the left and the fraction on the right to whole groups of 4.
    let int = int.trim_start_matches('0');
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let all = format!("{}{int}{frac}{}", "0".repeat(int_pad), "0".repeat(frac_pad));
    let groups: Vec<u16> = all
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0u16, |a, &d| a * 10 + u16::from(d - b'0')))
        .collect();
    let int_groups = (int.len() + int_pad) / 4;
    let mut weight = i64::try_from(int_groups).ok()? - 1;
    let mut first = 0;
    while first < groups.len() && groups[first] == 0 {
        first += 1;
        weight -= 1;
    }
    let mut last = groups.len();
    while last > first && groups[last - 1] == 0 {
        last -= 1;
    }
    let kept = &groups[first..last];
    let (weight, sign) = if kept.is_empty() {
        (0, NUMERIC_POS)
    } else if negative {
        (weight, NUMERIC_NEG)
    } else {
        (weight, NUMERIC_POS)
    };
    let mut out = Vec::with_capacity(8 + kept.len() * 2);
    out.extend_from_slice(&i16::try_from(kept.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&i16::try_from(weight).ok()?.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for g in kept {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Some(out)
}

/// The text [`numeric_text`] gives for a decimal text [`encode_numeric`] accepts: leading
/// zeros of the integer part dropped (one kept), the fraction as written, no sign on zero.
pub fn canonical_decimal(text: &str) -> String {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(u) => (true, u),
        None => (false, text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let int = match int.trim_start_matches('0') {
        "" => "0",
        i => i,
    };
    let zero = int == "0" && frac.bytes().all(|c| c == b'0');
    let mut s = String::new();
    if negative && !zero {
        s.push('-');
    }
    s.push_str(int);
    if !frac.is_empty() {
        s.push('.');
        s.push_str(frac);
    }
    s
}

/// A binary array of `element`s: nested JSON arrays, one level per dimension.
fn decode_array(element: u32, b: &[u8]) -> Result<Value, String> {
    let mut r = Reader(b);
    let ndim = r.i32()?;
    let _has_nulls = r.i32()?;
    let elem_oid = r.i32()? as u32;
    let ndim = usize::try_from(ndim)
        .ok()
        .filter(|&n| n <= MAX_ARRAY_DIMENSIONS)
        .ok_or_else(|| format!("array with {ndim} dimensions"))?;
    if ndim == 0 {
        return Ok(Value::Array(Vec::new()));
    }
    if elem_oid != element {
        return Err(format!(
            "array of type {elem_oid} where {element} was expected"
        ));
    }
    let mut dims = Vec::with_capacity(ndim);
    let mut total: usize = 1;
    for _ in 0..ndim {
        let n = r.i32()?;
        let _lower_bound = r.i32()?;
        let n = usize::try_from(n).map_err(|_| format!("array dimension {n}"))?;
        total = total.saturating_mul(n);
        dims.push(n);
    }
    // Each element takes at least its 4-byte length: no allocation beyond what the bytes hold.
    if total > r.0.len() / 4 {
        return Err(format!("array of {total} elements in {} bytes", r.0.len()));
    }
    // A zero dimension beside a huge one: no element, and nothing to nest (nesting would
    // build the huge dimension's empty arrays).
    if total == 0 {
        if !r.0.is_empty() {
            return Err("trailing bytes after the array".to_string());
        }
        return Ok(Value::Array(Vec::new()));
    }
    let mut flat = Vec::with_capacity(total);
    for _ in 0..total {
        let len = r.i32()?;
        let field = match len {
            -1 => None,
            n => Some(r.take(usize::try_from(n).map_err(|_| format!("element length {n}"))?)?),
        };
        flat.push(decode(element, true, field)?);
    }
    if !r.0.is_empty() {
        return Err("trailing bytes after the array".to_string());
    }
    Ok(nest(&dims, &mut flat.into_iter()))
}

fn nest(dims: &[usize], items: &mut impl Iterator<Item = Value>) -> Value {
    match dims.split_first() {
        None => items.next().unwrap_or(Value::Null),
        Some((&n, rest)) => Value::Array((0..n).map(|_| nest(rest, items)).collect()),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err("truncated array".to_string());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bin(oid: u32, b: &[u8]) -> Value {
        decode(oid, true, Some(b)).unwrap()
    }

    #[test]
    fn integers_floats_and_bool() {
        assert_eq!(bin(INT2, &(-7i16).to_be_bytes()), json!(-7));
        assert_eq!(bin(INT4, &i32::MIN.to_be_bytes()), json!(i32::MIN));
        assert_eq!(bin(INT8, &i64::MAX.to_be_bytes()), json!(i64::MAX));
        assert_eq!(bin(OID, &u32::MAX.to_be_bytes()), json!(u32::MAX));
        assert_eq!(bin(FLOAT8, &0.42f64.to_be_bytes()), json!(0.42));
        assert_eq!(bin(FLOAT4, &0.1f32.to_be_bytes()), json!(0.1));
        assert_eq!(bin(FLOAT8, &f64::NAN.to_be_bytes()), json!("NaN"));
        assert_eq!(bin(FLOAT4, &f32::INFINITY.to_be_bytes()), json!("Infinity"));
        assert_eq!(
            bin(FLOAT8, &f64::NEG_INFINITY.to_be_bytes()),
            json!("-Infinity")
        );
        assert_eq!(bin(BOOL, &[1]), json!(true));
        assert_eq!(bin(BOOL, &[0]), json!(false));
        assert_eq!(decode(INT4, true, None).unwrap(), Value::Null);
        assert!(decode(INT4, true, Some(&[0, 0, 1])).is_err());
        assert!(decode(BOOL, true, Some(&[])).is_err());
    }

    #[test]
    fn numeric_known_answers() {
        // 12345678.9012: digits 1234 5678 . 9012, weight 1, scale 4 (numeric_send's layout).
        let b = [0, 3, 0, 1, 0, 0, 0, 4, 0x04, 0xD2, 0x16, 0x2E, 0x23, 0x34];
        assert_eq!(numeric_text(&[0, 0, 0, 0, 0, 0, 0, 0]).unwrap(), "0");
        let decoded = numeric_text(&encode_numeric("12345678.9012").unwrap()).unwrap();
        assert_eq!(decoded, "12345678.9012");
        assert_eq!(encode_numeric("12345678.9012").unwrap(), b);
        for (text, json) in [
            ("0", json!(0)),
            ("-12.50", json!(-12.5)),
            ("100", json!(100)),
            ("0.001", json!(0.001)),
            ("123456789012345", json!(123_456_789_012_345i64)),
            ("1234567890123456", json!("1234567890123456")),
            ("0.1234567890123456", json!("0.1234567890123456")),
            ("99999999999999999999.5", json!("99999999999999999999.5")),
            ("1000000000000000000000", json!(1e21)),
        ] {
            let enc = encode_numeric(text).unwrap();
            let back = numeric_text(&enc).unwrap();
            assert_eq!(back, canonical_decimal(text), "{text}");
            assert_eq!(bin(NUMERIC, &enc), json, "{text}");
        }
        let special = |sign: u16| {
            let mut b = vec![0, 0, 0, 0];
            b.extend_from_slice(&sign.to_be_bytes());
            b.extend_from_slice(&[0, 0]);
            bin(NUMERIC, &b)
        };
        assert_eq!(special(NUMERIC_NAN), json!("NaN"));
        assert_eq!(special(NUMERIC_PINF), json!("Infinity"));
        assert_eq!(special(NUMERIC_NINF), json!("-Infinity"));
        assert!(numeric_text(&[0, 1, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(numeric_text(&[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10]).is_err());
        assert!(numeric_text(&[0, 0, 0, 0, 0x12, 0x34, 0, 0]).is_err());
    }

    #[test]
    fn every_prefix_of_a_numeric_is_an_error_not_a_panic() {
        let b = encode_numeric("-98765.4321").unwrap();
        for n in 0..b.len() {
            assert!(numeric_text(&b[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn times_and_dates() {
        assert_eq!(
            bin(TIMESTAMPTZ, &0i64.to_be_bytes()),
            json!("2000-01-01T00:00:00Z")
        );
        assert_eq!(
            bin(TIMESTAMP, &(-1i64).to_be_bytes()),
            json!("1999-12-31T23:59:59.999999")
        );
        // 2026-03-01 12:00:00.5 UTC.
        let micros = (1_772_366_400i64 - 946_684_800) * 1_000_000 + 500_000;
        assert_eq!(
            bin(TIMESTAMPTZ, &micros.to_be_bytes()),
            json!("2026-03-01T12:00:00.500000Z")
        );
        assert_eq!(bin(TIMESTAMPTZ, &i64::MAX.to_be_bytes()), json!("infinity"));
        assert_eq!(bin(TIMESTAMP, &i64::MIN.to_be_bytes()), json!("-infinity"));
        assert_eq!(bin(DATE, &0i32.to_be_bytes()), json!("2000-01-01"));
        assert_eq!(bin(DATE, &(-10_957i32).to_be_bytes()), json!("1970-01-01"));
        assert_eq!(bin(DATE, &i32::MAX.to_be_bytes()), json!("infinity"));
        assert_eq!(bin(DATE, &i32::MIN.to_be_bytes()), json!("-infinity"));
        assert_eq!(bin(DATE, &(-730_485i32).to_be_bytes()), json!("0000-01-01"));
    }

    #[test]
    fn text_json_and_arrays() {
        assert_eq!(bin(TEXT, "é".as_bytes()), json!("é"));
        assert_eq!(bin(JSON, br#"{"a": [1]}"#), json!({"a": [1]}));
        assert_eq!(bin(JSONB, b"\x01[true]"), json!([true]));
        assert!(decode(JSONB, true, Some(b"\x02{}")).is_err());
        assert_eq!(decode(600, false, Some(b"(1,2)")).unwrap(), json!("(1,2)"));
        // int4[][] = {{1,NULL},{3,4}}
        let mut a = Vec::new();
        for v in [2i32, 1, INT4 as i32, 2, 1, 2, 1] {
            a.extend_from_slice(&v.to_be_bytes());
        }
        for v in [Some(1i32), None, Some(3), Some(4)] {
            match v {
                Some(v) => {
                    a.extend_from_slice(&4i32.to_be_bytes());
                    a.extend_from_slice(&v.to_be_bytes());
                }
                None => a.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        assert_eq!(bin(1007, &a), json!([[1, null], [3, 4]]));
        for n in 0..a.len() {
            assert!(decode(1007, true, Some(&a[..n])).is_err(), "{n}");
        }
        // Empty array; wrong element type; a huge dimension with no bytes behind it.
        let mut e = Vec::new();
        for v in [0i32, 0, INT4 as i32] {
            e.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(bin(1007, &e), json!([]));
        assert!(decode(1009, true, Some(&a)).is_err());
        let mut huge = Vec::new();
        for v in [1i32, 0, INT4 as i32, i32::MAX, 1] {
            huge.extend_from_slice(&v.to_be_bytes());
        }
        assert!(decode(1007, true, Some(&huge)).is_err());
        // A huge dimension beside a zero one (found by the fuzz target): empty, not 2^31 arrays.
        let mut zero = Vec::new();
        for v in [2i32, 0, INT4 as i32, i32::MAX, 1, 0, 1] {
            zero.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(bin(1007, &zero), json!([]));
        assert_eq!(type_name(1007), Some("_int4"));
        assert_eq!(type_name(NUMERIC), Some("numeric"));
        assert!(has_binary(1185) && !has_binary(600));
    }
}
