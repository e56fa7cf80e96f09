#![no_main]
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::pg_log_format::prefix::Prefix;

fuzz_target!(|data: &[u8]| {
    // "<prefix>\n<line>": compile the prefix, match the line; captures stay inside it.
    let (pre, line) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    if let Ok(p) = Prefix::compile(&String::from_utf8_lossy(pre))
        && let Some(m) = p.match_line(line)
    {
        assert!(m.text <= line.len());
        for (a, b) in [m.caps.pid, m.caps.user, m.caps.database, m.caps.client]
            .into_iter()
            .flatten()
        {
            assert!(a <= b && b <= line.len());
        }
    }
});
