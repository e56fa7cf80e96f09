//! The /proc targets' driver: the input goes through the collector's own [`LineReader`] (its
//! fixed `LINE_BUF` buffer, reads of several sizes), as a /proc file is read, and the result
//! must equal what `feed_all` (the slice driver the unit tests use) gives.
use pganalytics_collector::sys::file::{FileError, Line, LineReader};
use pganalytics_collector::sys::procfs::LineParser;

/// Read sizes: short reads that split lines anywhere, a page, the whole input at once.
pub const CHUNKS: [usize; 3] = [61, 4096, usize::MAX];

/// Feeds `input` to `parser` through [`LineReader::stream`], at most `chunk` bytes per read.
pub fn stream<P: LineParser>(parser: &mut P, input: &[u8], chunk: usize) -> Result<(), P::Error> {
    let mut reader = LineReader::new();
    let mut at = 0;
    let r = reader.stream(
        |buf: &mut [u8]| {
            let n = buf.len().min(chunk).min(input.len() - at);
            buf[..n].copy_from_slice(&input[at..at + n]);
            at += n;
            Ok(n)
        },
        |line| match line {
            Line::Full(l) => parser.line(l),
            Line::Long(prefix) => parser.long_line(prefix),
        },
    );
    match r {
        Ok(()) => Ok(()),
        Err(FileError::Parse(e)) => Err(e),
        Err(_) => unreachable!("reading from memory does not fail"),
    }
}
