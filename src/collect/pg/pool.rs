//! The connection set shared by the pg collectors: one [`Client`] per monitored database (a
//! connection sees one database's tables), kept open across cycles.
//!
//! - At most `[postgres] max_connections` are open at once: to reach another database the least
//!   recently used connection is closed first (never one more).
//! - A connection that breaks (`is_connection_lost`, or a client-side timeout that leaves the
//!   session in an unknown state) is dropped. Failing to (re)connect starts an exponential
//!   backoff for that database (1 s doubling to 60 s); until it expires, that database fails
//!   fast with the last error — no reconnect storm when the server is down. A lost
//!   connection itself is not retried within the same collection (its error is reported; the
//!   next collection reconnects).
//! - `databases = "*"`: the list comes from `pg_database` on the `[postgres] database`
//!   connection at every collection, so creations and drops are followed; connections and
//!   backoffs of dropped databases are forgotten.
//!
//! Errors are one line naming host/port, user and database:
//! `connection refused (127.0.0.1:5432, user postgres, database app)`.
//!
//! Sharing: the engine owns nothing of this; `collect::build` creates one pool per
//! configuration ([`crate::collect::Shared`]) and each pg collector holds an
//! `Rc<RefCell<Pool>>` to it. The collector borrows it only for the duration of its own
//! collection (one thread, collections never nest).

use super::client::{Client, PgError, Rows, Target};
use super::conninfo::{LibpqEnv, Resolver};
use super::sql;
use crate::config::{self, Databases};
use crate::sys::signals::Signals;
use std::collections::BTreeMap;
use std::time::Duration;

/// The pool as the collectors share it.
pub type SharedPool = std::rc::Rc<std::cell::RefCell<Pool>>;

/// First reconnect delay after a failure.
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// The client's bound of one query with `statement_timeout_ms = 0` (no server-side limit):
/// the plugin's interval, at most this.
pub const UNLIMITED_QUERY_WAIT_MAX: Duration = Duration::from_secs(60);

/// Why a database could not be read this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// One line with host/port, user and database.
    Failed(String),
    /// A stop signal arrived: end the collection now.
    Interrupted,
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::Failed(m) => f.write_str(m),
            PoolError::Interrupted => f.write_str("interrupted by a stop signal"),
        }
    }
}

/// The reconnect schedule of one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectBackoff {
    /// The current delay (doubles on each failed attempt, up to [`BACKOFF_MAX`]).
    delay: Duration,
    /// No attempt before this (monotonic ns).
    next_try_ns: u64,
    /// The last error, returned while waiting.
    error: String,
}

impl ReconnectBackoff {
    /// After the first failure at `now_ns`.
    pub fn first(now_ns: u64, error: String) -> ReconnectBackoff {
        ReconnectBackoff {
            delay: BACKOFF_INITIAL,
            next_try_ns: now_ns.saturating_add(ns(BACKOFF_INITIAL)),
            error,
        }
    }

    /// After another failed attempt at `now_ns`: the delay doubles.
    pub fn failed_again(&mut self, now_ns: u64, error: String) {
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
        self.next_try_ns = now_ns.saturating_add(ns(self.delay));
        self.error = error;
    }

    /// Whether an attempt may be made at `now_ns`.
    pub fn may_try(&self, now_ns: u64) -> bool {
        now_ns >= self.next_try_ns
    }

    pub fn delay(&self) -> Duration {
        self.delay
    }

    pub fn error(&self) -> &str {
        &self.error
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Which open connection to close to make room: the least recently used.
pub fn lru_victim(last_used: impl Iterator<Item = u64>) -> Option<usize> {
    last_used
        .enumerate()
        .min_by_key(|&(_, t)| t)
        .map(|(i, _)| i)
}

struct Open {
    database: String,
    target: Target,
    client: Client,
    /// The pool's use counter at the last use (LRU order).
    last_used: u64,
}

pub struct Pool {
    resolver: Resolver,
    max_open: usize,
    /// The server's `statement_timeout` (zero: none).
    statement_timeout: Duration,
    /// Databases whose connection the least-recently-used rule never closes (one entry per
    /// holder: `pg_wait_events` keeps the `[postgres] database` connection open).
    kept: Vec<String>,
    open: Vec<Open>,
    backoff: BTreeMap<String, ReconnectBackoff>,
    uses: u64,
}

impl Pool {
    /// A pool for `[postgres]`, with the real environment (user, pgpass).
    pub fn new(cfg: &config::Postgres) -> Pool {
        Pool::with_env(cfg, LibpqEnv::read())
    }

    pub fn with_env(cfg: &config::Postgres, env: LibpqEnv) -> Pool {
        Pool {
            resolver: Resolver::new(cfg, env),
            max_open: usize::try_from(cfg.max_connections).unwrap_or(1).max(1),
            statement_timeout: cfg.statement_timeout,
            kept: Vec::new(),
            open: Vec::new(),
            backoff: BTreeMap::new(),
            uses: 0,
        }
    }

    /// The bound of one query on the client side, for a plugin whose interval is unknown:
    /// [`Pool::query_timeout_within`] with no interval.
    pub fn query_timeout(&self) -> Duration {
        self.query_timeout_within(None)
    }

    /// The bound of one query on the client side, for a plugin running every `interval`:
    /// the server's `statement_timeout` plus a second (the server ends the query first and
    /// the session stays usable); with `statement_timeout_ms = 0` the server sets no limit,
    /// and the client waits the plugin's interval, at most [`UNLIMITED_QUERY_WAIT_MAX`]
    /// (that bound when the interval is unknown).
    pub fn query_timeout_within(&self, interval: Option<Duration>) -> Duration {
        if self.statement_timeout.is_zero() {
            interval
                .unwrap_or(UNLIMITED_QUERY_WAIT_MAX)
                .min(UNLIMITED_QUERY_WAIT_MAX)
        } else {
            self.statement_timeout + Duration::from_secs(1)
        }
    }

    /// Keeps the connection to `database` open while the caller holds it: the
    /// least-recently-used rule closes other connections instead (undo with
    /// [`Pool::release`]).
    pub fn keep_open(&mut self, database: &str) {
        self.kept.push(database.to_string());
    }

    /// Undoes one [`Pool::keep_open`] of `database`.
    pub fn release(&mut self, database: &str) {
        if let Some(i) = self.kept.iter().position(|d| d == database) {
            self.kept.swap_remove(i);
        }
    }

    /// The backend pids of the open connections (the collector's own sessions, as the server
    /// lists them in `pg_stat_activity`).
    pub fn backend_pids(&self) -> Vec<i32> {
        self.open.iter().map(|o| o.client.backend_pid()).collect()
    }

    /// `[postgres] database`: the connection cluster-wide plugins use.
    pub fn home_database(&self) -> &str {
        &self.resolver.settings().database
    }

    /// Whether a connection to `database` is open now.
    pub fn is_open(&self, database: &str) -> bool {
        self.open.iter().any(|o| o.database == database)
    }

    /// Open connections now (never more than `max_connections`).
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The databases to monitor now: the configured list, or (`"*"`) those of `pg_database`
    /// that allow connections, read over the `[postgres] database` connection.
    pub fn databases(
        &mut self,
        now_ns: u64,
        timeout: Duration,
        signals: Option<&Signals>,
    ) -> Result<Vec<String>, PoolError> {
        let cfg = self.resolver.settings();
        let home = match &cfg.databases {
            Databases::List(list) => return Ok(list.clone()),
            Databases::All => cfg.database.clone(),
        };
        let names = self.with_client(&home, now_ns, signals, |c| {
            let rows = c.query(sql::DISCOVER_DATABASES, timeout, signals)?;
            column_strings(&rows, "datname")
        })?;
        // Forget databases that were dropped (their connections and backoffs).
        let keep = |db: &str| db == home || names.iter().any(|n| n == db);
        let mut i = 0;
        while i < self.open.len() {
            if keep(&self.open[i].database) {
                i += 1;
            } else {
                self.open.swap_remove(i).client.close();
            }
        }
        self.backoff.retain(|db, _| keep(db));
        Ok(names)
    }

    /// Runs `f` on the connection to `database`, connecting first if needed. Errors come back
    /// as one line naming the target, user and database.
    pub fn with_client<T>(
        &mut self,
        database: &str,
        now_ns: u64,
        signals: Option<&Signals>,
        f: impl FnOnce(&mut Client) -> Result<T, PgError>,
    ) -> Result<T, PoolError> {
        let i = self.connection(database, now_ns, signals)?;
        self.uses += 1;
        self.open[i].last_used = self.uses;
        match f(&mut self.open[i].client) {
            Ok(v) => Ok(v),
            Err(PgError::Interrupted) => {
                // The session may be mid-query: it cannot be reused.
                self.open.swap_remove(i).client.close();
                Err(PoolError::Interrupted)
            }
            Err(e) => {
                let target = self.open[i].target.to_string();
                let msg = self.describe(&e, &target, database);
                if e.is_connection_lost() || matches!(e, PgError::Timeout { .. }) {
                    self.open.swap_remove(i).client.close();
                    if e.is_connection_lost() {
                        self.backoff.insert(
                            database.to_string(),
                            ReconnectBackoff::first(now_ns, msg.clone()),
                        );
                    }
                }
                Err(PoolError::Failed(msg))
            }
        }
    }

    /// The index of an open connection to `database`, connecting (within the limits) if needed.
    fn connection(
        &mut self,
        database: &str,
        now_ns: u64,
        signals: Option<&Signals>,
    ) -> Result<usize, PoolError> {
        if let Some(i) = self.open.iter().position(|o| o.database == database) {
            return Ok(i);
        }
        if let Some(b) = self.backoff.get(database)
            && !b.may_try(now_ns)
        {
            return Err(PoolError::Failed(b.error().to_string()));
        }
        while self.open.len() >= self.max_open {
            let kept = &self.kept;
            let closable = self
                .open
                .iter()
                .enumerate()
                .filter(|(_, o)| !kept.contains(&o.database))
                .map(|(i, o)| (i, o.last_used))
                .collect::<Vec<_>>();
            let Some(v) = lru_victim(closable.iter().map(|&(_, t)| t)) else {
                return Err(PoolError::Failed(self.describe_msg(
                    &format!(
                        "[postgres] max_connections = {} is taken by the connection pg_wait_events keeps open; raise it to at least 2",
                        self.max_open
                    ),
                    &self.resolver.describe_host(),
                    database,
                )));
            };
            let (v, _) = closable[v];
            self.open.swap_remove(v).client.close();
        }
        let mut last: Option<String> = None;
        for target in self.resolver.candidates() {
            let params = match self.resolver.params(&target, database) {
                Ok(p) => p,
                Err(e) => {
                    last = Some(self.describe_msg(&e, &target.to_string(), database));
                    break;
                }
            };
            match Client::connect(&params, signals) {
                Ok(client) => {
                    self.backoff.remove(database);
                    self.open.push(Open {
                        database: database.to_string(),
                        target,
                        client,
                        last_used: self.uses,
                    });
                    return Ok(self.open.len() - 1);
                }
                Err(PgError::Interrupted) => return Err(PoolError::Interrupted),
                Err(e) => {
                    let next_candidate = matches!(e, PgError::Connect { .. });
                    last = Some(self.describe(&e, &target.to_string(), database));
                    if !next_candidate {
                        break;
                    }
                }
            }
        }
        let msg = last.unwrap_or_else(|| {
            self.describe_msg(
                "no host to connect to",
                &self.resolver.describe_host(),
                database,
            )
        });
        match self.backoff.get_mut(database) {
            Some(b) => b.failed_again(now_ns, msg.clone()),
            None => {
                self.backoff.insert(
                    database.to_string(),
                    ReconnectBackoff::first(now_ns, msg.clone()),
                );
            }
        }
        Err(PoolError::Failed(msg))
    }

    /// `<error> (<target>, user <user>, database <db>)`.
    fn describe(&self, e: &PgError, target: &str, database: &str) -> String {
        let text = match e {
            // The target is named in the suffix; keep only the cause.
            PgError::Connect { error, .. } => error.to_string(),
            other => other.to_string(),
        };
        self.describe_msg(&text, target, database)
    }

    fn describe_msg(&self, msg: &str, target: &str, database: &str) -> String {
        format!(
            "{msg} ({target}, user {}, database {database})",
            self.resolver.user()
        )
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for o in self.open.drain(..) {
            o.client.close();
        }
    }
}

/// The non-null text values of one column.
pub fn column_strings(rows: &Rows, col: &str) -> Result<Vec<String>, PgError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.iter() {
        if let Some(s) = r.get_str(col)? {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let s = 1_000_000_000;
        let mut b = ReconnectBackoff::first(0, "down".into());
        assert!(!b.may_try(s - 1));
        assert!(b.may_try(s));
        let mut delays = vec![b.delay().as_secs()];
        for i in 0..8 {
            b.failed_again(i * s, "still down".into());
            delays.push(b.delay().as_secs());
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.error(), "still down");
        assert!(!b.may_try(7 * s + 59 * s));
        assert!(b.may_try(7 * s + 60 * s));
    }

    #[test]
    fn zero_statement_timeout_waits_the_interval_at_most_a_minute() {
        let mut cfg = crate::config::Config::default().postgres;
        let pool = Pool::with_env(&cfg, LibpqEnv::default());
        let s = Duration::from_secs;
        assert_eq!(pool.query_timeout_within(Some(s(60))), s(6));
        assert_eq!(pool.query_timeout_within(None), s(6));
        cfg.statement_timeout = Duration::ZERO;
        let pool = Pool::with_env(&cfg, LibpqEnv::default());
        assert_eq!(pool.query_timeout_within(Some(s(10))), s(10));
        assert_eq!(pool.query_timeout_within(Some(s(3600))), s(60));
        assert_eq!(pool.query_timeout_within(None), s(60));
    }

    #[test]
    fn lru_is_the_oldest_use() {
        assert_eq!(lru_victim([5u64, 2, 9].into_iter()), Some(1));
        assert_eq!(lru_victim(std::iter::empty()), None);
    }

    #[test]
    fn unreachable_server_fails_fast_during_backoff() {
        let mut cfg = crate::config::Config::default().postgres;
        // A port nothing listens on (reserved: tcpmux is never served here).
        cfg.host = Some("127.0.0.1".into());
        cfg.port = 1;
        cfg.user = Some("u".into());
        cfg.connect_timeout = Duration::from_secs(2);
        let mut pool = Pool::with_env(&cfg, LibpqEnv::default());
        let e = pool.with_client("app", 0, None, |_| Ok(())).unwrap_err();
        let PoolError::Failed(msg) = e else {
            panic!("{e:?}")
        };
        assert!(
            msg.ends_with("(127.0.0.1:1, user u, database app)"),
            "{msg}"
        );
        // Within the backoff: the same error, no attempt.
        let again = pool.with_client("app", 500_000_000, None, |_| Ok(()));
        assert_eq!(again, Err(PoolError::Failed(msg)));
        assert_eq!(pool.open_count(), 0);
    }
}
