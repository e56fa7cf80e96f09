//! `pg_wait_events` (cluster-wide): one read of `pg_stat_activity` per sample. Same columns on
//! PostgreSQL 12 to 18 (`backend_type` dates from 10) but `query_id`, which PostgreSQL 14
//! added (NULL there when `compute_query_id` is off).

use super::PG14;

/// The sessions doing something now: state `active`, or waiting on a lock; never the
/// collector's own (`own_pids`, the backend pids of its connections, and this session).
/// Query texts cut to `max_chars` characters on the server (the collector then cuts to bytes).
///
/// Sessions that do the same thing come as one row with their number in `sessions`: grouped
/// by everything the collector keys on (database, backend type, wait, and the query id, or
/// the cut text where there is no id), so 100 sessions running one statement are one row, not
/// 100 rows with 100 texts to read. A query id's `query` is one of its sessions' texts.
pub fn sample(version: u32, own_pids: &[i32], max_chars: u32) -> String {
    let mut pids = String::with_capacity(own_pids.len() * 8);
    for (i, pid) in own_pids.iter().enumerate() {
        if i > 0 {
            pids.push(',');
        }
        pids.push_str(&pid.to_string());
    }
    let (query_id, query, by_query) = if version >= PG14 {
        (
            "query_id",
            format!("min(left(query, {max_chars}))"),
            format!("query_id, case when query_id is null then left(query, {max_chars}) end"),
        )
    } else {
        (
            "null::int8 as query_id",
            format!("left(query, {max_chars})"),
            format!("left(query, {max_chars})"),
        )
    };
    format!(
        "\
select datname, backend_type, wait_event_type, wait_event, {query_id},
       {query} as query, count(*) as sessions
from pg_stat_activity
where (state = 'active' or wait_event_type = 'Lock')
  and pid <> pg_backend_pid()
  and pid <> all('{{{pids}}}'::int4[])
group by datname, backend_type, wait_event_type, wait_event, {by_query}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_id_from_14_and_pids_listed() {
        let q13 = sample(130_000, &[], 10);
        assert!(q13.contains("null::int8 as query_id"), "{q13}");
        assert!(q13.contains("all('{}'::int4[])"), "{q13}");
        let q14 = sample(140_000, &[12, 345], 4096);
        assert!(q14.contains(" query_id,"), "{q14}");
        assert!(q14.contains("all('{12,345}'::int4[])"), "{q14}");
        assert!(q14.contains("min(left(query, 4096))"), "{q14}");
        assert!(q14.contains("count(*) as sessions"), "{q14}");
        assert!(
            q13.contains(
                "group by datname, backend_type, wait_event_type, wait_event, left(query, 10)"
            ),
            "{q13}"
        );
    }
}
