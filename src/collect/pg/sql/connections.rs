//! `pg_connections` (cluster-wide): one read of `pg_stat_activity` per collection, aggregated
//! by the collector. Same columns on PostgreSQL 12 to 18 (`backend_type` dates from 10).

/// Every client backend; the query text (cut to `max_chars` characters; the collector then
/// cuts to bytes) only for sessions idle in a transaction or in one older than
/// `long_secs`.
pub fn activity(long_secs: f64, max_chars: u32) -> String {
    format!(
        "\
select pid, datname, usename, application_name, client_addr::text as client_addr,
       state, wait_event_type, wait_event, xact_start,
       extract(epoch from now() - xact_start)::float8 as xact_secs,
       extract(epoch from now() - state_change)::float8 as state_secs,
       case when state like 'idle in transaction%'
              or now() - xact_start >= make_interval(secs => {long_secs:.3})
            then left(query, {max_chars}) end as query,
       current_setting('max_connections')::int8 as max_connections
from pg_stat_activity
where backend_type = 'client backend'
order by pid"
    )
}
