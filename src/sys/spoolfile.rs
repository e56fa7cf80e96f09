//! The file calls of the outage spool and of the state directory's lock: an append-only
//! segment file (write, fsync, truncate back), the directory listing and removal, and the
//! `flock` on `<state_dir>/lock`. Decisions (which segment, when to fsync, what a failure
//! means) are the spool's (`push::spool`); this is only the syscalls, through rustix.

use rustix::fd::OwnedFd;
use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use std::path::{Path, PathBuf};

fn io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

/// A segment opened for appending (mode 0600, never through a symlink).
pub struct AppendFile {
    fd: OwnedFd,
    len: u64,
}

impl AppendFile {
    /// Opens `path` for appending, creating it when missing.
    pub fn open(path: &Path) -> std::io::Result<AppendFile> {
        let fd = rustix::fs::open(
            path,
            OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io)?;
        let len = rustix::fs::fstat(&fd).map_err(io)?.st_size as u64;
        Ok(AppendFile { fd, len })
    }

    /// Bytes in the file (as far as this handle wrote or found them).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends all of `bytes`; on an error the file may hold part of them ([`Self::truncate`]).
    pub fn append(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            match rustix::io::write(&self.fd, bytes) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    bytes = &bytes[n..];
                    self.len += n as u64;
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(io(e)),
            }
        }
        Ok(())
    }

    /// `fdatasync`: the appended bytes are on the disk when it returns.
    pub fn sync(&self) -> std::io::Result<()> {
        rustix::fs::fdatasync(&self.fd).map_err(io)
    }

    /// Cuts the file back to `len` bytes (a failed append undone).
    pub fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        rustix::fs::ftruncate(&self.fd, len).map_err(io)?;
        self.len = len;
        Ok(())
    }
}

/// Creates `dir` with mode 0700 when it does not exist.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    match rustix::fs::mkdir(dir, Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// `fsync` of a directory: the names created in it are on the disk when it returns.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io)?;
    rustix::fs::fsync(&fd).map_err(io)
}

/// The names in `dir` (none when it does not exist).
pub fn list_dir(dir: &Path) -> std::io::Result<Vec<String>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Removes a file; one that is already gone is fine.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match rustix::fs::unlink(path) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Size of a file, `None` when it does not exist.
pub fn size(path: &Path) -> Option<u64> {
    rustix::fs::lstat(path).ok().map(|s| s.st_size as u64)
}

/// Cuts the file at `path` to `len` bytes.
pub fn truncate(path: &Path, len: u64) -> std::io::Result<()> {
    let fd = rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io)?;
    rustix::fs::ftruncate(&fd, len).map_err(io)?;
    rustix::fs::fdatasync(&fd).map_err(io)
}

/// An exclusive `flock` held for the life of the process (or of this value).
#[derive(Debug)]
pub struct DirLock {
    _fd: OwnedFd,
    pub path: PathBuf,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; the pid it wrote, when readable.
    Held(Option<u32>),
    Io(std::io::Error),
}

/// Takes the exclusive lock on `path` without waiting, and writes this process's pid into the
/// file (for the message of the next one). A read-only file system still locks an existing
/// file.
pub fn lock_exclusive(path: &Path) -> Result<DirLock, LockError> {
    let flags = OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(0o600);
    let (fd, writable) = match rustix::fs::open(path, flags | OFlags::RDWR, mode) {
        Ok(fd) => (fd, true),
        Err(Errno::ROFS) => (
            rustix::fs::open(
                path,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                mode,
            )
            .map_err(|e| LockError::Io(io(e)))?,
            false,
        ),
        Err(e) => return Err(LockError::Io(io(e))),
    };
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => {
            let pid = std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            return Err(LockError::Held(pid));
        }
        Err(e) => return Err(LockError::Io(io(e))),
    }
    if writable {
        let pid = format!("{}\n", std::process::id());
        // The pid is a courtesy for the message of a second `run`: failing to write it is not
        // a reason to stop.
        if rustix::fs::ftruncate(&fd, 0).is_ok() {
            let _ = rustix::io::pwrite(&fd, pid.as_bytes(), 0);
        }
    }
    Ok(DirLock {
        _fd: fd,
        path: path.to_path_buf(),
    })
}

/// Reads `len` bytes at `offset` of `path` at most (fewer at the end of the file).
pub fn read_at(path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io)?;
    let mut out = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match rustix::io::pread(&fd, &mut out[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(io(e)),
        }
    }
    out.truncate(got);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_truncate_and_a_second_lock_is_refused_with_the_pid() {
        let dir = std::env::temp_dir().join(format!("pgac-spoolfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        create_private_dir(&dir).unwrap();
        create_private_dir(&dir).unwrap();
        let p = dir.join("seg");
        let mut f = AppendFile::open(&p).unwrap();
        f.append(b"hello ").unwrap();
        f.append(b"world").unwrap();
        f.sync().unwrap();
        assert_eq!(f.len(), 11);
        f.truncate(5).unwrap();
        f.append(b"!").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hello!");
        assert_eq!(read_at(&p, 1, 3).unwrap(), b"ell");
        assert_eq!(read_at(&p, 4, 100).unwrap(), b"o!");
        assert_eq!(AppendFile::open(&p).unwrap().len(), 6);
        assert_eq!(list_dir(&dir).unwrap(), vec!["seg".to_string()]);
        remove(&p).unwrap();
        remove(&p).unwrap();
        assert!(list_dir(&dir.join("none")).unwrap().is_empty());

        let lock = dir.join("lock");
        let held = lock_exclusive(&lock).unwrap();
        // flock locks belong to the open file description: a second open conflicts even in
        // the same process.
        match lock_exclusive(&lock) {
            Err(LockError::Held(pid)) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(held);
        let _again = lock_exclusive(&lock).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
