//! Letting go of the start-up code's pages.
//!
//! The binary's machine code is mapped from its file, and every page of it the process has
//! touched counts in its RSS (the kernel maps up to 64 KiB around each fault). Start-up (the
//! TOML parser, the argument parser, the configuration checks, TLS set-up) runs code the loop
//! never runs again, about a third of the binary's code. Once the loop is about to start,
//! `MADV_DONTNEED` on the executable's code mappings removes their pages from the page tables:
//! the pages stay in the page cache, and the loop maps back (a minor fault each, once) only
//! what it runs. Only mappings of the executable file that are read-only and executable are
//! touched: their contents are exactly the file's, so nothing is lost (never the read-only data
//! after relocation, which a position-independent binary may have written).
#![allow(unsafe_code)]

use std::path::Path;

/// Drops the resident pages of the executable's code mappings (best effort, once).
pub fn release_startup_code() {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for (start, end) in code_ranges(&maps, &exe) {
        let Some(len) = end.checked_sub(start) else {
            continue;
        };
        // SAFETY: the range is a whole mapping of this process's executable, read-only and
        // executable, never written (no text relocations in Rust code), so dropping its pages
        // only makes the next access fault them back from the same file; no pointer into it
        // is invalidated.
        let _ = unsafe {
            rustix::mm::madvise(
                start as *mut core::ffi::c_void,
                len,
                rustix::mm::Advice::LinuxDontNeed,
            )
        };
    }
}

/// The `r-xp` mappings of `exe` in `/proc/self/maps` text (pure).
pub fn code_ranges(maps: &str, exe: &Path) -> Vec<(usize, usize)> {
    let Some(exe) = exe.to_str() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in maps.lines() {
        // "00401000-005a5000 r-xp 00001000 fd:01 1234      /path/to/binary"
        let mut fields = line.split_ascii_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let path = fields.nth(3);
        if perms != "r-xp" || path != Some(exe) || fields.next().is_some() {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
            out.push((a, b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_executables_code() {
        let maps = "\
00400000-00401000 r--p 00000000 fd:01 7 /opt/pgac/bin/collector
00401000-005a5000 r-xp 00001000 fd:01 7 /opt/pgac/bin/collector
005a5000-0068f000 r--p 001a5000 fd:01 7 /opt/pgac/bin/collector
0068f000-00691000 rw-p 0028f000 fd:01 7 /opt/pgac/bin/collector
7f0000000000-7f0000001000 r-xp 00000000 fd:01 9 /opt/pgac/bin/collector-other
7f0000002000-7f0000003000 r-xp 00000000 fd:01 7 /opt/pgac/bin/collector (deleted)
7ffc67df4000-7ffc67e15000 rw-p 00000000 00:00 0 [stack]
7ff6a652d000-7ff6a652f000 r-xp 00000000 00:00 0 [vdso]
";
        assert_eq!(
            code_ranges(maps, Path::new("/opt/pgac/bin/collector")),
            [(0x401000, 0x5a5000)]
        );
    }

    #[test]
    fn this_process_keeps_running_after_its_code_pages_are_dropped() {
        release_startup_code();
        // Code runs again (faulted back from the file).
        assert_eq!(code_ranges("", Path::new("/x")), []);
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
