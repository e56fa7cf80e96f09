//! `/proc/stat`: the aggregate `cpu` line and the number of `cpuN` lines (proc(5)).
//!
//! What this does: read the `cpu` line's times (in clock ticks, `USER_HZ`) and count the
//! per-CPU lines. What it does not do: keep per-CPU times, parse `intr`, `ctxt`, `btime`,
//! `processes`, `softirq`…, or turn ticks into percentages (the sysstat collector does, from
//! two samples).
//!
//! Quirks handled here:
//! - kernels before 2.6.11 print fewer than 10 numbers (at least 4: user nice system idle);
//!   missing ones are 0. Numbers after the 10th (none today) are ignored.
//! - the `intr` line has one number per interrupt and exceeds the read buffer on large hosts:
//!   as a long line it is ignored. A long `cpu`/`cpuN` line cannot be real and is an error.
//! - `cpuN` lines exist only for online CPUs, so `cores` counts online CPUs.

use core::fmt;

use super::{LineParser, fields, parse_u64};

/// Times of the aggregate `cpu` line, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    /// Already counted in `user`.
    pub guest: u64,
    /// Already counted in `nice`.
    pub guest_nice: u64,
}

impl CpuTimes {
    /// user+nice+system+idle+iowait+irq+softirq+steal (guest is already inside user/nice),
    /// saturating at `u64::MAX`.
    pub fn total(&self) -> u64 {
        [
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
        ]
        .iter()
        .fold(self.user, |acc, &v| acc.saturating_add(v))
    }
}

/// What /proc/stat says about CPUs.
#[derive(Debug, Clone, Default)]
pub struct Stat {
    /// The aggregate `cpu` line; `None` until it is seen.
    pub cpu: Option<CpuTimes>,
    /// Number of `cpuN` lines.
    pub cores: u32,
    /// Lines fed so far, for error messages.
    line_no: u32,
}

/// Fewest numbers on a `cpu` line (user nice system idle).
const MIN_CPU_NUMBERS: usize = 4;
/// Numbers on a `cpu` line that are kept.
const CPU_NUMBERS: usize = 10;

/// Why /proc/stat could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatError {
    /// A `cpu`/`cpuN` line with fewer than 4 numbers.
    CpuFields { line: u32, found: usize },
    /// A field of a `cpu` line that is not a number or does not fit a u64.
    Number { line: u32 },
    /// A second aggregate `cpu` line.
    DuplicateCpu { line: u32 },
    /// A `cpu` line longer than the read buffer.
    LongCpuLine { line: u32 },
    /// The input ended without an aggregate `cpu` line.
    NoCpuLine,
}

impl fmt::Display for StatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatError::CpuFields { line, found } => write!(
                f,
                "line {line}: expected {MIN_CPU_NUMBERS} to {CPU_NUMBERS} numbers after 'cpu', found {found}"
            ),
            StatError::Number { line } => write!(f, "line {line}: bad number on cpu line"),
            StatError::DuplicateCpu { line } => write!(f, "line {line}: second aggregate cpu line"),
            StatError::LongCpuLine { line } => {
                write!(f, "line {line}: cpu line longer than the read buffer")
            }
            StatError::NoCpuLine => f.write_str("no aggregate cpu line"),
        }
    }
}

impl Stat {
    /// Parses a whole /proc/stat.
    pub fn parse(input: &[u8]) -> Result<Stat, StatError> {
        let mut stat = Stat::default();
        super::feed_all(&mut stat, input)?;
        stat.finish()?;
        Ok(stat)
    }

    /// Checks that the aggregate `cpu` line was seen (call after the last line).
    pub fn finish(&self) -> Result<(), StatError> {
        match self.cpu {
            Some(_) => Ok(()),
            None => Err(StatError::NoCpuLine),
        }
    }

    /// Forgets everything, to parse the file again.
    pub fn reset(&mut self) {
        *self = Stat::default();
    }
}

/// What a line's first field says it is.
enum Kind {
    /// `cpu`
    Aggregate,
    /// `cpuN`
    Core,
    Other,
}

fn kind(first: &[u8]) -> Kind {
    match first.strip_prefix(b"cpu") {
        Some([]) => Kind::Aggregate,
        Some(n) if n.iter().all(u8::is_ascii_digit) => Kind::Core,
        _ => Kind::Other,
    }
}

impl LineParser for Stat {
    type Error = StatError;

    fn line(&mut self, line: &[u8]) -> Result<(), StatError> {
        self.line_no = self.line_no.saturating_add(1);
        let ln = self.line_no;
        let mut it = fields(line);
        let Some(first) = it.next() else {
            return Ok(());
        };
        match kind(first) {
            Kind::Other => Ok(()),
            Kind::Core => {
                let found = it.count();
                if found < MIN_CPU_NUMBERS {
                    return Err(StatError::CpuFields { line: ln, found });
                }
                self.cores = self.cores.saturating_add(1);
                Ok(())
            }
            Kind::Aggregate => {
                if self.cpu.is_some() {
                    return Err(StatError::DuplicateCpu { line: ln });
                }
                let mut n = [0u64; CPU_NUMBERS];
                let mut found = 0usize;
                for field in it {
                    if let Some(slot) = n.get_mut(found) {
                        *slot = parse_u64(field).ok_or(StatError::Number { line: ln })?;
                    }
                    found += 1;
                }
                if found < MIN_CPU_NUMBERS {
                    return Err(StatError::CpuFields { line: ln, found });
                }
                let [
                    user,
                    nice,
                    system,
                    idle,
                    iowait,
                    irq,
                    softirq,
                    steal,
                    guest,
                    guest_nice,
                ] = n;
                self.cpu = Some(CpuTimes {
                    user,
                    nice,
                    system,
                    idle,
                    iowait,
                    irq,
                    softirq,
                    steal,
                    guest,
                    guest_nice,
                });
                Ok(())
            }
        }
    }

    fn long_line(&mut self, prefix: &[u8]) -> Result<(), StatError> {
        self.line_no = self.line_no.saturating_add(1);
        match fields(prefix).next().map(kind) {
            Some(Kind::Aggregate | Kind::Core) => {
                Err(StatError::LongCpuLine { line: self.line_no })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &[u8] = include_bytes!("../../../fixtures/proc/vm-debian12/stat");
    const CPUS_128: &[u8] =
        include_bytes!("../../../fixtures/proc/synthetic/stat-128cpu-long-intr");
    const OLD: &[u8] = include_bytes!("../../../fixtures/proc/synthetic/stat-2.6.0");

    #[test]
    fn real_capture() {
        let s = Stat::parse(REAL).unwrap();
        assert_eq!(s.cores, 2);
        let cpu = s.cpu.unwrap();
        assert_eq!(
            cpu,
            CpuTimes {
                user: 18665,
                nice: 0,
                system: 3734,
                idle: 34598,
                iowait: 545,
                irq: 0,
                softirq: 50,
                steal: 107,
                guest: 0,
                guest_nice: 0,
            }
        );
        assert_eq!(cpu.total(), 18665 + 3734 + 34598 + 545 + 50 + 107);
    }

    #[test]
    fn many_cpus_and_an_intr_line_longer_than_the_buffer() {
        assert!(CPUS_128.len() > crate::sys::procfs::LINE_BUF);
        let s = Stat::parse(CPUS_128).unwrap();
        assert_eq!(s.cores, 128);
        let cpu = s.cpu.unwrap();
        assert_eq!(cpu.user, 1_234_567_890);
        assert_eq!(cpu.guest, 7);
        assert_eq!(cpu.guest_nice, 8);
    }

    #[test]
    fn old_kernel_with_four_numbers() {
        let s = Stat::parse(OLD).unwrap();
        assert_eq!(s.cores, 2);
        assert_eq!(
            s.cpu.unwrap(),
            CpuTimes {
                user: 100,
                nice: 2,
                system: 30,
                idle: 4000,
                ..CpuTimes::default()
            }
        );
    }

    #[test]
    fn errors() {
        assert_eq!(Stat::parse(b"").unwrap_err(), StatError::NoCpuLine);
        assert_eq!(
            Stat::parse(b"intr 1 2 3\n").unwrap_err().to_string(),
            "no aggregate cpu line"
        );
        assert_eq!(
            Stat::parse(b"ctxt 1\ncpu 1 2 3\n").unwrap_err().to_string(),
            "line 2: expected 4 to 10 numbers after 'cpu', found 3"
        );
        assert_eq!(
            Stat::parse(b"cpu 1 2 3 18446744073709551616\n").unwrap_err(),
            StatError::Number { line: 1 }
        );
        assert_eq!(
            Stat::parse(b"cpu 1 2 3 -4\n").unwrap_err(),
            StatError::Number { line: 1 }
        );
        assert_eq!(
            Stat::parse(b"cpu 1 2 3 4\ncpu 1 2 3 4\n").unwrap_err(),
            StatError::DuplicateCpu { line: 2 }
        );
        assert_eq!(
            Stat::parse(b"cpu 1 2 3 4\ncpu0 1\n").unwrap_err(),
            StatError::CpuFields { line: 2, found: 1 }
        );
        let mut long = b"cpu ".to_vec();
        long.extend(std::iter::repeat_n(b'1', crate::sys::procfs::LINE_BUF));
        assert_eq!(
            Stat::parse(&long).unwrap_err(),
            StatError::LongCpuLine { line: 1 }
        );
    }

    #[test]
    fn max_values_do_not_overflow_total() {
        let s =
            Stat::parse(b"cpu 18446744073709551615 18446744073709551615 1 1 1 1 1 1 1 1 99 99\n")
                .unwrap();
        assert_eq!(s.cpu.unwrap().total(), u64::MAX);
    }

    #[test]
    fn non_cpu_garbage_and_non_utf8_are_ignored() {
        let s = Stat::parse(b"\xff\xfe garbage\ncpu 1 2 3 4\ncpux 1\ncpu7\xff 1\n").unwrap();
        assert_eq!(s.cores, 0);
        assert!(Stat::parse(b"cpu 1 2 3 \xff\n").is_err());
    }

    #[test]
    fn reset_allows_reuse() {
        let mut s = Stat::default();
        super::super::feed_all(&mut s, REAL).unwrap();
        s.reset();
        super::super::feed_all(&mut s, REAL).unwrap();
        assert_eq!(s.cores, 2);
    }

    #[test]
    fn every_prefix_is_ok_or_err() {
        for input in [REAL, OLD] {
            for end in 0..=input.len() {
                let _ = Stat::parse(&input[..end]);
            }
        }
        // 17 KiB: every 37th prefix keeps the debug build fast.
        for end in (0..=CPUS_128.len()).step_by(37) {
            let _ = Stat::parse(&CPUS_128[..end]);
        }
    }
}
