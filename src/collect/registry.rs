//! The plugin registry: one entry per metric type, and the one place that lists them. The
//! run order is the table's order. Everything else reads this table:
//!
//! ```text
//!                 ┌──▶ config loading    its table's keys, their validation (read), defaults
//!  PLUGINS[i] ────┼──▶ check-config      its keys rendered (render)
//!                 ├──▶ config pull       which keys a backend may set, and their bounds
//!                 └──▶ the engine        build, rebuild on reload, source id (= i)
//! ```
//!
//! Adding a metric type is its collector module and one entry here. Its settings, when it has
//! any beyond `enabled` and `interval`, are a struct in the config model with a field in
//! `Config`, read and rendered by the entry's two functions.
//!
//! Not here: the collectors themselves, the generic reading of a key (`config::PluginKeys`).

use super::{Collector, Shared, disk_usage, pg, sysstat};
use crate::config::{self, Config, PluginKeys, PluginRender};
use std::time::Duration;

/// A key of a plugin's table besides `enabled` and `interval`.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    /// `Some(built-in value)` when a backend may set this limit (capped at 10× that value);
    /// `None`: it stays local (what is read or sent).
    pub pull_default: Option<f64>,
}

const fn local(name: &'static str) -> Key {
    Key {
        name,
        pull_default: None,
    }
}

const fn limit(name: &'static str, default: f64) -> Key {
    Key {
        name,
        pull_default: Some(default),
    }
}

/// One metric type.
pub struct Plugin {
    /// The `type` of its elements and the name of its table.
    pub name: &'static str,
    /// On when the file has no table for it.
    pub on_by_default: bool,
    /// Its interval when the table sets none (`None`: `[collector] interval`).
    pub default_interval: Option<Duration>,
    /// Its table's keys besides `enabled` and `interval`.
    pub keys: &'static [Key],
    /// Whether a backend may switch it on or off (the slow and the log-reading ones stay
    /// local: the load on the database, what is read from the server's files).
    pub pull_enabled: bool,
    /// The shortest interval a backend may set, in seconds.
    pub pull_min_interval_secs: f64,
    /// Reads and validates its keys into the configuration.
    pub read: fn(&mut PluginKeys<'_, '_, '_, '_>, &mut Config),
    /// Writes its keys for `check-config`.
    pub render: fn(&mut PluginRender<'_, '_>, &Config),
    /// Builds its collector.
    pub build: fn(&Config, &mut Shared) -> Box<dyn Collector>,
    /// Whether a reload from `old` to `new` changes what it was built with (then it is built
    /// anew; an interval change alone only restarts its schedule).
    pub rebuild: fn(old: &Config, new: &Config) -> bool,
}

fn no_keys(_: &mut PluginKeys<'_, '_, '_, '_>, _: &mut Config) {}
fn render_nothing(_: &mut PluginRender<'_, '_>, _: &Config) {}
fn postgres_changed(old: &Config, new: &Config) -> bool {
    old.postgres != new.postgres
}

const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

/// Every metric type, in run order (collections due together run in this order).
pub const PLUGINS: [Plugin; 15] = [
    Plugin {
        name: "sysstat",
        on_by_default: true,
        default_interval: None,
        keys: &[local("include_partitions")],
        pull_enabled: true,
        pull_min_interval_secs: 10.0,
        read: |k, c| k.bool("include_partitions", &mut c.sysstat.include_partitions),
        render: |r, c| r.bool("include_partitions", c.sysstat.include_partitions),
        build: |c, _| Box::new(sysstat::Sysstat::new(&c.sysstat)),
        rebuild: |o, n| o.sysstat != n.sysstat,
    },
    Plugin {
        name: "disk_usage",
        on_by_default: true,
        default_interval: None,
        keys: &[local("include_fstypes")],
        pull_enabled: true,
        pull_min_interval_secs: 10.0,
        read: |k, c| k.strings("include_fstypes", &mut c.disk_usage.include_fstypes),
        render: |r, c| r.strings("include_fstypes", &c.disk_usage.include_fstypes),
        build: |c, _| Box::new(disk_usage::DiskUsage::new(&c.disk_usage)),
        rebuild: |o, n| o.disk_usage != n.disk_usage,
    },
    Plugin {
        name: "pg_stats",
        on_by_default: true,
        default_interval: None,
        keys: &[limit("max_tables", 500.0), limit("max_indexes", 500.0)],
        pull_enabled: true,
        pull_min_interval_secs: 10.0,
        read: |k, c| {
            k.u32("max_tables", 0, &mut c.pg_stats.max_tables);
            k.u32("max_indexes", 0, &mut c.pg_stats.max_indexes);
        },
        render: |r, c| {
            r.u32("max_tables", c.pg_stats.max_tables);
            r.u32("max_indexes", c.pg_stats.max_indexes);
        },
        build: |c, s| Box::new(pg::stats::PgStats::new(&c.pg_stats, s.pg_pool(c))),
        rebuild: |o, n| postgres_changed(o, n) || o.pg_stats != n.pg_stats,
    },
    Plugin {
        name: "pg_query_stats",
        on_by_default: true,
        default_interval: None,
        keys: &[limit("limit", 100.0), limit("max_query_length", 4096.0)],
        pull_enabled: true,
        pull_min_interval_secs: 10.0,
        read: |k, c| {
            k.u32("limit", 0, &mut c.pg_query_stats.limit);
            k.u32(
                "max_query_length",
                0,
                &mut c.pg_query_stats.max_query_length,
            );
        },
        render: |r, c| {
            r.u32("limit", c.pg_query_stats.limit);
            r.u32("max_query_length", c.pg_query_stats.max_query_length);
        },
        build: |c, s| {
            Box::new(pg::query_stats::PgQueryStats::new(
                &c.pg_query_stats,
                s.pg_pool(c),
            ))
        },
        rebuild: |o, n| postgres_changed(o, n) || o.pg_query_stats != n.pg_query_stats,
    },
    Plugin {
        name: "pg_log",
        on_by_default: true,
        // Read every 10 s, so errors show up quickly.
        default_interval: Some(Duration::from_secs(10)),
        keys: &[
            local("path"),
            local("pattern"),
            local("format"),
            local("log_line_prefix"),
            local("log_timezone"),
            local("min_level"),
            local("start_at"),
            local("max_entries"),
            local("max_message_bytes"),
        ],
        pull_enabled: false,
        pull_min_interval_secs: 10.0,
        read: config::read_pg_log,
        render: config::render_pg_log,
        build: |c, s| {
            Box::new(pg::pg_log::PgLog::new(c, s.pg_pool(c), s.mode()).one_shot(s.one_shot()))
        },
        rebuild: |o, n| postgres_changed(o, n) || o.pg_log != n.pg_log,
    },
    Plugin {
        name: "pg_replication",
        on_by_default: true,
        default_interval: None,
        keys: &[],
        pull_enabled: true,
        pull_min_interval_secs: 10.0,
        read: no_keys,
        render: render_nothing,
        build: |c, s| Box::new(pg::replication::PgReplication::new(s.pg_pool(c))),
        rebuild: postgres_changed,
    },
    Plugin {
        name: "pg_server",
        on_by_default: true,
        default_interval: None,
        keys: &[],
        pull_enabled: true,
        pull_min_interval_secs: 10.0,
        read: no_keys,
        render: render_nothing,
        build: |c, s| Box::new(pg::server::PgServer::new(s.pg_pool(c))),
        rebuild: postgres_changed,
    },
    Plugin {
        name: "pg_connections",
        on_by_default: false,
        default_interval: None,
        keys: &[limit("long_transaction_secs", 300.0)],
        pull_enabled: true,
        pull_min_interval_secs: 10.0,
        read: |k, c| {
            k.seconds(
                "long_transaction_secs",
                &mut c.pg_connections.long_transaction,
            )
        },
        render: |r, c| r.seconds("long_transaction_secs", c.pg_connections.long_transaction),
        // Query texts are cut like pg_query_stats texts.
        build: |c, s| {
            Box::new(pg::connections::PgConnections::new(
                &c.pg_connections,
                &c.pg_query_stats,
                s.pg_pool(c),
            ))
        },
        rebuild: |o, n| {
            postgres_changed(o, n)
                || o.pg_connections != n.pg_connections
                || o.pg_query_stats.max_query_length != n.pg_query_stats.max_query_length
        },
    },
    Plugin {
        name: "pg_locks",
        on_by_default: false,
        default_interval: None,
        keys: &[],
        pull_enabled: true,
        pull_min_interval_secs: 10.0,
        read: no_keys,
        render: render_nothing,
        build: |c, s| Box::new(pg::locks::PgLocks::new(&c.pg_query_stats, s.pg_pool(c))),
        rebuild: |o, n| {
            postgres_changed(o, n)
                || o.pg_query_stats.max_query_length != n.pg_query_stats.max_query_length
        },
    },
    Plugin {
        name: "pg_cache",
        on_by_default: false,
        default_interval: Some(Duration::from_secs(300)),
        keys: &[],
        pull_enabled: true,
        pull_min_interval_secs: 10.0,
        read: no_keys,
        render: render_nothing,
        build: |c, s| Box::new(pg::cache::PgCache::new(s.pg_pool(c))),
        rebuild: postgres_changed,
    },
    Plugin {
        name: "pg_bloat",
        on_by_default: false,
        default_interval: HOUR,
        keys: &[limit("max_tables", 500.0)],
        pull_enabled: false,
        pull_min_interval_secs: 60.0,
        read: |k, c| k.u32("max_tables", 0, &mut c.pg_bloat.max_tables),
        render: |r, c| r.u32("max_tables", c.pg_bloat.max_tables),
        build: |c, s| Box::new(pg::bloat::PgBloat::new(&c.pg_bloat, s.pg_pool(c))),
        rebuild: |o, n| postgres_changed(o, n) || o.pg_bloat != n.pg_bloat,
    },
    Plugin {
        name: "pg_extensions",
        on_by_default: false,
        default_interval: HOUR,
        keys: &[],
        pull_enabled: false,
        pull_min_interval_secs: 60.0,
        read: no_keys,
        render: render_nothing,
        build: |c, s| Box::new(pg::extensions::PgExtensions::new(s.pg_pool(c))),
        rebuild: postgres_changed,
    },
    Plugin {
        name: "pg_schema",
        on_by_default: false,
        default_interval: HOUR,
        keys: &[],
        pull_enabled: false,
        pull_min_interval_secs: 60.0,
        read: no_keys,
        render: render_nothing,
        build: |c, s| Box::new(pg::schema::PgSchema::new(s.pg_pool(c))),
        rebuild: postgres_changed,
    },
    Plugin {
        name: "pg_wait_events",
        on_by_default: false,
        default_interval: None,
        keys: &[local("sample_ms"), local("top_queries")],
        pull_enabled: true,
        pull_min_interval_secs: 10.0,
        read: |k, c| {
            k.u32("sample_ms", 100, &mut c.pg_wait_events.sample_ms);
            k.u32("top_queries", 0, &mut c.pg_wait_events.top_queries);
        },
        render: |r, c| {
            r.u32("sample_ms", c.pg_wait_events.sample_ms);
            r.u32("top_queries", c.pg_wait_events.top_queries);
        },
        // Query texts are cut like pg_query_stats texts.
        build: |c, s| {
            let mode = s.mode();
            Box::new(pg::wait_events::PgWaitEvents::new(
                &c.pg_wait_events,
                &c.pg_query_stats,
                s.pg_pool(c),
                mode,
            ))
        },
        rebuild: |o, n| {
            postgres_changed(o, n)
                || o.pg_wait_events != n.pg_wait_events
                || o.pg_query_stats.max_query_length != n.pg_query_stats.max_query_length
        },
    },
    // The `[[custom_query]]` tables (read by the loader, never pulled); each query has its
    // own interval (Collector::next_tick), the table's only switches them all off.
    Plugin {
        name: "pg_custom",
        on_by_default: true,
        default_interval: None,
        keys: &[],
        pull_enabled: false,
        pull_min_interval_secs: 10.0,
        read: no_keys,
        render: render_nothing,
        build: |c, s| Box::new(pg::custom::PgCustom::new(&c.custom_queries, s.pg_pool(c))),
        rebuild: |o, n| postgres_changed(o, n) || o.custom_queries != n.custom_queries,
    },
];

/// The names of [`PLUGINS`], in the same order.
pub const PLUGIN_NAMES: [&str; PLUGINS.len()] = {
    let mut names = [""; PLUGINS.len()];
    let mut i = 0;
    while i < PLUGINS.len() {
        names[i] = PLUGINS[i].name;
        i += 1;
    }
    names
};

/// The entry of `name`.
pub fn find(name: &str) -> Option<&'static Plugin> {
    PLUGINS.iter().find(|p| p.name == name)
}

/// Source id of a plugin name (its index in the table), `collector_health`'s otherwise.
pub fn source_id(name: &str) -> u16 {
    PLUGINS
        .iter()
        .position(|p| p.name == name)
        .map_or(crate::pipeline::HEALTH_SOURCE, |i| i as u16)
}

/// Its interval when its table sets none.
pub fn default_interval(p: &Plugin, collector_interval: Duration) -> Duration {
    p.default_interval.unwrap_or(collector_interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_limits_match_the_built_in_values() {
        for (i, p) in PLUGINS.iter().enumerate() {
            assert_eq!(PLUGIN_NAMES[i], p.name);
            assert_eq!(PLUGINS.iter().filter(|q| q.name == p.name).count(), 1);
        }
        // The pull caps are 10x the built-in values: they must be those values.
        let d = Config::default();
        let rendered = crate::config::render(&d, &[]);
        for p in &PLUGINS {
            for k in p.keys {
                if let Some(v) = k.pull_default {
                    let line = format!("{} = {}", k.name, v);
                    let section = rendered.split(&format!("[{}]\n", p.name)).nth(1).unwrap();
                    let section = section.split("\n\n").next().unwrap();
                    assert!(section.contains(&line), "[{}] {line} in\n{section}", p.name);
                }
            }
        }
    }
}
