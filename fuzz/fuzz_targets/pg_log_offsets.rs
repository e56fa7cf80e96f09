//! `pg_log.offsets`: any bytes parse or give an error without panicking, and what parses
//! renders to text that parses to the same list (render → parse = input list).
#![no_main]
use pganalytics_collector::collect::pg::pg_log::offsets::{parse, render};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(list) = parse(data) {
        let text = render(&list);
        assert_eq!(parse(text.as_bytes()).as_ref(), Ok(&list), "{text}");
    }
});
