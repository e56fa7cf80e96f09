#![no_main]
//! The binary decoders of custom query values (`proto::postgres::binary`). The first byte picks
//! the mode:
//! - even: the rest is a value of a type picked by the second byte, in binary and in text:
//!   never a panic; a decoded numeric's text encodes back to the same canonical text;
//! - odd: the rest makes a decimal text (sign, digits, point): `numeric_text(encode_numeric(x))`
//!   is `x` (canonical), and the JSON value is a number exactly when it has at most 15
//!   significant digits, one that reads back as the same f64 as the text.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::proto::postgres::binary;

const TYPES: [u32; 36] = [
    16, 19, 20, 21, 23, 25, 26, 114, 700, 701, 1042, 1043, 1082, 1114, 1184, 1700, 3802, 1000,
    1003, 1016, 1005, 1007, 1009, 1028, 199, 1021, 1022, 1014, 1015, 1182, 1115, 1185, 1231, 3807,
    600, 17,
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let Some((&pick, value)) = rest.split_first() else {
            return;
        };
        let oid = TYPES[usize::from(pick) % TYPES.len()];
        for binary in [true, false] {
            if let Ok(v) = binary::decode(oid, binary, Some(value)) {
                let _ = v.to_string();
            }
        }
        if oid == binary::NUMERIC
            && let Ok(text) = binary::numeric_text(value)
        {
            let _ = binary::numeric_value(&text);
            if let Some(enc) = binary::encode_numeric(&text) {
                let back = binary::numeric_text(&enc).unwrap();
                assert_eq!(back, binary::canonical_decimal(&text));
            }
        }
        return;
    }
    // A decimal text: bit 1 of mode is the sign, the next byte the point's position, then digits.
    let Some((&point, digits)) = rest.split_first() else {
        return;
    };
    let digits: String = digits
        .iter()
        .take(200)
        .map(|b| char::from(b'0' + b % 10))
        .collect();
    if digits.is_empty() {
        return;
    }
    let at = usize::from(point) % (digits.len() + 1);
    let (int, frac) = digits.split_at(at);
    let int = if int.is_empty() { "0" } else { int };
    let sign = if mode & 2 == 2 { "-" } else { "" };
    let text = if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    };
    let enc = binary::encode_numeric(&text).expect("a decimal text encodes");
    let back = binary::numeric_text(&enc).expect("an encoded numeric decodes");
    assert_eq!(back, binary::canonical_decimal(&text), "{text}");
    let significant = format!("{int}{frac}")
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len();
    let v = binary::numeric_value(&back);
    if significant <= binary::MAX_NUMBER_DIGITS {
        let n = v.as_f64().unwrap_or_else(|| panic!("{text}: {v}"));
        assert_eq!(n, back.parse::<f64>().unwrap(), "{text}");
    } else {
        assert_eq!(v.as_str(), Some(back.as_str()), "{text}");
    }
});
