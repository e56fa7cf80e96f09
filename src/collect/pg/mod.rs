//! The PostgreSQL collectors and what they share: connection settings found the way libpq
//! finds them ([`conninfo`], [`pgpass`]), the connection set ([`pool`]), the SQL ([`sql`], one
//! file per metric type under `sql/`), and one collector per metric type: [`stats`]
//! (`pg_stats`), [`query_stats`] (`pg_query_stats`), [`wait_events`] (`pg_wait_events`, sampled), and the types of docs/metrics.md, "PostgreSQL types
//! beyond the seed": [`replication`], [`server`], [`connections`], [`locks`] (cluster-wide, over
//! the `[postgres] database` connection) and [`cache`], [`bloat`], [`extensions`], [`schema`]
//! (one element per monitored database, over its own connection), and [`pg_log`] (the `pg_log`
//! collector).
//!
//! The loops every collector needs live here once: [`cluster_wide`] and [`each_database`],
//! with [`CollectionConn`], a connection plus the query bound and the stop signals.
//!
//! The wire protocol is not here: [`client`] is `crate::proto::postgres`.

pub mod bloat;
pub mod cache;
pub mod client;
pub mod connections;
pub mod conninfo;
pub mod custom;
pub mod extensions;
pub mod locks;
pub mod pg_log;
pub mod pgpass;
pub mod pool;
pub mod query_stats;
pub mod replication;
pub mod schema;
pub mod server;
pub mod sql;
pub mod stats;
pub mod wait_events;

use crate::collect::{CollectError, EmitError, Now, Output};
use crate::sys::signals::Signals;
use client::{Client, PgError, Row, Rows};
use pool::{PoolError, SharedPool};
use std::time::Duration;

/// One connection during one collection: queries are bounded by the pool's query timeout
/// and end early on a stop signal. (Not the protocol state machine, which is
/// `proto::postgres::session::Session`.)
pub struct CollectionConn<'a> {
    client: &'a mut Client,
    timeout: Duration,
    signals: Option<&'a Signals>,
}

impl CollectionConn<'_> {
    pub fn query(&mut self, sql: &str) -> Result<Rows, PgError> {
        self.client.query(sql, self.timeout, self.signals)
    }

    /// `statements` (each one statement, without its `;`) in one round trip, their results
    /// apart ([`Client::query_split`]: one implicit transaction; each statement bounded by
    /// `statement_timeout` on the server).
    pub fn query_split<const N: usize>(
        &mut self,
        statements: [&str; N],
    ) -> Result<[Rows; N], PgError> {
        let sql = statements.join(";\n");
        let all = self
            .client
            .query_split(&sql, N, self.timeout, self.signals)?;
        <[Rows; N]>::try_from(all)
            .map_err(|v| PgError::Protocol(format!("{} results for {N} statements", v.len())))
    }

    /// Sends `sql` without waiting for its reply, which [`CollectionConn::take_sent`] reads
    /// later, usually without waiting (it came while the loop slept).
    pub fn send(&mut self, sql: &str) -> Result<(), PgError> {
        self.client.send_query(sql, self.timeout, self.signals)
    }

    /// The result of the last [`CollectionConn::send`] on this connection (`None`: nothing
    /// was sent on it, e.g. it is a new connection).
    pub fn take_sent(&mut self) -> Option<Result<Rows, PgError>> {
        self.client.take_sent(self.timeout, self.signals)
    }

    /// Hands a result back so a next one reuses its buffers.
    pub fn recycle(&mut self, rows: Rows) {
        self.client.recycle(rows);
    }

    /// [`CollectionConn::recycle`] of every result of `rows`, the last first (so the next
    /// queries fill them in the order they came).
    pub fn recycle_all(&mut self, rows: Vec<Rows>) {
        for r in rows.into_iter().rev() {
            self.client.recycle(r);
        }
    }

    /// `server_version_num` of the server (e.g. 170004; 0 when unknown).
    pub fn version(&self) -> u32 {
        self.client.server_version_num()
    }
}

fn collect_error(e: PoolError) -> CollectError {
    match e {
        PoolError::Interrupted => CollectError::Interrupted,
        other => CollectError::Failed(other.to_string()),
    }
}

/// Runs `read` over the `[postgres] database` connection (cluster-wide types). A failure
/// fails the collection (it names host, user and database).
pub fn cluster_wide<T>(
    pool: &SharedPool,
    now: Now,
    out: &Output<'_>,
    read: impl FnOnce(&mut CollectionConn<'_>) -> Result<T, PgError>,
) -> Result<T, CollectError> {
    let signals = out.signals();
    let mut pool = pool.borrow_mut();
    let timeout = pool.query_timeout_within(out.interval());
    let home = pool.home_database().to_string();
    pool.with_client(&home, now.mono_ns, signals, |client| {
        read(&mut CollectionConn {
            client,
            timeout,
            signals,
        })
    })
    .map_err(collect_error)
}

/// A cluster-wide element: `type`, `timestamp` and the fields of `body`.
#[derive(serde::Serialize)]
pub struct ClusterElement<'a, T> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub timestamp: crate::util::Rfc3339,
    #[serde(flatten)]
    pub body: &'a T,
}

/// Emits the one element of a cluster-wide type.
pub fn emit_cluster<T: serde::Serialize>(
    out: &mut Output<'_>,
    kind: &'static str,
    now: Now,
    body: &T,
) -> Result<(), CollectError> {
    let element = ClusterElement {
        kind,
        timestamp: now.wall.rfc3339(),
        body,
    };
    out.emit(0, &element)
        .map_err(|e| CollectError::Failed(e.to_string()))
}

/// For each monitored database, over its own connection: `read`, then `emit` what it read.
/// A database whose read or element fails is recorded as `<plugin>/<database>` and the others
/// are still collected; a stop signal ends the collection. Returns the databases of this
/// collection (for callers that keep per-database state).
///
/// The results `read` hands back ([`CollectionConn::recycle`]) go on to the next database's
/// connection, and are dropped when the collection ends (a collection over many databases
/// fills the same buffers; none is held between collections).
pub fn each_database<T>(
    pool: &SharedPool,
    now: Now,
    out: &mut Output<'_>,
    mut read: impl FnMut(&mut CollectionConn<'_>, &str) -> Result<T, PgError>,
    mut emit: impl FnMut(&mut Output<'_>, &str, T) -> Result<(), EmitError>,
) -> Result<Vec<String>, CollectError> {
    let signals = out.signals();
    let plugin = out.plugin();
    let mut pool = pool.borrow_mut();
    let timeout = pool.query_timeout_within(out.interval());
    let databases = pool
        .databases(now.mono_ns, timeout, signals)
        .map_err(|e| CollectError::Failed(format!("listing databases: {e}")))?;
    // Databases with an open connection first: with more databases than connections, going
    // through them in the same order as the plugin before would reopen every one (the
    // least-recently-used connection is always the next one needed).
    let mut order: Vec<&str> = databases.iter().map(String::as_str).collect();
    order.sort_by_key(|d| !pool.is_open(d));
    let mut spares = Vec::new();
    for database in order {
        let result = pool.with_client(database, now.mono_ns, signals, |client| {
            for rows in spares.drain(..) {
                client.recycle(rows);
            }
            let r = read(
                &mut CollectionConn {
                    client,
                    timeout,
                    signals,
                },
                database,
            );
            spares = client.take_spares();
            r
        });
        match result {
            Ok(value) => {
                if let Err(e) = emit(out, database, value) {
                    out.error(&format!("{plugin}/{database}"), e);
                }
            }
            Err(PoolError::Interrupted) => return Err(collect_error(PoolError::Interrupted)),
            Err(PoolError::Failed(msg)) => out.error(&format!("{plugin}/{database}"), msg),
        }
    }
    Ok(databases)
}

/// Most tables one `pg_stats` statement reads: the size functions stat every file of each
/// table (about 0.13 ms a table at 1 000 tables), so the collector first lists the tables
/// (cheap, `pg_class` only), then reads them this many at a time, and no statement runs long
/// on a database of thousands of tables (docs/performance.md, "At scale").
pub const RELATIONS_PER_STATEMENT: usize = 100;

/// The `oid` column (int8) of every row of `sql`, in order.
pub fn oids(c: &mut CollectionConn<'_>, sql: &str) -> Result<Vec<u32>, PgError> {
    let rows = c.query(sql)?;
    let col = rows.column_index("oid")?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.iter() {
        if let Some(oid) = r.i64_at(col)? {
            out.push(u32::try_from(oid).map_err(|_| PgError::Decode {
                column: "oid".to_string(),
                value: oid.to_string(),
                expected: "an oid",
            })?);
        }
    }
    c.recycle(rows);
    Ok(out)
}

/// `oids` as an SQL array literal, `'{16384,16390}'::oid[]`.
pub fn oid_array(oids: &[u32]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(12 + oids.len() * 7);
    s.push_str("'{");
    for (i, oid) in oids.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{oid}");
    }
    s.push_str("}'::oid[]");
    s
}

/// A text column as an owned string (NULL → `None`).
pub fn text(r: &Row<'_>, col: &str) -> Result<Option<String>, PgError> {
    Ok(r.get_str(col)?.map(str::to_string))
}

/// A `timestamptz` column as RFC 3339 UTC with microseconds (NULL → `None`).
pub fn time(r: &Row<'_>, col: &str) -> Result<Option<String>, PgError> {
    Ok(r.get_timestamptz(col)?
        .map(|t| t.rfc3339_micros().to_string()))
}

/// A query text column cut to `max` bytes on a character boundary (like `pg_query_stats`).
pub fn query_text(r: &Row<'_>, col: &str, max: usize) -> Result<Option<String>, PgError> {
    Ok(r.get_str(col)?
        .map(|s| query_stats::truncate_utf8(s, max).to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn oid_arrays() {
        assert_eq!(super::oid_array(&[]), "'{}'::oid[]");
        assert_eq!(
            super::oid_array(&[16384, 4294967295]),
            "'{16384,4294967295}'::oid[]"
        );
    }
}
