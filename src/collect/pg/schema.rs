//! `pg_schema` (metrics.md §6): per monitored database, over its own connection, its user
//! tables and views with their columns, constraints and indexes (`definition` from
//! `pg_get_indexdef`).
//!
//! A large schema does not fit one element: the tables are packed, in name order, into as
//! many elements as the element size rule (`max_batch_bytes / 4`) needs, each carrying whole
//! tables (a table with its columns, constraints and indexes is never split) and `part` /
//! `parts` so a reader knows it has them all. A single table larger than the rule is
//! dropped and reported (`pg_schema/<database>`).

use super::client::{PgError, Rows};
use super::pool::SharedPool;
use super::sql::schema as sql;
use super::{Session, each_database};
use crate::collect::{CollectError, Collector, EmitError, JsonWriter, Now, Output};
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

// Entries borrow their text from the query results ([`SchemaRows`]): no string is copied
// between the server's reply and the JSON.

#[derive(Serialize, Debug)]
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

#[derive(Serialize, Debug)]
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

#[derive(Serialize, Debug)]
struct Constraint<'r> {
    schema: Option<&'r str>,
    table: Option<&'r str>,
    name: Option<&'r str>,
    #[serde(rename = "type")]
    kind: Option<&'r str>,
    definition: Option<&'r str>,
}

#[derive(Serialize, Debug)]
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

/// One table with everything that belongs to it.
#[derive(Serialize, Debug)]
struct Bundle<'r> {
    table: Table<'r>,
    columns: Vec<Column<'r>>,
    constraints: Vec<Constraint<'r>>,
    indexes: Vec<Index<'r>>,
}

/// What the server answered: the tables, and per batch of [`TABLES_PER_QUERY`] tables the
/// columns, constraints and indexes.
struct SchemaRows {
    tables: Rows,
    details: Vec<[Rows; 3]>,
}

/// The tables (in name order) with their details. Rows of relations created after the
/// table list (catalog changes between the statements) have no table and are left for the
/// next collection.
fn bundles(rows: &SchemaRows) -> Result<Vec<Bundle<'_>>, PgError> {
    let mut bundles = Vec::with_capacity(rows.tables.len());
    let mut by_oid: HashMap<i64, usize> = HashMap::with_capacity(rows.tables.len());
    for r in rows.tables.iter() {
        let Some(oid) = r.get_i64("oid")? else {
            continue;
        };
        by_oid.insert(oid, bundles.len());
        bundles.push(Bundle {
            table: Table {
                schema: r.get_str("nspname")?,
                name: r.get_str("relname")?,
                kind: r.get_str("kind")?,
                persistence: r.get_str("persistence")?,
                owner: r.get_str("owner")?,
                estimated_rows: r.get_f64("estimated_rows")?,
                is_partition: r.get_bool("relispartition")?,
                comment: r.get_str("description")?,
            },
            columns: Vec::new(),
            constraints: Vec::new(),
            indexes: Vec::new(),
        });
    }
    let owner = |oid: Option<i64>| oid.and_then(|o| by_oid.get(&o).copied());
    for [columns, constraints, indexes] in &rows.details {
        for r in columns.iter() {
            if let Some(b) = owner(r.get_i64("oid")?).and_then(|i| bundles.get_mut(i)) {
                b.columns.push(Column {
                    schema: b.table.schema,
                    table: b.table.name,
                    name: r.get_str("attname")?,
                    position: r.get_i64("attnum")?,
                    data_type: r.get_str("data_type")?,
                    nullable: r.get_bool("nullable")?,
                    default: r.get_str("default_value")?,
                    identity: r.get_str("identity")?,
                    generated: r.get_str("generated")?,
                });
            }
        }
        for r in constraints.iter() {
            if let Some(b) = owner(r.get_i64("oid")?).and_then(|i| bundles.get_mut(i)) {
                b.constraints.push(Constraint {
                    schema: b.table.schema,
                    table: b.table.name,
                    name: r.get_str("conname")?,
                    kind: r.get_str("contype")?,
                    definition: r.get_str("definition")?,
                });
            }
        }
        for r in indexes.iter() {
            if let Some(b) = owner(r.get_i64("oid")?).and_then(|i| bundles.get_mut(i)) {
                b.indexes.push(Index {
                    schema: b.table.schema,
                    table: b.table.name,
                    name: r.get_str("relname")?,
                    method: r.get_str("amname")?,
                    is_unique: r.get_bool("indisunique")?,
                    is_primary: r.get_bool("indisprimary")?,
                    is_valid: r.get_bool("indisvalid")?,
                    definition: r.get_str("definition")?,
                });
            }
        }
    }
    Ok(bundles)
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
fn read(c: &mut Session<'_>) -> Result<SchemaRows, PgError> {
    let tables = c.query(&sql::tables())?;
    let mut oids = Vec::with_capacity(tables.len());
    for r in tables.iter() {
        oids.extend(r.get_i64("oid")?);
    }
    let mut details = Vec::new();
    for batch in oids.chunks(TABLES_PER_QUERY) {
        details.push([
            c.query(&sql::columns(batch))?,
            c.query(&sql::constraints(batch))?,
            c.query(&sql::indexes(batch))?,
        ]);
    }
    Ok(SchemaRows { tables, details })
}

/// One table's part of an element, serialized once: the JSON of its `tables[]` entry and
/// the comma-separated entries it adds to `columns[]`, `constraints[]` and `indexes[]`.
struct Fragments {
    table: Vec<u8>,
    lists: [Vec<u8>; 3],
}

impl Fragments {
    fn new(b: &Bundle<'_>) -> Result<Fragments, EmitError> {
        fn list<T: Serialize>(items: &[T]) -> Result<Vec<u8>, EmitError> {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(JsonWriter(&mut out), item)
                    .map_err(|_| EmitError::Serialize)?;
            }
            Ok(out)
        }
        Ok(Fragments {
            table: {
                let mut t = Vec::new();
                serde_json::to_writer(JsonWriter(&mut t), &b.table)
                    .map_err(|_| EmitError::Serialize)?;
                t
            },
            lists: [list(&b.columns)?, list(&b.constraints)?, list(&b.indexes)?],
        })
    }

    /// Bytes it adds to an element (with the separating commas).
    fn len(&self) -> usize {
        self.table.len() + self.lists.iter().map(|l| l.len() + 1).sum::<usize>() + 1
    }
}

/// Emits `bundles` as elements that each respect the element size rule. Each table is
/// serialized once; elements are assembled from those pieces.
fn emit(
    out: &mut Output<'_>,
    now: Now,
    database: &str,
    bundles: &[Bundle<'_>],
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
    let fragments = bundles
        .iter()
        .map(Fragments::new)
        .collect::<Result<Vec<_>, _>>()?;
    let limit = out
        .max_element()
        .saturating_sub(ELEMENT_OVERHEAD + database.len());
    let sizes: Vec<usize> = fragments.iter().map(Fragments::len).collect();
    let ends = pack(&sizes, limit);
    let parts = ends.len().max(1);
    let mut start = 0;
    let mut result = Ok(());
    let mut json = Vec::new();
    for (i, &end) in ends.iter().chain(ends.is_empty().then_some(&0)).enumerate() {
        let group = fragments.get(start..end).unwrap_or_default();
        start = end;
        json.clear();
        json.extend_from_slice(&head(i + 1, parts)?);
        json.extend_from_slice(b",\"tables\":[");
        for (k, f) in group.iter().enumerate() {
            if k > 0 {
                json.push(b',');
            }
            json.extend_from_slice(&f.table);
        }
        for (l, key) in ["columns", "constraints", "indexes"].iter().enumerate() {
            json.extend_from_slice(format!("],\"{key}\":[").as_bytes());
            let mut first = true;
            for f in group.iter().filter(|f| !f.lists[l].is_empty()) {
                if !first {
                    json.push(b',');
                }
                first = false;
                json.extend_from_slice(&f.lists[l]);
            }
        }
        json.extend_from_slice(b"]}");
        if let Err(e) = out.emit_raw(0, &json) {
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
        each_database(
            &self.pool,
            now,
            out,
            |c, _| read(c),
            |out, database, rows| match bundles(&rows) {
                Ok(b) => emit(out, now, database, &b),
                Err(e) => {
                    out.error(&format!("pg_schema/{database}"), e);
                    Ok(())
                }
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

    fn bundle<'a>(name: &'a str, column_names: &'a [String]) -> Bundle<'a> {
        let name = Some(name);
        Bundle {
            table: Table {
                schema: Some("public"),
                name,
                kind: Some("table"),
                persistence: Some("permanent"),
                owner: None,
                estimated_rows: None,
                is_partition: Some(false),
                comment: None,
            },
            columns: column_names
                .iter()
                .enumerate()
                .map(|(c, column)| Column {
                    schema: Some("public"),
                    table: name,
                    name: Some(column.as_str()),
                    position: Some(c as i64 + 1),
                    data_type: Some("integer"),
                    nullable: Some(true),
                    default: None,
                    identity: None,
                    generated: None,
                })
                .collect(),
            constraints: vec![],
            indexes: vec![],
        }
    }

    #[test]
    fn large_schema_is_split_under_the_element_rule() {
        let mut h = OutputHarness::new();
        let names: Vec<String> = (0..200).map(|i| format!("t{i}")).collect();
        let columns: Vec<String> = (0..20).map(|c| format!("column_{c}")).collect();
        let bundles: Vec<Bundle<'_>> = names.iter().map(|n| bundle(n, &columns)).collect();
        let now = Now {
            mono_ns: 0,
            wall: crate::util::WallTime::default(),
        };
        let mut out = h.output("pg_schema");
        out.max_element = 64 * 1024;
        emit(&mut out, now, "app", &bundles).unwrap();
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
        emit(&mut h.output("pg_schema"), now, "app", &[]).unwrap();
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
