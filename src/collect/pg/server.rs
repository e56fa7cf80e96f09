//! `pg_server` (docs/metrics.md, `pg_replication` … `pg_schema`): one cluster-wide element over the
//! `[postgres] database` connection: version and uptime, role, checkpointer and background writer
//! counters, WAL activity (PG 14+), archiver, and key settings converted to bytes and seconds with
//! `pg_settings.unit`.
//!
//! Counters keep one set of names on every version ([`sql::checkpointer`] maps PG 12–16's
//! `pg_stat_bgwriter` columns onto PG 17's `pg_stat_checkpointer` names); a counter the
//! version does not have is `null` (`restartpoints_*` before 17, `num_done` before 18, the
//! whole `wal` object before 14).

use super::client::{PgError, Row, Rows};
use super::pool::SharedPool;
use super::sql::server as sql;
use super::{CollectionConn, cluster_wide, emit_cluster, text, time};
use crate::collect::{CollectError, Collector, Now, Output};
use serde::Serialize;
use std::collections::HashMap;

pub struct PgServer {
    pool: SharedPool,
}

impl PgServer {
    pub fn new(pool: SharedPool) -> PgServer {
        PgServer { pool }
    }
}

#[derive(Serialize, Default)]
struct Server {
    version: Option<String>,
    version_num: Option<i64>,
    uptime_secs: Option<i64>,
    is_standby: Option<bool>,
    checkpointer: Option<Checkpointer>,
    bgwriter: Option<Bgwriter>,
    /// PG 14+.
    wal: Option<Wal>,
    archiver: Option<Archiver>,
    #[serde(flatten)]
    settings: Settings,
}

#[derive(Serialize)]
struct Checkpointer {
    num_timed: Option<i64>,
    num_requested: Option<i64>,
    /// PG 18+.
    num_done: Option<i64>,
    /// PG 17+.
    restartpoints_timed: Option<i64>,
    restartpoints_req: Option<i64>,
    restartpoints_done: Option<i64>,
    write_time_ms: Option<f64>,
    sync_time_ms: Option<f64>,
    buffers_written: Option<i64>,
    /// PG 18+.
    slru_written: Option<i64>,
    stats_reset: Option<String>,
}

#[derive(Serialize)]
struct Bgwriter {
    buffers_clean: Option<i64>,
    maxwritten_clean: Option<i64>,
    buffers_alloc: Option<i64>,
    /// From `pg_stat_io` on PG 17+.
    buffers_backend: Option<i64>,
    buffers_backend_fsync: Option<i64>,
    stats_reset: Option<String>,
}

#[derive(Serialize)]
struct Wal {
    wal_records: Option<i64>,
    wal_fpi: Option<i64>,
    wal_bytes: Option<i64>,
    wal_buffers_full: Option<i64>,
    /// From `pg_stat_io` on PG 18+.
    wal_write: Option<i64>,
    wal_sync: Option<i64>,
    wal_write_time: Option<f64>,
    wal_sync_time: Option<f64>,
    stats_reset: Option<String>,
}

#[derive(Serialize)]
struct Archiver {
    archived_count: Option<i64>,
    last_archived_wal: Option<String>,
    last_archived_time: Option<String>,
    failed_count: Option<i64>,
    last_failed_wal: Option<String>,
    last_failed_time: Option<String>,
    stats_reset: Option<String>,
}

#[derive(Serialize, Default, Debug, PartialEq)]
struct Settings {
    max_connections: Option<i64>,
    superuser_reserved_connections: Option<i64>,
    shared_buffers_bytes: Option<i64>,
    work_mem_bytes: Option<i64>,
    maintenance_work_mem_bytes: Option<i64>,
    effective_cache_size_bytes: Option<i64>,
    wal_buffers_bytes: Option<i64>,
    temp_buffers_bytes: Option<i64>,
    max_wal_size_bytes: Option<i64>,
    min_wal_size_bytes: Option<i64>,
    checkpoint_timeout_secs: Option<f64>,
    wal_level: Option<String>,
    max_wal_senders: Option<i64>,
    max_replication_slots: Option<i64>,
    max_worker_processes: Option<i64>,
    max_parallel_workers: Option<i64>,
    autovacuum: Option<bool>,
    autovacuum_max_workers: Option<i64>,
    autovacuum_freeze_max_age: Option<i64>,
    archive_mode: Option<String>,
    synchronous_commit: Option<String>,
    hot_standby: Option<bool>,
    track_io_timing: Option<bool>,
}

/// Bytes per unit of a memory setting (`pg_settings.unit`: `B`, `kB`, `8kB`, `MB`, …).
pub fn unit_bytes(unit: &str) -> Option<i64> {
    let digits = unit.bytes().take_while(u8::is_ascii_digit).count();
    let (count, name) = unit.split_at(digits);
    // "0kB" is no unit (a hostile or broken server): None, not a zero factor.
    let count: i64 = if count.is_empty() {
        1
    } else {
        count.parse().ok().filter(|c| *c > 0)?
    };
    let size = match name {
        "B" => 1,
        "kB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return None,
    };
    count.checked_mul(size)
}

/// Seconds per unit of a time setting (`ms`, `s`, `min`, `h`, `d`).
pub fn unit_secs(unit: &str) -> Option<f64> {
    Some(match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return None,
    })
}

/// A memory setting in bytes (`-1`, "automatic", and unknown units → `None`).
pub fn setting_bytes(setting: &str, unit: Option<&str>) -> Option<i64> {
    let n: i64 = setting.parse().ok().filter(|n| *n >= 0)?;
    n.checked_mul(unit_bytes(unit?)?)
}

/// A time setting in seconds (`-1` = off, and unknown units → `None`).
pub fn setting_secs(setting: &str, unit: Option<&str>) -> Option<f64> {
    let n: f64 = setting.parse().ok().filter(|n: &f64| *n >= 0.0)?;
    Some(n * unit_secs(unit?)?)
}

fn settings(rows: &Rows) -> Result<Settings, PgError> {
    let mut by_name: HashMap<&str, (&str, Option<&str>)> = HashMap::new();
    for r in rows.iter() {
        if let (Some(name), Some(setting)) = (r.get_str("name")?, r.get_str("setting")?) {
            by_name.insert(name, (setting, r.get_str("unit")?));
        }
    }
    let raw = |n: &str| by_name.get(n).copied();
    let int = |n: &str| raw(n).and_then(|(s, _)| s.parse().ok());
    let bytes = |n: &str| raw(n).and_then(|(s, u)| setting_bytes(s, u));
    let string = |n: &str| raw(n).map(|(s, _)| s.to_string());
    let boolean = |n: &str| {
        raw(n).and_then(|(s, _)| match s {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        })
    };
    Ok(Settings {
        max_connections: int("max_connections"),
        superuser_reserved_connections: int("superuser_reserved_connections"),
        shared_buffers_bytes: bytes("shared_buffers"),
        work_mem_bytes: bytes("work_mem"),
        maintenance_work_mem_bytes: bytes("maintenance_work_mem"),
        effective_cache_size_bytes: bytes("effective_cache_size"),
        wal_buffers_bytes: bytes("wal_buffers"),
        temp_buffers_bytes: bytes("temp_buffers"),
        max_wal_size_bytes: bytes("max_wal_size"),
        min_wal_size_bytes: bytes("min_wal_size"),
        checkpoint_timeout_secs: raw("checkpoint_timeout").and_then(|(s, u)| setting_secs(s, u)),
        wal_level: string("wal_level"),
        max_wal_senders: int("max_wal_senders"),
        max_replication_slots: int("max_replication_slots"),
        max_worker_processes: int("max_worker_processes"),
        max_parallel_workers: int("max_parallel_workers"),
        autovacuum: boolean("autovacuum"),
        autovacuum_max_workers: int("autovacuum_max_workers"),
        autovacuum_freeze_max_age: int("autovacuum_freeze_max_age"),
        archive_mode: string("archive_mode"),
        synchronous_commit: string("synchronous_commit"),
        hot_standby: boolean("hot_standby"),
        track_io_timing: boolean("track_io_timing"),
    })
}

/// The single row of a one-row view (`None` if it gave none).
fn one<T>(
    rows: &Rows,
    f: impl FnOnce(&Row<'_>) -> Result<T, PgError>,
) -> Result<Option<T>, PgError> {
    rows.iter().next().map(|r| f(&r)).transpose()
}

fn read(c: &mut CollectionConn<'_>) -> Result<Server, PgError> {
    let version = c.version();
    let mut s = Server::default();
    let rows = c.query(sql::IDENTITY)?;
    if let Some(r) = rows.iter().next() {
        s.version = text(&r, "version")?;
        s.version_num = r.get_i64("version_num")?;
        s.uptime_secs = r.get_i64("uptime_secs")?;
        s.is_standby = r.get_bool("is_standby")?;
    }
    s.checkpointer = one(&c.query(sql::checkpointer(version))?, |r| {
        Ok(Checkpointer {
            num_timed: r.get_i64("num_timed")?,
            num_requested: r.get_i64("num_requested")?,
            num_done: r.get_i64("num_done")?,
            restartpoints_timed: r.get_i64("restartpoints_timed")?,
            restartpoints_req: r.get_i64("restartpoints_req")?,
            restartpoints_done: r.get_i64("restartpoints_done")?,
            write_time_ms: r.get_f64("write_time_ms")?,
            sync_time_ms: r.get_f64("sync_time_ms")?,
            buffers_written: r.get_i64("buffers_written")?,
            slru_written: r.get_i64("slru_written")?,
            stats_reset: time(r, "stats_reset")?,
        })
    })?;
    s.bgwriter = one(&c.query(sql::bgwriter(version))?, |r| {
        Ok(Bgwriter {
            buffers_clean: r.get_i64("buffers_clean")?,
            maxwritten_clean: r.get_i64("maxwritten_clean")?,
            buffers_alloc: r.get_i64("buffers_alloc")?,
            buffers_backend: r.get_i64("buffers_backend")?,
            buffers_backend_fsync: r.get_i64("buffers_backend_fsync")?,
            stats_reset: time(r, "stats_reset")?,
        })
    })?;
    if let Some(q) = sql::wal(version) {
        s.wal = one(&c.query(q)?, |r| {
            Ok(Wal {
                wal_records: r.get_i64("wal_records")?,
                wal_fpi: r.get_i64("wal_fpi")?,
                wal_bytes: r.get_i64("wal_bytes")?,
                wal_buffers_full: r.get_i64("wal_buffers_full")?,
                wal_write: r.get_i64("wal_write")?,
                wal_sync: r.get_i64("wal_sync")?,
                wal_write_time: r.get_f64("wal_write_time")?,
                wal_sync_time: r.get_f64("wal_sync_time")?,
                stats_reset: time(r, "stats_reset")?,
            })
        })?;
    }
    s.archiver = one(&c.query(sql::ARCHIVER)?, |r| {
        Ok(Archiver {
            archived_count: r.get_i64("archived_count")?,
            last_archived_wal: text(r, "last_archived_wal")?,
            last_archived_time: time(r, "last_archived_time")?,
            failed_count: r.get_i64("failed_count")?,
            last_failed_wal: text(r, "last_failed_wal")?,
            last_failed_time: time(r, "last_failed_time")?,
            stats_reset: time(r, "stats_reset")?,
        })
    })?;
    s.settings = settings(&c.query(sql::SETTINGS)?)?;
    Ok(s)
}

impl Collector for PgServer {
    fn name(&self) -> &'static str {
        "pg_server"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        let body = cluster_wide(&self.pool, now, out, read)?;
        emit_cluster(out, "pg_server", now, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::pg::ClusterElement;

    #[test]
    fn units_convert() {
        assert_eq!(setting_bytes("16384", Some("8kB")), Some(128 << 20));
        assert_eq!(setting_bytes("4096", Some("kB")), Some(4 << 20));
        assert_eq!(setting_bytes("1024", Some("MB")), Some(1 << 30));
        assert_eq!(setting_bytes("100", Some("B")), Some(100));
        assert_eq!(setting_bytes("-1", Some("8kB")), None);
        assert_eq!(setting_bytes("10", None), None);
        assert_eq!(setting_bytes("10", Some("furlong")), None);
        assert_eq!(
            setting_bytes("10", Some("0kB")),
            None,
            "a zero-sized unit (found by fuzzing)"
        );
        assert_eq!(setting_bytes("9223372036854775807", Some("kB")), None);
        assert_eq!(setting_secs("300", Some("s")), Some(300.0));
        assert_eq!(setting_secs("5", Some("min")), Some(300.0));
        assert_eq!(setting_secs("200", Some("ms")), Some(0.2));
        assert_eq!(setting_secs("-1", Some("ms")), None);
    }

    #[test]
    fn element_has_every_field() {
        let e = ClusterElement {
            kind: "pg_server",
            timestamp: crate::util::WallTime::default().rfc3339(),
            body: &Server::default(),
        };
        let v = serde_json::to_value(&e).unwrap();
        for k in [
            "version",
            "version_num",
            "uptime_secs",
            "is_standby",
            "checkpointer",
            "bgwriter",
            "wal",
            "archiver",
            "max_connections",
            "shared_buffers_bytes",
            "work_mem_bytes",
        ] {
            assert!(v.get(k).is_some(), "{k} missing");
        }
    }
}
