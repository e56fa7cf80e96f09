//! `pg_stats` (docs/metrics.md, `pg_stats`): per monitored database, its `pg_stat_database` row and
//! size, its largest tables and indexes with their statistics.
//!
//! Three queries per database over its own connection ([`super::sql`]). A database that fails
//! is reported as `pg_stats/<database>` and the others are still sent.
//!
//! Element size: one table is about 500 bytes of JSON, so 500 tables + 500 indexes make an
//! element of roughly 350 KB, under the element size rule (`max_batch_bytes / 4`, 1 MiB with
//! the defaults). A database whose element would pass the rule (a larger `max_tables`, a
//! smaller `max_batch_bytes`) is split, never dropped: several elements, each with the
//! database counters, `part` / `parts`, and a share of the tables and indexes, packed in
//! order ([`pack`]). Only a single table or index larger than the rule on its own (a name of
//! kilobytes with a tiny `max_batch_bytes`) is left out, and reported as
//! `pg_stats/<database>`.

use super::client::{PgError, Rows};
use super::pool::SharedPool;
use super::{CollectionConn, RELATIONS_PER_STATEMENT, each_database, oid_array, oids, sql};
use crate::collect::json::{self, Buf};
use crate::collect::{CollectError, Collector, EmitError, Now, Output, round2};
use crate::config;
use crate::util::Rfc3339;
#[cfg(test)]
use serde::Serialize;

pub struct PgStats {
    pool: SharedPool,
    max_tables: u32,
    max_indexes: u32,
    /// An element's JSON, reused.
    json: Buf,
}

impl PgStats {
    pub fn new(cfg: &config::PgStats, pool: SharedPool) -> PgStats {
        PgStats {
            pool,
            max_tables: cfg.max_tables,
            max_indexes: cfg.max_indexes,
            json: Buf::default(),
        }
    }
}

/// The element as serde would write it: the tests hold the hand-written JSON
/// ([`write_element`]) to these bytes.
#[cfg(test)]
#[derive(Serialize)]
struct Element<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: Rfc3339,
    database: &'a str,
    /// This element's number among the `parts` of this database's collection, from 1.
    part: usize,
    parts: usize,
    #[serde(flatten)]
    stats: &'a DatabaseStats,
    tables: &'a [Table],
    indexes: &'a [Index],
}

#[derive(Default)]
#[cfg_attr(test, derive(Serialize))]
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
    stats_reset: Option<Rfc3339>,
}

#[cfg_attr(test, derive(Serialize))]
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
    last_vacuum: Option<Rfc3339>,
    last_autovacuum: Option<Rfc3339>,
    last_analyze: Option<Rfc3339>,
    last_autoanalyze: Option<Rfc3339>,
    vacuum_count: Option<i64>,
    autovacuum_count: Option<i64>,
    analyze_count: Option<i64>,
    autoanalyze_count: Option<i64>,
}

#[cfg_attr(test, derive(Serialize))]
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

/// What one collection reuses from database to database (dropped at its end: not held between
/// collections): the two lists, emptied, and the name Strings of the tables and indexes they
/// let go, overwritten instead of allocated again (a String per name was 8 000 allocations per
/// database of 1 000 tables and 2 000 indexes, each cycle). Only the Strings are kept, not the
/// items: moving a whole table (about 450 bytes) to take its two names out was 3 % of the
/// collector's CPU with every type over 5 × 1 000 tables.
#[derive(Default)]
struct Reuse {
    tables: Vec<Table>,
    indexes: Vec<Index>,
    names: Vec<String>,
}

impl Reuse {
    /// Takes back the lists of an emitted database.
    fn give_back(&mut self, mut tables: Vec<Table>, mut indexes: Vec<Index>) {
        let names = &mut self.names;
        tables.drain(..).for_each(|t| t.give_names(names));
        indexes.drain(..).for_each(|i| i.give_names(names));
        self.tables = tables;
        self.indexes = indexes;
    }
}

impl Table {
    /// Hands its name Strings over for reuse.
    fn give_names(self, names: &mut Vec<String>) {
        names.extend(self.schema);
        names.extend(self.name);
    }
}

impl Index {
    /// Hands its name Strings over for reuse.
    fn give_names(self, names: &mut Vec<String>) {
        names.extend(self.schema);
        names.extend(self.name);
        names.extend(self.table);
    }
}

/// The statements of one database: its counters, its tables' list, then its tables and their
/// indexes a chunk at a time.
fn read(
    c: &mut CollectionConn<'_>,
    max_tables: u32,
    max_indexes: u32,
    reuse: &mut Reuse,
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
            stats_reset: r
                .get_timestamptz("stats_reset")?
                .map(|t| t.rfc3339_micros()),
        };
    }
    c.recycle(rows);

    // Listed first, then read a few at a time, keeping the largest: the size functions stat
    // every file, and one statement over thousands of tables ran for hundreds of ms.
    let all = oids(c, sql::USER_TABLES)?;
    // Up to twice `max` are held between selections (each selection moves every item, so one
    // per chunk cost more than the statements), then the largest `max` are kept, sorted once.
    let room = |max: u32| {
        usize::try_from(max)
            .unwrap_or(usize::MAX)
            .min(all.len())
            .saturating_mul(2)
            .saturating_add(RELATIONS_PER_STATEMENT)
    };
    let mut tables = std::mem::take(&mut reuse.tables);
    let mut indexes = std::mem::take(&mut reuse.indexes);
    tables.reserve(room(max_tables));
    indexes.reserve(room(max_indexes));
    let names = &mut reuse.names;
    for chunk in all.chunks(RELATIONS_PER_STATEMENT) {
        // A chunk's tables and their indexes in one round trip (two statements: each is
        // bounded by statement_timeout; their locks are those of the tables statement, which
        // sizes the indexes too).
        let list = oid_array(chunk);
        let [table_rows, index_rows] =
            c.query_split([&sql::tables(&list), &sql::indexes(&list)])?;
        read_tables(c, table_rows, &mut tables, names)?;
        read_indexes(c, index_rows, &mut indexes, names)?;
        if tables.len() >= held(max_tables) {
            keep_largest(&mut tables, max_tables, table_key, |t| t.give_names(names));
        }
        if indexes.len() >= held(max_indexes) {
            keep_largest(&mut indexes, max_indexes, index_key, |i| {
                i.give_names(names)
            });
        }
    }
    keep_largest(&mut tables, max_tables, table_key, |t| t.give_names(names));
    sort_largest(&mut tables, table_key);
    keep_largest(&mut indexes, max_indexes, index_key, |i| {
        i.give_names(names)
    });
    sort_largest(&mut indexes, index_key);
    Ok((db, tables, indexes))
}

fn table_key(t: &Table) -> (Option<i64>, &Option<String>, &Option<String>) {
    (t.size_bytes, &t.schema, &t.name)
}

fn index_key(i: &Index) -> (Option<i64>, &Option<String>, &Option<String>) {
    (i.size_bytes, &i.schema, &i.name)
}

/// How many items are held before the largest are selected: twice `max`.
fn held(max: u32) -> usize {
    usize::try_from(max).unwrap_or(usize::MAX).saturating_mul(2)
}

/// The order of the element: by size, largest first and unknown last, then schema and name
/// (byte order).
fn largest_first<T>(
    key: impl Fn(&T) -> (Option<i64>, &Option<String>, &Option<String>),
) -> impl Fn(&T, &T) -> core::cmp::Ordering {
    use core::cmp::Ordering;
    move |a: &T, b: &T| {
        let (size_a, schema_a, name_a) = key(a);
        let (size_b, schema_b, name_b) = key(b);
        let by_size = match (size_a, size_b) {
            (Some(x), Some(y)) => y.cmp(&x),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_size
            .then_with(|| schema_a.cmp(schema_b))
            .then_with(|| name_a.cmp(name_b))
    }
}

/// Keeps the `max` largest of `items` (unsorted): a selection, no scratch copy. The others
/// go to `let_go` (for their Strings to be reused).
fn keep_largest<T>(
    items: &mut Vec<T>,
    max: u32,
    key: impl Fn(&T) -> (Option<i64>, &Option<String>, &Option<String>),
    let_go: impl FnMut(T),
) {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if max == 0 {
        items.drain(..).for_each(let_go);
    } else if items.len() > max {
        items.select_nth_unstable_by(max - 1, largest_first(key));
        items.drain(max..).for_each(let_go);
    }
}

/// `value` in a String of `names` when there is one (no allocation when it has the room).
fn name_in(names: &mut Vec<String>, value: Option<&str>) -> Option<String> {
    let value = value?;
    let mut s = names.pop().unwrap_or_default();
    s.clear();
    s.push_str(value);
    Some(s)
}

/// Sorts `items` in the order of the element (unstable: no scratch copy).
fn sort_largest<T>(
    items: &mut [T],
    key: impl Fn(&T) -> (Option<i64>, &Option<String>, &Option<String>),
) {
    items.sort_unstable_by(largest_first(key));
}

/// Appends the tables of `rows` (of [`sql::tables`]) to `tables`, their names in Strings of
/// `names`.
fn read_tables(
    c: &mut CollectionConn<'_>,
    rows: Rows,
    tables: &mut Vec<Table>,
    names: &mut Vec<String>,
) -> Result<(), PgError> {
    // Resolved once per result: a lookup by name per field was a fifth of this type's CPU.
    let [
        schemaname,
        relname,
        n_live_tup,
        n_dead_tup,
        n_mod_since_analyze,
        size_bytes,
        seq_scan,
        seq_tup_read,
        idx_scan,
        idx_tup_fetch,
        n_tup_ins,
        n_tup_upd,
        n_tup_del,
        n_tup_hot_upd,
        last_vacuum,
        last_autovacuum,
        last_analyze,
        last_autoanalyze,
        vacuum_count,
        autovacuum_count,
        analyze_count,
        autoanalyze_count,
    ] = rows.column_indexes([
        "schemaname",
        "relname",
        "n_live_tup",
        "n_dead_tup",
        "n_mod_since_analyze",
        "size_bytes",
        "seq_scan",
        "seq_tup_read",
        "idx_scan",
        "idx_tup_fetch",
        "n_tup_ins",
        "n_tup_upd",
        "n_tup_del",
        "n_tup_hot_upd",
        "last_vacuum",
        "last_autovacuum",
        "last_analyze",
        "last_autoanalyze",
        "vacuum_count",
        "autovacuum_count",
        "analyze_count",
        "autoanalyze_count",
    ])?;
    for r in rows.iter() {
        let i = |col: usize| r.i64_at(col);
        let time =
            |col: usize| Ok::<_, PgError>(r.timestamptz_at(col)?.map(|t| t.rfc3339_micros()));
        tables.push(Table {
            schema: name_in(names, r.str_at(schemaname)?),
            name: name_in(names, r.str_at(relname)?),
            live_tuples: i(n_live_tup)?,
            dead_tuples: i(n_dead_tup)?,
            modified_since_analyze: i(n_mod_since_analyze)?,
            size_bytes: i(size_bytes)?,
            seq_scan: i(seq_scan)?,
            seq_tup_read: i(seq_tup_read)?,
            idx_scan: i(idx_scan)?,
            idx_tup_fetch: i(idx_tup_fetch)?,
            n_tup_ins: i(n_tup_ins)?,
            n_tup_upd: i(n_tup_upd)?,
            n_tup_del: i(n_tup_del)?,
            n_tup_hot_upd: i(n_tup_hot_upd)?,
            last_vacuum: time(last_vacuum)?,
            last_autovacuum: time(last_autovacuum)?,
            last_analyze: time(last_analyze)?,
            last_autoanalyze: time(last_autoanalyze)?,
            vacuum_count: i(vacuum_count)?,
            autovacuum_count: i(autovacuum_count)?,
            analyze_count: i(analyze_count)?,
            autoanalyze_count: i(autoanalyze_count)?,
        });
    }
    c.recycle(rows);
    Ok(())
}

/// Appends the indexes of `rows` (of [`sql::indexes`]) to `indexes`, their names in Strings of
/// `names`.
fn read_indexes(
    c: &mut CollectionConn<'_>,
    rows: Rows,
    indexes: &mut Vec<Index>,
    names: &mut Vec<String>,
) -> Result<(), PgError> {
    let [
        schemaname,
        indexrelname,
        relname,
        idx_scan,
        idx_tup_read,
        idx_tup_fetch,
        size_bytes,
    ] = rows.column_indexes([
        "schemaname",
        "indexrelname",
        "relname",
        "idx_scan",
        "idx_tup_read",
        "idx_tup_fetch",
        "size_bytes",
    ])?;
    for r in rows.iter() {
        let scans = r.i64_at(idx_scan)?;
        indexes.push(Index {
            schema: name_in(names, r.str_at(schemaname)?),
            name: name_in(names, r.str_at(indexrelname)?),
            table: name_in(names, r.str_at(relname)?),
            scans,
            tuples_read: r.i64_at(idx_tup_read)?,
            tuples_returned: r.i64_at(idx_tup_fetch)?,
            size_bytes: r.i64_at(size_bytes)?,
            status: index_status(scans),
        });
    }
    c.recycle(rows);
    Ok(())
}

/// Splits items of `sizes` bytes, in order, into runs whose sizes (plus a comma each) stay
/// within `limit`: the end (exclusive) of each run. An item over `limit` on its own is a run of
/// its own, which the caller finds too large. No items: no runs.
pub fn pack(sizes: &[usize], limit: usize) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut used = 0;
    for (i, &s) in sizes.iter().enumerate() {
        let s = s + 1;
        if used > 0 && used + s > limit {
            ends.push(i);
            used = 0;
        }
        used += s;
    }
    if !sizes.is_empty() {
        ends.push(sizes.len());
    }
    ends
}

impl Table {
    /// This table's JSON, as serde writes the struct.
    fn write_json(&self, b: &mut Buf) {
        b.put(b"{\"schema\":");
        b.opt_str(self.schema.as_deref());
        b.put(b",\"name\":");
        b.opt_str(self.name.as_deref());
        b.i64_fields(&[
            (b",\"live_tuples\":", self.live_tuples),
            (b",\"dead_tuples\":", self.dead_tuples),
            (b",\"modified_since_analyze\":", self.modified_since_analyze),
            (b",\"size_bytes\":", self.size_bytes),
            (b",\"seq_scan\":", self.seq_scan),
            (b",\"seq_tup_read\":", self.seq_tup_read),
            (b",\"idx_scan\":", self.idx_scan),
            (b",\"idx_tup_fetch\":", self.idx_tup_fetch),
            (b",\"n_tup_ins\":", self.n_tup_ins),
            (b",\"n_tup_upd\":", self.n_tup_upd),
            (b",\"n_tup_del\":", self.n_tup_del),
            (b",\"n_tup_hot_upd\":", self.n_tup_hot_upd),
        ]);
        for (key, v) in [
            (&b",\"last_vacuum\":"[..], self.last_vacuum),
            (b",\"last_autovacuum\":", self.last_autovacuum),
            (b",\"last_analyze\":", self.last_analyze),
            (b",\"last_autoanalyze\":", self.last_autoanalyze),
        ] {
            b.put(key);
            b.opt_time(v);
        }
        b.i64_fields(&[
            (b",\"vacuum_count\":", self.vacuum_count),
            (b",\"autovacuum_count\":", self.autovacuum_count),
            (b",\"analyze_count\":", self.analyze_count),
            (b",\"autoanalyze_count\":", self.autoanalyze_count),
        ]);
        b.byte(b'}');
    }
}

impl Index {
    /// This index's JSON, as serde writes the struct.
    fn write_json(&self, b: &mut Buf) {
        b.put(b"{\"schema\":");
        b.opt_str(self.schema.as_deref());
        b.put(b",\"name\":");
        b.opt_str(self.name.as_deref());
        b.put(b",\"table\":");
        b.opt_str(self.table.as_deref());
        b.i64_fields(&[
            (b",\"scans\":", self.scans),
            (b",\"tuples_read\":", self.tuples_read),
            (b",\"tuples_returned\":", self.tuples_returned),
            (b",\"size_bytes\":", self.size_bytes),
        ]);
        b.put(b",\"status\":");
        b.str(self.status);
        b.byte(b'}');
    }
}

/// One element of `database` (this `part` of `parts`) with `tables` and `indexes`, into `b`
/// (cleared first): the bytes serde writes for [`Element`], written by hand (serde's calls per
/// field were a tenth of this type's CPU at 1 000 tables).
fn write_element(
    b: &mut Buf,
    timestamp: &str,
    database: &str,
    (part, parts): (usize, usize),
    stats: &DatabaseStats,
    tables: &[Table],
    indexes: &[Index],
) {
    b.clear();
    json::head(b, "pg_stats", timestamp, database);
    b.put(b",\"part\":");
    b.u64(part as u64);
    b.put(b",\"parts\":");
    b.u64(parts as u64);
    b.i64_fields(&[
        (b",\"size_bytes\":", stats.size_bytes),
        (b",\"numbackends\":", stats.numbackends),
        (
            b",\"transactions_committed\":",
            stats.transactions_committed,
        ),
        (
            b",\"transactions_rolledback\":",
            stats.transactions_rolledback,
        ),
        (b",\"blocks_read\":", stats.blocks_read),
        (b",\"blocks_hit\":", stats.blocks_hit),
    ]);
    b.put(b",\"cache_hit_ratio\":");
    b.opt_f64(stats.cache_hit_ratio);
    b.i64_fields(&[
        (b",\"tuples_returned\":", stats.tuples_returned),
        (b",\"tuples_fetched\":", stats.tuples_fetched),
        (b",\"tuples_inserted\":", stats.tuples_inserted),
        (b",\"tuples_updated\":", stats.tuples_updated),
        (b",\"tuples_deleted\":", stats.tuples_deleted),
        (b",\"conflicts\":", stats.conflicts),
        (b",\"temp_files\":", stats.temp_files),
        (b",\"temp_bytes\":", stats.temp_bytes),
        (b",\"deadlocks\":", stats.deadlocks),
    ]);
    b.put(b",\"stats_reset\":");
    b.opt_time(stats.stats_reset);
    b.put(b",\"tables\":[");
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            b.byte(b',');
        }
        t.write_json(b);
    }
    b.put(b"],\"indexes\":[");
    for (i, x) in indexes.iter().enumerate() {
        if i > 0 {
            b.byte(b',');
        }
        x.write_json(b);
    }
    b.put(b"]}");
}

/// Emits the element(s) of one database: one when it fits the element size rule, else as
/// many parts as it needs.
fn emit(
    out: &mut Output<'_>,
    json: &mut Buf,
    now: Now,
    database: &str,
    (stats, tables, indexes): (&DatabaseStats, &[Table], &[Index]),
) -> Result<(), EmitError> {
    let timestamp = now.wall.rfc3339().to_string();
    let element = |json: &mut Buf, part, tables: &[Table], indexes: &[Index]| {
        write_element(json, &timestamp, database, part, stats, tables, indexes);
    };
    element(json, (1, 1), tables, indexes);
    let max = out.max_element();
    if json.len() <= max {
        return out.emit_raw(0, json.as_bytes());
    }
    // Too large: every part holds the head (counters; `part` and `parts` at their widest)
    // and a run of tables then indexes.
    element(json, (usize::MAX, usize::MAX), &[], &[]);
    let limit = max.saturating_sub(json.len());
    let mut sizes = Vec::with_capacity(tables.len() + indexes.len());
    for t in tables {
        json.clear();
        t.write_json(json);
        sizes.push(json.len());
    }
    for i in indexes {
        json.clear();
        i.write_json(json);
        sizes.push(json.len());
    }
    let ends = pack(&sizes, limit);
    let (n_tables, parts) = (tables.len(), ends.len());
    let mut start = 0;
    let mut result = Ok(());
    for (part, &end) in ends.iter().enumerate() {
        let t = start.min(n_tables)..end.min(n_tables);
        let i = start.max(n_tables) - n_tables..end.max(n_tables) - n_tables;
        start = end;
        element(json, (part + 1, parts), &tables[t], &indexes[i]);
        if let Err(err) = out.emit_raw(0, json.as_bytes()) {
            // Only a lone table or index over the rule gets here: the other parts still go.
            result = Err(err);
        }
    }
    result
}

impl Collector for PgStats {
    fn name(&self) -> &'static str {
        "pg_stats"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        let (max_t, max_i) = (self.max_tables, self.max_indexes);
        let json = &mut self.json;
        let reuse = std::cell::RefCell::new(Reuse::default());
        each_database(
            &self.pool,
            now,
            out,
            |c, _| read(c, max_t, max_i, &mut reuse.borrow_mut()),
            |out, database, (stats, tables, indexes)| {
                let r = emit(out, json, now, database, (&stats, &tables, &indexes));
                reuse.borrow_mut().give_back(tables, indexes);
                r
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
    fn the_largest_are_kept_in_element_order_unknown_sizes_last() {
        let t = |size: Option<i64>, schema: &str, name: &str| {
            let mut t = table(0);
            t.size_bytes = size;
            t.schema = Some(schema.to_string());
            t.name = Some(name.to_string());
            t
        };
        let mut v = vec![
            t(None, "a", "unknown"),
            t(Some(10), "b", "small"),
            t(Some(99), "b", "big2"),
            t(Some(99), "a", "big1"),
            t(Some(50), "a", "mid"),
        ];
        fn key(t: &Table) -> (Option<i64>, &Option<String>, &Option<String>) {
            (t.size_bytes, &t.schema, &t.name)
        }
        let mut spare = Vec::new();
        keep_largest(&mut v, 10, key, |t| spare.push(t));
        sort_largest(&mut v, key);
        assert!(spare.is_empty());
        let names: Vec<_> = v.iter().map(|t| t.name.as_deref().unwrap()).collect();
        assert_eq!(names, ["big1", "big2", "mid", "small", "unknown"]);
        keep_largest(&mut v, 2, key, |t| spare.push(t));
        sort_largest(&mut v, key);
        let names: Vec<_> = v.iter().map(|t| t.name.as_deref().unwrap()).collect();
        assert_eq!(names, ["big1", "big2"]);
        // The others are handed over for reuse, not dropped.
        assert_eq!(spare.len(), 3);
        keep_largest(&mut v, 0, key, |t| spare.push(t));
        assert_eq!((v.len(), spare.len()), (0, 5));
    }

    #[test]
    fn a_name_is_written_into_a_string_let_go() {
        let mut names = vec![String::with_capacity(64)];
        let before = names[0].as_ptr();
        let name = name_in(&mut names, Some("orders"));
        assert_eq!(name.as_deref(), Some("orders"));
        assert_eq!(name.as_ref().map(|s| s.as_ptr()), Some(before));
        assert!(names.is_empty());
        // NULL takes no String; with none left, a new one.
        names.push("old name".to_string());
        assert_eq!(name_in(&mut names, None), None);
        assert_eq!(names.len(), 1);
        assert_eq!(name_in(&mut names, Some("x")).as_deref(), Some("x"));
        assert_eq!(name_in(&mut names, Some("y")).as_deref(), Some("y"));
        // A table let go hands over both its names.
        let mut t = table(1);
        t.schema = Some("s".into());
        t.name = Some("n".into());
        t.give_names(&mut names);
        assert_eq!(names, ["s", "n"]);
    }

    #[test]
    fn packing_keeps_order_and_the_limit() {
        assert_eq!(pack(&[], 10), Vec::<usize>::new());
        assert_eq!(pack(&[3, 3, 3], 8), [2, 3]);
        assert_eq!(pack(&[3, 3, 3], 12), [3]);
        // An item over the limit alone is a run of its own.
        assert_eq!(pack(&[2, 20, 2], 8), [1, 2, 3]);
    }

    fn table(n: usize) -> Table {
        Table {
            schema: Some("public".into()),
            name: Some(format!("table_{n}")),
            live_tuples: Some(n as i64),
            dead_tuples: None,
            modified_since_analyze: None,
            size_bytes: Some(1000 - n as i64),
            seq_scan: None,
            seq_tup_read: None,
            idx_scan: None,
            idx_tup_fetch: None,
            n_tup_ins: None,
            n_tup_upd: None,
            n_tup_del: None,
            n_tup_hot_upd: None,
            last_vacuum: None,
            last_autovacuum: None,
            last_analyze: None,
            last_autoanalyze: None,
            vacuum_count: None,
            autovacuum_count: None,
            analyze_count: None,
            autoanalyze_count: None,
        }
    }

    fn index(n: usize) -> Index {
        Index {
            schema: Some("public".into()),
            name: Some(format!("index_{n}")),
            table: Some(format!("table_{n}")),
            scans: Some(0),
            tuples_read: None,
            tuples_returned: None,
            size_bytes: Some(8192),
            status: "UNUSED",
        }
    }

    /// Emits one database of `n` tables and `n` indexes under an element size rule of `max`:
    /// the elements stored, parsed, and the drops counted.
    fn split(n: usize, max: usize) -> (Vec<serde_json::Value>, u64) {
        use crate::pipeline::{ElementBuffer, Stats};
        let mut buffer = ElementBuffer::new(1 << 22);
        let (mut scratch, mut stats, mut outcomes, mut errors) =
            (Vec::new(), Stats::default(), Vec::new(), Vec::new());
        let mut out = Output::new(
            "pg_stats",
            &mut buffer,
            &mut scratch,
            max,
            &mut stats,
            &mut outcomes,
            &mut errors,
        );
        let now = Now {
            mono_ns: 0,
            wall: crate::util::WallTime::default(),
        };
        let db = DatabaseStats {
            numbackends: Some(3),
            ..DatabaseStats::default()
        };
        let (tables, indexes): (Vec<_>, Vec<_>) =
            ((0..n).map(table).collect(), (0..n).map(index).collect());
        emit(
            &mut out,
            &mut Buf::default(),
            now,
            "app",
            (&db, &tables, &indexes),
        )
        .unwrap();
        let mut elements = Vec::new();
        let mut json = Vec::new();
        while buffer.pop_into(&mut json).is_some() {
            assert!(json.len() <= max, "{} > {max}", json.len());
            elements.push(serde_json::from_slice(&json).unwrap());
            json.clear();
        }
        (elements, stats.metrics_dropped)
    }

    #[test]
    fn a_database_over_the_element_size_is_split_into_parts_never_dropped() {
        let (one, dropped) = split(3, 1 << 20);
        assert_eq!((one.len(), dropped), (1, 0));
        assert_eq!((&one[0]["part"], &one[0]["parts"]), (&1.into(), &1.into()));

        let (parts, dropped) = split(200, 8192);
        assert_eq!(dropped, 0);
        assert!(parts.len() > 5, "{}", parts.len());
        let mut tables = Vec::new();
        let mut indexes = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            assert_eq!(p["part"], i + 1);
            assert_eq!(p["parts"], parts.len());
            assert_eq!(p["database"], "app");
            // The database counters in each part.
            assert_eq!(p["numbackends"], 3);
            for t in p["tables"].as_array().unwrap() {
                tables.push(t["name"].as_str().unwrap().to_string());
            }
            for x in p["indexes"].as_array().unwrap() {
                indexes.push(x["name"].as_str().unwrap().to_string());
            }
        }
        // Every table and index exactly once, in order.
        assert_eq!(
            tables,
            (0..200).map(|n| format!("table_{n}")).collect::<Vec<_>>()
        );
        assert_eq!(
            indexes,
            (0..200).map(|n| format!("index_{n}")).collect::<Vec<_>>()
        );
    }

    /// The hand-written element is byte for byte what serde writes for [`Element`]: every
    /// field set and unset, names to escape, times with and without microseconds, ratios.
    #[test]
    fn hand_written_json_is_serdes() {
        let time = |secs, nanos| Some(crate::util::WallTime { secs, nanos }.rfc3339_micros());
        let mut full = table(7);
        full.schema = Some("we\"ird\\ \u{1} schéma".into());
        full.name = None;
        full.dead_tuples = Some(-1);
        full.modified_since_analyze = Some(i64::MAX);
        full.seq_scan = Some(i64::MIN);
        full.seq_tup_read = Some(0);
        full.idx_scan = Some(1);
        full.idx_tup_fetch = Some(22);
        full.n_tup_ins = Some(333);
        full.n_tup_upd = Some(4444);
        full.n_tup_del = Some(55555);
        full.n_tup_hot_upd = Some(666666);
        full.last_vacuum = time(1_795_815_182, 966_761_000);
        full.last_autovacuum = time(0, 0);
        full.last_analyze = time(-86_400, 999);
        full.last_autoanalyze = time(253_402_300_799, 1_000);
        full.vacuum_count = Some(1);
        full.autovacuum_count = Some(2);
        full.analyze_count = Some(3);
        full.autoanalyze_count = Some(4);
        let mut odd_index = index(3);
        odd_index.name = Some("\n\t</script>".into());
        odd_index.table = None;
        odd_index.scans = None;
        odd_index.tuples_read = Some(9);
        odd_index.tuples_returned = Some(-9);
        odd_index.status = index_status(None);
        let stats = [
            DatabaseStats::default(),
            DatabaseStats {
                size_bytes: Some(1 << 40),
                numbackends: Some(3),
                transactions_committed: Some(10),
                transactions_rolledback: Some(0),
                blocks_read: Some(3),
                blocks_hit: Some(7),
                cache_hit_ratio: cache_hit_ratio(Some(7), Some(3)),
                tuples_returned: Some(1),
                tuples_fetched: Some(2),
                tuples_inserted: Some(3),
                tuples_updated: Some(4),
                tuples_deleted: Some(5),
                conflicts: Some(6),
                temp_files: Some(7),
                temp_bytes: Some(8),
                deadlocks: Some(9),
                stats_reset: time(1_700_000_000, 5_000),
            },
        ];
        let tables = [table(0), full, table(1)];
        let indexes = [index(0), odd_index];
        for stats in &stats {
            for (t, i) in [(0, 0), (1, 0), (0, 2), (3, 2)] {
                for (part, parts) in [(1, 1), (2, 7), (usize::MAX, usize::MAX)] {
                    let timestamp = crate::util::WallTime {
                        secs: 1_772_366_400,
                        nanos: 123_000_000,
                    }
                    .rfc3339();
                    let e = Element {
                        kind: "pg_stats",
                        timestamp,
                        database: "d\u{e9}\"b",
                        part,
                        parts,
                        stats,
                        tables: &tables[..t],
                        indexes: &indexes[..i],
                    };
                    let mut b = Buf::default();
                    write_element(
                        &mut b,
                        &timestamp.to_string(),
                        e.database,
                        (part, parts),
                        stats,
                        e.tables,
                        e.indexes,
                    );
                    assert_eq!(
                        String::from_utf8_lossy(b.as_bytes()),
                        serde_json::to_string(&e).unwrap()
                    );
                }
            }
        }
    }

    #[test]
    fn element_has_every_field_with_nulls() {
        let e = Element {
            kind: "pg_stats",
            timestamp: crate::util::WallTime::default().rfc3339(),
            database: "app",
            part: 1,
            parts: 1,
            stats: &DatabaseStats::default(),
            tables: &[],
            indexes: &[],
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
            "part",
            "parts",
        ] {
            assert!(v.get(k).is_some(), "{k} missing");
        }
        assert!(v["stats_reset"].is_null());
    }
}
