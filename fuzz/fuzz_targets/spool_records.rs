//! The spool's record reader over arbitrary bytes (a segment after a crash, a power loss or
//! tampering): it never panics, every record it returns checks (its CRC-32C recomputed here
//! matches), the items tile the input in order, and records written from the input's pieces
//! read back as written, also behind the garbage.
#![no_main]
use pganalytics_collector::pipeline::spool::{
    HEADER, Item, MAGIC, NO_BATCH, crc32c, decode, encode, scan,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Reader: items in order, covering the input without gaps; records that check.
    let mut at = 0;
    for item in scan(data, 0) {
        match item {
            Item::Record {
                at: a,
                size,
                record,
            } => {
                assert_eq!(a, at);
                assert_eq!(&data[a..a + 4], &MAGIC);
                let len = &data[a + 4..a + 8];
                let crc = u32::from_le_bytes(data[a + 8..a + 12].try_into().unwrap());
                assert_eq!(crc32c(&[len, &record.batch_id, record.json]), crc);
                assert_eq!(size, HEADER + record.json.len());
                assert_eq!(
                    decode(&data[a..]).map(|(r, s)| (r, s)),
                    Some((record, size))
                );
                at = a + size;
            }
            Item::Corrupt { at: a, size } => {
                assert_eq!(a, at);
                assert!(size > 0);
                at = a + size;
            }
            Item::Torn { at: a } => {
                assert_eq!(a, at);
                at = data.len();
            }
        }
    }
    assert_eq!(at, data.len());

    // Writer → reader: the input cut into pieces, each a record, after the input as garbage.
    let pieces: Vec<&[u8]> = data.chunks(17).collect();
    let mut seg = data.to_vec();
    let garbage = seg.len();
    for (i, p) in pieces.iter().enumerate() {
        let id = if i % 2 == 0 { NO_BATCH } else { [i as u8; 16] };
        encode(&mut seg, &id, &[p]).unwrap();
    }
    let mut got: Vec<&[u8]> = Vec::new();
    for item in scan(&seg, garbage) {
        if let Item::Record { record, .. } = item {
            got.push(record.json);
        }
    }
    assert_eq!(got, pieces);
});
