#![no_main]
//! Arbitrary bytes as backend messages, in the startup/auth phase (first byte even) or after a
//! query was sent (first byte odd). Run with `-malloc_limit_mb=256`: a header announcing
//! gigabytes must be rejected, not reserved.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::proto::postgres::session::Session;

fuzz_target!(|data: &[u8]| {
    let Some((&phase, mut input)) = data.split_first() else {
        return;
    };
    let Ok(mut s) = Session::new("u", Some("pw"), &[("user", "u")]) else {
        return;
    };
    if phase & 1 == 1 {
        // AuthenticationOk, ReadyForQuery(I), then a query.
        for m in [&b"R\0\0\0\x08\0\0\0\0"[..], b"Z\0\0\0\x05I"] {
            let _ = s.try_message(m);
        }
        let _ = s.query("select 1");
    }
    while let Ok(Some((n, _))) = s.try_message(input) {
        assert!(n > 0 && n <= input.len());
        input = &input[n..];
        if let Some(Ok(rows)) = s.take_result() {
            for row in rows.iter() {
                for c in rows.columns() {
                    let _ = (
                        row.get_str(c),
                        row.get_i64(c),
                        row.get_f64(c),
                        row.get_timestamptz(c),
                    );
                }
                for i in 0..=rows.columns().count() {
                    let _ = (row.bytes_at(i), row.str_at(i));
                    // The integer fast path agrees with str::parse on every field.
                    let fast = row.i64_at(i).ok().flatten();
                    let slow = row
                        .str_at(i)
                        .ok()
                        .flatten()
                        .and_then(|t| t.parse::<i64>().ok());
                    assert_eq!(fast, slow, "{:?}", row.bytes_at(i));
                }
            }
        }
        if phase & 2 == 2 && s.is_ready() {
            let _ = s.query("select 1");
        }
    }
});
