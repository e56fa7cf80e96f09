//! Parser tests: framing, assembly, levels, caps, `full`, resync, offsets, and the committed
//! captures of a real PostgreSQL 15 (fixtures/pglog/).

use super::*;

const DEBIAN: &str = "%m [%p] %q%u@%d ";
const BERLIN: &[u8] = include_bytes!("../../fixtures/tzif/Europe_Berlin");

fn settings(format: Format, prefix: &str, min: PgSeverity) -> ParseSettings {
    ParseSettings {
        format,
        log_line_prefix: prefix.to_string(),
        zone: tz::Zone::from_tzif(BERLIN).unwrap(),
        min_level: min,
        max_message_bytes: 8192,
        max_entry_bytes: MAX_ENTRY_BYTES,
    }
}

/// Feeds `input` in one go (plus `finish`), returns (entries with their end offsets, consumed).
fn run(s: ParseSettings, input: &[u8]) -> (Vec<(Entry, u64)>, usize) {
    let mut p = Parser::new(s).unwrap();
    let mut out = Vec::new();
    let n = p.feed(input, false, &mut |e, end| out.push((e, end)));
    p.finish(&mut |e, end| out.push((e, end)));
    (out, n)
}

/// Feeds `input` through a fixed buffer of `cap` bytes, as the tailer does.
fn run_buffered(s: ParseSettings, input: &[u8], cap: usize) -> Vec<(Entry, u64)> {
    let mut p = Parser::new(s).unwrap();
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(cap);
    let mut at = 0;
    loop {
        let take = (cap - buf.len()).min(input.len() - at);
        buf.extend_from_slice(&input[at..at + take]);
        at += take;
        let full = buf.len() == cap;
        let n = p.feed(&buf, full, &mut |e, end| out.push((e, end)));
        assert!(n <= buf.len());
        assert!(buf.len() <= cap, "memory grows");
        buf.drain(..n);
        if at == input.len() && (n == 0 || buf.is_empty()) {
            break;
        }
    }
    p.finish(&mut |e, end| out.push((e, end)));
    out
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn debian_prefix_multi_line_entries() {
    let log = "2026-11-27 21:33:02.966 CET [4242] app@shop ERROR:  relation \"foo\" does not exist at character 15\n\
2026-11-27 21:33:02.966 CET [4242] app@shop HINT:  Perhaps you meant to reference the table \"public.food\".\n\
2026-11-27 21:33:02.966 CET [4242] app@shop STATEMENT:  select *\n\
\t  from foo\n\
\t where x = 1;\n\
2026-11-27 21:33:03.001 CET [77] LOG:  checkpoint starting: time\n\
2026-11-27 21:33:04.500 CET [4243] app@shop LOG:  duration: 12.345 ms  statement: select pg_sleep(0.01);\n";
    let (out, n) = run(
        settings(Format::Stderr, DEBIAN, PgSeverity::Warning),
        log.as_bytes(),
    );
    assert_eq!(n, log.len());
    assert_eq!(out.len(), 3);
    let (e, end) = &out[0];
    assert_eq!(e.level, "ERROR");
    assert_eq!(e.message, "relation \"foo\" does not exist");
    assert_eq!(e.cursor_position, Some(15));
    assert_eq!(out[1].0.cursor_position, None);
    assert_eq!(
        e.hint.as_deref(),
        Some("Perhaps you meant to reference the table \"public.food\".")
    );
    assert_eq!(
        e.statement.as_deref(),
        Some("select *\n  from foo\n where x = 1;")
    );
    assert_eq!(e.pid, Some(4242));
    assert_eq!(e.user, some("app"));
    assert_eq!(e.database, some("shop"));
    assert_eq!(
        e.timestamp.unwrap().rfc3339_millis().to_string(),
        "2026-11-27T20:33:02.966Z"
    );
    let second = log.find("2026-11-27 21:33:03.001").unwrap() as u64;
    assert_eq!(*end, second);
    assert_eq!(out[1].0.level, "LOG");
    assert_eq!(out[1].0.user, None);
    assert_eq!(out[2].0.duration_ms, Some(12.345));
    assert_eq!(out[2].1, log.len() as u64);
}

#[test]
fn levels_filter_and_debug() {
    let mut log = String::new();
    for lvl in [
        "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "LOG", "FATAL", "PANIC",
    ] {
        log.push_str(&format!("2026-07-01 12:00:00.000 CEST [1] {lvl}:  m\n"));
        log.push_str("2026-07-01 12:00:00.000 CEST [1] DETAIL:  d\n");
    }
    let levels = |min| {
        run(settings(Format::Stderr, "%m [%p] ", min), log.as_bytes())
            .0
            .into_iter()
            .map(|(e, _)| e.level)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        levels(PgSeverity::Warning),
        ["WARNING", "ERROR", "LOG", "FATAL", "PANIC"]
    );
    assert_eq!(levels(PgSeverity::Log), ["LOG", "FATAL", "PANIC"]);
    assert_eq!(levels(PgSeverity::Debug5).len(), 8);
    assert_eq!(levels(PgSeverity::Debug3)[0], "DEBUG");
    // The DETAIL of a dropped entry is not given to the next one.
    let (out, _) = run(
        settings(Format::Stderr, "%m [%p] ", PgSeverity::Error),
        log.as_bytes(),
    );
    assert!(out.iter().all(|(e, _)| e.detail.as_deref() == Some("d")));
}

#[test]
fn verbose_sqlstate_and_location() {
    let log = "2026-07-01 12:00:00.000 CEST [5] ERROR:  42P01: relation \"nope\" does not exist\n\
2026-07-01 12:00:00.000 CEST [5] LOCATION:  parserOpenTable, parse_relation.c:1384\n\
2026-07-01 12:00:00.000 CEST [5] STATEMENT:  select * from nope;\n";
    let (out, _) = run(
        settings(Format::Stderr, "%m [%p] ", PgSeverity::Warning),
        log.as_bytes(),
    );
    assert_eq!(out.len(), 1);
    let e = &out[0].0;
    assert_eq!(e.sqlstate.as_deref(), Some("42P01"));
    assert_eq!(e.message, "relation \"nope\" does not exist");
    assert_eq!(e.statement.as_deref(), Some("select * from nope;"));
    // Prefix %e wins; a 5-letter word is not a code.
    let log = "00000 [5] LOG:  ABCDE: not a code\n42P01 [5] LOG:  00000: x\n";
    let (out, _) = run(
        settings(Format::Stderr, "%e [%p] ", PgSeverity::Warning),
        log.as_bytes(),
    );
    // 00000 is "no code" in every format (jsonlog leaves it out).
    assert_eq!(out[0].0.sqlstate, None);
    assert_eq!(out[0].0.message, "ABCDE: not a code");
    assert_eq!(out[1].0.sqlstate.as_deref(), Some("42P01"));
    assert_eq!(out[1].0.message, "x");
}

#[test]
fn lines_without_prefix_continue_or_are_skipped() {
    let log = "garbage before any entry\n\
2026-07-01 12:00:00.000 CEST [5] WARNING:  first\n\
not a prefix line\n\
\ttab line\n";
    let (out, n) = run(
        settings(Format::Stderr, "%m [%p] ", PgSeverity::Warning),
        log.as_bytes(),
    );
    assert_eq!(n, log.len());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.message, "first\nnot a prefix line\ntab line");
}

#[test]
fn every_prefix_of_a_record_consumes_nothing() {
    let csv = b"2026-07-01 12:00:00.123 CEST,\"u\",\"d\",5,\"10.0.0.1:5432\",6a.5,1,\"SELECT\",2026-07-01 11:00:00 CEST,3/4,0,ERROR,42P01,\"multi\nline, \"\"quoted\"\"\",,,,,,\"select 1\",,,\"psql\",\"client backend\",,0\n";
    let json = b"{\"timestamp\":\"2026-07-01 12:00:00.123 CEST\",\"pid\":5,\"error_severity\":\"ERROR\",\"message\":\"x\"}\n";
    let stderr = b"2026-07-01 12:00:00.000 CEST [5] ERROR:  boom\n";
    for (fmt, rec) in [
        (Format::Stderr, &stderr[..]),
        (Format::Csvlog, &csv[..]),
        (Format::Jsonlog, &json[..]),
    ] {
        for cut in 0..rec.len() {
            let mut p = Parser::new(settings(fmt, "%m [%p] ", PgSeverity::Debug5)).unwrap();
            let mut got = 0;
            let n = p.feed(&rec[..cut], false, &mut |_, _| got += 1);
            assert_eq!((n, got), (0, 0), "{fmt:?} cut {cut}");
            assert_eq!(p.position(), 0);
        }
        let (out, n) = run(settings(fmt, "%m [%p] ", PgSeverity::Debug5), rec);
        assert_eq!((out.len(), n), (1, rec.len()), "{fmt:?}");
        assert_eq!(out[0].0.level, "ERROR");
        assert_eq!(out[0].0.pid, Some(5));
    }
}

#[test]
fn csv_entry_fields() {
    let rec = "2026-07-01 12:00:00.123 CEST,\"u\",\"d\",5,\"10.0.0.1:5432\",6a.5,1,\"SELECT\",2026-07-01 11:00:00 CEST,3/4,0,ERROR,42P01,\"multi\nline, \"\"quoted\"\"\",\"det\",\"hin\",,,\"ctx\",\"select 1\",,,\"psql\",\"client backend\",,0\n";
    let (out, _) = run(
        settings(Format::Csvlog, "", PgSeverity::Warning),
        rec.as_bytes(),
    );
    let e = &out[0].0;
    assert_eq!(e.message, "multi\nline, \"quoted\"");
    assert_eq!(e.client.as_deref(), Some("10.0.0.1"));
    assert_eq!(e.detail.as_deref(), Some("det"));
    assert_eq!(e.hint.as_deref(), Some("hin"));
    assert_eq!(e.context.as_deref(), Some("ctx"));
    assert_eq!(e.statement.as_deref(), Some("select 1"));
    assert_eq!(e.application.as_deref(), Some("psql"));
    assert_eq!(e.sqlstate.as_deref(), Some("42P01"));
    assert_eq!(
        e.timestamp.unwrap().rfc3339_millis().to_string(),
        "2026-07-01T10:00:00.123Z"
    );
}

#[test]
fn json_entry_fields_and_bad_lines() {
    let log = b"{\"timestamp\":\"2026-01-01 12:00:00.500 CET\",\"user\":\"u\",\"dbname\":\"d\",\"pid\":9,\"remote_host\":\"[local]\",\"error_severity\":\"ERROR\",\"state_code\":\"22012\",\"message\":\"division by zero\",\"statement\":\"select 1/0;\",\"extra\":[1,{\"a\":2}]}\n\
not json\n\
{\"error_severity\":\"LOG\",\"message\":\"caf\xe9\"}\n\
{\"error_severity\":\"NOTICE\",\"message\":\"low\"}\n\
{\"pid\":\"wrong type\"}\n";
    let (out, n) = run(settings(Format::Jsonlog, "", PgSeverity::Warning), log);
    assert_eq!(n, log.len());
    assert_eq!(out.len(), 2);
    let e = &out[0].0;
    assert_eq!(e.message, "division by zero");
    assert_eq!(e.client.as_deref(), Some("[local]"));
    assert_eq!(e.statement.as_deref(), Some("select 1/0;"));
    assert_eq!(
        e.timestamp.unwrap().rfc3339_millis().to_string(),
        "2026-01-01T11:00:00.500Z"
    );
    assert_eq!(out[1].0.message, "caf\u{fffd}");
}

#[test]
fn caps_cut_on_char_boundaries() {
    let mut s = settings(Format::Stderr, "%m [%p] ", PgSeverity::Warning);
    s.max_message_bytes = 10;
    s.max_entry_bytes = 30;
    let log = "2026-07-01 12:00:00.000 CEST [5] ERROR:  ééééééé\n\
2026-07-01 12:00:00.000 CEST [5] DETAIL:  0123456789\n\
2026-07-01 12:00:00.000 CEST [5] HINT:  0123456789abcdef\n\
2026-07-01 12:00:00.000 CEST [5] ERROR:  short\n";
    let (out, _) = run(s, log.as_bytes());
    let e = &out[0].0;
    assert_eq!(e.message, "ééééé");
    assert!(e.truncated);
    assert_eq!(e.detail.as_deref(), Some("0123456789"));
    assert_eq!(e.hint.as_deref(), Some("0123456789"));
    assert!(!out[1].0.truncated);
}

#[test]
fn over_long_records_with_full_buffers() {
    let long = "x".repeat(10_000);
    let log = format!(
        "2026-07-01 12:00:00.000 CEST [5] ERROR:  {long}\n\
2026-07-01 12:00:00.000 CEST [5] DETAIL:  {long}\n\
2026-07-01 12:00:00.000 CEST [6] NOTICE:  {long}\n\
2026-07-01 12:00:00.000 CEST [7] ERROR:  after\n"
    );
    let mut s = settings(Format::Stderr, "%m [%p] ", PgSeverity::Warning);
    s.max_message_bytes = 100_000;
    let out = run_buffered(s, log.as_bytes(), 4096);
    assert_eq!(out.len(), 2);
    let (e, end) = &out[0];
    assert!(e.truncated);
    assert!(e.message.len() < 4096 && e.message.starts_with("xxxx"));
    assert!(e.detail.as_ref().unwrap().starts_with("xxx"));
    let notice = log.find("2026-07-01 12:00:00.000 CEST [6]").unwrap();
    assert_eq!(*end, notice as u64);
    assert_eq!(out[1].0.message, "after");
    assert!(!out[1].0.truncated);
    assert_eq!(out[1].1, log.len() as u64);

    // csv: a record with a quoted message longer than the buffer, then a normal one.
    let csv = format!(
        "2026-07-01 12:00:00.123 CEST,,,5,,6a.5,1,,,,0,ERROR,XX000,\"{long}\n\"\"{long}\",,,,,,,,,,,,0\n\
2026-07-01 12:00:00.123 CEST,,,6,,6a.5,2,,,,0,ERROR,XX000,\"next\",,,,,,,,,,,,0\n"
    );
    let out = run_buffered(
        settings(Format::Csvlog, "", PgSeverity::Warning),
        csv.as_bytes(),
        4096,
    );
    assert_eq!(out.len(), 2);
    assert!(out[0].0.truncated);
    assert_eq!(
        out[0].1,
        csv.find("2026-07-01 12:00:00.123 CEST,,,6").unwrap() as u64
    );
    assert_eq!(out[1].0.message, "next");
    assert_eq!(out[1].0.pid, Some(6));

    // json: a cut object keeps its start.
    let json = format!(
        "{{\"error_severity\":\"ERROR\",\"pid\":5,\"message\":\"{long}\"}}\n{{\"error_severity\":\"ERROR\",\"message\":\"next\"}}\n"
    );
    let out = run_buffered(
        settings(Format::Jsonlog, "", PgSeverity::Warning),
        json.as_bytes(),
        4096,
    );
    assert_eq!(out.len(), 2);
    assert!(out[0].0.truncated && out[0].0.message.starts_with("xxx"));
    assert_eq!(out[0].0.pid, Some(5));
    assert_eq!(out[1].0.message, "next");
}

#[test]
fn resume_offsets_and_resync() {
    let log = "2026-07-01 12:00:00.000 CEST [5] ERROR:  one\n\
2026-07-01 12:00:00.000 CEST [5] DETAIL:  d\n\
2026-07-01 12:00:00.000 CEST [6] ERROR:  two\n";
    let mut p = Parser::new(settings(Format::Stderr, "%m [%p] ", PgSeverity::Warning)).unwrap();
    let mut out = Vec::new();
    let n = p.feed(log.as_bytes(), false, &mut |e, end| out.push((e, end)));
    assert_eq!(n, log.len());
    assert_eq!(out.len(), 1);
    let two = log.find("2026-07-01 12:00:00.000 CEST [6]").unwrap() as u64;
    assert_eq!(out[0].1, two);
    // "two" is pending: resuming from its start repeats nothing that was handed out.
    assert_eq!(p.resume_offset(), two);
    assert_eq!(p.position(), log.len() as u64);
    p.finish(&mut |e, end| out.push((e, end)));
    assert_eq!(p.resume_offset(), log.len() as u64);

    // Start in the middle of the first line: skip to the first line whose prefix matches.
    p.reset(10, true);
    let mut out = Vec::new();
    let n = p.feed(&log.as_bytes()[10..], false, &mut |e, end| {
        out.push((e, end))
    });
    p.finish(&mut |e, end| out.push((e, end)));
    assert_eq!(n, log.len() - 10);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.message, "two");

    // csv resync from inside a quoted multi-line field.
    let csv = "2026-07-01 12:00:00.123 CEST,,,5,,6a.5,1,,,,0,ERROR,XX000,\"a\n2026-07-01 12:00:00 fake\n\",,,,,,,,,,,,0\n\
2026-07-01 12:00:00.123 CEST,,,6,,6a.5,2,,,,0,ERROR,XX000,\"next\",,,,,,,,,,,,0\n";
    let mut p = Parser::new(settings(Format::Csvlog, "", PgSeverity::Warning)).unwrap();
    let start = csv.find("\",,,,").unwrap();
    p.reset(start as u64, true);
    let mut out = Vec::new();
    p.feed(&csv.as_bytes()[start..], false, &mut |e, end| {
        out.push((e, end))
    });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.pid, Some(6));
}

#[test]
fn bad_prefix_is_one_line_error() {
    // An unknown escape is nothing (the server writes nothing for it); a prefix too long
    // for the fixed capacity is the one error, in one line.
    assert!(Parser::new(settings(Format::Stderr, "%m %y ", PgSeverity::Warning)).is_ok());
    let e = Parser::new(settings(
        Format::Stderr,
        &"%p".repeat(100),
        PgSeverity::Warning,
    ))
    .unwrap_err();
    assert!(!e.contains('\n'), "{e}");
}

#[test]
fn format_names() {
    use crate::config::PgLogFormat;
    assert_eq!(Format::from_config(PgLogFormat::Auto), None);
    assert_eq!(
        Format::from_config(PgLogFormat::Csvlog),
        Some(Format::Csvlog)
    );
    assert_eq!(Format::from_destination("jsonlog"), Some(Format::Jsonlog));
    assert_eq!(Format::from_destination("syslog"), None);
}

#[test]
fn invalid_utf8_is_lossy() {
    let log = b"2026-07-01 12:00:00.000 CEST [5] app\xff@db ERROR:  bad \xc3 byte\n";
    let (out, _) = run(settings(Format::Stderr, DEBIAN, PgSeverity::Warning), log);
    assert_eq!(out[0].0.message, "bad \u{fffd} byte");
    assert_eq!(out[0].0.user.as_deref(), Some("app\u{fffd}"));
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_prefix(dir: &str) -> String {
    String::from_utf8(fixture(&format!("fixtures/pglog/{dir}/log_line_prefix"))).unwrap()
}

/// Every fixture line that opens an entry (a severity word after the prefix), counted the
/// simple way: the word shapes PostgreSQL writes.
fn severity_lines(log: &str) -> usize {
    log.lines()
        .filter(|l| {
            [
                "DEBUG:  ",
                "INFO:  ",
                "NOTICE:  ",
                "WARNING:  ",
                "ERROR:  ",
                "LOG:  ",
                "FATAL:  ",
                "PANIC:  ",
            ]
            .iter()
            .any(|w| {
                l.contains(&format!("| {w}"))
                    || l.contains(&format!(" {w}")) && !l.starts_with('\t')
            })
        })
        .count()
}

#[test]
fn fixture_debian_prefix() {
    let log = fixture("fixtures/pglog/debian/postgresql.log");
    let s = settings(
        Format::Stderr,
        &fixture_prefix("debian"),
        PgSeverity::Debug5,
    );
    let (out, n) = run(s, &log);
    assert_eq!(n, log.len());
    let text = String::from_utf8_lossy(&log);
    assert_eq!(out.len(), severity_lines(&text));
    // Ends are increasing and each entry's end is where the next begins.
    for w in out.windows(2) {
        assert!(w[0].1 < w[1].1);
    }
    assert_eq!(out.last().unwrap().1, log.len() as u64);
    let find = |msg: &str| {
        out.iter()
            .map(|(e, _)| e)
            .find(|e| e.message.starts_with(msg))
            .unwrap_or_else(|| panic!("no entry {msg:?}"))
    };
    let e = find("duplicate key value");
    assert_eq!(e.level, "ERROR");
    assert_eq!(e.detail.as_deref(), Some("Key (id)=(1) already exists."));
    assert_eq!(
        e.statement.as_deref(),
        Some("insert into t values (1, 'dup');")
    );
    assert_eq!(
        (e.user.as_deref(), e.database.as_deref()),
        (Some("test"), Some("postgres"))
    );
    // CET in November: UTC+1.
    let ts = e.timestamp.unwrap().rfc3339_millis().to_string();
    assert!(ts.starts_with("2026-11-28T00:"), "{ts}");
    let e = find("column \"x\" does not exist");
    assert_eq!(
        e.statement.as_deref(),
        Some("select 1,\n       2,\n       x\n  from t\n where id = 1;")
    );
    let e = find("multi-line warning");
    assert_eq!(e.level, "WARNING");
    assert_eq!(e.message, "multi-line warning\nsecond line");
    assert_eq!(e.detail.as_deref(), Some("detail line 1\ndetail line 2"));
    assert_eq!(e.hint.as_deref(), Some("a hint, with \"quotes\""));
    assert!(
        e.context
            .as_deref()
            .unwrap()
            .starts_with("PL/pgSQL function")
    );
    assert_eq!(find("hello notice").level, "NOTICE");
    let e = find("division by zero");
    assert_eq!(
        e.context.as_deref(),
        Some("SQL expression \"1/0\"\nPL/pgSQL function f() line 1 at RETURN")
    );
    let e = find("relation \"nosuch_verbose\"");
    assert_eq!(e.sqlstate.as_deref(), Some("42P01"));
    assert_eq!(
        e.statement.as_deref(),
        Some("select * from nosuch_verbose;")
    );
    let e = find("duration: ");
    assert!(e.duration_ms.is_some());
    assert!(out.iter().filter(|(e, _)| e.duration_ms.is_some()).count() >= 4);
    let e = find("password authentication failed");
    assert_eq!(e.level, "FATAL");
    assert!(
        e.detail
            .as_deref()
            .unwrap()
            .starts_with("Connection matched pg_hba.conf line")
    );
    assert!(out.iter().any(|(e, _)| e.level == "DEBUG"));
    assert!(find("checkpoint starting").user.is_none());
    assert!(find("invalid input syntax for type integer: \"héllo").level == "ERROR");
    // WARNING keeps far fewer.
    let (warn, _) = run(
        settings(
            Format::Stderr,
            &fixture_prefix("debian"),
            PgSeverity::Warning,
        ),
        &log,
    );
    assert!(
        warn.iter()
            .all(|(e, _)| e.level != "DEBUG" && e.level != "NOTICE")
    );
    assert!(warn.len() < out.len() && warn.len() > 20);
}

#[test]
fn fixture_every_escape_prefix() {
    let log = fixture("fixtures/pglog/every-escape/postgresql.log");
    let prefix = fixture_prefix("every-escape");
    let (out, n) = run(settings(Format::Stderr, &prefix, PgSeverity::Debug5), &log);
    assert_eq!(n, log.len());
    let text = String::from_utf8_lossy(&log);
    assert_eq!(out.len(), severity_lines(&text));
    // Same workload as the Debian capture: same levels in the same order.
    let deb = fixture("fixtures/pglog/debian/postgresql.log");
    let (deb, _) = run(
        settings(
            Format::Stderr,
            &fixture_prefix("debian"),
            PgSeverity::Debug5,
        ),
        &deb,
    );
    let lv = |v: &[(Entry, u64)]| v.iter().map(|(e, _)| e.level).collect::<Vec<_>>();
    assert_eq!(lv(&out), lv(&deb));
    for (a, b) in out.iter().zip(&deb) {
        let digitless = |s: &str| {
            s.chars()
                .filter(|c| !c.is_ascii_digit())
                .collect::<String>()
        };
        assert_eq!(digitless(&a.0.message), digitless(&b.0.message));
        assert_eq!(
            a.0.detail.is_some(),
            b.0.detail.is_some(),
            "{}",
            a.0.message
        );
        assert_eq!(
            a.0.statement.is_some(),
            b.0.statement.is_some(),
            "{}",
            a.0.message
        );
        assert_eq!(a.0.user, b.0.user, "{}", a.0.message);
        assert_eq!(a.0.database, b.0.database, "{}", a.0.message);
    }
    let find = |msg: &str| {
        out.iter()
            .map(|(e, _)| e)
            .find(|e| e.message.starts_with(msg))
            .unwrap_or_else(|| panic!("no entry {msg:?}"))
    };
    let e = find("duplicate key value");
    assert_eq!(e.sqlstate.as_deref(), Some("23505"));
    assert_eq!(e.application.as_deref(), Some("capture"));
    assert_eq!(e.client.as_deref(), Some("127.0.0.1"));
    let e = find("custom failure");
    assert_eq!(e.application.as_deref(), Some("my app"));
    assert_eq!(e.client.as_deref(), Some("[local]"));
    assert_eq!(e.sqlstate.as_deref(), Some("P0001"));
    assert!(
        out.iter()
            .all(|(e, _)| e.pid.is_some() && e.timestamp.is_some())
    );
    let e = find("checkpoint starting");
    assert_eq!((e.user.as_deref(), e.sqlstate.as_deref()), (None, None));
}

/// Whether two cut plans agree: both text and cut, one the start of the other.
fn cut_plans_agree(a: &Entry, b: &Entry) -> bool {
    match (&a.plan, &b.plan) {
        (Some(Plan::Text(x)), Some(Plan::Text(y))) => {
            a.plan_truncated && b.plan_truncated && (x.starts_with(y) || y.starts_with(x))
        }
        _ => false,
    }
}

/// The stderr (Debian prefix), csv and (PG 15+) json logs of one capture run give the same
/// entries: csv and json exactly, stderr in every field its prefix carries (the message with
/// ` at character N` taken off as `cursor_position`, the verbose code taken off). Plans cut by
/// the entry cap are cut at different bytes (each format's record holds other fields before
/// the message): they agree when both are cut text, one the start of the other.
fn formats_agree(log: &str, csv: &str, json: Option<&str>) -> Vec<Entry> {
    let (csv, log) = (fixture(csv), fixture(log));
    let (c, n) = run(settings(Format::Csvlog, "", PgSeverity::Debug5), &csv);
    assert_eq!(n, csv.len());
    assert!(c.len() > 25);
    if let Some(json) = json {
        let json = fixture(json);
        let (j, n) = run(settings(Format::Jsonlog, "", PgSeverity::Debug5), &json);
        assert_eq!(n, json.len());
        assert_eq!(c.len(), j.len());
        for ((c, _), (j, _)) in c.iter().zip(&j) {
            if cut_plans_agree(c, j) {
                assert_eq!(c.statement, j.statement);
                continue;
            }
            assert_eq!(c, j);
        }
    }
    let (s, _) = run(
        settings(Format::Stderr, "%m [%p] %q%u@%d ", PgSeverity::Debug5),
        &log,
    );
    // Lines written before the logging collector took over (PG 12, 13) exist in stderr only.
    let skip = s.len() - c.len();
    assert!(skip <= 3, "{} stderr entries, {} csv", s.len(), c.len());
    for ((c, _), (s, _)) in c.iter().zip(&s[skip..]) {
        assert_eq!(
            (c.level, c.timestamp, c.pid, &c.user, &c.database),
            (s.level, s.timestamp, s.pid, &s.user, &s.database),
            "{}",
            c.message
        );
        assert_eq!(s.message, c.message);
        assert_eq!(c.detail, s.detail);
        assert_eq!(c.hint, s.hint);
        assert_eq!(c.context, s.context);
        assert_eq!(c.statement, s.statement, "{}", c.message);
        assert_eq!(c.duration_ms, s.duration_ms);
        assert_eq!(c.cursor_position, s.cursor_position, "{}", c.message);
        if !cut_plans_agree(c, s) {
            assert_eq!(c.plan, s.plan, "{}", c.message);
            assert_eq!(c.plan_truncated, s.plan_truncated);
        }
    }
    c.into_iter().map(|(e, _)| e).collect()
}

#[test]
fn fixture_csv_json_and_stderr_agree() {
    let c = formats_agree(
        "fixtures/pglog/debian/postgresql.log",
        "fixtures/pglog/csvlog/postgresql.csv",
        Some("fixtures/pglog/jsonlog/postgresql.json"),
    );
    let e = c
        .iter()
        .find(|e| e.message.starts_with("custom failure"))
        .unwrap();
    assert_eq!(e.detail.as_deref(), Some("it, \"failed\""));
    assert_eq!(e.client.as_deref(), Some("[local]"));
    assert_eq!(e.application.as_deref(), Some("my app"));
}

#[test]
fn fixture_other_server_majors() {
    // PG 12: 23 csv columns, 13: 24, 17 and 18: 26 (+ jsonlog).
    for (major, cols, json) in [
        (12, 23, false),
        (13, 24, false),
        (17, 26, true),
        (18, 26, true),
    ] {
        let dir = format!("fixtures/pglog/pg{major}");
        let csv = format!("{dir}/postgresql.csv");
        let first = fixture(&csv);
        let first = first.split(|&b| b == b'\n').next().unwrap();
        assert_eq!(csv::fields(first).count(), cols, "{csv}");
        let json_path = format!("{dir}/postgresql.json");
        let c = formats_agree(
            &format!("{dir}/postgresql.log"),
            &csv,
            json.then_some(json_path.as_str()),
        );
        let e = c
            .iter()
            .find(|e| e.message.starts_with("duplicate key value"))
            .unwrap_or_else(|| panic!("{dir}"));
        assert_eq!(e.detail.as_deref(), Some("Key (id)=(1) already exists."));
        assert_eq!(e.application.as_deref(), Some("capture"));
        assert_eq!(e.client.as_deref(), Some("127.0.0.1"));
        assert!(c.iter().any(|e| e.duration_ms.is_some()), "{dir}");
        assert!(c.iter().any(|e| e.level == "FATAL"), "{dir}");
    }
}

#[test]
fn fixtures_through_small_buffers_and_resync() {
    for (fmt, path, prefix) in [
        (
            Format::Stderr,
            "fixtures/pglog/debian/postgresql.log",
            fixture_prefix("debian"),
        ),
        (
            Format::Stderr,
            "fixtures/pglog/every-escape/postgresql.log",
            fixture_prefix("every-escape"),
        ),
        (
            Format::Csvlog,
            "fixtures/pglog/csvlog/postgresql.csv",
            String::new(),
        ),
        (
            Format::Jsonlog,
            "fixtures/pglog/jsonlog/postgresql.json",
            String::new(),
        ),
    ] {
        let log = fixture(path);
        let (whole, _) = run(settings(fmt, &prefix, PgSeverity::Debug5), &log);
        // A buffer larger than every record: identical entries, whatever the chunking.
        for cap in [1024, 1500, 4096] {
            let longest = log.split(|&b| b == b'\n').map(<[u8]>::len).max().unwrap();
            if cap <= longest + 1 && fmt != Format::Csvlog {
                continue;
            }
            if fmt == Format::Csvlog && cap < 1500 {
                continue;
            }
            let got = run_buffered(settings(fmt, &prefix, PgSeverity::Debug5), &log, cap);
            assert_eq!(got, whole, "{path} cap {cap}");
        }
        // A small buffer: never panics, never grows, keeps the entries it can.
        let got = run_buffered(settings(fmt, &prefix, PgSeverity::Debug5), &log, 200);
        assert!(!got.is_empty(), "{path}");
        // Starting anywhere with resync: the entries after the first record start are those
        // of the whole file.
        for start in (0..log.len()).step_by(97) {
            let mut p = Parser::new(settings(fmt, &prefix, PgSeverity::Debug5)).unwrap();
            p.reset(start as u64, true);
            let mut got = Vec::new();
            p.feed(&log[start..], false, &mut |e, end| got.push((e, end)));
            p.finish(&mut |e, end| got.push((e, end)));
            let tail: Vec<_> = whole
                .iter()
                .filter(|(_, end)| *end > start as u64)
                .collect();
            assert!(
                got.len() <= tail.len() && got.len() + 2 >= tail.len(),
                "{path} at {start}"
            );
            if let (Some(a), Some(b)) = (got.last(), tail.last()) {
                assert_eq!(&a, b);
            }
        }
    }
}

#[test]
fn cursor_suffix_only_at_the_end_of_stderr_messages() {
    let log = "2026-11-27 21:33:02.966 CET [1] a@b ERROR:  syntax error at or near \"fro\" at character 10\n\
2026-11-27 21:33:02.966 CET [1] a@b ERROR:  first line\n\
\tsecond line at character 7\n\
2026-11-27 21:33:02.966 CET [1] a@b ERROR:  at character 7 in the middle\n\
2026-11-27 21:33:02.966 CET [1] a@b ERROR:  not a position at character 0\n\
2026-11-27 21:33:02.966 CET [1] a@b ERROR:  no number at character \n\
2026-11-27 21:33:02.966 CET [1] a@b ERROR:  too long at character 123456789012\n";
    let (out, _) = run(
        settings(Format::Stderr, DEBIAN, PgSeverity::Warning),
        log.as_bytes(),
    );
    let got: Vec<_> = out
        .iter()
        .map(|(e, _)| (e.message.as_str(), e.cursor_position))
        .collect();
    assert_eq!(
        got,
        [
            ("syntax error at or near \"fro\"", Some(10)),
            ("first line\nsecond line", Some(7)),
            ("at character 7 in the middle", None),
            ("not a position at character 0", None),
            ("no number at character ", None),
            ("too long at character 123456789012", None),
        ]
    );
    // csvlog and jsonlog carry it as a field: the message is left as it is.
    let (out, _) = run(
        settings(Format::Jsonlog, "", PgSeverity::Warning),
        br#"{"error_severity":"ERROR","message":"x at character 3","internal_position":4}
"#,
    );
    assert_eq!(out[0].0.message, "x at character 3");
    assert_eq!(out[0].0.cursor_position, Some(4));
}

/// A PostgreSQL 15 capture with auto_explain (fixtures/pglog/auto-explain): the three formats
/// agree, and the plans are what docs/metrics.md says.
#[test]
fn fixture_auto_explain_plans_in_three_formats() {
    let dir = "fixtures/pglog/auto-explain";
    let c = formats_agree(
        &format!("{dir}/postgresql.log"),
        &format!("{dir}/postgresql.csv"),
        Some(&format!("{dir}/postgresql.json")),
    );
    let plans: Vec<&Entry> = c.iter().filter(|e| e.plan.is_some()).collect();
    assert_eq!(plans.len(), 6, "2 json, 2 text, 2 over the entry cap");
    for e in &plans {
        assert!(e.message.starts_with("duration: ") && e.message.ends_with(" ms  plan:"));
        assert!(e.duration_ms.is_some());
    }
    let Some(Plan::Json(j)) = &plans[0].plan else {
        panic!("{:?}", plans[0])
    };
    assert_eq!(j["Plan"]["Node Type"], "Aggregate");
    assert_eq!(
        plans[0].statement.as_deref(),
        Some("select count(*) from t where id > 0;")
    );
    assert_eq!(
        plans[1].statement.as_deref(),
        Some(
            "select t.id,\n       t.v\n  from t join t t2 on t2.id = t.id\n where t.v <> 'x \"quoted\"';"
        )
    );
    assert_eq!(plans[1].plan.as_ref().unwrap().format(), "json");
    for e in &plans[2..4] {
        let Some(Plan::Text(t)) = &e.plan else {
            panic!("{e:?}")
        };
        assert!(t.starts_with("Query Text: select"));
        assert!(!e.plan_truncated && !e.truncated);
    }
    assert_eq!(
        plans[3].statement.as_deref(),
        Some(
            "select t.id,\n       t.v\n  from t join t t2 on t2.id = t.id\n where t.v <> 'ünïcode';"
        )
    );
    let Some(Plan::Text(t)) = &plans[3].plan else {
        panic!()
    };
    assert!(t.contains("\nHash Join  (cost="));
    // Over 64 KiB: cut, sent as text, the statement still read (json) or its start (text).
    for e in &plans[4..] {
        assert!(e.plan_truncated && e.truncated, "{e:?}");
        let Some(Plan::Text(t)) = &e.plan else {
            panic!("{e:?}")
        };
        assert!(t.len() <= MAX_ENTRY_BYTES && t.len() > MAX_ENTRY_BYTES / 2);
        assert!(
            e.statement
                .as_deref()
                .unwrap()
                .starts_with("select 0 as n, v from t")
        );
    }
    // Errors keep their cursor in every format.
    let e = c
        .iter()
        .find(|e| e.message.starts_with("syntax error"))
        .unwrap();
    assert_eq!(e.message, "syntax error at or near \"fro\"");
    assert_eq!(e.cursor_position, Some(10));
    let e = c.iter().find(|e| e.message.contains("nosuch")).unwrap();
    assert_eq!(e.cursor_position, Some(28));
    assert_eq!(
        e.statement.as_deref(),
        Some("select 1,\n       2,\n       nosuch\n  from t;")
    );
}

/// Through the tailer's 64 KiB buffer the auto_explain capture gives the same entries as read
/// whole: the records of the plans over 64 KiB are cut by the buffer instead of the entry cap,
/// and stay cut text plans.
#[test]
fn fixture_auto_explain_through_the_tailers_buffer() {
    for (fmt, file, prefix) in [
        (Format::Stderr, "postgresql.log", DEBIAN),
        (Format::Csvlog, "postgresql.csv", ""),
        (Format::Jsonlog, "postgresql.json", ""),
    ] {
        let log = fixture(&format!("fixtures/pglog/auto-explain/{file}"));
        let (whole, _) = run(settings(fmt, prefix, PgSeverity::Debug5), &log);
        let got = run_buffered(settings(fmt, prefix, PgSeverity::Debug5), &log, 64 * 1024);
        assert_eq!(got.len(), whole.len(), "{file}");
        let mut cut = 0;
        for ((g, _), (w, _)) in got.iter().zip(&whole) {
            if cut_plans_agree(g, w) {
                assert_eq!(g.statement, w.statement, "{file}");
                cut += 1;
                continue;
            }
            assert_eq!(g, w, "{file}");
        }
        assert_eq!(cut, 2, "{file}");
    }
}

#[test]
fn plans_are_held_to_the_entry_cap_not_the_message_cap() {
    let plan = "Query Text: select 1\nResult  (cost=0.00..0.01 rows=1 width=4)";
    let log = format!(
        "2026-11-27 21:33:02.966 CET [1] a@b LOG:  duration: 0.010 ms  plan:\n\t{}\n\
         2026-11-27 21:33:02.966 CET [1] a@b LOG:  duration: 0.010 ms  plan:\n\t{}\n\
         2026-11-27 21:33:02.966 CET [1] a@b LOG:  end\n",
        plan.replace('\n', "\n\t"),
        " ".repeat(40)
    );
    let mut s = settings(Format::Stderr, DEBIAN, PgSeverity::Log);
    s.max_message_bytes = 30;
    let (out, _) = run(s.clone(), log.as_bytes());
    let e = &out[0].0;
    assert_eq!(e.plan, Some(Plan::Text(plan.to_string())));
    assert_eq!(e.message, "duration: 0.010 ms  plan:");
    assert_eq!(e.statement.as_deref(), Some("select 1"));
    assert!(!e.truncated && !e.plan_truncated);
    // A header with nothing after it is no plan: the message cap applies.
    let e = &out[1].0;
    assert_eq!(
        (e.plan.as_ref(), e.message.len(), e.truncated),
        (None, 30, true)
    );
    // The entry cap cuts a plan: text, flagged.
    s.max_entry_bytes = 60;
    let (out, _) = run(s, log.as_bytes());
    let e = &out[0].0;
    assert!(e.plan_truncated && e.truncated);
    assert_eq!(
        e.plan,
        Some(Plan::Text(
            plan[..60 - "duration: 0.010 ms  plan:\n".len()].to_string()
        ))
    );
}
