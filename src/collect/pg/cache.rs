//! `pg_cache` (metrics.md §6): per monitored database, over its own connection, the buffer
//! cache hits and reads of its user tables (heap, indexes, TOAST, TOAST index) and indexes,
//! from `pg_statio_user_tables` / `pg_statio_user_indexes`, with hit ratios.
//!
//! A counter that is NULL (a table without indexes or TOAST) is `null`, and so is a ratio with
//! nothing read; neither fails the element. Bounded to the [`MAX_RELATIONS`] tables and
//! indexes with the most blocks accessed (the element size rule).

use super::client::PgError;
use super::pool::SharedPool;
use super::sql::cache as sql;
use super::stats::cache_hit_ratio;
use super::{Session, each_database, text};
use crate::collect::{CollectError, Collector, Now, Output};
use crate::util::Rfc3339;
use serde::Serialize;

/// Tables, and indexes, listed per database (about 350 bytes each: 500 of both stay well
/// under the element size rule with the default `max_batch_bytes`).
pub const MAX_RELATIONS: u32 = 500;

pub struct PgCache {
    pool: SharedPool,
}

impl PgCache {
    pub fn new(pool: SharedPool) -> PgCache {
        PgCache { pool }
    }
}

#[derive(Serialize)]
struct Element<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: Rfc3339,
    database: &'a str,
    table_cache_hit: Vec<TableHit>,
    index_cache_hit: Vec<IndexHit>,
}

#[derive(Serialize)]
struct TableHit {
    schema: Option<String>,
    name: Option<String>,
    heap_blks_read: Option<i64>,
    heap_blks_hit: Option<i64>,
    heap_hit_ratio: Option<f64>,
    idx_blks_read: Option<i64>,
    idx_blks_hit: Option<i64>,
    idx_hit_ratio: Option<f64>,
    toast_blks_read: Option<i64>,
    toast_blks_hit: Option<i64>,
    toast_hit_ratio: Option<f64>,
    tidx_blks_read: Option<i64>,
    tidx_blks_hit: Option<i64>,
    tidx_hit_ratio: Option<f64>,
}

#[derive(Serialize)]
struct IndexHit {
    schema: Option<String>,
    table: Option<String>,
    name: Option<String>,
    idx_blks_read: Option<i64>,
    idx_blks_hit: Option<i64>,
    hit_ratio: Option<f64>,
}

fn read(c: &mut Session<'_>) -> Result<(Vec<TableHit>, Vec<IndexHit>), PgError> {
    let mut tables = Vec::new();
    for r in c.query(&sql::tables(MAX_RELATIONS))?.iter() {
        let i = |col: &str| r.get_i64(col);
        let (hr, hh) = (i("heap_blks_read")?, i("heap_blks_hit")?);
        let (ir, ih) = (i("idx_blks_read")?, i("idx_blks_hit")?);
        let (tr, th) = (i("toast_blks_read")?, i("toast_blks_hit")?);
        let (xr, xh) = (i("tidx_blks_read")?, i("tidx_blks_hit")?);
        tables.push(TableHit {
            schema: text(&r, "schemaname")?,
            name: text(&r, "relname")?,
            heap_blks_read: hr,
            heap_blks_hit: hh,
            heap_hit_ratio: cache_hit_ratio(hh, hr),
            idx_blks_read: ir,
            idx_blks_hit: ih,
            idx_hit_ratio: cache_hit_ratio(ih, ir),
            toast_blks_read: tr,
            toast_blks_hit: th,
            toast_hit_ratio: cache_hit_ratio(th, tr),
            tidx_blks_read: xr,
            tidx_blks_hit: xh,
            tidx_hit_ratio: cache_hit_ratio(xh, xr),
        });
    }
    let mut indexes = Vec::new();
    for r in c.query(&sql::indexes(MAX_RELATIONS))?.iter() {
        let (ir, ih) = (r.get_i64("idx_blks_read")?, r.get_i64("idx_blks_hit")?);
        indexes.push(IndexHit {
            schema: text(&r, "schemaname")?,
            table: text(&r, "relname")?,
            name: text(&r, "indexrelname")?,
            idx_blks_read: ir,
            idx_blks_hit: ih,
            hit_ratio: cache_hit_ratio(ih, ir),
        });
    }
    Ok((tables, indexes))
}

impl Collector for PgCache {
    fn name(&self) -> &'static str {
        "pg_cache"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        each_database(
            &self.pool,
            now,
            out,
            |c, _| read(c),
            |out, database, (tables, indexes)| {
                out.emit(
                    0,
                    &Element {
                        kind: "pg_cache",
                        timestamp: now.wall.rfc3339(),
                        database,
                        table_cache_hit: tables,
                        index_cache_hit: indexes,
                    },
                )
            },
        )?;
        Ok(())
    }
}
