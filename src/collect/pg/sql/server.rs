//! `pg_server` (cluster-wide): identity, checkpointer, background writer, WAL, archiver and
//! key settings.

use super::{PG14, PG17, PG18};

/// Version, uptime, role (all versions).
pub const IDENTITY: &str = "\
select version() as version,
       current_setting('server_version_num')::int8 as version_num,
       extract(epoch from now() - pg_postmaster_start_time())::int8 as uptime_secs,
       pg_is_in_recovery() as is_standby";

/// Checkpoint counters under one set of names.
/// - 12 to 16: `pg_stat_bgwriter` (`checkpoints_timed` …); no restartpoint counters;
/// - 17: `pg_stat_checkpointer` (`num_timed`, `restartpoints_*` …);
/// - 18: + `num_done`, `slru_written`.
pub fn checkpointer(version: u32) -> &'static str {
    if version >= PG18 {
        "\
select num_timed, num_requested, num_done,
       restartpoints_timed, restartpoints_req, restartpoints_done,
       write_time as write_time_ms, sync_time as sync_time_ms,
       buffers_written, slru_written, stats_reset
from pg_stat_checkpointer"
    } else if version >= PG17 {
        "\
select num_timed, num_requested, null::int8 as num_done,
       restartpoints_timed, restartpoints_req, restartpoints_done,
       write_time as write_time_ms, sync_time as sync_time_ms,
       buffers_written, null::int8 as slru_written, stats_reset
from pg_stat_checkpointer"
    } else {
        "\
select checkpoints_timed as num_timed, checkpoints_req as num_requested, null::int8 as num_done,
       null::int8 as restartpoints_timed, null::int8 as restartpoints_req,
       null::int8 as restartpoints_done,
       checkpoint_write_time as write_time_ms, checkpoint_sync_time as sync_time_ms,
       buffers_checkpoint as buffers_written, null::int8 as slru_written, stats_reset
from pg_stat_bgwriter"
    }
}

/// Background writer counters.
/// - 12 to 16: all in `pg_stat_bgwriter`;
/// - 17, 18: `buffers_backend` and `buffers_backend_fsync` left `pg_stat_bgwriter`; their
///   equivalent is the relation writes and fsyncs of every process other than the
///   checkpointer and the background writer in `pg_stat_io` (16+).
pub fn bgwriter(version: u32) -> &'static str {
    if version >= PG17 {
        "\
select b.buffers_clean, b.maxwritten_clean, b.buffers_alloc,
       io.writes as buffers_backend, io.fsyncs as buffers_backend_fsync, b.stats_reset
from pg_stat_bgwriter as b,
     (select sum(writes)::int8 as writes, sum(fsyncs)::int8 as fsyncs
      from pg_stat_io
      where object = 'relation'
        and backend_type not in ('checkpointer', 'background writer')) as io"
    } else {
        "\
select buffers_clean, maxwritten_clean, buffers_alloc,
       buffers_backend, buffers_backend_fsync, stats_reset
from pg_stat_bgwriter"
    }
}

/// WAL activity, `None` before 14 (no `pg_stat_wal`).
/// - 14 to 17: every column in `pg_stat_wal`;
/// - 18: `wal_write`, `wal_sync`, `wal_write_time`, `wal_sync_time` left `pg_stat_wal` for
///   the `object = 'wal'` rows of `pg_stat_io` (`writes`, `fsyncs`, `write_time`,
///   `fsync_time`).
pub fn wal(version: u32) -> Option<&'static str> {
    if version >= PG18 {
        Some(
            "\
select w.wal_records, w.wal_fpi, w.wal_bytes::int8 as wal_bytes, w.wal_buffers_full,
       io.writes as wal_write, io.fsyncs as wal_sync,
       io.write_time as wal_write_time, io.fsync_time as wal_sync_time, w.stats_reset
from pg_stat_wal as w,
     (select sum(writes)::int8 as writes, sum(fsyncs)::int8 as fsyncs,
             sum(write_time)::float8 as write_time, sum(fsync_time)::float8 as fsync_time
      from pg_stat_io
      where object = 'wal') as io",
        )
    } else if version >= PG14 {
        Some(
            "\
select wal_records, wal_fpi, wal_bytes::int8 as wal_bytes, wal_buffers_full,
       wal_write, wal_sync, wal_write_time, wal_sync_time, stats_reset
from pg_stat_wal",
        )
    } else {
        None
    }
}

/// WAL archiving (all versions).
pub const ARCHIVER: &str = "\
select archived_count, last_archived_wal, last_archived_time,
       failed_count, last_failed_wal, last_failed_time, stats_reset
from pg_stat_archiver";

/// The settings reported, with their unit (converted by the collector).
pub const SETTINGS: &str = "\
select name, setting, unit
from pg_settings
where name in ('max_connections', 'superuser_reserved_connections', 'shared_buffers',
               'work_mem', 'maintenance_work_mem', 'effective_cache_size', 'wal_buffers',
               'temp_buffers', 'max_wal_size', 'min_wal_size', 'checkpoint_timeout',
               'wal_level', 'max_wal_senders', 'max_replication_slots',
               'max_worker_processes', 'max_parallel_workers', 'autovacuum',
               'autovacuum_max_workers', 'autovacuum_freeze_max_age', 'archive_mode',
               'synchronous_commit', 'hot_standby', 'track_io_timing')";
