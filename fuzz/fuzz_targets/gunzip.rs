#![no_main]
//! Arbitrary bytes as a gzip member, output capped. Run with `-malloc_limit_mb=256`: the cap
//! must hold whatever ISIZE or the deflate data claim.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::proto::gzip;

const CAP: usize = 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = gzip::decompress(data, CAP) {
        assert!(out.len() <= CAP);
        assert_eq!(
            gzip::crc32(&out).to_le_bytes(),
            data[data.len() - 8..data.len() - 4]
        );
    }
});
