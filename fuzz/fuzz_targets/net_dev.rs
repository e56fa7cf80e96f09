//! /proc/net/dev through the production line reader at several read sizes: the same result (value or
//! error) as the slice driver's `NetDev::parse`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::sys::procfs::net_dev::NetDev;

#[path = "common/lines.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let twin = format!("{:?}", NetDev::parse(data));
    for chunk in common::CHUNKS {
        let mut p = NetDev::default();
        let streamed = common::stream(&mut p, data, chunk).map(|()| p);
        assert_eq!(
            format!("{streamed:?}"),
            twin,
            "read {chunk} bytes at a time"
        );
    }
});
