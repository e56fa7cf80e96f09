//! `run`: the poll loop. One thread; it sleeps in `poll` on the signal fd until the next
//! deadline, then does what is due, in this order (each step one method of [`Run`]):
//!
//! ```text
//!   ┌─▶ collect_due   every plugin that is due (plugin order)
//!   │   push_if_due   collector_health, then one round through the sink
//!   │   pull_if_due   config pull through the backend client; a new document applied
//!   │   wait          blocks kept by the allocator released; poll(signal fd, until the
//!   │                 earliest next deadline)
//!   └── on_signals    HUP reload · USR1 health line · TERM/INT last push, exit 0
//! ```

use super::engine::Engine;
use super::pull::ConfigPull;
use super::schedule::Grid;
use crate::agent_log;
use crate::collect::Now;
use crate::config::{self, Config};
use crate::pipeline::sink::{Sink, SinkError, StdoutSink};
use crate::push::client::{Backend, Caller, ClientSettings};
use crate::push::conn::Conn;
use crate::push::sink::{Delivery, HttpsSink};
use crate::sys::signals::{self, Signal, Signals};
use std::path::PathBuf;
use std::time::Duration;

/// Where the rounds of `run` go.
pub enum Outlet<'s> {
    /// `run --stdout`: one envelope line per round; no backend, no config pull.
    Stdout(StdoutSink<crate::sys::stdout::Stdout<'s>>),
    /// `run`: the HTTPS sink, and through its backend client the config pull.
    Backend(Box<HttpsSink<Conn<'s>>>),
}

impl<'s> Outlet<'s> {
    fn sink(&mut self) -> &mut dyn Sink {
        match self {
            Outlet::Stdout(s) => s,
            Outlet::Backend(s) => s.as_mut(),
        }
    }

    fn backend(&mut self) -> Option<&mut Backend<Conn<'s>>> {
        match self {
            Outlet::Stdout(_) => None,
            Outlet::Backend(s) => Some(s.backend()),
        }
    }

    /// A new configuration's `[backend]`, `[auth]` and `[tls]` (files read again).
    fn reconfigure(&mut self, config: &Config) {
        if let Outlet::Backend(s) = self {
            s.set_delivery(Delivery::from_config(config));
            match ClientSettings::from_config(config) {
                Ok(settings) => s.backend().reconfigure(settings),
                Err(e) => agent_log::error("push", &format!("[backend] not reloaded: {e}"), &[]),
            }
        }
    }
}

/// How `run` was asked to behave.
pub struct RunOptions {
    /// The file to re-read on SIGHUP (`None`: built-in defaults, nothing to reload).
    pub config_path: Option<PathBuf>,
    /// One round (every enabled plugin once, then one push), then exit.
    pub once: bool,
    /// Delay from start to the first collections (rate baseline).
    pub sample: Duration,
    /// Phase of the push schedule: the first push comes this long after the first
    /// collections (a random offset in [0, push_interval), so a fleet restarted together does
    /// not push in the same second). Collections are not shifted.
    pub push_offset: Duration,
    /// Version of the pulled document applied at start (from `remote-config.toml`).
    pub applied_version: Option<i64>,
}

/// The last push after SIGTERM ends within this.
pub const LAST_PUSH: Duration = Duration::from_secs(5);

/// How the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM/SIGINT, a closed stdout, or `--once` delivered.
    Done,
    /// `--once` could not deliver, or the loop could not wait.
    Failed(String),
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The loop's state between steps.
pub struct Run<'a, 's> {
    engine: Engine,
    opts: RunOptions,
    signals: &'a Signals,
    outlet: &'a mut Outlet<'s>,
    push: Grid,
    pull: ConfigPull,
}

/// Runs until a stop signal. `signals` must have been installed before any thread started.
pub fn run(config: Config, opts: RunOptions, signals: &Signals, outlet: &mut Outlet<'_>) -> Exit {
    let mut run = Run::start(config, opts, signals, outlet);
    // Start-up code is not run again: its pages leave the RSS (docs/performance.md).
    crate::sys::pages::release_startup_code();
    loop {
        let now = Now::read();
        run.collect_due(now);
        if let Some(exit) = run.push_if_due(now) {
            return exit;
        }
        run.pull_if_due();
        match run.wait() {
            Err(exit) => return exit,
            // The signal fd is read only when it may hold something (not after every
            // deadline: pg_wait_events wakes the loop ten times a second).
            Ok(false) => {}
            Ok(true) => {
                if let Some(exit) = run.on_signals() {
                    return exit;
                }
            }
        }
    }
}

impl<'a, 's> Run<'a, 's> {
    fn start(
        config: Config,
        opts: RunOptions,
        signals: &'a Signals,
        outlet: &'a mut Outlet<'s>,
    ) -> Run<'a, 's> {
        let start = Now::read();
        let engine = if opts.once {
            Engine::for_one_round(config, opts.sample, start)
        } else {
            Engine::new(config, None, opts.sample, start)
        };
        let first = start
            .mono_ns
            .saturating_add(ns(opts.sample))
            .saturating_add(ns(opts.push_offset));
        let push = Grid::new(first, ns(engine.config.collector.push_interval));
        let pull = ConfigPull::new(
            pull_grid(&engine.config, &opts, first),
            opts.applied_version,
        );
        agent_log::info(
            "main",
            "started",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                (
                    "plugins",
                    &engine
                        .slots
                        .iter()
                        .map(|s| s.name)
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                ("collector_id", &engine.identity.collector_id),
            ],
        );
        Run {
            engine,
            opts,
            signals,
            outlet,
            push,
            pull,
        }
    }

    /// Every collection due at `now`.
    /// While the backend fails, the round's elements go to the outage spool (one fsync).
    fn collect_due(&mut self, now: Now) {
        if self.engine.collect_due(now, Some(self.signals)) > 0 {
            self.engine.spool(self.outlet.sink(), false);
        }
    }

    /// A push round when one is due: the push_interval schedule, or while the sink backs off,
    /// its retry time. `Some` when the loop ends (`--once`, a closed stdout).
    fn push_if_due(&mut self, now: Now) -> Option<Exit> {
        let push = &mut self.push;
        let due = match self.outlet.sink().next_wakeup() {
            Some(retry) => {
                if push.is_due(now.mono_ns) {
                    push.ran(now.mono_ns);
                }
                now.mono_ns >= retry
            }
            None => push.is_due(now.mono_ns),
        };
        if !due {
            return None;
        }
        if push.is_due(now.mono_ns) {
            push.ran(now.mono_ns);
        }
        self.engine.add_health(now);
        match self.round(now) {
            Ok(()) => self.opts.once.then_some(Exit::Done),
            Err(SinkError::Closed) => Some(Exit::Done),
            Err(SinkError::Failed(msg)) => {
                self.engine.stats.push_failures += 1;
                if self.signals.stop_requested() {
                    // Interrupted by SIGTERM: on_signals makes the last push.
                    None
                } else {
                    agent_log::error("push", &msg, &[]);
                    self.opts.once.then_some(Exit::Failed(msg))
                }
            }
            Err(SinkError::Retry(msg)) => {
                // Already logged by the sink, on its backoff steps.
                self.engine.stats.push_failures += 1;
                self.opts.once.then_some(Exit::Failed(msg))
            }
        }
    }

    /// One push round; a re-registration's new id becomes the engine's.
    fn round(&mut self, now: Now) -> Result<(), SinkError> {
        let result = self.engine.push(self.outlet.sink(), now);
        if let Some(id) = self.outlet.backend().and_then(|b| b.registered_id())
            && id != self.engine.identity.collector_id
        {
            self.engine.identity.collector_id = id.to_string();
        }
        result
    }

    /// A config pull when one is due; a new valid document is applied now.
    fn pull_if_due(&mut self) {
        let now = Now::read();
        if !self.pull.is_due(now.mono_ns) || self.signals.stop_requested() {
            return;
        }
        let (Some(path), Some(backend)) = (&self.opts.config_path, self.outlet.backend()) else {
            return;
        };
        let caller = Caller {
            collector_id: &self.engine.identity.collector_id,
            hostname: &self.engine.identity.hostname,
            now_unix: now.wall.secs,
        };
        if let Some(config) =
            self.pull
                .pull(backend, caller, now.mono_ns, path, &self.engine.config)
        {
            self.apply(config);
        }
    }

    /// Sleeps until the earliest deadline (collection, push or retry, pull) or a signal; true
    /// when signals may be waiting (on the fd, or queued during an operation).
    fn wait(&mut self) -> Result<bool, Exit> {
        let next_push = self
            .outlet
            .sink()
            .next_wakeup()
            .unwrap_or_else(|| self.push.next());
        let deadline = self
            .engine
            .next_collection()
            .map_or(next_push, |c| c.min(next_push))
            .min(self.pull.next());
        // Signals queued during an operation (a PostgreSQL wait) no longer show on the fd.
        let timeout = if self.signals.queued() {
            0
        } else {
            deadline.saturating_sub(crate::sys::time::monotonic_ns())
        };
        if timeout == 0 {
            return Ok(true);
        }
        // What the round freed goes back to the system while the loop sleeps.
        crate::sys::alloc::release();
        match signals::wait(self.signals, None, timeout) {
            Ok(woken) => Ok(woken != signals::Woken::Deadline),
            Err(e) => Err(Exit::Failed(format!("cannot wait for signals: {e}"))),
        }
    }

    /// Handles the signals that arrived: `Some` when the loop ends (SIGTERM, SIGINT).
    fn on_signals(&mut self) -> Option<Exit> {
        while let Some(signal) = self.signals.next() {
            match signal {
                Signal::Hup => self.reload(),
                Signal::Usr1 => {
                    let health = self.engine.health_json(Now::read());
                    agent_log::info(
                        "main",
                        "health",
                        &[("health", &String::from_utf8_lossy(&health))],
                    );
                }
                Signal::Term | Signal::Int => return Some(self.last_push(signal)),
            }
        }
        None
    }

    /// SIGTERM/SIGINT: one last round within [`LAST_PUSH`], whatever signals arrive; exit 0.
    fn last_push(&mut self, signal: Signal) -> Exit {
        agent_log::info(
            "main",
            "stopping: last push",
            &[("signal", &format!("{signal:?}"))],
        );
        self.outlet
            .sink()
            .last_push(std::time::Instant::now() + LAST_PUSH);
        let now = Now::read();
        self.engine.add_health(now);
        match self.round(now) {
            Ok(()) | Err(SinkError::Closed) => {}
            Err(SinkError::Failed(msg) | SinkError::Retry(msg)) => {
                agent_log::error("push", &format!("last push not delivered: {msg}"), &[]);
            }
        }
        // What memory still holds goes to the outage spool; the next start sends it.
        self.engine.spool(self.outlet.sink(), true);
        Exit::Done
    }

    /// A new valid configuration, between cycles: the engine, the outlet (`[backend]`,
    /// `[auth]`, TLS files re-read) and the schedules whose interval changed.
    fn apply(&mut self, new: Config) {
        let old = &self.engine.config.collector;
        let push_changed = new.collector.push_interval != old.push_interval;
        let pull_changed = new.collector.config_pull_interval != old.config_pull_interval;
        let now = Now::read();
        self.engine.reload(new, now);
        self.outlet.reconfigure(&self.engine.config);
        if push_changed {
            self.push = Grid::new(now.mono_ns, ns(self.engine.config.collector.push_interval));
        }
        if pull_changed {
            self.pull.grid = pull_grid(&self.engine.config, &self.opts, now.mono_ns);
        }
    }

    /// SIGHUP: re-read and validate the whole file (+ the pulled overlay); apply it or keep
    /// the running config. TLS identity and CA files are re-read even when nothing else
    /// changed.
    fn reload(&mut self) {
        let Some(path) = self.opts.config_path.clone() else {
            agent_log::warn(
                "config",
                "SIGHUP: running on built-in defaults, no config file to reload",
                &[],
            );
            self.outlet.reconfigure(&self.engine.config);
            return;
        };
        let env = |name: &str| std::env::var(name).ok();
        match config::load(&path, &env) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    agent_log::warn("config", &w.to_string(), &[]);
                }
                let mut config = loaded.config;
                if let Some((overlaid, version, _)) =
                    config::pull::remote_overlay(&path, &config, &env)
                {
                    config = overlaid;
                    self.pull.applied = version;
                }
                self.apply(config);
                agent_log::info(
                    "config",
                    "reloaded",
                    &[("file", &path.display().to_string())],
                );
            }
            Err(config::LoadError::Invalid(diagnostics)) => {
                for d in &diagnostics {
                    agent_log::error("config", &d.to_string(), &[]);
                }
                agent_log::error(
                    "config",
                    "reload rejected: the running configuration is kept; fix the file and send SIGHUP again",
                    &[("file", &path.display().to_string())],
                );
            }
            Err(e) => {
                agent_log::error(
                    "config",
                    &format!("reload rejected, running configuration kept: {e}"),
                    &[],
                );
            }
        }
    }
}

fn pull_grid(config: &Config, opts: &RunOptions, first: u64) -> Option<Grid> {
    if opts.once || opts.config_path.is_none() || config.backend.url.is_none() {
        return None;
    }
    config
        .collector
        .config_pull_interval
        .filter(|d| !d.is_zero())
        .map(|d| Grid::new(first, ns(d)))
}
