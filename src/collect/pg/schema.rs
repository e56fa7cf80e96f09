//! `pg_schema` (docs/metrics.md, `pg_replication` … `pg_schema`): per monitored database, over its
//! own connection, its user tables and views with their columns, constraints and indexes
//! (`definition` from `pg_get_indexdef`).
//!
//! A large schema does not fit one element: the tables are packed, in name order, into as
//! many elements as the element size rule (`max_batch_bytes / 4`) needs, each carrying whole
//! tables (a table with its columns, constraints and indexes is never split) and `part` /
//! `parts` so a reader knows it has them all. A single table larger than the rule is
//! dropped and reported (`pg_schema/<database>`).

use super::client::{PgError, Rows};
use super::pool::SharedPool;
use super::sql::schema as sql;
use super::{CollectionConn, each_database};
use crate::collect::{CollectError, Collector, EmitError, Now, Output, json};
#[cfg(test)]
use serde::Serialize;
use std::collections::HashMap;

/// Tables whose columns, constraints and indexes are read by one statement each (keeps
/// every statement well under 50 ms of server time on a large schema).
pub const TABLES_PER_QUERY: usize = 250;

/// Room kept in each element for its own keys (`type`, `timestamp`, `database`, `part` …)
/// beyond the database name.
const ELEMENT_OVERHEAD: usize = 256;

pub struct PgSchema {
    pool: SharedPool,
}

impl PgSchema {
    pub fn new(pool: SharedPool) -> PgSchema {
        PgSchema { pool }
    }
}

// An element: `{"type": "pg_schema", "timestamp", "database", "part" (1-based), "parts"
// (elements that make the whole schema of this collection), "tables": [Table],
// "columns": [Column], "constraints": [Constraint], "indexes": [Index]}`, assembled by
// [`emit`] from each table's pieces.

// Entries borrow their text from the query results ([`SchemaRows`]) and are written as JSON
// straight into one buffer per list ([`Schema`]): no string is copied between the server's
// reply and the JSON, and no allocation is made per table.

#[cfg_attr(test, derive(Serialize))]
#[derive(Debug)]
struct Table<'r> {
    schema: Option<&'r str>,
    name: Option<&'r str>,
    kind: Option<&'r str>,
    persistence: Option<&'r str>,
    owner: Option<&'r str>,
    estimated_rows: Option<f64>,
    is_partition: Option<bool>,
    comment: Option<&'r str>,
}

#[cfg_attr(test, derive(Serialize))]
#[derive(Debug)]
struct Column<'r> {
    schema: Option<&'r str>,
    table: Option<&'r str>,
    name: Option<&'r str>,
    position: Option<i64>,
    data_type: Option<&'r str>,
    nullable: Option<bool>,
    default: Option<&'r str>,
    identity: Option<&'r str>,
    generated: Option<&'r str>,
}

#[cfg_attr(test, derive(Serialize))]
#[derive(Debug)]
struct Constraint<'r> {
    schema: Option<&'r str>,
    table: Option<&'r str>,
    name: Option<&'r str>,
    #[cfg_attr(test, serde(rename = "type"))]
    kind: Option<&'r str>,
    definition: Option<&'r str>,
}

#[cfg_attr(test, derive(Serialize))]
#[derive(Debug)]
struct Index<'r> {
    schema: Option<&'r str>,
    table: Option<&'r str>,
    name: Option<&'r str>,
    method: Option<&'r str>,
    is_unique: Option<bool>,
    is_primary: Option<bool>,
    is_valid: Option<bool>,
    definition: Option<&'r str>,
}

impl Table<'_> {
    /// The `tables[]` entry (the bytes serde_json would write for it).
    fn write(&self, o: &mut json::Buf) {
        o.put(b"{\"schema\":");
        o.opt_str(self.schema);
        o.put(b",\"name\":");
        o.opt_str(self.name);
        o.put(b",\"kind\":");
        o.opt_str(self.kind);
        o.put(b",\"persistence\":");
        o.opt_str(self.persistence);
        o.put(b",\"owner\":");
        o.opt_str(self.owner);
        o.put(b",\"estimated_rows\":");
        o.opt_f64(self.estimated_rows);
        o.put(b",\"is_partition\":");
        o.opt_bool(self.is_partition);
        o.put(b",\"comment\":");
        o.opt_str(self.comment);
        o.byte(b'}');
    }
}

impl Column<'_> {
    fn write(&self, o: &mut json::Buf) {
        o.put(b"{\"schema\":");
        o.opt_str(self.schema);
        o.put(b",\"table\":");
        o.opt_str(self.table);
        o.put(b",\"name\":");
        o.opt_str(self.name);
        o.put(b",\"position\":");
        o.opt_i64(self.position);
        o.put(b",\"data_type\":");
        o.opt_str(self.data_type);
        o.put(b",\"nullable\":");
        o.opt_bool(self.nullable);
        o.put(b",\"default\":");
        o.opt_str(self.default);
        o.put(b",\"identity\":");
        o.opt_str(self.identity);
        o.put(b",\"generated\":");
        o.opt_str(self.generated);
        o.byte(b'}');
    }
}

impl Constraint<'_> {
    fn write(&self, o: &mut json::Buf) {
        o.put(b"{\"schema\":");
        o.opt_str(self.schema);
        o.put(b",\"table\":");
        o.opt_str(self.table);
        o.put(b",\"name\":");
        o.opt_str(self.name);
        o.put(b",\"type\":");
        o.opt_str(self.kind);
        o.put(b",\"definition\":");
        o.opt_str(self.definition);
        o.byte(b'}');
    }
}

impl Index<'_> {
    fn write(&self, o: &mut json::Buf) {
        o.put(b"{\"schema\":");
        o.opt_str(self.schema);
        o.put(b",\"table\":");
        o.opt_str(self.table);
        o.put(b",\"name\":");
        o.opt_str(self.name);
        o.put(b",\"method\":");
        o.opt_str(self.method);
        o.put(b",\"is_unique\":");
        o.opt_bool(self.is_unique);
        o.put(b",\"is_primary\":");
        o.opt_bool(self.is_primary);
        o.put(b",\"is_valid\":");
        o.opt_bool(self.is_valid);
        o.put(b",\"definition\":");
        o.opt_str(self.definition);
        o.byte(b'}');
    }
}

/// What the server answered: the tables, and per batch of [`TABLES_PER_QUERY`] tables the
/// columns, constraints and indexes.
struct SchemaRows {
    tables: Rows,
    details: Vec<[Rows; 3]>,
}

impl SchemaRows {
    /// Every result, in the order the queries were sent.
    fn into_results(self) -> Vec<Rows> {
        std::iter::once(self.tables)
            .chain(self.details.into_iter().flatten())
            .collect()
    }
}

/// Entries of one list (`columns`, `constraints` or `indexes`) as JSON, back to back, each
/// with the table it belongs to.
#[derive(Default)]
struct List {
    json: json::Buf,
    /// (table, start, end) of each entry in `json`, in the order written.
    entries: Vec<(usize, usize, usize)>,
}

impl List {
    /// This list emptied, its room kept.
    fn cleared(mut self) -> List {
        self.json.clear();
        self.entries.clear();
        self
    }

    /// The entries' byte ranges grouped by table (in table order, written order within a
    /// table), and where each table's group starts (`tables + 1` offsets).
    fn by_table(&self, tables: usize) -> (Vec<(usize, usize)>, Vec<usize>) {
        let mut first = vec![0usize; tables + 1];
        for &(t, _, _) in &self.entries {
            if let Some(n) = first.get_mut(t + 1) {
                *n += 1;
            }
        }
        for t in 0..tables {
            let before = first.get(t).copied().unwrap_or(0);
            if let Some(n) = first.get_mut(t + 1) {
                *n += before;
            }
        }
        let mut next = first.clone();
        let mut sorted = vec![(0, 0); self.entries.len()];
        for &(t, start, end) in &self.entries {
            if let Some(slot) = next.get_mut(t)
                && let Some(s) = sorted.get_mut(*slot)
            {
                *s = (start, end);
                *slot += 1;
            }
        }
        (sorted, first)
    }
}

/// The schema of one database as JSON pieces: each table's `tables[]` entry and the entries
/// it adds to `columns[]`, `constraints[]` and `indexes[]`, in table (name) order.
#[derive(Default)]
struct Schema<'r> {
    /// (schema, name) of each table, for its details' `schema` and `table`.
    names: Vec<(Option<&'r str>, Option<&'r str>)>,
    tables: List,
    lists: [List; 3],
}

impl<'r> Schema<'r> {
    /// An empty schema writing into `spare` (the lists of an earlier one, so a collection over
    /// many databases grows its buffers once, not once per database).
    fn reusing(spare: [List; 4]) -> Schema<'r> {
        let [tables, columns, constraints, indexes] = spare.map(List::cleared);
        Schema {
            names: Vec::new(),
            tables,
            lists: [columns, constraints, indexes],
        }
    }

    /// The lists, for the next [`Schema::reusing`].
    fn into_lists(self) -> [List; 4] {
        let [columns, constraints, indexes] = self.lists;
        [self.tables, columns, constraints, indexes]
    }

    /// Adds a table; returns its number (for its details).
    fn add_table(&mut self, t: &Table<'r>) -> usize {
        let n = self.names.len();
        self.names.push((t.schema, t.name));
        let start = self.tables.json.len();
        t.write(&mut self.tables.json);
        let end = self.tables.json.len();
        self.tables.entries.push((n, start, end));
        n
    }

    /// Adds an entry of list `l` (0 columns, 1 constraints, 2 indexes) to table `table`.
    fn add(&mut self, l: usize, table: usize, write: impl FnOnce(&mut json::Buf)) {
        if let Some(list) = self.lists.get_mut(l) {
            let start = list.json.len();
            write(&mut list.json);
            list.entries.push((table, start, list.json.len()));
        }
    }

    fn table_name(&self, table: usize) -> (Option<&'r str>, Option<&'r str>) {
        self.names.get(table).copied().unwrap_or_default()
    }
}

/// The tables (in name order) with their details. Rows of relations created after the
/// table list (catalog changes between the statements) have no table and are left for the
/// next collection.
fn schema(rows: &SchemaRows, spare: [List; 4]) -> Result<Schema<'_>, PgError> {
    let mut s = Schema::reusing(spare);
    let t = &rows.tables;
    let mut by_oid: HashMap<i64, usize> = HashMap::with_capacity(t.len());
    let [
        oid,
        nspname,
        relname,
        kind,
        persistence,
        owner,
        estimated_rows,
        relispartition,
        desc,
    ] = [
        "oid",
        "nspname",
        "relname",
        "kind",
        "persistence",
        "owner",
        "estimated_rows",
        "relispartition",
        "description",
    ]
    .map(|c| t.column_index(c));
    let (oid, nspname, relname, kind, persistence, owner, estimated_rows, relispartition, desc) = (
        oid?,
        nspname?,
        relname?,
        kind?,
        persistence?,
        owner?,
        estimated_rows?,
        relispartition?,
        desc?,
    );
    for r in t.iter() {
        let Some(o) = r.i64_at(oid)? else {
            continue;
        };
        let n = s.add_table(&Table {
            schema: r.str_at(nspname)?,
            name: r.str_at(relname)?,
            kind: r.str_at(kind)?,
            persistence: r.str_at(persistence)?,
            owner: r.str_at(owner)?,
            estimated_rows: r.f64_at(estimated_rows)?,
            is_partition: r.bool_at(relispartition)?,
            comment: r.str_at(desc)?,
        });
        by_oid.insert(o, n);
    }
    let owner = |r: &super::client::Row<'_>, oid: usize| -> Result<Option<usize>, PgError> {
        Ok(r.i64_at(oid)?.and_then(|o| by_oid.get(&o).copied()))
    };
    for [columns, constraints, indexes] in &rows.details {
        let c = |name: &str| columns.column_index(name);
        let (oid, attname, attnum, data_type, nullable, default, identity, generated) = (
            c("oid")?,
            c("attname")?,
            c("attnum")?,
            c("data_type")?,
            c("nullable")?,
            c("default_value")?,
            c("identity")?,
            c("generated")?,
        );
        for r in columns.iter() {
            if let Some(n) = owner(&r, oid)? {
                let (schema, table) = s.table_name(n);
                let e = Column {
                    schema,
                    table,
                    name: r.str_at(attname)?,
                    position: r.i64_at(attnum)?,
                    data_type: r.str_at(data_type)?,
                    nullable: r.bool_at(nullable)?,
                    default: r.str_at(default)?,
                    identity: r.str_at(identity)?,
                    generated: r.str_at(generated)?,
                };
                s.add(0, n, |o| e.write(o));
            }
        }
        let c = |name: &str| constraints.column_index(name);
        let (oid, conname, contype, definition) =
            (c("oid")?, c("conname")?, c("contype")?, c("definition")?);
        for r in constraints.iter() {
            if let Some(n) = owner(&r, oid)? {
                let (schema, table) = s.table_name(n);
                let e = Constraint {
                    schema,
                    table,
                    name: r.str_at(conname)?,
                    kind: r.str_at(contype)?,
                    definition: r.str_at(definition)?,
                };
                s.add(1, n, |o| e.write(o));
            }
        }
        let c = |name: &str| indexes.column_index(name);
        let (oid, relname, amname, unique, primary, valid, definition) = (
            c("oid")?,
            c("relname")?,
            c("amname")?,
            c("indisunique")?,
            c("indisprimary")?,
            c("indisvalid")?,
            c("definition")?,
        );
        for r in indexes.iter() {
            if let Some(n) = owner(&r, oid)? {
                let (schema, table) = s.table_name(n);
                let e = Index {
                    schema,
                    table,
                    name: r.str_at(relname)?,
                    method: r.str_at(amname)?,
                    is_unique: r.bool_at(unique)?,
                    is_primary: r.bool_at(primary)?,
                    is_valid: r.bool_at(valid)?,
                    definition: r.str_at(definition)?,
                };
                s.add(2, n, |o| e.write(o));
            }
        }
    }
    Ok(s)
}

/// Splits items of `sizes` bytes, in order, into consecutive groups of at most `limit`
/// bytes each (an item over `limit` is a group of its own). Returns the group ends.
pub fn pack(sizes: &[usize], limit: usize) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut used = 0;
    for (i, &size) in sizes.iter().enumerate() {
        if used > 0 && used + size > limit {
            ends.push(i);
            used = 0;
        }
        used += size;
    }
    if !sizes.is_empty() {
        ends.push(sizes.len());
    }
    ends
}

/// The tables, then their details a batch of tables at a time.
fn read(c: &mut CollectionConn<'_>) -> Result<SchemaRows, PgError> {
    let tables = c.query(&sql::tables())?;
    let mut oids = Vec::with_capacity(tables.len());
    let oid = tables.column_index("oid")?;
    for r in tables.iter() {
        oids.extend(r.i64_at(oid)?);
    }
    let mut details = Vec::new();
    for batch in oids.chunks(TABLES_PER_QUERY) {
        // A batch's three statements in one round trip (catalog reads only: they lock no
        // table), each bounded by statement_timeout.
        details.push(c.query_split([
            &sql::columns(batch),
            &sql::constraints(batch),
            &sql::indexes(batch),
        ])?);
    }
    Ok(SchemaRows { tables, details })
}

/// Appends the `ranges` of `json`, comma-separated.
fn join(out: &mut Vec<u8>, json: &[u8], ranges: &[(usize, usize)], first: &mut bool) {
    for &(start, end) in ranges {
        if !*first {
            out.push(b',');
        }
        *first = false;
        out.extend_from_slice(json.get(start..end).unwrap_or_default());
    }
}

/// Emits `schema` as elements that each respect the element size rule. Each table is
/// written once; elements are assembled from those pieces.
fn emit(
    out: &mut Output<'_>,
    now: Now,
    database: &str,
    schema: &Schema<'_>,
    json: &mut Vec<u8>,
) -> Result<(), EmitError> {
    let head = |part: usize, parts: usize| -> Result<Vec<u8>, EmitError> {
        let mut h = Vec::with_capacity(ELEMENT_OVERHEAD);
        h.extend_from_slice(b"{\"type\":\"pg_schema\",\"timestamp\":");
        serde_json::to_writer(&mut h, &now.wall.rfc3339()).map_err(|_| EmitError::Serialize)?;
        h.extend_from_slice(b",\"database\":");
        serde_json::to_writer(&mut h, database).map_err(|_| EmitError::Serialize)?;
        h.extend_from_slice(format!(",\"part\":{part},\"parts\":{parts}").as_bytes());
        Ok(h)
    };
    let tables = schema.names.len();
    let (table_ranges, _) = schema.tables.by_table(tables);
    let lists = schema.lists.each_ref().map(|l| l.by_table(tables));
    // Bytes each table adds to an element: its entry, its (comma-separated) list entries,
    // a comma after each list and after the entry.
    let sizes: Vec<usize> = (0..tables)
        .map(|t| {
            let entry = table_ranges.get(t).map_or(0, |(s, e)| e - s);
            let lists: usize = lists
                .iter()
                .map(|(ranges, first)| {
                    let (a, b) = (
                        first.get(t).copied().unwrap_or(0),
                        first.get(t + 1).copied().unwrap_or(0),
                    );
                    let mine = ranges.get(a..b).unwrap_or_default();
                    let bytes: usize = mine.iter().map(|(s, e)| e - s).sum();
                    bytes + mine.len().saturating_sub(1) + 1
                })
                .sum();
            entry + lists + 1
        })
        .collect();
    let limit = out
        .max_element()
        .saturating_sub(ELEMENT_OVERHEAD + database.len());
    let ends = pack(&sizes, limit);
    let parts = ends.len().max(1);
    let mut start = 0;
    let mut result = Ok(());
    for (i, &end) in ends.iter().chain(ends.is_empty().then_some(&0)).enumerate() {
        let (from, to) = (start, end);
        start = end;
        json.clear();
        json.reserve(
            sizes
                .get(from..to)
                .unwrap_or_default()
                .iter()
                .sum::<usize>()
                + 256,
        );
        json.extend_from_slice(&head(i + 1, parts)?);
        json.extend_from_slice(b",\"tables\":[");
        let mut first = true;
        join(
            json,
            schema.tables.json.as_bytes(),
            table_ranges.get(from..to).unwrap_or_default(),
            &mut first,
        );
        for ((l, key), (ranges, firsts)) in ["columns", "constraints", "indexes"]
            .iter()
            .enumerate()
            .zip(&lists)
        {
            json.extend_from_slice(format!("],\"{key}\":[").as_bytes());
            let (a, b) = (
                firsts.get(from).copied().unwrap_or(0),
                firsts.get(to).copied().unwrap_or(0),
            );
            let mut first = true;
            if let Some(list) = schema.lists.get(l) {
                join(
                    json,
                    list.json.as_bytes(),
                    ranges.get(a..b).unwrap_or_default(),
                    &mut first,
                );
            }
        }
        json.extend_from_slice(b"]}");
        if let Err(e) = out.emit_raw(0, json) {
            result = Err(e);
        }
    }
    result
}

impl Collector for PgSchema {
    fn name(&self) -> &'static str {
        "pg_schema"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        // An element's JSON and the pieces it is made of, reused across the databases of this
        // collection (not kept between collections: megabytes held for good would weigh on
        // small hosts).
        let mut json = Vec::new();
        let json = &mut json;
        let mut spare: [List; 4] = Default::default();
        // The results of the database before, for the next one's queries to fill.
        let results = std::cell::RefCell::new(Vec::new());
        each_database(
            &self.pool,
            now,
            out,
            |c, _| {
                c.recycle_all(results.take());
                read(c)
            },
            |out, database, rows| {
                let r = match schema(&rows, std::mem::take(&mut spare)) {
                    Ok(s) => {
                        let r = emit(out, now, database, &s, json);
                        spare = s.into_lists();
                        r
                    }
                    Err(e) => {
                        out.error(&format!("pg_schema/{database}"), e);
                        Ok(())
                    }
                };
                results.replace(rows.into_results());
                r
            },
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::tests_support::OutputHarness;

    #[test]
    fn packing_keeps_order_and_limit() {
        assert_eq!(pack(&[], 10), Vec::<usize>::new());
        assert_eq!(pack(&[4, 4, 4], 10), vec![2, 3]);
        assert_eq!(pack(&[4, 4, 2], 10), vec![3]);
        // An item over the limit stands alone.
        assert_eq!(pack(&[3, 20, 3], 10), vec![1, 2, 3]);
        assert_eq!(pack(&[20], 10), vec![1]);
    }

    /// A schema of tables `names`, each with the columns `column_names`.
    fn schema<'a>(names: &'a [String], column_names: &'a [String]) -> Schema<'a> {
        let mut s = Schema::default();
        for name in names {
            let name = Some(name.as_str());
            let t = s.add_table(&Table {
                schema: Some("public"),
                name,
                kind: Some("table"),
                persistence: Some("permanent"),
                owner: None,
                estimated_rows: None,
                is_partition: Some(false),
                comment: None,
            });
            for (c, column) in column_names.iter().enumerate() {
                let e = Column {
                    schema: Some("public"),
                    table: name,
                    name: Some(column.as_str()),
                    position: Some(c as i64 + 1),
                    data_type: Some("integer"),
                    nullable: Some(true),
                    default: None,
                    identity: None,
                    generated: None,
                };
                s.add(0, t, |o| e.write(o));
            }
        }
        s
    }

    fn written(f: impl FnOnce(&mut json::Buf)) -> String {
        let mut o = json::Buf::default();
        f(&mut o);
        String::from_utf8(o.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn entries_are_written_as_serde_json_writes_them() {
        for (text, n, b) in [
            (Some("plain"), Some(20.0), Some(true)),
            (Some("with \"quotes\"\n and é"), Some(-1.5e-7), Some(false)),
            (None, None, None),
        ] {
            let t = Table {
                schema: text,
                name: text,
                kind: text,
                persistence: text,
                owner: text,
                estimated_rows: n,
                is_partition: b,
                comment: text,
            };
            assert_eq!(written(|o| t.write(o)), serde_json::to_string(&t).unwrap());
            let c = Column {
                schema: text,
                table: text,
                name: text,
                position: n.map(|v| v as i64 - 7),
                data_type: text,
                nullable: b,
                default: text,
                identity: text,
                generated: text,
            };
            assert_eq!(written(|o| c.write(o)), serde_json::to_string(&c).unwrap());
            let k = Constraint {
                schema: text,
                table: text,
                name: text,
                kind: text,
                definition: text,
            };
            assert_eq!(written(|o| k.write(o)), serde_json::to_string(&k).unwrap());
            let i = Index {
                schema: text,
                table: text,
                name: text,
                method: text,
                is_unique: b,
                is_primary: b,
                is_valid: b,
                definition: text,
            };
            assert_eq!(written(|o| i.write(o)), serde_json::to_string(&i).unwrap());
        }
    }

    #[test]
    fn details_are_grouped_by_table_in_written_order() {
        let mut s = Schema::default();
        let names = ["a", "b", "c"].map(|n| n.to_string());
        for n in &names {
            s.add_table(&Table {
                schema: None,
                name: Some(n),
                kind: None,
                persistence: None,
                owner: None,
                estimated_rows: None,
                is_partition: None,
                comment: None,
            });
        }
        // Entries of table 2, then 0, then 2 again: grouped by table, in written order.
        for (t, text) in [(2, "x"), (0, "y"), (2, "z")] {
            s.add(1, t, |o| o.put(text.as_bytes()));
        }
        let (ranges, first) = s.lists[1].by_table(3);
        let texts: Vec<&[u8]> = ranges
            .iter()
            .map(|&(a, b)| &s.lists[1].json.as_bytes()[a..b])
            .collect();
        assert_eq!(texts, [&b"y"[..], b"x", b"z"]);
        assert_eq!(first, [0, 1, 1, 3]);
    }

    #[test]
    fn large_schema_is_split_under_the_element_rule() {
        let mut h = OutputHarness::new();
        let names: Vec<String> = (0..200).map(|i| format!("t{i}")).collect();
        let columns: Vec<String> = (0..20).map(|c| format!("column_{c}")).collect();
        let schema = schema(&names, &columns);
        let now = Now {
            mono_ns: 0,
            wall: crate::util::WallTime::default(),
        };
        let mut out = h.output("pg_schema");
        out.max_element = 64 * 1024;
        emit(&mut out, now, "app", &schema, &mut Vec::new()).unwrap();
        let n = out.emitted();
        assert!(n > 1, "{n} elements");
        let mut tables = 0;
        let mut json = Vec::new();
        let mut parts = Vec::new();
        while {
            json.clear();
            h.buffer.pop_into(&mut json).is_some()
        } {
            assert!(json.len() <= 64 * 1024, "{} bytes", json.len());
            let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
            tables += v["tables"].as_array().unwrap().len();
            assert_eq!(v["columns"].as_array().unwrap().len() % 20, 0);
            parts.push((v["part"].as_u64().unwrap(), v["parts"].as_u64().unwrap()));
        }
        assert_eq!(tables, 200);
        assert_eq!(parts.len(), n);
        assert!(parts.iter().all(|&(_, p)| p == n as u64));
        assert_eq!(parts.last().unwrap().0, n as u64);
    }

    #[test]
    fn empty_schema_is_one_empty_element() {
        let mut h = OutputHarness::new();
        let now = Now {
            mono_ns: 0,
            wall: crate::util::WallTime::default(),
        };
        emit(
            &mut h.output("pg_schema"),
            now,
            "app",
            &Schema::default(),
            &mut Vec::new(),
        )
        .unwrap();
        let v = h.single();
        assert_eq!(
            (v["part"].as_u64(), v["parts"].as_u64()),
            (Some(1), Some(1))
        );
        for k in ["tables", "columns", "constraints", "indexes"] {
            assert_eq!(v[k], serde_json::json!([]), "{k}");
        }
    }
}
