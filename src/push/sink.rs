//! The HTTPS sink: delivery as docs/protocol.md, delivery model, and the replies table say.
//!
//! ```text
//!            form (oldest waiting, ≤ max_batch_bytes, new batch_id)
//!  buffer ───────────────────────────────▶ pending ──POST──▶ 2xx  → Delivered, next batch
//!                                           ▲   │            400  → Dropped(Rejected), next
//!                 413: split in two (new ids) └───┤            401  → (client) refresh, retry once
//!                                                 └──────────▶ else → keep, back off (retry_at)
//! ```
//!
//! A batch keeps its elements (metas and JSON) and its `batch_id` across resends until it is
//! acknowledged or given up; only the envelope header is written again at each send, so a
//! re-registration's new `collector_id` reaches batches already formed. New batches are formed
//! only when none is pending, so what is held outside the buffer is at most one batch (two
//! after a split).
//!
//! Not here: the connection and the authentication (the backend client, `client::Backend`,
//! which this sink owns and sends through).

use super::backoff::Backoff;
use super::client::{Backend, CallError, Caller};
use super::conn::{Request, Transport};
use super::spool::{Pos, Spool};
use crate::agent_log::{self, Repeated};
use crate::config::{Compression, Config};
use crate::pipeline::envelope::{self, FRAME_BYTES, Header};
use crate::pipeline::sink::{Round, Sink, SinkError};
use crate::pipeline::spool as record;
use crate::pipeline::{DropReason, ElementBuffer, ElementMeta, Outcome, SpoolFigures, Stats};
use crate::proto::gzip;
use crate::proto::http::Response;
use crate::util::WallTime;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const PUSH_PATH: &str = "/api/v1/metrics/push";

/// How rounds are delivered: `[backend]` compression and retry bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub compression: Compression,
    pub compression_level: u8,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl Delivery {
    pub fn from_config(config: &Config) -> Delivery {
        Delivery {
            compression: config.backend.compression,
            compression_level: config.backend.compression_level,
            retry_initial: config.backend.retry_initial,
            retry_max: config.backend.retry_max,
        }
    }
}

/// Elements formed into one request body, kept until acknowledged or given up.
#[derive(Debug, Clone)]
pub struct Batch {
    pub id: heapless::String<32>,
    /// When the batch was formed (the envelope's `timestamp`).
    pub built: WallTime,
    pub metas: Vec<ElementMeta>,
    /// JSON length of each element, in order; the texts follow each other in `json`.
    pub lens: Vec<usize>,
    pub json: Vec<u8>,
}

impl Batch {
    /// Takes the oldest waiting elements while the envelope stays within `max_bytes` (at least
    /// one element when any waits).
    pub fn form(
        buffer: &mut ElementBuffer,
        max_bytes: usize,
        header_bytes: usize,
        now: WallTime,
    ) -> Batch {
        let mut b = Batch {
            id: envelope::new_batch_id(),
            built: now,
            metas: Vec::new(),
            lens: Vec::new(),
            json: Vec::new(),
        };
        let mut size = header_bytes;
        while let Some(next) = buffer.front_len() {
            if !b.metas.is_empty() && size + next + 1 + FRAME_BYTES > max_bytes {
                break;
            }
            let before = b.json.len();
            match buffer.pop_into(&mut b.json) {
                Some(meta) => {
                    b.metas.push(meta);
                    b.lens.push(b.json.len() - before);
                    size += next + 1;
                }
                None => break,
            }
        }
        b
    }

    pub fn elements(&self) -> impl Iterator<Item = &[u8]> {
        let mut at = 0;
        self.lens.iter().map(move |&n| {
            let s = &self.json[at..at + n];
            at += n;
            s
        })
    }

    /// Two new batches (new ids) with the first and second half of the elements.
    pub fn split(self) -> (Batch, Batch) {
        let half = self.metas.len() / 2;
        let cut: usize = self.lens[..half].iter().sum();
        let mk = |metas: &[ElementMeta], lens: &[usize], json: &[u8]| Batch {
            id: envelope::new_batch_id(),
            built: self.built,
            metas: metas.to_vec(),
            lens: lens.to_vec(),
            json: json.to_vec(),
        };
        (
            mk(&self.metas[..half], &self.lens[..half], &self.json[..cut]),
            mk(&self.metas[half..], &self.lens[half..], &self.json[cut..]),
        )
    }
}

/// What one send of a batch came to.
#[derive(Debug)]
enum Sent {
    Accepted(u16),
    Rejected(String),
    TooLarge,
    /// Keep the batch and back off (at least `retry_after` seconds).
    Retry {
        status: Option<u16>,
        msg: String,
        retry_after: u64,
    },
    Interrupted,
}

pub struct HttpsSink<T: Transport> {
    backend: Backend<T>,
    /// The outage spool (docs/protocol.md, "Spool"), when `spool_bytes` > 0.
    spool: Option<Spool>,
    /// A round failed and memory has not all reached the spool since: collections spool.
    spooling: bool,
    /// The batch formed from the spool, kept across resends, with the cursor after it.
    spool_batch: Option<(Batch, Pos)>,
    /// Records per spool batch after a 413 (halved at each).
    spool_records: usize,
    spool_failing: Repeated,
    delivery: Delivery,
    pending: VecDeque<Batch>,
    backoff: Backoff,
    /// While failing: when the next attempt may run (monotonic ns).
    retry_at: Option<u64>,
    failing: Repeated,
    body: Vec<u8>,
    gz: Vec<u8>,
}

impl<T: Transport> HttpsSink<T> {
    pub fn new(backend: Backend<T>, delivery: Delivery, seed: u64) -> HttpsSink<T> {
        HttpsSink {
            backend,
            spool: None,
            spooling: false,
            spool_batch: None,
            spool_records: usize::MAX,
            spool_failing: Repeated::default(),
            delivery,
            pending: VecDeque::new(),
            backoff: Backoff::new(ns(delivery.retry_initial), ns(delivery.retry_max), seed),
            retry_at: None,
            failing: Repeated::default(),
            body: Vec::new(),
            gz: Vec::new(),
        }
    }

    /// Adds the outage spool: what it holds is sent first, from the next round on.
    pub fn with_spool(mut self, spool: Spool) -> HttpsSink<T> {
        self.spooling = !spool.is_empty();
        self.spool = Some(spool);
        self
    }

    /// The spool's figures for `collector_health`.
    fn spool_figures(&self, stats: &mut Stats) {
        stats.spool = self.spool.as_ref().map(|s| {
            let f = s.figures();
            SpoolFigures {
                bytes: f.bytes,
                elements: f.elements,
                corrupt: f.corrupt,
            }
        });
    }

    /// Moves the pending batches (with their ids) and the buffer into the spool, one commit;
    /// on success every element is reported spooled; on a failure everything stays in memory
    /// and one error is logged (again on backoff steps).
    fn spool_all(
        &mut self,
        buffer: &mut ElementBuffer,
        report: &mut dyn FnMut(ElementMeta, Outcome),
        stats: &mut Stats,
    ) {
        let Some(spool) = &mut self.spool else {
            return;
        };
        if self.pending.is_empty() && buffer.is_empty() {
            return;
        }
        for b in &self.pending {
            let id = record::batch_id_bytes(&b.id).unwrap_or(record::NO_BATCH);
            for json in b.elements() {
                spool.stage(&id, &[json]);
            }
        }
        buffer.for_each(|_, first, second| spool.stage(&record::NO_BATCH, &[first, second]));
        match spool.commit() {
            Ok(c) => {
                for b in self.pending.drain(..) {
                    for m in b.metas {
                        report(m, Outcome::Spooled);
                    }
                }
                let mut scratch = Vec::new();
                while let Some(m) = buffer.pop_into(&mut scratch) {
                    report(m, Outcome::Spooled);
                    scratch.clear();
                }
                if c.dropped > 0 {
                    // A spool batch read from a dropped segment (waiting for the backend) goes
                    // with it: its elements are among those counted.
                    if self
                        .spool_batch
                        .as_ref()
                        .is_some_and(|(_, end)| !spool.holds_segment(end.seq))
                    {
                        self.spool_batch = None;
                    }
                    stats.metrics_dropped += c.dropped;
                    agent_log::warn(
                        "spool",
                        "the spool is full ([backend] spool_bytes): its oldest segment was dropped",
                        &[("elements", &c.dropped.to_string())],
                    );
                }
                if self.spool_failing.succeeded() {
                    agent_log::info("spool", "the spool is written again", &[]);
                }
            }
            Err(e) => {
                if self.spool_failing.failed() {
                    agent_log::error(
                        "spool",
                        &format!(
                            "cannot write the outage spool: {e}; the elements stay in memory (bounded by [backend] buffer_bytes) and the next round tries again; free space in the state directory or make it writable"
                        ),
                        &[
                            ("failures", &self.spool_failing.count().to_string()),
                            ("elements_in_memory", &buffer.len().to_string()),
                        ],
                    );
                }
            }
        }
        self.spool_figures(stats);
    }

    /// Sends what the spool holds, oldest first; `Err` when a request fails (the caller
    /// spools memory and backs off). Returns whether anything was sent.
    fn replay(&mut self, round: &Round<'_>, stats: &mut Stats) -> Result<bool, SinkError> {
        let mut sent = false;
        loop {
            let Some(spool) = &mut self.spool else {
                return Ok(sent);
            };
            if self.spool_batch.is_none() {
                let header = Header {
                    collector_id: self.backend.envelope_id(round.collector_id),
                    hostname: round.hostname,
                    timestamp: round.now,
                    batch_id: "00000000000000000000000000000000",
                    version: env!("CARGO_PKG_VERSION"),
                };
                let head = envelope::header_bytes(&header) + FRAME_BYTES;
                let max_json = round.max_batch_bytes.saturating_sub(head);
                match spool.next_batch(max_json, self.spool_records) {
                    Ok(Some(sb)) => {
                        let id = match sb.id {
                            Some(id) => record::batch_id_hex(&id),
                            None => envelope::new_batch_id(),
                        };
                        let batch = Batch {
                            id,
                            built: round.now,
                            metas: Vec::new(),
                            lens: sb.lens,
                            json: sb.json,
                        };
                        self.spool_batch = Some((batch, sb.end));
                    }
                    Ok(None) => return Ok(sent),
                    Err(e) => {
                        let msg = format!("cannot read the outage spool: {e}");
                        if self.spool_failing.failed() {
                            agent_log::error("spool", &msg, &[]);
                        }
                        return Ok(sent);
                    }
                }
            }
            let Some((batch, end)) = &self.spool_batch else {
                return Ok(sent);
            };
            let (end, records) = (*end, batch.lens.len());
            let result = send(
                &mut self.backend,
                self.delivery,
                (&mut self.body, &mut self.gz),
                batch,
                round,
            );
            sent = true;
            let advance = |sink: &mut Self| {
                sink.spool_batch = None;
                if let Some(spool) = &mut sink.spool
                    && let Err(e) = spool.delivered(end, records)
                {
                    agent_log::error(
                        "spool",
                        &format!(
                            "cannot move the spool's cursor: {e}; these elements may be sent again after a restart"
                        ),
                        &[],
                    );
                }
            };
            match result {
                Sent::Accepted(status) => {
                    advance(self);
                    self.spool_records = usize::MAX;
                    stats.last_push_status = Some(status);
                    self.backoff.reset();
                    self.retry_at = None;
                    if self.failing.succeeded() {
                        agent_log::info("push", "backend reachable again: pushes delivered", &[]);
                    }
                }
                Sent::Rejected(details) => {
                    stats.last_push_status = Some(400);
                    stats.batches_rejected += 1;
                    agent_log::error(
                        "push",
                        "the backend rejected a batch from the spool (400); it is dropped, not resent",
                        &[("details", &details), ("elements", &records.to_string())],
                    );
                    advance(self);
                }
                Sent::TooLarge => {
                    stats.last_push_status = Some(413);
                    if records > 1 {
                        self.spool_records = records / 2;
                        self.spool_batch = None;
                    } else {
                        agent_log::error(
                            "push",
                            "a single metric from the spool is too large for the backend (413): dropped",
                            &[],
                        );
                        stats.metrics_dropped += 1;
                        advance(self);
                    }
                }
                Sent::Retry {
                    status,
                    msg,
                    retry_after,
                } => return Err(self.fail(round, stats, status, &msg, retry_after)),
                Sent::Interrupted => {
                    return Err(SinkError::Failed(
                        "push interrupted by a stop signal".into(),
                    ));
                }
            }
            self.spool_figures(stats);
        }
    }

    /// The client the rounds go through (the run loop pulls the configuration through it).
    pub fn backend(&mut self) -> &mut Backend<T> {
        &mut self.backend
    }

    /// New `[backend]` delivery settings (SIGHUP, a pulled document).
    pub fn set_delivery(&mut self, delivery: Delivery) {
        self.backoff
            .set_bounds(ns(delivery.retry_initial), ns(delivery.retry_max));
        self.delivery = delivery;
    }

    /// Batches formed and not yet acknowledged.
    pub fn pending(&self) -> &VecDeque<Batch> {
        &self.pending
    }

    /// Sends the front batch through the client (which makes the token ready and answers a
    /// 401 with one refresh and one retry).
    fn send_front(&mut self, round: &Round<'_>) -> Sent {
        let Some(batch) = self.pending.front() else {
            return Sent::Accepted(0);
        };
        send(
            &mut self.backend,
            self.delivery,
            (&mut self.body, &mut self.gz),
            batch,
            round,
        )
    }

    fn fail(
        &mut self,
        round: &Round<'_>,
        stats: &mut Stats,
        status: Option<u16>,
        msg: &str,
        retry_after: u64,
    ) -> SinkError {
        stats.last_push_status = status;
        let delay = self
            .backoff
            .failed(retry_after.saturating_mul(1_000_000_000));
        self.retry_at = Some(round.mono_ns.saturating_add(delay));
        if self.failing.failed() {
            let delay_s = format!("{:.1}", delay as f64 / 1e9);
            let failures = self.failing.count().to_string();
            let status_s = status.map_or_else(|| "-".to_string(), |s| s.to_string());
            agent_log::error(
                "push",
                msg,
                &[
                    ("status", &status_s),
                    ("failures", &failures),
                    ("retry_in_secs", &delay_s),
                    ("waiting_batches", &self.pending.len().to_string()),
                ],
            );
        }
        SinkError::Retry(msg.to_string())
    }
}

/// Sends `batch` through the client, with the envelope header written for this send.
fn send<T: Transport>(
    backend: &mut Backend<T>,
    delivery: Delivery,
    (body, gz): (&mut Vec<u8>, &mut Vec<u8>),
    batch: &Batch,
    round: &Round<'_>,
) -> Sent {
    let caller = Caller {
        collector_id: round.collector_id,
        hostname: round.hostname,
        now_unix: round.now.secs,
    };
    let result = backend.call(caller, |transport, bearer, id, cap| {
        let header = Header {
            collector_id: id,
            hostname: round.hostname,
            timestamp: batch.built,
            batch_id: &batch.id,
            version: env!("CARGO_PKG_VERSION"),
        };
        envelope::write(&header, batch.elements(), body);
        let gzip = delivery.compression == Compression::Gzip;
        let payload: &[u8] = if gzip {
            gz.clear();
            gzip::compress(body, delivery.compression_level, gz);
            gz
        } else {
            body
        };
        let mut headers: Vec<(&str, &str)> = vec![
            ("Authorization", bearer),
            ("Content-Type", "application/json"),
        ];
        if gzip {
            headers.push(("Content-Encoding", "gzip"));
        }
        let req = Request {
            method: "POST",
            path: PUSH_PATH,
            headers: &headers,
            body: Some(payload),
        };
        transport.send(&req, cap)
    });
    match result {
        Ok(r) if r.status == 401 => Sent::Retry {
            status: Some(401),
            msg: format!(
                "the backend refuses the token even after a refresh: {}; run `pganalytics-collector register --force` or check [auth]",
                super::error_text(&r.body)
            ),
            retry_after: 0,
        },
        Ok(r) => classify(&r),
        Err(CallError::Interrupted) => Sent::Interrupted,
        Err(CallError::Failed {
            status,
            msg,
            retry_after,
        }) => Sent::Retry {
            status,
            msg,
            retry_after,
        },
    }
}

/// The table of docs/protocol.md, "Replies", for every status but 401.
fn classify(r: &Response) -> Sent {
    match r.status {
        200..=299 => Sent::Accepted(r.status),
        400 => Sent::Rejected(super::error_text(&r.body)),
        413 => Sent::TooLarge,
        404 => Sent::Retry {
            status: Some(404),
            msg: format!(
                "the backend answers 404 for {PUSH_PATH}: check [backend] url (configuration error)"
            ),
            retry_after: 0,
        },
        429 => Sent::Retry {
            status: Some(429),
            msg: "the backend is rate limiting pushes (429)".to_string(),
            retry_after: r.retry_after_secs().unwrap_or(0),
        },
        300..=399 => Sent::Retry {
            status: Some(r.status),
            msg: format!(
                "the backend redirects (HTTP {}); redirects are not followed: set [backend] url to the final address",
                r.status
            ),
            retry_after: 0,
        },
        s => Sent::Retry {
            status: Some(s),
            msg: format!("push failed (HTTP {s}): {}", super::error_text(&r.body)),
            retry_after: r.retry_after_secs().unwrap_or(0),
        },
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<T: Transport> Sink for HttpsSink<T> {
    fn push_round(
        &mut self,
        round: &Round<'_>,
        buffer: &mut ElementBuffer,
        report: &mut dyn FnMut(ElementMeta, Outcome),
        stats: &mut Stats,
    ) -> Result<(), SinkError> {
        self.spool_figures(stats);
        let mut sent_any = match self.replay(round, stats) {
            Ok(sent) => sent,
            Err(e) => {
                if matches!(e, SinkError::Retry(_)) {
                    self.spooling = true;
                    self.spool_all(buffer, report, stats);
                }
                return Err(e);
            }
        };
        if self.spool.as_ref().is_some_and(|s| !s.is_empty()) {
            // The spool could not be read: what memory holds waits behind it.
            return Ok(());
        }
        loop {
            if self.pending.is_empty() {
                if sent_any && buffer.is_empty() {
                    break;
                }
                let header = Header {
                    collector_id: self.backend.envelope_id(round.collector_id),
                    hostname: round.hostname,
                    timestamp: round.now,
                    batch_id: "00000000000000000000000000000000",
                    version: env!("CARGO_PKG_VERSION"),
                };
                let head = envelope::header_bytes(&header);
                let batch = Batch::form(buffer, round.max_batch_bytes, head, round.now);
                self.pending.push_back(batch);
            }
            match self.send_front(round) {
                Sent::Accepted(status) => {
                    if let Some(b) = self.pending.pop_front() {
                        for m in b.metas {
                            report(m, Outcome::Delivered);
                        }
                    }
                    stats.last_push_status = Some(status);
                    self.backoff.reset();
                    self.retry_at = None;
                    if self.failing.succeeded() {
                        agent_log::info("push", "backend reachable again: pushes delivered", &[]);
                    }
                }
                Sent::Rejected(details) => {
                    stats.last_push_status = Some(400);
                    stats.batches_rejected += 1;
                    if let Some(b) = self.pending.pop_front() {
                        agent_log::error(
                            "push",
                            "the backend rejected a batch (400); it is dropped, not resent",
                            &[
                                ("details", &details),
                                ("batch_id", &b.id),
                                ("elements", &b.metas.len().to_string()),
                            ],
                        );
                        for m in b.metas {
                            report(m, Outcome::Dropped(DropReason::Rejected));
                        }
                    }
                }
                Sent::TooLarge => {
                    stats.last_push_status = Some(413);
                    if let Some(b) = self.pending.pop_front() {
                        if b.metas.len() > 1 {
                            agent_log::warn(
                                "push",
                                "batch too large for the backend (413): split in two",
                                &[("elements", &b.metas.len().to_string())],
                            );
                            let (first, second) = b.split();
                            self.pending.push_front(second);
                            self.pending.push_front(first);
                        } else {
                            for m in b.metas {
                                agent_log::error(
                                    "push",
                                    "a single metric is too large for the backend (413): dropped",
                                    &[("bytes", &b.json.len().to_string())],
                                );
                                stats.metrics_dropped += 1;
                                report(m, Outcome::Dropped(DropReason::Rejected));
                            }
                        }
                    }
                }
                Sent::Retry {
                    status,
                    msg,
                    retry_after,
                } => {
                    let e = self.fail(round, stats, status, &msg, retry_after);
                    if self.spool.is_some() {
                        self.spooling = true;
                        self.spool_all(buffer, report, stats);
                    }
                    return Err(e);
                }
                Sent::Interrupted => {
                    return Err(SinkError::Failed(
                        "push interrupted by a stop signal".into(),
                    ));
                }
            }
            sent_any = true;
        }
        self.spooling = false;
        self.spool_figures(stats);
        Ok(())
    }

    fn spool_memory(
        &mut self,
        buffer: &mut ElementBuffer,
        report: &mut dyn FnMut(ElementMeta, Outcome),
        stats: &mut Stats,
        exit: bool,
    ) {
        if self.spooling || exit {
            self.spool_all(buffer, report, stats);
        }
    }

    fn next_wakeup(&self) -> Option<u64> {
        if self.backend.deadline().is_some() {
            return None;
        }
        self.retry_at
    }

    fn last_push(&mut self, deadline: Instant) {
        self.backend.last_calls(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthMode;
    use crate::proto::jwt;
    use crate::push::client::{ClientSettings, REFRESH_PATH};
    use crate::push::conn::{ConnConfig, ConnError};
    use std::path::PathBuf;

    /// Answers from a script and records every request.
    struct Fake {
        script: VecDeque<Result<Response, ConnError>>,
        sent: Vec<Sent_>,
    }

    #[derive(Debug, Clone)]
    struct Sent_ {
        path: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Sent_ {
        fn header(&self, n: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        }
        fn json(&self) -> serde_json::Value {
            let raw = if self.header("content-encoding") == Some("gzip") {
                gzip::decompress(&self.body, 1 << 24).unwrap()
            } else {
                self.body.clone()
            };
            serde_json::from_slice(&raw).unwrap()
        }
    }

    impl Transport for Fake {
        fn send(
            &mut self,
            req: &Request<'_>,
            _cap: Option<Instant>,
        ) -> Result<Response, ConnError> {
            self.sent.push(Sent_ {
                path: req.path.to_string(),
                headers: req
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body: req.body.unwrap_or_default().to_vec(),
            });
            self.script
                .pop_front()
                .unwrap_or_else(|| Err(ConnError::Transient("script ended".into())))
        }
        fn reconfigure(&mut self, _c: &ConnConfig) -> Result<(), String> {
            Ok(())
        }
        fn ignore_signals(&mut self) {}
    }

    fn status(code: u16) -> Result<Response, ConnError> {
        Ok(Response {
            status: code,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    fn reply(code: u16, body: &str, headers: &[(&str, &str)]) -> Result<Response, ConnError> {
        Ok(Response {
            status: code,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        })
    }

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pgac-sink-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Shared-secret auth (no files but the key), no compression unless asked.
    fn config(dir: &std::path::Path, gzip: bool) -> Config {
        let mut c = crate::config::defaults_with_env(&|_| None);
        c.backend.url = Some(crate::config::BackendUrl::parse("https://backend.test").unwrap());
        c.backend.compression = if gzip {
            Compression::Gzip
        } else {
            Compression::None
        };
        c.backend.max_batch_bytes = 1000;
        c.collector.state_dir = dir.to_path_buf();
        let key = dir.join("jwt.key");
        std::fs::write(&key, "k-0123456789abcdef0123456789abcdef\n").unwrap();
        c.auth.mode = AuthMode::SharedSecret;
        c.auth.jwt_secret_file = Some(key);
        c
    }

    fn sink(c: &Config, script: Vec<Result<Response, ConnError>>) -> HttpsSink<Fake> {
        let fake = Fake {
            script: script.into(),
            sent: Vec::new(),
        };
        let client = Backend::new(fake, ClientSettings::from_config(c).unwrap()).unwrap();
        HttpsSink::new(client, Delivery::from_config(c), 7)
    }

    fn fill(buffer: &mut ElementBuffer, tags: std::ops::Range<u64>) {
        for tag in tags {
            let json = format!(
                "{{\"type\":\"t\",\"timestamp\":\"2026-03-01T12:00:00Z\",\"n\":{tag},\"pad\":\"{}\"}}",
                "x".repeat(100)
            );
            buffer
                .push(
                    ElementMeta { source: 2, tag },
                    json.as_bytes(),
                    &mut |_, _| panic!("no overflow"),
                )
                .unwrap();
        }
    }

    fn round(mono_ns: u64) -> Round<'static> {
        Round {
            collector_id: "c-1",
            hostname: "db1",
            now: WallTime {
                secs: 1_772_366_400,
                nanos: 0,
            },
            mono_ns,
            max_batch_bytes: 1000,
        }
    }

    struct Run {
        outcomes: Vec<(u64, Outcome)>,
        stats: Stats,
    }

    impl Run {
        fn new() -> Run {
            Run {
                outcomes: Vec::new(),
                stats: Stats::default(),
            }
        }
        fn round(
            &mut self,
            s: &mut HttpsSink<Fake>,
            b: &mut ElementBuffer,
            mono: u64,
        ) -> Result<(), SinkError> {
            let out = &mut self.outcomes;
            s.push_round(
                &round(mono),
                b,
                &mut |m, o| out.push((m.tag, o)),
                &mut self.stats,
            )
        }
    }

    #[test]
    fn several_batches_per_round_each_within_max_and_delivered_once() {
        let dir = tmpdir("many");
        let c = config(&dir, true);
        let mut s = sink(&c, (0..20).map(|_| status(202)).collect());
        let mut b = ElementBuffer::new(1 << 16);
        fill(&mut b, 0..20);
        let mut run = Run::new();
        run.round(&mut s, &mut b, 0).unwrap();
        let sent = s.backend.transport().sent.clone();
        assert!(sent.len() > 3, "{}", sent.len());
        let mut seen = Vec::new();
        for req in sent {
            assert_eq!(req.path, PUSH_PATH);
            assert_eq!(req.header("content-encoding"), Some("gzip"));
            assert!(req.header("authorization").unwrap().starts_with("Bearer "));
            let v = req.json();
            assert!(serde_json::to_vec(&v).unwrap().len() <= 1000);
            assert_eq!(v["collector_id"], "c-1");
            assert_eq!(v["metrics_count"], v["metrics"].as_array().unwrap().len());
            seen.extend(
                v["metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["n"].as_u64().unwrap()),
            );
        }
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        assert_eq!(
            run.outcomes,
            (0..20).map(|t| (t, Outcome::Delivered)).collect::<Vec<_>>()
        );
        assert_eq!(run.stats.last_push_status, Some(202));
        assert!(s.pending().is_empty() && b.is_empty());
        // An empty round still sends one (empty) envelope: the heartbeat.
        let mut s = sink(&c, vec![status(200)]);
        run.round(&mut s, &mut b, 0).unwrap();
        assert_eq!(s.backend.transport().sent.len(), 1);
        assert_eq!(s.backend.transport().sent[0].json()["metrics_count"], 0);
    }

    #[test]
    fn a_failed_round_spools_memory_with_batch_ids_and_the_spool_is_sent_first() {
        let dir = tmpdir("spooled");
        let c = config(&dir, false);
        let mut s = sink(
            &c,
            vec![
                status(503),
                status(200),
                status(200),
                status(200),
                status(200),
            ],
        )
        .with_spool(Spool::open(&dir, 8 << 20).unwrap());
        let mut b = ElementBuffer::new(1 << 16);
        fill(&mut b, 0..3);
        let mut run = Run::new();
        // Healthy so far: nothing on disk.
        assert!(!dir.join("spool").exists());
        assert!(matches!(
            run.round(&mut s, &mut b, 0),
            Err(SinkError::Retry(_))
        ));
        // The failed batch (its id kept) left memory for the spool: spooled is final.
        assert!(b.is_empty() && s.pending().is_empty());
        assert_eq!(
            run.outcomes,
            (0..3).map(|t| (t, Outcome::Spooled)).collect::<Vec<_>>()
        );
        assert_eq!(run.stats.spool.unwrap().elements, 3);
        // While failing, each collection round goes to the spool.
        fill(&mut b, 3..5);
        s.spool_memory(
            &mut b,
            &mut |m, o| run.outcomes.push((m.tag, o)),
            &mut run.stats,
            false,
        );
        assert!(b.is_empty());
        assert_eq!(run.stats.spool.unwrap().elements, 5);
        // Newer data in memory waits behind the spool.
        fill(&mut b, 5..6);
        run.round(&mut s, &mut b, 10_000_000_000).unwrap();
        let sent = s.backend.transport().sent.clone();
        let ids: Vec<String> = sent
            .iter()
            .map(|r| r.json()["batch_id"].as_str().unwrap().to_string())
            .collect();
        let ns: Vec<Vec<u64>> = sent
            .iter()
            .map(|r| {
                r.json()["metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["n"].as_u64().unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(ids[1], ids[0], "the spooled batch is resent as itself");
        assert_eq!(sent[1].body, sent[0].body);
        assert_eq!(ns[1..], [vec![0, 1, 2], vec![3, 4], vec![5]]);
        assert_ne!(ids[2], ids[1]);
        assert_eq!(run.stats.spool.unwrap().elements, 0);
        assert!(
            crate::sys::spoolfile::list_dir(&dir.join("spool"))
                .unwrap()
                .is_empty(),
            "a delivered spool leaves no file"
        );
        // Healthy again: memory only.
        fill(&mut b, 6..7);
        run.round(&mut s, &mut b, 20_000_000_000).unwrap();
        assert_eq!(run.outcomes.last(), Some(&(6, Outcome::Delivered)));
    }

    #[test]
    fn a_failed_batch_is_resent_with_its_id_and_elements_then_new_ones_follow() {
        let dir = tmpdir("resend");
        let c = config(&dir, false);
        let mut s = sink(
            &c,
            vec![
                status(503),
                Err(ConnError::Transient("b:443: timed out".into())),
                status(200),
                status(200),
            ],
        );
        let mut b = ElementBuffer::new(1 << 16);
        fill(&mut b, 0..3);
        let mut run = Run::new();
        assert!(matches!(
            run.round(&mut s, &mut b, 0),
            Err(SinkError::Retry(_))
        ));
        assert_eq!(run.stats.last_push_status, Some(503));
        let first_wake = s.next_wakeup().unwrap();
        assert!((super::super::backoff::MIN_DELAY_NS..=1_000_000_000).contains(&first_wake));
        // Collection goes on while the batch waits.
        fill(&mut b, 3..5);
        assert!(matches!(
            run.round(&mut s, &mut b, first_wake),
            Err(SinkError::Retry(_))
        ));
        assert!(s.next_wakeup().unwrap() > first_wake);
        run.round(&mut s, &mut b, 10_000_000_000).unwrap();
        assert!(s.next_wakeup().is_none());
        let sent = s.backend.transport().sent.clone();
        assert_eq!(sent.len(), 4);
        let ids: Vec<String> = sent
            .iter()
            .map(|r| r.json()["batch_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids[0], ids[1]);
        assert_eq!(ids[0], ids[2]);
        assert_ne!(ids[2], ids[3]);
        assert_eq!(sent[2].body, sent[0].body, "a resend is the same batch");
        assert_eq!(sent[3].json()["metrics"][0]["n"], 3);
        assert_eq!(
            run.outcomes,
            (0..5).map(|t| (t, Outcome::Delivered)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn rejected_batches_are_dropped_once_and_counted() {
        let dir = tmpdir("400");
        let c = config(&dir, false);
        let mut s = sink(
            &c,
            vec![reply(
                400,
                r#"{"code":400,"message":"bad","details":"no type"}"#,
                &[],
            )],
        );
        let mut b = ElementBuffer::new(1 << 16);
        fill(&mut b, 0..2);
        let mut run = Run::new();
        run.round(&mut s, &mut b, 0).unwrap();
        assert_eq!(run.stats.batches_rejected, 1);
        assert_eq!(
            run.outcomes,
            vec![
                (0, Outcome::Dropped(DropReason::Rejected)),
                (1, Outcome::Dropped(DropReason::Rejected))
            ]
        );
        assert!(s.pending().is_empty());
    }

    #[test]
    fn too_large_splits_into_new_batches_and_drops_a_single_element() {
        let dir = tmpdir("413");
        let c = config(&dir, false);
        let mut s = sink(&c, vec![status(413), status(200), status(413)]);
        let mut b = ElementBuffer::new(1 << 16);
        fill(&mut b, 0..3);
        let mut run = Run::new();
        // 3 elements in one batch; 413 → [0] + [1, 2]; 200 for [0]; 413 for [1, 2] → [1] + [2];
        // the script ends (a transient error) on [1].
        run.round(&mut s, &mut b, 0).unwrap_err();
        let sent = s.backend.transport().sent.clone();
        assert_eq!(sent.len(), 4);
        assert_eq!(sent[3].json()["metrics_count"], 1);
        assert_eq!(s.pending().len(), 2);
        let ids: Vec<String> = sent
            .iter()
            .map(|r| r.json()["batch_id"].as_str().unwrap().to_string())
            .collect();
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        assert_eq!(sent[0].json()["metrics_count"], 3);
        assert_eq!(sent[1].json()["metrics_count"], 1);
        assert_eq!(sent[2].json()["metrics_count"], 2);
        let mut s2 = sink(&c, vec![status(413)]);
        let mut b2 = ElementBuffer::new(1 << 16);
        fill(&mut b2, 9..10);
        let mut run2 = Run::new();
        run2.round(&mut s2, &mut b2, 0).unwrap();
        assert_eq!(
            run2.outcomes,
            vec![(9, Outcome::Dropped(DropReason::Rejected))]
        );
        assert_eq!(run2.stats.metrics_dropped, 1);
        assert_eq!(run.outcomes, vec![(0, Outcome::Delivered)]);
    }

    #[test]
    fn retry_after_is_honoured() {
        let dir = tmpdir("429");
        let c = config(&dir, false);
        let mut s = sink(&c, vec![reply(429, "", &[("Retry-After", "120")])]);
        let mut b = ElementBuffer::new(1 << 16);
        let mut run = Run::new();
        run.round(&mut s, &mut b, 5).unwrap_err();
        assert!(s.next_wakeup().unwrap() >= 5 + 120_000_000_000);
        assert_eq!(run.stats.last_push_status, Some(429));
    }

    #[test]
    fn shared_secret_token_has_the_spec_claims_and_401_resigns_and_retries_once() {
        let dir = tmpdir("ss");
        let c = config(&dir, false);
        let mut s = sink(&c, vec![status(401), status(200)]);
        let mut b = ElementBuffer::new(1 << 16);
        fill(&mut b, 0..1);
        let mut run = Run::new();
        run.round(&mut s, &mut b, 0).unwrap();
        assert_eq!(s.backend.transport().sent.len(), 2);
        let auth = s.backend.transport().sent[1]
            .header("authorization")
            .unwrap();
        let token = auth.strip_prefix("Bearer ").unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &jwt::verify_hs256(token, b"k-0123456789abcdef0123456789abcdef").unwrap(),
        )
        .unwrap();
        assert_eq!(claims["collector_id"], "c-1");
        assert_eq!(claims["exp"], 1_772_366_400 + 900);
        // A second 401 after the retry is a failure, not a loop.
        let mut s = sink(&c, vec![status(401), status(401), status(200)]);
        fill(&mut b, 1..2);
        run.round(&mut s, &mut b, 0).unwrap_err();
        assert_eq!(s.backend.transport().sent.len(), 2);
    }

    fn backend_token(id: &str, iat: i64, exp: i64) -> String {
        let claims = format!(r#"{{"collector_id":"{id}","iat":{iat},"exp":{exp}}}"#);
        jwt::sign_hs256(claims.as_bytes(), b"server")
    }

    fn token_config(dir: &std::path::Path, token: &str) -> Config {
        let mut c = config(dir, false);
        c.auth.mode = AuthMode::Token;
        std::fs::write(dir.join("collector.token"), format!("{token}\n")).unwrap();
        c
    }

    #[test]
    fn token_is_refreshed_when_due_and_persisted_before_use() {
        let now = 1_772_366_400;
        let dir = tmpdir("refresh");
        let old = backend_token("c-1", now - 1000, now + 800);
        let c = token_config(&dir, &old);
        let new = backend_token("c-1", now, now + 1800);
        let mut s = sink(
            &c,
            vec![
                reply(
                    200,
                    &format!(r#"{{"token":"{new}","expires_at":"x"}}"#),
                    &[],
                ),
                status(200),
            ],
        );
        let mut b = ElementBuffer::new(1 << 16);
        let mut run = Run::new();
        run.round(&mut s, &mut b, 0).unwrap();
        let sent = s.backend.transport().sent.clone();
        assert_eq!(sent[0].path, REFRESH_PATH);
        assert_eq!(
            sent[0].header("authorization"),
            Some(format!("Bearer {old}").as_str())
        );
        assert_eq!(
            sent[1].header("authorization"),
            Some(format!("Bearer {new}").as_str())
        );
        let stored = std::fs::read_to_string(dir.join("collector.token")).unwrap();
        assert_eq!(stored.trim(), new);
    }

    #[test]
    fn refused_refresh_without_secret_is_an_error_state_that_never_leaks_the_token() {
        let now = 1_772_366_400;
        let dir = tmpdir("norefresh");
        let tok = backend_token("c-1", now, now + 1800);
        let c = token_config(&dir, &tok);
        let mut s = sink(&c, vec![status(401), status(401), status(200)]);
        let mut b = ElementBuffer::new(1 << 16);
        fill(&mut b, 0..1);
        let mut run = Run::new();
        if std::env::var("PGANALYTICS_REGISTRATION_SECRET").is_ok() {
            return;
        }
        let err = run.round(&mut s, &mut b, 0).unwrap_err().to_string();
        assert!(err.contains("register"), "{err}");
        assert!(!err.contains(&tok));
        assert_eq!(
            s.backend.transport().sent.len(),
            2,
            "one push, one refresh, no loop"
        );
        assert_eq!(s.pending().len(), 1, "the batch is kept");
        assert!(run.outcomes.is_empty());
    }

    #[test]
    fn refused_refresh_with_a_secret_registers_again_and_batches_get_the_new_id() {
        let now = 1_772_366_400;
        let dir = tmpdir("rereg");
        let tok = backend_token("c-1", now, now + 1800);
        let mut c = token_config(&dir, &tok);
        let secret = dir.join("reg.secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        c.auth.registration_secret_file = Some(secret);
        let new = backend_token("c-2", now, now + 1800);
        let mut s = sink(
            &c,
            vec![
                status(401),
                status(401),
                reply(
                    200,
                    &format!(r#"{{"collector_id":"c-2","token":"{new}","expires_at":"x"}}"#),
                    &[],
                ),
                status(200),
            ],
        );
        let mut b = ElementBuffer::new(1 << 16);
        fill(&mut b, 0..1);
        let mut run = Run::new();
        run.round(&mut s, &mut b, 0).unwrap();
        let sent = s.backend.transport().sent.clone();
        assert_eq!(sent[2].path, super::super::client::REGISTER_PATH);
        assert_eq!(sent[2].header("x-registration-secret"), Some("s3cret"));
        assert_eq!(sent[0].json()["batch_id"], sent[3].json()["batch_id"]);
        assert_eq!(sent[3].json()["collector_id"], "c-2");
        assert_eq!(s.backend.registered_id(), Some("c-2"));
        assert_eq!(
            std::fs::read_to_string(dir.join("collector.id"))
                .unwrap()
                .trim(),
            "c-2"
        );
        assert_eq!(run.outcomes, vec![(0, Outcome::Delivered)]);
    }

    /// Security rule S5: only a refresh refused with 401 re-registers, at most once an hour.
    #[test]
    fn a_404_on_refresh_or_a_second_refusal_within_the_hour_never_registers_again() {
        let now = 1_772_366_400;
        let dir = tmpdir("rereg-limit");
        let tok = backend_token("c-1", now, now + 1800);
        let mut c = token_config(&dir, &tok);
        let secret = dir.join("reg.secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        c.auth.registration_secret_file = Some(secret);
        // 401 on push, 404 on refresh: a backend problem, not a lost identity.
        let mut s = sink(&c, vec![status(401), status(404)]);
        let mut b = ElementBuffer::new(1 << 16);
        fill(&mut b, 0..1);
        let mut run = Run::new();
        run.round(&mut s, &mut b, 0).unwrap_err();
        let paths: Vec<String> = s
            .backend
            .transport()
            .sent
            .iter()
            .map(|r| r.path.clone())
            .collect();
        assert_eq!(paths, vec![PUSH_PATH, REFRESH_PATH]);

        // 401 on refresh registers once; the next refusal within the hour does not.
        let new = backend_token("c-2", now, now + 1800);
        let mut s = sink(
            &c,
            vec![
                status(401),
                status(401),
                reply(
                    200,
                    &format!(r#"{{"collector_id":"c-2","token":"{new}","expires_at":"x"}}"#),
                    &[],
                ),
                status(401),
                status(401),
                status(401),
            ],
        );
        let _ = std::fs::remove_file(dir.join("collector.id"));
        run.round(&mut s, &mut b, 0).unwrap_err();
        let registered = |s: &mut HttpsSink<Fake>| {
            s.backend
                .transport()
                .sent
                .iter()
                .filter(|r| r.path == super::super::client::REGISTER_PATH)
                .count()
        };
        assert_eq!(registered(&mut s), 1);
        let err = run.round(&mut s, &mut b, 1).unwrap_err().to_string();
        assert_eq!(
            registered(&mut s),
            1,
            "no second registration within the hour"
        );
        assert!(err.contains("not registering again"), "{err}");
    }

    #[test]
    fn an_unregistered_engine_uses_the_tokens_collector_id() {
        let now = 1_772_366_400;
        let dir = tmpdir("claim");
        let c = token_config(&dir, &backend_token("c-7", now, now + 1800));
        let mut s = sink(&c, vec![status(200)]);
        let mut b = ElementBuffer::new(1 << 16);
        let r = Round {
            collector_id: "unregistered",
            ..round(0)
        };
        s.push_round(&r, &mut b, &mut |_, _| {}, &mut Stats::default())
            .unwrap();
        assert_eq!(s.backend.transport().sent[0].json()["collector_id"], "c-7");
    }

    #[test]
    fn last_push_ignores_the_backoff() {
        let dir = tmpdir("last");
        let c = config(&dir, false);
        let mut s = sink(&c, vec![status(500), status(200)]);
        let mut b = ElementBuffer::new(1 << 16);
        let mut run = Run::new();
        run.round(&mut s, &mut b, 0).unwrap_err();
        assert!(s.next_wakeup().is_some());
        s.last_push(Instant::now() + Duration::from_secs(5));
        assert!(s.next_wakeup().is_none());
        run.round(&mut s, &mut b, 1).unwrap();
    }
}
