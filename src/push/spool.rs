//! The outage spool on disk (docs/protocol.md, "Spool"): `<state_dir>/spool/`, append-only
//! segment files of records (`pipeline::spool`) and a `cursor` file naming the first record
//! not yet delivered.
//!
//! ```text
//!   stage(record)… ─▶ commit: write, one fdatasync ─▶ segments  00000000000000000007.seg
//!   (a failure truncates back: nothing half-written)              00000000000000000008.seg ◀ writer
//!   next_batch ◀── from the cursor, one segment at a time ── cursor = "7 4096"
//!   delivered(batch) ─▶ cursor past it (atomic write); a segment wholly behind it is deleted
//! ```
//!
//! A segment is closed once it passes [`SEGMENT_BYTES`]; a record is never split. When the
//! spool passes its bound after a commit, the oldest segments are dropped and their elements
//! reported. The sink (`push::sink`) decides when to spool and when to replay; this file only
//! keeps the files consistent. Syscalls: `sys::spoolfile`.

use crate::pipeline::spool::{self as record, BatchId, Item, NO_BATCH};
use crate::sys::spoolfile::{self, AppendFile};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// A segment is closed once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// The directory under the state directory.
pub const DIR: &str = crate::state::SPOOL;
/// The name of the cursor file in it.
pub const CURSOR: &str = "cursor";
/// Staged bytes are written out once they pass this (the memory the spool keeps for writing).
const STAGE_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    seq: u64,
    /// Bytes in the file (written or staged).
    bytes: u64,
    /// Records at or after the cursor not yet delivered.
    elements: u64,
}

/// Where the next record to deliver starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub seq: u64,
    pub off: u64,
}

/// Records read from the spool for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolBatch {
    /// The batch id the records carry (they were sent before), or `None`: a new batch.
    pub id: Option<BatchId>,
    pub lens: Vec<usize>,
    pub json: Vec<u8>,
    /// The cursor after these records.
    pub end: Pos,
}

/// What a commit came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Committed {
    /// Elements now durably in the spool.
    pub spooled: u64,
    /// Elements of the oldest segments dropped to keep the bound.
    pub dropped: u64,
}

/// The figures of `collector_health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Figures {
    pub bytes: u64,
    pub elements: u64,
    pub corrupt: u64,
}

pub struct Spool {
    dir: PathBuf,
    limit: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    cursor: Pos,
    next_seq: u64,
    writer: Option<AppendFile>,
    corrupt: u64,
    stage: Vec<u8>,
    /// The state when staging began: (segments, bytes of the last one), for the rollback.
    round: Option<(usize, u64)>,
    staged: u64,
    stage_error: Option<std::io::Error>,
}

fn seg_name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

fn parse_seg(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The cursor file's text: `SEQ OFFSET`.
pub fn parse_cursor(text: &str) -> Option<Pos> {
    let mut it = text.split_ascii_whitespace();
    let seq = it.next()?.parse().ok()?;
    let off = it.next()?.parse().ok()?;
    it.next().is_none().then_some(Pos { seq, off })
}

impl Spool {
    /// Opens the spool of `state_dir` bounded by `limit` bytes: reads the segments from the
    /// cursor, counts their records, truncates a torn tail. Nothing is created until the first
    /// record is spooled.
    pub fn open(state_dir: &Path, limit: u64) -> std::io::Result<Spool> {
        Spool::open_with(state_dir, limit, SEGMENT_BYTES)
    }

    pub fn open_with(state_dir: &Path, limit: u64, segment_bytes: u64) -> std::io::Result<Spool> {
        let dir = state_dir.join(DIR);
        let mut seqs: Vec<u64> = spoolfile::list_dir(&dir)?
            .iter()
            .filter_map(|n| parse_seg(n))
            .collect();
        seqs.sort_unstable();
        let cursor = std::fs::read_to_string(dir.join(CURSOR))
            .ok()
            .and_then(|t| parse_cursor(&t));
        let mut spool = Spool {
            dir,
            limit,
            segment_bytes,
            segments: VecDeque::new(),
            cursor: Pos { seq: 0, off: 0 },
            next_seq: seqs.last().map_or(1, |s| s + 1),
            writer: None,
            corrupt: 0,
            stage: Vec::new(),
            round: None,
            staged: 0,
            stage_error: None,
        };
        for seq in seqs {
            let path = spool.dir.join(seg_name(seq));
            let from = match cursor {
                Some(c) if seq < c.seq => {
                    spoolfile::remove(&path)?;
                    continue;
                }
                Some(c) if seq == c.seq => c.off,
                _ => 0,
            };
            let bytes = crate::sys::file::read(&path)?;
            let from = from.min(bytes.len() as u64);
            let mut elements = 0;
            let mut end = bytes.len() as u64;
            for item in record::scan(&bytes, from as usize) {
                match item {
                    Item::Record { .. } => elements += 1,
                    Item::Corrupt { .. } => spool.corrupt += 1,
                    Item::Torn { at } => {
                        spool.corrupt += 1;
                        end = at as u64;
                    }
                }
            }
            if end < bytes.len() as u64 {
                spoolfile::truncate(&path, end)?;
            }
            if spool.segments.is_empty() {
                spool.cursor = Pos { seq, off: from };
            }
            spool.segments.push_back(Segment {
                seq,
                bytes: end,
                elements,
            });
        }
        if spool.elements() == 0 && !spool.segments.is_empty() {
            spool.clear()?;
        }
        Ok(spool)
    }

    pub fn figures(&self) -> Figures {
        Figures {
            bytes: self.bytes(),
            elements: self.elements(),
            corrupt: self.corrupt,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.elements() == 0
    }

    fn elements(&self) -> u64 {
        self.segments.iter().map(|s| s.elements).sum()
    }

    /// Bytes not yet delivered.
    fn bytes(&self) -> u64 {
        let total: u64 = self.segments.iter().map(|s| s.bytes).sum();
        total.saturating_sub(if self.segments.is_empty() {
            0
        } else {
            self.cursor.off
        })
    }

    /// Adds one record to this round (written by [`Self::commit`] at the latest). The JSON is
    /// one or two slices, as the element buffer hands it out.
    pub fn stage(&mut self, batch_id: &BatchId, json: &[&[u8]]) {
        if self.stage_error.is_some() {
            return;
        }
        if self.round.is_none() {
            self.round = Some((
                self.segments.len(),
                self.segments.back().map_or(0, |s| s.bytes),
            ));
        }
        let roll = self
            .segments
            .back()
            .is_none_or(|s| s.bytes >= self.segment_bytes)
            || self.writer.is_none();
        if roll && let Err(e) = self.roll() {
            self.stage_error = Some(e);
            return;
        }
        // None: larger than any element a valid config allows (never happens): not spooled.
        if let Some(size) = record::encode(&mut self.stage, batch_id, json) {
            if let Some(seg) = self.segments.back_mut() {
                seg.bytes += size as u64;
                seg.elements += 1;
            }
            self.staged += 1;
        }
        if self.stage.len() >= STAGE_BYTES
            && let Err(e) = self.flush()
        {
            self.stage_error = Some(e);
        }
    }

    /// Starts a new segment (after syncing the one it closes).
    fn roll(&mut self) -> std::io::Result<()> {
        self.flush()?;
        if let Some(w) = &self.writer {
            w.sync()?;
        }
        if self
            .segments
            .back()
            .is_some_and(|s| s.bytes < self.segment_bytes)
            && self.writer.is_none()
        {
            // Reopen the last segment (after a start) instead of a new one.
            let seq = self.segments.back().map_or(0, |s| s.seq);
            spoolfile::create_private_dir(&self.dir)?;
            self.writer = Some(AppendFile::open(&self.dir.join(seg_name(seq)))?);
            return Ok(());
        }
        spoolfile::create_private_dir(&self.dir)?;
        let seq = self.next_seq;
        let w = AppendFile::open(&self.dir.join(seg_name(seq)))?;
        self.next_seq += 1;
        if self.segments.is_empty() {
            self.cursor = Pos { seq, off: 0 };
        }
        self.segments.push_back(Segment {
            seq,
            bytes: w.len(),
            elements: 0,
        });
        self.writer = Some(w);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.stage.is_empty() {
            return Ok(());
        }
        let result = match &mut self.writer {
            Some(w) => w.append(&self.stage),
            None => Err(std::io::ErrorKind::NotFound.into()),
        };
        self.stage.clear();
        result
    }

    /// Writes what this round staged and makes it durable (one `fdatasync`), then keeps the
    /// bound. On an error nothing of the round stays in the files (truncated back) and the
    /// error is returned: the caller keeps the elements in memory.
    pub fn commit(&mut self) -> std::io::Result<Committed> {
        let Some((segs_before, last_bytes)) = self.round.take() else {
            return Ok(Committed::default());
        };
        let staged = std::mem::take(&mut self.staged);
        let mut result = match self.stage_error.take() {
            Some(e) => Err(e),
            None => self.flush(),
        };
        if result.is_ok()
            && let Some(w) = &self.writer
        {
            result = w.sync();
        }
        if result.is_ok() && self.segments.len() > segs_before {
            result = spoolfile::sync_dir(&self.dir);
        }
        if let Err(e) = result {
            self.rollback(segs_before, last_bytes, staged);
            return Err(e);
        }
        let mut dropped = 0;
        while self.bytes() > self.limit && self.segments.len() > 1 {
            dropped += self.drop_front();
        }
        Ok(Committed {
            spooled: staged,
            dropped,
        })
    }

    fn rollback(&mut self, segs_before: usize, last_bytes: u64, staged: u64) {
        self.stage.clear();
        let _ = staged;
        while self.segments.len() > segs_before {
            if let Some(s) = self.segments.pop_back() {
                let _ = spoolfile::remove(&self.dir.join(seg_name(s.seq)));
            }
            self.writer = None;
        }
        if segs_before > 0 {
            let path = self.dir.join(seg_name(self.segments[segs_before - 1].seq));
            // Recount the last segment as it was: its bytes back, and the records staged into it
            // undone (everything after `last_bytes` was this round's).
            let _ = spoolfile::truncate(&path, last_bytes);
            if let Some(w) = &mut self.writer {
                let _ = w.truncate(last_bytes);
            }
            self.writer = None;
            let seg = &mut self.segments[segs_before - 1];
            seg.bytes = last_bytes;
            seg.elements = count_from(&path, if segs_before == 1 { self.cursor.off } else { 0 });
        }
    }

    /// Drops the oldest segment; returns its undelivered elements.
    fn drop_front(&mut self) -> u64 {
        let Some(front) = self.segments.pop_front() else {
            return 0;
        };
        let _ = spoolfile::remove(&self.dir.join(seg_name(front.seq)));
        if let Some(next) = self.segments.front() {
            self.cursor = Pos {
                seq: next.seq,
                off: 0,
            };
        }
        if self.segments.is_empty() {
            self.writer = None;
        }
        front.elements
    }

    /// Whether segment `seq` is still in the spool (not delivered, not dropped).
    pub fn holds_segment(&self, seq: u64) -> bool {
        self.segments.iter().any(|s| s.seq == seq)
    }

    /// The records of the next request: from the cursor, within the front segment; those that
    /// carry a batch id together as that batch, the others up to `max_json` bytes of JSON (at
    /// least one) and `max_records`. `None` when nothing waits. Bad records are skipped.
    pub fn next_batch(
        &mut self,
        max_json: usize,
        max_records: usize,
    ) -> std::io::Result<Option<SpoolBatch>> {
        loop {
            let Some(front) = self.segments.front().copied() else {
                return Ok(None);
            };
            let path = self.dir.join(seg_name(front.seq));
            let avail = front.bytes.saturating_sub(self.cursor.off);
            if avail == 0 || front.elements == 0 {
                if self.segments.len() == 1 {
                    self.clear()?;
                    return Ok(None);
                }
                self.drop_front();
                continue;
            }
            // Enough for a batch written under max_json; doubled while a batch id group or a
            // first record is cut by the end of what was read.
            let mut want = (2 * max_json.max(record::HEADER) + 64 * 1024) as u64;
            loop {
                let take = want.min(avail);
                let bytes = spoolfile::read_at(&path, self.cursor.off, take as usize)?;
                let cut_short = take < avail;
                match form(&bytes, max_json, max_records, cut_short) {
                    Formed::Batch {
                        id,
                        lens,
                        json,
                        used,
                    } => {
                        return Ok(Some(SpoolBatch {
                            id,
                            lens,
                            json,
                            end: Pos {
                                seq: front.seq,
                                off: self.cursor.off + used as u64,
                            },
                        }));
                    }
                    Formed::Nothing { used } => {
                        // Only bad bytes up to the end of the segment (or of what was read).
                        self.advance(
                            Pos {
                                seq: front.seq,
                                off: self.cursor.off + used as u64,
                            },
                            0,
                        )?;
                        if !cut_short
                            && let Some(f) = self.segments.front_mut()
                            && f.seq == front.seq
                        {
                            f.elements = 0;
                        }
                        break;
                    }
                    Formed::NeedMore => want = want.saturating_mul(2),
                }
            }
        }
    }

    /// `records` records up to `end` are delivered (or given up): the cursor moves past them.
    pub fn delivered(&mut self, end: Pos, records: usize) -> std::io::Result<()> {
        self.advance(end, records as u64)
    }

    fn advance(&mut self, to: Pos, records: u64) -> std::io::Result<()> {
        if let Some(front) = self.segments.front_mut()
            && front.seq == to.seq
        {
            front.elements = front.elements.saturating_sub(records);
            self.cursor = to;
            if to.off >= front.bytes && self.segments.len() > 1 {
                self.drop_front();
            }
        }
        if self.is_empty() {
            return self.clear();
        }
        let text = format!("{} {}\n", self.cursor.seq, self.cursor.off);
        crate::sys::file::write_private(&self.dir.join(CURSOR), text.as_bytes())
    }

    /// Everything delivered: the files go, numbering continues.
    fn clear(&mut self) -> std::io::Result<()> {
        self.writer = None;
        for s in self.segments.drain(..) {
            spoolfile::remove(&self.dir.join(seg_name(s.seq)))?;
        }
        spoolfile::remove(&self.dir.join(CURSOR))?;
        self.cursor = Pos {
            seq: self.next_seq,
            off: 0,
        };
        Ok(())
    }
}

fn count_from(path: &Path, from: u64) -> u64 {
    crate::sys::file::read(path).map_or(0, |b| {
        record::scan(&b, from as usize)
            .filter(|i| matches!(i, Item::Record { .. }))
            .count() as u64
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Formed {
    Batch {
        id: Option<BatchId>,
        lens: Vec<usize>,
        json: Vec<u8>,
        used: usize,
    },
    /// No record in the bytes, `used` of them skipped.
    Nothing { used: usize },
    /// The bytes end inside what must be one batch: read more.
    NeedMore,
}

/// A batch from `bytes` (the spool from the cursor): pure.
fn form(bytes: &[u8], max_json: usize, max_records: usize, cut_short: bool) -> Formed {
    let mut id: Option<Option<BatchId>> = None;
    let mut lens = Vec::new();
    let mut json = Vec::new();
    let mut used = 0;
    for item in record::scan(bytes, 0) {
        match item {
            Item::Record { at, size, record } => {
                let this = (record.batch_id != NO_BATCH).then_some(record.batch_id);
                match id {
                    None => id = Some(this),
                    Some(group) => {
                        let full = match group {
                            Some(_) => this != group,
                            None => {
                                this.is_some()
                                    || json.len() + record.json.len() + lens.len() + 1 > max_json
                                    || lens.len() >= max_records
                            }
                        };
                        if full {
                            break;
                        }
                    }
                }
                lens.push(record.json.len());
                json.extend_from_slice(record.json);
                used = at + size;
            }
            Item::Corrupt { at, size } => {
                if lens.is_empty() {
                    used = at + size;
                }
            }
            Item::Torn { .. } => {
                if cut_short {
                    if lens.is_empty() || id.flatten().is_some() {
                        return Formed::NeedMore;
                    }
                } else if lens.is_empty() {
                    used = bytes.len();
                }
                break;
            }
        }
    }
    if cut_short && !lens.is_empty() && id.flatten().is_some() && used == bytes.len() {
        // A group that reaches the end of what was read may go on.
        return Formed::NeedMore;
    }
    match id {
        Some(id) if !lens.is_empty() => Formed::Batch {
            id,
            lens,
            json,
            used,
        },
        _ => Formed::Nothing { used },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pgac-spool-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn el(n: u64) -> Vec<u8> {
        format!("{{\"type\":\"t\",\"n\":{n:06}}}").into_bytes()
    }

    fn drain(s: &mut Spool) -> Vec<(Option<BatchId>, Vec<Vec<u8>>)> {
        let mut out = Vec::new();
        while let Some(b) = s.next_batch(1000, 1000).unwrap() {
            let mut at = 0;
            let els = b
                .lens
                .iter()
                .map(|&n| {
                    at += n;
                    b.json[at - n..at].to_vec()
                })
                .collect();
            out.push((b.id, els));
            s.delivered(b.end, b.lens.len()).unwrap();
        }
        out
    }

    #[test]
    fn nothing_on_disk_until_something_is_spooled_and_all_of_it_goes_after_delivery() {
        let d = tmp("empty");
        let mut s = Spool::open(&d, 8 << 20).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.commit().unwrap(), Committed::default());
        assert!(!d.join(DIR).exists());
        s.stage(&[9; 16], &[&el(0)]);
        s.stage(&[9; 16], &[&el(1)[..3], &el(1)[3..]]);
        s.stage(&NO_BATCH, &[&el(2)]);
        assert_eq!(s.commit().unwrap().spooled, 3);
        assert_eq!(s.figures().elements, 3);
        // A restart finds them, in order, the sent ones as their batch.
        drop(s);
        let mut s = Spool::open(&d, 8 << 20).unwrap();
        assert_eq!(s.figures().elements, 3);
        let got = drain(&mut s);
        assert_eq!(
            got,
            vec![(Some([9; 16]), vec![el(0), el(1)]), (None, vec![el(2)])]
        );
        assert!(s.is_empty());
        assert!(spoolfile::list_dir(&d.join(DIR)).unwrap().is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_cursor_survives_a_restart_and_segments_roll_and_the_bound_drops_the_oldest() {
        let d = tmp("roll");
        let rec = (record::HEADER + el(0).len()) as u64;
        // Segments of 4 records; bound of 10 records.
        let mut s = Spool::open_with(&d, 10 * rec, 4 * rec).unwrap();
        for n in 0..6 {
            s.stage(&NO_BATCH, &[&el(n)]);
        }
        s.commit().unwrap();
        let b = s.next_batch(3 * el(0).len() + 3, 100).unwrap().unwrap();
        assert_eq!(b.lens.len(), 3);
        s.delivered(b.end, b.lens.len()).unwrap();
        drop(s);
        let mut s = Spool::open_with(&d, 10 * rec, 4 * rec).unwrap();
        assert_eq!(s.figures().elements, 3);
        assert_eq!(s.figures().bytes, 3 * rec);
        for n in 6..16 {
            s.stage(&NO_BATCH, &[&el(n)]);
        }
        let c = s.commit().unwrap();
        assert_eq!(c.spooled, 10);
        // 13 waiting in segments of 4 (one with 1 waiting, then 4, 4, 4): over 10 records,
        // the oldest segments go.
        assert!(s.figures().bytes <= 10 * rec, "{:?}", s.figures());
        assert_eq!(c.dropped + s.figures().elements, 13);
        let got: Vec<Vec<u8>> = drain(&mut s).into_iter().flat_map(|(_, e)| e).collect();
        assert_eq!(got.first(), Some(&el(16 - got.len() as u64)));
        assert_eq!(got.last(), Some(&el(15)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn torn_tails_and_flipped_bytes_lose_only_their_records_and_are_counted() {
        let d = tmp("torn");
        let mut s = Spool::open(&d, 8 << 20).unwrap();
        for n in 0..5 {
            s.stage(&NO_BATCH, &[&el(n)]);
        }
        s.commit().unwrap();
        drop(s);
        let seg = d.join(DIR).join(seg_name(1));
        let mut bytes = std::fs::read(&seg).unwrap();
        let rec = record::HEADER + el(0).len();
        bytes[rec + record::HEADER + 2] ^= 0x20; // the second record's JSON
        bytes.truncate(bytes.len() - 3); // the last record torn
        std::fs::write(&seg, &bytes).unwrap();
        let mut s = Spool::open(&d, 8 << 20).unwrap();
        assert_eq!(s.figures().corrupt, 2);
        assert_eq!(s.figures().elements, 3);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), 4 * rec as u64);
        let got: Vec<Vec<u8>> = drain(&mut s).into_iter().flat_map(|(_, e)| e).collect();
        assert_eq!(got, vec![el(0), el(2), el(3)]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_failed_commit_leaves_the_files_as_they_were() {
        let d = tmp("fail");
        let mut s = Spool::open(&d, 8 << 20).unwrap();
        s.stage(&NO_BATCH, &[&el(0)]);
        s.commit().unwrap();
        s.stage(&NO_BATCH, &[&el(1)]);
        s.stage_error = Some(std::io::Error::from_raw_os_error(28));
        assert!(s.commit().is_err());
        assert_eq!(s.figures().elements, 1);
        drop(s);
        let mut s = Spool::open(&d, 8 << 20).unwrap();
        assert_eq!(s.figures().corrupt, 0);
        let got: Vec<Vec<u8>> = drain(&mut s).into_iter().flat_map(|(_, e)| e).collect();
        assert_eq!(got, vec![el(0)]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn cursor_text() {
        assert_eq!(parse_cursor("7 4096\n"), Some(Pos { seq: 7, off: 4096 }));
        assert_eq!(parse_cursor("7"), None);
        assert_eq!(parse_cursor("7 x"), None);
        assert_eq!(parse_cursor("1 2 3"), None);
        assert_eq!(parse_seg("00000000000000000007.seg"), Some(7));
        assert_eq!(parse_seg("7.seg"), None);
    }
}
