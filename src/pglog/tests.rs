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

fn utc(s: &str) -> Option<String> {
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
    assert_eq!(e.message, "relation \"foo\" does not exist at character 15");
    assert_eq!(
        e.hint.as_deref(),
        Some("Perhaps you meant to reference the table \"public.food\".")
    );
    assert_eq!(
        e.statement.as_deref(),
        Some("select *\n  from foo\n where x = 1;")
    );
    assert_eq!(e.pid, Some(4242));
    assert_eq!(e.user, utc("app"));
    assert_eq!(e.database, utc("shop"));
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
    let log = "00000 [5] LOG:  ABCDE: not a code\n";
    let (out, _) = run(
        settings(Format::Stderr, "%e [%p] ", PgSeverity::Warning),
        log.as_bytes(),
    );
    assert_eq!(out[0].0.sqlstate.as_deref(), Some("00000"));
    assert_eq!(out[0].0.message, "ABCDE: not a code");
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
fn chunked_feeding_matches_one_go() {
    let log = std::fs::read("fixtures/pglog/debian/postgresql.log").unwrap_or_default();
    if log.is_empty() {
        return;
    }
    let s = || settings(Format::Stderr, DEBIAN, PgSeverity::Debug5);
    let (whole, _) = run(s(), &log);
    for cap in [300, 1024, 4096] {
        let got = run_buffered(s(), &log, cap);
        // Smaller buffers may cut long lines; compare where nothing was cut.
        let a: Vec<_> = whole
            .iter()
            .filter(|(e, _)| e.message.len() < 200)
            .collect();
        let b: Vec<_> = got
            .iter()
            .filter(|(e, _)| e.message.len() < 200 && !e.truncated)
            .collect();
        assert!(b.len() >= a.len() / 2, "cap {cap}");
    }
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
    let e = Parser::new(settings(Format::Stderr, "%m %y ", PgSeverity::Warning)).unwrap_err();
    assert!(e.contains("%y") && !e.contains('\n'), "{e}");
}

#[test]
fn invalid_utf8_is_lossy() {
    let log = b"2026-07-01 12:00:00.000 CEST [5] app\xff@db ERROR:  bad \xc3 byte\n";
    let (out, _) = run(settings(Format::Stderr, DEBIAN, PgSeverity::Warning), log);
    assert_eq!(out[0].0.message, "bad \u{fffd} byte");
    assert_eq!(out[0].0.user.as_deref(), Some("app\u{fffd}"));
}
