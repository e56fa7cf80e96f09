//! Config file: any text parses to a config or diagnostics without panicking, and a valid
//! config renders to text that parses again (render → parse_str is Ok).
#![no_main]
use pganalytics_collector::config::{parse_str, render};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(loaded) = parse_str("fuzz.toml", text, &|_| None) {
        let rendered = render(&loaded.config, &[]);
        if let Err(e) = parse_str("rendered.toml", &rendered, &|_| None) {
            panic!("rendered config does not parse: {e:?}\n{rendered}");
        }
    }
});
