//! Clocks: the monotonic clock for schedules and durations, the real-time clock for timestamps.

use crate::util::WallTime;
use rustix::time::{ClockId, clock_gettime};

/// Nanoseconds on the monotonic clock (never jumps with wall-clock changes).
pub fn monotonic_ns() -> u64 {
    let ts = clock_gettime(ClockId::Monotonic);
    // The monotonic clock counts from boot: both parts are non-negative.
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The current wall-clock time, UTC.
pub fn wall_now() -> WallTime {
    let ts = clock_gettime(ClockId::Realtime);
    WallTime {
        secs: ts.tv_sec,
        nanos: ts.tv_nsec.clamp(0, 999_999_999) as u32,
    }
}
