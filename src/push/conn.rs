//! The one connection to the backend (docs/protocol.md, "Transport"): HTTPS with TLS 1.3 only, or plaintext
//! HTTP where the configuration allows it; kept alive across requests and reopened when closed.
//! Every wait is a [`wait_io`] on the socket and the signal fd with the operation's deadline:
//! `connect_timeout` for DNS + TCP + TLS, `request_timeout` for one request/response.
//!
//! Not here: what the requests mean (auth, push, pull, registration) nor HTTP parsing
//! (`proto::http`, pure).

use crate::agent_log;
use crate::config::{BackendUrl, Config, Tls};
use crate::proto::dns::resolve::{ResolveError, resolve};
use crate::proto::http::{self, Response, ResponseParser};
use crate::proto::tls::{self, TlsStream, Verify};
use crate::proto::{IoError, Stream, connect_fd};
use crate::state::StateDir;
use crate::sys::signals::Signals;
use rustix::net::AddressFamily;
use rustls::ClientConfig;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;

use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a request failed. Every message names the backend's `host:port`.
#[derive(Debug)]
pub enum ConnError {
    /// A stop signal arrived while waiting.
    Interrupted,
    /// Connection, TLS, timeout or HTTP framing failure: retryable.
    Transient(String),
    /// Something only the operator can fix (bad client key file, bad CA file).
    Config(String),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Interrupted => f.write_str("interrupted by a stop signal"),
            ConnError::Transient(m) | ConnError::Config(m) => f.write_str(m),
        }
    }
}

/// What the connection is built from: `[backend]` url and timeouts, `[tls]`, and the state
/// directory (where a registration leaves the client certificate). Kept by the backend client
/// so that the files are read again after a re-registration.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnConfig {
    pub url: BackendUrl,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub tls: Tls,
    pub state: StateDir,
}

impl ConnConfig {
    /// The connection's part of `config`; an error when it names no backend.
    pub fn from_config(config: &Config) -> Result<ConnConfig, String> {
        let url = config.backend.url.clone().ok_or_else(|| {
            "no [backend] url in the configuration: set it, or use `run --stdout`".to_string()
        })?;
        Ok(ConnConfig {
            url,
            connect_timeout: config.backend.connect_timeout,
            request_timeout: config.backend.request_timeout,
            tls: config.tls.clone(),
            state: StateDir::new(&config.collector.state_dir),
        })
    }
}

/// Settings of the connection, with the TLS files read.
pub struct ConnSettings {
    pub endpoint: BackendUrl,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// `None` for plaintext HTTP.
    pub tls: Option<Arc<ClientConfig>>,
}

impl ConnSettings {
    /// Reads the CA bundle and the client identity now (start and SIGHUP). The identity is
    /// `[tls] cert_file`/`key_file`, else the registration's files in the state directory.
    pub fn from_config(config: &Config) -> Result<ConnSettings, String> {
        ConnSettings::load(&ConnConfig::from_config(config)?)
    }

    /// Reads the files `c` names.
    pub fn load(c: &ConnConfig) -> Result<ConnSettings, String> {
        let endpoint = c.url.clone();
        let tls = if endpoint.https {
            let verify = if !c.tls.verify {
                agent_log::warn(
                    "push",
                    "[tls] verify = false: the backend's certificate is not checked; use only in a lab",
                    &[("host", &endpoint.authority())],
                );
                Verify::Nothing
            } else {
                match &c.tls.ca_file {
                    Some(ca) => Verify::Full(tls::load_roots(ca)?),
                    None => Verify::Full(tls::builtin_roots()),
                }
            };
            let identity = identity_files(&c.tls, &c.state)
                .map(|(c, k)| tls::load_identity(&c, &k))
                .transpose()?;
            Some(tls::client_config_with_identity(
                verify,
                &[&rustls::version::TLS13],
                identity,
            )?)
        } else {
            None
        };
        Ok(ConnSettings {
            endpoint,
            connect_timeout: c.connect_timeout,
            request_timeout: c.request_timeout,
            tls,
        })
    }
}

/// The client certificate and key files to present, if any.
pub fn identity_files(tls: &Tls, state: &StateDir) -> Option<(PathBuf, PathBuf)> {
    match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => {
            let (c, k) = (
                state.file(crate::state::CERT),
                state.file(crate::state::KEY),
            );
            (c.exists() && k.exists()).then_some((c, k))
        }
    }
}

/// The connection (opened on demand, kept alive).
pub struct Conn<'s> {
    pub settings: ConnSettings,
    signals: Option<&'s Signals>,
    stream: Option<Stream<TcpStream>>,
    head: Vec<u8>,
    read_buf: Vec<u8>,
}

/// A request the caller describes; the connection adds `Host`, `User-Agent`, `Connection` and
/// `Content-Length`.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path below the base URL, starting with '/'.
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Option<&'a [u8]>,
}

impl<'s> Conn<'s> {
    pub fn new(settings: ConnSettings, signals: Option<&'s Signals>) -> Conn<'s> {
        Conn {
            settings,
            signals,
            stream: None,
            head: Vec::new(),
            read_buf: vec![0u8; 16 * 1024],
        }
    }

    /// New settings (SIGHUP): the open connection is closed so the next request uses them.
    pub fn reconfigure(&mut self, settings: ConnSettings) {
        self.settings = settings;
        self.close();
    }

    pub fn close(&mut self) {
        if let Some(Stream::Tls(t)) = self.stream.take() {
            let _ = t.close();
        }
    }

    /// Stop reacting to signals (the last push after SIGTERM is bounded by its own deadline).
    pub fn ignore_signals(&mut self) {
        self.signals = None;
    }

    /// Sends one request and reads its response within `request_timeout` (and before `cap`
    /// when given). A kept-alive connection the server closed meanwhile is reopened once.
    pub fn request(
        &mut self,
        req: &Request<'_>,
        cap: Option<Instant>,
    ) -> Result<Response, ConnError> {
        let reused = self.stream.is_some();
        match self.request_once(req, cap) {
            Err(Attempt::Stale) if reused => {
                self.close();
                self.request_once(req, cap)
                    .map_err(|a| self.attempt_error(a))
            }
            other => other.map_err(|a| self.attempt_error(a)),
        }
    }

    fn attempt_error(&mut self, a: Attempt) -> ConnError {
        self.close();
        match a {
            Attempt::Stale => ConnError::Transient(format!(
                "{}: connection closed by the backend before it answered; will retry",
                self.settings.endpoint.authority()
            )),
            Attempt::Failed(e) => e,
        }
    }

    fn request_once(
        &mut self,
        req: &Request<'_>,
        cap: Option<Instant>,
    ) -> Result<Response, Attempt> {
        let authority = self.settings.endpoint.authority();
        // Security rule S9: a kept-alive connection with bytes waiting (an unrequested
        // response, or the backend's close) is not reused: those bytes must never be read as
        // the answer to this request.
        if self.stream.as_mut().is_some_and(Stream::idle_input) {
            self.close();
        }
        if self.stream.is_none() {
            let deadline = min_deadline(Instant::now() + self.settings.connect_timeout, cap);
            self.stream = Some(self.open(deadline).map_err(Attempt::Failed)?);
        }
        let deadline = min_deadline(Instant::now() + self.settings.request_timeout, cap);
        let path = format!("{}{}", self.settings.endpoint.base, req.path);
        let host = self.settings.endpoint.host_header();
        self.head.clear();
        http::write_request_head(
            req.method,
            &path,
            &host,
            req.headers,
            req.body.map(<[u8]>::len),
            &mut self.head,
        )
        .map_err(|e| Attempt::Failed(ConnError::Transient(format!("{authority}: {e}"))))?;
        let signals = self.signals;
        let Some(stream) = self.stream.as_mut() else {
            return Err(Attempt::Stale);
        };
        let sent = stream
            .write_all(&self.head, deadline, signals)
            .and_then(|()| match req.body {
                Some(b) if !b.is_empty() => stream.write_all(b, deadline, signals),
                _ => Ok(()),
            });
        match sent {
            Ok(()) => {}
            Err(IoError::Closed) => return Err(Attempt::Stale),
            Err(IoError::Io(e)) if is_reset(&e) => return Err(Attempt::Stale),
            Err(e) => {
                return Err(Attempt::Failed(io_error(
                    e,
                    &authority,
                    "sending the request",
                )));
            }
        }
        let mut parser = ResponseParser::new();
        let mut got_any = false;
        // Bytes after the complete response, in the same read: the connection is closed.
        let mut trailing = false;
        loop {
            match stream.read(&mut self.read_buf, deadline, signals) {
                Ok(n) => {
                    got_any = true;
                    let mut input = &self.read_buf[..n];
                    while !input.is_empty() {
                        let (used, complete) = parser.feed(input).map_err(|e| {
                            Attempt::Failed(ConnError::Transient(format!(
                                "{authority}: bad HTTP response: {e}"
                            )))
                        })?;
                        input = &input[used..];
                        if complete {
                            trailing = !input.is_empty();
                            break;
                        }
                        if used == 0 {
                            break;
                        }
                    }
                    if parser.response().is_some() {
                        break;
                    }
                }
                Err(IoError::Closed) | Err(IoError::Io(_)) if !got_any => {
                    return Err(Attempt::Stale);
                }
                Err(IoError::Closed) => {
                    if parser.finish_on_eof().is_ok() && parser.response().is_some() {
                        self.stream = None;
                        break;
                    }
                    return Err(Attempt::Failed(ConnError::Transient(format!(
                        "{authority}: connection closed in the middle of the response"
                    ))));
                }
                Err(e) => {
                    return Err(Attempt::Failed(io_error(
                        e,
                        &authority,
                        "waiting for the response",
                    )));
                }
            }
        }
        let must_close = parser.must_close();
        let Some(response) = parser.take_response() else {
            return Err(Attempt::Stale);
        };
        if must_close || trailing {
            self.close();
        }
        // A redirect is not followed: the sink reports it as a configuration error.
        Ok(response)
    }

    fn open(&mut self, deadline: Instant) -> Result<Stream<TcpStream>, ConnError> {
        let ep = &self.settings.endpoint;
        let authority = ep.authority();
        let bare = ep.host.trim_start_matches('[').trim_end_matches(']');
        let addrs = resolve(bare, ep.port, deadline, self.signals).map_err(|e| match e {
            ResolveError::Interrupted => ConnError::Interrupted,
            ResolveError::Timeout => ConnError::Transient(format!(
                "{authority}: timed out resolving the backend host (connect_timeout_secs); check [backend] url and the name servers in /etc/resolv.conf"
            )),
            ResolveError::Failed(m) => ConnError::Transient(format!(
                "{authority}: {m}; check [backend] url and DNS"
            )),
        })?;
        let mut last = ConnError::Transient(format!("{authority}: host resolves to no address"));
        let mut sock = None;
        for addr in addrs {
            let family = match addr {
                SocketAddr::V4(_) => AddressFamily::INET,
                SocketAddr::V6(_) => AddressFamily::INET6,
            };
            match connect_fd(family, &addr, deadline, self.signals) {
                Ok(fd) => {
                    let _ = rustix::net::sockopt::set_tcp_nodelay(&fd, true);
                    sock = Some(TcpStream::from(fd));
                    break;
                }
                Err(e @ (IoError::Timeout | IoError::Interrupted)) => {
                    return Err(io_error(e, &authority, "connecting"));
                }
                Err(e) => last = io_error(e, &authority, "connecting"),
            }
        }
        let Some(sock) = sock else { return Err(last) };
        let Some(config) = &self.settings.tls else {
            return Ok(Stream::Plain(sock));
        };
        let name = tls::server_name(&ep.host).map_err(ConnError::Config)?;
        let conn = rustls::ClientConnection::new(config.clone(), name)
            .map_err(|e| ConnError::Config(format!("{authority}: tls: {e}")))?;
        match TlsStream::handshake(conn, sock, deadline, self.signals) {
            Ok(t) => Ok(Stream::Tls(Box::new(t))),
            Err(e) => Err(io_error(e, &authority, "the TLS handshake")),
        }
    }
}

/// What the sink needs from a connection (a scripted fake in tests).
pub trait Transport {
    /// One request and its response, within the request timeout and before `cap`.
    fn send(&mut self, req: &Request<'_>, cap: Option<Instant>) -> Result<Response, ConnError>;
    /// Re-reads the files of `c` (CA bundle and client identity) and uses its settings.
    fn reconfigure(&mut self, c: &ConnConfig) -> Result<(), String>;
    /// Waits end only at their deadlines from now on (the last push after SIGTERM).
    fn ignore_signals(&mut self);
}

impl Transport for Conn<'_> {
    fn send(&mut self, req: &Request<'_>, cap: Option<Instant>) -> Result<Response, ConnError> {
        self.request(req, cap)
    }

    fn reconfigure(&mut self, c: &ConnConfig) -> Result<(), String> {
        let settings = ConnSettings::load(c)?;
        Conn::reconfigure(self, settings);
        Ok(())
    }

    fn ignore_signals(&mut self) {
        Conn::ignore_signals(self);
    }
}

enum Attempt {
    /// The kept-alive connection was closed before any byte of the answer.
    Stale,
    Failed(ConnError),
}

fn min_deadline(d: Instant, cap: Option<Instant>) -> Instant {
    cap.map_or(d, |c| c.min(d))
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// One line naming the backend and, where it helps, what to do.
fn io_error(e: IoError, authority: &str, what: &str) -> ConnError {
    use rustls::{AlertDescription, Error as TlsError, PeerIncompatible};
    match e {
        IoError::Interrupted => ConnError::Interrupted,
        IoError::Timeout => ConnError::Transient(format!("{authority}: timed out {what}")),
        IoError::Closed => ConnError::Transient(format!(
            "{authority}: connection closed by the backend ({what})"
        )),
        IoError::Io(e) => ConnError::Transient(format!("{authority}: {what}: {e}")),
        IoError::Tls(
            TlsError::AlertReceived(AlertDescription::ProtocolVersion)
            | TlsError::PeerIncompatible(
                PeerIncompatible::Tls13RequiredForQuic
                | PeerIncompatible::SupportedVersionsExtensionRequired
                | PeerIncompatible::ServerDoesNotSupportTls12Or13,
            ),
        ) => ConnError::Transient(format!(
            "{authority} offers no TLS 1.3: pganalytics-collector speaks TLS 1.3 only; upgrade the proxy"
        )),
        IoError::Tls(TlsError::InvalidCertificate(c)) => ConnError::Transient(format!(
            "{authority}: the backend's certificate is not trusted ({c:?}); set [tls] ca_file to the CA that signed it"
        )),
        IoError::Tls(TlsError::AlertReceived(
            a @ (AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::HandshakeFailure),
        )) => ConnError::Transient(format!(
            "{authority}: the backend refused the TLS handshake ({a:?}); check the client certificate ([tls] cert_file/key_file or `register`)"
        )),
        IoError::Tls(e) => ConnError::Transient(format!("{authority}: tls: {e}")),
    }
}
