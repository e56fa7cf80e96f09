//! Exponential backoff with full jitter (docs/protocol.md, "Replies"): the ceiling starts at
//! `retry_initial`, doubles on each failure up to `retry_max`, and the delay is a random
//! duration in [0, ceiling]; a success resets it. Randomness is a seeded xorshift so tests are
//! deterministic.

/// Shortest delay, so that a jitter of 0 never makes the loop spin.
pub const MIN_DELAY_NS: u64 = 10_000_000;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial_ns: u64,
    max_ns: u64,
    /// 0 while healthy; else the ceiling of the current step.
    ceiling_ns: u64,
    rng: u64,
}

impl Backoff {
    pub fn new(initial_ns: u64, max_ns: u64, seed: u64) -> Backoff {
        Backoff {
            initial_ns: initial_ns.max(MIN_DELAY_NS),
            max_ns: max_ns.max(initial_ns).max(MIN_DELAY_NS),
            ceiling_ns: 0,
            rng: seed | 1,
        }
    }

    /// A backoff seeded from the system random source.
    pub fn seeded(initial_ns: u64, max_ns: u64) -> Backoff {
        Backoff::new(initial_ns, max_ns, random_seed())
    }

    /// New bounds (reload), keeping the current state.
    pub fn set_bounds(&mut self, initial_ns: u64, max_ns: u64) {
        self.initial_ns = initial_ns.max(MIN_DELAY_NS);
        self.max_ns = max_ns.max(initial_ns).max(MIN_DELAY_NS);
        self.ceiling_ns = self.ceiling_ns.min(self.max_ns);
    }

    /// One more failure: the delay before the next attempt, at least `at_least_ns` (a
    /// `Retry-After`) but never above `retry_max`: a backend cannot stop pushes for longer
    /// than the operator allows (security rule S5, "bounded influence of the backend").
    pub fn failed(&mut self, at_least_ns: u64) -> u64 {
        let at_least_ns = at_least_ns.min(self.max_ns);
        self.ceiling_ns = if self.ceiling_ns == 0 {
            self.initial_ns
        } else {
            self.ceiling_ns.saturating_mul(2).min(self.max_ns)
        };
        let jitter = self.next_u64() % (self.ceiling_ns + 1);
        jitter.max(MIN_DELAY_NS).max(at_least_ns)
    }

    pub fn reset(&mut self) {
        self.ceiling_ns = 0;
    }

    pub fn is_failing(&self) -> bool {
        self.ceiling_ns != 0
    }

    pub fn ceiling_ns(&self) -> u64 {
        self.ceiling_ns
    }

    /// A random value in [0, n) (the push phase offset).
    pub fn random_below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if crate::util::random_bytes(&mut b).is_err() {
        return crate::sys::time::monotonic_ns() ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn ceiling_doubles_to_max_delays_stay_within_and_reset() {
        let mut b = Backoff::new(S, 10 * S, 42);
        let mut ceilings = Vec::new();
        for _ in 0..7 {
            let d = b.failed(0);
            assert!(d <= b.ceiling_ns() && d >= MIN_DELAY_NS, "{d}");
            ceilings.push(b.ceiling_ns() / S);
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 10, 10, 10]);
        b.reset();
        assert!(!b.is_failing());
        b.failed(0);
        assert_eq!(b.ceiling_ns(), S);
    }

    #[test]
    fn jitter_is_spread_and_deterministic_per_seed() {
        let run = |seed| {
            let mut b = Backoff::new(100 * S, 100 * S, seed);
            (0..50).map(|_| b.failed(0)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let d = run(7);
        assert!(d.iter().any(|&x| x < 30 * S) && d.iter().any(|&x| x > 70 * S));
    }

    #[test]
    fn retry_after_is_a_floor_capped_at_retry_max() {
        let mut b = Backoff::new(S, 200 * S, 1);
        assert!(b.failed(120 * S) >= 120 * S);
        // `Retry-After: 99999999` waits retry_max, not three years.
        let mut b = Backoff::new(S, 300 * S, 1);
        assert_eq!(b.failed(99_999_999 * S), 300 * S);
        assert_eq!(b.failed(u64::MAX), 300 * S);
    }
}
