//! Shared driver of the pg_log_format targets: feeds the input through a small fixed buffer, as the
//! tailer does, and checks the parser's promises.
use pganalytics_collector::config::PgSeverity;
use pganalytics_collector::pg_log_format::{Format, ParseSettings, Parser};
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
    let Ok(mut p) = Parser::new(settings) else {
        return;
    };
    p.reset(0, cfg.get(2).is_some_and(|b| b & 1 == 1));
    let mut last_end = 0u64;
    let mut check = |e: pganalytics_collector::pg_log_format::Entry, end: u64| {
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
}
