#![no_main]
//! `server_version` → `server_version_num`: only the first word counts, and a version written
//! from numbers reads back as PostgreSQL numbers it (10+: major·10000 + minor; before 10:
//! major·10000 + minor·100 + patch).
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::proto::postgres::session::parse_server_version;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let n = parse_server_version(&s);
    let head = s.split_whitespace().next().unwrap_or("");
    assert_eq!(n, parse_server_version(head));
    assert_eq!(n, parse_server_version(&format!("{head} (Debian 1-1)")));
    if data.len() >= 3 {
        let (major, minor, patch) = (
            u32::from(data[0]),
            u32::from(data[1]) * 40,
            u32::from(data[2] % 100),
        );
        let expected = if major >= 10 {
            major * 10_000 + minor.min(9_999)
        } else {
            major * 10_000 + minor.min(99) * 100 + patch
        };
        let text = if major >= 10 {
            format!("{major}.{minor}")
        } else {
            format!("{major}.{minor}.{patch}")
        };
        assert_eq!(parse_server_version(&text), expected, "{text}");
    }
});
