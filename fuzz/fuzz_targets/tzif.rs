#![no_main]
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::tz::Zone;

fuzz_target!(|data: &[u8]| {
    // A TZif file, or (anything else) a POSIX TZ string.
    let zone = match data.starts_with(b"TZif") {
        true => Zone::from_tzif(data),
        false => Zone::from_posix_tz(&String::from_utf8_lossy(data)),
    };
    if let Ok(z) = zone {
        for t in [
            i64::MIN,
            -1 << 40,
            0,
            1_795_826_864,
            4_102_444_800,
            1 << 40,
            i64::MAX,
        ] {
            for abbr in ["", "CET", "CEST", "EST", "+03", "-0530", "UTC"] {
                let _ = z.to_utc(t, abbr);
            }
            let _ = z.type_at(t);
        }
    }
});
