#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pganalytics_collector::sys::procfs::net_dev::NetDev::parse(data);
});
