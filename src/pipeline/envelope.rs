//! The push envelope of docs/protocol.md, "Push envelope": the header fields, then the elements' JSON texts as
//! they were serialized at collection time, copied from the buffer without re-parsing.

use super::{ElementBuffer, ElementMeta};
use crate::util::WallTime;
use serde::Serialize;

/// The envelope fields other than `metrics` and `metrics_count`.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    pub collector_id: &'a str,
    pub hostname: &'a str,
    /// When the batch was built.
    pub timestamp: WallTime,
    /// 32 hex digits, kept by every resend of the same batch.
    pub batch_id: &'a str,
    pub version: &'a str,
}

/// Bytes an envelope adds around its elements, at most (header strings aside): used to keep a
/// batch within `max_batch_bytes`.
pub const FRAME_BYTES: usize = 192;

/// A new random `batch_id`.
pub fn new_batch_id() -> heapless::String<32> {
    let mut raw = [0u8; 16];
    if crate::util::random_bytes(&mut raw).is_err() {
        // No randomness: fall back to the clock, which is still unique per batch in practice.
        let now = crate::sys::time::wall_now();
        raw[..8].copy_from_slice(&now.secs.to_le_bytes());
        raw[8..12].copy_from_slice(&now.nanos.to_le_bytes());
        raw[12..].copy_from_slice(&(crate::sys::time::monotonic_ns() as u32).to_le_bytes());
    }
    crate::util::hex::<32>(&raw)
}

#[derive(Serialize)]
struct HeaderJson<'a> {
    collector_id: &'a str,
    hostname: &'a str,
    timestamp: crate::util::Rfc3339,
    batch_id: &'a str,
    version: &'a str,
}

/// Writes an envelope into `body` (cleared first) with elements taken from `buffer`, oldest
/// first, while the body stays within `max_bytes` (`None`: every element waiting). At least
/// one element is taken when any waits. The metas of the taken elements are appended to
/// `taken`, in order.
pub fn build(
    header: &Header<'_>,
    buffer: &mut ElementBuffer,
    max_bytes: Option<usize>,
    body: &mut Vec<u8>,
    taken: &mut Vec<ElementMeta>,
) {
    open(header, body);
    let mut count = 0usize;
    while let Some(next) = buffer.front_len() {
        if let Some(max) = max_bytes {
            let after = body.len() + next + 1 + FRAME_BYTES;
            if count > 0 && after > max {
                break;
            }
        }
        if count > 0 {
            body.push(b',');
        }
        match buffer.pop_into(body) {
            Some(meta) => taken.push(meta),
            None => break,
        }
        count += 1;
    }
    close(count, body);
}

/// Writes an envelope of everything waiting in `buffer` through `out`, in pieces: `body` is
/// handed to `out` and cleared each time it passes `piece` bytes, and at the end (with the
/// closing bytes). So the memory beside the buffer is one piece and one element, not the whole
/// envelope (`run --stdout` after a long round). Elements are taken from the buffer as they
/// are written (`taken`); a failing `out` ends the envelope there, cut.
pub fn stream(
    header: &Header<'_>,
    buffer: &mut ElementBuffer,
    body: &mut Vec<u8>,
    taken: &mut Vec<ElementMeta>,
    piece: usize,
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    open(header, body);
    let mut count = 0usize;
    while let Some(len) = buffer.front_len() {
        if count > 0 {
            body.push(b',');
        }
        count += 1;
        if len >= piece {
            // A large element goes out from the buffer itself: no copy, and `body` stays
            // one piece long instead of growing to the largest element of the round.
            out(body)?;
            body.clear();
            let mut written = Ok(());
            if let Some(meta) = buffer.pop_with(|json| {
                if written.is_ok() {
                    written = out(json);
                }
            }) {
                taken.push(meta);
            }
            written?;
            continue;
        }
        match buffer.pop_into(body) {
            Some(meta) => taken.push(meta),
            None => break,
        }
        if body.len() >= piece {
            out(body)?;
            body.clear();
        }
    }
    close(count, body);
    body.push(b'\n');
    out(body)?;
    body.clear();
    Ok(())
}

/// Writes an envelope into `body` (cleared first) around element JSON texts kept outside the
/// buffer (a batch being resent: same elements, same `batch_id`).
pub fn write<'e>(
    header: &Header<'_>,
    elements: impl Iterator<Item = &'e [u8]>,
    body: &mut Vec<u8>,
) {
    open(header, body);
    let mut count = 0usize;
    for json in elements {
        if count > 0 {
            body.push(b',');
        }
        body.extend_from_slice(json);
        count += 1;
    }
    close(count, body);
}

/// Clears `body` and writes the header fields and the opening of `"metrics":[`.
fn open(header: &Header<'_>, body: &mut Vec<u8>) {
    body.clear();
    let head = HeaderJson {
        collector_id: header.collector_id,
        hostname: header.hostname,
        timestamp: header.timestamp.rfc3339(),
        batch_id: header.batch_id,
        version: header.version,
    };
    // unwrap: serializing plain strings into a Vec cannot fail.
    serde_json::to_writer(&mut *body, &head).unwrap();
    body.pop(); // the closing '}'
    body.extend_from_slice(b",\"metrics\":[");
}

/// Closes the metrics array and the envelope.
fn close(count: usize, body: &mut Vec<u8>) {
    body.extend_from_slice(b"],\"metrics_count\":");
    body.extend_from_slice(count.to_string().as_bytes());
    body.push(b'}');
}

/// Bytes of the envelope header for these strings (everything but the elements and their
/// separators), at most: a batch of elements summing to `max - header_bytes` fits in `max`.
pub fn header_bytes(header: &Header<'_>) -> usize {
    let mut body = Vec::new();
    write(header, std::iter::empty(), &mut body);
    body.len() + 20
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::DropReason;

    fn header(id: &str) -> Header<'_> {
        Header {
            collector_id: "c-1",
            hostname: "db\"1",
            timestamp: WallTime {
                secs: 1_772_366_400,
                nanos: 0,
            },
            batch_id: id,
            version: "0.1.0",
        }
    }

    fn filled(n: u64) -> ElementBuffer {
        let mut b = ElementBuffer::new(1 << 16);
        for tag in 0..n {
            let json =
                format!("{{\"type\":\"t\",\"timestamp\":\"2026-03-01T12:00:00Z\",\"n\":{tag}}}");
            b.push(
                ElementMeta { source: 0, tag },
                json.as_bytes(),
                &mut |_, _: DropReason| panic!(),
            )
            .unwrap();
        }
        b
    }

    #[test]
    fn envelope_is_valid_json_with_every_field() {
        let id = new_batch_id();
        assert_eq!(id.len(), 32);
        let mut b = filled(3);
        let (mut body, mut taken) = (Vec::new(), Vec::new());
        build(&header(&id), &mut b, None, &mut body, &mut taken);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["collector_id"], "c-1");
        assert_eq!(v["hostname"], "db\"1");
        assert_eq!(v["timestamp"], "2026-03-01T12:00:00Z");
        assert_eq!(v["batch_id"], id.as_str());
        assert_eq!(v["version"], "0.1.0");
        assert_eq!(v["metrics_count"], 3);
        assert_eq!(v["metrics"][2]["n"], 2);
        assert_eq!(taken.iter().map(|m| m.tag).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(b.is_empty());
    }

    #[test]
    fn a_streamed_envelope_is_the_built_one_in_pieces() {
        for (n, piece) in [(0, 1), (1, 1), (7, 1), (40, 100), (40, 1 << 20)] {
            let (mut whole, mut taken) = (Vec::new(), Vec::new());
            build(&header("x"), &mut filled(n), None, &mut whole, &mut taken);
            whole.push(b'\n');
            let mut b = filled(n);
            let (mut body, mut streamed_taken, mut out) = (Vec::new(), Vec::new(), Vec::new());
            let mut pieces = 0;
            stream(
                &header("x"),
                &mut b,
                &mut body,
                &mut streamed_taken,
                piece,
                &mut |p| {
                    assert!(p.len() < piece + 200, "a piece of {} bytes", p.len());
                    pieces += 1;
                    out.extend_from_slice(p);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(out, whole, "{n} elements, pieces of {piece}");
            assert_eq!(streamed_taken, taken);
            assert!(b.is_empty() && body.is_empty());
            assert!(pieces >= 1);
        }
        // A failing writer ends it: what was taken is what was handed over.
        let mut b = filled(10);
        let (mut body, mut taken) = (Vec::new(), Vec::new());
        let mut calls = 0;
        let e = stream(&header("x"), &mut b, &mut body, &mut taken, 1, &mut |_| {
            calls += 1;
            if calls == 3 {
                Err(std::io::Error::other("gone"))
            } else {
                Ok(())
            }
        });
        assert!(e.is_err());
        // Pieces of one byte: every element goes out from the buffer on its own, so the
        // third call is the comma after the first element.
        assert_eq!(taken.len(), 1);
        assert_eq!(b.len(), 9);
    }

    /// Elements of every size around the piece, in a buffer whose records wrap around its end:
    /// the large ones go out from the buffer (in two slices when they wrap), the small ones
    /// through `body`, and the line is the one `build` makes.
    #[test]
    fn large_elements_go_out_from_the_buffer_even_when_they_wrap() {
        let sizes = [10usize, 900, 3000, 5, 2047, 2048, 4000, 1, 2500, 70];
        let element = |tag: usize, size: usize| {
            format!(
                "{{\"type\":\"t\",\"n\":{tag},\"s\":\"{}\"}}",
                "x".repeat(size)
            )
        };
        let fill = |b: &mut ElementBuffer| {
            // A first record taken out after the first element: the others start mid-buffer
            // and wrap around its end.
            b.push(
                ElementMeta { source: 0, tag: 99 },
                &[b'{'; 6000],
                &mut |_, _| panic!(),
            )
            .unwrap();
            for (tag, &size) in sizes.iter().enumerate() {
                let json = element(tag, size);
                b.push(
                    ElementMeta {
                        source: 0,
                        tag: tag as u64,
                    },
                    json.as_bytes(),
                    &mut |_, _| panic!(),
                )
                .unwrap();
                if tag == 0 {
                    b.pop_into(&mut Vec::new());
                }
            }
            let mut wraps = false;
            b.for_each(|_, _, second| wraps |= !second.is_empty());
            assert!(wraps);
        };
        let (mut whole, mut taken) = (Vec::new(), Vec::new());
        let mut b = ElementBuffer::new(16 << 10);
        fill(&mut b);
        build(&header("x"), &mut b, None, &mut whole, &mut taken);
        whole.push(b'\n');
        let mut b = ElementBuffer::new(16 << 10);
        fill(&mut b);
        let (mut body, mut streamed, mut out) = (Vec::new(), Vec::new(), Vec::new());
        stream(
            &header("x"),
            &mut b,
            &mut body,
            &mut streamed,
            2048,
            &mut |p| {
                out.extend_from_slice(p);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(whole).unwrap()
        );
        assert_eq!(streamed, taken);
        assert!(
            body.capacity() < 2 * 2048 + 1024,
            "body grew to {}",
            body.capacity()
        );
    }

    #[test]
    fn empty_buffer_gives_an_empty_metrics_array() {
        let mut b = ElementBuffer::new(64);
        let (mut body, mut taken) = (Vec::new(), Vec::new());
        build(&header("x"), &mut b, Some(4096), &mut body, &mut taken);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["metrics"], serde_json::json!([]));
        assert_eq!(v["metrics_count"], 0);
    }

    #[test]
    fn batches_respect_max_bytes_and_keep_the_rest_in_order() {
        let mut b = filled(100);
        let mut seen = Vec::new();
        let mut rounds = 0;
        while !b.is_empty() {
            let (mut body, mut taken) = (Vec::new(), Vec::new());
            build(&header("x"), &mut b, Some(1024), &mut body, &mut taken);
            assert!(body.len() <= 1024, "{} bytes", body.len());
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["metrics_count"], taken.len());
            seen.extend(taken.iter().map(|m| m.tag));
            rounds += 1;
        }
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        assert!(rounds > 5);
    }
}
