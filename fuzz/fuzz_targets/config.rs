//! Config file: any text parses to a config or diagnostics without panicking, and a valid
//! config renders to text that parses back to the same config (render → parse = identity).
#![no_main]
use pganalytics_collector::config::{parse_str, render};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(loaded) = parse_str("fuzz.toml", text, &|_| None) {
        let rendered = render(&loaded.config, &[]);
        match parse_str("rendered.toml", &rendered, &|_| None) {
            Ok(again) => assert_eq!(
                again.config, loaded.config,
                "the rendered config parses to another config:\n{rendered}"
            ),
            Err(e) => panic!("rendered config does not parse: {e:?}\n{rendered}"),
        }
    }
});
