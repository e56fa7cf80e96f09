//! /proc/stat through the production line reader at several read sizes: the same result (value or
//! error) as the slice driver's `Stat::parse`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::sys::procfs::stat::Stat;

#[path = "common/lines.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let twin = format!("{:?}", Stat::parse(data));
    for chunk in common::CHUNKS {
        let mut p = Stat::default();
        let streamed = common::stream(&mut p, data, chunk)
            .and_then(|()| p.finish())
            .map(|()| p);
        assert_eq!(
            format!("{streamed:?}"),
            twin,
            "read {chunk} bytes at a time"
        );
    }
});
