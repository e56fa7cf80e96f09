//! `/proc/loadavg`: load averages and task counts (proc(5)).
//!
//! What this does: parse the whole one-line file, `"0.42 0.35 0.30 1/234 5678\n"`: three load
//! averages, runnable/total scheduling entities, the last PID used. What it does not do: read
//! the file (it is small: [`crate::sys::file::read_small`]).
//!
//! The kernel prints the averages as `%lu.%02lu`; only digits and one '.' are accepted here, so
//! `inf`, `nan` or exponents (which `f64::from_str` would take) are errors.

use core::fmt;

use super::{fields, parse_u32};

/// The contents of /proc/loadavg.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loadavg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    /// Currently runnable scheduling entities.
    pub running: u32,
    /// Scheduling entities (processes and threads) in the system.
    pub total: u32,
    pub last_pid: u32,
}

/// Why /proc/loadavg could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadavgError {
    /// Not exactly 5 space-separated fields on one line.
    Fields { found: usize },
    /// A load average that is not `digits[.digits]`.
    Average { index: u8 },
    /// The 4th field is not `running/total`.
    Tasks,
    /// The 5th field is not a number.
    LastPid,
}

impl fmt::Display for LoadavgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadavgError::Fields { found } => write!(f, "expected 5 fields, found {found}"),
            LoadavgError::Average { index } => write!(f, "field {index}: bad load average"),
            LoadavgError::Tasks => f.write_str("field 4: expected running/total"),
            LoadavgError::LastPid => f.write_str("field 5: bad last pid"),
        }
    }
}

/// Most bytes accepted for one load average (the kernel prints at most `%lu.%02lu`).
const AVERAGE_CAP: usize = 24;

/// Parses the whole file ("0.42 0.35 0.30 1/234 5678\n"; the trailing '\n' is optional).
pub fn parse(input: &[u8]) -> Result<Loadavg, LoadavgError> {
    let line = input.strip_suffix(b"\n").unwrap_or(input);
    if line.contains(&b'\n') {
        return Err(LoadavgError::Fields {
            found: fields(line).count(),
        });
    }
    let mut f = [&[][..]; 5];
    let mut found = 0usize;
    for field in fields(line) {
        if let Some(slot) = f.get_mut(found) {
            *slot = field;
        }
        found += 1;
    }
    if found != 5 {
        return Err(LoadavgError::Fields { found });
    }
    let [one, five, fifteen, tasks, last_pid] = f;
    let (running, total) = tasks
        .iter()
        .position(|&b| b == b'/')
        .and_then(|p| {
            let running = parse_u32(tasks.get(..p)?)?;
            let total = parse_u32(tasks.get(p + 1..)?)?;
            Some((running, total))
        })
        .ok_or(LoadavgError::Tasks)?;
    Ok(Loadavg {
        one: average(one, 1)?,
        five: average(five, 2)?,
        fifteen: average(fifteen, 3)?,
        running,
        total,
        last_pid: parse_u32(last_pid).ok_or(LoadavgError::LastPid)?,
    })
}

/// `digits[.digits]` as an f64.
fn average(field: &[u8], index: u8) -> Result<f64, LoadavgError> {
    let err = LoadavgError::Average { index };
    let (int, frac) = match field.iter().position(|&b| b == b'.') {
        Some(p) => (field.get(..p).unwrap_or(&[]), field.get(p + 1..)),
        None => (field, None),
    };
    let digits_ok = !int.is_empty()
        && int.iter().all(u8::is_ascii_digit)
        && frac.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit));
    if !digits_ok || field.len() > AVERAGE_CAP {
        return Err(err);
    }
    // Only ASCII digits and one '.' remain: valid UTF-8 and a valid f64 literal.
    core::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &[u8] = include_bytes!("../../../fixtures/proc/vm-debian12/loadavg");

    #[test]
    fn real_capture() {
        assert_eq!(
            parse(REAL).unwrap(),
            Loadavg {
                one: 0.83,
                five: 0.57,
                fifteen: 0.25,
                running: 1,
                total: 84,
                last_pid: 7091,
            }
        );
    }

    #[test]
    fn example_of_the_spec() {
        let l = parse(b"0.42 0.35 0.30 1/234 5678\n").unwrap();
        assert_eq!((l.one, l.five, l.fifteen), (0.42, 0.35, 0.30));
        assert_eq!((l.running, l.total, l.last_pid), (1, 234, 5678));
        assert_eq!(parse(b"12 0.35 100.00 0/1 1").unwrap().one, 12.0);
    }

    #[test]
    fn errors() {
        assert_eq!(parse(b"").unwrap_err(), LoadavgError::Fields { found: 0 });
        assert_eq!(
            parse(b"0.42 0.35 0.30 1/234\n").unwrap_err().to_string(),
            "expected 5 fields, found 4"
        );
        assert_eq!(
            parse(b"0.42 0.35 0.30 1/234 5678 9\n").unwrap_err(),
            LoadavgError::Fields { found: 6 }
        );
        assert_eq!(
            parse(b"0.42 0.35 0.30 1/234 5678\n\n").unwrap_err(),
            LoadavgError::Fields { found: 5 }
        );
        for bad in [
            &b"inf"[..],
            b"nan",
            b"1e5",
            b"-1.0",
            b".5",
            b"5.",
            b"1.2.3",
            b"\xff",
        ] {
            let mut input = bad.to_vec();
            input.extend_from_slice(b" 0.35 0.30 1/234 5678\n");
            assert_eq!(
                parse(&input).unwrap_err(),
                LoadavgError::Average { index: 1 },
                "{input:?}"
            );
        }
        assert_eq!(
            parse(b"0.42 0.35 0.30 1234 5678\n")
                .unwrap_err()
                .to_string(),
            "field 4: expected running/total"
        );
        assert_eq!(
            parse(b"0.42 0.35 0.30 1/4294967296 5678\n").unwrap_err(),
            LoadavgError::Tasks
        );
        assert_eq!(
            parse(b"0.42 0.35 0.30 1/ 5678\n").unwrap_err(),
            LoadavgError::Tasks
        );
        assert_eq!(
            parse(b"0.42 0.35 0.30 1/2 99999999999999999999\n").unwrap_err(),
            LoadavgError::LastPid
        );
    }

    #[test]
    fn average_length_both_sides_of_the_cap() {
        // 24 bytes (more than the kernel's longest `%lu.%02lu`, 23) is read; 25 is refused.
        let line = |avg: &str| format!("{avg} 0.35 0.30 1/234 5678\n");
        let at_cap = format!("1{}.00", "0".repeat(AVERAGE_CAP - 4));
        assert_eq!(at_cap.len(), 24);
        assert_eq!(parse(line(&at_cap).as_bytes()).unwrap().one, 1e20);
        let over = format!("1{}.00", "0".repeat(AVERAGE_CAP - 3));
        assert_eq!(
            parse(line(&over).as_bytes()).unwrap_err(),
            LoadavgError::Average { index: 1 }
        );
        // The cap counts every byte, the fraction's too.
        let over = format!("1.{}", "0".repeat(AVERAGE_CAP - 1));
        assert_eq!(
            parse(line(&over).as_bytes()).unwrap_err(),
            LoadavgError::Average { index: 1 }
        );
    }

    #[test]
    fn every_prefix_is_ok_or_err() {
        for end in 0..=REAL.len() {
            let _ = parse(&REAL[..end]);
        }
    }
}
