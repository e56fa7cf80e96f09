#![no_main]
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::sys::procfs::mountinfo::{MOUNT_PATH_CAP, parse_line, unescape};

// Each line parsed; the escaped fields unescaped into a MOUNT_PATH_CAP buffer, and unescaping
// never grows its input.
fuzz_target!(|data: &[u8]| {
    let mut buf = [0u8; MOUNT_PATH_CAP];
    for line in data.split(|&b| b == b'\n') {
        if let Ok(m) = parse_line(line) {
            let _ = m.read_only();
            for raw in [m.root, m.mount_point, m.source] {
                if let Ok(out) = unescape(raw, &mut buf) {
                    assert!(out.len() <= raw.len());
                }
            }
        }
    }
});
