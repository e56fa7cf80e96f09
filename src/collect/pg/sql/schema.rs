//! `pg_schema` (per database): user tables, views and their columns, constraints and indexes,
//! from the system catalogs. Each query returns the owning relation's oid so the collector
//! groups rows by table. Same catalog columns on PostgreSQL 12 to 18 (`attgenerated` dates
//! from 12; 18 also lists NOT NULL constraints in `pg_constraint`, reported with type
//! `not null`). The `pg_get_*def` functions read the catalogs (syscache) and lock nothing.
//! Columns, constraints and indexes are read for a batch of tables at a time (their oids
//! from [`tables`]), so no statement grows with the schema.

/// User relations: not system schemas, not TOAST, not other sessions' temporary schemas.
const USER_RELATION: &str = "\
c.relkind in ('r', 'p', 'v', 'm', 'f')
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_toast' and n.nspname !~ '^pg_temp_'";

/// Every user relation.
pub fn tables() -> String {
    format!(
        "\
select c.oid::int8 as oid, n.nspname, c.relname,
       case c.relkind when 'r' then 'table' when 'p' then 'partitioned table'
                      when 'v' then 'view' when 'm' then 'materialized view'
                      when 'f' then 'foreign table' end as kind,
       case c.relpersistence when 'p' then 'permanent' when 'u' then 'unlogged'
                             when 't' then 'temporary' end as persistence,
       pg_get_userbyid(c.relowner) as owner, c.reltuples::float8 as estimated_rows,
       c.relispartition, d.description
from pg_class as c
join pg_namespace as n on n.oid = c.relnamespace
left join pg_description as d
       on d.objoid = c.oid and d.classoid = 'pg_class'::regclass and d.objsubid = 0
where {USER_RELATION}
order by n.nspname, c.relname"
    )
}

/// `and <column> = any('{1,2,…}'::oid[])`: the tables of one batch (oids we format).
fn of_tables(column: &str, oids: &[i64]) -> String {
    use std::fmt::Write;
    let mut list = String::with_capacity(oids.len() * 8);
    for (i, oid) in oids.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        // Writing into a String cannot fail.
        let _ = write!(list, "{oid}");
    }
    format!("and {column} = any('{{{list}}}'::oid[])")
}

/// Columns of the tables `oids`.
pub fn columns(oids: &[i64]) -> String {
    let batch = of_tables("a.attrelid", oids);
    format!(
        "\
select a.attrelid::int8 as oid, a.attnum, a.attname,
       format_type(a.atttypid, a.atttypmod) as data_type, not a.attnotnull as nullable,
       pg_get_expr(ad.adbin, ad.adrelid) as default_value,
       case a.attidentity when 'a' then 'always' when 'd' then 'by default' end as identity,
       case a.attgenerated when 's' then 'stored' when 'v' then 'virtual' end as generated
from pg_attribute as a
join pg_class as c on c.oid = a.attrelid
join pg_namespace as n on n.oid = c.relnamespace
left join pg_attrdef as ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
where a.attnum > 0 and not a.attisdropped and {USER_RELATION} {batch}
order by a.attrelid, a.attnum"
    )
}

/// Constraints of the tables `oids`.
pub fn constraints(oids: &[i64]) -> String {
    let batch = of_tables("co.conrelid", oids);
    format!(
        "\
select co.conrelid::int8 as oid, co.conname,
       case co.contype when 'p' then 'primary key' when 'f' then 'foreign key'
                       when 'u' then 'unique' when 'c' then 'check'
                       when 'x' then 'exclusion' when 't' then 'trigger'
                       when 'n' then 'not null' else co.contype::text end as contype,
       pg_get_constraintdef(co.oid) as definition
from pg_constraint as co
join pg_class as c on c.oid = co.conrelid
join pg_namespace as n on n.oid = c.relnamespace
where {USER_RELATION} {batch}
order by co.conrelid, co.conname"
    )
}

/// Indexes of the tables `oids`, with `pg_get_indexdef` (about 15 µs each: the batches keep
/// every statement short on a large schema).
pub fn indexes(oids: &[i64]) -> String {
    let batch = of_tables("i.indrelid", oids);
    format!(
        "\
select i.indrelid::int8 as oid, ic.relname, am.amname, i.indisunique, i.indisprimary,
       i.indisvalid, pg_get_indexdef(i.indexrelid) as definition
from pg_index as i
join pg_class as ic on ic.oid = i.indexrelid
join pg_am as am on am.oid = ic.relam
join pg_class as c on c.oid = i.indrelid
join pg_namespace as n on n.oid = c.relnamespace
where {USER_RELATION} {batch}
order by i.indrelid, ic.relname"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_list_oids() {
        assert!(indexes(&[16384, 16390]).contains("and i.indrelid = any('{16384,16390}'::oid[])"));
        assert!(columns(&[1]).contains("and a.attrelid = any('{1}'::oid[])"));
        assert!(constraints(&[]).contains("and co.conrelid = any('{}'::oid[])"));
    }
}
