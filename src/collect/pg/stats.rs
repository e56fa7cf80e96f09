//! `pg_stats` (docs/metrics.md, `pg_stats`): per monitored database, its `pg_stat_database` row and
//! size, its largest tables and indexes with their statistics.
//!
//! Three queries per database over its own connection ([`super::sql`]). A database that fails
//! is reported as `pg_stats/<database>` and the others are still sent.
//!
//! Element size: one table is about 500 bytes of JSON, so 500 tables + 500 indexes make an
//! element of roughly 350 KB, under the element size rule (`max_batch_bytes / 4`, 1 MiB with
//! the defaults). A larger `max_tables` with a smaller `max_batch_bytes` can exceed it: the
//! element is then dropped and counted in `metrics_dropped` (lower `max_tables`).

use super::client::PgError;
use super::pool::SharedPool;
use super::{CollectionConn, each_database, sql, text, time};
use crate::collect::{CollectError, Collector, Now, Output, round2};
use crate::config;
use crate::util::Rfc3339;
use serde::Serialize;

pub struct PgStats {
    pool: SharedPool,
    max_tables: u32,
    max_indexes: u32,
}

impl PgStats {
    pub fn new(cfg: &config::PgStats, pool: SharedPool) -> PgStats {
        PgStats {
            pool,
            max_tables: cfg.max_tables,
            max_indexes: cfg.max_indexes,
        }
    }
}

#[derive(Serialize)]
struct Element<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: Rfc3339,
    database: &'a str,
    #[serde(flatten)]
    stats: DatabaseStats,
    tables: Vec<Table>,
    indexes: Vec<Index>,
}

#[derive(Serialize, Default)]
struct DatabaseStats {
    size_bytes: Option<i64>,
    numbackends: Option<i64>,
    transactions_committed: Option<i64>,
    transactions_rolledback: Option<i64>,
    blocks_read: Option<i64>,
    blocks_hit: Option<i64>,
    cache_hit_ratio: Option<f64>,
    tuples_returned: Option<i64>,
    tuples_fetched: Option<i64>,
    tuples_inserted: Option<i64>,
    tuples_updated: Option<i64>,
    tuples_deleted: Option<i64>,
    conflicts: Option<i64>,
    temp_files: Option<i64>,
    temp_bytes: Option<i64>,
    deadlocks: Option<i64>,
    stats_reset: Option<String>,
}

#[derive(Serialize)]
struct Table {
    schema: Option<String>,
    name: Option<String>,
    live_tuples: Option<i64>,
    dead_tuples: Option<i64>,
    modified_since_analyze: Option<i64>,
    size_bytes: Option<i64>,
    seq_scan: Option<i64>,
    seq_tup_read: Option<i64>,
    idx_scan: Option<i64>,
    idx_tup_fetch: Option<i64>,
    n_tup_ins: Option<i64>,
    n_tup_upd: Option<i64>,
    n_tup_del: Option<i64>,
    n_tup_hot_upd: Option<i64>,
    last_vacuum: Option<String>,
    last_autovacuum: Option<String>,
    last_analyze: Option<String>,
    last_autoanalyze: Option<String>,
    vacuum_count: Option<i64>,
    autovacuum_count: Option<i64>,
    analyze_count: Option<i64>,
    autoanalyze_count: Option<i64>,
}

#[derive(Serialize)]
struct Index {
    schema: Option<String>,
    name: Option<String>,
    table: Option<String>,
    scans: Option<i64>,
    tuples_read: Option<i64>,
    /// `idx_tup_fetch` (the historical name).
    tuples_returned: Option<i64>,
    size_bytes: Option<i64>,
    status: &'static str,
}

/// `blks_hit / (blks_hit + blks_read) * 100`, `None` when nothing was read.
pub fn cache_hit_ratio(hit: Option<i64>, read: Option<i64>) -> Option<f64> {
    let (hit, read) = (hit?, read?);
    let total = hit.checked_add(read)?;
    (total > 0).then(|| round2(hit as f64 / total as f64 * 100.0))
}

/// `"UNUSED"` when the index was never scanned, else `"USED"` (unknown counts as used).
pub fn index_status(scans: Option<i64>) -> &'static str {
    if scans == Some(0) { "UNUSED" } else { "USED" }
}

/// The three queries of one database.
fn read(
    c: &mut CollectionConn<'_>,
    max_tables: u32,
    max_indexes: u32,
) -> Result<(DatabaseStats, Vec<Table>, Vec<Index>), PgError> {
    let rows = c.query(sql::DATABASE_STATS)?;
    let mut db = DatabaseStats::default();
    if let Some(r) = rows.iter().next() {
        let i = |col: &str| r.get_i64(col);
        db = DatabaseStats {
            size_bytes: i("size_bytes")?,
            numbackends: i("numbackends")?,
            transactions_committed: i("xact_commit")?,
            transactions_rolledback: i("xact_rollback")?,
            blocks_read: i("blks_read")?,
            blocks_hit: i("blks_hit")?,
            cache_hit_ratio: cache_hit_ratio(i("blks_hit")?, i("blks_read")?),
            tuples_returned: i("tup_returned")?,
            tuples_fetched: i("tup_fetched")?,
            tuples_inserted: i("tup_inserted")?,
            tuples_updated: i("tup_updated")?,
            tuples_deleted: i("tup_deleted")?,
            conflicts: i("conflicts")?,
            temp_files: i("temp_files")?,
            temp_bytes: i("temp_bytes")?,
            deadlocks: i("deadlocks")?,
            stats_reset: time(&r, "stats_reset")?,
        };
    }

    let rows = c.query(&sql::tables(max_tables))?;
    let mut tables = Vec::with_capacity(rows.len());
    for r in rows.iter() {
        let i = |col: &str| r.get_i64(col);
        tables.push(Table {
            schema: text(&r, "schemaname")?,
            name: text(&r, "relname")?,
            live_tuples: i("n_live_tup")?,
            dead_tuples: i("n_dead_tup")?,
            modified_since_analyze: i("n_mod_since_analyze")?,
            size_bytes: i("size_bytes")?,
            seq_scan: i("seq_scan")?,
            seq_tup_read: i("seq_tup_read")?,
            idx_scan: i("idx_scan")?,
            idx_tup_fetch: i("idx_tup_fetch")?,
            n_tup_ins: i("n_tup_ins")?,
            n_tup_upd: i("n_tup_upd")?,
            n_tup_del: i("n_tup_del")?,
            n_tup_hot_upd: i("n_tup_hot_upd")?,
            last_vacuum: time(&r, "last_vacuum")?,
            last_autovacuum: time(&r, "last_autovacuum")?,
            last_analyze: time(&r, "last_analyze")?,
            last_autoanalyze: time(&r, "last_autoanalyze")?,
            vacuum_count: i("vacuum_count")?,
            autovacuum_count: i("autovacuum_count")?,
            analyze_count: i("analyze_count")?,
            autoanalyze_count: i("autoanalyze_count")?,
        });
    }

    let rows = c.query(&sql::indexes(max_indexes))?;
    let mut indexes = Vec::with_capacity(rows.len());
    for r in rows.iter() {
        let scans = r.get_i64("idx_scan")?;
        indexes.push(Index {
            schema: text(&r, "schemaname")?,
            name: text(&r, "indexrelname")?,
            table: text(&r, "relname")?,
            scans,
            tuples_read: r.get_i64("idx_tup_read")?,
            tuples_returned: r.get_i64("idx_tup_fetch")?,
            size_bytes: r.get_i64("size_bytes")?,
            status: index_status(scans),
        });
    }
    Ok((db, tables, indexes))
}

impl Collector for PgStats {
    fn name(&self) -> &'static str {
        "pg_stats"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        let (max_t, max_i) = (self.max_tables, self.max_indexes);
        each_database(
            &self.pool,
            now,
            out,
            |c, _| read(c, max_t, max_i),
            |out, database, (stats, tables, indexes)| {
                out.emit(
                    0,
                    &Element {
                        kind: "pg_stats",
                        timestamp: now.wall.rfc3339(),
                        database,
                        stats,
                        tables,
                        indexes,
                    },
                )
            },
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_and_status() {
        assert_eq!(cache_hit_ratio(Some(990), Some(10)), Some(99.0));
        assert_eq!(cache_hit_ratio(Some(0), Some(0)), None);
        assert_eq!(cache_hit_ratio(None, Some(1)), None);
        assert_eq!(cache_hit_ratio(Some(2), Some(1)), Some(66.67));
        assert_eq!(index_status(Some(0)), "UNUSED");
        assert_eq!(index_status(Some(3)), "USED");
        assert_eq!(index_status(None), "USED");
    }

    #[test]
    fn element_has_every_field_with_nulls() {
        let e = Element {
            kind: "pg_stats",
            timestamp: crate::util::WallTime::default().rfc3339(),
            database: "app",
            stats: DatabaseStats::default(),
            tables: vec![],
            indexes: vec![],
        };
        let v = serde_json::to_value(&e).unwrap();
        for k in [
            "type",
            "timestamp",
            "database",
            "size_bytes",
            "numbackends",
            "transactions_committed",
            "transactions_rolledback",
            "blocks_read",
            "blocks_hit",
            "cache_hit_ratio",
            "tuples_returned",
            "tuples_fetched",
            "tuples_inserted",
            "tuples_updated",
            "tuples_deleted",
            "conflicts",
            "temp_files",
            "temp_bytes",
            "deadlocks",
            "stats_reset",
            "tables",
            "indexes",
        ] {
            assert!(v.get(k).is_some(), "{k} missing");
        }
        assert!(v["stats_reset"].is_null());
    }
}
