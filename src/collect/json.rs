//! Hand-written JSON values for the hot loops of large elements (`pg_schema`): the same bytes
//! serde_json writes (the tests below compare them), without serde's many small writes per
//! field. Strings with nothing to escape (nearly all catalog names) are one copy; the rest,
//! and floats, go through serde_json itself.

/// Copies up to this many bytes without calling memcpy.
const SHORT_COPY: usize = 32;

/// Appends `bytes`. JSON is written in pieces of a few bytes (keys, short names); those are
/// pushed byte by byte, since a memcpy call (`rep movsq` start-up) costs more than the copy
/// for them on musl: it took a third of `pg_schema`'s CPU otherwise.
pub fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() <= SHORT_COPY {
        out.reserve(bytes.len());
        for &b in bytes {
            out.push(b);
        }
    } else {
        out.extend_from_slice(bytes);
    }
}

/// Appends `s` as a JSON string, escaped exactly as serde_json does.
pub fn str(out: &mut Vec<u8>, s: &str) {
    let plain = s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        put(out, s.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail; a failure would leave the bytes written so far.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Appends `s` or `null`.
pub fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => str(out, s),
        None => put(out, b"null"),
    }
}

/// Appends `v` or `null`, in decimal (as serde_json's integer output).
pub fn opt_i64(out: &mut Vec<u8>, v: Option<i64>) {
    let Some(v) = v else {
        put(out, b"null");
        return;
    };
    let mut digits = [0u8; 20];
    let mut n = v.unsigned_abs();
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
    if v < 0 {
        out.push(b'-');
    }
    put(out, digits.get(i..).unwrap_or_default());
}

/// Appends `true`, `false` or `null`.
pub fn opt_bool(out: &mut Vec<u8>, v: Option<bool>) {
    put(
        out,
        match v {
            Some(true) => b"true",
            Some(false) => b"false",
            None => b"null",
        },
    );
}

/// Appends `v` (serde_json's float output; a non-finite value is `null`, as there) or `null`.
pub fn opt_f64(out: &mut Vec<u8>, v: Option<f64>) {
    match v {
        // Writing into a Vec cannot fail.
        Some(v) => {
            let _ = serde_json::to_writer(&mut *out, &v);
        }
        None => put(out, b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    fn ours(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = b"x".to_vec();
        f(&mut out);
        String::from_utf8(out[1..].to_vec()).unwrap()
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
            assert_eq!(ours(|o| str(o, s)), serde(&s), "{s:?}");
        }
        assert_eq!(ours(|o| opt_str(o, None)), "null");
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
            assert_eq!(ours(|o| opt_i64(o, Some(v))), serde(&v), "{v}");
        }
        assert_eq!(ours(|o| opt_i64(o, None)), "null");
        for v in [Some(true), Some(false), None] {
            assert_eq!(ours(|o| opt_bool(o, v)), serde(&v));
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
            assert_eq!(ours(|o| opt_f64(o, Some(v))), serde(&v), "{v}");
        }
        assert_eq!(ours(|o| opt_f64(o, None)), "null");
    }
}
