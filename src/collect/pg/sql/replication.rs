//! `pg_replication` (cluster-wide).
//!
//! Primary or standby: [`STATE`] first; on a standby `pg_current_wal_lsn()` raises an error
//! ("recovery is in progress"), so the WAL position every difference is taken against is
//! [`position`]: the current insert position on a primary, the last replayed position on a
//! standby. Standby-only and primary-only parts are then asked only where they exist.

use super::{PG13, PG14, PG16, PG17};

/// Whether the server is a standby (all versions).
pub const STATE: &str = "select pg_is_in_recovery() as is_standby";

/// The WAL position differences are taken against.
pub fn position(is_standby: bool) -> &'static str {
    if is_standby {
        "pg_last_wal_replay_lsn()"
    } else {
        "pg_current_wal_lsn()"
    }
}

/// WAL senders (on a primary, or a cascading standby). PostgreSQL 10 to 18 have the same
/// columns: the `*_lsn` names and the `*_lag` intervals date from 10.
pub fn senders(is_standby: bool) -> String {
    format!(
        "\
select pid, usename, application_name, client_addr::text as client_addr, backend_start,
       state, sync_state,
       sent_lsn::text as sent_lsn, write_lsn::text as write_lsn,
       flush_lsn::text as flush_lsn, replay_lsn::text as replay_lsn,
       (extract(epoch from write_lag) * 1000)::float8 as write_lag_ms,
       (extract(epoch from flush_lag) * 1000)::float8 as flush_lag_ms,
       (extract(epoch from replay_lag) * 1000)::float8 as replay_lag_ms,
       greatest(pg_wal_lsn_diff({pos}, replay_lsn), 0)::int8 as behind_by_bytes
from pg_stat_replication
order by pid",
        pos = position(is_standby)
    )
}

/// Replication slots, with the WAL they hold back.
/// - 12: no `wal_status`, `safe_wal_size` (→ NULL);
/// - 13: `wal_status`, `safe_wal_size`;
/// - 14, 15: + `two_phase`;
/// - 16: + `conflicting`;
/// - 17, 18: + `invalidation_reason`.
pub fn slots(version: u32, is_standby: bool) -> String {
    let wal = if version >= PG13 {
        "wal_status, safe_wal_size"
    } else {
        "null::text as wal_status, null::int8 as safe_wal_size"
    };
    let two_phase = if version >= PG14 {
        "two_phase"
    } else {
        "null::bool as two_phase"
    };
    let conflicting = if version >= PG16 {
        "conflicting"
    } else {
        "null::bool as conflicting"
    };
    let invalidation = if version >= PG17 {
        "invalidation_reason"
    } else {
        "null::text as invalidation_reason"
    };
    format!(
        "\
select slot_name, slot_type, plugin, database, temporary, active, active_pid,
       restart_lsn::text as restart_lsn, confirmed_flush_lsn::text as confirmed_flush_lsn,
       pg_wal_lsn_diff({pos}, restart_lsn)::int8 as bytes_retained,
       {wal}, {two_phase}, {conflicting}, {invalidation}
from pg_replication_slots
order by slot_name",
        pos = position(is_standby)
    )
}

/// The WAL receiver of a standby and its replay position (one row even when no receiver runs).
/// - 12: `received_lsn` (received and flushed) is reported as `flushed_lsn`; no `written_lsn`;
/// - 13 to 18: `written_lsn`, `flushed_lsn`.
pub fn wal_receiver(version: u32) -> String {
    let lsns = if version >= PG13 {
        "w.written_lsn::text as written_lsn, w.flushed_lsn::text as flushed_lsn"
    } else {
        "null::text as written_lsn, w.received_lsn::text as flushed_lsn"
    };
    format!(
        "\
select w.status, w.sender_host, w.sender_port, w.slot_name,
       w.receive_start_lsn::text as receive_start_lsn, {lsns}, w.received_tli,
       w.latest_end_lsn::text as latest_end_lsn, w.latest_end_time,
       w.last_msg_send_time, w.last_msg_receipt_time,
       pg_last_wal_receive_lsn()::text as receive_lsn,
       pg_last_wal_replay_lsn()::text as replay_lsn,
       pg_last_xact_replay_timestamp() as last_replay_time,
       extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 as replay_delay_secs
from (select 1) as one
left join pg_stat_wal_receiver as w on true"
    )
}

/// Transaction ID age of every database (all versions).
pub const WRAPAROUND: &str = "\
select datname, age(datfrozenxid)::int8 as xid_age
from pg_database
order by datname";
