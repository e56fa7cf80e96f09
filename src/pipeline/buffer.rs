//! The bounded element buffer: serialized metric elements in collection order, in one block of
//! memory allocated at start (docs/protocol.md, "Delivery model").
//!
//! The block is a byte ring of records, `[len: u32][source: u16][0u16][tag: u64][json; len]`.
//! A record may wrap around the end of the block. `capacity` bounds the record bytes, so the
//! sum of the JSON sizes is always below it (each record costs [`HEADER`] bytes more).
//!
//! Invariants:
//! - `start < capacity` (or both 0), `used <= capacity`; the records are the `used` bytes
//!   that begin at `start`, wrapping.
//! - `count` is the number of records in those bytes.
//! - When the buffer becomes empty, `start` returns to 0: a buffer that is drained every round
//!   (the usual case) keeps touching the same first pages, so its resident memory stays small
//!   even when `capacity` is large. The block comes from a zeroed allocation, which the system
//!   maps lazily.

use super::{DropReason, ElementMeta};

/// Bytes of a record header.
pub const HEADER: usize = 16;

pub struct ElementBuffer {
    data: Box<[u8]>,
    start: usize,
    used: usize,
    count: usize,
}

/// An element larger than the whole buffer: it is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl ElementBuffer {
    /// A buffer whose records take at most `capacity` bytes.
    pub fn new(capacity: usize) -> ElementBuffer {
        ElementBuffer {
            data: vec![0u8; capacity].into_boxed_slice(),
            start: 0,
            used: 0,
            count: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Elements waiting.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of JSON waiting (without record headers).
    pub fn json_bytes(&self) -> usize {
        self.used - self.count * HEADER
    }

    /// Appends an element; drops the oldest ones (reported through `dropped`) until it fits.
    /// An element that cannot fit even in an empty buffer is refused, the buffer unchanged.
    pub fn push(
        &mut self,
        meta: ElementMeta,
        json: &[u8],
        dropped: &mut dyn FnMut(ElementMeta, DropReason),
    ) -> Result<(), TooLarge> {
        let need = HEADER + json.len();
        if need > self.capacity() || u32::try_from(json.len()).is_err() {
            return Err(TooLarge);
        }
        while self.capacity() - self.used < need {
            // need <= capacity, so the loop ends at the latest when the buffer is empty.
            match self.pop_with(|_| {}) {
                Some(old) => dropped(old, DropReason::Overflow),
                None => break,
            }
        }
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&(json.len() as u32).to_le_bytes());
        header[4..6].copy_from_slice(&meta.source.to_le_bytes());
        header[8..16].copy_from_slice(&meta.tag.to_le_bytes());
        let at = self.wrap(self.start + self.used);
        self.write_at(at, &header);
        self.write_at(self.wrap(at + HEADER), json);
        self.used += need;
        self.count += 1;
        Ok(())
    }

    /// JSON size of the oldest element, if any.
    pub fn front_len(&self) -> Option<usize> {
        (self.count > 0).then(|| {
            let mut h = [0u8; 4];
            self.read_at(self.start, &mut h);
            u32::from_le_bytes(h) as usize
        })
    }

    /// Every element, oldest first, without removing it: `f` sees its JSON as one or two
    /// slices in order (the second empty unless the record wraps).
    pub fn for_each(&self, mut f: impl FnMut(ElementMeta, &[u8], &[u8])) {
        let mut pos = self.start;
        for _ in 0..self.count {
            let mut header = [0u8; HEADER];
            self.read_at(pos, &mut header);
            let json_len =
                u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let mut tag = [0u8; 8];
            tag.copy_from_slice(&header[8..16]);
            let meta = ElementMeta {
                source: u16::from_le_bytes([header[4], header[5]]),
                tag: u64::from_le_bytes(tag),
            };
            let at = self.wrap(pos + HEADER);
            let first = json_len.min(self.capacity() - at);
            f(
                meta,
                &self.data[at..at + first],
                &self.data[..json_len - first],
            );
            pos = self.wrap(pos + HEADER + json_len);
        }
    }

    /// Removes the oldest element, appending its JSON to `out`.
    pub fn pop_into(&mut self, out: &mut Vec<u8>) -> Option<ElementMeta> {
        self.pop_with(|json| out.extend_from_slice(json))
    }

    /// Removes the oldest element; `f` sees its JSON as one or two slices in order.
    pub fn pop_with(&mut self, mut f: impl FnMut(&[u8])) -> Option<ElementMeta> {
        if self.count == 0 {
            return None;
        }
        let mut header = [0u8; HEADER];
        self.read_at(self.start, &mut header);
        let json_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let meta = ElementMeta {
            source: u16::from_le_bytes([header[4], header[5]]),
            tag: u64::from_le_bytes([
                header[8], header[9], header[10], header[11], header[12], header[13], header[14],
                header[15],
            ]),
        };
        let at = self.wrap(self.start + HEADER);
        let first = json_len.min(self.capacity() - at);
        f(&self.data[at..at + first]);
        if first < json_len {
            f(&self.data[..json_len - first]);
        }
        self.count -= 1;
        self.used -= HEADER + json_len;
        self.start = if self.count == 0 {
            0
        } else {
            self.wrap(self.start + HEADER + json_len)
        };
        Some(meta)
    }

    /// Moves every element into a buffer of `capacity` bytes (a reload that changed
    /// `buffer_bytes`); when it is smaller, the oldest are dropped.
    pub fn resized(
        mut self,
        capacity: usize,
        dropped: &mut dyn FnMut(ElementMeta, DropReason),
    ) -> ElementBuffer {
        let mut next = ElementBuffer::new(capacity);
        let mut json = Vec::new();
        while let Some(meta) = self.pop_into(&mut json) {
            if next.push(meta, &json, dropped).is_err() {
                dropped(meta, DropReason::TooLarge);
            }
            json.clear();
        }
        next
    }

    fn wrap(&self, pos: usize) -> usize {
        if self.capacity() == 0 {
            0
        } else {
            pos % self.capacity()
        }
    }

    fn write_at(&mut self, at: usize, bytes: &[u8]) {
        let first = bytes.len().min(self.capacity() - at);
        self.data[at..at + first].copy_from_slice(&bytes[..first]);
        self.data[..bytes.len() - first].copy_from_slice(&bytes[first..]);
    }

    fn read_at(&self, at: usize, out: &mut [u8]) {
        let first = out.len().min(self.capacity() - at);
        out[..first].copy_from_slice(&self.data[at..at + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&self.data[..rest]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(tag: u64) -> ElementMeta {
        ElementMeta { source: 3, tag }
    }

    fn drain(b: &mut ElementBuffer) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let mut json = Vec::new();
        while let Some(m) = b.pop_into(&mut json) {
            out.push((m.tag, String::from_utf8(json.clone()).unwrap()));
            json.clear();
        }
        out
    }

    #[test]
    fn fifo_and_empty_resets_to_start() {
        let mut b = ElementBuffer::new(256);
        let mut no_drop = |_: ElementMeta, _: DropReason| panic!("nothing should drop");
        b.push(meta(1), b"{\"a\":1}", &mut no_drop).unwrap();
        b.push(meta(2), b"{\"b\":2}", &mut no_drop).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b.json_bytes(), 14);
        assert_eq!(b.front_len(), Some(7));
        assert_eq!(
            drain(&mut b),
            vec![(1, "{\"a\":1}".into()), (2, "{\"b\":2}".into())]
        );
        assert!(b.is_empty());
        assert_eq!(b.start, 0);
    }

    #[test]
    fn overflow_drops_oldest_first_and_reports_each() {
        let mut b = ElementBuffer::new(3 * (HEADER + 10));
        let mut dropped = Vec::new();
        for tag in 0..10u64 {
            let json = format!("{{\"n\":{tag:04}}}"); // 10 bytes
            b.push(meta(tag), json.as_bytes(), &mut |m, r| {
                dropped.push((m.tag, r))
            })
            .unwrap();
        }
        assert_eq!(b.len(), 3);
        let kept: Vec<u64> = drain(&mut b).into_iter().map(|(t, _)| t).collect();
        assert_eq!(kept, vec![7, 8, 9]);
        let d: Vec<u64> = dropped.iter().map(|(t, _)| *t).collect();
        assert_eq!(d, (0..7).collect::<Vec<_>>());
        assert!(dropped.iter().all(|(_, r)| *r == DropReason::Overflow));
    }

    #[test]
    fn records_that_wrap_around_the_end_come_back_whole() {
        // Capacity not a multiple of the record size, varied lengths: every record position.
        let mut b = ElementBuffer::new(101);
        let mut expected = std::collections::VecDeque::new();
        let mut next_out = 0u64;
        for tag in 0..500u64 {
            let body = "x".repeat((tag % 37) as usize);
            let json = format!("[{tag},\"{body}\"]");
            let mut dropped = Vec::new();
            b.push(meta(tag), json.as_bytes(), &mut |m, _| dropped.push(m.tag))
                .unwrap();
            expected.push_back((tag, json));
            for d in dropped {
                let (t, _) = expected.pop_front().unwrap();
                assert_eq!(t, d);
            }
            if tag % 3 == 0 {
                let mut out = Vec::new();
                if let Some(m) = b.pop_into(&mut out) {
                    let (t, j) = expected.pop_front().unwrap();
                    assert_eq!((m.tag, out), (t, j.into_bytes()));
                    next_out = t;
                }
            }
            assert_eq!(b.len(), expected.len());
            assert!(b.used <= b.capacity());
        }
        assert!(next_out > 0);
        let mut seen = Vec::new();
        b.for_each(|m, first, second| {
            seen.push((m.tag, String::from_utf8([first, second].concat()).unwrap()))
        });
        let rest: Vec<_> = drain(&mut b);
        assert_eq!(seen, rest, "for_each sees what draining takes");
        assert_eq!(rest, expected.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn too_large_is_refused_and_leaves_the_buffer_unchanged() {
        let mut b = ElementBuffer::new(64);
        b.push(meta(1), b"{}", &mut |_, _| panic!()).unwrap();
        let big = vec![b'x'; 64 - HEADER + 1];
        assert_eq!(b.push(meta(2), &big, &mut |_, _| panic!()), Err(TooLarge));
        assert_eq!(drain(&mut b), vec![(1, "{}".into())]);
        // Exactly the capacity fits.
        let exact = vec![b'y'; 64 - HEADER];
        b.push(meta(3), &exact, &mut |_, _| panic!()).unwrap();
        assert_eq!(b.len(), 1);
        let mut zero = ElementBuffer::new(0);
        assert_eq!(zero.push(meta(1), b"", &mut |_, _| panic!()), Err(TooLarge));
    }

    #[test]
    fn resize_keeps_order_and_drops_oldest_when_smaller() {
        let mut b = ElementBuffer::new(1000);
        for tag in 0..5u64 {
            b.push(meta(tag), b"0123456789", &mut |_, _| panic!())
                .unwrap();
        }
        let mut dropped = Vec::new();
        let mut b = b.resized(2 * (HEADER + 10), &mut |m, _| dropped.push(m.tag));
        assert_eq!(dropped, vec![0, 1, 2]);
        let tags: Vec<u64> = drain(&mut b).into_iter().map(|(t, _)| t).collect();
        assert_eq!(tags, vec![3, 4]);
    }
}
