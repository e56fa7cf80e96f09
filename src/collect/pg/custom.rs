//! `pg_custom` (docs/metrics.md): the operator's own SQL from `[[custom_query]]`, each query on
//! its own schedule ([`Collector::next_tick`]), in each of its databases, over the pool's
//! read-only sessions, with the extended protocol (`proto::postgres::extended`): one element per
//! query and database, values typed by `proto::postgres::binary`.
//!
//! A failing query (syntax, permission, timeout, a lost connection) is that element's `error`
//! with no rows; it never stops the other queries. Outside `min_version`..`max_version` the
//! query is skipped silently. Queries are never taken from a pulled config (the pull
//! allowlist has no `custom_query`).
//!
//! [`check`] is `check-config`'s look at the SQL: Parse + Describe on a reachable server,
//! nothing executed.

use super::client::{Client, PgError};
use super::pool::{Pool, PoolError, SharedPool, column_strings};
use super::sql;
use crate::collect::{CollectError, Collector, Now, Output};
use crate::config::{Config, CustomQuery, Databases};
use crate::proto::postgres::binary;
use crate::proto::postgres::extended::{self, Column, Executed, PARAMETERS_REFUSED};
use crate::sys::signals::Signals;
use crate::util::Rfc3339;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;
use std::time::Duration;

/// SQLSTATE syntax_error: a syntax error, or several statements in one query.
pub const SYNTAX_ERROR: &str = "42601";

pub struct PgCustom {
    pool: SharedPool,
    queries: Vec<Scheduled>,
}

struct Scheduled {
    query: CustomQuery,
    /// Monotonic ns of its next run (0: at once).
    next_ns: u64,
}

impl PgCustom {
    pub fn new(queries: &[CustomQuery], pool: SharedPool) -> PgCustom {
        PgCustom {
            pool,
            queries: queries
                .iter()
                .map(|q| Scheduled {
                    query: q.clone(),
                    next_ns: 0,
                })
                .collect(),
        }
    }

    /// Runs every query due at `now`, each then rescheduled one interval on (or from `now`
    /// when it fell behind).
    fn run_due(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        for i in 0..self.queries.len() {
            let s = &mut self.queries[i];
            if s.next_ns > now.mono_ns {
                continue;
            }
            let step = u64::try_from(s.query.interval.as_nanos()).unwrap_or(u64::MAX);
            let next = s.next_ns.saturating_add(step);
            s.next_ns = if next > now.mono_ns {
                next
            } else {
                now.mono_ns.saturating_add(step)
            };
            let query = s.query.clone();
            run_query(&self.pool, &query, now, out)?;
        }
        Ok(())
    }
}

impl Collector for PgCustom {
    fn name(&self) -> &'static str {
        "pg_custom"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        self.run_due(now, out)
    }

    fn next_tick(&self) -> Option<u64> {
        self.queries.iter().map(|s| s.next_ns).min()
    }

    fn tick(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        self.run_due(now, out)
    }
}

/// Whether a server of `version` (`server_version_num`) is inside the query's bounds.
pub fn in_bounds(q: &CustomQuery, version: u32) -> bool {
    version >= q.min_version && (q.max_version == 0 || version <= q.max_version)
}

/// What one database gave.
struct Answer {
    columns: Vec<(String, String)>,
    rows: Vec<Vec<Value>>,
    truncated: bool,
}

fn run_query(
    pool: &SharedPool,
    q: &CustomQuery,
    now: Now,
    out: &mut Output<'_>,
) -> Result<(), CollectError> {
    let signals = out.signals();
    let mut pool = pool.borrow_mut();
    let timeout = pool.query_timeout();
    let home = pool.home_database().to_string();
    let databases = match &q.databases {
        None => vec![home.clone()],
        Some(Databases::List(list)) => list.clone(),
        Some(Databases::All) => {
            let found = pool.with_client(&home, now.mono_ns, signals, |c| {
                let rows = c.query(sql::DISCOVER_DATABASES, timeout, signals)?;
                column_strings(&rows, "datname")
            });
            match found {
                Ok(list) => list,
                Err(PoolError::Interrupted) => return Err(CollectError::Interrupted),
                Err(PoolError::Failed(msg)) => {
                    out.error(
                        &format!("pg_custom/{}", q.name),
                        format!("listing databases: {msg}"),
                    );
                    return Ok(());
                }
            }
        }
    };
    for database in &databases {
        let result = pool.with_client(database, now.mono_ns, signals, |c| {
            if !in_bounds(q, c.server_version_num()) {
                return Ok(None);
            }
            // One row more than kept: `truncated` only when a row was really left out.
            let limit = q.max_rows.saturating_add(1);
            let executed = extended::run(c, &q.sql, limit, timeout, signals)?;
            answer(c, executed, q.max_rows, timeout, signals).map(Some)
        });
        let (answer, error) = match result {
            Ok(None) => continue,
            Ok(Some(Ok(a))) => (a, None),
            Ok(Some(Err(decode))) => (Answer::empty(), Some(decode)),
            Err(PoolError::Interrupted) => return Err(CollectError::Interrupted),
            Err(PoolError::Failed(msg)) => (Answer::empty(), Some(msg)),
        };
        if let Some(e) = &error {
            out.error(&format!("pg_custom/{}/{database}", q.name), e);
        }
        emit(out, q, database, now, &answer, error.as_deref());
    }
    Ok(())
}

impl Answer {
    fn empty() -> Answer {
        Answer {
            columns: Vec::new(),
            rows: Vec::new(),
            truncated: false,
        }
    }
}

/// The executed rows as JSON values with their columns' type names (types this build does not
/// know are looked up in `pg_type`). `Ok(Err(reason))`: a value could not be decoded.
fn answer(
    c: &mut Client,
    e: Executed,
    max_rows: u32,
    timeout: Duration,
    signals: Option<&Signals>,
) -> Result<Result<Answer, String>, PgError> {
    let names = type_names(c, &e.columns, timeout, signals)?;
    let keep = usize::try_from(max_rows).unwrap_or(usize::MAX);
    let mut rows = Vec::with_capacity(e.rows.len().min(keep));
    for r in e.rows.iter().take(keep) {
        let mut values = Vec::with_capacity(e.columns.len());
        for (i, col) in e.columns.iter().enumerate() {
            match binary::decode(col.type_oid, col.binary, r.bytes_at(i)) {
                Ok(v) => values.push(v),
                Err(why) => {
                    return Ok(Err(format!(
                        "column {:?} ({}): cannot decode a value: {why}",
                        col.name, names[i]
                    )));
                }
            }
        }
        rows.push(values);
    }
    let columns = e
        .columns
        .iter()
        .zip(names)
        .map(|(c, t)| (c.name.clone(), t))
        .collect();
    Ok(Ok(Answer {
        columns,
        rows,
        truncated: e.rows.len() > keep,
    }))
}

/// The type name of each column: the built-in ones from [`binary::type_name`], the others
/// from `pg_type` in one query (a type dropped meanwhile reads as its OID).
fn type_names(
    c: &mut Client,
    columns: &[Column],
    timeout: Duration,
    signals: Option<&Signals>,
) -> Result<Vec<String>, PgError> {
    let mut unknown: Vec<u32> = columns
        .iter()
        .map(|c| c.type_oid)
        .filter(|&t| binary::type_name(t).is_none())
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    let mut found: Vec<(u32, String)> = Vec::new();
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(u32::to_string).collect();
        let sql = format!(
            "select oid::int8 as oid, typname::text as typname from pg_catalog.pg_type where oid in ({})",
            list.join(",")
        );
        for r in c.query(&sql, timeout, signals)?.iter() {
            if let (Some(oid), Some(name)) = (r.get_i64("oid")?, r.get_str("typname")?) {
                found.push((u32::try_from(oid).unwrap_or(0), name.to_string()));
            }
        }
    }
    Ok(columns
        .iter()
        .map(|c| match binary::type_name(c.type_oid) {
            Some(n) => n.to_string(),
            None => found
                .iter()
                .find(|(o, _)| *o == c.type_oid)
                .map_or_else(|| c.type_oid.to_string(), |(_, n)| n.clone()),
        })
        .collect())
}

#[derive(Serialize)]
struct Element<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: Rfc3339,
    name: &'a str,
    database: &'a str,
    columns: Vec<ColumnOut<'a>>,
    rows: RowsOut<'a>,
    truncated: bool,
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    part: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parts: Option<usize>,
}

#[derive(Serialize)]
struct ColumnOut<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// Rows as objects keyed by column name, in column order.
struct RowsOut<'a> {
    columns: &'a [(String, String)],
    rows: &'a [Vec<Value>],
}

impl Serialize for RowsOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.rows.iter().map(|values| RowOut {
            columns: self.columns,
            values,
        }))
    }
}

struct RowOut<'a> {
    columns: &'a [(String, String)],
    values: &'a [Value],
}

impl Serialize for RowOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.values.len()))?;
        for ((name, _), v) in self.columns.iter().zip(self.values) {
            m.serialize_entry(name, v)?;
        }
        m.end()
    }
}

/// Emits the element of one database, split into parts (`part`, `parts`) when it passes the
/// element size rule. A single row larger than the rule is dropped with its element (counted
/// as any element too large).
fn emit(
    out: &mut Output<'_>,
    q: &CustomQuery,
    database: &str,
    now: Now,
    a: &Answer,
    error: Option<&str>,
) {
    let element = |rows, part| element(q, database, now, a, error, rows, part);
    let whole = size(&element(&a.rows, None));
    let key = format!("pg_custom/{}/{database}", q.name);
    if whole <= out.max_element() || a.rows.len() < 2 {
        if let Err(e) = out.emit(0, &element(&a.rows, None)) {
            out.error(&key, e);
        }
        return;
    }
    // Pack rows greedily under the rule, with room for `"part":N,"parts":N`.
    let base = size(&element(&[], Some((usize::MAX, usize::MAX))));
    let budget = out.max_element().saturating_sub(base);
    let mut chunks: Vec<std::ops::Range<usize>> = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, row) in a.rows.iter().enumerate() {
        let n = size(&RowOut {
            columns: &a.columns,
            values: row,
        }) + 1;
        if i > start && used + n > budget {
            chunks.push(start..i);
            start = i;
            used = 0;
        }
        used += n;
    }
    chunks.push(start..a.rows.len());
    let parts = chunks.len();
    for (i, r) in chunks.into_iter().enumerate() {
        if let Err(e) = out.emit(0, &element(&a.rows[r], Some((i + 1, parts)))) {
            out.error(&key, e);
        }
    }
}

fn element<'a>(
    q: &'a CustomQuery,
    database: &'a str,
    now: Now,
    a: &'a Answer,
    error: Option<&'a str>,
    rows: &'a [Vec<Value>],
    part: Option<(usize, usize)>,
) -> Element<'a> {
    Element {
        kind: "pg_custom",
        timestamp: now.wall.rfc3339(),
        name: &q.name,
        database,
        columns: a
            .columns
            .iter()
            .map(|(name, kind)| ColumnOut { name, kind })
            .collect(),
        rows: RowsOut {
            columns: &a.columns,
            rows,
        },
        truncated: a.truncated,
        error,
        part: part.map(|p| p.0),
        parts: part.map(|p| p.1),
    }
}

/// Serialized size of `v` in bytes.
fn size<T: Serialize>(v: &T) -> usize {
    let mut n = Counter(0);
    let _ = serde_json::to_writer(&mut n, v);
    n.0
}

struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `check-config` found in the custom queries.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// (index of the query, message): the server refused its text (syntax, several
    /// statements, parameters).
    pub errors: Vec<(usize, String)>,
    /// Not checked (no server), or refused for another reason (a table missing in the database
    /// checked, a permission): `run` reports these as the element's `error`.
    pub warnings: Vec<String>,
}

/// Parse + Describe of each query (within its version bounds) on the first of its databases,
/// nothing executed. An unreachable server is a warning, not an error.
pub fn check(config: &Config, signals: Option<&Signals>) -> CheckReport {
    let mut report = CheckReport::default();
    if config.custom_queries.is_empty() {
        return report;
    }
    let mut pool = Pool::new(&config.postgres);
    let timeout = pool.query_timeout();
    let home = pool.home_database().to_string();
    let now = crate::sys::time::monotonic_ns();
    for (i, q) in config.custom_queries.iter().enumerate() {
        let database = match &q.databases {
            Some(Databases::List(list)) => list.first().cloned().unwrap_or(home.clone()),
            _ => home.clone(),
        };
        let result = pool.with_client(&database, now, signals, |c| {
            if !in_bounds(q, c.server_version_num()) {
                return Ok(Ok(false));
            }
            match extended::describe(c, &q.sql, timeout, signals) {
                Ok(_) => Ok(Ok(true)),
                Err(e) if e.is_connection_lost() => Err(e),
                Err(e) => Ok(Err(e)),
            }
        });
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let code = e.sqlstate().unwrap_or("");
                let msg = format!("[[custom_query]] {}: {e}", q.name);
                if code == SYNTAX_ERROR || code == PARAMETERS_REFUSED {
                    report.errors.push((i, msg));
                } else {
                    report
                        .warnings
                        .push(format!("{msg} (in database {database})"));
                }
            }
            Err(e) => {
                report
                    .warnings
                    .push(format!("[[custom_query]] {}: not checked: {e}", q.name));
                if matches!(e, PoolError::Interrupted) {
                    break;
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(min: u32, max: u32) -> CustomQuery {
        CustomQuery {
            name: "q".into(),
            sql: "select 1".into(),
            interval: Duration::from_secs(60),
            databases: None,
            min_version: min,
            max_version: max,
            max_rows: 10,
        }
    }

    #[test]
    fn version_bounds_are_inclusive_and_zero_is_open() {
        assert!(in_bounds(&query(0, 0), 120_000));
        assert!(in_bounds(&query(150_000, 0), 150_000));
        assert!(!in_bounds(&query(150_000, 0), 140_010));
        assert!(in_bounds(&query(0, 150_000), 150_000));
        assert!(!in_bounds(&query(0, 150_000), 160_000));
    }

    #[test]
    fn rows_keep_column_order_and_parts_split_under_the_rule() {
        let mut t = crate::collect::tests_support::OutputHarness::new();
        let mut out = t.output("pg_custom");
        out.max_element = 600;
        let a = Answer {
            columns: vec![("z".into(), "int4".into()), ("a".into(), "text".into())],
            rows: (0..40)
                .map(|i| vec![Value::from(i), Value::from("x".repeat(10))])
                .collect(),
            truncated: true,
        };
        let now = Now {
            mono_ns: 0,
            wall: crate::util::WallTime { secs: 0, nanos: 0 },
        };
        emit(&mut out, &query(0, 0), "app", now, &a, None);
        let n = out.emitted();
        assert!(n > 1, "{n}");
        let mut all = Vec::new();
        let mut json = Vec::new();
        while t.buffer.pop_into(&mut json).is_some() {
            let text = String::from_utf8(json.clone()).unwrap();
            assert!(text.contains("\"rows\":[{\"z\":"), "{text}");
            all.push(serde_json::from_slice::<Value>(&json).unwrap());
            json.clear();
        }
        assert_eq!(all.len(), n);
        let mut rows = 0;
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e["part"], i + 1);
            assert_eq!(e["parts"], n);
            assert_eq!(e["truncated"], true);
            rows += e["rows"].as_array().unwrap().len();
        }
        assert_eq!(rows, 40);
    }
}
