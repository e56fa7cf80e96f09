//! Every SQL statement the pg collectors send, in one place: `pg_stats` and `pg_query_stats`
//! here, the types of docs/metrics.md, `pg_replication` … `pg_schema` one file each under `sql/` ([`replication`], [`server`],
//! [`connections`], [`locks`], [`cache`], [`bloat`], [`extensions`], [`schema`]), each
//! naming the PostgreSQL versions its variants cover.
//!
//! All are single read-only statements over statistics views, run over the simple protocol
//! (no parameters: the only values spliced in are integers and query ids we format ourselves).
//! They take no lock stronger than AccessShareLock (the size functions open each relation
//! with it); the session's `lock_timeout` bounds a wait behind an ACCESS EXCLUSIVE lock.
//!
//! Versions: PostgreSQL 12 to 18. `pg_stat_database`, `pg_stat_user_tables` and
//! `pg_stat_user_indexes` have every column used here in all of them (later versions only add
//! columns), so `pg_stats` needs one variant. `pg_stat_statements` changed its columns; the
//! variant is chosen from the extension's version ([`PgssColumns::for_version`]).

pub mod bloat;
pub mod cache;
pub mod connections;
pub mod extensions;
pub mod locks;
pub mod replication;
pub mod schema;
pub mod server;
pub mod wait_events;

/// Version numbers as `server_version_num` gives them (major × 10000).
pub const PG13: u32 = 130_000;
pub const PG14: u32 = 140_000;
pub const PG16: u32 = 160_000;
pub const PG17: u32 = 170_000;
pub const PG18: u32 = 180_000;

/// Databases that `databases = "*"` monitors.
pub const DISCOVER_DATABASES: &str =
    "select datname from pg_database where datallowconn and not datistemplate order by datname";

/// `pg_stats`: the database's own row of `pg_stat_database` and its size.
pub const DATABASE_STATS: &str = "\
select datname, numbackends, xact_commit, xact_rollback, blks_read, blks_hit,
       tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted,
       conflicts, temp_files, temp_bytes, deadlocks, stats_reset,
       pg_database_size(datid) as size_bytes
from pg_stat_database
where datname = current_database()";

/// `pg_stats`: every user table (the relations of `pg_stat_user_tables`), cheap (catalogs
/// only); [`tables`] and [`indexes`] then read them a few at a time, and the collector keeps
/// the largest (their sizes come from the size functions, which stat every file: one
/// statement over every table ran for hundreds of milliseconds on thousands of tables).
pub const USER_TABLES: &str = "\
select c.oid::int8 as oid
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
where c.relkind in ('r', 't', 'm', 'p')
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_toast'
order by c.oid";

/// `pg_stats`: the user tables of `oids` (an array literal, [`super::oid_array`]) with their
/// total size (heap + indexes + TOAST).
pub fn tables(oids: &str) -> String {
    format!(
        "\
select schemaname, relname, n_live_tup, n_dead_tup, n_mod_since_analyze,
       pg_total_relation_size(relid) as size_bytes,
       seq_scan, seq_tup_read, idx_scan, idx_tup_fetch,
       n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd,
       last_vacuum, last_autovacuum, last_analyze, last_autoanalyze,
       vacuum_count, autovacuum_count, analyze_count, autoanalyze_count
from pg_stat_user_tables
where relid = any({oids})"
    )
}

/// `pg_stats`: the user indexes of the tables of `oids`, with their size.
pub fn indexes(oids: &str) -> String {
    format!(
        "\
select schemaname, indexrelname, relname, idx_scan, idx_tup_read, idx_tup_fetch,
       pg_relation_size(indexrelid) as size_bytes
from pg_stat_user_indexes
where relid = any({oids})"
    )
}

/// `pg_query_stats`: the installed version of pg_stat_statements in this database (no row:
/// not installed here).
pub const PGSS_VERSION: &str =
    "select extversion from pg_extension where extname = 'pg_stat_statements'";

/// A pg_stat_statements version, `major.minor` as in `extversion` (`1.10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExtVersion(pub u32, pub u32);

impl ExtVersion {
    pub fn parse(s: &str) -> Option<ExtVersion> {
        let (major, minor) = s.trim().split_once('.').unwrap_or((s.trim(), "0"));
        Some(ExtVersion(major.parse().ok()?, minor.parse().ok()?))
    }
}

/// The column expressions of one pg_stat_statements version, aliased to the names the
/// collector reads (which are the names of the output where they match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgssColumns {
    /// `total_time, mean_time, min_time, max_time, stddev_time`: execution times.
    pub exec: &'static str,
    /// `plan_time`.
    pub plan: &'static str,
    /// `wal_records, wal_fpi, wal_bytes`.
    pub wal: &'static str,
    /// `blk_read_time, blk_write_time`.
    pub blk_time: &'static str,
}

impl PgssColumns {
    /// - before 1.8 (PG 12 and older): `total_time`…; no planning time, no WAL → NULL;
    /// - 1.8 to 1.10 (PG 13 to 16): `total_exec_time`…, `total_plan_time`, `wal_*`;
    /// - 1.11 and later (PG 17+): `blk_read_time`/`blk_write_time` became
    ///   `shared_blk_read_time`/`shared_blk_write_time`.
    pub fn for_version(v: ExtVersion) -> PgssColumns {
        let exec_times = v >= ExtVersion(1, 8);
        PgssColumns {
            exec: if exec_times {
                "total_exec_time as total_time, mean_exec_time as mean_time, \
                 min_exec_time as min_time, max_exec_time as max_time, \
                 stddev_exec_time as stddev_time"
            } else {
                "total_time, mean_time, min_time, max_time, stddev_time"
            },
            plan: if exec_times {
                "total_plan_time as plan_time"
            } else {
                "null::float8 as plan_time"
            },
            wal: if exec_times {
                "wal_records, wal_fpi, wal_bytes::int8 as wal_bytes"
            } else {
                "null::int8 as wal_records, null::int8 as wal_fpi, null::int8 as wal_bytes"
            },
            blk_time: if v >= ExtVersion(1, 11) {
                "shared_blk_read_time as blk_read_time, shared_blk_write_time as blk_write_time"
            } else {
                "blk_read_time, blk_write_time"
            },
        }
    }

    /// The column the top list is ordered by (total execution time).
    fn order_by(&self) -> &'static str {
        if self.exec.starts_with("total_exec_time") {
            "total_exec_time"
        } else {
            "total_time"
        }
    }
}

/// This database's statements without their texts (cheap: `pg_stat_statements(false)` does not
/// read the query text file), the top `limit` by total execution time, each with the name of
/// the role that ran it (`username`; looked up for those `limit` rows only, NULL for a role
/// dropped since).
pub fn query_stats(cols: &PgssColumns, limit: u32) -> String {
    format!(
        "\
select s.*, r.rolname as username
from (select userid, queryid, calls, rows, {exec}, {plan},
       shared_blks_hit, shared_blks_read, shared_blks_dirtied, shared_blks_written,
       local_blks_hit, local_blks_read, local_blks_dirtied, local_blks_written,
       temp_blks_read, temp_blks_written, {blk_time}, {wal}
      from pg_stat_statements(false)
      where dbid = (select oid from pg_database where datname = current_database())
        and queryid is not null
      order by {order} desc
      limit {limit}) s
left join pg_roles r on r.oid = s.userid
order by s.{order_alias} desc",
        exec = cols.exec,
        plan = cols.plan,
        blk_time = cols.blk_time,
        wal = cols.wal,
        order = cols.order_by(),
        order_alias = "total_time",
    )
}

/// Texts of the statements `ids` of this database.
pub fn query_texts(ids: &[i64]) -> String {
    let mut list = String::with_capacity(ids.len() * 21);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(&id.to_string());
    }
    format!(
        "\
select queryid, query
from pg_stat_statements(true)
where dbid = (select oid from pg_database where datname = current_database())
  and queryid = any('{{{list}}}'::int8[])"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(ExtVersion::parse("1.10"), Some(ExtVersion(1, 10)));
        assert_eq!(ExtVersion::parse("1.7"), Some(ExtVersion(1, 7)));
        assert_eq!(ExtVersion::parse("2"), Some(ExtVersion(2, 0)));
        assert_eq!(ExtVersion::parse("x.1"), None);
        assert!(ExtVersion(1, 10) > ExtVersion(1, 9));
    }

    #[test]
    fn version_to_columns() {
        let pg12 = PgssColumns::for_version(ExtVersion(1, 7));
        assert!(pg12.exec.starts_with("total_time"));
        assert!(pg12.plan.starts_with("null"));
        assert!(pg12.wal.starts_with("null"));
        assert_eq!(pg12.blk_time, "blk_read_time, blk_write_time");
        assert!(query_stats(&pg12, 5).contains("order by total_time desc"));

        for v in [ExtVersion(1, 8), ExtVersion(1, 9), ExtVersion(1, 10)] {
            let c = PgssColumns::for_version(v);
            assert!(c.exec.starts_with("total_exec_time as total_time"));
            assert_eq!(c.plan, "total_plan_time as plan_time");
            assert!(c.wal.starts_with("wal_records"));
            assert_eq!(c.blk_time, "blk_read_time, blk_write_time");
            assert!(query_stats(&c, 5).contains("order by total_exec_time desc"));
        }

        for v in [ExtVersion(1, 11), ExtVersion(1, 12)] {
            let c = PgssColumns::for_version(v);
            assert!(
                c.blk_time
                    .starts_with("shared_blk_read_time as blk_read_time")
            );
            assert!(c.exec.starts_with("total_exec_time"));
        }
    }

    #[test]
    fn texts_list_ids() {
        let q = query_texts(&[1, -2, i64::MIN]);
        assert!(
            q.contains("any('{1,-2,-9223372036854775808}'::int8[])"),
            "{q}"
        );
    }
}
