#![no_main]
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::sys::file::{Line, LineReader};
use pganalytics_collector::sys::procfs::mountinfo::{MOUNT_PATH_CAP, parse_line, unescape};

// The lines as the collector reads them (the production LineReader, short reads); each line
// parsed; the escaped fields unescaped into a MOUNT_PATH_CAP buffer, and unescaping never
// grows its input.
fuzz_target!(|data: &[u8]| {
    let mut buf = [0u8; MOUNT_PATH_CAP];
    let mut at = 0;
    let r = LineReader::new().stream(
        |out: &mut [u8]| {
            let n = out.len().min(61).min(data.len() - at);
            out[..n].copy_from_slice(&data[at..at + n]);
            at += n;
            Ok(n)
        },
        |line| {
            if let Line::Full(line) = line
                && let Ok(m) = parse_line(line)
            {
                let _ = m.read_only();
                for raw in [m.root, m.mount_point, m.source] {
                    if let Ok(out) = unescape(raw, &mut buf) {
                        assert!(out.len() <= raw.len());
                    }
                }
            }
            Ok::<(), ()>(())
        },
    );
    assert!(r.is_ok());
});
