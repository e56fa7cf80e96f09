#![no_main]
//! The auto_explain plan parser: never panics, loses nothing and keeps its promises. A text
//! plan is the message's body as it is; a json plan is an object whose `Query Text` is the
//! statement; the header is the start of the message; a statement of a text plan is text of
//! the body; a plan said cut is never json.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::pg_log_format::plan::{self, Plan};

fuzz_target!(|data: &[u8]| {
    // First byte bit 0: the entry was cut; then the body after a real header, or (bit 1) the
    // whole message as given.
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let cut = flags & 1 == 1;
    let rest = String::from_utf8_lossy(rest);
    let message = if flags & 2 == 0 {
        format!("duration: 0.020 ms  plan:\n{rest}")
    } else {
        rest.into_owned()
    };
    let Some(x) = plan::parse(&message, cut) else {
        return;
    };
    assert_eq!(plan::header_len(&message), Some(x.header));
    assert!(message[..x.header].ends_with(" ms  plan:"));
    let body = &message[x.header + 1..];
    match &x.plan {
        Plan::Text(t) => {
            assert_eq!(t, body, "a text plan is the body, whole");
            if let Some(s) = &x.statement
                && body.starts_with("Query Text: ")
            {
                assert!(body.contains(s.as_str()));
            }
        }
        Plan::Json(v) => {
            assert!(!cut, "a cut plan is text");
            assert!(v.is_object());
            assert_eq!(
                x.statement.as_deref(),
                v.get("Query Text").and_then(|q| q.as_str())
            );
            let again: serde_json::Value =
                serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap();
            assert_eq!(&again, v);
        }
    }
});
