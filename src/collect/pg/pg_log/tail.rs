//! Following the log files: every byte read once, across rotations, truncations and deletions.
//!
//! What this does: keep the current file open (a descriptor keeps a renamed or deleted file
//! readable), read it from the parser's position through one fixed buffer of [`READ_BUF`]
//! bytes, hand the bytes to the parser ([`crate::pg_log_format::Parser`]) and its entries to the
//! caller, and decide at each collection what happened to the file:
//!
//! ```text
//!            ┌───────── size < offset, or first bytes changed (copytruncate) ──▶ restart at 0
//!   Live ────┤
//!            └─ path now another inode or gone, or another file is current ──▶ Draining
//!   Draining: read to the end; once it did not grow for a whole collection, finish the
//!             pending entry, remember the file as done, then read the files that came after
//!             it (the log directory's newer files, oldest first, the current one last) from 0.
//! ```
//!
//! A draining file is finished only after a quiet collection: whoever rotated it by rename
//! (logrotate, a person) may still be writing to it until the server reopens its log. A live
//! file's last entry is also ended after a quiet collection (PostgreSQL writes an entry with
//! its DETAIL/HINT lines at once, so nothing more belongs to it).
//!
//! What this does not do: parse lines (the parser does), find the log (`discover`), make the
//! file syscalls ([`crate::sys::logfile`]), or know about elements and acknowledgements (the
//! collector); it reports positions as ([`FileRef`], offset) pairs that the collector stores.
//!
//! Bounds: [`READ_BUF`] is allocated once; a line longer than it is cut by the parser (it is
//! told the buffer is full) and counted there. At most `limit` entries and [`READ_BUDGET`]
//! bytes are read per collection: the rest stays in the file for the next one.

use super::contain::{self, OpenError, Rule};
use super::discover::DirScan;
use super::offsets::{FINGERPRINT_BYTES, FileId, Fingerprint, Stored};
use crate::pg_log_format::{Entry, Parser};
use crate::sys::logfile::{self, Errno, Meta, OwnedFd, fstat, inode_at, pread, pread_full};
use std::collections::VecDeque;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Bytes of the one read buffer.
pub const READ_BUF: usize = 64 * 1024;

/// Most bytes read per collection (the rest waits for the next one): a first look at a
/// large file with `start_at = "beginning"` does not hold the loop for long.
pub const READ_BUDGET: u64 = 256 << 20;

/// Finished files remembered (device, inode, fingerprint), so none is read twice.
pub const DONE_MAX: usize = 256;

/// How much of the current file `once` reads when no offset is stored.
pub const ONCE_TAIL: u64 = 64 * 1024;

/// A file the reader has seen: identity and fingerprint (shared by the positions in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub id: FileId,
    pub fingerprint: Fingerprint,
}

/// A position: the file and an offset in it.
pub type Position = (Rc<FileRef>, u64);

/// Where to begin when nothing is open yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// End of the current file (`start_at = "end"`).
    End,
    /// Its beginning (`start_at = "beginning"`).
    Beginning,
    /// The last bytes of it (`once`).
    Tail(u64),
    /// A stored offset (the file may have been rotated since).
    Stored(Stored),
}

/// What to do with the open file, from what the file system shows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Keep reading where we are.
    Keep,
    /// It was truncated (copytruncate) or rewritten: read it again from 0.
    Restart,
    /// Another file took its place: read it to the end, then go on with the next ones.
    Replaced,
}

/// The decision for an open file with inode `own`, read up to `offset`: `size` and
/// `head_same` (its first fingerprinted bytes are unchanged) come from the descriptor,
/// `at_path` is the inode now at the name it was opened by, `current` the inode of the file
/// the log's owner says is current (the reader's own file under a new name counts as its own).
pub fn check(
    own: (u64, u64),
    offset: u64,
    size: u64,
    head_same: bool,
    at_path: Option<(u64, u64)>,
    current: Option<(u64, u64)>,
) -> Check {
    if size < offset || !head_same {
        Check::Restart
    } else if current == Some(own) {
        Check::Keep
    } else if at_path.is_some_and(|p| p != own) || current.is_some() {
        Check::Replaced
    } else {
        // At its name, or renamed or deleted with nothing in its place yet: whoever writes it
        // still holds it (PostgreSQL writes a renamed log until it rotates), so it is read on
        // through the descriptor; finishing it now would lose what comes next.
        Check::Keep
    }
}

/// Orders the files that came after a finished one: (mtime, name) ascending, keeping those
/// not older than `after_mtime`; the current file goes last only when it is not listed.
///
/// A listed current file keeps its mtime place: what the server calls current can be a
/// collection old (it rotated meanwhile), and a newer file read before it would, once
/// finished, leave it behind as older than what was finished (its entries lost).
pub fn order_successors(
    mut files: Vec<((i64, i64), PathBuf)>,
    after_mtime: (i64, i64),
    current: Option<&Path>,
) -> Vec<PathBuf> {
    files.retain(|(m, _)| *m >= after_mtime);
    files.sort();
    let mut out: Vec<PathBuf> = files.into_iter().map(|(_, p)| p).collect();
    if let Some(c) = current
        && !out.iter().any(|p| p == c)
    {
        out.push(c.to_path_buf());
    }
    out
}

struct Open {
    fd: OwnedFd,
    file: Rc<FileRef>,
    /// Replaced by another file: read to the end, then finish.
    draining: bool,
    /// Finish only after a collection in which it did not grow (its writer may not have
    /// moved on yet).
    settle: bool,
    /// Size seen at the end of the previous collection (`u64::MAX`: none yet).
    last_size: u64,
}

/// The fingerprint of the first `len` bytes (or of what there is, if fewer).
fn head_fingerprint(fd: &OwnedFd, len: usize) -> Result<Fingerprint, Errno> {
    let mut head = [0u8; FINGERPRINT_BYTES];
    let n = pread_full(fd, &mut head[..len.min(FINGERPRINT_BYTES)], 0)?;
    Ok(Fingerprint::of(&head[..n]))
}

/// One line naming the file and what to do.
pub fn open_error(path: &Path, e: Errno) -> String {
    if e == Errno::ACCESS || e == Errno::PERM {
        format!(
            "cannot read PostgreSQL log {}: permission denied; add the collector's user to group adm (Debian) or the server's group, or set log_file_mode = 0640 in postgresql.conf",
            path.display()
        )
    } else {
        format!("cannot read PostgreSQL log {}: {e}", path.display())
    }
}

/// Opens `path` as `rule` allows (SECURITY.md, "Files named by the server").
fn open(rule: &Rule, path: &Path) -> Result<(OwnedFd, Meta), String> {
    contain::open(rule, path).map_err(|e| match e {
        OpenError::Refused(why) => contain::refusal_line(path, &why),
        OpenError::Sys(e) => open_error(path, e),
    })
}

/// How a read of one file ended.
enum ReadEnd {
    /// At the end of the file; `partial`: an incomplete last line is waiting; `quiet`: nothing
    /// was there to read.
    Eof { partial: bool, quiet: bool },
    /// The entry limit or the byte budget of this collection was reached.
    Limit,
}

/// A file read to its end and left.
#[derive(Debug, Clone, Copy)]
struct Done {
    dev: u64,
    ino: u64,
    fingerprint: Fingerprint,
    /// Offset it was finished at.
    end: u64,
}

pub struct Tail {
    /// The one read buffer: during a read `buf[..filled]` holds the bytes from the parser's
    /// position on; between reads nothing is kept in it (the parser's position says where to
    /// go on).
    buf: Box<[u8; READ_BUF]>,
    parser: Parser,
    cur: Option<Open>,
    /// Files to read after `cur`, oldest first (the current one last).
    queue: VecDeque<PathBuf>,
    /// Set when a file was finished: its final mtime (its successors are not older).
    after: Option<(i64, i64)>,
    /// Finished files, oldest first.
    done: VecDeque<Done>,
    /// How to begin, until a first file is opened.
    start: Option<Start>,
    /// The end of the last file finished, for positions while no file is open.
    last: Option<Position>,
    /// Which files may be opened (the operator's path, or the server's log directory).
    rule: Rule,
}

/// What one step did, for the caller's log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// The stored offset's file was not found: its entries after the offset are lost.
    pub stored_lost: Option<PathBuf>,
    /// What happened to which file, one line each (for the collector's log).
    pub events: Vec<String>,
    /// Reading stopped at the end of the live file's last whole line (not at the entry limit,
    /// the byte budget or an incomplete line): a one-shot look may end the pending entry.
    pub at_end: bool,
}

type Sink<'s> = dyn FnMut(&Rc<FileRef>, Entry, u64) + 's;

impl Tail {
    pub fn new(parser: Parser, start: Start) -> Tail {
        Tail {
            buf: Box::new([0; READ_BUF]),
            parser,
            cur: None,
            queue: VecDeque::new(),
            after: None,
            done: VecDeque::new(),
            start: Some(start),
            last: None,
            rule: Rule::Operator,
        }
    }

    /// Which files may be opened from now on (the server's log directory may move).
    pub fn set_rule(&mut self, rule: Rule) {
        self.rule = rule;
    }

    /// Replaces the parser (the server's settings changed); it goes on at the resume offset.
    pub fn set_parser(&mut self, mut parser: Parser) {
        parser.reset(self.parser.resume_offset(), false);
        self.parser = parser;
    }

    /// The position up to which everything read was handed out (the start of an entry still
    /// pending, else the read position); `None` before any file was opened.
    pub fn position(&self) -> Option<Position> {
        match &self.cur {
            Some(o) => Some((o.file.clone(), self.parser.resume_offset())),
            None => self.last.clone(),
        }
    }

    /// The file open now, if any.
    pub fn file(&self) -> Option<&FileRef> {
        self.cur.as_ref().map(|o| &*o.file)
    }

    /// One collection: follow what happened to the files, hand out at most `limit` entries.
    /// `current` is the file being written now (as its owner says), `dir` where its rotated
    /// and new siblings appear.
    pub fn step(
        &mut self,
        current: Option<&Path>,
        dir: Option<&DirScan>,
        limit: usize,
        sink: &mut Sink<'_>,
    ) -> Result<Report, String> {
        let mut report = Report::default();
        if self.cur.is_none() {
            self.open_next(current, dir, &mut report)?;
        }
        self.check_open(current, &mut report)?;
        let mut left = limit;
        let mut budget = READ_BUDGET;
        while let Some(mut o) = self.cur.take() {
            let end = match self.read(&o, &mut left, &mut budget, sink) {
                Ok(e) => e,
                Err(e) => {
                    self.cur = Some(o);
                    return Err(e);
                }
            };
            let size = fstat(&o.fd).map(|m| m.size).unwrap_or(0);
            let ReadEnd::Eof { partial, quiet } = end else {
                self.cur = Some(o);
                break;
            };
            if !o.draining {
                report.at_end = !partial && left > 0;
                if quiet && !partial && left > 0 {
                    // Nothing new for a whole collection: the pending entry is whole.
                    let file = o.file.clone();
                    self.parser.finish(&mut |e, end| sink(&file, e, end));
                }
                o.last_size = size;
                self.cur = Some(o);
                break;
            }
            if (o.settle && size != o.last_size) || left == 0 {
                o.last_size = size;
                self.cur = Some(o);
                break;
            }
            if partial {
                self.feed_last_line(&o, sink);
            }
            let file = o.file.clone();
            self.parser.finish(&mut |e, end| sink(&file, e, end));
            left = left.saturating_sub(1);
            report.events.push(format!(
                "finished {} at offset {}",
                o.file.id.path.display(),
                self.parser.position()
            ));
            self.finish(o, size);
            self.open_next(current, dir, &mut report)?;
        }
        Ok(report)
    }

    /// Reads `o` from the parser's position to its end, the entry limit or the byte budget.
    fn read(
        &mut self,
        o: &Open,
        left: &mut usize,
        budget: &mut u64,
        sink: &mut Sink<'_>,
    ) -> Result<ReadEnd, String> {
        let mut base = self.parser.position();
        let mut filled = 0usize;
        let mut quiet = true;
        loop {
            if *left == 0 || *budget == 0 {
                return Ok(ReadEnd::Limit);
            }
            let n = pread(&o.fd, &mut self.buf[filled..], base + filled as u64).map_err(|e| {
                format!(
                    "cannot read PostgreSQL log {}: {e}",
                    o.file.id.path.display()
                )
            })?;
            if n == 0 {
                return Ok(ReadEnd::Eof {
                    partial: filled > 0,
                    quiet,
                });
            }
            quiet = false;
            filled += n;
            *budget = budget.saturating_sub(n as u64);
            let full = filled == READ_BUF;
            let cap = *left;
            let mut kept = 0usize;
            let mut last_end = None;
            let mut over = false;
            let consumed = self.parser.feed(&self.buf[..filled], full, &mut |e, end| {
                if kept < cap {
                    kept += 1;
                    last_end = Some(end);
                    sink(&o.file, e, end);
                } else {
                    over = true;
                }
            });
            *left -= kept;
            if over {
                // The rest stays in the file for the next collection.
                if let Some(end) = last_end {
                    self.parser.reset(end, false);
                }
                return Ok(ReadEnd::Limit);
            }
            let consumed = consumed.min(filled);
            if consumed == 0 && full {
                return Err(format!(
                    "PostgreSQL log {}: the parser took nothing from a full buffer at offset {base}",
                    o.file.id.path.display()
                ));
            }
            self.buf.copy_within(consumed..filled, 0);
            filled -= consumed;
            base += consumed as u64;
        }
    }

    /// The incomplete last line of a finished file, ended with a newline so it is parsed.
    fn feed_last_line(&mut self, o: &Open, sink: &mut Sink<'_>) {
        let base = self.parser.position();
        let Ok(n) = pread_full(&o.fd, &mut self.buf[..READ_BUF - 1], base) else {
            return;
        };
        if n == 0 {
            return;
        }
        self.buf[n] = b'\n';
        let file = o.file.clone();
        self.parser
            .feed(&self.buf[..=n], n + 1 == READ_BUF, &mut |e, end| {
                sink(&file, e, end)
            });
    }

    /// Ends the pending entry now (`once`: a look ends with what it saw).
    pub fn end_pending(&mut self, sink: &mut Sink<'_>) {
        if let Some(o) = &self.cur {
            let file = o.file.clone();
            self.parser.finish(&mut |e, end| sink(&file, e, end));
        }
    }

    /// Looks at the open live file: truncated, replaced, or still the one being written.
    fn check_open(&mut self, current: Option<&Path>, report: &mut Report) -> Result<(), String> {
        let Some(o) = self.cur.as_mut() else {
            return Ok(());
        };
        if o.draining {
            return Ok(());
        }
        let path = o.file.id.path.clone();
        let path = path.as_path();
        let meta = fstat(&o.fd).map_err(|e| open_error(path, e))?;
        let fp = o.file.fingerprint;
        let head_same = fp.len == 0
            || (meta.size >= u64::from(fp.len)
                && head_fingerprint(&o.fd, fp.len as usize).map_err(|e| open_error(path, e))?
                    == fp);
        let own = (meta.dev, meta.ino);
        let current_inode = current.and_then(inode_at);
        let decision = check(
            own,
            self.parser.position(),
            meta.size,
            head_same,
            inode_at(path),
            current_inode,
        );
        match decision {
            Check::Keep => {
                let renamed = match current {
                    Some(c) if current_inode == Some(own) && c != path => Some(c.to_path_buf()),
                    _ => None,
                };
                let grows = fp.partial() && meta.size > u64::from(fp.len);
                if renamed.is_some() || grows {
                    let fingerprint = if grows {
                        head_fingerprint(&o.fd, FINGERPRINT_BYTES)
                            .map_err(|e| open_error(path, e))?
                    } else {
                        fp
                    };
                    let mut id = o.file.id.clone();
                    if let Some(p) = renamed {
                        id.path = p;
                    }
                    o.file = Rc::new(FileRef { id, fingerprint });
                }
            }
            Check::Restart => {
                self.parser.reset(0, false);
                let fingerprint =
                    head_fingerprint(&o.fd, FINGERPRINT_BYTES).map_err(|e| open_error(path, e))?;
                o.file = Rc::new(FileRef {
                    id: o.file.id.clone(),
                    fingerprint,
                });
                report.events.push(format!(
                    "{} was truncated: reading it from 0",
                    path.display()
                ));
            }
            Check::Replaced => {
                report.events.push(format!(
                    "{} was rotated or deleted: finishing it",
                    path.display()
                ));
                o.draining = true;
                o.settle = true;
                o.last_size = u64::MAX;
            }
        }
        Ok(())
    }

    /// Remembers `o` as done; its successors are listed by the next [`Tail::open_next`].
    fn finish(&mut self, o: Open, size: u64) {
        let mtime = fstat(&o.fd).map(|m| m.mtime).unwrap_or((i64::MIN, 0));
        if self.done.len() == DONE_MAX {
            self.done.pop_front();
        }
        let end = size.max(self.parser.position());
        self.done.push_back(Done {
            dev: o.file.id.dev,
            ino: o.file.id.ino,
            fingerprint: o.file.fingerprint,
            end,
        });
        self.last = Some((o.file.clone(), end));
        self.queue.clear();
        self.after = Some(mtime);
    }

    /// Where the file open as `fd` was finished, if it was (same inode and first bytes).
    fn done_at(&self, fd: &OwnedFd, meta: &Meta) -> Option<u64> {
        self.done
            .iter()
            .rev()
            .find(|d| {
                let fp = d.fingerprint;
                d.dev == meta.dev
                    && d.ino == meta.ino
                    && meta.size >= u64::from(fp.len)
                    && (meta.size == 0 || fp.len > 0)
                    && head_fingerprint(fd, fp.len as usize).is_ok_and(|f| f == fp)
            })
            .map(|d| d.end)
    }

    /// The files of `dir` not older than `after` and not done, the current one last.
    fn successors(
        &self,
        after: (i64, i64),
        current: Option<&Path>,
        dir: Option<&DirScan>,
    ) -> VecDeque<PathBuf> {
        let mut files = Vec::new();
        if let Some(d) = dir
            && let Ok(entries) = logfile::read_dir(&d.dir)
        {
            for e in entries {
                if !d.filter.matches_rotated(e.name().as_bytes()) {
                    continue;
                }
                // A symbolic link, a FIFO or a file of another owner is not a log.
                let Some(md) = e.lstat_regular() else {
                    continue;
                };
                let path = e.path();
                if contain::allowed(&self.rule, &path) {
                    files.push((md.mtime, path));
                }
            }
        }
        order_successors(files, after, current).into()
    }

    /// Opens what comes next: the start file, a queued file, or a new current file.
    fn open_next(
        &mut self,
        current: Option<&Path>,
        dir: Option<&DirScan>,
        report: &mut Report,
    ) -> Result<(), String> {
        if let Some(start) = self.start.take() {
            return self.open_start(start, current, dir, report);
        }
        if let Some(after) = self.after.take() {
            self.queue = self.successors(after, current, dir);
        }
        let current_inode = current.and_then(inode_at);
        while let Some(p) = self.queue.pop_front() {
            let (fd, meta) = match contain::open(&self.rule, &p) {
                Ok(x) => x,
                Err(e) if e.not_found() => continue, // gone meanwhile
                Err(_) => open(&self.rule, &p)?,
            };
            if self.done_at(&fd, &meta).is_some() {
                continue;
            }
            let live = current_inode == Some((meta.dev, meta.ino));
            report
                .events
                .push(format!("reading {} from 0", p.display()));
            self.parser.reset(0, false);
            // A file that is not the current one may still be written until its writer
            // reopens the log (renamed by hand or by logrotate): it too is finished only after
            // a quiet collection.
            self.cur = Some(Open {
                file: file_ref(&fd, p, &meta)?,
                fd,
                draining: !live,
                settle: !live,
                last_size: u64::MAX,
            });
            return Ok(());
        }
        // Nothing queued: a current file not read before (e.g. created after a deletion), or
        // one finished too early that is written again (its owner says it is current): it goes
        // on where it was finished, nothing is read twice.
        if let Some(c) = current
            && let Some((fd, meta)) = open_if_exists(&self.rule, c)?
        {
            let from = match self.done_at(&fd, &meta) {
                None => 0,
                Some(end) if meta.size > end => end,
                Some(_) => return Ok(()),
            };
            report
                .events
                .push(format!("reading current file {} from {from}", c.display()));
            self.parser.reset(from, false);
            self.cur = Some(Open {
                file: file_ref(&fd, c.to_path_buf(), &meta)?,
                fd,
                draining: false,
                settle: false,
                last_size: meta.size,
            });
        }
        Ok(())
    }

    /// Opens the first file as `start` says; keeps `start` for later when there is no file yet.
    fn open_start(
        &mut self,
        start: Start,
        current: Option<&Path>,
        dir: Option<&DirScan>,
        report: &mut Report,
    ) -> Result<(), String> {
        if let Start::Stored(s) = &start {
            if let Some((fd, meta, path)) = find_stored(&self.rule, s, dir) {
                let offset = if meta.size < s.offset { 0 } else { s.offset };
                self.parser.reset(offset, false);
                // Unknown current file (the server cannot be asked): follow this one by name.
                let live = current
                    .and_then(inode_at)
                    .is_none_or(|c| c == (meta.dev, meta.ino));
                report.events.push(format!(
                    "resuming {} at stored offset {offset}",
                    path.display()
                ));
                self.cur = Some(Open {
                    file: file_ref(&fd, path, &meta)?,
                    fd,
                    draining: !live,
                    settle: true,
                    last_size: u64::MAX,
                });
                return Ok(());
            }
            report.stored_lost = Some(s.file.path.clone());
            // Everything in the current file came after the stored position.
            return self.open_start(Start::Beginning, current, dir, report);
        }
        let Some(c) = current else {
            self.start = Some(start);
            return Ok(());
        };
        let Some((fd, meta)) = open_if_exists(&self.rule, c)? else {
            self.start = Some(start);
            return Ok(());
        };
        let pos = match start {
            Start::End => meta.size,
            Start::Tail(n) => meta.size.saturating_sub(n),
            Start::Beginning | Start::Stored(_) => 0,
        };
        let mid_line = pos > 0 && {
            let mut b = [0u8; 1];
            !matches!(pread(&fd, &mut b, pos - 1), Ok(1) if b[0] == b'\n')
        };
        self.parser.reset(pos, mid_line);
        report
            .events
            .push(format!("reading {} from offset {pos}", c.display()));
        self.cur = Some(Open {
            file: file_ref(&fd, c.to_path_buf(), &meta)?,
            fd,
            draining: false,
            settle: false,
            last_size: meta.size,
        });
        Ok(())
    }
}

fn file_ref(fd: &OwnedFd, path: PathBuf, meta: &Meta) -> Result<Rc<FileRef>, String> {
    let fingerprint = head_fingerprint(fd, FINGERPRINT_BYTES).map_err(|e| open_error(&path, e))?;
    Ok(Rc::new(FileRef {
        id: FileId {
            path,
            dev: meta.dev,
            ino: meta.ino,
        },
        fingerprint,
    }))
}

/// Opens `path`; `None` when it does not exist.
fn open_if_exists(rule: &Rule, path: &Path) -> Result<Option<(OwnedFd, Meta)>, String> {
    match contain::open(rule, path) {
        Ok(x) => Ok(Some(x)),
        Err(e) if e.not_found() => Ok(None),
        Err(_) => open(rule, path).map(Some),
    }
}

/// The stored file, under its name or, rotated, under another name in its directory or the
/// log directory: same device, inode and first bytes.
fn find_stored(rule: &Rule, s: &Stored, dir: Option<&DirScan>) -> Option<(OwnedFd, Meta, PathBuf)> {
    let matches = |p: &Path| -> Option<(OwnedFd, Meta)> {
        let (fd, meta) = contain::open(rule, p).ok()?;
        (s.file.same_inode(meta.dev, meta.ino)
            && meta.size >= u64::from(s.fingerprint.len)
            && head_fingerprint(&fd, s.fingerprint.len as usize).ok()? == s.fingerprint)
            .then_some((fd, meta))
    };
    if inode_at(&s.file.path).is_some_and(|(d, i)| s.file.same_inode(d, i))
        && let Some((fd, meta)) = matches(&s.file.path)
    {
        return Some((fd, meta, s.file.path.clone()));
    }
    let dirs = [
        s.file.path.parent().map(Path::to_path_buf),
        dir.map(|d| d.dir.clone()),
    ];
    for d in dirs.iter().flatten() {
        let Ok(entries) = logfile::read_dir(d) else {
            continue;
        };
        for e in entries {
            let Some(md) = e.lstat_regular() else {
                continue;
            };
            if s.file.same_inode(md.dev, md.ino) {
                let p = e.path();
                if let Some((fd, meta)) = matches(&p) {
                    return Some((fd, meta, p));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: (u64, u64) = (1, 10);
    const B: (u64, u64) = (1, 11);

    #[test]
    fn rotation_decisions() {
        // Still the file being written.
        assert_eq!(check(A, 100, 150, true, Some(A), Some(A)), Check::Keep);
        assert_eq!(check(A, 100, 150, true, Some(A), None), Check::Keep);
        // copytruncate: smaller than what was read, or other first bytes.
        assert_eq!(check(A, 100, 20, true, Some(A), Some(A)), Check::Restart);
        assert_eq!(check(A, 100, 150, false, Some(A), Some(A)), Check::Restart);
        // Renamed away or deleted, and another file at the name.
        assert_eq!(check(A, 100, 150, true, Some(B), Some(B)), Check::Replaced);
        assert_eq!(check(A, 100, 150, true, Some(B), None), Check::Replaced);
        // Renamed or deleted with nothing in its place yet: its writer still holds it.
        assert_eq!(check(A, 100, 150, true, None, None), Check::Keep);
        // The server announces another file.
        assert_eq!(check(A, 100, 150, true, Some(A), Some(B)), Check::Replaced);
        // Renamed, but it is still the current one (a directory's newest file).
        assert_eq!(check(A, 100, 150, true, None, Some(A)), Check::Keep);
    }

    #[test]
    fn successors_in_mtime_order_an_unlisted_current_last() {
        let p = |s: &str| PathBuf::from(s);
        let files = vec![
            ((30, 0), p("/l/c.log")),
            ((10, 0), p("/l/old.log")),
            ((20, 5), p("/l/b.log")),
            ((20, 5), p("/l/a.log")),
            ((40, 0), p("/l/cur.log")),
        ];
        assert_eq!(
            order_successors(files.clone(), (20, 0), Some(Path::new("/l/cur.log"))),
            vec![p("/l/a.log"), p("/l/b.log"), p("/l/c.log"), p("/l/cur.log")]
        );
        // A stale current (the server rotated since it was asked) keeps its mtime place.
        assert_eq!(
            order_successors(files.clone(), (20, 0), Some(Path::new("/l/b.log"))),
            vec![p("/l/a.log"), p("/l/b.log"), p("/l/c.log"), p("/l/cur.log")]
        );
        // The current file outside the directory still comes last.
        assert_eq!(
            order_successors(files, (35, 0), Some(Path::new("/x/cur.log"))),
            vec![p("/l/cur.log"), p("/x/cur.log")]
        );
    }

    use crate::collect::tests_support::TempDir;
    use crate::pg_log_format::{Format, ParseSettings};
    use std::io::Write;

    fn parser() -> Parser {
        Parser::new(ParseSettings {
            format: Format::Stderr,
            log_line_prefix: "%m [%p] ".into(),
            zone: crate::tz::Zone::utc(),
            min_level: crate::config::PgSeverity::Debug5,
            max_message_bytes: 8192,
            max_entry_bytes: 64 * 1024,
        })
        .unwrap()
    }

    fn line(n: u32) -> String {
        format!(
            "2026-11-28 01:{:02}:{:02}.000 UTC [42] LOG:  entry {n}\n",
            n / 60 % 60,
            n % 60
        )
    }

    fn append(p: &Path, range: std::ops::Range<u32>) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        for n in range {
            f.write_all(line(n).as_bytes()).unwrap();
        }
    }

    /// Steps `times` collections, returning the entry numbers read with their end offsets.
    fn steps(
        t: &mut Tail,
        current: Option<&Path>,
        dir: Option<&DirScan>,
        limit: usize,
        times: usize,
    ) -> Vec<u32> {
        let mut got = Vec::new();
        for _ in 0..times {
            t.step(current, dir, limit, &mut |_, e, _| {
                let n = e.message.trim_start_matches("entry ").parse().unwrap();
                got.push(n);
            })
            .unwrap();
        }
        got
    }

    fn all(r: std::ops::Range<u32>) -> Vec<u32> {
        r.collect()
    }

    #[test]
    fn starts_at_the_end_and_reads_what_comes_once() {
        let d = TempDir::new();
        let p = d.path().join("pg.log");
        append(&p, 0..5);
        let mut t = Tail::new(parser(), Start::End);
        assert_eq!(steps(&mut t, Some(&p), None, 100, 2), Vec::<u32>::new());
        append(&p, 5..9);
        // A partial line waits for its end.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"2026-11-28 01:00:09.000 UTC [42] LOG:  ent")
            .unwrap();
        // Entry 8 may still get continuation lines: it ends when the next line is whole.
        assert_eq!(steps(&mut t, Some(&p), None, 100, 3), all(5..8));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"ry 9\n")
            .unwrap();
        assert_eq!(steps(&mut t, Some(&p), None, 100, 3), vec![8, 9]);
        let (file, off) = t.position().unwrap();
        assert_eq!(off, std::fs::metadata(&p).unwrap().len());
        assert_eq!(file.id.path, p);
    }

    #[test]
    fn once_reads_the_last_bytes_from_a_line_start() {
        let d = TempDir::new();
        let p = d.path().join("pg.log");
        append(&p, 0..3000);
        let mut t = Tail::new(parser(), Start::Tail(ONCE_TAIL));
        let got = steps(&mut t, Some(&p), None, 10_000, 2);
        assert_eq!(*got.last().unwrap(), 2999);
        let first = got[0];
        assert_eq!(
            got,
            all(first..3000),
            "whole entries, in order, from a line start"
        );
        assert!(got.len() * line(2999).len() <= ONCE_TAIL as usize);
    }

    #[test]
    fn rename_rotation_finishes_the_old_file_then_reads_the_new_one() {
        let d = TempDir::new();
        let p = d.path().join("pg.log");
        append(&p, 0..3);
        let mut t = Tail::new(parser(), Start::Beginning);
        let mut got = steps(&mut t, Some(&p), None, 100, 1);
        // logrotate: rename, the writer still writes to the old file, then a new file.
        std::fs::rename(&p, d.path().join("pg.log.1")).unwrap();
        append(&d.path().join("pg.log.1"), 3..6);
        got.extend(steps(&mut t, Some(&p), None, 100, 1));
        append(&d.path().join("pg.log.1"), 6..8);
        append(&p, 8..12);
        got.extend(steps(&mut t, Some(&p), None, 100, 4));
        assert_eq!(got, all(0..12));
    }

    #[test]
    fn copytruncate_starts_again_at_zero() {
        let d = TempDir::new();
        let p = d.path().join("pg.log");
        append(&p, 0..10);
        let mut t = Tail::new(parser(), Start::Beginning);
        let mut got = steps(&mut t, Some(&p), None, 100, 2);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&p, 10..12);
        got.extend(steps(&mut t, Some(&p), None, 100, 2));
        // Truncated and written past the old offset before the next look: the first bytes
        // changed, so it is read from 0 as well.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&p, 100..130);
        got.extend(steps(&mut t, Some(&p), None, 100, 2));
        let mut want = all(0..12);
        want.extend(100..130);
        assert_eq!(got, want);
    }

    #[test]
    fn a_deleted_file_is_finished_through_the_descriptor() {
        let d = TempDir::new();
        let p = d.path().join("pg.log");
        append(&p, 0..3);
        let mut writer = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        let mut t = Tail::new(parser(), Start::Beginning);
        let mut got = steps(&mut t, Some(&p), None, 100, 1);
        std::fs::remove_file(&p).unwrap();
        writer.write_all(line(3).as_bytes()).unwrap();
        got.extend(steps(&mut t, Some(&p), None, 100, 3));
        assert_eq!(got, all(0..4));
        drop(writer);
        append(&p, 4..6);
        got.extend(steps(&mut t, Some(&p), None, 100, 3));
        assert_eq!(got, all(0..6), "a new file at the name is read from 0");
    }

    #[test]
    fn a_directory_with_several_rotations_between_two_looks() {
        let d = TempDir::new();
        let scan = DirScan {
            dir: d.path().to_path_buf(),
            filter: super::super::discover::Filter::Glob("*.log".into()),
        };
        let a = d.path().join("a.log");
        append(&a, 0..3);
        std::fs::write(d.path().join("old.log.1.gz"), "not a log").unwrap();
        let mut t = Tail::new(parser(), Start::Beginning);
        let mut got = steps(&mut t, Some(&a), Some(&scan), 100, 1);
        append(&a, 3..5);
        let b = d.path().join("b.log");
        append(&b, 5..8);
        let c = d.path().join("c.log");
        append(&c, 8..10);
        got.extend(steps(&mut t, Some(&c), Some(&scan), 100, 4));
        append(&c, 10..11);
        got.extend(steps(&mut t, Some(&c), Some(&scan), 100, 2));
        assert_eq!(got, all(0..11));
    }

    #[test]
    fn max_entries_leaves_the_rest_for_the_next_collection() {
        let d = TempDir::new();
        let p = d.path().join("pg.log");
        append(&p, 0..10);
        let mut t = Tail::new(parser(), Start::Beginning);
        assert_eq!(steps(&mut t, Some(&p), None, 3, 1), all(0..3));
        assert_eq!(steps(&mut t, Some(&p), None, 3, 1), all(3..6));
        assert_eq!(steps(&mut t, Some(&p), None, 100, 2), all(6..10));
    }

    #[test]
    fn a_stored_offset_in_a_rotated_file_is_found_by_inode() {
        let d = TempDir::new();
        let p = d.path().join("pg.log");
        append(&p, 0..4);
        let mut t = Tail::new(parser(), Start::Beginning);
        let mut got = Vec::new();
        t.step(Some(&p), None, 2, &mut |_, e, _| got.push(e.message))
            .unwrap();
        let (file, offset) = t.position().unwrap();
        let stored = Stored {
            file: file.id.clone(),
            fingerprint: file.fingerprint,
            offset,
        };
        drop(t);
        // While the collector is down: rotated by rename, a new file written.
        std::fs::rename(&p, d.path().join("pg.log.1")).unwrap();
        append(&p, 4..6);
        let mut t = Tail::new(parser(), Start::Stored(stored));
        assert_eq!(steps(&mut t, Some(&p), None, 100, 4), all(2..6));
    }

    #[test]
    fn a_line_longer_than_the_buffer_does_not_stop_the_reader() {
        let d = TempDir::new();
        let p = d.path().join("pg.log");
        append(&p, 0..1);
        let long = format!(
            "2026-11-28 01:00:01.000 UTC [42] LOG:  entry 1 {}\n",
            "x".repeat(3 * READ_BUF)
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(long.as_bytes())
            .unwrap();
        append(&p, 2..4);
        let mut t = Tail::new(parser(), Start::Beginning);
        let mut got = Vec::new();
        for _ in 0..3 {
            t.step(Some(&p), None, 100, &mut |_, e, _| {
                got.push((e.message.len().min(20), e.truncated))
            })
            .unwrap();
        }
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[1].1, "the long entry is marked truncated");
        assert!(!got[0].1 && !got[2].1 && !got[3].1);
    }

    #[test]
    fn a_renamed_file_with_nothing_in_its_place_is_read_on() {
        let d = TempDir::new();
        let p = d.path().join("pg.log");
        let moved = d.path().join("pg.log.1");
        append(&p, 0..3);
        let mut t = Tail::new(parser(), Start::Beginning);
        let mut got = steps(&mut t, Some(&p), None, 100, 1);
        std::fs::rename(&p, &moved).unwrap();
        got.extend(steps(&mut t, Some(&p), None, 100, 3));
        assert_eq!(got, all(0..3));
        assert!(t.file().is_some(), "not finished: nothing took its place");
        // Its writer goes on writing it after quiet collections (PostgreSQL until it rotates).
        append(&moved, 3..6);
        got.extend(steps(&mut t, Some(&p), None, 100, 3));
        assert_eq!(got, all(0..6), "nothing read twice, nothing lost");
        // Announced as current under its new name: still the same file.
        append(&moved, 6..8);
        got.extend(steps(&mut t, Some(&moved), None, 100, 3));
        // A new file at the old name: the renamed one is finished, the new one read from 0.
        append(&p, 8..10);
        got.extend(steps(&mut t, Some(&p), None, 100, 4));
        assert_eq!(got, all(0..10), "nothing read twice, nothing lost");
    }

    #[test]
    fn a_stored_file_is_followed_by_name_while_the_current_one_is_unknown() {
        let d = TempDir::new();
        let p = d.path().join("pg.log");
        append(&p, 0..3);
        let mut t = Tail::new(parser(), Start::Beginning);
        let mut got = steps(&mut t, Some(&p), None, 100, 2);
        let (file, offset) = t.position().unwrap();
        let stored = Stored {
            file: file.id.clone(),
            fingerprint: file.fingerprint,
            offset,
        };
        let mut t = Tail::new(parser(), Start::Stored(stored));
        append(&p, 3..5);
        got.extend(steps(&mut t, None, None, 100, 4));
        append(&p, 5..6);
        got.extend(steps(&mut t, None, None, 100, 2));
        assert_eq!(got, all(0..6));
    }
}
