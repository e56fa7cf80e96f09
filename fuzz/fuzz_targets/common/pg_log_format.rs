//! Shared driver of the pg_log_format targets: feeds the input through a small fixed buffer, as the
//! tailer does, and checks the parser's promises; then feeds it again through a buffer that
//! holds it whole and checks that the entries are the same (the buffer size is the tailer's
//! business, never the parser's output).
use pganalytics_collector::config::PgSeverity;
use pganalytics_collector::pg_log_format::{Entry, Format, ParseSettings, Parser, Plan};
use pganalytics_collector::tz::Zone;

const MESSAGE_CAP: usize = 100;
const ENTRY_CAP: usize = 300;

/// First byte: buffer size; second: min_level; third bit 0: resync start. Rest: the log.
pub fn drive(format: Format, prefix: &str, data: &[u8]) {
    let (cfg, input) = data.split_at(data.len().min(3));
    let cap = 8 + usize::from(cfg.first().copied().unwrap_or(0)) * 4;
    let levels = [
        PgSeverity::Debug5,
        PgSeverity::Notice,
        PgSeverity::Warning,
        PgSeverity::Log,
    ];
    let min_level = levels[usize::from(cfg.get(1).copied().unwrap_or(0)) % levels.len()];
    let settings = ParseSettings {
        format,
        log_line_prefix: prefix.to_string(),
        zone: Zone::from_posix_tz("CET-1CEST,M3.5.0,M10.5.0/3").unwrap_or_else(|_| Zone::utc()),
        min_level,
        max_message_bytes: MESSAGE_CAP,
        max_entry_bytes: ENTRY_CAP,
    };
    let resync = cfg.get(2).is_some_and(|b| b & 1 == 1);
    let Some(small) = run(&settings, cap, input, resync) else {
        return;
    };
    // A record that does not fit the small buffer is cut there (by design), so the two runs
    // are compared when every record fits: lines shorter than the buffer, and for csvlog no
    // quotes (a quoted field may hold newlines, making a record of several lines).
    let fits = input.split(|&b| b == b'\n').all(|l| l.len() + 1 < cap)
        && (format != Format::Csvlog || !input.contains(&b'"'));
    if fits {
        let whole = run(&settings, input.len() + 8, input, resync).unwrap();
        assert_eq!(
            small, whole,
            "entries differ between a {cap}-byte buffer and one holding the input"
        );
    }
}

/// The entries (with their end offsets) of `input` fed through a `cap`-byte buffer.
fn run(
    settings: &ParseSettings,
    cap: usize,
    input: &[u8],
    resync: bool,
) -> Option<Vec<(Entry, u64)>> {
    let mut p = Parser::new(settings.clone()).ok()?;
    p.reset(0, resync);
    let mut entries = Vec::new();
    let mut last_end = 0u64;
    let mut check = |e: Entry, end: u64| {
        assert!(
            end > last_end || (end == last_end && end == 0),
            "ends go forward"
        );
        last_end = end;
        assert!(e.message.len() <= MESSAGE_CAP);
        let total: usize = [&e.detail, &e.hint, &e.context, &e.statement]
            .iter()
            .map(|f| f.as_ref().map_or(0, String::len))
            .sum::<usize>()
            + e.message.len();
        assert!(total <= ENTRY_CAP);
        // A plan is held to the entry cap (a cut one is text), never to the message cap.
        if let Some(Plan::Text(t)) = &e.plan {
            assert!(t.len() <= ENTRY_CAP);
        }
        assert!(!e.plan_truncated || matches!(e.plan, Some(Plan::Text(_))));
        entries.push((e, end));
    };
    let mut buf: Vec<u8> = Vec::with_capacity(cap);
    let mut at = 0;
    loop {
        let take = (cap - buf.len()).min(input.len() - at);
        buf.extend_from_slice(&input[at..at + take]);
        at += take;
        let n = p.feed(&buf, buf.len() == cap, &mut check);
        assert!(n <= buf.len());
        buf.drain(..n);
        assert!(p.resume_offset() <= p.position());
        if at == input.len() && (n == 0 || buf.is_empty()) {
            break;
        }
    }
    p.finish(&mut check);
    assert!(p.position() <= input.len() as u64);
    Some(entries)
}
