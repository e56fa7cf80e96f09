//! The schedule of docs/metrics.md "General rules", as pure arithmetic on monotonic nanoseconds.
//!
//! Each plugin (and the push) has a [`Grid`]: runs are due at `anchor + k × period`. After a
//! run the next point is the first grid point strictly after the run's time, so a late run
//! does not shift later ones and missed points are skipped, never bunched.
//!
//! ```text
//!   anchor      +p        +2p       +3p       +4p
//!     |---------|---------|---------|---------|
//!     run       run    (late run at 2.6p)     run      ← 3p skipped? no: 3p is after 2.6p,
//!                        next = 3p                       so it runs; a run at 3.2p would
//!                                                        skip to 4p
//! ```

/// A periodic schedule anchored at a point of the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    anchor: u64,
    period: u64,
    next: u64,
}

impl Grid {
    /// First run at `anchor`, then every `period` ns (a zero period is treated as 1 ns).
    pub fn new(anchor: u64, period: u64) -> Grid {
        Grid {
            anchor,
            period: period.max(1),
            next: anchor,
        }
    }

    /// When the next run is due.
    pub fn next(&self) -> u64 {
        self.next
    }

    pub fn period(&self) -> u64 {
        self.period
    }

    pub fn is_due(&self, now: u64) -> bool {
        now >= self.next
    }

    /// Records a run at `now`: the next one is the first grid point after `now`.
    pub fn ran(&mut self, now: u64) {
        let k = now.saturating_sub(self.anchor) / self.period + 1;
        self.next = self.anchor.saturating_add(k.saturating_mul(self.period));
    }

    /// How many grid points a run at `now` skips (for logging a stall).
    pub fn missed(&self, now: u64) -> u64 {
        now.saturating_sub(self.next) / self.period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_time_runs_follow_the_grid() {
        let mut g = Grid::new(1000, 100);
        assert!(g.is_due(1000));
        assert!(!g.is_due(999));
        for k in 0..5 {
            let now = 1000 + k * 100;
            assert!(g.is_due(now));
            g.ran(now);
            assert_eq!(g.next(), 1000 + (k + 1) * 100);
        }
    }

    #[test]
    fn a_late_run_does_not_shift_later_ones() {
        let mut g = Grid::new(0, 100);
        g.ran(0);
        g.ran(137); // late by 37
        assert_eq!(g.next(), 200);
    }

    #[test]
    fn missed_points_are_skipped_not_bunched() {
        let mut g = Grid::new(0, 100);
        g.ran(0);
        assert_eq!(g.missed(550), 4); // 100, 200, 300, 400 passed; 500 is this run
        g.ran(550);
        assert_eq!(g.next(), 600);
        assert!(!g.is_due(599));
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut g = Grid::new(u64::MAX - 10, 0);
        g.ran(u64::MAX);
        assert_eq!(g.next(), u64::MAX);
        let mut g = Grid::new(0, u64::MAX);
        g.ran(5);
        assert_eq!(g.next(), u64::MAX);
    }
}
