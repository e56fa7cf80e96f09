//! The run loop's config-pull step (docs/protocol.md, config pull): when due, one pull through the
//! backend client; a new document is validated whole over the config file, persisted in the
//! state directory, and handed back for the loop to apply between cycles. A document already
//! applied, or already rejected, is not applied or warned about again at every pull.
//!
//! Not here: what a document may set, the overlay and the validation (`config::pull`, pure);
//! the HTTP call and its authentication (`push::client`).

use super::schedule::Grid;
use crate::agent_log::{self, Repeated};
use crate::config::{Config, pull};
use crate::push::client::{Backend, Caller, PullResult};
use crate::push::conn::Transport;
use crate::state::{self, StateDir};
use std::path::Path;

/// The pull schedule and what was applied.
pub struct ConfigPull {
    /// `None` when `config_pull_interval = 0`, with `--once`, or without a backend.
    pub grid: Option<Grid>,
    /// Version of the document applied (from `remote-config.toml` at start).
    pub applied: Option<i64>,
    /// The document last applied: a document without a version that did not change is not
    /// applied (and logged) again at every pull.
    applied_doc: Option<pull::Pulled>,
    /// The document last rejected: warned about once, not at every pull.
    rejected_doc: Option<pull::Pulled>,
    failing: Repeated,
}

impl ConfigPull {
    pub fn new(grid: Option<Grid>, applied: Option<i64>) -> ConfigPull {
        ConfigPull {
            grid,
            applied,
            applied_doc: None,
            rejected_doc: None,
            failing: Repeated::default(),
        }
    }

    pub fn is_due(&self, mono_ns: u64) -> bool {
        self.grid.as_ref().is_some_and(|g| g.is_due(mono_ns))
    }

    /// The next pull (`u64::MAX` when none is scheduled).
    pub fn next(&self) -> u64 {
        self.grid.as_ref().map_or(u64::MAX, Grid::next)
    }

    /// One pull at `mono_ns`: `Some` new configuration (the file at `path` with the document
    /// laid over it, valid, and persisted) for the caller to apply.
    pub fn pull<T: Transport>(
        &mut self,
        backend: &mut Backend<T>,
        caller: Caller<'_>,
        mono_ns: u64,
        path: &Path,
        running: &Config,
    ) -> Option<Config> {
        if let Some(g) = self.grid.as_mut() {
            g.ran(mono_ns);
        }
        let (version, pulled) = match backend.pull_config(caller, self.applied) {
            PullResult::Nothing => {
                if self.failing.succeeded() {
                    agent_log::info("config", "config pull works again", &[]);
                }
                return None;
            }
            PullResult::Failed(msg) => {
                if self.failing.failed() {
                    let n = self.failing.count().to_string();
                    agent_log::warn("config", &msg, &[("failures", &n)]);
                }
                return None;
            }
            PullResult::New { version, pulled } => (version, pulled),
        };
        if self.failing.succeeded() {
            agent_log::info("config", "config pull works again", &[]);
        }
        if (self.applied_doc.as_ref() == Some(&pulled) && version == self.applied)
            || self.rejected_doc.as_ref() == Some(&pulled)
        {
            return None;
        }
        let v = version.map_or_else(|| "none".to_string(), |v| v.to_string());
        for line in &pulled.clamped {
            agent_log::warn("config", line, &[("version", &v)]);
        }
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
                config.collector.state_dir = running.collector.state_dir.clone();
                let state = StateDir::new(&running.collector.state_dir);
                if let Err(e) = state.write(
                    state::REMOTE_CONFIG,
                    pull::remote_file(version, &pulled).as_bytes(),
                ) {
                    agent_log::warn(
                        "config",
                        &format!("cannot keep the pulled config: {e}"),
                        &[(
                            "file",
                            &state.file(state::REMOTE_CONFIG).display().to_string(),
                        )],
                    );
                }
                self.applied = version;
                self.rejected_doc = None;
                agent_log::info(
                    "config",
                    "pulled config applied",
                    &[("version", &v), ("keys", &pulled.keys.len().to_string())],
                );
                self.applied_doc = Some(pulled);
                Some(config)
            }
            Err(e) => {
                agent_log::warn(
                    "config",
                    &format!("pulled config rejected whole, running configuration kept: {e}"),
                    &[("version", &v)],
                );
                self.rejected_doc = Some(pulled);
                None
            }
        }
    }
}
