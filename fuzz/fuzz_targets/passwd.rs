#![no_main]
//! The /etc/passwd lookup (`requirepeer`, the default user, the home directory): every entry
//! it yields is found again by name and by uid, with fields that hold no separator.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::sys::passwd::{by_uid, describe_uid, entries, uid_of};

fuzz_target!(|data: &[u8]| {
    for e in entries(data) {
        assert!(!e.name.is_empty());
        assert!(!e.name.contains(':') && !e.name.contains('\n'));
        assert!(!e.home.contains(':') && !e.home.contains('\n'));
        // The first entry of that name or uid wins; it exists.
        let first = entries(data).find(|f| f.name == e.name).unwrap();
        assert_eq!(uid_of(data, e.name), Some(first.uid));
        assert!(by_uid(data, e.uid).is_some());
        assert!(describe_uid(data, e.uid).ends_with(&format!("(uid {})", e.uid)));
    }
    let _ = describe_uid(data, 0);
});
