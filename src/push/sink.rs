//! The HTTPS sink: protocol.md §4.0 delivery and §4.1 replies.
//!
//! ```text
//!            form (oldest waiting, ≤ max_batch_bytes, new batch_id)
//!  buffer ───────────────────────────────▶ pending ──POST──▶ 2xx  → Delivered, next batch
//!                                           ▲   │            400  → Dropped(Rejected), next
//!                 413: split in two (new ids) └───┤            401  → refresh/re-sign once, retry once
//!                                                 └──────────▶ else → keep, back off (retry_at)
//! ```
//!
//! A batch keeps its elements (metas and JSON) and its `batch_id` across resends until it is
//! acknowledged or given up; only the envelope header is written again at each send, so a
//! re-registration's new `collector_id` reaches batches already formed. New batches are formed
//! only when none is pending, so what is held outside the buffer is at most one batch (two
//! after a split).

use super::auth::{self, Auth, Prepared, Token};
use super::backoff::Backoff;
use super::conn::{ConnError, Request, Transport};
use super::pull::{self, PullResult};
use crate::agent_log::{self, Repeated};
use crate::config::{Compression, Config};
use crate::pipeline::envelope::{self, FRAME_BYTES, Header};
use crate::pipeline::sink::{Round, Sink, SinkError};
use crate::pipeline::{DropReason, ElementBuffer, ElementMeta, Outcome, Stats};
use crate::proto::gzip;
use crate::proto::http::Response;
use crate::util::WallTime;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const PUSH_PATH: &str = "/api/v1/metrics/push";
pub const REFRESH_PATH: &str = "/api/v1/collectors/refresh-token";

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
    transport: T,
    auth: Auth,
    config: Config,
    pending: VecDeque<Batch>,
    backoff: Backoff,
    /// While failing: when the next attempt may run (monotonic ns).
    retry_at: Option<u64>,
    failing: Repeated,
    /// Early refreshes (before the token expires) that failed in a row.
    refresh_failing: Repeated,
    /// The id of a re-registration; envelopes use it from then on.
    collector_id: Option<String>,
    /// The last push after SIGTERM: every wait ends by then, backoff is ignored.
    final_deadline: Option<Instant>,
    body: Vec<u8>,
    gz: Vec<u8>,
}

impl<T: Transport> HttpsSink<T> {
    pub fn new(transport: T, config: &Config, seed: u64) -> Result<HttpsSink<T>, String> {
        let auth = Auth::from_config(config)?;
        Ok(HttpsSink {
            transport,
            auth,
            config: config.clone(),
            pending: VecDeque::new(),
            backoff: Backoff::new(
                ns(config.backend.retry_initial),
                ns(config.backend.retry_max),
                seed,
            ),
            retry_at: None,
            failing: Repeated::default(),
            refresh_failing: Repeated::default(),
            collector_id: None,
            final_deadline: None,
            body: Vec::new(),
            gz: Vec::new(),
        })
    }

    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Batches formed and not yet acknowledged.
    pub fn pending(&self) -> &VecDeque<Batch> {
        &self.pending
    }

    /// The id envelopes carry: a re-registration's, else the engine's; an unregistered
    /// engine with a backend token takes the token's `collector_id` claim (they must match).
    fn id<'a>(&'a self, round: &'a Round<'_>) -> &'a str {
        if let Some(id) = self.collector_id.as_deref() {
            return id;
        }
        if round.collector_id == "unregistered"
            && self.auth.is_backend()
            && let Some(claim) = self.auth.token().and_then(|t| t.collector_id.as_deref())
        {
            return claim;
        }
        round.collector_id
    }

    /// Sends the front batch, with the §4.1 401 recovery (one refresh, one retry).
    fn send_front(&mut self, round: &Round<'_>) -> Sent {
        let now_unix = round.now.secs;
        if let Err(s) = self.ready_token(round, now_unix) {
            return s;
        }
        let mut response = match self.post_front(round) {
            Ok(r) => r,
            Err(s) => return s,
        };
        if response.status == 401 {
            if let Err(s) = self.recover_auth(round, now_unix) {
                return s;
            }
            response = match self.post_front(round) {
                Ok(r) => r,
                Err(s) => return s,
            };
            if response.status == 401 {
                return Sent::Retry {
                    status: Some(401),
                    msg: format!(
                        "the backend refuses the token even after a refresh: {}; run `pganalytics-collector register --force` or check [auth]",
                        super::error_text(&response.body)
                    ),
                    retry_after: 0,
                };
            }
        }
        classify(&response)
    }

    fn post_front(&mut self, round: &Round<'_>) -> Result<Response, Sent> {
        let Some(batch) = self.pending.front() else {
            return Err(Sent::Accepted(0));
        };
        let id = self.id(round).to_string();
        let header = Header {
            collector_id: &id,
            hostname: round.hostname,
            timestamp: batch.built,
            batch_id: &batch.id,
            version: env!("CARGO_PKG_VERSION"),
        };
        envelope::write(&header, batch.elements(), &mut self.body);
        let gzip = self.config.backend.compression == Compression::Gzip;
        let body: &[u8] = if gzip {
            self.gz.clear();
            gzip::compress(
                &self.body,
                self.config.backend.compression_level,
                &mut self.gz,
            );
            &self.gz
        } else {
            &self.body
        };
        let bearer = self.auth.token().map(Token::bearer).unwrap_or_default();
        let mut headers: Vec<(&str, &str)> = vec![
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ];
        if gzip {
            headers.push(("Content-Encoding", "gzip"));
        }
        let req = Request {
            method: "POST",
            path: PUSH_PATH,
            headers: &headers,
            body: Some(body),
        };
        self.transport
            .send(&req, self.final_deadline)
            .map_err(conn_failure)
    }

    /// Signs or refreshes the token when due; a missing token is a failure to back off from.
    fn ready_token(&mut self, round: &Round<'_>, now_unix: i64) -> Result<(), Sent> {
        let id = self.id(round).to_string();
        match self.auth.prepare(&id, round.hostname, now_unix) {
            Prepared::Ready => Ok(()),
            Prepared::RefreshDue => {
                // A failed early refresh is logged; the current token may still work.
                if let Err(s) = self.refresh() {
                    if let Sent::Interrupted = s {
                        return Err(s);
                    }
                    if let Sent::Retry { msg, .. } = &s
                        && self.refresh_failing.failed()
                    {
                        let n = self.refresh_failing.count().to_string();
                        agent_log::warn("push", msg, &[("failures", &n)]);
                    }
                }
                Ok(())
            }
            Prepared::Missing => {
                if auth::registration_secret(&self.config).is_some() {
                    return self.reregister(round);
                }
                Err(Sent::Retry {
                    status: None,
                    msg: format!(
                        "no token at {}: run `pganalytics-collector register` first, or set [auth] token_file",
                        auth::token_path(&self.config).display()
                    ),
                    retry_after: 0,
                })
            }
        }
    }

    /// After a 401: re-sign (shared secret) or refresh, else re-register when a secret is
    /// available.
    fn recover_auth(&mut self, round: &Round<'_>, now_unix: i64) -> Result<(), Sent> {
        if !self.auth.is_backend() {
            self.auth.invalidate();
            let id = self.id(round).to_string();
            self.auth.prepare(&id, round.hostname, now_unix);
            return Ok(());
        }
        match self.refresh() {
            Ok(()) => Ok(()),
            Err(Sent::Retry {
                status: Some(401 | 404),
                msg,
                ..
            }) => {
                if auth::registration_secret(&self.config).is_some() {
                    agent_log::warn("push", &msg, &[("action", "registering again")]);
                    self.reregister(round)
                } else {
                    Err(Sent::Retry {
                        status: Some(401),
                        msg: format!(
                            "{msg}; the collector keeps collecting but cannot push: run `pganalytics-collector register --force`, or set [auth] registration_secret_file to let it register again"
                        ),
                        retry_after: 0,
                    })
                }
            }
            Err(other) => Err(other),
        }
    }

    /// `POST /api/v1/collectors/refresh-token`; the new token is persisted before use.
    fn refresh(&mut self) -> Result<(), Sent> {
        let bearer = self.auth.token().map(Token::bearer).unwrap_or_default();
        let headers = [("Authorization", bearer.as_str())];
        let req = Request {
            method: "POST",
            path: REFRESH_PATH,
            headers: &headers,
            body: Some(b""),
        };
        let r = self
            .transport
            .send(&req, self.final_deadline)
            .map_err(conn_failure)?;
        if !(200..300).contains(&r.status) {
            return Err(Sent::Retry {
                status: Some(r.status),
                msg: format!(
                    "token refresh refused (HTTP {}): {}",
                    r.status,
                    super::error_text(&r.body)
                ),
                retry_after: r.retry_after_secs().unwrap_or(0),
            });
        }
        let token = serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_string))
            .ok_or_else(|| retry_msg("token refresh: the reply has no token"))?;
        let token = Token::parse(&token).map_err(|e| retry_msg(&format!("token refresh: {e}")))?;
        self.auth.store(token).map_err(|e| retry_msg(&e))?;
        self.refresh_failing.succeeded();
        agent_log::info("push", "token refreshed", &[]);
        Ok(())
    }

    fn reregister(&mut self, round: &Round<'_>) -> Result<(), Sent> {
        let Some(secret) = auth::registration_secret(&self.config) else {
            return Err(retry_msg("no registration secret"));
        };
        let hostname = round.hostname.to_string();
        let reg = super::register::register(
            &mut self.transport,
            &secret,
            &hostname,
            &hostname,
            self.final_deadline,
        )
        .map_err(|e| match e {
            ConnOr::Conn(c) => conn_failure(c),
            ConnOr::Backend(msg) => retry_msg(&format!("registering again failed: {msg}")),
        })?;
        super::register::persist(&self.config.collector.state_dir, &reg, true)
            .map_err(|e| retry_msg(&e))?;
        // The registration writes `<state_dir>/collector.token`; a configured token_file gets
        // the new token too.
        let token =
            Token::parse(&reg.token).map_err(|e| retry_msg(&format!("registration: {e}")))?;
        self.auth.store(token).map_err(|e| retry_msg(&e))?;
        if let Err(e) = self.transport.reconfigure(&self.config) {
            agent_log::warn("push", &e, &[]);
        }
        agent_log::warn(
            "push",
            "registered again: the backend knows this collector under a new id",
            &[("collector_id", &reg.collector_id)],
        );
        self.collector_id = Some(reg.collector_id);
        Ok(())
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

/// Errors of registration as the sink needs them.
pub enum ConnOr {
    Conn(ConnError),
    Backend(String),
}

fn retry_msg(msg: &str) -> Sent {
    Sent::Retry {
        status: None,
        msg: msg.to_string(),
        retry_after: 0,
    }
}

fn conn_failure(e: ConnError) -> Sent {
    match e {
        ConnError::Interrupted => Sent::Interrupted,
        ConnError::Transient(msg) | ConnError::Config(msg) => Sent::Retry {
            status: None,
            msg,
            retry_after: 0,
        },
    }
}

/// The §4.1 table, for every status but 401.
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
        let mut sent_any = false;
        loop {
            if self.pending.is_empty() {
                if sent_any && buffer.is_empty() {
                    break;
                }
                let header = Header {
                    collector_id: self.id(round),
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
                } => return Err(self.fail(round, stats, status, &msg, retry_after)),
                Sent::Interrupted => {
                    return Err(SinkError::Failed(
                        "push interrupted by a stop signal".into(),
                    ));
                }
            }
            sent_any = true;
        }
        Ok(())
    }

    fn next_wakeup(&self) -> Option<u64> {
        if self.final_deadline.is_some() {
            return None;
        }
        self.retry_at
    }

    fn reload(&mut self, config: &Config) {
        match Auth::from_config(config) {
            Ok(mut a) => {
                // Keep a current backend token when the file did not change.
                if let (
                    Auth::Backend {
                        token: new,
                        file: nf,
                    },
                    Auth::Backend {
                        token: old,
                        file: of,
                    },
                ) = (&mut a, &mut self.auth)
                    && nf == of
                    && new.is_none()
                {
                    *new = old.take();
                }
                self.auth = a;
            }
            Err(e) => agent_log::error("push", &format!("[auth] not reloaded: {e}"), &[]),
        }
        self.backoff.set_bounds(
            ns(config.backend.retry_initial),
            ns(config.backend.retry_max),
        );
        self.config = config.clone();
        if let Err(e) = self.transport.reconfigure(config) {
            agent_log::error("push", &format!("TLS settings not reloaded: {e}"), &[]);
        }
    }

    fn last_push(&mut self, deadline: Instant) {
        self.final_deadline = Some(deadline);
        self.transport.ignore_signals();
    }

    fn collector_id(&self) -> Option<&str> {
        self.collector_id.as_deref()
    }

    fn pull_config(&mut self, round: &Round<'_>, applied: Option<i64>) -> Option<PullResult> {
        let now_unix = round.now.secs;
        if let Err(s) = self.ready_token(round, now_unix) {
            return Some(PullResult::Failed(sent_text(s)));
        }
        let mut retried = false;
        loop {
            let bearer = self.auth.token().map(Token::bearer).unwrap_or_default();
            let id = self.id(round).to_string();
            match pull::pull(
                &mut self.transport,
                &id,
                &bearer,
                applied,
                self.final_deadline,
            ) {
                Ok((401, _)) if !retried => {
                    retried = true;
                    if let Err(s) = self.recover_auth(round, now_unix) {
                        return Some(PullResult::Failed(sent_text(s)));
                    }
                }
                Ok((_, result)) => return Some(result),
                Err(e) => return Some(PullResult::Failed(format!("config pull: {e}"))),
            }
        }
    }
}

fn sent_text(s: Sent) -> String {
    match s {
        Sent::Retry { msg, .. } | Sent::Rejected(msg) => msg,
        Sent::Interrupted => "interrupted by a stop signal".to_string(),
        Sent::Accepted(_) | Sent::TooLarge => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthMode;
    use crate::proto::jwt;
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
        fn reconfigure(&mut self, _config: &Config) -> Result<(), String> {
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
        std::fs::write(&key, "k\n").unwrap();
        c.auth.mode = AuthMode::SharedSecret;
        c.auth.jwt_secret_file = Some(key);
        c
    }

    fn sink(c: &Config, script: Vec<Result<Response, ConnError>>) -> HttpsSink<Fake> {
        let fake = Fake {
            script: script.into(),
            sent: Vec::new(),
        };
        HttpsSink::new(fake, c, 7).unwrap()
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
        let sent = &s.transport.sent;
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
        assert_eq!(s.transport.sent.len(), 1);
        assert_eq!(s.transport.sent[0].json()["metrics_count"], 0);
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
        let sent = &s.transport.sent;
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
        let sent = &s.transport.sent;
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
        assert_eq!(s.transport.sent.len(), 2);
        let auth = s.transport.sent[1].header("authorization").unwrap();
        let token = auth.strip_prefix("Bearer ").unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&jwt::verify_hs256(token, b"k").unwrap()).unwrap();
        assert_eq!(claims["collector_id"], "c-1");
        assert_eq!(claims["exp"], 1_772_366_400 + 900);
        // A second 401 after the retry is a failure, not a loop.
        let mut s = sink(&c, vec![status(401), status(401), status(200)]);
        fill(&mut b, 1..2);
        run.round(&mut s, &mut b, 0).unwrap_err();
        assert_eq!(s.transport.sent.len(), 2);
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
        let sent = &s.transport.sent;
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
        assert_eq!(s.transport.sent.len(), 2, "one push, one refresh, no loop");
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
                status(404),
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
        let sent = &s.transport.sent;
        assert_eq!(sent[2].path, super::super::register::REGISTER_PATH);
        assert_eq!(sent[2].header("x-registration-secret"), Some("s3cret"));
        assert_eq!(sent[0].json()["batch_id"], sent[3].json()["batch_id"]);
        assert_eq!(sent[3].json()["collector_id"], "c-2");
        assert_eq!(s.collector_id(), Some("c-2"));
        assert_eq!(
            std::fs::read_to_string(dir.join("collector.id"))
                .unwrap()
                .trim(),
            "c-2"
        );
        assert_eq!(run.outcomes, vec![(0, Outcome::Delivered)]);
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
        assert_eq!(s.transport.sent[0].json()["collector_id"], "c-7");
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
