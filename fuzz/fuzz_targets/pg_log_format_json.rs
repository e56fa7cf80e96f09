#![no_main]
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::pg_log_format::Format;

#[path = "common/pg_log_format.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::drive(Format::Jsonlog, "", data));
