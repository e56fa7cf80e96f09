//! `pg_query_stats` (docs/metrics.md, `pg_query_stats`): per monitored database, its top statements from
//! pg_stat_statements.
//!
//! Each collection, per database:
//! 1. the extension's version (`pg_extension`) picks the column list ([`sql::PgssColumns`]);
//! 2. `pg_stat_statements(false)` (no texts) gives this database's top `limit` by total
//!    execution time;
//! 3. texts are fetched only for query ids not in the [`TextCache`], and truncated to
//!    `max_query_length` bytes on a character boundary.
//!
//! The extension missing from the database, or not loaded (`shared_preload_libraries`, SQLSTATE
//! 55000), or not readable (42501) still gives an element, with `"queries": []` and `"error"`;
//! the reason is logged once per database (again only if it changes or after it went away).
//!
//! pg_stat_statements keeps one row per (user, database, query id): the rows of one statement
//! run by several roles are sent separately, with the same `hash`, each with its `user`.

use super::client::{PgError, Row};
use super::pool::SharedPool;
use super::sql::{self, ExtVersion, PgssColumns};
use super::{CollectionConn, each_database};
use crate::agent_log;
use crate::collect::{CollectError, Collector, Now, Output};
use crate::config;
use crate::util::Rfc3339;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Query texts kept per database (ids).
pub const TEXT_CACHE_ENTRIES: usize = 10_000;
/// Bytes of query text kept per database.
pub const TEXT_CACHE_BYTES: usize = 8 << 20;

/// Texts by query id of one database, bounded by [`TEXT_CACHE_ENTRIES`] and
/// [`TEXT_CACHE_BYTES`]. When an insert would go over either bound, the cache is cleared of
/// everything but the ids of the current top list (clear-when-full: simple, and a statement
/// that drops out of the top list and comes back costs one text fetch).
#[derive(Debug, Default)]
pub struct TextCache {
    texts: HashMap<i64, Option<String>>,
    bytes: usize,
}

impl TextCache {
    pub fn get(&self, id: i64) -> Option<&Option<String>> {
        self.texts.get(&id)
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Stores `text` for `id`; `current` are the ids of this collection, kept when full.
    pub fn insert(&mut self, id: i64, text: Option<String>, current: &[i64]) {
        let len = text.as_ref().map_or(0, String::len);
        if self.texts.len() >= TEXT_CACHE_ENTRIES || self.bytes + len > TEXT_CACHE_BYTES {
            self.texts.retain(|k, _| current.contains(k));
            self.bytes = self.texts.values().flatten().map(String::len).sum();
        }
        if let Some(old) = self.texts.insert(id, text) {
            self.bytes -= old.map_or(0, |s| s.len());
        }
        self.bytes += len;
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub struct PgQueryStats {
    pool: SharedPool,
    limit: u32,
    max_query_length: usize,
    texts: HashMap<String, TextCache>,
    /// The reason logged for each database where the extension is unavailable.
    unavailable: BTreeMap<String, String>,
}

impl PgQueryStats {
    pub fn new(cfg: &config::PgQueryStats, pool: SharedPool) -> PgQueryStats {
        PgQueryStats {
            pool,
            limit: cfg.limit,
            max_query_length: usize::try_from(cfg.max_query_length).unwrap_or(usize::MAX),
            texts: HashMap::new(),
            unavailable: BTreeMap::new(),
        }
    }
}

#[derive(Serialize)]
struct Element<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: Rfc3339,
    database: &'a str,
    queries: Vec<QueryStat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct QueryStat {
    hash: i64,
    /// The role that ran it (pg_stat_statements keeps one row per role, database and query).
    user: Option<String>,
    text: Option<String>,
    calls: Option<i64>,
    total_time: Option<f64>,
    mean_time: Option<f64>,
    min_time: Option<f64>,
    max_time: Option<f64>,
    stddev_time: Option<f64>,
    rows: Option<i64>,
    shared_blks_hit: Option<i64>,
    shared_blks_read: Option<i64>,
    shared_blks_dirtied: Option<i64>,
    shared_blks_written: Option<i64>,
    local_blks_hit: Option<i64>,
    local_blks_read: Option<i64>,
    local_blks_dirtied: Option<i64>,
    local_blks_written: Option<i64>,
    temp_blks_read: Option<i64>,
    temp_blks_written: Option<i64>,
    blk_read_time: Option<f64>,
    blk_write_time: Option<f64>,
    wal_records: Option<i64>,
    wal_fpi: Option<i64>,
    wal_bytes: Option<i64>,
    query_plan_time: Option<f64>,
    query_exec_time: Option<f64>,
}

fn stat(r: &Row<'_>) -> Result<Option<QueryStat>, PgError> {
    let i = |c: &str| r.get_i64(c);
    let f = |c: &str| r.get_f64(c);
    let Some(hash) = i("queryid")? else {
        return Ok(None);
    };
    let total = f("total_time")?;
    Ok(Some(QueryStat {
        hash,
        user: r.get_str("username")?.map(str::to_string),
        text: None,
        calls: i("calls")?,
        total_time: total,
        mean_time: f("mean_time")?,
        min_time: f("min_time")?,
        max_time: f("max_time")?,
        stddev_time: f("stddev_time")?,
        rows: i("rows")?,
        shared_blks_hit: i("shared_blks_hit")?,
        shared_blks_read: i("shared_blks_read")?,
        shared_blks_dirtied: i("shared_blks_dirtied")?,
        shared_blks_written: i("shared_blks_written")?,
        local_blks_hit: i("local_blks_hit")?,
        local_blks_read: i("local_blks_read")?,
        local_blks_dirtied: i("local_blks_dirtied")?,
        local_blks_written: i("local_blks_written")?,
        temp_blks_read: i("temp_blks_read")?,
        temp_blks_written: i("temp_blks_written")?,
        blk_read_time: f("blk_read_time")?,
        blk_write_time: f("blk_write_time")?,
        wal_records: i("wal_records")?,
        wal_fpi: i("wal_fpi")?,
        wal_bytes: i("wal_bytes")?,
        query_plan_time: f("plan_time")?,
        query_exec_time: total,
    }))
}

/// What one database gave: statements, or why the extension cannot be read.
enum Read {
    Queries(Vec<QueryStat>),
    Unavailable(String),
}

/// The reason to show when pg_stat_statements cannot be read, for errors that mean that.
fn unavailable_reason(e: &PgError) -> Option<String> {
    match e.sqlstate() {
        Some("55000") => Some(format!(
            "pg_stat_statements is not loaded: add it to shared_preload_libraries and restart the server ({e})"
        )),
        Some("42501") => Some(format!(
            "pg_stat_statements cannot be read: grant pg_read_all_stats to the collector's user ({e})"
        )),
        // The extension's SQL objects are missing or older than its library.
        Some("42883") | Some("42P01") | Some("42703") => Some(format!(
            "pg_stat_statements cannot be read: {e} (run ALTER EXTENSION pg_stat_statements UPDATE)"
        )),
        _ => None,
    }
}

struct Settings {
    limit: u32,
    max_query_length: usize,
}

fn read(
    c: &mut CollectionConn<'_>,
    database: &str,
    s: &Settings,
    cache: &mut TextCache,
) -> Result<Read, PgError> {
    let rows = c.query(sql::PGSS_VERSION)?;
    let version = match rows.iter().next() {
        None => {
            return Ok(Read::Unavailable(format!(
                "pg_stat_statements is not installed in database {database}: run CREATE EXTENSION pg_stat_statements there"
            )));
        }
        Some(r) => r.get_str("extversion")?.and_then(ExtVersion::parse),
    };
    let Some(version) = version else {
        return Ok(Read::Unavailable(
            "pg_stat_statements has a version this collector cannot read".to_string(),
        ));
    };
    let cols = PgssColumns::for_version(version);
    let rows = match c.query(&sql::query_stats(&cols, s.limit)) {
        Ok(r) => r,
        Err(e) => {
            return match unavailable_reason(&e) {
                Some(why) => Ok(Read::Unavailable(why)),
                None => Err(e),
            };
        }
    };
    let mut queries = Vec::with_capacity(rows.len());
    for r in rows.iter() {
        if let Some(q) = stat(&r)? {
            queries.push(q);
        }
    }
    let ids: Vec<i64> = queries.iter().map(|q| q.hash).collect();
    let missing: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| cache.get(*id).is_none())
        .collect();
    if !missing.is_empty() {
        let rows = c.query(&sql::query_texts(&missing))?;
        for r in rows.iter() {
            let (Some(id), text) = (r.get_i64("queryid")?, r.get_str("query")?) else {
                continue;
            };
            let text = text.map(|t| truncate_utf8(t, s.max_query_length).to_string());
            cache.insert(id, text, &ids);
        }
        // Statements whose text is gone (file reset) are remembered as unknown.
        for id in &missing {
            if cache.get(*id).is_none() {
                cache.insert(*id, None, &ids);
            }
        }
    }
    for q in &mut queries {
        q.text = cache.get(q.hash).cloned().flatten();
    }
    Ok(Read::Queries(queries))
}

impl Collector for PgQueryStats {
    fn name(&self) -> &'static str {
        "pg_query_stats"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        let settings = Settings {
            limit: self.limit,
            max_query_length: self.max_query_length,
        };
        let (texts, unavailable) = (&mut self.texts, &mut self.unavailable);
        let databases = each_database(
            &self.pool,
            now,
            out,
            |c, database| {
                let cache = texts.entry(database.to_string()).or_default();
                read(c, database, &settings, cache)
            },
            |out, database, read| {
                let (queries, error) = match read {
                    Read::Queries(q) => {
                        if unavailable.remove(database).is_some() {
                            agent_log::info(
                                "pg",
                                "pg_stat_statements is readable again",
                                &[("database", database)],
                            );
                        }
                        (q, None)
                    }
                    Read::Unavailable(why) => {
                        if unavailable.get(database) != Some(&why) {
                            agent_log::warn("pg", &why, &[("database", database)]);
                            unavailable.insert(database.to_string(), why.clone());
                        }
                        (Vec::new(), Some(why))
                    }
                };
                out.emit(
                    0,
                    &Element {
                        kind: "pg_query_stats",
                        timestamp: now.wall.rfc3339(),
                        database,
                        queries,
                        error,
                    },
                )
            },
        )?;
        // State of databases no longer monitored is forgotten.
        self.texts.retain(|db, _| databases.contains(db));
        self.unavailable.retain(|db, _| databases.contains(db));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_utf8("select 1", 100), "select 1");
        assert_eq!(truncate_utf8("select 1", 6), "select");
        // "é" is two bytes: cutting inside it drops it.
        assert_eq!(truncate_utf8("café", 4), "caf");
        assert_eq!(truncate_utf8("café", 5), "café");
        assert_eq!(truncate_utf8("日本", 2), "");
        assert_eq!(truncate_utf8("日本", 3), "日");
        assert_eq!(truncate_utf8("🙂x", 3), "");
        assert_eq!(truncate_utf8("", 0), "");
    }

    #[test]
    fn cache_is_bounded_and_keeps_the_current_ids() {
        let mut c = TextCache::default();
        let current: Vec<i64> = vec![1, 2];
        for id in 0..(TEXT_CACHE_ENTRIES as i64 + 5) {
            c.insert(id, Some("x".into()), &current);
        }
        assert!(c.len() <= TEXT_CACHE_ENTRIES);
        assert!(c.get(1).is_some() && c.get(2).is_some());
        let big = "y".repeat(TEXT_CACHE_BYTES / 2 + 1);
        c.insert(-1, Some(big.clone()), &[-1]);
        c.insert(-2, Some(big), &[-2]);
        assert!(c.bytes <= TEXT_CACHE_BYTES);
        assert!(c.get(-2).is_some() && c.get(-1).is_none());
    }

    #[test]
    fn error_element_shape() {
        let e = Element {
            kind: "pg_query_stats",
            timestamp: crate::util::WallTime::default().rfc3339(),
            database: "app",
            queries: vec![],
            error: Some("why".into()),
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["queries"], serde_json::json!([]));
        assert_eq!(v["error"], "why");
    }
}
