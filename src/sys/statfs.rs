//! `statfs(2)` on a mount point, through rustix, without allocating.

use core::ffi::CStr;

/// What `disk_usage` needs from `statfs`, in bytes and inodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    pub total_bytes: u64,
    /// Free for root (`f_bfree`).
    pub free_bytes: u64,
    /// Free for an unprivileged user (`f_bavail`).
    pub available_bytes: u64,
    pub inodes_total: u64,
    pub inodes_free: u64,
}

/// Calls `statfs` on `path` (a NUL-terminated mount point).
pub fn statfs(path: &CStr) -> rustix::io::Result<FsUsage> {
    let st = rustix::fs::statfs(path)?;
    // f_frsize is the unit of the block counts; some filesystems leave it 0, then f_bsize is.
    let unit = if st.f_frsize > 0 {
        st.f_frsize as u64
    } else {
        st.f_bsize as u64
    };
    Ok(FsUsage {
        total_bytes: (st.f_blocks as u64).saturating_mul(unit),
        free_bytes: (st.f_bfree as u64).saturating_mul(unit),
        available_bytes: (st.f_bavail as u64).saturating_mul(unit),
        inodes_total: st.f_files as u64,
        inodes_free: st.f_ffree as u64,
    })
}
