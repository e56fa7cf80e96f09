//! The engine: the enabled collectors with their schedules, the element buffer, the pipeline
//! counters and the errors of the round. `once` and the poll loop both drive it; it does no
//! waiting of its own.

use super::schedule::Grid;
use crate::agent_log::{self, Repeated};
use crate::collect::registry::{self, PLUGINS};
use crate::collect::{self, CollectError, Collector, Errors, Now, Output, health};
use crate::config::Config;
use crate::pipeline::sink::{Round, Sink, SinkError};
use crate::pipeline::{ElementBuffer, ElementMeta, HEALTH_SOURCE, Outcome, Stats};
use crate::state::StateDir;
use crate::sys::signals::Signals;
use std::collections::BTreeMap;
use std::time::Duration;

/// Who the envelopes say they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub collector_id: String,
    pub hostname: String,
}

impl Identity {
    /// `collector_id`: the registered id in the state directory, else `[collector] id`, else
    /// `"unregistered"`; `hostname`: `[collector] hostname`, else the kernel's node name.
    pub fn resolve(config: &Config) -> Identity {
        let registered = StateDir::new(&config.collector.state_dir).collector_id();
        let collector_id = registered
            .or_else(|| config.collector.id.clone())
            .unwrap_or_else(|| "unregistered".to_string());
        let hostname = config.collector.hostname.clone().unwrap_or_else(|| {
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned()
        });
        Identity {
            collector_id,
            hostname,
        }
    }
}

/// One enabled collector and its schedule.
pub struct Slot {
    pub name: &'static str,
    pub source: u16,
    pub collector: Box<dyn Collector>,
    pub grid: Grid,
    /// Elements stored by the latest collection.
    pub emitted: usize,
    /// Whether the latest collection failed.
    pub failed: bool,
}

/// Which of a plugin's two schedules runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Its `interval`: the element of the period.
    Collect,
    /// Its own second schedule ([`Collector::tick`]).
    Tick,
}

pub struct Engine {
    pub config: Config,
    pub identity: Identity,
    pub slots: Vec<Slot>,
    pub buffer: ElementBuffer,
    pub stats: Stats,
    /// Errors of the current push round (cleared by each health element).
    pub errors: Errors,
    pub collect_ms: BTreeMap<&'static str, f64>,
    pub started_mono_ns: u64,
    /// Gap before the first collection, so that rates cover a real interval.
    pub sample: Duration,
    /// Whether collection errors are logged as they happen (the daemon); `once` reports them
    /// itself, one line per problem.
    pub log_errors: bool,
    /// Push rounds so far (the number in each `collector_health`).
    pub rounds: u64,
    scratch: Vec<u8>,
    outcomes: Vec<(ElementMeta, Outcome)>,
    cycle_errors: Vec<(String, String)>,
    failing: BTreeMap<String, Repeated>,
    /// What the collectors of the current config share (the PostgreSQL connection set).
    shared: collect::Shared,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Engine {
    /// The collectors of `names` (all enabled ones when `None`) that this build has, with
    /// baselines taken at `now` and first runs due at `now + sample`.
    pub fn new(config: Config, names: Option<&[&str]>, sample: Duration, now: Now) -> Engine {
        Engine::with_mode(config, names, sample, now, collect::Mode::Run)
    }

    /// [`Engine::new`] for `mode` (`once` takes a look and stores nothing).
    pub fn with_mode(
        config: Config,
        names: Option<&[&str]>,
        sample: Duration,
        now: Now,
        mode: collect::Mode,
    ) -> Engine {
        Engine::with_shared(config, names, sample, now, collect::Shared::new(mode))
    }

    /// [`Engine::new`] for `run --once`: one round, then exit (docs/metrics.md, `pg_log`: the end
    /// of what the log reader read ends its last entry).
    pub fn for_one_round(config: Config, sample: Duration, now: Now) -> Engine {
        let shared = collect::Shared::new(collect::Mode::Run).for_one_round();
        Engine::with_shared(config, None, sample, now, shared)
    }

    fn with_shared(
        config: Config,
        names: Option<&[&str]>,
        sample: Duration,
        now: Now,
        shared: collect::Shared,
    ) -> Engine {
        let mut engine = Engine {
            identity: Identity::resolve(&config),
            buffer: ElementBuffer::new(config.backend.buffer_bytes),
            slots: Vec::new(),
            stats: Stats::default(),
            errors: Errors::new(),
            collect_ms: BTreeMap::new(),
            started_mono_ns: now.mono_ns,
            sample,
            log_errors: true,
            rounds: 0,
            scratch: Vec::new(),
            outcomes: Vec::new(),
            cycle_errors: Vec::new(),
            failing: BTreeMap::new(),
            shared,
            config,
        };
        for plugin in &PLUGINS {
            let wanted = match names {
                Some(list) => list.contains(&plugin.name),
                None => engine.config.plugin(plugin.name).is_some_and(|p| p.enabled),
            };
            if wanted {
                engine.add_slot(plugin, now);
            }
        }
        engine
    }

    fn add_slot(&mut self, plugin: &'static registry::Plugin, now: Now) {
        let name = plugin.name;
        let mut collector = (plugin.build)(&self.config, &mut self.shared);
        collector.baseline(now);
        let interval = self
            .config
            .plugin(name)
            .map_or(self.config.collector.interval, |p| p.interval);
        let slot = Slot {
            name,
            source: registry::source_id(name),
            collector,
            grid: Grid::new(now.mono_ns.saturating_add(ns(self.sample)), ns(interval)),
            emitted: 0,
            failed: false,
        };
        // Keep the registry's order: collections due together run in that order.
        let at = self
            .slots
            .iter()
            .position(|s| s.source > slot.source)
            .unwrap_or(self.slots.len());
        self.slots.insert(at, slot);
    }

    /// The earliest time a collection is due.
    pub fn next_collection(&self) -> Option<u64> {
        self.slots
            .iter()
            .map(|s| {
                s.grid
                    .next()
                    .min(s.collector.next_tick().unwrap_or(u64::MAX))
            })
            .min()
    }

    /// Runs every collection due at `now` (in plugin order), and every tick of a plugin's own
    /// second schedule that is due; returns how many ran. Waits inside collections watch
    /// `signals`; a stop signal skips the remaining collections.
    pub fn collect_due(&mut self, now: Now, signals: Option<&Signals>) -> usize {
        let mut ran = 0;
        for i in 0..self.slots.len() {
            // Queued only (no system call per plugin): a signal that arrives during a
            // collection is read by that collection's next wait, or by the loop's.
            if signals.is_some_and(Signals::stop_queued) {
                break;
            }
            if self.slots[i].grid.is_due(now.mono_ns) {
                self.run_slot(i, now, signals, Run::Collect);
                self.slots[i].grid.ran(now.mono_ns);
                ran += 1;
            }
            if self.slots[i]
                .collector
                .next_tick()
                .is_some_and(|t| t <= now.mono_ns)
            {
                self.run_slot(i, now, signals, Run::Tick);
                ran += 1;
            }
        }
        ran
    }

    /// The earliest tick of a plugin's own second schedule ([`Collector::next_tick`]).
    pub fn next_tick(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter_map(|s| s.collector.next_tick())
            .min()
    }

    /// Runs every tick of a plugin's own second schedule that is due at `now` (not the
    /// collections): `once` samples during its baseline this way.
    pub fn tick_due(&mut self, now: Now, signals: Option<&Signals>) -> usize {
        let mut ran = 0;
        for i in 0..self.slots.len() {
            if self.slots[i]
                .collector
                .next_tick()
                .is_some_and(|t| t <= now.mono_ns)
            {
                self.run_slot(i, now, signals, Run::Tick);
                ran += 1;
            }
        }
        ran
    }

    /// Runs one collection now, whatever its schedule.
    pub fn collect_slot(&mut self, i: usize, now: Now, signals: Option<&Signals>) {
        self.run_slot(i, now, signals, Run::Collect);
    }

    fn run_slot(&mut self, i: usize, now: Now, signals: Option<&Signals>, run: Run) {
        let max_element = self.config.backend.max_batch_bytes / 4;
        let started = crate::sys::time::monotonic_ns();
        let slot = &mut self.slots[i];
        let interval = Duration::from_nanos(slot.grid.period());
        let mut out = Output::new(
            slot.name,
            &mut self.buffer,
            &mut self.scratch,
            max_element,
            &mut self.stats,
            &mut self.outcomes,
            &mut self.cycle_errors,
        )
        .with_signals(signals)
        .with_interval(Some(interval));
        let result = match run {
            Run::Collect => slot.collector.collect(now, &mut out),
            Run::Tick => slot.collector.tick(now, &mut out),
        };
        let name = slot.name;
        if run == Run::Collect {
            slot.emitted = out.emitted();
            slot.failed = matches!(result, Err(CollectError::Failed(_)));
            let took = crate::sys::time::monotonic_ns().saturating_sub(started);
            self.collect_ms
                .insert(name, (took as f64 / 1e3).round() / 1e3);
        }
        match result {
            Ok(()) | Err(CollectError::Interrupted) => {}
            Err(CollectError::Failed(msg)) => self.cycle_errors.push((name.to_string(), msg)),
        }
        self.note_errors(name);
        self.route_outcomes();
    }

    /// Moves this collection's errors into the round's, logging each key on its first failure,
    /// on backoff steps, and on recovery (keys of this plugin that no longer fail).
    fn note_errors(&mut self, plugin: &'static str) {
        for (key, msg) in self.cycle_errors.drain(..) {
            if self.failing.entry(key.clone()).or_default().failed() && self.log_errors {
                let n = self
                    .failing
                    .get(&key)
                    .map_or(1, Repeated::count)
                    .to_string();
                agent_log::warn(plugin, &msg, &[("key", &key), ("failures", &n)]);
            }
            self.errors.insert(key, msg);
        }
        let recovered: Vec<String> = self
            .failing
            .keys()
            .filter(|k| {
                (k.as_str() == plugin || k.strip_prefix(plugin).is_some_and(|r| r.starts_with('/')))
                    && !self.errors.contains_key(k.as_str())
            })
            .cloned()
            .collect();
        for key in recovered {
            if let Some(mut r) = self.failing.remove(&key)
                && r.succeeded()
            {
                agent_log::info(plugin, "recovered", &[("key", &key)]);
            }
        }
    }

    /// Hands every pending outcome to the collector that produced the element.
    fn route_outcomes(&mut self) {
        for (meta, outcome) in self.outcomes.drain(..) {
            if let Some(slot) = self.slots.iter_mut().find(|s| s.source == meta.source) {
                slot.collector.outcome(meta.tag, outcome);
            }
        }
    }

    /// The `collector_health` element as JSON, from the current state.
    pub fn health_json(&self, now: Now) -> Vec<u8> {
        let mut json = Vec::new();
        self.write_health(now, &mut json);
        json
    }

    /// [`Engine::health_json`], appended to `json`.
    fn write_health(&self, now: Now, json: &mut Vec<u8>) {
        let inputs = health::Inputs {
            now,
            round: self.rounds,
            started_mono_ns: self.started_mono_ns,
            collect_ms: &self.collect_ms,
            buffer_bytes: self.buffer.json_bytes(),
            buffer_capacity_bytes: self.buffer.capacity(),
            stats: &self.stats,
            log_entries_truncated: self.stats.log_entries_truncated,
            errors: &self.errors,
            usage: health::process_usage(),
        };
        // unwrap: the element holds numbers, strings and maps of strings.
        serde_json::to_writer(json, &health::element(&inputs)).unwrap()
    }

    /// Stores this round's `collector_health` element and starts a new round of errors.
    pub fn add_health(&mut self, now: Now) {
        self.rounds += 1;
        // Written into the collectors' scratch buffer: no allocation per round.
        let mut json = std::mem::take(&mut self.scratch);
        json.clear();
        self.write_health(now, &mut json);
        let meta = ElementMeta {
            source: HEALTH_SOURCE,
            tag: 0,
        };
        let stats = &mut self.stats;
        let outcomes = &mut self.outcomes;
        let stored = self.buffer.push(meta, &json, &mut |m, r| {
            stats.metrics_dropped += 1;
            outcomes.push((m, Outcome::Dropped(r)));
        });
        self.scratch = json;
        if stored.is_err() {
            self.stats.metrics_dropped += 1;
        }
        self.errors.clear();
        self.route_outcomes();
    }

    /// One push round through `sink`.
    pub fn push(&mut self, sink: &mut dyn Sink, now: Now) -> Result<(), SinkError> {
        let round = Round {
            collector_id: &self.identity.collector_id,
            hostname: &self.identity.hostname,
            now: now.wall,
            mono_ns: now.mono_ns,
            max_batch_bytes: self.config.backend.max_batch_bytes,
        };
        let outcomes = &mut self.outcomes;
        let result = sink.push_round(
            &round,
            &mut self.buffer,
            &mut |m, o| outcomes.push((m, o)),
            &mut self.stats,
        );
        self.route_outcomes();
        result
    }

    /// Hands what memory holds to the sink's outage spool (after a collection round while the
    /// backend fails; `exit`: after the last push), routing the outcomes.
    pub fn spool(&mut self, sink: &mut dyn Sink, exit: bool) {
        let outcomes = &mut self.outcomes;
        sink.spool_memory(
            &mut self.buffer,
            &mut |m, o| outcomes.push((m, o)),
            &mut self.stats,
            exit,
        );
        self.route_outcomes();
    }

    /// Applies a new, valid configuration between cycles.
    pub fn reload(&mut self, mut new: Config, now: Now) {
        if new.collector.state_dir != self.config.collector.state_dir {
            agent_log::warn(
                "config",
                "state_dir cannot change without a restart; keeping the running one",
                &[
                    (
                        "running",
                        &self.config.collector.state_dir.display().to_string(),
                    ),
                    ("file", &new.collector.state_dir.display().to_string()),
                ],
            );
            new.collector.state_dir = self.config.collector.state_dir.clone();
        }
        let old = std::mem::replace(&mut self.config, new);
        if old.postgres != self.config.postgres {
            // Pg collectors are rebuilt below (settings_changed) and take a new pool; the old
            // one closes its connections when the last old collector goes.
            self.shared = self.shared.renewed();
        }
        if old.backend.buffer_bytes != self.config.backend.buffer_bytes {
            let buffer = std::mem::replace(&mut self.buffer, ElementBuffer::new(0));
            let stats = &mut self.stats;
            let outcomes = &mut self.outcomes;
            self.buffer = buffer.resized(self.config.backend.buffer_bytes, &mut |m, r| {
                stats.metrics_dropped += 1;
                outcomes.push((m, Outcome::Dropped(r)));
            });
            self.route_outcomes();
        }
        for plugin in &PLUGINS {
            let name = plugin.name;
            let want = self.config.plugin(name).is_some_and(|p| p.enabled);
            let at = self.slots.iter().position(|s| s.name == name);
            match (want, at) {
                (false, Some(i)) => {
                    self.slots.remove(i);
                    self.collect_ms.remove(name);
                }
                (true, None) => self.add_slot(plugin, now),
                (true, Some(i)) => {
                    if (plugin.rebuild)(&old, &self.config) {
                        self.slots.remove(i);
                        self.add_slot(plugin, now);
                    } else {
                        let interval = self.config.plugin(name).map(|p| p.interval);
                        let slot = &mut self.slots[i];
                        if let Some(interval) = interval
                            && ns(interval) != slot.grid.period()
                        {
                            // A changed interval restarts that plugin's grid at the reload.
                            slot.grid = Grid::new(now.mono_ns, ns(interval));
                        }
                    }
                }
                (false, None) => {}
            }
        }
        self.identity = Identity::resolve(&self.config);
        agent_log::configure(self.config.logging.level, self.config.logging.format);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::WallTime;

    /// Samples every 100 ms, one element per interval with the count of samples: the shape of
    /// wait-event sampling, on the engine's schedules alone.
    struct Sampler {
        next: u64,
        samples: u32,
    }

    impl Collector for Sampler {
        fn name(&self) -> &'static str {
            "sampler"
        }
        fn collect(&mut self, _now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
            let n = std::mem::take(&mut self.samples);
            out.emit(0, &serde_json::json!({"type": "sampler", "samples": n}))
                .map_err(|e| CollectError::Failed(e.to_string()))
        }
        fn next_tick(&self) -> Option<u64> {
            Some(self.next)
        }
        fn tick(&mut self, now: Now, _out: &mut Output<'_>) -> Result<(), CollectError> {
            self.samples += 1;
            self.next = now.mono_ns + 100_000_000;
            Ok(())
        }
    }

    fn at(mono_ns: u64) -> Now {
        Now {
            mono_ns,
            wall: WallTime { secs: 0, nanos: 0 },
        }
    }

    #[test]
    fn a_plugin_with_two_schedules_is_woken_for_each() {
        let config = Config::default();
        let mut e = Engine::with_mode(
            config,
            Some(&[]),
            Duration::ZERO,
            at(0),
            collect::Mode::Once,
        );
        e.slots.push(Slot {
            name: "sampler",
            source: 0,
            collector: Box::new(Sampler {
                next: 0,
                samples: 0,
            }),
            grid: Grid::new(1_000_000_000, 1_000_000_000),
            emitted: 0,
            failed: false,
        });
        // Woken at every sample, not only at the interval.
        let mut t = 0;
        let mut wakeups = 0;
        while t <= 2_000_000_000 {
            e.collect_due(at(t), None);
            wakeups += 1;
            t = e.next_collection().unwrap();
        }
        assert_eq!(wakeups, 21, "a wake-up every 100 ms over 2 s");
        let mut out = Vec::new();
        while let Some(_meta) = e.buffer.pop_into(&mut out) {}
        let text = String::from_utf8(out).unwrap();
        // At 1 s: samples at 0, 0.1 … 0.9 (the collection runs before the 1 s sample).
        assert!(text.contains("\"samples\":10"), "{text}");
        assert_eq!(text.matches("\"type\":\"sampler\"").count(), 2, "{text}");
    }
}
