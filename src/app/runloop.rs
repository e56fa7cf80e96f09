//! `run`: the poll loop. One thread; it sleeps in `poll` on the signal fd until the next
//! deadline, then does what is due, in this order:
//!
//! ```text
//!   ┌─▶ collect every plugin that is due (plugin order)
//!   │   push if due: collector_health, then one round through the sink
//!   │   wait: poll(signal fd, until the earliest next deadline)
//!   └── signals: HUP reload · USR1 health line · TERM/INT last push, exit 0
//! ```

use super::engine::Engine;
use super::schedule::Grid;
use crate::agent_log;
use crate::collect::Now;
use crate::config::{self, Config};
use crate::pipeline::sink::{Sink, SinkError};
use crate::push::pull::{self, PullResult};
use crate::state::{self, StateDir};
use crate::sys::signals::{self, Signal, Signals};
use std::path::PathBuf;
use std::time::Duration;

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

/// The push and config-pull schedules.
struct Schedules {
    push: Grid,
    /// `None` when `config_pull_interval = 0`, with `--once`, or without a backend.
    pull: Option<Grid>,
    applied: Option<i64>,
    /// The document last applied: a document without a version that did not change is not
    /// applied (and logged) again at every pull.
    applied_doc: Option<pull::Pulled>,
    /// The document last rejected: warned about once, not at every pull.
    rejected_doc: Option<pull::Pulled>,
    pull_failing: agent_log::Repeated,
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

/// Runs until a stop signal. `signals` must have been installed before any thread started.
pub fn run(config: Config, opts: RunOptions, signals: &Signals, sink: &mut dyn Sink) -> Exit {
    let start = Now::read();
    let mut engine = Engine::new(config, None, opts.sample, start);
    let first = start
        .mono_ns
        .saturating_add(ns(opts.sample))
        .saturating_add(ns(opts.push_offset));
    let mut sched = Schedules {
        push: Grid::new(first, ns(engine.config.collector.push_interval)),
        pull: pull_grid(&engine.config, &opts, first),
        applied: opts.applied_version,
        applied_doc: None,
        rejected_doc: None,
        pull_failing: agent_log::Repeated::default(),
    };
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

    loop {
        let now = Now::read();
        engine.collect_due(now, Some(signals));
        let push = &mut sched.push;

        // While the sink backs off, its retry time replaces the push_interval schedule.
        let due = match sink.next_wakeup() {
            Some(retry) => {
                if push.is_due(now.mono_ns) {
                    push.ran(now.mono_ns);
                }
                now.mono_ns >= retry
            }
            None => push.is_due(now.mono_ns),
        };
        if due {
            if push.is_due(now.mono_ns) {
                push.ran(now.mono_ns);
            }
            engine.add_health(now);
            match engine.push(sink, now) {
                Ok(()) => {
                    if opts.once {
                        return Exit::Done;
                    }
                }
                Err(SinkError::Closed) => return Exit::Done,
                Err(SinkError::Failed(msg)) => {
                    engine.stats.push_failures += 1;
                    if signals.stop_requested() {
                        // Interrupted by SIGTERM: the signal branch below makes the last push.
                    } else {
                        agent_log::error("push", &msg, &[]);
                        if opts.once {
                            return Exit::Failed(msg);
                        }
                    }
                }
                Err(SinkError::Retry(msg)) => {
                    // Already logged by the sink, on its backoff steps.
                    engine.stats.push_failures += 1;
                    if opts.once {
                        return Exit::Failed(msg);
                    }
                }
            }
        }

        let now = Now::read();
        if sched.pull.as_ref().is_some_and(|g| g.is_due(now.mono_ns)) && !signals.stop_requested() {
            if let Some(g) = sched.pull.as_mut() {
                g.ran(now.mono_ns);
            }
            pull_config(&mut engine, sink, &opts, &mut sched, now);
        }

        let next_push = sink.next_wakeup().unwrap_or_else(|| sched.push.next());
        let next_pull = sched.pull.as_ref().map_or(u64::MAX, Grid::next);
        let deadline = engine
            .next_collection()
            .map_or(next_push, |c| c.min(next_push))
            .min(next_pull);
        // Signals queued during an operation (a PostgreSQL wait) no longer show on the fd.
        let timeout = if signals.queued() {
            0
        } else {
            deadline.saturating_sub(crate::sys::time::monotonic_ns())
        };
        if timeout > 0
            && let Err(e) = signals::wait(signals, None, timeout)
        {
            return Exit::Failed(format!("cannot wait for signals: {e}"));
        }

        while let Some(signal) = signals.next() {
            match signal {
                Signal::Hup => {
                    reload(&mut engine, sink, &opts, &mut sched);
                }
                Signal::Usr1 => {
                    let health = engine.health_json(Now::read());
                    agent_log::info(
                        "main",
                        "health",
                        &[("health", &String::from_utf8_lossy(&health))],
                    );
                }
                Signal::Term | Signal::Int => {
                    agent_log::info(
                        "main",
                        "stopping: last push",
                        &[("signal", &format!("{signal:?}"))],
                    );
                    sink.last_push(std::time::Instant::now() + LAST_PUSH);
                    let now = Now::read();
                    engine.add_health(now);
                    return match engine.push(sink, now) {
                        Ok(()) | Err(SinkError::Closed) => Exit::Done,
                        Err(SinkError::Failed(msg) | SinkError::Retry(msg)) => {
                            agent_log::error(
                                "push",
                                &format!("last push not delivered: {msg}"),
                                &[],
                            );
                            Exit::Done
                        }
                    };
                }
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

/// A new valid configuration, between cycles: the engine, the sink (`[backend]`, `[auth]`,
/// TLS files re-read) and the schedules whose interval changed.
fn apply(
    engine: &mut Engine,
    sink: &mut dyn Sink,
    opts: &RunOptions,
    sched: &mut Schedules,
    new: Config,
) {
    let push_changed = new.collector.push_interval != engine.config.collector.push_interval;
    let pull_changed =
        new.collector.config_pull_interval != engine.config.collector.config_pull_interval;
    let now = Now::read();
    engine.reload(new, now);
    sink.reload(&engine.config);
    if push_changed {
        sched.push = Grid::new(now.mono_ns, ns(engine.config.collector.push_interval));
    }
    if pull_changed {
        sched.pull = pull_grid(&engine.config, opts, now.mono_ns);
    }
}

/// One config pull (protocol.md §5); a new valid document is persisted and applied.
fn pull_config(
    engine: &mut Engine,
    sink: &mut dyn Sink,
    opts: &RunOptions,
    sched: &mut Schedules,
    now: Now,
) {
    let Some(path) = &opts.config_path else {
        return;
    };
    let Some(result) = engine.pull(sink, now, sched.applied) else {
        return;
    };
    let (version, pulled) = match result {
        PullResult::Nothing => {
            if sched.pull_failing.succeeded() {
                agent_log::info("config", "config pull works again", &[]);
            }
            return;
        }
        PullResult::Failed(msg) => {
            if sched.pull_failing.failed() {
                let n = sched.pull_failing.count().to_string();
                agent_log::warn("config", &msg, &[("failures", &n)]);
            }
            return;
        }
        PullResult::New { version, pulled } => (version, pulled),
    };
    if sched.pull_failing.succeeded() {
        agent_log::info("config", "config pull works again", &[]);
    }
    if (sched.applied_doc.as_ref() == Some(&pulled) && version == sched.applied)
        || sched.rejected_doc.as_ref() == Some(&pulled)
    {
        return;
    }
    let v = version.map_or_else(|| "none".to_string(), |v| v.to_string());
    for key in &pulled.ignored {
        agent_log::warn(
            "config",
            "the pulled config sets a key the backend may not change; ignored",
            &[("key", key), ("version", &v)],
        );
    }
    let env = |name: &str| std::env::var(name).ok();
    match pull::apply(path, &pulled, &env) {
        Ok(mut config) => {
            config.collector.state_dir = engine.config.collector.state_dir.clone();
            let state = StateDir::new(&engine.config.collector.state_dir);
            let remote = state.file(state::REMOTE_CONFIG);
            if let Err(e) = state.write(
                state::REMOTE_CONFIG,
                pull::remote_file(version, &pulled).as_bytes(),
            ) {
                agent_log::warn(
                    "config",
                    &format!("cannot keep the pulled config: {e}"),
                    &[("file", &remote.display().to_string())],
                );
            }
            sched.applied = version;
            sched.applied_doc = Some(pulled.clone());
            sched.rejected_doc = None;
            apply(engine, sink, opts, sched, config);
            agent_log::info(
                "config",
                "pulled config applied",
                &[("version", &v), ("keys", &pulled.keys.len().to_string())],
            );
        }
        Err(e) => {
            agent_log::warn(
                "config",
                &format!("pulled config rejected whole, running configuration kept: {e}"),
                &[("version", &v)],
            );
            sched.rejected_doc = Some(pulled);
        }
    }
}

/// SIGHUP: re-read and validate the whole file (+ the pulled overlay); apply it or keep the
/// running config. TLS identity and CA files are re-read even when nothing else changed.
fn reload(engine: &mut Engine, sink: &mut dyn Sink, opts: &RunOptions, sched: &mut Schedules) {
    let Some(path) = &opts.config_path else {
        agent_log::warn(
            "config",
            "SIGHUP: running on built-in defaults, no config file to reload",
            &[],
        );
        sink.reload(&engine.config);
        return;
    };
    let env = |name: &str| std::env::var(name).ok();
    match config::load(path, &env) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                agent_log::warn("config", &w.to_string(), &[]);
            }
            let mut config = loaded.config;
            if let Some((overlaid, version, _)) = pull::remote_overlay(path, &config, &env) {
                config = overlaid;
                sched.applied = version;
            }
            apply(engine, sink, opts, sched, config);
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
