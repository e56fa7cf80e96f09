//! `pg_locks` (cluster-wide): one read of `pg_locks` and one of `pg_stat_activity` per
//! collection. Same columns on PostgreSQL 12 to 18 (`pg_blocking_pids` dates from 9.6,
//! `materialized` from 12).

/// Locks by type, mode and whether granted (the collector's own are left out).
pub const SUMMARY: &str = "\
select locktype, mode, granted, count(*)::int8 as count
from pg_locks
where pid is distinct from pg_backend_pid()
group by locktype, mode, granted
order by locktype, mode, granted";

/// One row per (blocked, blocking) pair, from `pg_blocking_pids()` of each session waiting
/// on a heavyweight lock. `pg_stat_activity` is read once (the materialized CTE) and joined
/// with itself for the blocker's query; texts are cut to `max_chars` characters. The wait is
/// counted from the blocked statement's start (`state_change` of an active session).
pub fn blocking(max_chars: u32) -> String {
    format!(
        "\
with activity as materialized (
    select pid, query, state_change, wait_event_type from pg_stat_activity
), waiting as (
    select * from activity where wait_event_type = 'Lock'
)
select w.pid as blocked_pid, blocker.pid as blocking_pid,
       left(w.query, {max_chars}) as blocked_query, left(b.query, {max_chars}) as blocking_query,
       extract(epoch from now() - w.state_change)::float8 as wait_seconds
from waiting as w
cross join lateral unnest(pg_blocking_pids(w.pid)) as blocker(pid)
left join activity as b on b.pid = blocker.pid
order by w.pid, blocker.pid"
    )
}
