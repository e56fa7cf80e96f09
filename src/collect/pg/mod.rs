//! The PostgreSQL collectors and what they share: connection settings found the way libpq
//! finds them ([`conninfo`], [`pgpass`]), the connection set ([`pool`]), the SQL ([`sql`]), and
//! one collector per metric type: [`stats`] (`pg_stats`), [`query_stats`]
//! (`pg_query_stats`) and [`log`] (`pg_log`).
//!
//! The wire protocol is not here: [`client`] is `crate::proto::postgres`.

pub mod client;
pub mod conninfo;
pub mod log;
pub mod pgpass;
pub mod pool;
pub mod query_stats;
pub mod sql;
pub mod stats;
