//! `pg_extensions` (per database). Same catalogs on PostgreSQL 12 to 18.

/// Installed extensions with their comment (`COMMENT ON EXTENSION`, set by most extension
/// scripts from the control file).
pub const EXTENSIONS: &str = "\
select e.extname, e.extversion, n.nspname, e.extrelocatable, d.description
from pg_extension as e
join pg_namespace as n on n.oid = e.extnamespace
left join pg_description as d
       on d.objoid = e.oid and d.classoid = 'pg_extension'::regclass and d.objsubid = 0
order by e.extname";
