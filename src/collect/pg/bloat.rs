//! `pg_bloat` (docs/metrics.md, `pg_replication` … `pg_schema`): per monitored database, over its
//! own connection, the estimated bloat of its largest `[pg_bloat] max_tables` tables and of their
//! btree indexes.
//!
//! The estimate is the statistics-based one of the well-known ioguix / pgexperts queries: the
//! catalog gives the pages a relation has (`pg_class.relpages`) and its row count
//! (`reltuples`); `pg_stats` gives each column's average width and NULL fraction; from those,
//! [`estimate`] computes the pages the rows would fill when packed at the fillfactor. Bloat
//! is the difference. It is an estimate (like those queries: alignment padding between
//! columns is not modelled) and only as fresh as the last ANALYZE.
//!
//! A relation never analyzed (a column without statistics, or `reltuples` unknown) gets
//! `has_statistics: false` and `null` estimates, never a failure.

use super::client::{PgError, Row, Rows};
use super::pool::SharedPool;
use super::sql::bloat as sql;
use super::{CollectionConn, each_database, oid_array, oids};
use crate::collect::{CollectError, Collector, Now, Output, json, round2};
use crate::config;

/// Alignment of tuples (MAXALIGN on 64-bit platforms).
const MAXALIGN: f64 = 8.0;
/// Page header (`PageHeaderData`).
const PAGE_HEADER: f64 = 24.0;
/// Line pointer per tuple (`ItemIdData`).
const LINE_POINTER: f64 = 4.0;
/// Heap tuple header (`HeapTupleHeaderData`, before the NULL bitmap).
const HEAP_TUPLE_HEADER: f64 = 23.0;
/// Index tuple header (`IndexTupleData`).
const INDEX_TUPLE_HEADER: f64 = 8.0;
/// `IndexAttributeBitMapData`, present when a key column has NULLs.
const INDEX_NULL_BITMAP: f64 = 4.0;
/// btree special space (`BTPageOpaqueData`).
const BTREE_OPAQUE: f64 = 16.0;

/// Bytes of an element beyond its two lists (keys, timestamp, database name).
const ELEMENT_OVERHEAD: usize = 256;

pub struct PgBloat {
    pool: SharedPool,
    max_tables: u32,
}

impl PgBloat {
    pub fn new(cfg: &config::PgBloat, pool: SharedPool) -> PgBloat {
        PgBloat {
            pool,
            max_tables: cfg.max_tables,
        }
    }
}

// An element: `{"type": "pg_bloat", "timestamp", "database", "tables": [Relation],
// "indexes": [Relation]}`, a Relation being `{schema, table (indexes only, omitted when
// unknown), name, size_bytes, expected_bytes, bloat_bytes, bloat_ratio, fillfactor,
// has_statistics}`, written straight from the rows into JSON (json::Buf).

#[derive(Debug)]
struct Relation<'r> {
    schema: Option<&'r str>,
    /// The table (of an index; omitted for a table).
    table: Option<&'r str>,
    name: Option<&'r str>,
    /// `relpages × block_size` as of the last VACUUM / ANALYZE.
    size_bytes: Option<i64>,
    expected_bytes: Option<i64>,
    bloat_bytes: Option<i64>,
    /// Bloat as a percentage of the size.
    bloat_ratio: Option<f64>,
    fillfactor: Option<i64>,
    has_statistics: bool,
}

impl Relation<'_> {
    fn write(&self, o: &mut json::Buf) {
        o.put(b"{\"schema\":");
        o.opt_str(self.schema);
        if let Some(table) = self.table {
            o.put(b",\"table\":");
            o.str(table);
        }
        o.put(b",\"name\":");
        o.opt_str(self.name);
        o.put(b",\"size_bytes\":");
        o.opt_i64(self.size_bytes);
        o.put(b",\"expected_bytes\":");
        o.opt_i64(self.expected_bytes);
        o.put(b",\"bloat_bytes\":");
        o.opt_i64(self.bloat_bytes);
        o.put(b",\"bloat_ratio\":");
        o.opt_f64(self.bloat_ratio);
        o.put(b",\"fillfactor\":");
        o.opt_i64(self.fillfactor);
        o.put(b",\"has_statistics\":");
        o.opt_bool(Some(self.has_statistics));
        o.byte(b'}');
    }
}

/// Columns of a result of [`sql::tables`] or [`sql::indexes`].
struct Columns {
    relpages: usize,
    block_size: usize,
    fillfactor: usize,
    reltuples: usize,
    natts: usize,
    stats_atts: usize,
    data_width: usize,
    has_nulls: usize,
    schema: usize,
    /// `tablename` of an index.
    table: Option<usize>,
    name: usize,
}

impl Columns {
    fn of(rows: &Rows, kind: Kind) -> Result<Columns, PgError> {
        let [
            relpages,
            block_size,
            fillfactor,
            reltuples,
            natts,
            stats_atts,
            data_width,
        ] = rows.column_indexes([
            "relpages",
            "block_size",
            "fillfactor",
            "reltuples",
            "natts",
            "stats_atts",
            "data_width",
        ])?;
        let [has_nulls, schema] = rows.column_indexes(["has_nulls", "schemaname"])?;
        let (table, name) = match kind {
            Kind::Table => (None, rows.column_index("relname")?),
            Kind::BtreeIndex => (
                Some(rows.column_index("tablename")?),
                rows.column_index("indexname")?,
            ),
        };
        Ok(Columns {
            relpages,
            block_size,
            fillfactor,
            reltuples,
            natts,
            stats_atts,
            data_width,
            has_nulls,
            schema,
            table,
            name,
        })
    }
}

/// The catalog and statistics facts about one relation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    pub kind: Kind,
    pub pages: i64,
    /// `None` or negative: unknown (never vacuumed or analyzed).
    pub tuples: Option<f64>,
    pub block_size: i64,
    pub fillfactor: i64,
    /// Columns (key columns of an index).
    pub natts: i64,
    /// Columns with statistics.
    pub stats_atts: i64,
    /// Σ (1 − null_frac) × avg_width.
    pub data_width: f64,
    pub has_nulls: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Table,
    BtreeIndex,
}

/// The estimate of one relation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub expected_pages: i64,
    pub bloat_pages: i64,
    /// Percentage of the pages.
    pub ratio: Option<f64>,
}

fn align(n: f64) -> f64 {
    (n / MAXALIGN).ceil() * MAXALIGN
}

/// The pages the rows would need, and the bloat (`None` without statistics).
pub fn estimate(l: &Layout) -> Option<Estimate> {
    let tuples = l.tuples.filter(|t| *t >= 0.0)?;
    if l.natts == 0 || l.stats_atts < l.natts || l.block_size <= 0 || l.pages < 0 {
        return None;
    }
    let fill = l.fillfactor.clamp(10, 100) as f64 / 100.0;
    let bs = l.block_size as f64;
    let (usable, tuple, fixed_pages) = match l.kind {
        Kind::Table => {
            let bitmap = if l.has_nulls {
                (l.natts as f64 / 8.0).ceil()
            } else {
                0.0
            };
            let header = align(HEAP_TUPLE_HEADER + bitmap);
            ((bs - PAGE_HEADER) * fill, header + align(l.data_width), 0.0)
        }
        Kind::BtreeIndex => {
            let header = INDEX_TUPLE_HEADER + if l.has_nulls { INDEX_NULL_BITMAP } else { 0.0 };
            // One meta page.
            (
                (bs - PAGE_HEADER - BTREE_OPAQUE) * fill,
                align(header) + align(l.data_width),
                1.0,
            )
        }
    };
    let per_page = (usable / (tuple + LINE_POINTER)).floor().max(1.0);
    let expected = fixed_pages + (tuples / per_page).ceil();
    let expected_pages = expected.min(i64::MAX as f64) as i64;
    let bloat_pages = (l.pages - expected_pages).max(0);
    let ratio = (l.pages > 0).then(|| round2(bloat_pages as f64 / l.pages as f64 * 100.0));
    Some(Estimate {
        expected_pages,
        bloat_pages,
        ratio,
    })
}

fn relation<'r>(r: &Row<'r>, kind: Kind, c: &Columns) -> Result<Relation<'r>, PgError> {
    let pages = r.i64_at(c.relpages)?;
    let block_size = r.i64_at(c.block_size)?;
    let fillfactor = r.i64_at(c.fillfactor)?;
    let layout = match (pages, block_size, fillfactor) {
        (Some(pages), Some(block_size), Some(fillfactor)) => Some(Layout {
            kind,
            pages,
            tuples: r.f64_at(c.reltuples)?,
            block_size,
            fillfactor,
            natts: r.i64_at(c.natts)?.unwrap_or(0),
            stats_atts: r.i64_at(c.stats_atts)?.unwrap_or(0),
            data_width: r.f64_at(c.data_width)?.unwrap_or(0.0),
            has_nulls: r.bool_at(c.has_nulls)?.unwrap_or(false),
        }),
        _ => None,
    };
    let est = layout.as_ref().and_then(estimate);
    let bytes = |p: i64| block_size.and_then(|bs| p.checked_mul(bs));
    let schema = r.str_at(c.schema)?;
    let table = match c.table {
        Some(t) => r.str_at(t)?,
        None => None,
    };
    let name = r.str_at(c.name)?;
    Ok(Relation {
        schema,
        table,
        name,
        size_bytes: pages.and_then(bytes),
        expected_bytes: est.and_then(|e| bytes(e.expected_pages)),
        bloat_bytes: est.and_then(|e| bytes(e.bloat_pages)),
        bloat_ratio: est.and_then(|e| e.ratio),
        fillfactor,
        has_statistics: est.is_some(),
    })
}

/// Tables one statement reads: the per-column lookups cost the server about 0.05 ms per
/// table (about 12 ms for 250 as a `pg_monitor` role), and every statement costs the collector
/// a wake-up, so fewer, larger statements than `pg_stats`' hundred (which sizes every file).
const TABLES_PER_STATEMENT: usize = 250;

/// Appends the entries of `rows` to `out`, comma-separated.
fn list_into(rows: &Rows, kind: Kind, out: &mut json::Buf) -> Result<(), PgError> {
    let columns = Columns::of(rows, kind)?;
    for r in rows.iter() {
        let relation = relation(&r, kind, &columns)?;
        if !out.is_empty() {
            out.byte(b',');
        }
        relation.write(out);
    }
    Ok(())
}

/// The `tables` and `indexes` entries, comma-separated, written into `spare` (the lists of the
/// database before, emptied: grown once a collection).
fn read(
    c: &mut CollectionConn<'_>,
    max_tables: u32,
    spare: (json::Buf, json::Buf),
) -> Result<(json::Buf, json::Buf), PgError> {
    let direct = c
        .query(sql::PRIVILEGE)?
        .iter()
        .next()
        .map(|r| r.get_bool("direct"))
        .transpose()?
        .flatten();
    let stats = if direct == Some(true) {
        sql::Stats::Direct
    } else {
        sql::Stats::View
    };
    // Listed first (catalogs only), then read a few at a time: the statistics lookups cost
    // the server per column, so one statement over every table ran for hundreds of
    // milliseconds on a database of thousands of tables.
    let (mut tables, mut indexes) = spare;
    tables.clear();
    indexes.clear();
    for chunk in oids(c, &sql::table_list(max_tables))?.chunks(TABLES_PER_STATEMENT) {
        let list = oid_array(chunk);
        // The chunk's tables and their indexes in one round trip (catalog and statistics
        // reads: no table is locked), each statement bounded by statement_timeout.
        let [table_rows, index_rows] =
            c.query_split([&sql::tables(&list, stats), &sql::indexes(&list, stats)])?;
        list_into(&table_rows, Kind::Table, &mut tables)?;
        list_into(&index_rows, Kind::BtreeIndex, &mut indexes)?;
        c.recycle(index_rows);
        c.recycle(table_rows);
    }
    Ok((tables, indexes))
}

impl Collector for PgBloat {
    fn name(&self) -> &'static str {
        "pg_bloat"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        let max = self.max_tables;
        // The lists and the element are reused from database to database (not kept between
        // collections: hundreds of kilobytes held for an hourly type).
        let spare = std::cell::RefCell::new(Default::default());
        let mut e = json::Buf::default();
        each_database(
            &self.pool,
            now,
            out,
            |c, _| read(c, max, spare.take()),
            |out, database, (tables, indexes)| {
                e.clear();
                e.reserve(tables.len() + indexes.len() + ELEMENT_OVERHEAD);
                json::head(
                    &mut e,
                    "pg_bloat",
                    &now.wall.rfc3339().to_string(),
                    database,
                );
                e.put(b",\"tables\":[");
                e.put(tables.as_bytes());
                e.put(b"],\"indexes\":[");
                e.put(indexes.as_bytes());
                e.put(b"]}");
                spare.replace((tables, indexes));
                out.emit_raw(0, e.as_bytes())
            },
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pages: i64, tuples: f64) -> Layout {
        Layout {
            kind: Kind::Table,
            pages,
            tuples: Some(tuples),
            block_size: 8192,
            fillfactor: 100,
            natts: 2,
            stats_atts: 2,
            data_width: 8.0,
            has_nulls: false,
        }
    }

    #[test]
    fn packed_table_has_no_bloat() {
        // 24 + 8 (data) + 4 = 36 bytes per row: 226 rows per 8 kB page.
        let e = estimate(&table(5, 1000.0)).unwrap();
        assert_eq!(e.expected_pages, 5);
        assert_eq!((e.bloat_pages, e.ratio), (0, Some(0.0)));
    }

    #[test]
    fn deleted_rows_show_as_bloat() {
        // Same pages, a tenth of the rows left.
        let e = estimate(&table(50, 1000.0)).unwrap();
        assert_eq!(e.expected_pages, 5);
        assert_eq!((e.bloat_pages, e.ratio), (45, Some(90.0)));
        // Fillfactor 50: 113 rows per page, 9 pages.
        let e = estimate(&Layout {
            fillfactor: 50,
            ..table(50, 1000.0)
        })
        .unwrap();
        assert_eq!(e.expected_pages, 9);
    }

    #[test]
    fn no_statistics_no_estimate() {
        let l = table(5, 1000.0);
        assert!(estimate(&Layout { stats_atts: 1, ..l }).is_none());
        assert!(
            estimate(&Layout {
                tuples: Some(-1.0),
                ..l
            })
            .is_none()
        );
        assert!(estimate(&Layout { tuples: None, ..l }).is_none());
        assert!(estimate(&Layout { natts: 0, ..l }).is_none());
        // Empty table: no pages, no ratio.
        let e = estimate(&table(0, 0.0)).unwrap();
        assert_eq!((e.bloat_pages, e.ratio), (0, None));
    }

    #[test]
    fn btree_counts_the_meta_page() {
        let l = Layout {
            kind: Kind::BtreeIndex,
            pages: 4,
            tuples: Some(1000.0),
            block_size: 8192,
            fillfactor: 90,
            natts: 1,
            stats_atts: 1,
            data_width: 4.0,
            has_nulls: false,
        };
        // (8192 − 40) × 0.9 / (8 + 8 + 4) = 366 per page: 3 leaf pages + meta.
        let e = estimate(&l).unwrap();
        assert_eq!((e.expected_pages, e.bloat_pages), (4, 0));
    }
}
