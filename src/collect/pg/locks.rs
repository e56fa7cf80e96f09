//! `pg_locks` (docs/metrics.md, `pg_replication` … `pg_schema`): one cluster-wide element over the
//! `[postgres] database` connection: the locks held and awaited, summarized by type, mode and
//! grant, and the (blocked, blocking) session pairs from `pg_blocking_pids()` with both query texts
//! (cut like `pg_query_stats` texts, `[pg_query_stats] max_query_length` bytes).

use super::client::PgError;
use super::pool::SharedPool;
use super::sql::locks as sql;
use super::{CollectionConn, cluster_wide, emit_cluster, query_text, text};
use crate::collect::{CollectError, Collector, Now, Output, round2};
use crate::config;
use serde::Serialize;

pub struct PgLocks {
    pool: SharedPool,
    max_query_length: u32,
}

impl PgLocks {
    pub fn new(texts: &config::PgQueryStats, pool: SharedPool) -> PgLocks {
        PgLocks {
            pool,
            max_query_length: texts.max_query_length,
        }
    }
}

#[derive(Serialize, Default)]
struct Locks {
    active_locks: Vec<LockGroup>,
    blocking: Vec<Blocking>,
}

#[derive(Serialize)]
struct LockGroup {
    lock_type: Option<String>,
    mode: Option<String>,
    granted: Option<bool>,
    count: Option<i64>,
}

#[derive(Serialize)]
struct Blocking {
    blocked_pid: Option<i64>,
    blocking_pid: Option<i64>,
    blocked_query: Option<String>,
    blocking_query: Option<String>,
    wait_seconds: Option<f64>,
}

fn read(c: &mut CollectionConn<'_>, max_query: u32) -> Result<Locks, PgError> {
    let mut locks = Locks::default();
    for r in c.query(sql::SUMMARY)?.iter() {
        locks.active_locks.push(LockGroup {
            lock_type: text(&r, "locktype")?,
            mode: text(&r, "mode")?,
            granted: r.get_bool("granted")?,
            count: r.get_i64("count")?,
        });
    }
    let max = max_query as usize;
    for r in c.query(&sql::blocking(max_query))?.iter() {
        locks.blocking.push(Blocking {
            blocked_pid: r.get_i64("blocked_pid")?,
            blocking_pid: r.get_i64("blocking_pid")?,
            blocked_query: query_text(&r, "blocked_query", max)?,
            blocking_query: query_text(&r, "blocking_query", max)?,
            wait_seconds: r.get_f64("wait_seconds")?.map(round2),
        });
    }
    Ok(locks)
}

impl Collector for PgLocks {
    fn name(&self) -> &'static str {
        "pg_locks"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        let max = self.max_query_length;
        let body = cluster_wide(&self.pool, now, out, |c: &mut CollectionConn<'_>| {
            read(c, max)
        })?;
        emit_cluster(out, "pg_locks", now, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::pg::ClusterElement;

    #[test]
    fn element_has_every_field() {
        let e = ClusterElement {
            kind: "pg_locks",
            timestamp: crate::util::WallTime::default().rfc3339(),
            body: &Locks::default(),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["active_locks"], serde_json::json!([]));
        assert_eq!(v["blocking"], serde_json::json!([]));
    }
}
