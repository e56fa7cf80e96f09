//! The backend's replies that the collector reads: registration (`register::parse_reply`), token
//! refresh (`auth::parse_refresh_reply`) and error bodies (`push::error_text`). Any bytes: no
//! panic; a registration has a non-empty id and token equal to the JSON's; a refreshed token
//! can go into an `Authorization` header (visible ASCII only: no header injection); an error
//! text is one line of at most `ERROR_TEXT_BYTES` (plus the `…` mark) without control
//! characters.
#![no_main]
use pganalytics_collector::push::auth::parse_refresh_reply;
use pganalytics_collector::push::register::parse_reply;
use pganalytics_collector::push::{ERROR_TEXT_BYTES, error_text};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some(r) = parse_reply(data) {
        assert!(!r.collector_id.is_empty() && !r.token.is_empty());
        let v: serde_json::Value = serde_json::from_slice(data).unwrap();
        assert_eq!(v["collector_id"].as_str(), Some(r.collector_id.as_str()));
        assert_eq!(v["token"].as_str(), Some(r.token.as_str()));
    }
    if let Ok(t) = parse_refresh_reply(data) {
        let bearer = t.bearer();
        assert!(bearer.starts_with("Bearer ") && bearer.len() > 7);
        assert!(
            t.as_str().bytes().all(|b| b.is_ascii_graphic()),
            "a token that cannot go into a header: {:?}",
            t.as_str()
        );
    }
    let text = error_text(data);
    assert!(
        text.len() <= ERROR_TEXT_BYTES + '…'.len_utf8(),
        "{} bytes",
        text.len()
    );
    assert!(!text.chars().any(char::is_control), "{text:?}");
});
