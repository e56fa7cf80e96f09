#![no_main]
//! Arbitrary bytes as backend messages, in the startup/auth phase (first byte even) or after a
//! query was sent (first byte odd); with bit 2 of the first byte, the queries are split ones
//! of 1 to 4 statements (bits 3-4). Run with `-malloc_limit_mb=256`: a header announcing
//! gigabytes must be rejected, not reserved.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::proto::postgres::Rows;
use pganalytics_collector::proto::postgres::session::Session;

fn check(rows: &Rows) {
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
        query(&mut s, phase);
    }
    while let Ok(Some((n, _))) = s.try_message(input) {
        assert!(n > 0 && n <= input.len());
        input = &input[n..];
        if let Some(result) = s.take_result() {
            let earlier = s.take_earlier();
            match result {
                Ok(rows) => {
                    // At most one result per statement sent.
                    assert!(earlier.len() < 4);
                    earlier.iter().for_each(check);
                    check(&rows);
                }
                Err(_) => assert!(earlier.is_empty()),
            }
        }
        if phase & 2 == 2 && s.is_ready() {
            query(&mut s, phase);
        }
    }
});

fn query(s: &mut Session, phase: u8) {
    if phase & 4 == 4 {
        let _ = s.query_split(
            "select 1",
            usize::from((phase >> 3) & 3) + 1,
            &mut Vec::new(),
        );
    } else {
        let _ = s.query("select 1");
    }
}
