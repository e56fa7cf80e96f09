#![no_main]
//! `pg_settings` unit conversion (pg_server): a value in bytes or seconds is never negative,
//! never overflows, and is the setting times the unit's size.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::collect::pg::server::{
    setting_bytes, setting_secs, unit_bytes, unit_secs,
};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let (setting, unit) = s.split_once('|').unwrap_or((&s, "kB"));
    if let Some(b) = setting_bytes(setting, Some(unit)) {
        assert!(b >= 0);
        let n: i64 = setting.parse().unwrap();
        assert_eq!(n.checked_mul(unit_bytes(unit).unwrap()), Some(b));
    }
    if let Some(per) = unit_bytes(unit) {
        assert!(per > 0);
    }
    if let Some(x) = setting_secs(setting, Some(unit)) {
        assert!(x >= 0.0, "{x}");
        assert!(unit_secs(unit).is_some());
    }
    assert_eq!(setting_bytes(setting, None), None);
    assert_eq!(setting_secs(setting, None), None);
});
