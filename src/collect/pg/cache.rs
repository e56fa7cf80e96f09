//! `pg_cache` (docs/metrics.md, `pg_replication` … `pg_schema`): per monitored database, over its
//! own connection, the buffer cache hits and reads of its user tables (heap, indexes, TOAST, TOAST
//! index) and indexes, from `pg_statio_user_tables` / `pg_statio_user_indexes`, with hit ratios.
//!
//! A counter that is NULL (a table without indexes or TOAST) is `null`, and so is a ratio with
//! nothing read; neither fails the element. Bounded to the [`MAX_RELATIONS`] tables and
//! indexes with the most blocks accessed (the element size rule).

use super::client::PgError;
use super::pool::SharedPool;
use super::sql::cache as sql;
use super::stats::cache_hit_ratio;
use super::{CollectionConn, each_database};
use crate::collect::{CollectError, Collector, Now, Output, json};

/// Tables, and indexes, listed per database (about 350 bytes each: 500 of both stay well
/// under the element size rule with the default `max_batch_bytes`).
pub const MAX_RELATIONS: u32 = 500;

/// Bytes of an element beyond its two lists (keys, timestamp, database name).
const ELEMENT_OVERHEAD: usize = 256;

pub struct PgCache {
    pool: SharedPool,
}

impl PgCache {
    pub fn new(pool: SharedPool) -> PgCache {
        PgCache { pool }
    }
}

// An element: `{"type": "pg_cache", "timestamp", "database", "table_cache_hit": [{schema,
// name, heap_blks_read, heap_blks_hit, heap_hit_ratio, idx_…, toast_…, tidx_… (read, hit,
// ratio each)}], "index_cache_hit": [{schema, table, name, idx_blks_read, idx_blks_hit,
// hit_ratio}]}`. Written straight from the rows into JSON (json::Buf): no string copies.

/// The `table_cache_hit` and `index_cache_hit` entries, comma-separated.
#[derive(Default)]
struct Lists {
    tables: json::Buf,
    indexes: json::Buf,
}

/// Writes into `spare` (the lists of the database before, emptied: grown once a collection).
fn read(c: &mut CollectionConn<'_>, spare: Lists) -> Result<Lists, PgError> {
    let Lists {
        mut tables,
        mut indexes,
    } = spare;
    tables.clear();
    indexes.clear();
    let rows = c.query(&sql::tables(MAX_RELATIONS))?;
    let [schemaname, relname] = rows.column_indexes(["schemaname", "relname"])?;
    let counters = rows.column_indexes([
        "heap_blks_read",
        "heap_blks_hit",
        "idx_blks_read",
        "idx_blks_hit",
        "toast_blks_read",
        "toast_blks_hit",
        "tidx_blks_read",
        "tidx_blks_hit",
    ])?;
    const PREFIXES: [&[u8]; 4] = [b"heap", b"idx", b"toast", b"tidx"];
    for r in rows.iter() {
        let mut values = [None; 8];
        for (v, &i) in values.iter_mut().zip(&counters) {
            *v = r.i64_at(i)?;
        }
        let (schema, name) = (r.str_at(schemaname)?, r.str_at(relname)?);
        if !tables.is_empty() {
            tables.byte(b',');
        }
        tables.put(b"{\"schema\":");
        tables.opt_str(schema);
        tables.put(b",\"name\":");
        tables.opt_str(name);
        for (prefix, pair) in PREFIXES.iter().zip(values.chunks_exact(2)) {
            let (read, hit) = (
                pair.first().copied().flatten(),
                pair.get(1).copied().flatten(),
            );
            tables.put(b",\"");
            tables.put(prefix);
            tables.put(b"_blks_read\":");
            tables.opt_i64(read);
            tables.put(b",\"");
            tables.put(prefix);
            tables.put(b"_blks_hit\":");
            tables.opt_i64(hit);
            tables.put(b",\"");
            tables.put(prefix);
            tables.put(b"_hit_ratio\":");
            tables.opt_f64(cache_hit_ratio(hit, read));
        }
        tables.byte(b'}');
    }
    c.recycle(rows);
    let rows = c.query(&sql::indexes(MAX_RELATIONS))?;
    let [
        schemaname,
        relname,
        indexrelname,
        idx_blks_read,
        idx_blks_hit,
    ] = rows.column_indexes([
        "schemaname",
        "relname",
        "indexrelname",
        "idx_blks_read",
        "idx_blks_hit",
    ])?;
    for r in rows.iter() {
        let (read, hit) = (r.i64_at(idx_blks_read)?, r.i64_at(idx_blks_hit)?);
        let (schema, table, name) = (
            r.str_at(schemaname)?,
            r.str_at(relname)?,
            r.str_at(indexrelname)?,
        );
        if !indexes.is_empty() {
            indexes.byte(b',');
        }
        indexes.put(b"{\"schema\":");
        indexes.opt_str(schema);
        indexes.put(b",\"table\":");
        indexes.opt_str(table);
        indexes.put(b",\"name\":");
        indexes.opt_str(name);
        indexes.put(b",\"idx_blks_read\":");
        indexes.opt_i64(read);
        indexes.put(b",\"idx_blks_hit\":");
        indexes.opt_i64(hit);
        indexes.put(b",\"hit_ratio\":");
        indexes.opt_f64(cache_hit_ratio(hit, read));
        indexes.byte(b'}');
    }
    c.recycle(rows);
    Ok(Lists { tables, indexes })
}

impl Collector for PgCache {
    fn name(&self) -> &'static str {
        "pg_cache"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        // The lists and the element are reused from database to database (not kept between
        // collections: hundreds of kilobytes held for an hourly type).
        let spare = std::cell::RefCell::new(Lists::default());
        let mut e = json::Buf::default();
        each_database(
            &self.pool,
            now,
            out,
            |c, _| read(c, spare.take()),
            |out, database, lists| {
                e.clear();
                e.reserve(lists.tables.len() + lists.indexes.len() + ELEMENT_OVERHEAD);
                json::head(
                    &mut e,
                    "pg_cache",
                    &now.wall.rfc3339().to_string(),
                    database,
                );
                e.put(b",\"table_cache_hit\":[");
                e.put(lists.tables.as_bytes());
                e.put(b"],\"index_cache_hit\":[");
                e.put(lists.indexes.as_bytes());
                e.put(b"]}");
                spare.replace(lists);
                out.emit_raw(0, e.as_bytes())
            },
        )?;
        Ok(())
    }
}
