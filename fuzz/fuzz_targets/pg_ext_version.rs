#![no_main]
//! The extension version (`pg_extension.extversion`, e.g. pg_stat_statements' "1.10"): a
//! parsed version prints back to the same value, and the order is numeric, not textual.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::collect::pg::sql::{ExtVersion, PgssColumns};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Some(v) = ExtVersion::parse(&s) {
        let again = ExtVersion::parse(&format!("{}.{}", v.0, v.1));
        assert_eq!(again, Some(v));
        let _ = PgssColumns::for_version(v);
    }
    if data.len() >= 4 {
        let a = ExtVersion(u32::from(data[0]), u32::from(data[1]));
        let b = ExtVersion(u32::from(data[2]), u32::from(data[3]));
        let pa = ExtVersion::parse(&format!("{}.{}", a.0, a.1)).unwrap();
        let pb = ExtVersion::parse(&format!("{}.{}", b.0, b.1)).unwrap();
        assert_eq!(pa.cmp(&pb), (a.0, a.1).cmp(&(b.0, b.1)));
    }
});
