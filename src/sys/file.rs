//! Fixed-buffer file reader: the only I/O under [`crate::sys::procfs`].
//!
//! What this does: open a file with rustix (`O_RDONLY | O_CLOEXEC`), read it to EOF through one
//! reusable buffer of [`LINE_BUF`] bytes and hand out its lines, or read a small file whole into
//! a caller buffer. What it does not do: parse (the pure parsers in `procfs` do), allocate while
//! reading (the buffer is allocated once, in [`LineReader::new`]), or grow: a line that does not
//! fit the buffer is reported as [`Line::Long`] with its first bytes, the rest of it is skipped.
//! /proc files are generated on each `read`, so reads are done until `read` returns 0, and a
//! read interrupted by a signal (`EINTR`) is restarted.
//!
//! A file read every cycle is a [`ProcFile`]: opened once and re-read with `pread` from offset
//! 0, which makes the kernel generate it anew. That halves the syscalls of a host cycle (no
//! `open`/`close` per file and cycle). A descriptor whose read fails is closed, and the file
//! is opened anew at the next read.
//!
//! Beside the /proc reader, the file calls of the layers above that have no room of their own:
//! [`read`] and [`read_capped`] (a file read whole once: the stored log offsets, a TZif zone)
//! and [`write_private`] (a state file, atomically).

use core::ffi::CStr;
use core::fmt;

use std::ffi::CString;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::time::Timespec;

// LINE_BUF: bytes of the read buffer every /proc file is streamed through, the parsers'
// longest line.
use crate::sys::procfs::{LINE_BUF, LineParser};

/// Why reading a file failed. The caller adds the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileError<E> {
    /// `open` failed.
    Open(Errno),
    /// `read` failed (other than `EINTR`, which is retried).
    Read(Errno),
    /// The parser rejected a line.
    Parse(E),
    /// The file does not fit the caller's buffer ([`read_small`] only).
    TooLarge,
}

impl<E: fmt::Display> fmt::Display for FileError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Open(e) => write!(f, "open: {e}"),
            FileError::Read(e) => write!(f, "read: {e}"),
            FileError::Parse(e) => write!(f, "parse: {e}"),
            FileError::TooLarge => f.write_str("file larger than its buffer"),
        }
    }
}

/// One line handed out by [`LineReader::for_each_line`], without its '\n'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A whole line.
    Full(&'a [u8]),
    /// The first [`LINE_BUF`] bytes of a line of `LINE_BUF` bytes or more; the rest is skipped.
    Long(&'a [u8]),
}

/// A reusable fixed buffer that streams a file line by line.
pub struct LineReader {
    /// Bytes read from the file; between reads `buf[..filled]` holds the start of a line that
    /// has not been completed yet (never a '\n').
    buf: Box<[u8; LINE_BUF]>,
}

impl Default for LineReader {
    fn default() -> Self {
        Self::new()
    }
}

impl LineReader {
    /// Allocates the buffer (the only allocation; reuse the reader).
    pub fn new() -> Self {
        LineReader {
            buf: Box::new([0; LINE_BUF]),
        }
    }

    /// Opens `path` (O_RDONLY|O_CLOEXEC with rustix), reads it to EOF through the buffer, feeds each complete line to `parser.line`,
    /// a line longer than the buffer to `parser.long_line` with its first LINE_BUF bytes (then skips the rest up to '\n'),
    /// and a last line without '\n' too. Restarts reads interrupted by EINTR. No heap allocation.
    ///
    /// "Longer than the buffer" means `LINE_BUF` bytes or more, not counting the '\n'.
    pub fn read_lines<P: LineParser>(
        &mut self,
        path: &CStr,
        parser: &mut P,
    ) -> Result<(), FileError<P::Error>> {
        self.for_each_line(path, |line| match line {
            Line::Full(l) => parser.line(l),
            Line::Long(prefix) => parser.long_line(prefix),
        })
    }

    /// Same as [`LineReader::read_lines`], but calls a closure per line (used for mountinfo,
    /// whose lines are handled as they come). Stops at the closure's first error.
    pub fn for_each_line<E>(
        &mut self,
        path: &CStr,
        f: impl FnMut(Line<'_>) -> Result<(), E>,
    ) -> Result<(), FileError<E>> {
        let fd = open(path)?;
        self.stream(|buf| read_retry(&fd, buf), f)
    }

    /// [`LineReader::read_lines`] on a kept-open [`ProcFile`].
    pub fn read_file_lines<P: LineParser>(
        &mut self,
        file: &mut ProcFile,
        parser: &mut P,
    ) -> Result<(), FileError<P::Error>> {
        self.for_each_file_line(file, |line| match line {
            Line::Full(l) => parser.line(l),
            Line::Long(prefix) => parser.long_line(prefix),
        })
    }

    /// [`LineReader::for_each_line`] on a kept-open [`ProcFile`].
    pub fn for_each_file_line<E>(
        &mut self,
        file: &mut ProcFile,
        f: impl FnMut(Line<'_>) -> Result<(), E>,
    ) -> Result<(), FileError<E>> {
        let fd = file.descriptor()?;
        let mut offset = 0u64;
        let r = self.stream(
            |buf| {
                let n = pread_retry(fd, buf, offset)?;
                offset += n as u64;
                Ok(n)
            },
            f,
        );
        if matches!(r, Err(FileError::Read(_))) {
            // Open it anew next time: the descriptor may have gone stale.
            file.fd = None;
        }
        r
    }

    /// Hands out the lines of what `next` reads (`Ok(0)` = end of file). Public so that the
    /// fuzz targets drive the production line splitting from memory.
    pub fn stream<E>(
        &mut self,
        mut next: impl FnMut(&mut [u8]) -> Result<usize, Errno>,
        mut f: impl FnMut(Line<'_>) -> Result<(), E>,
    ) -> Result<(), FileError<E>> {
        let buf: &mut [u8; LINE_BUF] = &mut self.buf;
        // Invariants at the top of the loop: `buf[..filled]` holds no '\n'; `skipping` is set
        // while the rest of a long line is being thrown away.
        let mut filled = 0usize;
        let mut skipping = false;
        loop {
            let n = next(buf.get_mut(filled..).unwrap_or(&mut [])).map_err(FileError::Read)?;
            if n == 0 {
                if !skipping && filled > 0 {
                    f(Line::Full(buf.get(..filled).unwrap_or(&[]))).map_err(FileError::Parse)?;
                }
                return Ok(());
            }
            let end = filled.saturating_add(n).min(LINE_BUF);
            // Hand out every complete line in buf[..end].
            let mut start = 0usize;
            while let Some(pos) = buf
                .get(start..end)
                .and_then(|b| b.iter().position(|&c| c == b'\n'))
            {
                let line_end = start + pos;
                if skipping {
                    skipping = false;
                } else {
                    f(Line::Full(buf.get(start..line_end).unwrap_or(&[])))
                        .map_err(FileError::Parse)?;
                }
                start = line_end + 1;
            }
            if skipping {
                // Still inside a long line: drop what was read of it.
                filled = 0;
            } else if start == 0 && end == LINE_BUF {
                // A full buffer without '\n': the line does not fit.
                f(Line::Long(&buf[..])).map_err(FileError::Parse)?;
                skipping = true;
                filled = 0;
            } else {
                // Keep the unfinished line at the start of the buffer.
                buf.copy_within(start..end, 0);
                filled = end - start;
            }
        }
    }
}

/// Reads a small file whole into `buf` (one file that must fit: /proc/loadavg, /proc/self/stat); bigger → FileError::TooLarge.
pub fn read_small<'b>(
    path: &CStr,
    buf: &'b mut [u8],
) -> Result<&'b [u8], FileError<core::convert::Infallible>> {
    let fd = open(path)?;
    small(|b| read_retry(&fd, b), buf)
}

/// [`read_small`] on a kept-open [`ProcFile`].
pub fn read_small_file<'b>(
    file: &mut ProcFile,
    buf: &'b mut [u8],
) -> Result<&'b [u8], FileError<core::convert::Infallible>> {
    let fd = file.descriptor()?;
    let mut offset = 0u64;
    let r = small(
        |b| {
            let n = pread_retry(fd, b, offset)?;
            offset += n as u64;
            Ok(n)
        },
        buf,
    );
    if matches!(r, Err(FileError::Read(_))) {
        file.fd = None;
    }
    r
}

fn small(
    mut next: impl FnMut(&mut [u8]) -> Result<usize, Errno>,
    buf: &mut [u8],
) -> Result<&[u8], FileError<core::convert::Infallible>> {
    let mut filled = 0usize;
    loop {
        let Some(free) = buf.get_mut(filled..).filter(|b| !b.is_empty()) else {
            // Full: the file fits only if it ends here.
            let mut probe = [0u8; 1];
            return match next(&mut probe).map_err(FileError::Read)? {
                0 => Ok(buf),
                _ => Err(FileError::TooLarge),
            };
        };
        match next(free).map_err(FileError::Read)? {
            0 => return Ok(buf.get(..filled).unwrap_or(&[])),
            n => filled = filled.saturating_add(n),
        }
    }
}

/// Whether anything is at `path` (`stat(2)`, following a symbolic link).
pub fn exists(path: &std::path::Path) -> bool {
    path.exists()
}

/// Whether `path` is a directory (`stat(2)`, following a symbolic link).
pub fn is_dir(path: &std::path::Path) -> bool {
    path.is_dir()
}

/// What `stat(2)` (following a symbolic link) says of a file's kind and permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode {
    /// A regular file.
    pub regular: bool,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
}

/// `stat(2)` of `path`: its kind and mode (`None` when it cannot be stat'ed).
pub fn file_mode(path: &std::path::Path) -> Option<FileMode> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(FileMode {
        regular: meta.is_file(),
        mode: meta.mode(),
    })
}

/// `access(2)` with `F_OK`: `Ok` when `path` exists (a C string, so nothing is allocated).
pub fn access_exists(path: &CStr) -> Result<(), Errno> {
    rustix::fs::access(path, rustix::fs::Access::EXISTS)
}

/// A file read every cycle: the path, and its descriptor once opened.
pub struct ProcFile {
    path: CString,
    fd: Option<OwnedFd>,
}

impl ProcFile {
    /// Nothing is opened until the first read.
    pub fn new(path: CString) -> ProcFile {
        ProcFile { path, fd: None }
    }

    pub fn path(&self) -> &CStr {
        &self.path
    }

    /// Whether the file must be read again, for a file whose changes the kernel signals with
    /// `POLLPRI` (`/proc/self/mountinfo`: the mount table changed). True when no descriptor is
    /// open (nothing read yet, or the last read failed) or when `poll` with a zero timeout
    /// reports `POLLPRI` or `POLLERR` (the kernel clears that report as it gives it, so call
    /// this before reading, never after). A regular file never reports it. Never waits.
    pub fn changed(&mut self) -> bool {
        let Some(fd) = self.fd.as_ref() else {
            return true;
        };
        let mut fds = [PollFd::new(fd, PollFlags::PRI)];
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match poll(&mut fds, Some(&now)) {
            Ok(_) => fds[0].revents().intersects(PollFlags::PRI | PollFlags::ERR),
            // Unknown: read it again rather than keep a table that may be stale.
            Err(_) => true,
        }
    }

    /// The open descriptor, opening the file when it is not.
    fn descriptor<E>(&mut self) -> Result<&OwnedFd, FileError<E>> {
        if self.fd.is_none() {
            self.fd = Some(open(&self.path)?);
        }
        self.fd.as_ref().ok_or(FileError::Open(Errno::BADF))
    }
}

fn open<E>(path: &CStr) -> Result<OwnedFd, FileError<E>> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(FileError::Open)
}

/// `pread(2)` at `offset`, restarted on `EINTR`.
fn pread_retry(fd: &OwnedFd, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    loop {
        match rustix::io::pread(fd, &mut *buf, offset) {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// `read(2)`, restarted on `EINTR`.
fn read_retry(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// Reads the file at `path` whole (`std::fs::read`): a file read once at start, such as the
/// stored log offsets.
pub fn read(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// Reads the file at `path` whole, or its first `max` bytes when it is longer: a file read once
/// into memory (a TZif file), where a fixed caller buffer would have to be the cap's size.
pub fn read_capped(path: &std::path::Path, max: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    f.take(max as u64).read_to_end(&mut out)?;
    Ok(out)
}

/// Writes `bytes` to `path` atomically with mode 0600: a temporary file in the same directory,
/// fsync, rename, fsync of the directory. The directory is created (0700) when missing.
///
/// The temporary name is random and created with `O_CREAT | O_EXCL | O_NOFOLLOW` (security
/// rule S7, "secrets at rest"): a file or symlink planted under a predictable name can neither
/// receive the secret nor redirect the write.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let mut attempt = 0;
    let (tmp, mut f) = loop {
        let mut random = [0u8; 8];
        crate::util::random_bytes(&mut random).map_err(std::io::Error::other)?;
        let suffix = crate::util::hex::<16>(&random);
        match create_temp(dir, &name, &suffix) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                attempt += 1;
            }
            other => break other?,
        }
    };
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates `<dir>/.<name>.<suffix>.tmp` new (never an existing file, never through a symlink),
/// mode 0600.
fn create_temp(
    dir: &std::path::Path,
    name: &str,
    suffix: &str,
) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = dir.join(format!(".{name}.{suffix}.tmp"));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC).bits() as i32)
        .open(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok((tmp, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security rule S7, played by a local user who plants a symlink where the temporary
    /// file goes: the create fails instead of following it, the target is untouched, and
    /// `write_private` (random names) still writes the file.
    #[test]
    fn a_planted_symlink_never_receives_the_secret() {
        let dir = std::env::temp_dir().join(format!("pgac-tmpname-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join(".collector.token.0123.tmp")).unwrap();
        let err = create_temp(&dir, "collector.token", "0123").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        write_private(&dir.join("collector.token"), b"secret\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(
            std::fs::read_to_string(dir.join("collector.token")).unwrap(),
            "secret\n"
        );
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp") && n != ".collector.token.0123.tmp")
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn private_files_are_0600_and_replace_atomically() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pgac-wp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = dir.join("state").join("collector.id");
        write_private(&p, b"one").unwrap();
        write_private(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(p.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    use crate::sys::procfs;
    use std::ffi::CString;
    use std::vec::Vec;

    /// Collects what the reader hands out, as owned lines tagged long or not.
    fn collect(path: &CStr) -> Result<Vec<(bool, Vec<u8>)>, FileError<&'static str>> {
        let mut out = Vec::new();
        LineReader::new().for_each_line(path, |l| {
            out.push(match l {
                Line::Full(b) => (false, b.to_vec()),
                Line::Long(b) => (true, b.to_vec()),
            });
            Ok::<(), &'static str>(())
        })?;
        Ok(out)
    }

    /// A temporary file with `content`, removed on drop.
    struct TempFile(std::path::PathBuf);
    impl TempFile {
        fn new(name: &str, content: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!(
                "pganalytics-file-test-{}-{name}",
                std::process::id()
            ));
            std::fs::write(&path, content).unwrap();
            TempFile(path)
        }
        fn cpath(&self) -> CString {
            CString::new(self.0.to_str().unwrap()).unwrap()
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn file_of_exactly_line_buf_bytes() {
        // 128 lines of 63 bytes + '\n' = 8192 bytes.
        let mut content = Vec::new();
        for i in 0..128u32 {
            let mut line = format!("{i:03}").into_bytes();
            line.resize(63, b'a');
            content.extend_from_slice(&line);
            content.push(b'\n');
        }
        assert_eq!(content.len(), LINE_BUF);
        let f = TempFile::new("exact", &content);
        let lines = collect(&f.cpath()).unwrap();
        assert_eq!(lines.len(), 128);
        assert!(lines.iter().all(|(long, l)| !long && l.len() == 63));
        assert_eq!(&lines[127].1[..3], b"127");
    }

    #[test]
    fn long_line_in_the_middle_is_reported_and_skipped() {
        let mut content = b"first\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 3 * LINE_BUF));
        content.extend_from_slice(b"\nlast\n");
        let f = TempFile::new("long", &content);
        let lines = collect(&f.cpath()).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], (false, b"first".to_vec()));
        assert!(lines[1].0);
        assert_eq!(lines[1].1.len(), LINE_BUF);
        assert!(lines[1].1.iter().all(|&b| b == b'x'));
        assert_eq!(lines[2], (false, b"last".to_vec()));
    }

    #[test]
    fn line_of_exactly_line_buf_bytes_is_long() {
        let mut content = vec![b'y'; LINE_BUF];
        content.extend_from_slice(b"\nz");
        let f = TempFile::new("edge", &content);
        let lines = collect(&f.cpath()).unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].0);
        assert_eq!(lines[1], (false, b"z".to_vec()));
    }

    #[test]
    fn last_line_without_newline_counts() {
        let f = TempFile::new("nonl", b"a\nbc");
        let lines = collect(&f.cpath()).unwrap();
        assert_eq!(lines, vec![(false, b"a".to_vec()), (false, b"bc".to_vec())]);
    }

    #[test]
    fn empty_file_has_no_lines() {
        let f = TempFile::new("empty", b"");
        assert!(collect(&f.cpath()).unwrap().is_empty());
    }

    #[test]
    fn missing_file_is_an_open_error() {
        let err = collect(c"/nonexistent/pganalytics/none").unwrap_err();
        assert_eq!(err, FileError::Open(Errno::NOENT));
        assert!(err.to_string().starts_with("open: "), "{err}");
        let mut buf = [0u8; 16];
        assert!(matches!(
            read_small(c"/nonexistent/pganalytics/none", &mut buf),
            Err(FileError::Open(Errno::NOENT))
        ));
    }

    #[test]
    fn parser_error_stops_reading() {
        let f = TempFile::new("stop", b"a\nb\nc\n");
        let mut seen = 0;
        let err = LineReader::new()
            .for_each_line(&f.cpath(), |_| {
                seen += 1;
                if seen == 2 { Err("second") } else { Ok(()) }
            })
            .unwrap_err();
        assert_eq!(err, FileError::Parse("second"));
        assert_eq!(err.to_string(), "parse: second");
        assert_eq!(seen, 2);
    }

    #[test]
    fn reader_and_feed_all_agree() {
        let mut content = Vec::new();
        for i in 0..2000u32 {
            content.extend_from_slice(format!("line {i}\n").as_bytes());
            if i == 1000 {
                content.extend(std::iter::repeat_n(b'q', LINE_BUF + 10));
                content.push(b'\n');
            }
        }
        content.extend_from_slice(b"tail");
        let f = TempFile::new("agree", &content);
        let from_file = collect(&f.cpath()).unwrap();

        struct Rec(Vec<(bool, Vec<u8>)>);
        impl LineParser for Rec {
            type Error = &'static str;
            fn line(&mut self, l: &[u8]) -> Result<(), Self::Error> {
                self.0.push((false, l.to_vec()));
                Ok(())
            }
            fn long_line(&mut self, l: &[u8]) -> Result<(), Self::Error> {
                self.0.push((true, l.to_vec()));
                Ok(())
            }
        }
        let mut rec = Rec(Vec::new());
        procfs::feed_all(&mut rec, &content).unwrap();
        assert_eq!(from_file, rec.0);
        assert_eq!(from_file.len(), 2002);
    }

    #[test]
    fn read_small_fits_or_is_too_large() {
        let f = TempFile::new("small", b"0.42 0.35 0.30 1/234 5678\n");
        let mut buf = [0u8; 64];
        assert_eq!(
            read_small(&f.cpath(), &mut buf).unwrap(),
            b"0.42 0.35 0.30 1/234 5678\n"
        );
        let mut exact = [0u8; 26];
        assert_eq!(read_small(&f.cpath(), &mut exact).unwrap().len(), 26);
        let mut short = [0u8; 25];
        assert_eq!(read_small(&f.cpath(), &mut short), Err(FileError::TooLarge));
        let empty = TempFile::new("small-empty", b"");
        assert_eq!(read_small(&empty.cpath(), &mut buf).unwrap(), b"");
    }

    #[test]
    fn real_proc_files() {
        let mut reader = LineReader::new();
        let mut stat = procfs::stat::Stat::default();
        reader.read_lines(c"/proc/stat", &mut stat).unwrap();
        assert!(stat.cpu.is_some());
        assert!(stat.cores >= 1);

        let mut mem = procfs::meminfo::Meminfo::default();
        reader.read_lines(c"/proc/meminfo", &mut mem).unwrap();
        mem.finish().unwrap();
        assert!(mem.mem_total_kib > 0);

        let mut mounts = 0;
        let mut root = false;
        reader
            .for_each_line(c"/proc/self/mountinfo", |line| {
                let Line::Full(l) = line else {
                    return Err("long mountinfo line");
                };
                let m = procfs::mountinfo::parse_line(l).map_err(|_| "bad mountinfo line")?;
                mounts += 1;
                root |= m.mount_point == b"/";
                Ok(())
            })
            .unwrap();
        assert!(mounts > 0 && root);

        let mut buf = [0u8; 1024];
        let s = read_small(c"/proc/self/stat", &mut buf).unwrap();
        procfs::pid_stat::parse(s).unwrap();
        let s = read_small(c"/proc/loadavg", &mut buf).unwrap();
        procfs::loadavg::parse(s).unwrap();
    }

    #[test]
    fn proc_file_rereads_from_the_start_each_time() {
        let mut f = ProcFile::new(CString::new("/proc/self/stat").unwrap());
        let mut r = LineReader::new();
        let mut small = [0u8; 1024];
        let a = read_small_file(&mut f, &mut small).unwrap().to_vec();
        for _ in 0..3 {
            let mut lines = 0;
            r.for_each_file_line(&mut f, |_| {
                lines += 1;
                Ok::<(), ()>(())
            })
            .unwrap();
            assert_eq!(lines, 1);
        }
        let b = read_small_file(&mut f, &mut small).unwrap().to_vec();
        // Same process, regenerated: same pid and comm, a whole line each time.
        assert_eq!(
            a.split(|&c| c == b' ').next(),
            b.split(|&c| c == b' ').next()
        );
        assert!(b.ends_with(b"\n"));
        let mut stat = procfs::stat::Stat::default();
        let mut proc_stat = ProcFile::new(CString::new("/proc/stat").unwrap());
        r.read_file_lines(&mut proc_stat, &mut stat).unwrap();
        stat.finish().unwrap();
        stat.reset();
        r.read_file_lines(&mut proc_stat, &mut stat).unwrap();
        stat.finish().unwrap();
        assert!(stat.cores >= 1);
    }

    #[test]
    fn proc_file_missing_then_present() {
        let path =
            std::env::temp_dir().join(format!("pganalytics-procfile-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut f = ProcFile::new(CString::new(path.to_str().unwrap()).unwrap());
        let mut r = LineReader::new();
        let e = r
            .for_each_file_line(&mut f, |_| Ok::<(), ()>(()))
            .unwrap_err();
        assert!(matches!(e, FileError::Open(Errno::NOENT)));
        std::fs::write(&path, b"one\ntwo\n").unwrap();
        let mut n = 0;
        r.for_each_file_line(&mut f, |_| {
            n += 1;
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(n, 2);
        let _ = std::fs::remove_file(&path);
    }
}
