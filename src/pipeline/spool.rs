//! The spool's record format (docs/protocol.md, "Spool"): pure, writer and reader.
//!
//! ```text
//!  magic u32 | len u32 | crc32c(len ‖ batch_id ‖ json) u32 | batch_id [16] | json [len]
//! ```
//!
//! Integers are little-endian. `batch_id` is the batch's 32 hex digits as 16 bytes, all zero
//! when the element was never part of a batch. The reader ([`scan`]) walks a segment's bytes:
//! a record that does not check (wrong magic, CRC, a length past the end or over
//! [`MAX_JSON`]) is skipped by scanning forward for the next magic whose record checks, and
//! reported once as [`Item::Corrupt`]; bytes at the end that hold no whole record are
//! [`Item::Torn`] (a write cut by a crash or a power loss).
//!
//! Not here: files, segments, the cursor (`push::spool`).

/// The first four bytes of every record ("PGAS").
pub const MAGIC: [u8; 4] = *b"PGAS";
/// Bytes before the JSON.
pub const HEADER: usize = 28;
/// The largest JSON a record may hold: the largest element a config may allow
/// (`max_batch_bytes` ≤ 64 MiB, elements ≤ a quarter of it).
pub const MAX_JSON: usize = 16 * 1024 * 1024;

/// A batch id as stored: zero when the element was never sent.
pub type BatchId = [u8; 16];
pub const NO_BATCH: BatchId = [0; 16];

/// The CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32C of the concatenation of `parts`.
pub fn crc32c(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for &b in *part {
            crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
        }
    }
    !crc
}

/// A batch id (32 hex digits) as 16 bytes; `None` when it is not one.
pub fn batch_id_bytes(hex: &str) -> Option<BatchId> {
    let h = hex.as_bytes();
    if h.len() != 32 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(h[2 * i])? << 4 | digit(h[2 * i + 1])?;
    }
    Some(out)
}

/// 16 bytes as the 32 lower-case hex digits of a batch id.
pub fn batch_id_hex(id: &BatchId) -> heapless::String<32> {
    let mut s = heapless::String::new();
    for b in id {
        for d in [b >> 4, b & 15] {
            // unwrap: 32 characters fit, and d < 16.
            s.push(char::from_digit(u32::from(d), 16).unwrap()).unwrap();
        }
    }
    s
}

/// Appends one record holding the concatenation of `json` (one or two slices, as the element
/// buffer hands them out). `None` (nothing appended) when the JSON is over [`MAX_JSON`].
pub fn encode(out: &mut Vec<u8>, batch_id: &BatchId, json: &[&[u8]]) -> Option<usize> {
    let len: usize = json.iter().map(|p| p.len()).sum();
    if len > MAX_JSON {
        return None;
    }
    let len_bytes = (len as u32).to_le_bytes();
    let mut parts: [&[u8]; 4] = [&len_bytes, batch_id, &[], &[]];
    for (i, p) in json.iter().take(2).enumerate() {
        parts[2 + i] = p;
    }
    let crc = crc32c(&parts);
    let before = out.len();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(batch_id);
    for p in json {
        out.extend_from_slice(p);
    }
    Some(out.len() - before)
}

/// One record that checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub batch_id: BatchId,
    pub json: &'a [u8],
}

/// The record at the start of `buf`, with its size, when it checks.
pub fn decode(buf: &[u8]) -> Option<(Record<'_>, usize)> {
    if buf.len() < HEADER || buf[..4] != MAGIC {
        return None;
    }
    let word = |at: usize| u32::from_le_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
    let len = word(4) as usize;
    if len > MAX_JSON || buf.len() - HEADER < len {
        return None;
    }
    let crc = word(8);
    let mut batch_id = NO_BATCH;
    batch_id.copy_from_slice(&buf[12..28]);
    let json = &buf[HEADER..HEADER + len];
    (crc32c(&[&buf[4..8], &batch_id, json]) == crc)
        .then_some((Record { batch_id, json }, HEADER + len))
}

/// What [`scan`] finds, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    /// A record that checks, starting at `at`, `size` bytes long.
    Record {
        at: usize,
        size: usize,
        record: Record<'a>,
    },
    /// Bytes `at..at + size` hold no record that checks, and a record that checks follows.
    Corrupt { at: usize, size: usize },
    /// Bytes `at..` to the end hold no record that checks: a cut write.
    Torn { at: usize },
}

/// The items of `buf`, from `from`.
pub fn scan(buf: &[u8], from: usize) -> Scan<'_> {
    Scan { buf, at: from }
}

pub struct Scan<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Scan<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        let at = self.at;
        if at >= self.buf.len() {
            return None;
        }
        if let Some((record, size)) = decode(&self.buf[at..]) {
            self.at = at + size;
            return Some(Item::Record { at, size, record });
        }
        // Resynchronize: the next magic whose record checks.
        let mut next = at + 1;
        while let Some(off) = find_magic(&self.buf[next..]) {
            let cand = next + off;
            if decode(&self.buf[cand..]).is_some() {
                self.at = cand;
                return Some(Item::Corrupt {
                    at,
                    size: cand - at,
                });
            }
            next = cand + 1;
        }
        self.at = self.buf.len();
        Some(Item::Torn { at })
    }
}

fn find_magic(buf: &[u8]) -> Option<usize> {
    buf.windows(MAGIC.len()).position(|w| w == MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_answers() {
        // RFC 3720 B.4 and the usual check value.
        assert_eq!(crc32c(&[b"123456789"]), 0xE306_9283);
        assert_eq!(crc32c(&[&[0u8; 32]]), 0x8A91_36AA);
        assert_eq!(crc32c(&[&[0xffu8; 32]]), 0x62A8_AB43);
        let inc: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&[&inc]), 0x46DD_794E);
        assert_eq!(crc32c(&[]), 0);
        // Split anywhere, same answer.
        assert_eq!(crc32c(&[b"1234", b"", b"56789"]), 0xE306_9283);
    }

    #[test]
    fn batch_ids_round_trip_through_hex() {
        let hex = "6f1c0d2a9b8e4f70a1c3d5e7f9021436";
        let b = batch_id_bytes(hex).unwrap();
        assert_eq!(batch_id_hex(&b).as_str(), hex);
        assert_eq!(batch_id_bytes("6F1C0D2A9B8E4F70A1C3D5E7F9021436"), Some(b));
        assert_eq!(batch_id_bytes("6f1c"), None);
        assert_eq!(batch_id_bytes("zz1c0d2a9b8e4f70a1c3d5e7f9021436"), None);
        assert_eq!(batch_id_bytes("é1c0d2a9b8e4f70a1c3d5e7f902143"), None);
    }

    fn three() -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, &NO_BATCH, &[b"{\"a\":1}"]).unwrap();
        encode(&mut out, &[7; 16], &[b"{\"b\":", b"2}"]).unwrap();
        encode(&mut out, &NO_BATCH, &[b"{}"]).unwrap();
        out
    }

    fn records(buf: &[u8]) -> Vec<(BatchId, Vec<u8>)> {
        scan(buf, 0)
            .filter_map(|i| match i {
                Item::Record { record, .. } => Some((record.batch_id, record.json.to_vec())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn written_records_read_back_in_order() {
        let buf = three();
        assert_eq!(
            records(&buf),
            vec![
                (NO_BATCH, b"{\"a\":1}".to_vec()),
                ([7; 16], b"{\"b\":2}".to_vec()),
                (NO_BATCH, b"{}".to_vec())
            ]
        );
        assert!(scan(&buf, 0).all(|i| matches!(i, Item::Record { .. })));
        assert_eq!(buf.len(), 3 * HEADER + 7 + 7 + 2);
    }

    #[test]
    fn every_prefix_is_whole_records_then_one_torn_tail() {
        let buf = three();
        let ends = [HEADER + 7, 2 * HEADER + 14, buf.len()];
        for cut in 0..=buf.len() {
            let items: Vec<Item<'_>> = scan(&buf[..cut], 0).collect();
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(
                items
                    .iter()
                    .filter(|i| matches!(i, Item::Record { .. }))
                    .count(),
                whole,
                "cut {cut}"
            );
            let last_end = if whole == 0 { 0 } else { ends[whole - 1] };
            if last_end < cut {
                assert_eq!(
                    items.last(),
                    Some(&Item::Torn { at: last_end }),
                    "cut {cut}"
                );
            } else {
                assert!(!items.iter().any(|i| matches!(i, Item::Torn { .. })));
            }
            assert!(!items.iter().any(|i| matches!(i, Item::Corrupt { .. })));
        }
    }

    #[test]
    fn a_flipped_byte_loses_only_its_record() {
        let buf = three();
        for pos in 0..HEADER + 7 {
            for bit in [0x01u8, 0x80] {
                let mut b = buf.clone();
                b[pos] ^= bit;
                let items: Vec<Item<'_>> = scan(&b, 0).collect();
                assert!(
                    matches!(items[0], Item::Corrupt { at: 0, .. }),
                    "pos {pos}: {items:?}"
                );
                assert_eq!(
                    records(&b),
                    records(&buf)[1..].to_vec(),
                    "pos {pos} bit {bit}"
                );
            }
        }
        // In the middle record: the first and the last survive.
        let mut b = buf.clone();
        b[HEADER + 7 + HEADER + 1] ^= 4;
        assert_eq!(
            records(&b),
            vec![records(&buf)[0].clone(), records(&buf)[2].clone()]
        );
    }

    #[test]
    fn a_length_past_the_end_or_too_large_does_not_check() {
        let mut b = three();
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&b).is_none());
        assert_eq!(records(&b).len(), 2);
        assert!(encode(&mut Vec::new(), &NO_BATCH, &[&vec![b' '; MAX_JSON + 1]]).is_none());
    }

    #[test]
    fn scanning_from_an_offset_starts_there() {
        let buf = three();
        assert_eq!(records(&buf[HEADER + 7..]).len(), 2);
        let from: Vec<_> = scan(&buf, HEADER + 7).collect();
        assert!(matches!(from[0], Item::Record { at, .. } if at == HEADER + 7));
        assert_eq!(scan(&buf, buf.len()).count(), 0);
    }
}
