//! /proc/meminfo through the production line reader at several read sizes: the same result (value or
//! error) as the slice driver's `Meminfo::parse`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::sys::procfs::meminfo::Meminfo;

#[path = "common/lines.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let twin = format!("{:?}", Meminfo::parse(data));
    for chunk in common::CHUNKS {
        let mut p = Meminfo::default();
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
