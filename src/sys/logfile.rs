//! The files the `pg_log` tailer follows: open, `fstat`, `stat`, `pread`, and the listing of a
//! log directory.
//!
//! What this does: the syscalls under [`crate::collect::pg::pg_log`]'s tailer and discovery,
//! each a thin function named after the call, with `EINTR` restarted. What it does not do:
//! decide anything: whether a file was rotated, truncated or replaced is decided from the
//! [`Meta`] returned here by the tailer's pure `check` and `order_successors`.
//!
//! A file is opened `O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW` (a FIFO in the log
//! directory must not block the one thread, a symbolic link is not followed), either by path
//! ([`open_nofollow`]) or inside a directory opened `O_DIRECTORY` ([`open_at`], after
//! [`stat_at`]); which to use and what to accept is decided by the pg_log collector's
//! `contain`. The descriptor keeps a renamed or deleted file readable.

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

    /// `lstat(2)` of the entry (a symbolic link is not followed): `None` unless a regular file.
    pub fn lstat_regular(&self) -> Option<Meta> {
        let md = self.0.metadata().ok()?;
        md.is_file().then(|| Meta::of(&md))
    }
}

/// What a file is, as `st_mode` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    /// A character or block device, a socket.
    Other,
}

/// What `fstatat(2)`/`fstat(2)` tell of a file for the containment rules: its kind, owner and
/// identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned {
    pub kind: Kind,
    pub uid: u32,
    pub dev: u64,
    pub ino: u64,
}

fn owned(st: &rustix::fs::Stat) -> Owned {
    use rustix::fs::FileType;
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Kind::Regular,
        FileType::Directory => Kind::Directory,
        FileType::Symlink => Kind::Symlink,
        FileType::Fifo => Kind::Fifo,
        _ => Kind::Other,
    };
    Owned {
        kind,
        uid: st.st_uid,
        dev: st.st_dev,
        ino: st.st_ino,
    }
}

/// `open(2)` of a directory with `O_DIRECTORY` (`O_PATH` would do, but reading it is fine):
/// the anchor of [`stat_at`] and [`open_at`].
pub fn open_dir(dir: &Path) -> Result<OwnedFd, Errno> {
    rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
}

/// `fstatat(2)` of `name` in `dir` with `AT_SYMLINK_NOFOLLOW`: a symbolic link is described,
/// not followed.
pub fn stat_at(dir: &OwnedFd, name: &std::ffi::OsStr) -> Result<Owned, Errno> {
    let st = rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(owned(&st))
}

/// `openat(2)` of `name` in `dir` with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` (a FIFO cannot
/// block, a symbolic link is not followed), then `fstat(2)` of what was opened.
pub fn open_at(dir: &OwnedFd, name: &std::ffi::OsStr) -> Result<(OwnedFd, Meta, Owned), Errno> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    let meta = fstat(&fd)?;
    Ok((fd, meta, owned(&st)))
}

/// `open(2)` of `path` with `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` (the last component is not
/// followed when it is a symbolic link: `ELOOP`), then `fstat(2)`.
pub fn open_nofollow(path: &Path) -> Result<(OwnedFd, Meta, Owned), Errno> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    let meta = fstat(&fd)?;
    Ok((fd, meta, owned(&st)))
}

/// `stat(2)` of `path` (following links): its owner's uid.
pub fn owner_of(path: &Path) -> Option<u32> {
    rustix::fs::stat(path).ok().map(|st| st.st_uid)
}

/// `geteuid(2)`.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Reads an open file into `buf` from offset 0; `Ok(None)` when it holds more than `buf`.
pub fn read_all_capped<'b>(fd: &OwnedFd, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, Errno> {
    let n = pread_full(fd, buf, 0)?;
    if n == buf.len() {
        let mut probe = [0u8; 1];
        if pread(fd, &mut probe, n as u64)? > 0 {
            return Ok(None);
        }
    }
    Ok(buf.get(..n))
}
