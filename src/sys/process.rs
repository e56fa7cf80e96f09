//! The process's own identity, and the system constants its /proc numbers are counted in.
//!
//! What this does: `getuid(2)`, the peer of a Unix socket (`SO_PEERCRED`), and the clock tick rate and page size (from the auxiliary
//! vector, no syscall) that turn /proc's ticks and pages into seconds and bytes. What it does
//! not do: parse /proc (that is [`crate::sys::procfs`]); callers pass these constants into
//! their pure code.

/// `getuid(2)`: the real user id.
pub fn getuid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of /proc's CPU times.
pub fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// Bytes of a memory page, the unit of /proc's RSS.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// `getsockopt(SO_PEERCRED)`: the uid of the process at the other end of a connected Unix
/// socket (for a server socket, the process that called `listen`).
pub fn peer_uid(sock: impl rustix::fd::AsFd) -> std::io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(sock)?.uid.as_raw())
}
