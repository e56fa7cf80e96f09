#![no_main]
//! Arbitrary bytes as the server's replies to the extended protocol's describe (first byte
//! even) or execute (odd, for two columns whose types the second byte picks): every call
//! consumes between 1 byte and what it was given or asks for more without consuming; the result
//! after ReadyForQuery is read and every field decoded without a panic. Run with
//! `-malloc_limit_mb=256`: a header announcing gigabytes must be rejected, not reserved.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::proto::postgres::binary;
use pganalytics_collector::proto::postgres::extended::{Column, Exchange, Step};

const TYPES: [u32; 8] = [23, 1700, 1184, 3802, 1007, 25, 700, 600];

fuzz_target!(|data: &[u8]| {
    let Some((&phase, rest)) = data.split_first() else {
        return;
    };
    let Some((&pick, mut input)) = rest.split_first() else {
        return;
    };
    let mut x = if phase & 1 == 0 {
        Exchange::describe()
    } else {
        let column = |i: usize, oid: u32| Column {
            name: format!("c{i}"),
            type_oid: oid,
            binary: binary::has_binary(oid),
        };
        let a = TYPES[usize::from(pick & 7)];
        let b = TYPES[usize::from(pick >> 5)];
        Exchange::execute(vec![column(0, a), column(1, b)])
    };
    loop {
        match x.try_message(input) {
            Ok(None) | Err(_) => return,
            Ok(Some(Step::Continue(n))) => {
                assert!(n > 0 && n <= input.len());
                input = &input[n..];
            }
            Ok(Some(Step::Ready(n))) => {
                assert!(n > 0 && n <= input.len());
                break;
            }
        }
    }
    if phase & 1 == 0 {
        let _ = x.described();
        return;
    }
    if let Ok(e) = x.executed() {
        for row in e.rows.iter() {
            for (i, c) in e.columns.iter().enumerate() {
                let _ = binary::decode(c.type_oid, c.binary, row.bytes_at(i));
            }
        }
    }
});
