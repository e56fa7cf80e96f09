//! Logging to stderr, one line per event (docs/configuration.md "Logging"): JSON
//! (`{"ts","level","component","msg",…fields}`) or text (`TS LEVEL component: msg key=value …`).
//!
//! One thread, so the logger is a process-wide setting behind a mutex that is never contended.
//! [`Repeated`] implements the rule for failures that repeat every cycle: log the first, then
//! only on backoff steps (the 2nd, 4th, 8th, … consecutive failure), and the recovery.

use crate::config::{LogFormat, LogLevel};
use std::io::Write;
use std::sync::Mutex;

struct Settings {
    level: LogLevel,
    format: LogFormat,
}

static SETTINGS: Mutex<Settings> = Mutex::new(Settings {
    level: LogLevel::Info,
    format: LogFormat::Text,
});

/// Applies `[logging]`; `format = None` picks text on a terminal, JSON otherwise.
pub fn configure(level: LogLevel, format: Option<LogFormat>) {
    let format = format.unwrap_or_else(|| {
        if rustix::termios::isatty(std::io::stderr()) {
            LogFormat::Text
        } else {
            LogFormat::Json
        }
    });
    if let Ok(mut s) = SETTINGS.lock() {
        *s = Settings { level, format };
    }
}

/// Whether a message at `level` would be written.
pub fn enabled(level: LogLevel) -> bool {
    SETTINGS.lock().map(|s| level <= s.level).unwrap_or(true)
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
    }
}

/// Formats one event as a line (without the newline). Pure: the caller passes the time.
pub fn format_line(
    format: LogFormat,
    ts: crate::util::WallTime,
    level: LogLevel,
    component: &str,
    msg: &str,
    fields: &[(&str, &str)],
) -> String {
    let mut out = String::with_capacity(96 + msg.len());
    match format {
        LogFormat::Json => {
            let mut map = serde_json::Map::new();
            map.insert("ts".into(), ts.rfc3339_millis().to_string().into());
            map.insert("level".into(), level_name(level).into());
            map.insert("component".into(), component.into());
            map.insert("msg".into(), msg.into());
            for (k, v) in fields {
                map.insert((*k).into(), (*v).into());
            }
            out.push_str(&serde_json::Value::Object(map).to_string());
        }
        LogFormat::Text => {
            use std::fmt::Write as _;
            // Security rule S8: a text log escapes every control character (ESC, CR, …), not
            // only newlines, so no input can move a terminal's cursor or forge a line.
            let _ = write!(
                out,
                "{} {:<5} ",
                ts.rfc3339_millis(),
                level_name(level).to_uppercase()
            );
            push_escaped(&mut out, component);
            out.push_str(": ");
            push_escaped(&mut out, msg);
            for (k, v) in fields {
                out.push(' ');
                push_escaped(&mut out, k);
                if v.is_empty() || v.contains([' ', '"', '=']) || v.chars().any(char::is_control) {
                    let _ = write!(out, "={v:?}");
                } else {
                    let _ = write!(out, "={v}");
                }
            }
        }
    }
    out
}

/// `s` with newlines as `\n`, carriage returns as `\r`, tabs as `\t` and every other control
/// character as `\u{..}`: one event, one line, no terminal escapes.
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
}

/// Writes one event to stderr if `level` is enabled.
pub fn log(level: LogLevel, component: &str, msg: &str, fields: &[(&str, &str)]) {
    let format = match SETTINGS.lock() {
        Ok(s) if level <= s.level => s.format,
        Ok(_) => return,
        Err(_) => LogFormat::Text,
    };
    let mut line = format_line(
        format,
        crate::sys::time::wall_now(),
        level,
        component,
        msg,
        fields,
    );
    line.push('\n');
    // stderr is unbuffered; a failed write (closed stderr) has nowhere to be reported.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

pub fn error(component: &str, msg: &str, fields: &[(&str, &str)]) {
    log(LogLevel::Error, component, msg, fields)
}
pub fn warn(component: &str, msg: &str, fields: &[(&str, &str)]) {
    log(LogLevel::Warn, component, msg, fields)
}
pub fn info(component: &str, msg: &str, fields: &[(&str, &str)]) {
    log(LogLevel::Info, component, msg, fields)
}
pub fn debug(component: &str, msg: &str, fields: &[(&str, &str)]) {
    log(LogLevel::Debug, component, msg, fields)
}

/// Tracks one repeating failure (a database down, an unreadable file) so that it is logged on
/// the first failure, on each backoff step (2nd, 4th, 8th, … in a row), and on recovery.
#[derive(Debug, Default, Clone)]
pub struct Repeated {
    consecutive: u64,
}

impl Repeated {
    /// Records a failure; true when this one should be logged.
    pub fn failed(&mut self) -> bool {
        self.consecutive += 1;
        self.consecutive.is_power_of_two()
    }

    /// Records a success; true when it ends a run of failures (log the recovery).
    pub fn succeeded(&mut self) -> bool {
        let was_failing = self.consecutive > 0;
        self.consecutive = 0;
        was_failing
    }

    /// Failures in a row so far.
    pub fn count(&self) -> u64 {
        self.consecutive
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::WallTime;

    const TS: WallTime = WallTime {
        secs: 1_772_366_400,
        nanos: 5_000_000,
    };

    #[test]
    fn json_line_has_the_keys_of_the_spec() {
        let line = format_line(
            LogFormat::Json,
            TS,
            LogLevel::Warn,
            "sysstat",
            "cannot read",
            &[("file", "/proc/stat")],
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ts"], "2026-03-01T12:00:00.005Z");
        assert_eq!(v["level"], "warn");
        assert_eq!(v["component"], "sysstat");
        assert_eq!(v["msg"], "cannot read");
        assert_eq!(v["file"], "/proc/stat");
    }

    #[test]
    fn text_line_quotes_values_with_spaces_and_stays_one_line() {
        let line = format_line(
            LogFormat::Text,
            TS,
            LogLevel::Error,
            "config",
            "bad\nthing",
            &[("file", "/etc/a b.toml"), ("n", "3")],
        );
        assert_eq!(
            line,
            "2026-03-01T12:00:00.005Z ERROR config: bad\\nthing file=\"/etc/a b.toml\" n=3"
        );
    }

    /// Security rule S8: whatever bytes reach a log line (a server's error text, a file
    /// name), a text line has no control character and a JSON line is valid JSON.
    #[test]
    fn control_characters_never_reach_the_terminal() {
        let hostile = "a\u{1b}[2J\rb\u{7}\tc\u{0}\u{9b}";
        let line = format_line(
            LogFormat::Text,
            TS,
            LogLevel::Warn,
            "pg\u{1b}",
            hostile,
            &[("db\r", hostile), ("x", "\u{1b}")],
        );
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert_eq!(
            line,
            "2026-03-01T12:00:00.005Z WARN  pg\\u{1b}: a\\u{1b}[2J\\rb\\u{7}\\tc\\u{0}\\u{9b} \
             db\\r=\"a\\u{1b}[2J\\rb\\u{7}\\tc\\0\\u{9b}\" x=\"\\u{1b}\""
        );
        let json = format_line(
            LogFormat::Json,
            TS,
            LogLevel::Warn,
            "pg",
            hostile,
            &[("k", hostile)],
        );
        assert!(!json.chars().any(|c| c.is_ascii_control()), "{json:?}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["msg"], hostile);
    }

    #[test]
    fn repeated_failures_are_logged_on_backoff_steps_and_recovery() {
        let mut r = Repeated::default();
        let logged: Vec<u64> = (1..=20).filter(|_| r.failed()).collect();
        assert_eq!(logged, vec![1, 2, 4, 8, 16]);
        assert!(r.succeeded());
        assert!(!r.succeeded());
        assert!(r.failed());
    }
}
