//! gzip framing (RFC 1952) around miniz_oxide's raw DEFLATE, composed by hand (docs/protocol.md, "Push envelope").
//!
//! Scope: [`compress`] writes one member with a fixed header (`1f 8b 08`, FLG 0, MTIME 0, XFL,
//! OS 3 = Unix) and the CRC-32 + ISIZE trailer; [`decompress`] reads one member from a complete
//! buffer, honouring FEXTRA/FNAME/FCOMMENT/FHCRC, with a cap on the output. Not here: streaming,
//! multi-member files (bytes after the first member are an error), zlib framing.
//!
//! ```text
//! member = ID1 ID2 CM FLG MTIME(4) XFL OS [XLEN(2) extra] [name\0] [comment\0] [CRC16(2)]
//!          deflate-data CRC32(4) ISIZE(4)        (all integers little-endian)
//! ```

use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress as deflate,
    create_comp_flags_from_zip_params,
};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress as inflate, inflate_flags};

/// The fixed part of a member header.
pub const HEADER_LEN: usize = 10;
/// CRC-32 + ISIZE.
pub const TRAILER_LEN: usize = 8;
/// ID1 ID2 CM (deflate).
pub const MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];
/// The OS byte we write: 3 = Unix.
pub const OS_UNIX: u8 = 3;
/// The default `[backend] compression_level`.
pub const DEFAULT_LEVEL: u8 = 3;

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;

/// The first output buffer of [`decompress`] is this many times the input (then doubled, never
/// past the cap).
const INITIAL_EXPANSION: usize = 4;

/// The CRC-32 table of the reflected IEEE polynomial 0xEDB88320, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
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

/// Continues a CRC-32 (IEEE) over `data`; start with 0.
pub fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// CRC-32 (IEEE), as gzip uses: `crc32(b"123456789") == 0xCBF43926`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32_update(0, data)
}

/// Why a gzip member was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GzipError {
    /// The input ended inside the header, the data or the trailer.
    Truncated,
    /// Not `1f 8b 08`.
    BadMagic,
    /// A reserved FLG bit is set.
    ReservedFlags,
    /// FHCRC does not match the header.
    BadHeaderCrc,
    /// The DEFLATE stream is invalid.
    BadDeflate,
    /// The CRC-32 of the output does not match the trailer.
    BadCrc,
    /// The output length (mod 2^32) does not match ISIZE.
    BadLength,
    /// The output would exceed the caller's cap.
    TooLarge,
    /// Bytes follow the member.
    TrailingData,
}

impl std::fmt::Display for GzipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GzipError::Truncated => "gzip data truncated",
            GzipError::BadMagic => "not gzip data",
            GzipError::ReservedFlags => "gzip header has reserved flags set",
            GzipError::BadHeaderCrc => "gzip header crc mismatch",
            GzipError::BadDeflate => "invalid deflate data",
            GzipError::BadCrc => "gzip crc mismatch",
            GzipError::BadLength => "gzip length mismatch",
            GzipError::TooLarge => "gzip output too large",
            GzipError::TrailingData => "data after the gzip member",
        })
    }
}

impl std::error::Error for GzipError {}

/// The XFL byte gzip writes: 2 = slowest/best, 4 = fastest, 0 otherwise.
fn xfl(level: u8) -> u8 {
    match level {
        1 => 4,
        9.. => 2,
        _ => 0,
    }
}

/// Appends a complete gzip member of `input` to `out`. `level` 1..=10 is miniz_oxide's level
/// (10 = its slowest "uber" mode); values outside are clamped into that range.
pub fn compress(input: &[u8], level: u8, out: &mut Vec<u8>) {
    let level = level.clamp(1, 10);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[0, 0, 0, 0, 0, xfl(level), OS_UNIX]);
    deflate_into(input, level, out);
    out.extend_from_slice(&crc32(input).to_le_bytes());
    // ISIZE is the length modulo 2^32 (RFC 1952 §2.3.1).
    out.extend_from_slice(&(input.len() as u32).to_le_bytes());
}

/// Raw DEFLATE of `input` appended to `out`.
fn deflate_into(input: &[u8], level: u8, out: &mut Vec<u8>) {
    let start = out.len();
    // window_bits 0 = raw deflate (no zlib wrapper); strategy 0 = default.
    let flags = create_comp_flags_from_zip_params(i32::from(level), 0, 0);
    let mut c = CompressorOxide::new(flags);
    let mut rest = input;
    let mut pos = start;
    out.resize(start + (input.len() / 2).max(64), 0);
    loop {
        let (status, consumed, written) =
            deflate(&mut c, rest, &mut out[pos..], TDEFLFlush::Finish);
        pos += written;
        match status {
            TDEFLStatus::Done => {
                out.truncate(pos);
                return;
            }
            TDEFLStatus::Okay if consumed <= rest.len() => {
                rest = &rest[consumed..];
                if out.len() - pos < 64 {
                    let grow = out.len() - start;
                    out.resize(out.len() + grow.max(64), 0);
                }
            }
            // Cannot happen with valid flags; rather than panic, fall back to stored blocks,
            // which every inflater accepts.
            _ => {
                out.truncate(start);
                stored_blocks(input, out);
                return;
            }
        }
    }
}

/// DEFLATE "stored" blocks (BTYPE 00) of `input`: always valid, no compression.
fn stored_blocks(input: &[u8], out: &mut Vec<u8>) {
    let mut chunks = input.chunks(usize::from(u16::MAX)).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = u8::from(chunks.peek().is_none());
        // unwrap: chunks are at most u16::MAX long.
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.push(last);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

/// Skips a zero-terminated field starting at `pos`; returns the position after the zero.
fn skip_zero_terminated(input: &[u8], pos: usize) -> Result<usize, GzipError> {
    let rest = input.get(pos..).ok_or(GzipError::Truncated)?;
    let n = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(GzipError::Truncated)?;
    Ok(pos + n + 1)
}

/// Length of the member header (fixed part and optional fields).
fn parse_header(input: &[u8]) -> Result<usize, GzipError> {
    let head = input.get(..HEADER_LEN).ok_or_else(|| {
        if input.iter().zip(MAGIC).all(|(a, b)| *a == b) {
            GzipError::Truncated
        } else {
            GzipError::BadMagic
        }
    })?;
    if head[..3] != MAGIC {
        return Err(GzipError::BadMagic);
    }
    let flg = head[3];
    if flg & FRESERVED != 0 {
        return Err(GzipError::ReservedFlags);
    }
    let mut pos = HEADER_LEN;
    if flg & FEXTRA != 0 {
        let xlen = input.get(pos..pos + 2).ok_or(GzipError::Truncated)?;
        pos += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
        if pos > input.len() {
            return Err(GzipError::Truncated);
        }
    }
    if flg & FNAME != 0 {
        pos = skip_zero_terminated(input, pos)?;
    }
    if flg & FCOMMENT != 0 {
        pos = skip_zero_terminated(input, pos)?;
    }
    if flg & FHCRC != 0 {
        let crc16 = input.get(pos..pos + 2).ok_or(GzipError::Truncated)?;
        let want = u16::from_le_bytes([crc16[0], crc16[1]]);
        if (crc32(&input[..pos]) & 0xffff) as u16 != want {
            return Err(GzipError::BadHeaderCrc);
        }
        pos += 2;
    }
    Ok(pos)
}

/// Decodes one gzip member that fills all of `input`, checking CRC-32 and ISIZE. The output is
/// never allowed to grow past `max_out` bytes: more is [`GzipError::TooLarge`].
pub fn decompress(input: &[u8], max_out: usize) -> Result<Vec<u8>, GzipError> {
    let data_start = parse_header(input)?;
    let data = &input[data_start..];

    let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let mut state = Box::<DecompressorOxide>::default();
    let first = data
        .len()
        .saturating_mul(INITIAL_EXPANSION)
        .max(64)
        .min(max_out);
    let mut out = vec![0u8; first];
    let mut in_pos = 0;
    let mut out_pos = 0;
    loop {
        let (status, consumed, written) =
            inflate(&mut state, &data[in_pos..], &mut out, out_pos, flags);
        in_pos += consumed;
        out_pos += written;
        match status {
            TINFLStatus::Done => break,
            TINFLStatus::HasMoreOutput => {
                if out.len() >= max_out {
                    return Err(GzipError::TooLarge);
                }
                let grown = out.len().saturating_mul(2).max(64).min(max_out);
                out.resize(grown, 0);
            }
            TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => {
                return Err(GzipError::Truncated);
            }
            _ => return Err(GzipError::BadDeflate),
        }
        if in_pos > data.len() {
            return Err(GzipError::BadDeflate);
        }
    }
    out.truncate(out_pos);

    let trailer = data
        .get(in_pos..in_pos + TRAILER_LEN)
        .ok_or(GzipError::Truncated)?;
    if data.len() > in_pos + TRAILER_LEN {
        return Err(GzipError::TrailingData);
    }
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let isize = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    if crc32(&out) != crc {
        return Err(GzipError::BadCrc);
    }
    if out.len() as u32 != isize {
        return Err(GzipError::BadLength);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// Deterministic pseudo-random bytes (xorshift64*).
    fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            v.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        v.truncate(n);
        v
    }

    /// About `target` bytes of a push envelope as the collector builds it: `sysstat`,
    /// `pg_stats` (tables and indexes) and `pg_activity`-like elements with varying numbers.
    pub(crate) fn metrics_json(target: usize) -> Vec<u8> {
        let mut s = String::from(
            r#"{"collector_id":"3f0c2a0e-8d7b-4c1e-9a55-0b6f1d2e7c11","hostname":"db-prod-01.example.com","timestamp":"2026-03-01T12:00:00Z","batch_id":"6f1c0d2a9b8e4f70a1c3d5e7f9021436","version":"0.1.0","metrics_count":0,"metrics":["#,
        );
        let mut rnd = random_bytes(target, 7).into_iter().cycle();
        let mut r = move || u64::from(rnd.next().unwrap_or(0));
        let mut i = 0u64;
        while s.len() < target {
            let ts = format!("2026-03-01T12:{:02}:{:02}Z", (i / 60) % 60, i % 60);
            if i > 0 {
                s.push(',');
            }
            match i % 3 {
                0 => s.push_str(&format!(
                    r#"{{"type":"sysstat","timestamp":"{ts}","cpu":{{"user":{},"system":{},"idle":{},"iowait":{},"steal":0}},"load":{{"1m":{}.{:02},"5m":{}.{:02},"15m":{}.{:02}}},"memory":{{"total_kb":32871424,"free_kb":{},"available_kb":{},"buffers_kb":{},"cached_kb":{}}},"disks":[{{"device":"nvme0n1","reads":{},"writes":{},"read_kb":{},"write_kb":{},"io_ms":{}}},{{"device":"nvme1n1","reads":{},"writes":{},"read_kb":{},"write_kb":{},"io_ms":{}}}],"net":[{{"interface":"eth0","rx_bytes":{},"tx_bytes":{},"rx_packets":{},"tx_packets":{}}}]}}"#,
                    r() * 131,
                    r() * 71,
                    r() * 9_001,
                    r(),
                    r() % 8,
                    r() % 100,
                    r() % 8,
                    r() % 100,
                    r() % 8,
                    r() % 100,
                    r() * 40_000,
                    r() * 80_000,
                    r() * 1_000,
                    r() * 70_000,
                    r() * 1_000_003,
                    r() * 2_000_003,
                    r() * 9_000_011,
                    r() * 17_000_017,
                    r() * 3_001,
                    r() * 1_000_003,
                    r() * 2_000_003,
                    r() * 9_000_011,
                    r() * 17_000_017,
                    r() * 3_001,
                    r() * 91_000_013,
                    r() * 45_000_007,
                    r() * 700_001,
                    r() * 300_007,
                )),
                1 => {
                    s.push_str(&format!(
                        r#"{{"type":"pg_stats","timestamp":"{ts}","database":"app","tables":["#
                    ));
                    for t in 0..8 {
                        if t > 0 {
                            s.push(',');
                        }
                        s.push_str(&format!(
                            r#"{{"schemaname":"public","relname":"orders_{t}","seq_scan":{},"seq_tup_read":{},"idx_scan":{},"idx_tup_fetch":{},"n_tup_ins":{},"n_tup_upd":{},"n_tup_del":{},"n_live_tup":{},"n_dead_tup":{},"last_autovacuum":"2026-03-01T11:{:02}:{:02}Z","size_bytes":{}}}"#,
                            r() * 13,
                            r() * 100_003,
                            r() * 1_000_003,
                            r() * 2_000_003,
                            r() * 501,
                            r() * 37,
                            r() * 3,
                            r() * 1_000_003,
                            r() * 301,
                            r() % 60,
                            r() % 60,
                            r() * 8_192 * 1_000,
                        ));
                    }
                    s.push_str("]}");
                }
                _ => s.push_str(&format!(
                    r#"{{"type":"pg_activity","timestamp":"{ts}","database":"app","connections":{{"active":{},"idle":{},"idle_in_transaction":{},"waiting":{}}},"longest_transaction_secs":{}.{:03},"xact_commit":{},"xact_rollback":{},"blks_read":{},"blks_hit":{},"deadlocks":0,"temp_bytes":{}}}"#,
                    r() % 40,
                    r() % 200,
                    r() % 5,
                    r() % 3,
                    r() % 100,
                    r() * 3,
                    r() * 10_000_019,
                    r() * 1_001,
                    r() * 1_000_003,
                    r() * 90_000_049,
                    r() * 65_536,
                )),
            }
            i += 1;
        }
        s.push_str("]}");
        s.into_bytes()
    }

    fn inputs() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("empty", Vec::new()),
            ("one byte", vec![b'x']),
            ("1 MB random", random_bytes(1_000_000, 1)),
            ("200 KB json", metrics_json(200_000)),
            ("zeros", vec![0; 300_000]),
        ]
    }

    /// Pipes `input` through a command and returns (success, stdout).
    fn pipe(cmd: &str, args: &[&str], input: &[u8]) -> Option<(bool, Vec<u8>)> {
        let mut child = Command::new(cmd)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut stdin = child.stdin.take()?;
        let data = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().ok()?;
        let _ = writer.join();
        Some((out.status.success(), out.stdout))
    }

    #[test]
    fn crc32_vectors() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"a"), 0xE8B7_BE43);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
        assert_eq!(crc32_update(crc32(b"12345"), b"6789"), 0xCBF4_3926);
    }

    #[test]
    fn header_bytes_exact() {
        for level in 1..=10u8 {
            let mut out = vec![0xAA];
            compress(b"hello", level, &mut out);
            assert_eq!(out[0], 0xAA, "appends");
            let xfl = match level {
                1 => 4,
                9 | 10 => 2,
                _ => 0,
            };
            assert_eq!(&out[1..11], &[0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, xfl, 3]);
            let n = out.len();
            assert_eq!(&out[n - 8..n - 4], &crc32(b"hello").to_le_bytes());
            assert_eq!(&out[n - 4..], &5u32.to_le_bytes());
        }
    }

    #[test]
    fn round_trips_all_levels() {
        for (name, input) in inputs() {
            for level in 1..=10u8 {
                let mut gz = Vec::new();
                compress(&input, level, &mut gz);
                let back = decompress(&gz, input.len()).unwrap();
                assert!(back == input, "{name} level {level}");
            }
        }
    }

    #[test]
    fn out_of_range_levels_clamp() {
        for level in [0u8, 11, 255] {
            let mut gz = Vec::new();
            compress(b"abcabcabc", level, &mut gz);
            assert_eq!(decompress(&gz, 100).unwrap(), b"abcabcabc");
        }
    }

    #[test]
    fn stored_fallback_is_valid_deflate() {
        for n in [0usize, 1, 65_535, 65_536, 200_000] {
            let input = random_bytes(n, 3);
            let mut raw = Vec::new();
            stored_blocks(&input, &mut raw);
            assert_eq!(
                miniz_oxide::inflate::decompress_to_vec(&raw).unwrap(),
                input
            );
        }
    }

    #[test]
    fn accepted_by_gzip_and_python() {
        let python =
            "import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))";
        for (name, input) in inputs() {
            for level in [1u8, 3, 6, 9, 10] {
                let mut gz = Vec::new();
                compress(&input, level, &mut gz);
                let (ok, _) = pipe("gzip", &["-t"], &gz).expect("gzip runs");
                assert!(ok, "gzip -t {name} level {level}");
                let (ok, out) = pipe("gzip", &["-dc"], &gz).expect("gzip runs");
                assert!(ok && out == input, "gzip -dc {name} level {level}");
                let (ok, out) = pipe("python3", &["-c", python], &gz).expect("python3 runs");
                assert!(ok && out == input, "python {name} level {level}");
            }
        }
    }

    #[test]
    fn reads_gzip_and_python_output() {
        let input = metrics_json(50_000);
        let (ok, gz) = pipe("gzip", &["-9c", "-n"], &input).expect("gzip runs");
        assert!(ok);
        assert_eq!(decompress(&gz, input.len()).unwrap(), input);
        // Python writes FNAME when given a filename, plus MTIME; FHCRC built by hand below.
        let py = "import gzip,sys,io; b=io.BytesIO(); f=gzip.GzipFile(filename='m.json',mode='wb',fileobj=b,mtime=1); f.write(sys.stdin.buffer.read()); f.close(); sys.stdout.buffer.write(b.getvalue())";
        let (ok, gz) = pipe("python3", &["-c", py], &input).expect("python3 runs");
        assert!(ok && gz[3] & FNAME != 0);
        assert_eq!(decompress(&gz, input.len()).unwrap(), input);
    }

    #[test]
    fn optional_header_fields() {
        let mut plain = Vec::new();
        compress(b"payload", 3, &mut plain);
        let body = &plain[HEADER_LEN..];
        let mut head = vec![
            0x1f,
            0x8b,
            8,
            FEXTRA | FNAME | FCOMMENT | FHCRC,
            1,
            2,
            3,
            4,
            0,
            3,
        ];
        head.extend_from_slice(&[3, 0, b'a', b'b', b'c']);
        head.extend_from_slice(b"name.json\0");
        head.extend_from_slice(b"a comment\0");
        let crc16 = (crc32(&head) & 0xffff) as u16;
        head.extend_from_slice(&crc16.to_le_bytes());
        let mut gz = head.clone();
        gz.extend_from_slice(body);
        assert_eq!(decompress(&gz, 100).unwrap(), b"payload");
        // A wrong header CRC.
        let crc_at = head.len() - 2;
        gz[crc_at] ^= 1;
        assert_eq!(decompress(&gz, 100), Err(GzipError::BadHeaderCrc));
        // Every truncation inside the header.
        for n in 0..head.len() {
            assert_eq!(
                decompress(&head[..n], 100),
                Err(GzipError::Truncated),
                "{n}"
            );
        }
    }

    #[test]
    fn rejects_damage() {
        let input = metrics_json(20_000);
        let mut gz = Vec::new();
        compress(&input, 3, &mut gz);
        let n = gz.len();

        let mut bad = gz.clone();
        bad[n - 8] ^= 1;
        assert_eq!(decompress(&bad, input.len()), Err(GzipError::BadCrc));
        let mut bad = gz.clone();
        bad[n - 1] ^= 1;
        assert_eq!(decompress(&bad, input.len()), Err(GzipError::BadLength));
        let mut bad = gz.clone();
        bad[0] = 0;
        assert_eq!(decompress(&bad, input.len()), Err(GzipError::BadMagic));
        let mut bad = gz.clone();
        bad[2] = 7;
        assert_eq!(decompress(&bad, input.len()), Err(GzipError::BadMagic));
        let mut bad = gz.clone();
        bad[3] = 0x20;
        assert_eq!(decompress(&bad, input.len()), Err(GzipError::ReservedFlags));
        let mut bad = gz.clone();
        bad.push(0);
        assert_eq!(decompress(&bad, input.len()), Err(GzipError::TrailingData));
        for cut in [1, 4, 8, 9, n / 2, n - 11] {
            assert!(
                decompress(&gz[..n - cut], input.len()).is_err(),
                "cut {cut}"
            );
        }
        for cut in 1..=TRAILER_LEN {
            assert_eq!(
                decompress(&gz[..n - cut], input.len()),
                Err(GzipError::Truncated)
            );
        }
        // Garbage deflate data.
        let mut bad = gz[..HEADER_LEN].to_vec();
        bad.extend_from_slice(&[0xff; 32]);
        assert!(decompress(&bad, 1000).is_err());
    }

    #[test]
    fn output_cap() {
        let input = vec![b'a'; 100_000];
        let mut gz = Vec::new();
        compress(&input, 3, &mut gz);
        assert_eq!(decompress(&gz, input.len()).unwrap(), input);
        assert_eq!(decompress(&gz, input.len() - 1), Err(GzipError::TooLarge));
        assert_eq!(decompress(&gz, 0), Err(GzipError::TooLarge));
        let mut empty = Vec::new();
        compress(b"", 3, &mut empty);
        assert_eq!(decompress(&empty, 0).unwrap(), b"");
    }

    /// Prints the ratio and timing on 200 KB of metrics JSON at every level (`--nocapture`).
    #[test]
    fn ratio_on_metrics_json() {
        let input = metrics_json(200_000);
        for level in 1..=10u8 {
            let t = std::time::Instant::now();
            let mut gz = Vec::new();
            compress(&input, level, &mut gz);
            let c = t.elapsed();
            let t = std::time::Instant::now();
            let back = decompress(&gz, input.len()).unwrap();
            let d = t.elapsed();
            assert_eq!(back, input);
            println!(
                "level {level:2}: {} -> {} bytes, ratio {:.2}:1 ({:.1}%), compress {c:?}, decompress {d:?}",
                input.len(),
                gz.len(),
                input.len() as f64 / gz.len() as f64,
                100.0 * gz.len() as f64 / input.len() as f64,
            );
            if level == DEFAULT_LEVEL {
                assert!(gz.len() * 3 < input.len(), "json compresses at least 3:1");
                if let Some((true, reference)) = pipe("gzip", &["-3c", "-n"], &input) {
                    println!("  (gzip -3 for reference: {} bytes)", reference.len());
                }
            }
        }
    }
}
