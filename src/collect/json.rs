//! Hand-written JSON values for the hot loops of large elements (`pg_schema`): the same bytes
//! serde_json writes (the tests below compare them), without serde's many small writes per
//! field. Strings with nothing to escape (nearly all catalog names) are one copy; the rest,
//! and floats, go through serde_json itself.

/// Initial size of a [`Buf`].
const INITIAL_BYTES: usize = 4 << 10;

/// A growable JSON output. The bytes written are `bytes[..len]`; the rest of `bytes` is
/// zeroed room, so an append is a plain copy into a slice: no capacity check and no call per
/// byte (`Vec::push` is not inlined at opt-level "z"), and pieces of a few bytes (keys,
/// short names) are copied a word at a time instead of through musl's memcpy, whose
/// `rep movsq` start-up costs more than such a copy.
#[derive(Debug, Default)]
pub struct Buf {
    bytes: Vec<u8>,
    len: usize,
}

impl Buf {
    /// The JSON written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Makes room for `n` more bytes.
    pub fn reserve(&mut self, n: usize) {
        let need = self.len.saturating_add(n);
        if need > self.bytes.len() {
            let size = need
                .max(self.bytes.len().saturating_mul(2))
                .max(INITIAL_BYTES);
            self.bytes.resize(size, 0);
        }
    }

    /// Appends `src`.
    pub fn put(&mut self, src: &[u8]) {
        self.reserve(src.len());
        let Some(dst) = self.bytes.get_mut(self.len..self.len + src.len()) else {
            return;
        };
        if src.len() > SHORT_COPY {
            dst.copy_from_slice(src);
        } else {
            copy_short(dst, src);
        }
        self.len += src.len();
    }

    pub fn byte(&mut self, b: u8) {
        self.reserve(1);
        if let Some(d) = self.bytes.get_mut(self.len) {
            *d = b;
            self.len += 1;
        }
    }

    /// Appends `s` as a JSON string, escaped exactly as serde_json does.
    pub fn str(&mut self, s: &str) {
        let plain = s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
        if plain {
            self.reserve(s.len() + 2);
            self.byte(b'"');
            self.put(s.as_bytes());
            self.byte(b'"');
        } else {
            let mut v = Vec::new();
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut v, s);
            self.put(&v);
        }
    }

    /// Appends `s` or `null`.
    pub fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.put(b"null"),
        }
    }

    /// Appends `v` or `null`, in decimal (as serde_json's integer output).
    pub fn opt_i64(&mut self, v: Option<i64>) {
        let Some(v) = v else {
            self.put(b"null");
            return;
        };
        if v < 0 {
            self.byte(b'-');
        }
        self.u64(v.unsigned_abs());
    }

    /// Appends each `key` (the comma and quoted name before a value) with its value or `null`.
    pub fn i64_fields(&mut self, fields: &[(&[u8], Option<i64>)]) {
        for &(key, v) in fields {
            self.put(key);
            self.opt_i64(v);
        }
    }

    /// Appends `n` in decimal.
    pub fn u64(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.put(digits.get(i..).unwrap_or_default());
    }

    /// Appends `t` as a JSON string, or `null` (an RFC 3339 time has nothing to escape).
    pub fn opt_time(&mut self, t: Option<crate::util::Rfc3339>) {
        use std::fmt::Write;
        let Some(t) = t else {
            self.put(b"null");
            return;
        };
        let mut text = heapless::String::<TIME_BYTES>::new();
        // Any time PostgreSQL holds fits (year 294276 at most); a longer one (a year of more
        // than 20 digits) goes the slow way.
        if write!(text, "\"{t}\"").is_ok() {
            self.put(text.as_bytes());
        } else {
            self.str(&t.to_string());
        }
    }

    /// Appends `true`, `false` or `null`.
    pub fn opt_bool(&mut self, v: Option<bool>) {
        self.put(match v {
            Some(true) => b"true",
            Some(false) => b"false",
            None => b"null",
        });
    }

    /// Appends `v` (serde_json's float output; a non-finite value is `null`, as there) or
    /// `null`.
    pub fn opt_f64(&mut self, v: Option<f64>) {
        match v {
            Some(v) => {
                let mut text = [0u8; FLOAT_BYTES];
                let mut rest = &mut text[..];
                // A float's JSON (at most 24 bytes) fits; on failure nothing is appended.
                if serde_json::to_writer(&mut rest, &v).is_ok() {
                    let n = FLOAT_BYTES - rest.len();
                    self.put(text.get(..n).unwrap_or_default());
                }
            }
            None => self.put(b"null"),
        }
    }
}

/// Room for a quoted RFC 3339 time with microseconds (`"2026-11-27T21:33:02.966761Z"` is 29
/// bytes; years past 9999 add digits).
const TIME_BYTES: usize = 48;

/// Room for serde_json's float output (ryu: at most 24 bytes).
const FLOAT_BYTES: usize = 32;

/// `{"type":<kind>,"timestamp":<timestamp>,"database":<database>` of an element; the caller
/// appends the rest and the closing brace.
pub fn head(out: &mut Buf, kind: &str, timestamp: &str, database: &str) {
    out.put(b"{\"type\":");
    out.str(kind);
    out.put(b",\"timestamp\":");
    out.str(timestamp);
    out.put(b",\"database\":");
    out.str(database);
}

/// Copies up to this many bytes a word at a time.
const SHORT_COPY: usize = 32;

/// `dst.copy_from_slice(src)` (same lengths) in fixed-size pieces, which compile to plain
/// moves.
pub(crate) fn copy_short(dst: &mut [u8], src: &[u8]) {
    let (mut d, mut s) = (dst, src);
    while s.len() >= 8 {
        let (Some((dc, dr)), Some((sc, sr))) =
            (d.split_first_chunk_mut::<8>(), s.split_first_chunk::<8>())
        else {
            return;
        };
        *dc = *sc;
        (d, s) = (dr, sr);
    }
    if s.len() >= 4 {
        let (Some((dc, dr)), Some((sc, sr))) =
            (d.split_first_chunk_mut::<4>(), s.split_first_chunk::<4>())
        else {
            return;
        };
        *dc = *sc;
        (d, s) = (dr, sr);
    }
    if s.len() >= 2 {
        let (Some((dc, dr)), Some((sc, sr))) =
            (d.split_first_chunk_mut::<2>(), s.split_first_chunk::<2>())
        else {
            return;
        };
        *dc = *sc;
        (d, s) = (dr, sr);
    }
    if let (Some(dc), Some(sc)) = (d.first_mut(), s.first()) {
        *dc = *sc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    fn ours(f: impl FnOnce(&mut Buf)) -> String {
        let mut out = Buf::default();
        out.put(b"x");
        f(&mut out);
        String::from_utf8(out.as_bytes()[1..].to_vec()).unwrap()
    }

    #[test]
    fn same_bytes_as_serde_json() {
        for s in [
            "",
            "t0",
            "a \"quoted\" name",
            "back\\slash",
            "tab\there\nnewline\r\u{8}\u{c}",
            "\u{1}\u{1f}\u{7f}",
            "é ü 日本 😀",
            "/slash/ and </script>",
        ] {
            assert_eq!(ours(|o| o.str(s)), serde(&s), "{s:?}");
        }
        assert_eq!(ours(|o| o.opt_str(None)), "null");
        for v in [
            0,
            1,
            -1,
            9,
            10,
            99,
            100,
            12345,
            i64::MAX,
            i64::MIN,
            -1_000_000,
        ] {
            assert_eq!(ours(|o| o.opt_i64(Some(v))), serde(&v), "{v}");
        }
        assert_eq!(ours(|o| o.opt_i64(None)), "null");
        for v in [Some(true), Some(false), None] {
            assert_eq!(ours(|o| o.opt_bool(v)), serde(&v));
        }
        for v in [
            0.0,
            20.0,
            -1.0,
            1e300,
            0.1,
            123456.789,
            f64::NAN,
            f64::INFINITY,
        ] {
            assert_eq!(ours(|o| o.opt_f64(Some(v))), serde(&v), "{v}");
        }
        assert_eq!(ours(|o| o.opt_f64(None)), "null");
    }

    #[test]
    fn pieces_of_every_length_and_growth() {
        let text: Vec<u8> = (0..200u8).map(|i| b'a' + i % 26).collect();
        let mut b = Buf::default();
        let mut expected = Vec::new();
        for round in 0..60 {
            for n in 0..=40 {
                let piece = &text[round % 7..round % 7 + n];
                b.put(piece);
                expected.extend_from_slice(piece);
            }
            b.byte(b',');
            expected.push(b',');
        }
        assert_eq!(b.as_bytes(), &expected[..]);
        assert_eq!(b.len(), expected.len());
        b.clear();
        assert!(b.is_empty());
    }

    #[test]
    fn element_head() {
        let mut b = Buf::default();
        head(&mut b, "pg_cache", "2026-11-28T02:00:00Z", "a\"b");
        b.put(b"}");
        let v: serde_json::Value = serde_json::from_slice(b.as_bytes()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "pg_cache", "timestamp": "2026-11-28T02:00:00Z", "database": "a\"b"})
        );
    }
}
