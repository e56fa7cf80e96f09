//! `pg_wait_events` (docs/metrics.md, `pg_wait_events`): where the database's time goes.
//! Between two elements, `pg_stat_activity` is sampled every `[pg_wait_events] sample_ms` over
//! the `[postgres] database` connection (one query per sample, [`super::sql::wait_events`]),
//! and each sample counts the sessions that are active or waiting on a lock by what they do;
//! each `interval` the counts become one cluster-wide element.
//!
//! Scheduling: the samples are this plugin's second schedule ([`Collector::next_tick`] /
//! [`Collector::tick`]), woken by the poll loop like any deadline; there is no thread. A
//! sample that starts more than `sample_ms / 2` after it was due (a push or another plugin
//! held the thread) is skipped and counted in `missed_samples` (so is one whose query
//! failed), never queued.
//!
//! The connection: the pool keeps the `[postgres] database` connection open while this
//! collector exists ([`super::pool::Pool::keep_open`]); the least-recently-used rule closes
//! others instead.
//!
//! The collector's own sessions are excluded by their backend pids (the pool's connections and
//! the sampling session itself), never by `application_name`.
//!
//! Memory: at most [`MAX_KEYS`] query keys and [`MAX_KEYS`] wait keys per element, each text
//! cut to `[pg_query_stats] max_query_length`; samples beyond go to `other_samples`.

use super::client::{PgError, Rows};
use super::pool::SharedPool;
use super::query_stats::truncate_utf8;
use super::sql::wait_events as sql;
use super::{cluster_wide, emit_cluster};
use crate::collect::{CollectError, Collector, Mode, Now, Output, round2};
use crate::config;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Query keys (and, separately, wait keys) kept per element.
pub const MAX_KEYS: usize = 1000;

/// What `pg_stat_activity` says one sampled session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Session<'a> {
    pub database: Option<&'a str>,
    pub backend_type: Option<&'a str>,
    /// `None`: no wait event (on CPU, or about to be).
    pub wait_event_type: Option<&'a str>,
    pub wait_event: Option<&'a str>,
    pub query_id: Option<i64>,
    pub query: Option<&'a str>,
}

impl Session<'_> {
    /// The wait as (type, event), `("CPU", "CPU")` when there is none.
    fn wait(&self) -> (&str, &str) {
        match self.wait_event_type {
            None => ("CPU", "CPU"),
            Some(t) => (t, self.wait_event.unwrap_or("")),
        }
    }
}

/// One group of `by_wait[]`.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ByWait {
    pub database: Option<String>,
    pub backend_type: Option<String>,
    pub wait_event_type: String,
    pub wait_event: String,
    pub samples: u64,
    pub average_active_sessions: Option<f64>,
}

/// One entry of `top_queries[]`.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct TopQuery {
    pub database: Option<String>,
    pub query_id: Option<i64>,
    pub query: Option<String>,
    pub samples: u64,
    pub average_active_sessions: Option<f64>,
    /// Samples by wait: `"CPU"` or `"<wait_event_type>:<wait_event>"`.
    pub waits: BTreeMap<String, u64>,
}

/// The fields of one element besides `type` and `timestamp`.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Body {
    pub period_secs: f64,
    pub samples: u64,
    pub missed_samples: u64,
    /// Session samples of query or wait keys beyond [`MAX_KEYS`].
    pub other_samples: u64,
    pub average_active_sessions: Option<f64>,
    pub by_wait: Vec<ByWait>,
    pub top_queries: Vec<TopQuery>,
}

#[derive(Debug)]
struct QueryAcc {
    database: Option<String>,
    query_id: Option<i64>,
    query: Option<String>,
    samples: u64,
    waits: BTreeMap<String, u64>,
}

/// The samples of one period, aggregated as they come (pure: fed with [`Session`]s).
#[derive(Debug)]
pub struct Accumulator {
    max_query_length: usize,
    samples: u64,
    missed: u64,
    other: u64,
    /// Session samples in total (the sum of `by_wait[].samples` plus those beyond its cap).
    sessions: u64,
    /// Wait keys: database, backend type, wait type, wait event (NUL-separated; a NULL column
    /// is written as a lone `\u{1}` so it differs from an empty string).
    by_wait: HashMap<String, u64>,
    /// Query keys: database and query id, or database and text when there is no id.
    queries: HashMap<String, QueryAcc>,
    /// The key being looked up (reused).
    key: String,
}

const NULL: &str = "\u{1}";

fn push_part(key: &mut String, part: Option<&str>) {
    key.push_str(part.unwrap_or(NULL));
    key.push('\0');
}

fn unpart(s: &str) -> Option<String> {
    (s != NULL).then(|| s.to_string())
}

fn average(n: u64, samples: u64) -> Option<f64> {
    (samples > 0).then(|| round2(n as f64 / samples as f64))
}

impl Accumulator {
    pub fn new(max_query_length: usize) -> Accumulator {
        Accumulator {
            max_query_length,
            samples: 0,
            missed: 0,
            other: 0,
            sessions: 0,
            by_wait: HashMap::new(),
            queries: HashMap::new(),
            key: String::new(),
        }
    }

    /// Samples taken in this period.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// A sample was taken (its sessions are then given to [`Accumulator::add`]).
    pub fn sample_taken(&mut self) {
        self.samples += 1;
    }

    /// Samples that were due but not taken.
    pub fn missed(&mut self, n: u64) {
        self.missed = self.missed.saturating_add(n);
    }

    /// One session of the current sample.
    pub fn add(&mut self, s: &Session<'_>) {
        self.add_n(s, 1);
    }

    /// `n` sessions of the current sample that do the same thing (one row of the sampling
    /// statement, which groups them on the server).
    pub fn add_n(&mut self, s: &Session<'_>, n: u64) {
        if n == 0 {
            return;
        }
        self.sessions += n;
        let (wtype, wevent) = s.wait();
        self.key.clear();
        push_part(&mut self.key, s.database);
        push_part(&mut self.key, s.backend_type);
        push_part(&mut self.key, Some(wtype));
        push_part(&mut self.key, Some(wevent));
        if let Some(c) = self.by_wait.get_mut(self.key.as_str()) {
            *c += n;
        } else if self.by_wait.len() < MAX_KEYS {
            self.by_wait.insert(self.key.clone(), n);
        } else {
            self.other += n;
        }

        let query = s.query.map(|q| truncate_utf8(q, self.max_query_length));
        if s.query_id.is_none() && query.is_none_or(str::is_empty) {
            return;
        }
        self.key.clear();
        push_part(&mut self.key, s.database);
        match s.query_id {
            Some(id) => {
                // Written in place: no allocation per session.
                let _ = write!(self.key, "#{id}");
            }
            None => {
                self.key.push('=');
                self.key.push_str(query.unwrap_or(""));
            }
        }
        if !self.queries.contains_key(self.key.as_str()) {
            if self.queries.len() >= MAX_KEYS {
                self.other += n;
                return;
            }
            self.queries.insert(
                self.key.clone(),
                QueryAcc {
                    database: s.database.map(str::to_string),
                    query_id: s.query_id,
                    query: query.map(str::to_string),
                    samples: 0,
                    waits: BTreeMap::new(),
                },
            );
        }
        let Some(acc) = self.queries.get_mut(self.key.as_str()) else {
            return;
        };
        acc.samples += n;
        if acc.query.is_none()
            && let Some(q) = query
        {
            acc.query = Some(q.to_string());
        }
        let wait = if s.wait_event_type.is_none() {
            "CPU"
        } else {
            self.key.clear();
            self.key.push_str(wtype);
            self.key.push(':');
            self.key.push_str(wevent);
            self.key.as_str()
        };
        match acc.waits.get_mut(wait) {
            Some(c) => *c += n,
            None => {
                acc.waits.insert(wait.to_string(), n);
            }
        }
    }

    /// The element of the period that ends now (`period_secs` long), keeping the `top` query
    /// keys with the most samples; starts a new period.
    pub fn finish(&mut self, period_secs: f64, top: usize) -> Body {
        let samples = self.samples;
        let mut by_wait: Vec<ByWait> = self
            .by_wait
            .drain()
            .map(|(key, n)| {
                let mut parts = key.split('\0');
                let mut next = || parts.next().unwrap_or("");
                let (db, bt, wt, we) = (next(), next(), next(), next());
                ByWait {
                    database: unpart(db),
                    backend_type: unpart(bt),
                    wait_event_type: wt.to_string(),
                    wait_event: we.to_string(),
                    samples: n,
                    average_active_sessions: average(n, samples),
                }
            })
            .collect();
        by_wait.sort_by(|a, b| {
            b.samples
                .cmp(&a.samples)
                .then_with(|| a.database.cmp(&b.database))
                .then_with(|| a.backend_type.cmp(&b.backend_type))
                .then_with(|| a.wait_event_type.cmp(&b.wait_event_type))
                .then_with(|| a.wait_event.cmp(&b.wait_event))
        });
        let mut queries: Vec<QueryAcc> = self.queries.drain().map(|(_, q)| q).collect();
        queries.sort_by(|a, b| {
            b.samples
                .cmp(&a.samples)
                .then_with(|| a.database.cmp(&b.database))
                .then_with(|| a.query_id.cmp(&b.query_id))
                .then_with(|| a.query.cmp(&b.query))
        });
        queries.truncate(top);
        let top_queries = queries
            .into_iter()
            .map(|q| TopQuery {
                average_active_sessions: average(q.samples, samples),
                database: q.database,
                query_id: q.query_id,
                query: q.query,
                samples: q.samples,
                waits: q.waits,
            })
            .collect();
        let body = Body {
            period_secs: (period_secs * 1000.0).round() / 1000.0,
            samples,
            missed_samples: self.missed,
            other_samples: self.other,
            average_active_sessions: average(self.sessions, samples),
            by_wait,
            top_queries,
        };
        self.samples = 0;
        self.missed = 0;
        self.other = 0;
        self.sessions = 0;
        body
    }
}

/// Where the sample due at `due` stands at `now`, every `period` ns: how many samples were
/// missed (due more than `period / 2` ago and not taken), whether to take one now, and when
/// the next is due. Pure; samples are never queued.
pub fn due_samples(due: u64, now: u64, period: u64) -> (u64, bool, u64) {
    let period = period.max(1);
    if now < due {
        return (0, false, due);
    }
    // The latest grid point at or before `now`, and the ones skipped before it.
    let skipped = (now - due) / period;
    let latest = due + skipped * period;
    let take = now - latest <= period / 2;
    let missed = skipped + u64::from(!take);
    (missed, take, latest + period)
}

pub struct PgWaitEvents {
    pool: SharedPool,
    home: String,
    mode: Mode,
    sample_ns: u64,
    top_queries: usize,
    max_query_chars: u32,
    acc: Accumulator,
    /// When the next sample is due (monotonic ns; set by the baseline).
    next_sample: Option<u64>,
    /// Start of the current period (monotonic ns).
    period_start: u64,
    /// Whether `run`'s first collection (right after start) has passed: it sends nothing,
    /// so that the first element covers one interval.
    started: bool,
    /// The sample statement and the pids it excludes (rebuilt when they change).
    sql: String,
    sql_key: (u32, Vec<i32>),
    /// A sample sent and not read yet: each tick reads the sample of the tick before (its
    /// reply came while the loop slept) and sends the next, so the loop wakes once per sample.
    in_flight: bool,
}

impl PgWaitEvents {
    pub fn new(
        cfg: &config::PgWaitEvents,
        texts: &config::PgQueryStats,
        pool: SharedPool,
        mode: Mode,
    ) -> PgWaitEvents {
        let home = {
            let mut p = pool.borrow_mut();
            let home = p.home_database().to_string();
            p.keep_open(&home);
            home
        };
        PgWaitEvents {
            pool,
            home,
            mode,
            sample_ns: u64::from(cfg.sample_ms.max(1)) * 1_000_000,
            top_queries: usize::try_from(cfg.top_queries).unwrap_or(usize::MAX),
            max_query_chars: texts.max_query_length,
            acc: Accumulator::new(usize::try_from(texts.max_query_length).unwrap_or(usize::MAX)),
            next_sample: None,
            period_start: 0,
            started: false,
            sql: String::new(),
            sql_key: (0, Vec::new()),
            in_flight: false,
        }
    }

    /// Takes one sample now: reads the sample sent at the last tick into the accumulator and
    /// sends this one; with `wait`, also reads this one (`once`, the end of a period).
    /// Samples lost (a failed statement, a connection gone with its reply) count as missed.
    fn sample(&mut self, now: Now, out: &mut Output<'_>, wait: bool) -> Result<(), CollectError> {
        let pids = self.pool.borrow().backend_pids();
        let max_chars = self.max_query_chars;
        let (sql, sql_key) = (&mut self.sql, &mut self.sql_key);
        let (acc, in_flight) = (&mut self.acc, &mut self.in_flight);
        let mut ran = false;
        let r = cluster_wide(&self.pool, now, out, |c| {
            ran = true;
            let earlier = read_sent(c, acc, in_flight);
            let version = c.version();
            if sql.is_empty() || sql_key.0 != version || sql_key.1 != pids {
                *sql = sql::sample(version, &pids, max_chars);
                *sql_key = (version, pids);
            }
            if let Err(e) = c.send(sql) {
                acc.missed(1);
                return Err(e);
            }
            *in_flight = true;
            let this = if wait {
                read_sent(c, acc, in_flight)
            } else {
                Ok(())
            };
            earlier.and(this)
        });
        if !ran {
            self.acc.missed(1);
        }
        r
    }

    /// Reads the sample in flight, if any, without sending another (the end of a period).
    fn read_in_flight(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        if !self.in_flight {
            return Ok(());
        }
        let (acc, in_flight) = (&mut self.acc, &mut self.in_flight);
        cluster_wide(&self.pool, now, out, |c| read_sent(c, acc, in_flight))
    }
}

/// Reads the reply of the sample sent on `c` (if `in_flight`) into `acc`.
fn read_sent(
    c: &mut super::CollectionConn<'_>,
    acc: &mut Accumulator,
    in_flight: &mut bool,
) -> Result<(), PgError> {
    if !std::mem::take(in_flight) {
        // (A reply a former instance left unread, before a reload, is dropped by the next
        // send.)
        return Ok(());
    }
    match c.take_sent() {
        Some(Ok(rows)) => {
            let r = add_rows(acc, &rows);
            c.recycle(rows);
            match r {
                Ok(()) => acc.sample_taken(),
                Err(_) => acc.missed(1),
            }
            r
        }
        Some(Err(e)) => {
            acc.missed(1);
            Err(e)
        }
        // The connection it was sent on is gone.
        None => {
            acc.missed(1);
            Ok(())
        }
    }
}

/// Feeds one sample's rows to `acc`.
pub fn add_rows(acc: &mut Accumulator, rows: &Rows) -> Result<(), PgError> {
    let [db, bt, wt, we, id, q, n] = rows.column_indexes([
        "datname",
        "backend_type",
        "wait_event_type",
        "wait_event",
        "query_id",
        "query",
        "sessions",
    ])?;
    for r in rows.iter() {
        let sessions = r.i64_at(n)?.unwrap_or(0);
        acc.add_n(
            &Session {
                database: r.str_at(db)?,
                backend_type: r.str_at(bt)?,
                wait_event_type: r.str_at(wt)?,
                wait_event: r.str_at(we)?,
                query_id: r.i64_at(id)?,
                query: r.str_at(q)?,
            },
            u64::try_from(sessions).unwrap_or(0),
        );
    }
    Ok(())
}

impl Drop for PgWaitEvents {
    fn drop(&mut self) {
        self.pool.borrow_mut().release(&self.home);
    }
}

impl Collector for PgWaitEvents {
    fn name(&self) -> &'static str {
        "pg_wait_events"
    }

    fn baseline(&mut self, now: Now) {
        self.next_sample = Some(now.mono_ns);
        self.period_start = now.mono_ns;
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        match self.mode {
            Mode::Run if !self.started => {
                // Right after start: the first element comes one interval later.
                self.started = true;
                return Ok(());
            }
            Mode::Once if self.acc.samples() == 0 => {
                // `once` shows at least one sample, even with `--sample-ms 0`.
                self.sample(now, out, true)?;
            }
            _ => {
                // The sample sent at the last tick belongs to this period.
                if let Err(e) = self.read_in_flight(now, out) {
                    out.error("pg_wait_events", e);
                }
            }
        }
        let period = now.mono_ns.saturating_sub(self.period_start) as f64 / 1e9;
        self.period_start = now.mono_ns;
        let body = self.acc.finish(period, self.top_queries);
        emit_cluster(out, "pg_wait_events", now, &body)
    }

    fn next_tick(&self) -> Option<u64> {
        self.next_sample
    }

    fn tick(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        let Some(due) = self.next_sample else {
            return Ok(());
        };
        let (missed, take, next) = due_samples(due, now.mono_ns, self.sample_ns);
        self.next_sample = Some(next);
        self.acc.missed(missed);
        if !take {
            return Ok(());
        }
        self.sample(now, out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::pg::ClusterElement;

    fn s<'a>(
        db: &'a str,
        wait: Option<(&'a str, &'a str)>,
        id: Option<i64>,
        q: &'a str,
    ) -> Session<'a> {
        Session {
            database: Some(db),
            backend_type: Some("client backend"),
            wait_event_type: wait.map(|w| w.0),
            wait_event: wait.map(|w| w.1),
            query_id: id,
            query: Some(q),
        }
    }

    #[test]
    fn counts_by_wait_and_by_query() {
        let mut a = Accumulator::new(10);
        let lock = Some(("Lock", "transactionid"));
        for i in 0..4 {
            a.sample_taken();
            a.add(&s("app", None, Some(7), "update t set v = 1"));
            if i < 3 {
                a.add(&s("app", lock, Some(7), "update t set v = 1"));
            }
            // No query id: grouped by the text cut to 10 bytes.
            a.add(&s("app", None, None, &format!("select {i}23456789")));
        }
        a.missed(2);
        let b = a.finish(4.0, 20);
        assert_eq!(b.samples, 4);
        assert_eq!(b.missed_samples, 2);
        assert_eq!(b.average_active_sessions, Some(2.75));
        assert_eq!(b.by_wait.len(), 2);
        assert_eq!(
            (b.by_wait[0].wait_event_type.as_str(), b.by_wait[0].samples),
            ("CPU", 8)
        );
        assert_eq!(b.by_wait[0].wait_event, "CPU");
        assert_eq!(b.by_wait[0].average_active_sessions, Some(2.0));
        assert_eq!(b.by_wait[1].wait_event, "transactionid");
        assert_eq!(b.by_wait[1].average_active_sessions, Some(0.75));
        assert_eq!(b.top_queries.len(), 5);
        let q = &b.top_queries[0];
        assert_eq!((q.query_id, q.samples), (Some(7), 7));
        assert_eq!(q.query.as_deref(), Some("update t s"));
        assert_eq!(q.waits.get("CPU"), Some(&4));
        assert_eq!(q.waits.get("Lock:transactionid"), Some(&3));
        // Text keys: each distinct cut text is its own key.
        assert!(
            b.top_queries[1..]
                .iter()
                .all(|q| q.query_id.is_none() && q.samples == 1)
        );
        // A new period starts empty.
        let b2 = a.finish(1.0, 20);
        assert_eq!((b2.samples, b2.missed_samples), (0, 0));
        assert_eq!(b2.average_active_sessions, None);
        assert!(b2.by_wait.is_empty() && b2.top_queries.is_empty());
    }

    #[test]
    fn a_row_for_several_sessions_counts_each() {
        let lock = Some(("Lock", "transactionid"));
        let (mut one, mut grouped) = (Accumulator::new(100), Accumulator::new(100));
        one.sample_taken();
        grouped.sample_taken();
        for _ in 0..3 {
            one.add(&s("app", lock, Some(7), "update t"));
        }
        one.add(&s("app", None, None, "select 1"));
        grouped.add_n(&s("app", lock, Some(7), "update t"), 3);
        grouped.add_n(&s("app", None, None, "select 1"), 1);
        grouped.add_n(&s("app", None, None, "select 2"), 0);
        assert_eq!(one.finish(1.0, 20), grouped.finish(1.0, 20));
    }

    #[test]
    fn top_and_caps() {
        let mut a = Accumulator::new(100);
        a.sample_taken();
        for id in 0..(MAX_KEYS as i64 + 5) {
            a.add(&s("app", None, Some(id), "q"));
        }
        let b = a.finish(1.0, 3);
        assert_eq!(b.top_queries.len(), 3);
        assert_eq!(b.other_samples, 5);
        assert_eq!(b.by_wait[0].samples, MAX_KEYS as u64 + 5);
    }

    #[test]
    fn null_columns_stay_null_and_sessions_without_query_count_only_as_waits() {
        let mut a = Accumulator::new(100);
        a.sample_taken();
        a.add(&Session {
            backend_type: Some("autovacuum worker"),
            wait_event_type: Some("IO"),
            wait_event: Some("DataFileRead"),
            ..Session::default()
        });
        let b = a.finish(1.0, 20);
        assert_eq!(b.by_wait[0].database, None);
        assert!(b.top_queries.is_empty());
        let e = ClusterElement {
            kind: "pg_wait_events",
            timestamp: crate::util::WallTime::default().rfc3339(),
            body: &b,
        };
        let v = serde_json::to_value(&e).unwrap();
        for k in [
            "period_secs",
            "samples",
            "missed_samples",
            "other_samples",
            "average_active_sessions",
            "by_wait",
            "top_queries",
        ] {
            assert!(v.get(k).is_some(), "{k} missing");
        }
        assert!(v["by_wait"][0]["database"].is_null());
    }

    #[test]
    fn late_samples_are_skipped_never_queued() {
        let p = 1000;
        assert_eq!(due_samples(5000, 4000, p), (0, false, 5000));
        assert_eq!(due_samples(5000, 5000, p), (0, true, 6000));
        assert_eq!(due_samples(5000, 5500, p), (0, true, 6000));
        assert_eq!(due_samples(5000, 5501, p), (1, false, 6000));
        // Held 3.2 periods: three missed, the one due 0.2 ago is taken.
        assert_eq!(due_samples(5000, 8200, p), (3, true, 9000));
        assert_eq!(due_samples(5000, 8700, p), (4, false, 9000));
    }
}
