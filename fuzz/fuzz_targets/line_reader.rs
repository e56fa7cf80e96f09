//! The production line reader (`sys::file::LineReader::stream`, what every /proc file and
//! `read_lines` go through), checked against the definition rather than a parser: the input
//! (where a byte ≥ 0xF8 stands for a run of up to 8 KiB of 'x', so that lines longer than the
//! buffer are reached) split at '\n', a last line without '\n' included, each line shorter than
//! `LINE_BUF` handed out whole and each longer one as its first `LINE_BUF` bytes, whatever the
//! read sizes (taken from the input too).
#![no_main]
use pganalytics_collector::sys::file::{Line, LineReader};
use pganalytics_collector::sys::procfs::LINE_BUF;

#[derive(Debug, PartialEq)]
enum Got {
    Full(Vec<u8>),
    Long(Vec<u8>),
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&sizes, data)) = data.split_first() else {
        return;
    };
    // At most four buffers' worth: enough for every case (lines longer than the buffer, and
    // lines ending across reads) while keeping each run fast.
    let mut input = Vec::new();
    for &b in data {
        if b >= 0xF8 {
            input.resize(input.len() + usize::from(b - 0xF7) * 1024 - 1, b'x');
        } else {
            input.push(b);
        }
        if input.len() > 4 * LINE_BUF {
            input.truncate(4 * LINE_BUF);
            break;
        }
    }
    let mut want = Vec::new();
    let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    if parts.last().is_some_and(|l| l.is_empty()) {
        parts.pop();
    }
    for p in parts {
        if p.len() >= LINE_BUF {
            want.push(Got::Long(p[..LINE_BUF].to_vec()));
        } else {
            want.push(Got::Full(p.to_vec()));
        }
    }
    let chunks = [1 + usize::from(sizes), 61, 4096, usize::MAX];
    // Small reads over a long input are slow (each read scans the unfinished line again).
    let least = match input.len() {
        0..=512 => 1,
        513..=LINE_BUF => 61,
        _ => 1024,
    };
    let chunks = chunks.map(|c| c.max(least));
    let mut reader = LineReader::new();
    for chunk in chunks {
        let mut got = Vec::new();
        let mut at = 0;
        let r = reader.stream(
            |buf: &mut [u8]| {
                let n = buf.len().min(chunk).min(input.len() - at);
                buf[..n].copy_from_slice(&input[at..at + n]);
                at += n;
                Ok(n)
            },
            |line| {
                got.push(match line {
                    Line::Full(l) => Got::Full(l.to_vec()),
                    Line::Long(l) => Got::Long(l.to_vec()),
                });
                Ok::<(), ()>(())
            },
        );
        assert!(r.is_ok());
        assert_eq!(got, want, "read {chunk} bytes at a time");
    }
});
