//! The `current_logfiles` file of a data directory: any bytes, no panic; every pair has a
//! non-empty destination and path.
#![no_main]
use pganalytics_collector::collect::pg::pg_log::discover::parse_current_logfiles;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(list) = parse_current_logfiles(data) {
        for (dest, path) in list {
            assert!(!dest.is_empty() && !path.is_empty());
        }
    }
});
