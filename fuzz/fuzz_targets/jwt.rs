#![no_main]
//! Arbitrary text as a token and as base64url; decode → encode gives the text back.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::proto::jwt;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = jwt::decode_payload(text);
    let _ = jwt::expiry(text);
    let _ = jwt::verify_hs256(text, b"fuzz-key");
    if let Ok(bytes) = jwt::base64url_decode(text) {
        let mut again = String::new();
        jwt::base64url_encode(&bytes, &mut again);
        assert_eq!(again, text);
    }
    let token = jwt::sign_hs256(data, b"fuzz-key");
    assert_eq!(jwt::verify_hs256(&token, b"fuzz-key").as_deref(), Ok(data));
});
