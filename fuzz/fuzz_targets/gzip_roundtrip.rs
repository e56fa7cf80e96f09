#![no_main]
//! Property: compress → decompress gives the input back, at every level. The first byte picks
//! the level.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::proto::gzip;

fuzz_target!(|data: &[u8]| {
    let Some((&level, input)) = data.split_first() else {
        return;
    };
    let mut gz = Vec::new();
    gzip::compress(input, level % 11, &mut gz);
    assert_eq!(gzip::decompress(&gz, input.len()).as_deref(), Ok(input));
});
