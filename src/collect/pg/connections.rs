//! `pg_connections` (docs/metrics.md, `pg_replication` … `pg_schema`): one cluster-wide element over
//! the `[postgres] database` connection, from a single read of `pg_stat_activity` (client backends)
//! aggregated here: sessions by database and state, the total against `max_connections`,
//! transactions open longer than `[pg_connections] long_transaction_secs`, sessions idle in a
//! transaction, and active sessions by wait event.
//!
//! Query texts are cut like `pg_query_stats` texts (`[pg_query_stats] max_query_length`
//! bytes, on a character boundary).

use super::client::{PgError, Rows};
use super::pool::SharedPool;
use super::sql::connections as sql;
use super::{CollectionConn, cluster_wide, emit_cluster, query_text, text, time};
use crate::collect::{CollectError, Collector, Now, Output, round2};
use crate::config;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub struct PgConnections {
    pool: SharedPool,
    long_transaction: Duration,
    max_query_length: u32,
}

impl PgConnections {
    pub fn new(
        cfg: &config::PgConnections,
        texts: &config::PgQueryStats,
        pool: SharedPool,
    ) -> PgConnections {
        PgConnections {
            pool,
            long_transaction: cfg.long_transaction,
            max_query_length: texts.max_query_length,
        }
    }
}

#[derive(Serialize, Default, Debug)]
pub struct Connections {
    by_state: Vec<ByState>,
    total_connections: i64,
    max_connections: Option<i64>,
    long_running_transactions: Vec<Backend>,
    idle_in_transaction: Vec<Backend>,
    waiting: Vec<Waiting>,
}

#[derive(Serialize, Debug, PartialEq)]
struct ByState {
    database: Option<String>,
    state: Option<String>,
    count: i64,
    /// The longest time a session of this group has been in its state.
    max_age_seconds: Option<f64>,
}

/// One session of `long_running_transactions[]` or `idle_in_transaction[]`.
#[derive(Serialize, Debug, Clone, PartialEq)]
struct Backend {
    pid: Option<i64>,
    database: Option<String>,
    usename: Option<String>,
    application_name: Option<String>,
    client_addr: Option<String>,
    state: Option<String>,
    wait_event_type: Option<String>,
    wait_event: Option<String>,
    xact_start: Option<String>,
    /// Age of the open transaction.
    duration_seconds: Option<f64>,
    /// Time in the current state (idle in transaction: how long it has been idle).
    state_seconds: Option<f64>,
    query: Option<String>,
}

#[derive(Serialize, Debug, PartialEq)]
struct Waiting {
    wait_event_type: Option<String>,
    wait_event: Option<String>,
    count: i64,
}

/// Sessions of one (database, state) group: count, longest time in the state.
type Groups = BTreeMap<(Option<String>, Option<String>), (i64, Option<f64>)>;

/// Aggregates the client backends of one `pg_stat_activity` read.
fn aggregate(rows: &Rows, long_secs: f64, max_query: usize) -> Result<Connections, PgError> {
    let mut c = Connections::default();
    let mut groups = Groups::new();
    let mut waits: BTreeMap<(Option<String>, Option<String>), i64> = BTreeMap::new();
    for r in rows.iter() {
        c.total_connections += 1;
        c.max_connections = r.get_i64("max_connections")?;
        let state = text(&r, "state")?;
        let database = text(&r, "datname")?;
        let state_secs = r.get_f64("state_secs")?.map(|s| round2(s.max(0.0)));
        let xact_secs = r.get_f64("xact_secs")?.map(|s| round2(s.max(0.0)));
        let g = groups
            .entry((database.clone(), state.clone()))
            .or_insert((0, None));
        g.0 += 1;
        g.1 = match (g.1, state_secs) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let wait = (text(&r, "wait_event_type")?, text(&r, "wait_event")?);
        if state.as_deref() == Some("active") && wait.0.is_some() {
            *waits.entry(wait.clone()).or_insert(0) += 1;
        }
        let idle_in_xact = state
            .as_deref()
            .is_some_and(|s| s.starts_with("idle in transaction"));
        let long = xact_secs.is_some_and(|s| s >= long_secs);
        if idle_in_xact || long {
            let s = Backend {
                pid: r.get_i64("pid")?,
                database,
                usename: text(&r, "usename")?,
                application_name: text(&r, "application_name")?,
                client_addr: text(&r, "client_addr")?,
                state,
                wait_event_type: wait.0,
                wait_event: wait.1,
                xact_start: time(&r, "xact_start")?,
                duration_seconds: xact_secs,
                state_seconds: state_secs,
                query: query_text(&r, "query", max_query)?,
            };
            if idle_in_xact {
                c.idle_in_transaction.push(s.clone());
            }
            if long {
                c.long_running_transactions.push(s);
            }
        }
    }
    c.by_state = groups
        .into_iter()
        .map(|((database, state), (count, age))| ByState {
            database,
            state,
            count,
            max_age_seconds: age,
        })
        .collect();
    c.waiting = waits
        .into_iter()
        .map(|((t, e), count)| Waiting {
            wait_event_type: t,
            wait_event: e,
            count,
        })
        .collect();
    // Oldest transactions first.
    let oldest_first = |a: &Backend, b: &Backend| {
        b.duration_seconds
            .unwrap_or(0.0)
            .total_cmp(&a.duration_seconds.unwrap_or(0.0))
    };
    c.long_running_transactions.sort_by(oldest_first);
    c.idle_in_transaction.sort_by(oldest_first);
    Ok(c)
}

impl Collector for PgConnections {
    fn name(&self) -> &'static str {
        "pg_connections"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        let long_secs = self.long_transaction.as_secs_f64();
        let max_query = self.max_query_length;
        let body = cluster_wide(&self.pool, now, out, |c: &mut CollectionConn<'_>| {
            let rows = c.query(&sql::activity(long_secs, max_query))?;
            aggregate(&rows, long_secs, max_query as usize)
        })?;
        emit_cluster(out, "pg_connections", now, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::pg::ClusterElement;

    #[test]
    fn element_has_every_field() {
        let e = ClusterElement {
            kind: "pg_connections",
            timestamp: crate::util::WallTime::default().rfc3339(),
            body: &Connections::default(),
        };
        let v = serde_json::to_value(&e).unwrap();
        for k in [
            "by_state",
            "total_connections",
            "max_connections",
            "long_running_transactions",
            "idle_in_transaction",
            "waiting",
        ] {
            assert!(v.get(k).is_some(), "{k} missing");
        }
        let q = sql::activity(0.5, 100);
        assert!(q.contains("make_interval(secs => 0.500)"), "{q}");
    }
}
