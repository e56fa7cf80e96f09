//! What the benches read of a process they run: CPU time, peak RSS; and the small helpers
//! they share. Included by path (`#[path = "support/proc.rs"] mod proc_figures;`); each bench
//! uses some of it.
#![allow(dead_code)]

use std::path::Path;

/// CPU time of `pid` in nanoseconds: the first field of /proc/PID/schedstat, the scheduler's
/// own account, finer than the 10 ms clock ticks of utime + stime in /proc/PID/stat.
pub fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time the hypervisor gave other guests while this machine's CPUs wanted it ("steal",
/// the eighth figure of the `cpu` line of /proc/stat), and the time of all CPUs, in clock
/// ticks. Over a measured window, a steal of more than a few percent says the CPU figures of
/// that window are inflated: a CPU is slower while its host serves another guest.
pub fn steal_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest figures are inside user).
    let total = v.iter().take(8).sum();
    (v.get(7).copied().unwrap_or(0), total)
}

/// Steal as a percentage of the CPU time between two [`steal_ticks`] readings.
pub fn steal_percent(start: (u64, u64), end: (u64, u64)) -> f64 {
    let total = end.1.saturating_sub(start.1);
    if total == 0 {
        return 0.0;
    }
    end.0.saturating_sub(start.0) as f64 * 100.0 / total as f64
}

/// Peak resident size of `pid` (VmHWM), KiB; 0 when it cannot be read.
pub fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The middle value (sorts `v`); NaN when empty.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A file only its owner can read, as the collector requires of secrets.
pub fn write_secret(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
