//! A pulled configuration document (from the backend). Any bytes: no panic; every key kept is
//! on the allowlist; the persisted form reads back to the same keys and version with nothing
//! clamped again; laid over a valid config file, it gives TOML that holds every kept value.
#![no_main]
use pganalytics_collector::config::pull::{
    allowed, overlay, parse_document, read_remote_file, remote_file,
};

const BASE: &str =
    "[collector]\nhostname = \"h\"\n\n[backend]\nurl = \"https://backend.example\"\n";

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(pulled) = parse_document(data) else {
        return;
    };
    for (section, key, _) in &pulled.keys {
        assert!(
            allowed(section, key),
            "{section}.{key} is not a key a backend may set"
        );
    }
    let version = data.first().map(|&b| i64::from(b) - 100);
    let (v, again) =
        read_remote_file(&remote_file(version, &pulled)).expect("persisted form reads");
    assert_eq!(v, version);
    assert_eq!(again.keys, pulled.keys);
    assert!(
        again.clamped.is_empty(),
        "clamped twice: {:?}",
        again.clamped
    );
    let merged = overlay(BASE, &pulled).expect("overlay on a valid file");
    let doc: toml_edit::DocumentMut = merged.parse().expect("the overlay is TOML");
    for (section, key, text) in &pulled.keys {
        let v = doc[section.as_str()][key.as_str()]
            .as_value()
            .expect("the key is set");
        let mut v = v.clone();
        v.decor_mut().clear();
        assert_eq!(&v.to_string(), text);
    }
});
