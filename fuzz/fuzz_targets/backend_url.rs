//! `[backend] url` (from the config file, or a pulled document). Any text: no panic; an
//! accepted URL parses back from its own text to the same value, has a host without spaces or
//! control characters, a non-zero port, and an authority `host:port`.
#![no_main]
use pganalytics_collector::config::BackendUrl;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = BackendUrl::parse(text) else {
        return;
    };
    assert_eq!(BackendUrl::parse(url.as_str()).as_ref(), Ok(&url));
    assert!(!url.host.is_empty());
    assert!(
        !url.host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    );
    assert_eq!(url.authority(), format!("{}:{}", url.host, url.port));
    assert!(!url.base.ends_with('/'));
    let _ = (url.host_header(), url.is_loopback());
});
