//! The `pg_log` collector (docs/metrics.md, `pg_log`): new PostgreSQL log entries, each sent once,
//! across rotations and restarts.
//!
//! What it does: find the server's log (discover), follow it across rotations (tail), feed its
//! bytes to the format parser and turn the entries into elements, and remember the acknowledged
//! position (offsets). What it does not do: parse the log format (that is the pure
//! [`crate::pg_log_format`]), nor write the agent's own log (that is [`crate::agent_log`]).
//!
//! ```text
//!  discover ──where, format, prefix, zone──▶ tail (one fixed buffer, rotation) ──bytes──▶
//!  pg_log_format::Parser ──entries──▶ elements (size rule) ──▶ Output
//!        outcomes (delivered / dropped) ──▶ AckQueue ──▶ <state_dir>/pg_log.offsets
//! ```
//!
//! - Each element's tag names the position after its last entry. The acknowledged position
//!   moves only over the elements in front that have a final outcome (docs/protocol.md, "Delivery
//!   model"), and is written to `pg_log.offsets` (atomically, 0600, only when it changed) at the
//!   next collection and when the collector is dropped (exit, reload). A restart resumes there:
//!   exactly once without a crash, at least once across one.
//! - With no stored offset: the end of the current file (`start_at = "end"`) or its
//!   beginning (`"beginning"`).
//! - `once` is a look, not a consumer: it reads the last [`tail::ONCE_TAIL`] bytes of the
//!   current file (or from a stored offset) and never writes offsets.
//! - A reload that rebuilds this collector reads again the entries of elements still waiting
//!   (their outcomes reach the new instance, which ignores tags it did not issue): at least
//!   once.
//! - At most `max_entries` entries per collection (the rest is read next time); cut entries
//!   are counted in `collector_health.log_entries_truncated`.

pub mod contain;
pub mod discover;
pub mod offsets;
pub mod tail;

use crate::collect::pg::pool::{PoolError, SharedPool};
use crate::collect::{CollectError, Collector, Mode, Now, Output};
use crate::config::{self, Config, StartAt};
use crate::pg_log_format::{Entry, Format, ParseSettings, Parser};
use crate::pipeline::Outcome;
use crate::proto::postgres::PgError;
use contain::{OpenError, Rule};
use discover::{DirScan, Filter, Located, ServerLogging};
use offsets::{AckQueue, Stored};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use tail::{FileRef, Position, Start, Tail};

/// Largest entry the parser builds (message, DETAIL, HINT, … together).
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;

/// Name of the offsets file in the state directory.
pub use crate::state::PG_LOG_OFFSETS as OFFSETS_FILE;

/// Bits of a tag that number elements; the bits above identify this collector instance.
const SEQ_BITS: u32 = 40;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

/// The settings of `pg_settings` this reader asks for.
const SETTINGS_SQL: &str = "SELECT name, setting FROM pg_settings WHERE name IN \
    ('log_destination', 'logging_collector', 'log_directory', 'data_directory', \
     'log_line_prefix', 'log_timezone', 'cluster_name', 'server_version_num')";

/// Where the log is looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// `[pg_log] path` names a file.
    File(PathBuf),
    /// `[pg_log] path` names a directory: its newest file matching `pattern` is current.
    Dir(DirScan),
    /// Ask the server (then the Debian location).
    Server,
}

pub struct PgLog {
    cfg: config::PgLog,
    database: String,
    pool: SharedPool,
    mode: Mode,
    /// Built for one round (`run --once`, `once`): the end of what a collection read ends the
    /// last entry (docs/metrics.md, `pg_log`).
    one_shot: bool,
    source: Source,
    offsets_path: PathBuf,
    /// Stored offsets read at start (consumed when the reader is made).
    stored: Option<Stored>,
    /// A problem with the offsets file, reported at the first collection.
    load_error: Option<String>,
    /// The server's settings at the last successful ask.
    server: Option<ServerLogging>,
    /// The owner of the server's `data_directory` at the last successful ask: the user its log
    /// files must belong to when `requirepeer` is off.
    data_owner: Option<u32>,
    /// `requirepeer`'s uid when that check is on: the server's log files must be that user's.
    peer_owner: Option<u32>,
    /// The reader, made at the first collection that found the log.
    tail: Option<Tail>,
    /// (format, prefix, zone) the parser was made with.
    parser_key: Option<(Format, String, Option<String>)>,
    acks: AckQueue<Position>,
    /// High bits of this instance's tags.
    instance: u64,
    /// The offsets file's text as last written.
    saved: Option<String>,
    /// Reusable JSON buffers: the element being built and one entry.
    element: Vec<u8>,
    entry: Vec<u8>,
}

impl PgLog {
    pub fn new(config: &Config, pool: SharedPool, mode: Mode) -> PgLog {
        let cfg = config.pg_log.clone();
        let source = match &cfg.path {
            Some(p) if crate::sys::file::is_dir(p) => Source::Dir(DirScan {
                dir: p.clone(),
                filter: Filter::Glob(cfg.pattern.clone()),
            }),
            Some(p) => Source::File(p.clone()),
            None => Source::Server,
        };
        let offsets_path = config.collector.state_dir.join(OFFSETS_FILE);
        let (stored, load_error) = match crate::sys::file::read(&offsets_path) {
            Ok(bytes) => match offsets::parse(&bytes) {
                Ok(list) => (list.into_iter().next(), None),
                Err(e) => (
                    None,
                    Some(format!(
                        "{}: {e}; starting as start_at says (delete the file to silence this)",
                        offsets_path.display()
                    )),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
            Err(e) => (
                None,
                Some(format!(
                    "cannot read {}: {e}; starting as start_at says",
                    offsets_path.display()
                )),
            ),
        };
        let mut raw = [0u8; 3];
        let _ = crate::util::random_bytes(&mut raw);
        let instance = u64::from(raw[0]) | u64::from(raw[1]) << 8 | u64::from(raw[2]) << 16;
        PgLog {
            database: config.postgres.database.clone(),
            cfg,
            pool,
            mode,
            one_shot: mode == Mode::Once,
            source,
            offsets_path,
            stored,
            load_error,
            server: None,
            data_owner: None,
            peer_owner: match crate::collect::pg::conninfo::peer_rule(
                config.postgres.requirepeer.as_deref(),
                &crate::sys::passwd::read(),
            ) {
                crate::collect::pg::conninfo::PeerRule::Require(p) => Some(p.uid),
                _ => None,
            },
            tail: None,
            parser_key: None,
            acks: AckQueue::new(None),
            instance,
            saved: None,
            element: Vec::new(),
            entry: Vec::new(),
        }
    }

    /// Marks this collector as built for one round (`run --once`): see [`PgLog::one_shot`].
    pub fn one_shot(mut self, on: bool) -> PgLog {
        self.one_shot |= on;
        self
    }

    /// Asks the server for its logging settings and current file.
    fn ask_server(&mut self, now: Now, out: &Output<'_>) -> Result<ServerLogging, PoolError> {
        let format = self.cfg.format;
        let timeout = self.pool.borrow().query_timeout_within(out.interval());
        let signals = out.signals();
        self.pool
            .borrow_mut()
            .with_client(&self.database, now.mono_ns, signals, |c| {
                let rows = c.query(SETTINGS_SQL, timeout, signals)?;
                let mut s = ServerLogging::default();
                for r in rows.iter() {
                    let (Some(name), Some(value)) = (r.get_str("name")?, r.get_str("setting")?)
                    else {
                        continue;
                    };
                    let v = Some(value.to_string());
                    match name {
                        "log_destination" => s.log_destination = value.to_string(),
                        "logging_collector" => s.logging_collector = value == "on",
                        "log_directory" => s.log_directory = v,
                        "data_directory" => s.data_directory = v,
                        "log_line_prefix" => s.log_line_prefix = v,
                        "log_timezone" => s.log_timezone = v,
                        "cluster_name" => s.cluster_name = v.filter(|c| !c.is_empty()),
                        "server_version_num" => s.version_num = value.parse().unwrap_or(0),
                        _ => {}
                    }
                }
                if s.version_num == 0 {
                    s.version_num = c.server_version_num();
                }
                if s.logging_collector
                    && let Some(dest) = discover::pick_destination(&s.log_destination, format)
                {
                    // Needs superuser or pg_monitor: without it, current_logfiles or the
                    // directory's newest file answer.
                    match c.query(
                        &format!("SELECT pg_current_logfile('{dest}') AS f"),
                        timeout,
                        signals,
                    ) {
                        Ok(rows) => {
                            s.current_logfile = rows
                                .iter()
                                .next()
                                .and_then(|r| r.get_str("f").ok().flatten().map(str::to_string));
                        }
                        Err(PgError::Server { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(s)
            })
    }

    /// Where the log is now and how it is written.
    fn locate(&mut self, now: Now, out: &mut Output<'_>) -> Result<Located, CollectError> {
        let need_settings = self.cfg.log_line_prefix.is_none() || self.cfg.log_timezone.is_none();
        let asked = match (&self.source, &self.server) {
            (Source::Server, _) => Some(self.ask_server(now, out)),
            (_, None) if need_settings => Some(self.ask_server(now, out)),
            _ => None,
        };
        let mut ask_error = None;
        match asked {
            Some(Ok(s)) => {
                self.data_owner = s
                    .data_directory
                    .as_deref()
                    .and_then(|d| crate::sys::logfile::owner_of(Path::new(d)));
                self.server = Some(s);
            }
            Some(Err(PoolError::Interrupted)) => {
                return Err(CollectError::Interrupted);
            }
            Some(Err(PoolError::Failed(e))) => ask_error = Some(e),
            None => {}
        }
        let (current, dir, rule) = match &self.source {
            Source::File(p) => (Some(p.clone()), None, Some(Rule::Operator)),
            Source::Dir(d) => (
                discover::newest_in(&d.dir, &d.filter, &Rule::Operator).map_err(|e| {
                    CollectError::Failed(format!(
                        "cannot list the PostgreSQL log directory {}: {e}",
                        d.dir.display()
                    ))
                })?,
                Some(d.clone()),
                Some(Rule::Operator),
            ),
            Source::Server => {
                let place = self.server_place(ask_error.as_deref(), out)?;
                if let Some(e) = &ask_error {
                    // Same key shape and text as the other pg collectors: `once` shows them
                    // in one line.
                    out.error(&format!("pg_log/{}", self.database), e);
                }
                place
            }
        };
        let format = current
            .as_deref()
            .map_or(Format::Stderr, |c| discover::format_for(self.cfg.format, c));
        let server = self.server.as_ref();
        let prefix = self
            .cfg
            .log_line_prefix
            .clone()
            .or_else(|| server.and_then(|s| s.log_line_prefix.clone()))
            .unwrap_or_else(|| discover::DEFAULT_PREFIX.to_string());
        let zone = self
            .cfg
            .log_timezone
            .clone()
            .or_else(|| server.and_then(|s| s.log_timezone.clone()));
        Ok(Located {
            current,
            dir,
            format,
            prefix,
            zone,
            rule,
        })
    }

    /// What the server may name: regular files it owns directly in `dir` (its owner is
    /// `requirepeer`'s user, else the owner of `data_directory`).
    fn server_rule(&self, dir: &Path) -> Rule {
        Rule::Server {
            dir: dir.to_path_buf(),
            owner: self.peer_owner.or(self.data_owner),
            me: crate::sys::logfile::euid(),
        }
    }

    /// The server's log: from its settings (asked now or before), else Debian's file; with
    /// the rule of what may be read there (SECURITY.md, "Files named by the server"). A file
    /// the rule refuses is one warning, and the directory's newest allowed file is read.
    #[allow(clippy::type_complexity)]
    fn server_place(
        &self,
        ask_error: Option<&str>,
        out: &mut Output<'_>,
    ) -> Result<(Option<PathBuf>, Option<DirScan>, Option<Rule>), CollectError> {
        if let Some(s) = &self.server {
            let logfiles = match (&s.current_logfile, &s.data_directory, ask_error) {
                (None, Some(data), _) => {
                    let data = Path::new(data);
                    let path = data.join("current_logfiles");
                    let mut buf = [0u8; discover::CURRENT_LOGFILES_MAX];
                    match contain::read_small(&self.server_rule(data), &path, &mut buf) {
                        Ok(text) => text.map(<[u8]>::to_vec),
                        Err(OpenError::Refused(why)) => {
                            out.error("pg_log", contain::refusal_line(&path, &why));
                            None
                        }
                        Err(OpenError::Sys(_)) => None,
                    }
                }
                _ => None,
            };
            let Some(place) = s.locate(self.cfg.format, logfiles.as_deref()) else {
                return Err(CollectError::Failed(format!(
                    "PostgreSQL writes no log file the collector can read (log_destination = '{}'); set [pg_log] path",
                    s.log_destination
                )));
            };
            let log_dir = match (&place.dir, &place.current) {
                (Some(d), _) => Some(d.dir.clone()),
                (None, Some(c)) => c.parent().map(Path::to_path_buf),
                (None, None) => None,
            };
            let Some(log_dir) = log_dir else {
                return Ok((None, place.dir, None));
            };
            let rule = self.server_rule(&log_dir);
            let mut current = place.current;
            if let Some(c) = &current
                && let Err(OpenError::Refused(why)) = contain::check(&rule, c)
            {
                out.error("pg_log", contain::refusal_line(c, &why));
                current = None;
            }
            if (current.is_none() || ask_error.is_some())
                && let Some(d) = &place.dir
            {
                // Not told (no pg_monitor, server down now) or told wrong: the directory's
                // newest file.
                current = discover::newest_in(&d.dir, &d.filter, &rule)
                    .ok()
                    .flatten()
                    .or(current);
            }
            return Ok((current, place.dir, Some(rule)));
        }
        let following =
            self.stored.is_some() || self.tail.as_ref().is_some_and(|t| t.position().is_some());
        if following {
            // Never asked yet, but a file is known: keep following it by name.
            return Ok((None, None, None));
        }
        let debian = Filter::Glob("postgresql-*-*.log".into());
        let rule = self.server_rule(Path::new(discover::DEBIAN_LOG_DIR));
        match (
            discover::newest_in(Path::new(discover::DEBIAN_LOG_DIR), &debian, &rule),
            ask_error,
        ) {
            (Ok(Some(p)), _) => Ok((Some(p), None, Some(rule))),
            // The server is the way to find the log here: its error says what to fix.
            (_, Some(e)) => Err(CollectError::Failed(e.to_string())),
            (_, None) => Err(CollectError::Failed(format!(
                "cannot find the PostgreSQL log: {} has no postgresql-*-*.log; set [pg_log] path",
                discover::DEBIAN_LOG_DIR
            ))),
        }
    }

    /// Makes the reader at the first collection, and a new parser when the settings changed.
    fn ensure_reader(&mut self, loc: &Located, out: &mut Output<'_>) -> Result<(), CollectError> {
        let key = (loc.format, loc.prefix.clone(), loc.zone.clone());
        if self.parser_key.as_ref() == Some(&key) && self.tail.is_some() {
            return Ok(());
        }
        let zone = match &loc.zone {
            Some(name) => crate::tz::Zone::load(name).unwrap_or_else(|e| {
                out.error(
                    "pg_log",
                    format!("log_timezone {name}: {e}; reading times as UTC"),
                );
                crate::tz::Zone::utc()
            }),
            None => crate::tz::Zone::utc(),
        };
        let parser = Parser::new(ParseSettings {
            format: loc.format,
            log_line_prefix: loc.prefix.clone(),
            zone,
            min_level: self.cfg.min_level,
            max_message_bytes: usize::try_from(self.cfg.max_message_bytes).unwrap_or(usize::MAX),
            max_entry_bytes: MAX_ENTRY_BYTES,
        })
        .map_err(|e| CollectError::Failed(format!("log_line_prefix '{}': {e}", loc.prefix)))?;
        match &mut self.tail {
            Some(t) => t.set_parser(parser),
            None => {
                let start = match (self.stored.take(), self.mode, self.cfg.start_at) {
                    (Some(s), _, _) => Start::Stored(s),
                    (None, Mode::Once, _) => Start::Tail(tail::ONCE_TAIL),
                    (None, Mode::Run, StartAt::End) => Start::End,
                    (None, Mode::Run, StartAt::Beginning) => Start::Beginning,
                };
                self.tail = Some(Tail::new(parser, start));
            }
        }
        self.parser_key = Some(key);
        Ok(())
    }

    /// Writes the acknowledged position when it changed (never in `once`).
    fn save(&mut self) -> Result<(), String> {
        if self.mode == Mode::Once {
            return Ok(());
        }
        let Some((file, offset)) = self.acks.acked() else {
            return Ok(());
        };
        let text = offsets::render(&[Stored {
            file: file.id.clone(),
            fingerprint: file.fingerprint,
            offset: *offset,
        }]);
        if self.saved.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        crate::state::write_private(&self.offsets_path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", self.offsets_path.display()))?;
        self.saved = Some(text);
        Ok(())
    }
}

/// One entry as docs/metrics.md, `pg_log`, shows it: every field, `null` when unknown.
#[derive(Serialize)]
struct EntryJson<'a> {
    timestamp: crate::util::Rfc3339,
    level: &'a str,
    message: &'a str,
    pid: Option<i64>,
    user: Option<&'a str>,
    database: Option<&'a str>,
    application: Option<&'a str>,
    client: Option<&'a str>,
    sqlstate: Option<&'a str>,
    detail: Option<&'a str>,
    hint: Option<&'a str>,
    context: Option<&'a str>,
    statement: Option<&'a str>,
    duration_ms: Option<f64>,
    cursor_position: Option<i64>,
    plan: Option<&'a crate::pg_log_format::Plan>,
    plan_format: Option<&'static str>,
    plan_truncated: bool,
    source: &'a str,
}

/// Serializes `e` into `buf` (cleared first). Public for the log_parse bench.
pub fn entry_json(buf: &mut Vec<u8>, e: &Entry, source: &str, read_time: crate::util::WallTime) {
    buf.clear();
    let j = EntryJson {
        timestamp: e.timestamp.unwrap_or(read_time).rfc3339_millis(),
        level: e.level,
        message: &e.message,
        pid: e.pid,
        user: e.user.as_deref(),
        database: e.database.as_deref(),
        application: e.application.as_deref(),
        client: e.client.as_deref(),
        sqlstate: e.sqlstate.as_deref(),
        detail: e.detail.as_deref(),
        hint: e.hint.as_deref(),
        context: e.context.as_deref(),
        statement: e.statement.as_deref(),
        duration_ms: e.duration_ms.filter(|d| d.is_finite()),
        cursor_position: e.cursor_position,
        plan: e.plan.as_ref(),
        plan_format: e.plan.as_ref().map(crate::pg_log_format::Plan::format),
        plan_truncated: e.plan_truncated,
        source,
    };
    // Strings, numbers, nulls and a parsed JSON value (string keys): serialization cannot fail.
    // Through JsonWriter: serde_json's pieces of a few bytes each cost a memcpy call
    // otherwise, half of the time of serializing an entry.
    let _ = serde_json::to_writer(crate::collect::JsonWriter(buf), &j);
}

/// Builds `pg_log` elements that respect the element size rule, emitting each when full.
struct Elements<'b> {
    json: &'b mut Vec<u8>,
    head: usize,
    entries: usize,
    last: Option<Position>,
    max: usize,
}

impl<'b> Elements<'b> {
    fn new(json: &'b mut Vec<u8>, now: Now, database: &str, max: usize) -> Self {
        json.clear();
        json.extend_from_slice(b"{\"type\":\"pg_log\",\"timestamp\":\"");
        json.extend_from_slice(now.wall.rfc3339().to_string().as_bytes());
        json.extend_from_slice(b"\",\"database\":");
        let _ = serde_json::to_writer(&mut *json, database);
        json.extend_from_slice(b",\"entries\":[");
        let head = json.len();
        Elements {
            json,
            head,
            entries: 0,
            last: None,
            max,
        }
    }

    fn add(
        &mut self,
        entry: &[u8],
        at: Position,
        out: &mut Output<'_>,
        acks: &mut AckQueue<Position>,
        instance: u64,
    ) {
        if self.entries > 0 && self.json.len() + 1 + entry.len() + 2 > self.max {
            self.flush(out, acks, instance);
        }
        if self.entries > 0 {
            self.json.push(b',');
        }
        self.json.extend_from_slice(entry);
        self.entries += 1;
        self.last = Some(at);
    }

    fn flush(&mut self, out: &mut Output<'_>, acks: &mut AckQueue<Position>, instance: u64) {
        let Some(last) = self.last.take() else {
            return;
        };
        self.json.extend_from_slice(b"]}");
        let seq = acks.push_element(last);
        // Too large even alone: dropped and counted by `emit_raw`; its outcome settles it.
        let _ = out.emit_raw(instance << SEQ_BITS | (seq & SEQ_MASK), self.json);
        self.json.truncate(self.head);
        self.entries = 0;
    }
}

impl Collector for PgLog {
    fn name(&self) -> &'static str {
        "pg_log"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        if let Some(e) = self.load_error.take() {
            out.error("pg_log/offsets", e);
        }
        if let Err(e) = self.save() {
            out.error("pg_log/offsets", e);
        }
        let loc = self.locate(now, out)?;
        self.ensure_reader(&loc, out)?;
        let Some(tail) = self.tail.as_mut() else {
            return Ok(());
        };
        let limit = usize::try_from(self.cfg.max_entries).unwrap_or(usize::MAX);
        let max = out.max_element();
        let mut entry_buf = std::mem::take(&mut self.entry);
        let mut element_buf = std::mem::take(&mut self.element);
        let mut elements = Elements::new(&mut element_buf, now, &self.database, max);
        let acks = &mut self.acks;
        let instance = self.instance;
        let mut truncated = 0u64;
        let mut source: Option<(Rc<FileRef>, String)> = None;
        let mut sink = |file: &Rc<FileRef>, e: Entry, end: u64| {
            if e.truncated {
                truncated += 1;
            }
            if source.as_ref().is_none_or(|(f, _)| !Rc::ptr_eq(f, file)) {
                source = Some((file.clone(), file.id.path.to_string_lossy().into_owned()));
            }
            let path = source.as_ref().map_or("", |(_, p)| p.as_str());
            entry_json(&mut entry_buf, &e, path, now.wall);
            elements.add(&entry_buf, (file.clone(), end), out, acks, instance);
        };
        if let Some(rule) = &loc.rule {
            tail.set_rule(rule.clone());
        }
        let result = tail.step(loc.current.as_deref(), loc.dir.as_ref(), limit, &mut sink);
        // One round: the end of what was read is the end of the last entry (a pending entry
        // cut off by the entry limit or the byte budget is not ended: its lines come next).
        if self.one_shot && result.as_ref().is_ok_and(|r| r.at_end) {
            tail.end_pending(&mut sink);
        }
        elements.flush(out, acks, instance);
        self.entry = entry_buf;
        self.element = element_buf;
        out.count_truncated(truncated);
        if let Some(pos) = tail.position() {
            self.acks.push_mark(pos);
        }
        let report = result.map_err(CollectError::Failed)?;
        if self.mode == Mode::Run {
            for e in &report.events {
                crate::agent_log::info("pg_log", e, &[]);
            }
        }
        if let Some(lost) = report.stored_lost {
            out.error(
                "pg_log/offsets",
                format!(
                    "the file of the stored offset ({}) is gone; reading the current file from its beginning",
                    lost.display()
                ),
            );
        }
        Ok(())
    }

    fn outcome(&mut self, tag: u64, _outcome: Outcome) {
        if tag >> SEQ_BITS == self.instance {
            self.acks.settle(tag & SEQ_MASK);
        }
    }
}

impl Drop for PgLog {
    fn drop(&mut self) {
        if let Err(e) = self.save() {
            crate::agent_log::warn("pg_log", &e, &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tests_support::{OutputHarness, TempDir};
    use std::io::Write;

    fn config(dir: &Path, log: &Path) -> Config {
        let mut c = Config::default();
        c.collector.state_dir = dir.join("state");
        c.pg_log.path = Some(log.to_path_buf());
        c.pg_log.log_line_prefix = Some("%m [%p] ".into());
        c.pg_log.log_timezone = Some("UTC".into());
        c.pg_log.start_at = StartAt::Beginning;
        c.pg_log.min_level = config::PgSeverity::Log;
        c
    }

    fn collector(c: &Config, mode: Mode) -> PgLog {
        let pool = Rc::new(std::cell::RefCell::new(
            crate::collect::pg::pool::Pool::new(&c.postgres),
        ));
        PgLog::new(c, pool, mode)
    }

    fn append(p: &Path, range: std::ops::Range<u32>) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        for n in range {
            writeln!(
                f,
                "2026-11-28 01:{:02}:{:02}.{:03} UTC [4242] LOG:  entry {n}",
                n / 60 % 60,
                n % 60,
                n % 1000
            )
            .unwrap();
        }
    }

    /// Collects twice (the second, quiet one ends the last entry); returns the elements with
    /// their tags.
    fn collect(c: &mut PgLog, h: &mut OutputHarness) -> Vec<(u64, serde_json::Value)> {
        for _ in 0..2 {
            let mut out = h.output("pg_log");
            c.collect(Now::read(), &mut out).unwrap();
        }
        let mut got = Vec::new();
        let mut json = Vec::new();
        while let Some(meta) = h.buffer.pop_into(&mut json) {
            let json = std::mem::take(&mut json);
            assert!(json.len() <= 1 << 18, "element of {} bytes", json.len());
            got.push((meta.tag, serde_json::from_slice(&json).unwrap()));
        }
        got
    }

    /// A harness whose buffer holds 3000 entries (about 1.2 MB).
    fn big_harness() -> OutputHarness {
        let mut h = OutputHarness::new();
        h.buffer = crate::pipeline::ElementBuffer::new(4 << 20);
        h
    }

    fn messages(elements: &[(u64, serde_json::Value)]) -> Vec<String> {
        elements
            .iter()
            .flat_map(|(_, e)| e["entries"].as_array().unwrap().iter())
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn elements_have_the_spec_shape_and_respect_the_size_rule() {
        let d = TempDir::new();
        let log = d.path().join("postgresql.log");
        append(&log, 0..3000);
        let c = config(d.path(), &log);
        let mut pg = collector(&c, Mode::Run);
        let mut h = big_harness();
        let got = collect(&mut pg, &mut h);
        assert!(got.len() >= 2, "3000 entries need several elements");
        let msgs = messages(&got);
        assert_eq!(msgs.len(), 3000);
        assert_eq!(msgs[0], "entry 0");
        assert_eq!(msgs[2999], "entry 2999");
        let el = &got[0].1;
        assert_eq!(el["type"], "pg_log");
        assert_eq!(el["database"], "postgres");
        assert!(el["timestamp"].as_str().unwrap().ends_with('Z'));
        let e = &el["entries"][1];
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "timestamp",
            "level",
            "message",
            "pid",
            "user",
            "database",
            "application",
            "client",
            "sqlstate",
            "detail",
            "hint",
            "context",
            "statement",
            "duration_ms",
            "source",
        ] {
            assert!(keys.contains(&k), "{k} missing from {e}");
        }
        assert_eq!(e["timestamp"], "2026-11-28T01:00:01.001Z");
        assert_eq!(e["level"], "LOG");
        assert_eq!(e["pid"], 4242);
        assert_eq!(e["user"], serde_json::Value::Null);
        assert_eq!(e["source"], log.to_str().unwrap());
    }

    #[test]
    fn offsets_follow_outcomes_and_a_restart_resumes_there() {
        let d = TempDir::new();
        let log = d.path().join("postgresql.log");
        append(&log, 0..3000);
        let c = config(d.path(), &log);
        let offsets = c.collector.state_dir.join(OFFSETS_FILE);
        let mut pg = collector(&c, Mode::Run);
        let mut h = big_harness();
        let got = collect(&mut pg, &mut h);
        assert!(got.len() >= 3);
        // The last element is delivered first: nothing may be acknowledged yet.
        pg.outcome(got[got.len() - 1].0, Outcome::Delivered);
        drop(pg);
        assert!(!offsets.exists(), "nothing was acknowledged in order");

        let mut pg = collector(&c, Mode::Run);
        let again = collect(&mut pg, &mut h);
        assert_eq!(
            messages(&again).len(),
            3000,
            "read again from the beginning"
        );
        // All but the last one: the position is the end of the one before it.
        for (tag, _) in &again[..again.len() - 1] {
            pg.outcome(
                *tag,
                Outcome::Dropped(crate::pipeline::DropReason::Overflow),
            );
        }
        drop(pg);
        let text = std::fs::read_to_string(&offsets).unwrap();
        let stored = offsets::parse(text.as_bytes()).unwrap();
        assert_eq!(stored.len(), 1);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&offsets).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let mut pg = collector(&c, Mode::Run);
        append(&log, 3000..3005);
        let rest = collect(&mut pg, &mut h);
        let msgs = messages(&rest);
        let last_batch = messages(&again[again.len() - 1..]);
        let mut want = last_batch.clone();
        want.extend((3000..3005).map(|n| format!("entry {n}")));
        assert_eq!(
            msgs, want,
            "exactly the unacknowledged element and the new entries"
        );
        for (tag, _) in &rest {
            pg.outcome(*tag, Outcome::Delivered);
        }
        let mut out = h.output("pg_log");
        pg.collect(Now::read(), &mut out).unwrap();
        drop(pg);
        let mut pg = collector(&c, Mode::Run);
        assert!(
            collect(&mut pg, &mut h).is_empty(),
            "everything was acknowledged"
        );
    }

    /// The elements of one collection.
    fn collect_one(c: &mut PgLog, h: &mut OutputHarness) -> Vec<(u64, serde_json::Value)> {
        let mut out = h.output("pg_log");
        c.collect(Now::read(), &mut out).unwrap();
        let mut got = Vec::new();
        let mut json = Vec::new();
        while let Some(meta) = h.buffer.pop_into(&mut json) {
            let json = std::mem::take(&mut json);
            got.push((meta.tag, serde_json::from_slice(&json).unwrap()));
        }
        got
    }

    #[test]
    fn one_round_ends_the_last_entry_and_stores_its_end() {
        let d = TempDir::new();
        let log = d.path().join("postgresql.log");
        append(&log, 0..5);
        // A multi-line last entry: its continuation lines are read before it ends.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"2026-11-28 01:00:05.000 UTC [4242] LOG:  entry 5\n\tsecond line\n")
            .unwrap();
        let c = config(d.path(), &log);
        let mut h = OutputHarness::new();
        // The daemon waits for the next line (or a quiet look) to know the last entry ended.
        let mut pg = collector(&c, Mode::Run);
        assert_eq!(messages(&collect_one(&mut pg, &mut h)).len(), 5);
        drop(pg);
        // `run --once`: one round, so the end of what it read ends the entry.
        let mut pg = collector(&c, Mode::Run).one_shot(true);
        let got = collect_one(&mut pg, &mut h);
        let msgs = messages(&got);
        assert_eq!(msgs.len(), 6);
        assert_eq!(msgs[5], "entry 5\nsecond line");
        for (tag, _) in &got {
            pg.outcome(*tag, Outcome::Delivered);
        }
        drop(pg);
        // Acknowledged up to the end of the file: the next round reads only what comes after.
        append(&log, 6..8);
        let mut pg = collector(&c, Mode::Run).one_shot(true);
        assert_eq!(
            messages(&collect_one(&mut pg, &mut h)),
            ["entry 6", "entry 7"]
        );
    }

    #[test]
    fn once_reads_the_tail_and_stores_nothing() {
        let d = TempDir::new();
        let log = d.path().join("postgresql.log");
        append(&log, 0..3000);
        let c = config(d.path(), &log);
        let mut pg = collector(&c, Mode::Once);
        let mut h = OutputHarness::new();
        let mut out = h.output("pg_log");
        pg.collect(Now::read(), &mut out).unwrap();
        let got = {
            let mut json = Vec::new();
            let mut v = Vec::new();
            while let Some(m) = h.buffer.pop_into(&mut json) {
                let json = std::mem::take(&mut json);
                v.push((m.tag, serde_json::from_slice(&json).unwrap()));
            }
            v
        };
        let msgs = messages(&got);
        assert!(!msgs.is_empty() && msgs.len() < 3000);
        assert_eq!(
            msgs.last().unwrap(),
            "entry 2999",
            "a look ends with the last entry"
        );
        for (tag, _) in &got {
            pg.outcome(*tag, Outcome::Delivered);
        }
        drop(pg);
        assert!(!c.collector.state_dir.join(OFFSETS_FILE).exists());
    }

    #[test]
    fn a_bad_offsets_file_is_one_clear_line_and_start_at_applies() {
        let d = TempDir::new();
        let log = d.path().join("postgresql.log");
        append(&log, 0..3);
        let c = config(d.path(), &log);
        std::fs::create_dir_all(&c.collector.state_dir).unwrap();
        std::fs::write(c.collector.state_dir.join(OFFSETS_FILE), "garbage\n").unwrap();
        let mut pg = collector(&c, Mode::Run);
        let mut h = OutputHarness::new();
        let got = collect(&mut pg, &mut h);
        assert_eq!(messages(&got).len(), 3);
        assert_eq!(h.errors.len(), 1, "{:?}", h.errors);
        assert_eq!(h.errors[0].0, "pg_log/offsets");
        assert!(
            h.errors[0].1.contains("pg_log.offsets: first line is not"),
            "{}",
            h.errors[0].1
        );
    }

    #[test]
    fn an_unreadable_log_names_the_file_and_the_fix() {
        let d = TempDir::new();
        let log = d.path().join("postgresql.log");
        append(&log, 0..3);
        let e = tail::open_error(&log, crate::sys::logfile::Errno::ACCESS);
        assert!(
            e.contains(log.to_str().unwrap())
                && e.contains("group adm")
                && e.contains("log_file_mode"),
            "{e}"
        );
    }

    #[test]
    fn cut_entries_are_counted_for_collector_health() {
        let d = TempDir::new();
        let log = d.path().join("postgresql.log");
        append(&log, 0..2);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(
                format!(
                    "2026-11-28 01:00:02.000 UTC [4242] LOG:  {}\n",
                    "é".repeat(10_000)
                )
                .as_bytes(),
            )
            .unwrap();
        append(&log, 3..4);
        let mut c = config(d.path(), &log);
        c.pg_log.max_message_bytes = 1000;
        let mut pg = collector(&c, Mode::Run);
        let mut h = OutputHarness::new();
        let got = collect(&mut pg, &mut h);
        let msgs = messages(&got);
        assert_eq!(msgs.len(), 4);
        assert!(
            msgs[2].len() <= 1000 && msgs[2].starts_with("éé"),
            "cut on a character boundary"
        );
        assert_eq!(h.stats.log_entries_truncated, 1);
    }
}
