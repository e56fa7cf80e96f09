//! The collectors, one per metric type of `docs/metrics.md`, and what they share.
//!
//! A collector is driven by the poll loop: [`Collector::baseline`] once at start (rates need a
//! first sample), then [`Collector::collect`] each time its schedule is due. A collection
//! writes whole elements through [`Output`], which serializes them into the element buffer
//! and enforces the element size rule; partial problems (one unreadable mount) go to
//! [`Output::error`] and the element is still sent. A collection that fails sends nothing
//! and returns the error, which ends up in `collector_health.errors`.

pub mod disk_usage;
pub mod health;
pub mod json;
pub mod pg;
pub mod registry;
pub mod sysstat;

use crate::config::Config;
use crate::pipeline::{DropReason, ElementBuffer, ElementMeta, Outcome, Stats};
use crate::sys::signals::Signals;
use crate::util::WallTime;
use std::collections::BTreeMap;

/// The time of a collection, on both clocks.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono_ns: u64,
    pub wall: WallTime,
}

impl Now {
    pub fn read() -> Now {
        Now {
            mono_ns: crate::sys::time::monotonic_ns(),
            wall: crate::sys::time::wall_now(),
        }
    }
}

/// Why a collection sent nothing. The engine branches on the kind: a failure is recorded
/// (`collector_health.errors`, the log on backoff steps), an interruption is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectError {
    /// A stop signal arrived while it waited: the process is ending, nothing failed.
    Interrupted,
    /// The source failed: one line naming the file or host and the problem.
    Failed(String),
}

impl std::fmt::Display for CollectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CollectError::Interrupted => f.write_str("interrupted by a stop signal"),
            CollectError::Failed(msg) => f.write_str(msg),
        }
    }
}

pub trait Collector {
    /// The metric type it produces (also its log component).
    fn name(&self) -> &'static str;

    /// Takes the start-up sample that the first collection's rates are computed against.
    fn baseline(&mut self, _now: Now) {}

    /// Collects once, writing its elements to `out`.
    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError>;

    /// The final outcome of an element it emitted with `tag`.
    fn outcome(&mut self, _tag: u64, _outcome: Outcome) {}

    /// A second schedule inside the plugin, for the shapes one `interval` does not fit:
    /// samples taken between elements (wait events sampled every `sample_ms`, aggregated into
    /// the element of each `interval`), or one schedule per configured instance (each custom
    /// query its own interval). The monotonic time (ns) it next needs [`Collector::tick`];
    /// `None` when it has no such schedule. The poll loop waits for it like for any deadline.
    fn next_tick(&self) -> Option<u64> {
        None
    }

    /// Runs what [`Collector::next_tick`] said is due at `now`: it may only accumulate (a
    /// sample) or emit (an instance's element).
    fn tick(&mut self, _now: Now, _out: &mut Output<'_>) -> Result<(), CollectError> {
        Ok(())
    }
}

/// What collectors built from one configuration share: the PostgreSQL connection set (made
/// when the first pg collector is built). The engine keeps one and starts a new one when
/// `[postgres]` changes, so every pg collector then rebuilt gets the new settings.
#[derive(Default)]
pub struct Shared {
    pg: Option<pg::pool::SharedPool>,
    mode: Mode,
    /// Built for one round (`run --once`; `once` always is).
    one_shot: bool,
}

/// Whether the collectors run as the daemon or for one look (`once`): a look consumes
/// nothing (the log reader stores no offsets and starts at the file's last bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Run,
    Once,
}

impl Shared {
    pub fn new(mode: Mode) -> Shared {
        Shared {
            pg: None,
            mode,
            one_shot: mode == Mode::Once,
        }
    }

    /// For collectors that run one round only (`run --once`): what a collection reads is all
    /// there is (the log reader ends its last entry at the end of what it read).
    pub fn for_one_round(mut self) -> Shared {
        self.one_shot = true;
        self
    }

    /// A new set with the same mode and round (a reload that changed `[postgres]`).
    pub fn renewed(&self) -> Shared {
        Shared {
            pg: None,
            mode: self.mode,
            one_shot: self.one_shot,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn one_shot(&self) -> bool {
        self.one_shot
    }

    /// The pool of `config`'s `[postgres]` (created on first use).
    pub fn pg_pool(&mut self, config: &Config) -> pg::pool::SharedPool {
        self.pg
            .get_or_insert_with(|| {
                std::rc::Rc::new(std::cell::RefCell::new(pg::pool::Pool::new(
                    &config.postgres,
                )))
            })
            .clone()
    }
}

/// Problems of the current push round, by key (`sysstat`, `disk_usage/mnt`, `pg_stats/app`):
/// the latest message of each, shown in the next `collector_health` and then cleared.
pub type Errors = BTreeMap<String, String>;

/// Where one collection writes: the element buffer (through a reused scratch buffer), the
/// drops it causes, and its partial errors.
pub struct Output<'a> {
    pub(crate) source: u16,
    pub(crate) plugin: &'static str,
    pub(crate) scratch: &'a mut Vec<u8>,
    pub(crate) buffer: &'a mut ElementBuffer,
    /// The element size rule: `max_batch_bytes / 4`.
    pub(crate) max_element: usize,
    pub(crate) stats: &'a mut Stats,
    /// Outcomes to hand to sources once this collection returns (dropped elements).
    pub(crate) outcomes: &'a mut Vec<(ElementMeta, Outcome)>,
    /// Partial problems of this collection: (key, message).
    pub(crate) errors: &'a mut Vec<(String, String)>,
    /// Elements this collection stored.
    pub(crate) emitted: usize,
    /// The run loop's signals, for waits inside the collection (a stop ends it early);
    /// `None` in `once` and tests.
    pub(crate) signals: Option<&'a Signals>,
    /// The plugin's `interval` (bounds a query when the server sets no `statement_timeout`);
    /// `None` when unknown.
    pub(crate) interval: Option<std::time::Duration>,
}

impl<'a> Output<'a> {
    pub fn new(
        plugin: &'static str,
        buffer: &'a mut ElementBuffer,
        scratch: &'a mut Vec<u8>,
        max_element: usize,
        stats: &'a mut Stats,
        outcomes: &'a mut Vec<(ElementMeta, Outcome)>,
        errors: &'a mut Vec<(String, String)>,
    ) -> Self {
        Output {
            source: registry::source_id(plugin),
            plugin,
            scratch,
            buffer,
            max_element,
            stats,
            outcomes,
            errors,
            emitted: 0,
            signals: None,
            interval: None,
        }
    }

    /// Tells the collection its plugin's `interval`.
    pub fn with_interval(mut self, interval: Option<std::time::Duration>) -> Self {
        self.interval = interval;
        self
    }

    /// The plugin's `interval`, when known.
    pub fn interval(&self) -> Option<std::time::Duration> {
        self.interval
    }

    /// Lets waits inside the collection watch `signals`.
    pub fn with_signals(mut self, signals: Option<&'a Signals>) -> Self {
        self.signals = signals;
        self
    }

    /// The signals to watch while waiting (PostgreSQL queries), if any.
    pub fn signals(&self) -> Option<&'a Signals> {
        self.signals
    }

    /// Serializes `element` and stores it.
    pub fn emit<T: serde::Serialize>(&mut self, tag: u64, element: &T) -> Result<(), EmitError> {
        self.scratch.clear();
        serde_json::to_writer(JsonWriter(&mut *self.scratch), element)
            .map_err(|_| EmitError::Serialize)?;
        let json = std::mem::take(self.scratch);
        let r = self.emit_raw(tag, &json);
        *self.scratch = json;
        r
    }

    /// Stores an element already serialized (a JSON object with `type` and `timestamp`).
    pub fn emit_raw(&mut self, tag: u64, json: &[u8]) -> Result<(), EmitError> {
        let meta = ElementMeta {
            source: self.source,
            tag,
        };
        let stats = &mut *self.stats;
        let outcomes = &mut *self.outcomes;
        let mut dropped = |m: ElementMeta, r: DropReason| {
            stats.metrics_dropped += 1;
            outcomes.push((m, Outcome::Dropped(r)));
        };
        if json.len() > self.max_element || self.buffer.push(meta, json, &mut dropped).is_err() {
            dropped(meta, DropReason::TooLarge);
            return Err(EmitError::TooLarge(json.len()));
        }
        self.emitted += 1;
        Ok(())
    }

    /// Records a partial problem under `key` (shown in `collector_health.errors`).
    pub fn error(&mut self, key: &str, msg: impl std::fmt::Display) {
        self.errors.push((key.to_string(), msg.to_string()));
    }

    /// The largest element [`Output::emit`] accepts (the element size rule).
    pub fn max_element(&self) -> usize {
        self.max_element
    }

    /// The plugin this output belongs to.
    pub fn plugin(&self) -> &'static str {
        self.plugin
    }

    pub fn emitted(&self) -> usize {
        self.emitted
    }

    /// Counts log entries that were cut (`collector_health.log_entries_truncated`).
    pub fn count_truncated(&mut self, n: u64) {
        self.stats.log_entries_truncated = self.stats.log_entries_truncated.saturating_add(n);
    }
}

/// Appends serde_json's output to a `Vec<u8>`. JSON is written in pieces of a few bytes
/// (quotes, colons, short keys); those are copied a word at a time into room made by one
/// `resize` instead of through `memcpy`, whose per-call cost dominates on musl (`rep movsq`
/// start-up) for such small copies (a third of the CPU of a 1 MB `pg_schema` element went
/// to memcpy before this), or a `push` per byte (a call each at opt-level "z").
pub struct JsonWriter<'a>(pub &'a mut Vec<u8>);

/// Writes up to this many bytes without calling memcpy.
const SHORT_WRITE: usize = 16;

impl std::io::Write for JsonWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if buf.len() <= SHORT_WRITE {
            let len = self.0.len();
            self.0.resize(len + buf.len(), 0);
            if let Some(room) = self.0.get_mut(len..) {
                json::copy_short(room, buf);
            }
        } else {
            self.0.extend_from_slice(buf);
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitError {
    /// Over the element size rule (`max_batch_bytes / 4`) or the whole buffer: dropped, counted.
    TooLarge(usize),
    Serialize,
}

impl std::fmt::Display for EmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmitError::TooLarge(n) => write!(
                f,
                "element of {n} bytes is over max_batch_bytes / 4 or the buffer: dropped"
            ),
            EmitError::Serialize => f.write_str("element could not be serialized"),
        }
    }
}

/// Rounds a rate or percentage to 2 decimals (readable JSON; no precision is claimed beyond).
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Test helpers shared by the collectors' tests: an [`Output`] over a real buffer, temp dirs.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    use std::path::{Path, PathBuf};

    pub struct OutputHarness {
        pub buffer: ElementBuffer,
        pub scratch: Vec<u8>,
        pub stats: Stats,
        pub outcomes: Vec<(ElementMeta, Outcome)>,
        pub errors: Vec<(String, String)>,
    }

    impl OutputHarness {
        pub fn new() -> Self {
            OutputHarness {
                buffer: ElementBuffer::new(1 << 20),
                scratch: Vec::new(),
                stats: Stats::default(),
                outcomes: Vec::new(),
                errors: Vec::new(),
            }
        }

        pub fn output(&mut self, plugin: &'static str) -> Output<'_> {
            Output::new(
                plugin,
                &mut self.buffer,
                &mut self.scratch,
                1 << 18,
                &mut self.stats,
                &mut self.outcomes,
                &mut self.errors,
            )
        }

        /// The one element stored, parsed.
        pub fn single(&mut self) -> serde_json::Value {
            let mut json = Vec::new();
            assert!(self.buffer.pop_into(&mut json).is_some(), "no element");
            assert!(self.buffer.is_empty(), "more than one element");
            serde_json::from_slice(&json).expect("element is valid JSON")
        }
    }

    /// A directory removed when dropped.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> TempDir {
            let mut raw = [0u8; 8];
            crate::util::random_bytes(&mut raw).unwrap();
            let p =
                std::env::temp_dir().join(format!("pgac-test-{}", crate::util::hex::<16>(&raw)));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A temp copy of a directory tree.
    pub fn copy_dir(from: &Path) -> TempDir {
        fn copy(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap() {
                let e = e.unwrap();
                let target = to.join(e.file_name());
                if e.file_type().unwrap().is_dir() {
                    copy(&e.path(), &target);
                } else {
                    std::fs::copy(e.path(), target).unwrap();
                }
            }
        }
        let t = TempDir::new();
        copy(from, t.path());
        t
    }
}
