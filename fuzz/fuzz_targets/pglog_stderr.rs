#![no_main]
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::pglog::Format;

#[path = "common/pglog.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::drive(Format::Stderr, "%m [%p] %q%u@%d ", data));
