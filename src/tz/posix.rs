//! POSIX TZ strings (`CET-1CEST,M3.5.0,M10.5.0/3`, `<+03>-3`): the footer of a TZif file and the
//! form of the `TZ` variable; pure.
//!
//! What this does: parse a TZ string into a standard type and an optional DST type with its
//! start and end rules, and tell which of the two is in effect at a UTC instant. What it does
//! not do: read TZif files (that is `tzif.rs`) or resolve abbreviations (that is
//! [`super::Zone`]).
//!
//! Quirks of the format:
//! - Offsets are west-positive: `CET-1` is UTC+1.
//! - Rule times may be negative or past 24 h (TZif v3), and dates come in three forms: `Jn`
//!   (1..=365, February 29 never counted), `n` (0..=365, counted) and `Mm.w.d` (week 5 = the
//!   last such weekday of the month).
//! - With no rule after the DST name, tzcode uses the US rules (POSIX leaves it open).

use super::LocalType;
use crate::calendar::{civil_from_days, days_from_civil, days_in_month, is_leap};

/// A day of the year in a POSIX TZ rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RuleDay {
    /// `Jn`: 1..=365, February 29 is never counted.
    Julian1(u16),
    /// `n`: 0..=365, February 29 is counted in leap years.
    Julian0(u16),
    /// `Mm.w.d`: weekday `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
    MonthWeekDay { month: u8, week: u8, weekday: u8 },
}

/// A transition date plus local time of day (seconds, may be negative or above 24 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RuleTime {
    day: RuleDay,
    secs: i32,
}

/// A POSIX TZ string such as `CET-1CEST,M3.5.0,M10.5.0/3` or `<+03>-3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PosixTz {
    pub(super) std: LocalType,
    /// DST type with its start and end (start in standard time, end in DST local time).
    pub(super) dst: Option<(LocalType, RuleTime, RuleTime)>,
}

impl PosixTz {
    /// Parses a POSIX TZ string (`None` when invalid).
    pub(super) fn parse(s: &str) -> Option<PosixTz> {
        let mut c = Cursor(s.as_bytes());
        let std_name = c.name()?;
        // POSIX offsets are west-positive: `CET-1` is UTC+1.
        let std_off = -c.offset()?;
        let std = LocalType {
            utoff: std_off,
            isdst: false,
            abbr: std_name,
        };
        if c.0.is_empty() {
            return Some(PosixTz { std, dst: None });
        }
        let dst_name = c.name()?;
        let dst_off = if c.0.first().is_some_and(|&b| b != b',') {
            -c.offset()?
        } else {
            std_off + 3600
        };
        let dst = LocalType {
            utoff: dst_off,
            isdst: true,
            abbr: dst_name,
        };
        let (start, end) = if c.0.is_empty() {
            // POSIX leaves the default rule to the implementation; tzcode uses US rules.
            (
                RuleTime {
                    day: RuleDay::MonthWeekDay {
                        month: 3,
                        week: 2,
                        weekday: 0,
                    },
                    secs: 7200,
                },
                RuleTime {
                    day: RuleDay::MonthWeekDay {
                        month: 11,
                        week: 1,
                        weekday: 0,
                    },
                    secs: 7200,
                },
            )
        } else {
            c.expect(b',')?;
            let start = c.rule()?;
            c.expect(b',')?;
            let end = c.rule()?;
            (start, end)
        };
        if !c.0.is_empty() {
            return None;
        }
        Some(PosixTz {
            std,
            dst: Some((dst, start, end)),
        })
    }

    pub(super) fn type_at(&self, t: i64) -> &LocalType {
        let Some((dst, start, end)) = &self.dst else {
            return &self.std;
        };
        let std_off = i64::from(self.std.utoff);
        let dst_off = i64::from(dst.utoff);
        let (year, _, _) = civil_from_days(t.saturating_add(std_off).div_euclid(86_400));
        let s = start.local_secs(year).saturating_sub(std_off);
        let e = end.local_secs(year).saturating_sub(dst_off);
        let in_dst = if s < e {
            s <= t && t < e
        } else {
            !(e <= t && t < s)
        };
        if in_dst { dst } else { &self.std }
    }
}

impl RuleTime {
    /// Local seconds since the epoch of this rule's transition in `year`.
    fn local_secs(&self, year: i64) -> i64 {
        let leap = is_leap(year);
        let jan1 = days_from_civil(year, 1, 1);
        let day = match self.day {
            RuleDay::Julian1(n) => {
                let n = i64::from(n);
                jan1 + n - 1 + i64::from(leap && n >= 60)
            }
            RuleDay::Julian0(n) => jan1 + i64::from(n),
            RuleDay::MonthWeekDay {
                month,
                week,
                weekday,
            } => {
                let first = days_from_civil(year, u32::from(month), 1);
                // 1970-01-01 was a Thursday (4).
                let dow = (first + 4).rem_euclid(7);
                let mut d = first + (i64::from(weekday) - dow).rem_euclid(7);
                d += 7 * (i64::from(week) - 1);
                let dim = i64::from(days_in_month(year, u32::from(month)));
                while d >= first + dim {
                    d -= 7;
                }
                d
            }
        };
        day.saturating_mul(86_400)
            .saturating_add(i64::from(self.secs))
    }
}

/// A tiny cursor over a TZ string.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn expect(&mut self, b: u8) -> Option<()> {
        if self.0.first() == Some(&b) {
            self.0 = &self.0[1..];
            Some(())
        } else {
            None
        }
    }

    /// `CET` (3+ letters) or `<+0330>` (quoted: letters, digits, `+`, `-`).
    fn name(&mut self) -> Option<String> {
        let (name, rest) = if self.0.first() == Some(&b'<') {
            let end = self.0.iter().position(|&b| b == b'>')?;
            let name = &self.0[1..end];
            if !name
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'-')
            {
                return None;
            }
            (name, &self.0[end + 1..])
        } else {
            let end = self
                .0
                .iter()
                .position(|b| !b.is_ascii_alphabetic())
                .unwrap_or(self.0.len());
            (&self.0[..end], &self.0[end..])
        };
        if name.len() < 3 {
            return None;
        }
        self.0 = rest;
        Some(String::from_utf8_lossy(name).into_owned())
    }

    fn number(&mut self, max_digits: usize) -> Option<i32> {
        let n = self
            .0
            .iter()
            .take(max_digits)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if n == 0 {
            return None;
        }
        let v = self.0[..n]
            .iter()
            .fold(0i32, |a, &b| a * 10 + i32::from(b - b'0'));
        self.0 = &self.0[n..];
        Some(v)
    }

    /// `[+-]hh[:mm[:ss]]` in seconds (hours up to 167 for v3 rule times).
    fn offset(&mut self) -> Option<i32> {
        let sign = match self.0.first() {
            Some(b'-') => {
                self.0 = &self.0[1..];
                -1
            }
            Some(b'+') => {
                self.0 = &self.0[1..];
                1
            }
            _ => 1,
        };
        let h = self.number(3)?;
        if h > 167 {
            return None;
        }
        let mut secs = h * 3600;
        if self.expect(b':').is_some() {
            let m = self.number(2)?;
            if m > 59 {
                return None;
            }
            secs += m * 60;
            if self.expect(b':').is_some() {
                let s = self.number(2)?;
                if s > 59 {
                    return None;
                }
                secs += s;
            }
        }
        Some(sign * secs)
    }

    /// `date[/time]`.
    fn rule(&mut self) -> Option<RuleTime> {
        let day = match self.0.first()? {
            b'J' => {
                self.0 = &self.0[1..];
                let n = self.number(3)?;
                if !(1..=365).contains(&n) {
                    return None;
                }
                RuleDay::Julian1(n as u16)
            }
            b'M' => {
                self.0 = &self.0[1..];
                let month = self.number(2)?;
                self.expect(b'.')?;
                let week = self.number(1)?;
                self.expect(b'.')?;
                let weekday = self.number(1)?;
                if !(1..=12).contains(&month) || !(1..=5).contains(&week) || weekday > 6 {
                    return None;
                }
                RuleDay::MonthWeekDay {
                    month: month as u8,
                    week: week as u8,
                    weekday: weekday as u8,
                }
            }
            _ => {
                let n = self.number(3)?;
                if n > 365 {
                    return None;
                }
                RuleDay::Julian0(n as u16)
            }
        };
        let secs = if self.expect(b'/').is_some() {
            self.offset()?
        } else {
            7200
        };
        Some(RuleTime { day, secs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
        days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s
    }

    #[test]
    fn posix_footer_forms() {
        let p = PosixTz::parse("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(p.std.utoff, 3600);
        let p = PosixTz::parse("<+03>-3").unwrap();
        assert_eq!(p.std.abbr, "+03");
        assert_eq!(p.std.utoff, 3 * 3600);
        assert!(p.dst.is_none());
        let p = PosixTz::parse("<-03>3<-02>,M3.5.0/-2,M10.5.0/-1").unwrap();
        assert_eq!(p.dst.as_ref().unwrap().0.utoff, -2 * 3600);
        // J form: J60 is March 1 even in leap years; n form: 59 is Feb 29 in a leap year.
        let j = RuleTime {
            day: RuleDay::Julian1(60),
            secs: 0,
        };
        assert_eq!(j.local_secs(2028), secs(2028, 3, 1, 0, 0, 0));
        let n = RuleTime {
            day: RuleDay::Julian0(59),
            secs: 0,
        };
        assert_eq!(n.local_secs(2028), secs(2028, 2, 29, 0, 0, 0));
        assert_eq!(n.local_secs(2027), secs(2027, 3, 1, 0, 0, 0));
        // All-year DST (tzcode's "EST5EDT,0/0,J365/25" shape).
        let p = PosixTz::parse("EST5EDT,0/0,J365/25").unwrap();
        assert_eq!(p.type_at(secs(2030, 6, 1, 0, 0, 0)).abbr, "EDT");
        let p = PosixTz::parse("EST5EDT").unwrap();
        assert_eq!(p.type_at(secs(2030, 6, 1, 0, 0, 0)).abbr, "EDT");
        assert_eq!(p.type_at(secs(2030, 1, 1, 0, 0, 0)).abbr, "EST");
        for bad in [
            "",
            "C",
            "CET",
            "CET-1CEST,M13.1.0,M1.1.0",
            "<+03-3",
            "CET-1CEST,M3.5.0",
        ] {
            assert!(PosixTz::parse(bad).is_none() || bad == "CET", "{bad}");
        }
    }
}
