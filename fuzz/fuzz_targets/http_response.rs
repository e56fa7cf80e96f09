#![no_main]
//! Arbitrary bytes fed to the response parser in arbitrary splits (the first byte seeds the
//! split sizes; odd = a HEAD request). A response must come out the same however it is split,
//! and `feed` never consumes past what it was given.
use libfuzzer_sys::fuzz_target;
use pganalytics_collector::proto::http::{HttpError, Response, ResponseParser};

fn run(seed: u8, input: &[u8], split: bool) -> (Result<(), HttpError>, Option<Response>, usize) {
    let mut p = if seed & 1 == 1 {
        ResponseParser::for_head_request()
    } else {
        ResponseParser::new()
    };
    let mut pos = 0;
    let mut step = usize::from(seed >> 1) + 1;
    loop {
        let end = if split {
            (pos + step).min(input.len())
        } else {
            input.len()
        };
        step = step * 7 % 61 + 1;
        match p.feed(&input[pos..end]) {
            Ok((n, done)) => {
                assert!(n <= end - pos);
                pos += n;
                if done {
                    break;
                }
                if end == input.len() {
                    if let Err(e) = p.finish_on_eof() {
                        return (Err(e), None, pos);
                    }
                    break;
                }
            }
            Err(e) => return (Err(e), None, pos),
        }
    }
    let _ = p.must_close();
    if let Some(r) = p.response() {
        let _ = (r.header("content-type"), r.retry_after_secs());
    }
    (Ok(()), p.response().cloned(), pos)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let whole = run(seed, input, false);
    let split = run(seed, input, true);
    assert_eq!(whole.0, split.0);
    assert_eq!(whole.1, split.1);
    if whole.0.is_ok() {
        assert_eq!(whole.2, split.2);
    }
});
