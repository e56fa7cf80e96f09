//! The files the `pg_log` tailer follows: open, `fstat`, `stat`, `pread`, and the listing of a
//! log directory.
//!
//! What this does: the syscalls under [`crate::collect::pg::pg_log`]'s tailer and discovery,
//! each a thin function named after the call, with `EINTR` restarted. What it does not do:
//! decide anything: whether a file was rotated, truncated or replaced is decided from the
//! [`Meta`] returned here by the tailer's pure `check` and `order_successors`.
//!
//! A file is opened `O_RDONLY | O_CLOEXEC | O_NONBLOCK` (a FIFO in the log directory must not
//! block the one thread); the descriptor keeps a renamed or deleted file readable.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

pub use rustix::fd::OwnedFd;
pub use rustix::io::Errno;

/// What `fstat`/`stat` tell of a file: its identity, size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
}

impl Meta {
    fn of(md: &std::fs::Metadata) -> Meta {
        Meta {
            dev: md.dev(),
            ino: md.ino(),
            size: md.len(),
            mtime: (md.mtime(), md.mtime_nsec()),
        }
    }
}

/// `open(2)` for reading, then `fstat(2)` of what was opened.
pub fn open(path: &Path) -> Result<(OwnedFd, Meta), Errno> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    let meta = fstat(&fd)?;
    Ok((fd, meta))
}

/// `fstat(2)`.
pub fn fstat(fd: &OwnedFd) -> Result<Meta, Errno> {
    let st = rustix::fs::fstat(fd)?;
    Ok(Meta {
        dev: st.st_dev,
        ino: st.st_ino,
        size: u64::try_from(st.st_size).unwrap_or(0),
        mtime: (st.st_mtime, i64::try_from(st.st_mtime_nsec).unwrap_or(0)),
    })
}

/// `stat(2)` of `path`: its device and inode when it is a regular file.
pub fn inode_at(path: &Path) -> Option<(u64, u64)> {
    let st = rustix::fs::stat(path).ok()?;
    ((st.st_mode & 0o170000) == 0o100000).then_some((st.st_dev, st.st_ino))
}

/// `pread(2)` that restarts on `EINTR`.
pub fn pread(fd: &OwnedFd, buf: &mut [u8], at: u64) -> Result<usize, Errno> {
    loop {
        match rustix::io::pread(fd, &mut *buf, at) {
            Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

/// Fills `buf` from `at` as far as the file goes.
pub fn pread_full(fd: &OwnedFd, buf: &mut [u8], at: u64) -> Result<usize, Errno> {
    let mut n = 0;
    while n < buf.len() {
        let got = pread(fd, &mut buf[n..], at + n as u64)?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

/// The entries of `dir` (`readdir(3)`); an entry that cannot be read is skipped.
pub fn read_dir(dir: &Path) -> std::io::Result<impl Iterator<Item = DirEntry>> {
    Ok(std::fs::read_dir(dir)?.flatten().map(DirEntry))
}

/// One entry of [`read_dir`].
pub struct DirEntry(std::fs::DirEntry);

impl DirEntry {
    pub fn name(&self) -> OsString {
        self.0.file_name()
    }

    pub fn path(&self) -> PathBuf {
        self.0.path()
    }

    /// `stat(2)` of the entry, following a symbolic link: `None` unless a regular file.
    pub fn stat_regular(&self) -> Option<Meta> {
        let md = std::fs::metadata(self.0.path()).ok()?;
        md.is_file().then(|| Meta::of(&md))
    }

    /// `lstat(2)` of the entry (a symbolic link is not followed): `None` unless a regular file.
    pub fn lstat_regular(&self) -> Option<Meta> {
        let md = self.0.metadata().ok()?;
        md.is_file().then(|| Meta::of(&md))
    }
}
