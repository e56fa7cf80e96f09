//! A test pgAnalytics backend that speaks docs/protocol.md exactly, written independently of
//! the collector's own HTTP, gzip and JWT code (flate2 reads gzip, ring computes HMAC, the
//! HTTP/1.1 parsing and base64url are written here), so end-to-end tests catch the collector's
//! bugs instead of sharing them.
//!
//! Shape: a listener on 127.0.0.1:0, a thread per connection, HTTP/1.1 with keep-alive, over
//! rustls (ring provider) or plain HTTP ([`Mode::Http`]). Endpoints:
//!
//! | endpoint | checks | reply |
//! |---|---|---|
//! | `POST /api/v1/collectors/register` | `X-Registration-Secret` = the secret; body object with string `name`, `hostname`, `version` | 200 id/token/certificate/private_key/expires_at; 401; 400 |
//! | `POST /api/v1/collectors/refresh-token` | Bearer token signed by this backend, not expired | 200 `{token, expires_at}`; 401 |
//! | `POST /api/v1/metrics/push` | Bearer (backend key, or the shared key in shared-secret mode); `collector_id` = claim; gzip or plain; envelope fields (see [`check_envelope`]) | 200 `{"status":"ok"}`; 401; 400 with `details` |
//! | `GET /api/v1/config/{id}` | Bearer, id = claim | the configured [`ConfigReply`] |
//!
//! A request that breaks the contract (missing `Content-Length`, chunked body, wrong
//! `User-Agent` or `Content-Type`, a bad envelope, a body on refresh …) is answered 400 and
//! recorded in [`Backend::violations`], which a test should find empty; a TLS connection other
//! than TLS 1.3 or without SNI `localhost` is recorded there too.
//!
//! Faults ([`Fault`]) are set from the test thread at any time: [`Backend::push_faults`] queues
//! replies for the next push requests, [`Backend::set_outage`] answers every request with one
//! until cleared, [`Backend::set_max_body`] is a proxy's 413.
#![allow(dead_code)]

use super::certs::Certs;
use ring::hmac;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const REGISTER: &str = "/api/v1/collectors/register";
pub const REFRESH: &str = "/api/v1/collectors/refresh-token";
pub const PUSH: &str = "/api/v1/metrics/push";
pub const CONFIG: &str = "/api/v1/config/";

/// How the listener talks.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Mode {
    /// Plain HTTP (the collector allows it for loopback).
    Http,
    /// TLS 1.3 and 1.2 offered (a normal server; the collector must pick 1.3).
    Tls,
    /// TLS 1.2 only: the collector must refuse it.
    Tls12Only,
    /// TLS, and a client certificate signed by the test CA is required.
    Mtls,
}

/// One scripted misbehaviour.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status (500, 503, 404 …) and an error body.
    Status(u16),
    /// 429, with `Retry-After: S` when given.
    TooMany(Option<u64>),
    /// 401 "token rejected" (whatever the token).
    Unauthorized,
    /// 400 with `details` (the batch is bad: the collector must drop it).
    BadRequest,
    /// Read the request, sleep this long, then answer 503 without accepting anything.
    Slow(Duration),
    /// Accept the batch (recorded, with `reply_lost`), then write half the reply and close.
    Reset,
    /// Write bytes that are not HTTP, then close.
    Garbage,
    /// 301 to another host.
    Redirect,
    /// This status with a body made to abuse a log (security rule S8): terminal escapes, a
    /// carriage return, a forged log line after a newline, then [`HOSTILE_BODY_BYTES`] of
    /// filler and a bell.
    HostileBody(u16),
}

/// The size of [`Fault::HostileBody`]'s filler.
pub const HOSTILE_BODY_BYTES: usize = 512 << 10;
/// What [`Fault::HostileBody`] forges as a log line of its own.
pub const FORGED_LINE: &str = "level=error forged by the backend";

/// What `GET /api/v1/config/{id}` answers.
#[derive(Clone, Debug)]
pub enum ConfigReply {
    NotFound,
    /// 401 with this message whatever the token (today's Go backend answers a collector
    /// token `"User not found"`: its config route uses the user authentication).
    Unauthorized(String),
    NotModified,
    /// 200 with `X-Config-Version: version`; the body as given (TOML or JSON).
    Document {
        version: u64,
        body: String,
    },
}

pub struct Options {
    pub mode: Mode,
    /// The registration secret (`X-Registration-Secret`).
    pub secret: String,
    /// Lifetime of the tokens this backend issues (default 30 min).
    pub token_lifetime: Duration,
    /// Shared-secret mode: tokens signed by the collector with this key are accepted too.
    pub shared_key: Option<Vec<u8>>,
    /// Answer pushes 200 at once and check them later, in [`Backend::check_deferred`]: a
    /// benchmark then times the collector and the transport, not this backend's gunzip, JSON
    /// parse and contract checks (which run in the benchmark's own process).
    pub defer_push_checks: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Tls,
            secret: "registration-secret".to_string(),
            token_lifetime: Duration::from_secs(30 * 60),
            shared_key: None,
            defer_push_checks: false,
        }
    }
}

/// One request as received (any path), with what was answered.
#[derive(Clone, Debug)]
pub struct Request {
    pub at: Instant,
    /// Number of the TCP connection it came on (keep-alive reuse shows as equal numbers).
    pub conn: u64,
    pub method: String,
    pub path: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// Length of the body on the wire.
    pub wire_len: usize,
    /// The body after gzip decoding.
    pub body: Vec<u8>,
    pub status: u16,
    /// Why it was refused, or which fault answered.
    pub note: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
    /// `batch_id` of a push body.
    pub fn batch_id(&self) -> Option<String> {
        self.json()?["batch_id"].as_str().map(str::to_string)
    }
}

/// A push that was accepted (stored).
#[derive(Clone, Debug)]
pub struct Batch {
    pub at: Instant,
    pub batch_id: String,
    pub envelope: Value,
    pub headers: Vec<(String, String)>,
    /// The reply was cut on purpose ([`Fault::Reset`]): a resend of this id is expected.
    pub reply_lost: bool,
}

impl Batch {
    pub fn metrics(&self) -> &[Value] {
        self.envelope["metrics"].as_array().map_or(&[], |a| a)
    }
    pub fn gzip(&self) -> bool {
        self.headers
            .iter()
            .any(|(n, v)| n == "content-encoding" && v == "gzip")
    }
}

/// Header names (lower-cased) and values, in order.
type Headers = Vec<(String, String)>;

#[derive(Default)]
pub struct State {
    pub requests: Vec<Request>,
    pub batches: Vec<Batch>,
    /// Contract violations seen (each also answered 400).
    pub violations: Vec<String>,
    /// TLS handshake failures as the server saw them.
    pub tls_errors: Vec<String>,
    /// Every token issued (registration and refresh), oldest first.
    pub tokens: Vec<String>,
    /// Collector ids handed out by registration.
    pub registered: Vec<String>,
    pub faults: VecDeque<Fault>,
    pub outage: Option<Fault>,
    pub max_body: Option<usize>,
    /// `refresh-token` answers this status instead of working (e.g. 401: force re-registration).
    pub refresh_status: Option<u16>,
    pub config: Option<ConfigReply>,
    /// Answer a gzip push body 400, as today's Go backend does (it never decompresses).
    pub reject_gzip: bool,
    /// Pushes answered at once with `defer_push_checks`: (headers, body as received).
    deferred: Vec<(Headers, Vec<u8>)>,
    connections: u64,
}

pub struct Backend {
    pub addr: std::net::SocketAddr,
    /// `https://localhost:PORT` (or `http://127.0.0.1:PORT`): the collector's `[backend] url`.
    pub url: String,
    pub certs: Arc<Certs>,
    /// The HS256 key of the tokens this backend issues.
    pub key: Vec<u8>,
    pub options: Arc<Options>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Backend {
    pub fn start(options: Options) -> Backend {
        Backend::start_with(options, Arc::new(Certs::new()))
    }

    pub fn start_with(options: Options, certs: Arc<Certs>) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let url = match options.mode {
            Mode::Http => format!("http://127.0.0.1:{}", addr.port()),
            _ => format!("https://localhost:{}", addr.port()),
        };
        let tls = (options.mode != Mode::Http).then(|| server_config(options.mode, &certs));
        let key = random_bytes(32);
        let backend = Backend {
            addr,
            url,
            certs,
            key,
            options: Arc::new(options),
            state: Arc::new(Mutex::new(State::default())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let shared = Shared {
            state: backend.state.clone(),
            certs: backend.certs.clone(),
            options: backend.options.clone(),
            key: backend.key.clone(),
        };
        let stop = backend.stop.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = tcp else { continue };
                // As production HTTP servers do (Go's net/http sets it on every connection).
                let _ = tcp.set_nodelay(true);
                let shared = shared.clone();
                let tls = tls.clone();
                std::thread::spawn(move || serve(tcp, tls, shared));
            }
        });
        backend
    }

    /// The state, for reading or for changing anything at once.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }
    /// Requests to `path` (push, refresh …).
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.state()
            .requests
            .iter()
            .filter(|r| r.path.starts_with(path))
            .cloned()
            .collect()
    }
    pub fn batches(&self) -> Vec<Batch> {
        self.state().batches.clone()
    }
    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }
    /// Checks the pushes answered under `defer_push_checks` as any push is checked (gzip,
    /// token, envelope contract), recording them as batches. Returns how many passed, or the
    /// violations.
    pub fn check_deferred(&self) -> Result<usize, Vec<String>> {
        let deferred = std::mem::take(&mut self.state().deferred);
        let shared = Shared {
            state: self.state.clone(),
            certs: self.certs.clone(),
            options: self.options.clone(),
            key: self.key.clone(),
        };
        let mut problems = Vec::new();
        let mut passed = 0;
        for (headers, wire) in deferred {
            let out = handle(&shared, "POST", PUSH, &headers, &wire, Vec::new());
            problems.extend(out.violations);
            if out.status != 200 {
                problems.push(format!(
                    "deferred push answered {}: {}",
                    out.status, out.note
                ));
            }
            if let Some(batch) = out.batch {
                self.state().batches.push(batch);
                passed += 1;
            }
        }
        if problems.is_empty() {
            Ok(passed)
        } else {
            Err(problems)
        }
    }
    pub fn tls_errors(&self) -> Vec<String> {
        self.state().tls_errors.clone()
    }
    pub fn tokens(&self) -> Vec<String> {
        self.state().tokens.clone()
    }
    pub fn registered(&self) -> Vec<String> {
        self.state().registered.clone()
    }
    /// Push requests received in `[from, to)`.
    pub fn pushes_between(&self, from: Instant, to: Instant) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| r.path == PUSH && r.at >= from && r.at < to)
            .count()
    }
    /// Queues `n` × `fault` for the next push requests.
    pub fn push_faults(&self, n: usize, fault: Fault) {
        self.state().faults.extend(std::iter::repeat_n(fault, n));
    }
    /// Every request (any path) is answered with `fault` until `None`.
    pub fn set_outage(&self, fault: Option<Fault>) {
        self.state().outage = fault;
    }
    /// 413 for push bodies longer than this on the wire.
    pub fn set_max_body(&self, bytes: Option<usize>) {
        self.state().max_body = bytes;
    }
    pub fn set_refresh_status(&self, status: Option<u16>) {
        self.state().refresh_status = status;
    }
    pub fn set_config(&self, reply: Option<ConfigReply>) {
        self.state().config = reply;
    }
    /// A gzip push body gets 400 (today's Go backend), not a decoded body.
    pub fn set_reject_gzip(&self, reject: bool) {
        self.state().reject_gzip = reject;
    }
    /// A token this backend would issue for `collector_id` (for a token-file setup).
    pub fn issue_token(&self, collector_id: &str, hostname: &str) -> String {
        let token = sign(
            &self.key,
            &claims(collector_id, hostname, self.options.token_lifetime),
        );
        self.state().tokens.push(token.clone());
        token
    }
    /// Waits until `f(state)` holds, or `within` passes; returns whether it held.
    pub fn wait(&self, within: Duration, mut f: impl FnMut(&State) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if f(&self.state()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

fn server_config(mode: Mode, certs: &Certs) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match mode {
        Mode::Tls12Only => &[&rustls::version::TLS12],
        _ => rustls::ALL_VERSIONS,
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = if mode == Mode::Mtls {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(certs.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let chain = vec![CertificateDer::from_pem_slice(certs.server_cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(certs.server_key_pem.as_bytes()).unwrap();
    Arc::new(builder.with_single_cert(chain, key).unwrap())
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<State>>,
    certs: Arc<Certs>,
    options: Arc<Options>,
    key: Vec<u8>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The byte stream of one connection.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(t) => t,
            Conn::Tls(s) => &s.sock,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(t) => t.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(t) => t.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(t) => t.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// One connection: handshake, then requests until the peer closes.
fn serve(mut tcp: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, shared: Shared) {
    let conn_no = {
        let mut s = shared.lock();
        s.connections += 1;
        s.connections
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(60)));
    let mut conn = match tls {
        None => Conn::Plain(tcp),
        Some(config) => {
            let mut server = rustls::ServerConnection::new(config).unwrap();
            while server.is_handshaking() {
                if let Err(e) = server.complete_io(&mut tcp) {
                    shared.lock().tls_errors.push(e.to_string());
                    let _ = server.complete_io(&mut tcp); // send the alert
                    return;
                }
            }
            // docs/protocol.md, "Transport": TLS 1.3 only, SNI sent (the URL host is `localhost`).
            let mut s = shared.lock();
            if server.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
                let v = server.protocol_version();
                s.violations.push(format!("TLS version {v:?}, not 1.3"));
            }
            if server.server_name() != Some("localhost") {
                let name = server.server_name().map(str::to_string);
                s.violations
                    .push(format!("SNI {name:?}, not \"localhost\""));
            }
            drop(s);
            Conn::Tls(Box::new(rustls::StreamOwned::new(server, tcp)))
        }
    };
    let mut buf = Vec::new();
    loop {
        let Some(head) = read_head(&mut conn, &mut buf) else {
            return;
        };
        let Some(req) = parse_head(&head) else {
            let _ = conn.write_all(&response(400, &[], &error_body("bad_request", "bad HTTP")));
            return;
        };
        let (method, path, headers) = req;
        let mut violations = Vec::new();
        let len = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        if headers.iter().any(|(n, _)| n == "transfer-encoding") {
            violations.push(format!("{method} {path}: chunked request body"));
        }
        if method == "POST" && len.is_none() {
            violations.push(format!("{method} {path}: no Content-Length"));
        }
        let len = len.unwrap_or(0);
        while buf.len() < len {
            let mut chunk = [0u8; 16384];
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let wire: Vec<u8> = buf.drain(..len).collect();
        let at = Instant::now();
        let out = if shared.options.defer_push_checks
            && method == "POST"
            && path == PUSH
            && violations.is_empty()
        {
            shared.lock().deferred.push((headers.clone(), wire.clone()));
            Outcome {
                status: 200,
                reply: response(200, &[], &json!({"status": "ok"})),
                body: Vec::new(),
                note: "deferred".into(),
                violations: Vec::new(),
                sleep: None,
                cut: Cut::No,
                batch: None,
            }
        } else {
            handle(&shared, &method, &path, &headers, &wire, violations)
        };
        let close = headers
            .iter()
            .any(|(n, v)| n == "connection" && v.eq_ignore_ascii_case("close"));
        let mut state = shared.lock();
        state.violations.extend(out.violations.iter().cloned());
        if let Some(batch) = out.batch {
            state.batches.push(batch);
        }
        state.requests.push(Request {
            at,
            conn: conn_no,
            method,
            path,
            headers,
            wire_len: wire.len(),
            body: out.body,
            status: out.status,
            note: out.note,
        });
        drop(state);
        if let Some(d) = out.sleep {
            std::thread::sleep(d);
        }
        match out.cut {
            Cut::No => {
                if conn.write_all(&out.reply).is_err() || conn.flush().is_err() || close {
                    return;
                }
            }
            Cut::Half | Cut::Close => {
                let n = match out.cut {
                    Cut::Half => out.reply.len() / 2,
                    _ => out.reply.len(),
                };
                let _ = conn.write_all(&out.reply[..n]);
                let _ = conn.flush();
                let _ = conn.tcp().shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Reads up to the end of a request head (`\r\n\r\n`, at most 64 KiB); keeps what follows in
/// `buf`. `None`: the peer closed or sent too much.
fn read_head(conn: &mut Conn, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(buf.drain(..end + 4).collect());
        }
        if buf.len() > 65536 {
            return None;
        }
        let mut chunk = [0u8; 16384];
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

type Head = (String, String, Vec<(String, String)>);

fn parse_head(head: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path, version) = (first.next()?, first.next()?, first.next()?);
    if version != "HTTP/1.1" {
        return None;
    }
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (n, v) = line.split_once(':')?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Some((method.to_string(), path.to_string(), headers))
}

enum Cut {
    /// Write the whole reply, keep the connection.
    No,
    /// Write half the reply, then shut the socket down.
    Half,
    /// Write the whole reply, then shut the socket down.
    Close,
}

struct Outcome {
    status: u16,
    reply: Vec<u8>,
    body: Vec<u8>,
    note: String,
    violations: Vec<String>,
    sleep: Option<Duration>,
    cut: Cut,
    /// An accepted push, recorded together with its request (one lock: a test that sees
    /// the batch also sees the request).
    batch: Option<Batch>,
}

fn handle(
    shared: &Shared,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    wire: &[u8],
    mut violations: Vec<String>,
) -> Outcome {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if !header("user-agent").is_some_and(|ua| ua.starts_with("pganalytics-collector/")) {
        violations.push(format!(
            "{method} {path}: User-Agent {:?}",
            header("user-agent")
        ));
    }
    if header("host").is_none() {
        violations.push(format!("{method} {path}: no Host"));
    }
    let mut out = Outcome {
        status: 200,
        reply: Vec::new(),
        body: wire.to_vec(),
        note: String::new(),
        violations: Vec::new(),
        sleep: None,
        cut: Cut::No,
        batch: None,
    };
    match header("content-encoding") {
        None => {}
        Some("gzip") if path == PUSH && shared.lock().reject_gzip => {
            // What the Go backend's JSON decoder says about the gzip magic byte.
            out.note = "gzip body refused (reject_gzip)".into();
            let body = error_body(
                "bad_request",
                "invalid character '\\x1f' looking for beginning of value",
            );
            return out.set(400, &body);
        }
        Some("gzip") => {
            let mut plain = Vec::new();
            match flate2::read::GzDecoder::new(wire).read_to_end(&mut plain) {
                Ok(_) => out.body = plain,
                Err(e) => violations.push(format!("{method} {path}: gzip: {e}")),
            }
        }
        Some(other) => violations.push(format!("{method} {path}: Content-Encoding {other}")),
    }
    if !violations.is_empty() {
        out.note = violations.join("; ");
        out.violations = violations;
        let body = error_body("bad_request", &out.note);
        return out.set(400, &body);
    }

    // Faults: an outage answers everything; the queue and the size limit only pushes.
    let fault = {
        let mut s = shared.lock();
        match s.outage.clone() {
            Some(f) => Some(f),
            None if path == PUSH => {
                if s.max_body.is_some_and(|max| wire.len() > max) {
                    drop(s);
                    out.note = "fault: 413".into();
                    return out.set(413, &error_body("too_large", "request entity too large"));
                }
                s.faults.pop_front()
            }
            None => None,
        }
    };
    let mut lose_reply = false;
    if let Some(f) = fault {
        out.note = format!("fault: {f:?}");
        match f {
            Fault::Status(code) => return out.set(code, &error_body("fault", "injected")),
            Fault::HostileBody(code) => {
                let mut body =
                    format!("\x1b[2J\x1b[1;1H\rbackend down\n{FORGED_LINE}\n").into_bytes();
                body.resize(body.len() + HOSTILE_BODY_BYTES, b'A');
                body.push(0x07);
                out.status = code;
                out.reply = raw_response(code, &[("Content-Type", "text/plain".into())], &body);
                return out;
            }
            Fault::TooMany(after) => {
                out = out.set(429, &error_body("rate_limited", "slow down"));
                if let Some(s) = after {
                    out.reply = response(
                        429,
                        &[("Retry-After", s.to_string())],
                        &error_body("rate_limited", "slow down"),
                    );
                }
                return out;
            }
            Fault::Unauthorized => {
                return out.set(401, &error_body("unauthorized", "token rejected"));
            }
            Fault::BadRequest => {
                return out.set(
                    400,
                    &json!({"code": "bad_request", "message": "invalid metrics",
                            "details": "injected: metrics[0] rejected"}),
                );
            }
            Fault::Slow(d) => {
                out.sleep = Some(d);
                return out.set(503, &error_body("slow", "too late"));
            }
            Fault::Garbage => {
                out.status = 0;
                out.reply = b"\x00\x01garbage, not HTTP at all\xff\xfe\r\n\r\n".to_vec();
                out.cut = Cut::Close;
                return out;
            }
            Fault::Redirect => {
                out.status = 301;
                out.reply = response(
                    301,
                    &[(
                        "Location",
                        "https://elsewhere.invalid/api/v1/metrics/push".into(),
                    )],
                    &json!({}),
                );
                return out;
            }
            Fault::Reset => lose_reply = true,
        }
    }

    let now = unix_now();
    match (method, path) {
        ("POST", REGISTER) if header("content-type") != Some("application/json") => {
            out.violations.push(format!(
                "register: Content-Type {:?}",
                header("content-type")
            ));
            out.set(400, &error_body("bad_request", "Content-Type"))
        }
        ("POST", REGISTER) => register(
            shared,
            header("x-registration-secret"),
            &out.body.clone(),
            out,
        ),
        ("POST", REFRESH) => {
            if !out.body.is_empty() {
                out.violations.push("refresh-token: body not empty".into());
            }
            if let Some(code) = shared.lock().refresh_status {
                return out.set(code, &error_body("refresh", "injected"));
            }
            match bearer(shared, header("authorization"), false, now) {
                Err(e) => {
                    out.note = e.clone();
                    out.set(401, &error_body("unauthorized", &e))
                }
                Ok(c) => {
                    let cid = c["collector_id"].as_str().unwrap_or_default();
                    let host = c["hostname"].as_str().unwrap_or_default();
                    let lifetime = shared.options.token_lifetime;
                    let token = sign(&shared.key, &claims(cid, host, lifetime));
                    shared.lock().tokens.push(token.clone());
                    let exp = rfc3339(SystemTime::now() + lifetime);
                    out.set(200, &json!({"token": token, "expires_at": exp}))
                }
            }
        }
        ("POST", PUSH) => {
            let claims = match bearer(shared, header("authorization"), true, now) {
                Err(e) => {
                    out.note = e.clone();
                    return out.set(401, &error_body("unauthorized", &e));
                }
                Ok(c) => c,
            };
            if header("content-type") != Some("application/json") {
                out.violations
                    .push(format!("push: Content-Type {:?}", header("content-type")));
            }
            let envelope: Value = match serde_json::from_slice(&out.body) {
                Ok(v) => v,
                Err(e) => {
                    out.violations.push(format!("push: body is not JSON: {e}"));
                    return out.set(400, &error_body("bad_request", "body is not JSON"));
                }
            };
            if envelope["collector_id"] != claims["collector_id"] {
                out.note = "Collector ID mismatch".into();
                return out.set(401, &error_body("unauthorized", "Collector ID mismatch"));
            }
            if let Err(e) = check_envelope(&envelope) {
                out.violations.push(format!("push: {e}"));
            }
            if !out.violations.is_empty() {
                out.note = out.violations.join("; ");
                let note = out.note.clone();
                return out.set(400, &error_body("bad_request", &note));
            }
            out.batch = Some(Batch {
                at: Instant::now(),
                batch_id: envelope["batch_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                envelope,
                headers: headers.to_vec(),
                reply_lost: lose_reply,
            });
            out = out.set(200, &json!({"status": "ok"}));
            if lose_reply {
                out.cut = Cut::Half;
            }
            out
        }
        ("GET", p) if p.starts_with(CONFIG) => {
            let claims = match bearer(shared, header("authorization"), true, now) {
                Err(e) => {
                    out.note = e.clone();
                    return out.set(401, &error_body("unauthorized", &e));
                }
                Ok(c) => c,
            };
            if claims["collector_id"].as_str() != Some(&p[CONFIG.len()..]) {
                out.note = "Collector ID mismatch".into();
                return out.set(401, &error_body("unauthorized", "Collector ID mismatch"));
            }
            let reply = shared.lock().config.clone();
            match reply {
                Some(ConfigReply::Unauthorized(message)) => {
                    out.note = message.clone();
                    out.set(401, &error_body("unauthorized", &message))
                }
                None | Some(ConfigReply::NotFound) => {
                    out.set(404, &error_body("not_found", "no config"))
                }
                Some(ConfigReply::NotModified) => {
                    out.status = 304;
                    out.reply = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n".to_vec();
                    out
                }
                Some(ConfigReply::Document { version, body }) => {
                    out.status = 200;
                    let ct = if body.trim_start().starts_with('{') {
                        "application/json"
                    } else {
                        "application/toml"
                    };
                    out.reply = raw_response(
                        200,
                        &[
                            ("X-Config-Version", version.to_string()),
                            ("Content-Type", ct.into()),
                        ],
                        body.as_bytes(),
                    );
                    out
                }
            }
        }
        _ => {
            out.note = "unknown path".into();
            out.set(404, &error_body("not_found", "no such endpoint"))
        }
    }
}

impl Outcome {
    fn set(mut self, status: u16, body: &Value) -> Outcome {
        self.status = status;
        self.reply = response(status, &[], body);
        self
    }
}

fn register(shared: &Shared, secret: Option<&str>, body: &[u8], mut out: Outcome) -> Outcome {
    if secret != Some(shared.options.secret.as_str()) {
        out.note = "bad secret".into();
        return out.set(
            401,
            &json!({"code": "unauthorized", "message": "invalid registration secret",
                    "details": "X-Registration-Secret does not match"}),
        );
    }
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let strings = ["name", "hostname", "version"]
        .iter()
        .all(|k| req[k].as_str().is_some_and(|s| !s.is_empty()));
    if !strings {
        out.note = "bad body".into();
        out.violations.push(format!(
            "register: body {:?}",
            String::from_utf8_lossy(body)
        ));
        return out.set(
            400,
            &json!({"code": "bad_request", "message": "invalid body",
                    "details": "name, hostname and version are required strings"}),
        );
    }
    let id = uuid();
    let hostname = req["hostname"].as_str().unwrap_or_default();
    let lifetime = shared.options.token_lifetime;
    let token = sign(&shared.key, &claims(&id, hostname, lifetime));
    let (certificate, private_key) = shared.certs.issue_client(&id);
    {
        let mut s = shared.lock();
        s.tokens.push(token.clone());
        s.registered.push(id.clone());
    }
    out.set(
        200,
        &json!({"collector_id": id, "token": token, "certificate": certificate,
                "private_key": private_key, "expires_at": rfc3339(SystemTime::now() + lifetime)}),
    )
}

/// The `Authorization: Bearer <jwt>` check: exactly one space, HS256 with the backend key (or
/// the shared key when `shared` and configured), `nbf` ≤ now < `exp`. Returns the claims.
fn bearer(
    shared: &Shared,
    auth: Option<&str>,
    allow_shared: bool,
    now: u64,
) -> Result<Value, String> {
    let token = auth
        .and_then(|a| a.strip_prefix("Bearer "))
        .ok_or("missing or malformed Authorization")?;
    let claims = verify(&shared.key, token).or_else(|e| match &shared.options.shared_key {
        Some(k) if allow_shared => verify(k, token),
        _ => Err(e),
    })?;
    let exp = claims["exp"].as_u64().ok_or("no exp")?;
    let nbf = claims["nbf"].as_u64().unwrap_or(0);
    if now >= exp {
        return Err("token expired".into());
    }
    if nbf > now + 5 {
        return Err("token not yet valid".into());
    }
    if !claims["collector_id"].is_string() {
        return Err("no collector_id claim".into());
    }
    Ok(claims)
}

/// The envelope rules of docs/protocol.md, "Push envelope" (field presence and types, `metrics_count`, 32-hex
/// `batch_id`, RFC 3339 `…Z` timestamps, each element an object with string `type` and
/// `timestamp`).
pub fn check_envelope(v: &Value) -> Result<(), String> {
    for k in [
        "collector_id",
        "hostname",
        "timestamp",
        "batch_id",
        "version",
    ] {
        if !v[k].is_string() {
            return Err(format!("{k} is not a string"));
        }
    }
    let ts = v["timestamp"].as_str().unwrap_or_default();
    if !(ts.ends_with('Z') && ts.len() >= 20 && &ts[4..5] == "-" && &ts[10..11] == "T") {
        return Err(format!("timestamp {ts:?} is not RFC 3339 UTC"));
    }
    let id = v["batch_id"].as_str().unwrap_or_default();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("batch_id {id:?} is not 32 hex digits"));
    }
    let metrics = v["metrics"].as_array().ok_or("metrics is not an array")?;
    if v["metrics_count"].as_u64() != Some(metrics.len() as u64) {
        return Err(format!(
            "metrics_count {} but {} metrics",
            v["metrics_count"],
            metrics.len()
        ));
    }
    for (i, m) in metrics.iter().enumerate() {
        if !m["type"].is_string() || !m["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')) {
            return Err(format!("metrics[{i}] lacks a string type or timestamp"));
        }
    }
    Ok(())
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"code": code, "message": message, "details": message})
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn response(status: u16, extra: &[(&str, String)], body: &Value) -> Vec<u8> {
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    headers.extend(extra.iter().cloned());
    raw_response(status, &headers, body.to_string().as_bytes())
}

fn raw_response(status: u16, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

// --- JWT (HS256), base64url, time: written here, independent of the collector ---

/// The claims docs/protocol.md, "Authentication" lists, valid from now for `lifetime`, plus a random `jti` so two
/// tokens issued in the same second differ.
pub fn claims(collector_id: &str, hostname: &str, lifetime: Duration) -> Value {
    let now = unix_now();
    json!({"collector_id": collector_id, "hostname": hostname, "type": "access",
           "sub": format!("collector:{collector_id}"), "iss": "pganalytics-backend",
           "iat": now, "nbf": now, "exp": now + lifetime.as_secs().max(1), "jti": uuid()})
}

/// `header.payload.signature`, HS256, base64url without padding.
pub fn sign(key: &[u8], claims: &Value) -> String {
    let head = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64url(claims.to_string().as_bytes());
    let input = format!("{head}.{body}");
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), input.as_bytes());
    format!("{input}.{}", b64url(tag.as_ref()))
}

/// Checks the HS256 signature (and the header) and returns the claims; no time checks.
pub fn verify(key: &[u8], token: &str) -> Result<Value, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [head, body, sig] = parts[..] else {
        return Err("not three parts".into());
    };
    let header: Value = serde_json::from_slice(&b64url_decode(head)?).map_err(|e| e.to_string())?;
    if header["alg"] != "HS256" {
        return Err(format!("alg {}", header["alg"]));
    }
    let sig = b64url_decode(sig)?;
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        format!("{head}.{body}").as_bytes(),
        &sig,
    )
    .map_err(|_| "bad signature".to_string())?;
    serde_json::from_slice(&b64url_decode(body)?).map_err(|e| e.to_string())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn b64url(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// base64url without padding; padding, `+`, `/` and stray characters are errors.
pub fn b64url_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = B64
            .iter()
            .position(|&b| b == c)
            .ok_or_else(|| format!("{:?} is not base64url", c as char))?;
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if text.len() % 4 == 1 {
        return Err("bad base64url length".into());
    }
    Ok(out)
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// RFC 3339 UTC with nanoseconds and `Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Civil from days (H. Hinnant).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

fn random_bytes(n: usize) -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut b = vec![0u8; n];
    ring::rand::SystemRandom::new().fill(&mut b).unwrap();
    b
}

fn uuid() -> String {
    let h: String = random_bytes(16)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
