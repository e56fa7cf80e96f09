//! Small shared pieces: RFC 3339 timestamps from the real-time clock, random hex ids.
//!
//! Pure where possible: the formatting takes seconds and nanoseconds, never reads a clock.

use std::fmt;

/// A point in real (wall-clock) time: seconds and nanoseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct WallTime {
    pub secs: i64,
    pub nanos: u32,
}

impl WallTime {
    /// `YYYY-MM-DDTHH:MM:SSZ`, the shape of every `timestamp` the collector writes.
    pub fn rfc3339(self) -> Rfc3339 {
        Rfc3339 {
            time: self,
            frac_digits: 0,
        }
    }

    /// With milliseconds, for log lines: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn rfc3339_millis(self) -> Rfc3339 {
        Rfc3339 {
            time: self,
            frac_digits: 3,
        }
    }

    /// Timestamps read from PostgreSQL (microsecond precision): `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`,
    /// or without a fraction when it is zero (`2026-11-27T21:33:02Z`).
    pub fn rfc3339_micros(self) -> Rfc3339 {
        Rfc3339 {
            time: self,
            frac_digits: if self.nanos / 1_000 == 0 { 0 } else { 6 },
        }
    }
}

/// Displays a [`WallTime`] as RFC 3339 UTC with `Z`.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339 {
    time: WallTime,
    frac_digits: u8,
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.time.secs.div_euclid(86_400);
        let sod = self.time.secs.rem_euclid(86_400);
        let (y, m, d) = crate::calendar::civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )?;
        match self.frac_digits {
            3 => write!(f, ".{:03}", self.time.nanos / 1_000_000)?,
            6 => write!(f, ".{:06}", self.time.nanos / 1_000)?,
            _ => {}
        }
        f.write_str("Z")
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Lowercase hex of `bytes` into a fixed string (ids such as `batch_id`).
pub fn hex<const N: usize>(bytes: &[u8]) -> heapless::String<N> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = heapless::String::new();
    for b in bytes {
        // Capacity is the caller's choice of N; extra digits are cut, never a panic.
        let _ = out.push(char::from(DIGITS[usize::from(b >> 4)]));
        let _ = out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Fills `buf` from the operating system's random source (ring's `SystemRandom`).
pub fn random_bytes(buf: &mut [u8]) -> Result<(), &'static str> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new()
        .fill(buf)
        .map_err(|_| "the system random source failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_points() {
        let t = |secs| WallTime { secs, nanos: 0 }.rfc3339().to_string();
        assert_eq!(t(0), "1970-01-01T00:00:00Z");
        assert_eq!(t(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(t(1_772_366_400), "2026-03-01T12:00:00Z");
        assert_eq!(t(-1), "1969-12-31T23:59:59Z");
        assert_eq!(t(4_102_444_799), "2099-12-31T23:59:59Z");
        let ms = WallTime {
            secs: 1_772_366_400,
            nanos: 123_456_789,
        };
        assert_eq!(ms.rfc3339_millis().to_string(), "2026-03-01T12:00:00.123Z");
        assert_eq!(
            ms.rfc3339_micros().to_string(),
            "2026-03-01T12:00:00.123456Z"
        );
        let pg = WallTime {
            secs: 1_795_815_182,
            nanos: 966_761_000,
        };
        assert_eq!(
            pg.rfc3339_micros().to_string(),
            "2026-11-27T21:33:02.966761Z"
        );
        let whole = WallTime {
            secs: 1_772_366_400,
            nanos: 999,
        };
        assert_eq!(whole.rfc3339_micros().to_string(), "2026-03-01T12:00:00Z");
    }

    #[test]
    fn hex_and_random() {
        assert_eq!(hex::<8>(&[0x00, 0xab, 0xff, 0x10]).as_str(), "00abff10");
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        random_bytes(&mut a).unwrap();
        random_bytes(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
