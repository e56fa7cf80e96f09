//! `pg_cache` (per database): block hits and reads of user tables and indexes. Same columns
//! on PostgreSQL 12 to 18. A table without indexes or TOAST has NULL counters for them.

/// The `limit` user tables with the most heap blocks accessed.
pub fn tables(limit: u32) -> String {
    format!(
        "\
select schemaname, relname, heap_blks_read, heap_blks_hit, idx_blks_read, idx_blks_hit,
       toast_blks_read, toast_blks_hit, tidx_blks_read, tidx_blks_hit
from pg_statio_user_tables
order by coalesce(heap_blks_read, 0) + coalesce(heap_blks_hit, 0) desc, schemaname, relname
limit {limit}"
    )
}

/// The `limit` user indexes with the most blocks accessed.
pub fn indexes(limit: u32) -> String {
    format!(
        "\
select schemaname, relname, indexrelname, idx_blks_read, idx_blks_hit
from pg_statio_user_indexes
order by coalesce(idx_blks_read, 0) + coalesce(idx_blks_hit, 0) desc, schemaname, indexrelname
limit {limit}"
    )
}
