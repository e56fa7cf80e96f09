//! `/proc/self/mountinfo`: one mount per line (proc(5), Documentation/filesystems/proc.rst).
//!
//! What this does: split one line into its fields, borrowed from the line, and decode the
//! kernel's octal escapes on demand ([`unescape`]). What it does not do: read the file (the
//! caller streams it line by line, since a container host has thousands of mounts), choose which
//! mounts to report, or de-duplicate bind mounts (the disk_usage collector does, by major:minor).
//!
//! ```text
//! 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//! (1)(2) (3)  (4)   (5)     (6)        (7)  (8) (9)    (10)        (11)
//! ```
//! (7) is zero or more optional fields (`shared:N`, `master:N`, `propagate_from:N`,
//! `unbindable`) ended by the lone "-" (8).
//!
//! Quirks handled here:
//! - fields are separated by exactly one space; the kernel escapes space, tab, newline and
//!   backslash in paths and in the source as `\040`, `\011`, `\012`, `\134`, so a raw field
//!   never contains a space. A field can be empty (an empty source), so runs of spaces are not
//!   collapsed.
//! - the source is whatever was passed to mount(2): "none", "tmpfs", a path with escapes.
//! - the super options are the rest of the line after the source.

use core::fmt;

use super::parse_u32;

/// Room for an unescaped mount point or source (PATH_MAX).
pub const MOUNT_PATH_CAP: usize = 4096;

/// One line of mountinfo, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountInfo<'a> {
    pub mount_id: u32,
    pub parent_id: u32,
    /// st_dev of files on this mount: equal for the bind mounts of one filesystem.
    pub major: u32,
    pub minor: u32,
    /// The directory of the filesystem mounted here (not "/" for bind mounts), still escaped.
    pub root: &'a [u8],
    /// Still escaped: see [`unescape`].
    pub mount_point: &'a [u8],
    /// Per-mount options, comma-separated (`rw,nosuid,relatime`).
    pub mount_options: &'a [u8],
    pub fstype: &'a [u8],
    /// Still escaped: see [`unescape`].
    pub source: &'a [u8],
    /// Per-superblock options, comma-separated.
    pub super_options: &'a [u8],
}

impl MountInfo<'_> {
    /// "ro" among the comma-separated super options: the filesystem itself is read-only
    /// (mounted `ro`, or remounted by `errors=remount-ro` after an I/O error).
    ///
    /// Not the per-mount options: a read-only bind mount leaves the filesystem writable, and a
    /// sandboxed service (systemd's `ProtectSystem=strict`, which the packaged unit uses) sees
    /// every mount of its namespace as `ro` while the filesystems stay `rw` for everyone else.
    pub fn read_only(&self) -> bool {
        self.super_options.split(|&b| b == b',').any(|o| o == b"ro")
    }
}

/// Why a mountinfo line could not be parsed or unescaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountinfoError {
    /// The line ends before the named field.
    Missing { field: &'static str },
    /// The named field is not a number (or major:minor pair) that fits a u32.
    Number { field: &'static str },
    /// No lone "-" after the optional fields.
    NoSeparator,
    /// The unescaped text does not fit the output buffer.
    OutputFull { cap: usize },
}

impl fmt::Display for MountinfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountinfoError::Missing { field } => write!(f, "missing {field}"),
            MountinfoError::Number { field } => write!(f, "bad {field}"),
            MountinfoError::NoSeparator => f.write_str("no '-' after the optional fields"),
            MountinfoError::OutputFull { cap } => {
                write!(f, "unescaped path longer than {cap} bytes")
            }
        }
    }
}

/// Splits `rest` at its first space: (field, remainder). The remainder is `None` at the end.
fn next_field(rest: &[u8]) -> (&[u8], Option<&[u8]>) {
    match rest.iter().position(|&b| b == b' ') {
        Some(p) => (rest.get(..p).unwrap_or(&[]), rest.get(p + 1..)),
        None => (rest, None),
    }
}

/// A cursor over the single-space separated fields of a line.
struct Fields<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    fn take(&mut self, field: &'static str) -> Result<&'a [u8], MountinfoError> {
        let rest = self.rest.ok_or(MountinfoError::Missing { field })?;
        let (f, rest) = next_field(rest);
        self.rest = rest;
        Ok(f)
    }

    fn number(&mut self, field: &'static str) -> Result<u32, MountinfoError> {
        parse_u32(self.take(field)?).ok_or(MountinfoError::Number { field })
    }
}

/// Parses one line of mountinfo (without its '\n').
pub fn parse_line(line: &[u8]) -> Result<MountInfo<'_>, MountinfoError> {
    let mut f = Fields { rest: Some(line) };
    let mount_id = f.number("mount id")?;
    let parent_id = f.number("parent id")?;
    let dev = f.take("major:minor")?;
    let (major, minor) = dev
        .iter()
        .position(|&b| b == b':')
        .and_then(|p| Some((parse_u32(dev.get(..p)?)?, parse_u32(dev.get(p + 1..)?)?)))
        .ok_or(MountinfoError::Number {
            field: "major:minor",
        })?;
    let root = f.take("root")?;
    let mount_point = f.take("mount point")?;
    let mount_options = f.take("mount options")?;
    // Optional fields, up to the lone "-".
    loop {
        let field = f
            .take("separator")
            .map_err(|_| MountinfoError::NoSeparator)?;
        if field == b"-" {
            break;
        }
    }
    let fstype = f.take("filesystem type")?;
    let source = f.take("source")?;
    let super_options = f.rest.ok_or(MountinfoError::Missing {
        field: "super options",
    })?;
    Ok(MountInfo {
        mount_id,
        parent_id,
        major,
        minor,
        root,
        mount_point,
        mount_options,
        fstype,
        source,
        super_options,
    })
}

/// Decodes the kernel's octal escapes into `out`: `\040` (space), `\011` (tab), `\012`
/// (newline), `\134` (backslash) and any `\NNN` up to `\377`. A backslash not followed by 3
/// octal digits (or by a value over 255) is kept literally. Output larger than `out` → error,
/// `out` then holds a prefix of the result.
pub fn unescape<'o>(raw: &[u8], out: &'o mut [u8]) -> Result<&'o [u8], MountinfoError> {
    let cap = out.len();
    let mut written = 0usize;
    let mut i = 0usize;
    while let Some(&b) = raw.get(i) {
        let (byte, used) = match (b, raw.get(i + 1..i + 4)) {
            (b'\\', Some(&[d0 @ b'0'..=b'3', d1 @ b'0'..=b'7', d2 @ b'0'..=b'7'])) => {
                // At most 3·64 + 7·8 + 7 = 255: fits the byte.
                ((d0 - b'0') * 64 + (d1 - b'0') * 8 + (d2 - b'0'), 4)
            }
            _ => (b, 1),
        };
        let slot = out
            .get_mut(written)
            .ok_or(MountinfoError::OutputFull { cap })?;
        *slot = byte;
        written += 1;
        i += used;
    }
    Ok(out.get(..written).unwrap_or(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &[u8] = include_bytes!("../../../fixtures/proc/vm-debian12/self/mountinfo");
    const EDGE: &[u8] = include_bytes!("../../../fixtures/proc/synthetic/mountinfo-edge-cases");

    fn lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
        input.split(|&b| b == b'\n').filter(|l| !l.is_empty())
    }

    #[test]
    fn real_capture() {
        let all: std::vec::Vec<_> = lines(REAL).map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(all.len(), REAL.iter().filter(|&&b| b == b'\n').count());
        assert_eq!(
            all[0],
            MountInfo {
                mount_id: 22,
                parent_id: 27,
                major: 0,
                minor: 21,
                root: b"/",
                mount_point: b"/proc",
                mount_options: b"rw,relatime",
                fstype: b"proc",
                source: b"proc",
                super_options: b"rw",
            }
        );
        let root = all.iter().find(|m| m.mount_point == b"/").unwrap();
        assert_eq!((root.major, root.minor), (254, 0));
        assert_eq!(root.fstype, b"ext4");
        assert_eq!(root.source, b"/dev/vda");
        assert!(!root.read_only());
    }

    #[test]
    fn edge_cases() {
        let all: std::vec::Vec<_> = lines(EDGE)
            .filter(|l| !l.starts_with(b"#"))
            .map(|l| parse_line(l).unwrap())
            .collect();
        let mut buf = [0u8; MOUNT_PATH_CAP];

        // Spaces, tabs, backslashes and a newline in the mount point; optional fields.
        let m = all.iter().find(|m| m.mount_id == 100).unwrap();
        assert_eq!(m.mount_point, br"/srv/my\040data\011tab\134back\012nl");
        assert_eq!(
            unescape(m.mount_point, &mut buf).unwrap(),
            b"/srv/my data\ttab\\back\nnl"
        );
        assert_eq!(m.mount_options, b"rw,relatime");
        assert_eq!(m.fstype, b"ext4");
        assert_eq!(m.super_options, b"rw,data=ordered");

        // A bind mount of the same device: same major:minor, another root.
        let bind = all.iter().find(|m| m.mount_id == 101).unwrap();
        assert_eq!((bind.major, bind.minor), (m.major, m.minor));
        assert_eq!(bind.root, b"/pgdata");
        // Read-only per mount, but the filesystem (super options "rw") is writable.
        assert_eq!(bind.mount_options, b"ro,relatime");
        assert!(!bind.read_only());

        // Several optional fields; source "none".
        let opt = all.iter().find(|m| m.mount_id == 102).unwrap();
        assert_eq!(opt.source, b"none");
        assert_eq!(opt.fstype, b"tmpfs");

        // No optional fields, escaped source.
        let src = all.iter().find(|m| m.mount_id == 103).unwrap();
        assert_eq!(
            unescape(src.source, &mut buf).unwrap(),
            b"//nas/share with space"
        );

        // Empty source.
        let empty = all.iter().find(|m| m.mount_id == 104).unwrap();
        assert_eq!(empty.source, b"");
        assert_eq!(empty.super_options, b"rw");
        assert_eq!(all.len(), 6);
    }

    #[test]
    fn read_only_is_an_exact_super_option() {
        let m = parse_line(b"1 0 8:1 / / rw - ext4 /dev/sda1 rw,errors=remount-ro,rox").unwrap();
        assert!(!m.read_only());
        let m = parse_line(b"1 0 8:1 / / ro - ext4 /dev/sda1 ro").unwrap();
        assert!(m.read_only());
        // After an I/O error with errors=remount-ro: the superblock is ro.
        let m = parse_line(b"1 0 8:1 / / rw - ext4 /dev/sda1 ro,errors=remount-ro").unwrap();
        assert!(m.read_only());
        // Inside systemd's ProtectSystem=strict (seen on a real host through
        // `unshare -m` + `mount -o remount,bind,ro /`): the mount is ro, the filesystem is not.
        let m = parse_line(b"43 42 254:0 / / ro,relatime - ext4 /dev/vda rw,discard").unwrap();
        assert!(!m.read_only());
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_line(b"").unwrap_err(),
            MountinfoError::Number { field: "mount id" }
        );
        assert_eq!(
            parse_line(b"1").unwrap_err().to_string(),
            "missing parent id"
        );
        assert_eq!(
            parse_line(b"1 0 8-1 / / rw - ext4 /dev/sda1 rw").unwrap_err(),
            MountinfoError::Number {
                field: "major:minor"
            }
        );
        assert_eq!(
            parse_line(b"1 0 8:4294967296 / / rw - ext4 /dev/sda1 rw").unwrap_err(),
            MountinfoError::Number {
                field: "major:minor"
            }
        );
        assert_eq!(
            parse_line(b"1 0 8:1 / / rw shared:1 ext4 /dev/sda1 rw").unwrap_err(),
            MountinfoError::NoSeparator
        );
        assert_eq!(
            parse_line(b"1 0 8:1 / / rw - ext4")
                .unwrap_err()
                .to_string(),
            "missing source"
        );
        assert_eq!(
            parse_line(b"1 0 8:1 / / rw - ext4 /dev/sda1").unwrap_err(),
            MountinfoError::Missing {
                field: "super options"
            }
        );
        assert!(parse_line(b"\xff\xfe").is_err());
    }

    #[test]
    fn unescape_rules() {
        let mut buf = [0u8; 64];
        assert_eq!(unescape(br"a\040b", &mut buf).unwrap(), b"a b");
        assert_eq!(unescape(br"\101\377", &mut buf).unwrap(), b"A\xff");
        // Each digit in its place: 0o001, 0o010, 0o100, 0o123, 0o321, 0o000.
        assert_eq!(
            unescape(br"\001\010\100\123\321\000", &mut buf).unwrap(),
            [1, 8, 64, 83, 209, 0]
        );
        // Not an escape: kept literally.
        assert_eq!(unescape(br"a\04", &mut buf).unwrap(), br"a\04");
        assert_eq!(unescape(br"\", &mut buf).unwrap(), br"\");
        assert_eq!(
            unescape(br"\400\08a\x41", &mut buf).unwrap(),
            br"\400\08a\x41"
        );
        assert_eq!(unescape(br"\\040", &mut buf).unwrap(), br"\ ");
        assert_eq!(unescape(b"", &mut buf).unwrap(), b"");
        // Output too small.
        let mut small = [0u8; 3];
        assert_eq!(
            unescape(b"abcd", &mut small).unwrap_err(),
            MountinfoError::OutputFull { cap: 3 }
        );
        assert_eq!(unescape(br"ab\040", &mut small).unwrap(), b"ab ");
        assert!(unescape(b"x", &mut []).is_err());
    }

    #[test]
    fn every_prefix_is_ok_or_err() {
        let mut buf = [0u8; MOUNT_PATH_CAP];
        for input in [REAL, EDGE] {
            for end in 0..=input.len() {
                for line in input[..end].split(|&b| b == b'\n') {
                    if let Ok(m) = parse_line(line) {
                        let _ = unescape(m.mount_point, &mut buf);
                        let _ = unescape(m.source, &mut buf);
                    }
                }
            }
        }
    }
}
