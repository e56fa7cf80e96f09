//! The blocking driver: opens the socket (TCP or Unix, non-blocking), negotiates TLS with
//! SSLRequest according to `sslmode`, then moves bytes between the socket and the pure
//! [`Session`]. Every wait is [`wait_io`] on the socket and the signal fd with the remaining
//! deadline: `connect_timeout` for resolution + TCP + TLS + authentication, the caller's
//! timeout for a query. A dead or hung server gives `Timeout`, SIGTERM gives `Interrupted`.
//!
//! sslmode, as libpq (TLS is never used on Unix sockets, whatever the mode):
//!
//! | mode | SSLRequest | server says N | certificate |
//! |---|---|---|---|
//! | disable | no | – | – |
//! | allow | only after a plain attempt was rejected by the server | plain | as prefer |
//! | prefer | yes | plain | chain checked only when a root file exists (sslrootcert or ~/.postgresql/root.crt) |
//! | require | yes | error | as prefer |
//! | verify-ca | yes | error | chain against the root file, host name not checked |
//! | verify-full | yes | error | chain and host name |
//!
//! Before anything is sent on a Unix socket, the uid of the process that listens on it
//! (`SO_PEERCRED`) must be `requirepeer`'s. Which authentication requests are answered is the
//! session's [`AuthPolicy`]: the driver tells it whether the connection is trusted (verified
//! TLS, or a socket whose owner passed that check) and gives it the `tls-server-end-point`
//! hash of the server certificate for SCRAM-SHA-256-PLUS. `channel_binding = require` without
//! TLS is refused before connecting.

use super::session::{AuthPolicy, Progress, Session};
use super::{ConnectParams, PgError, RequirePeer, Rows, Target};
use crate::config::{ChannelBinding, SslMode};
use crate::proto::dns::resolve::{ResolveError, resolve};
use crate::proto::tls::{self, TlsStream, Verify};
use crate::proto::{IoError, Stream, connect_fd, read_plain, write_plain};
use crate::sys::signals::Signals;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::net::AddressFamily;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Read buffer size of a new connection; it grows for large messages (up to the session's
/// cap) and large results ([`STREAMING_ROOM_BYTES`]), and shrinks back after a query when it
/// grew past [`KEEP_READ_BUFFER_BYTES`].
const READ_BUFFER_BYTES: usize = 16 << 10;
/// Above this size the read buffer is shrunk back after a query, and a result handed back is
/// not kept.
const KEEP_READ_BUFFER_BYTES: usize = 1 << 20;
/// Results handed back ([`Client::recycle`]) kept for the next queries to fill: at most this
/// many, of at most this many bytes together. A collector that holds several results at once
/// (`pg_schema`: a database's tables, columns, constraints and indexes) hands them all back;
/// without them each query grows its buffers anew (4, 8, 16 … KiB, each a fresh `mmap` filled
/// by page faults under musl's allocator).
const SPARE_RESULTS: usize = 16;
const SPARE_BYTES: usize = 4 << 20;
/// Room the reader makes when a read filled all it had: a large result is waiting in the
/// socket (the server writes faster than the reader parses), and one read of 128 KiB costs
/// less than eight of 16 KiB.
const STREAMING_ROOM_BYTES: usize = 128 << 10;
/// A read of less than this, in the middle of a result, is followed by [`GATHER_PAUSE`] before
/// the next one (a read that fills the buffer is not: the rest is already waiting).
const GATHER_BELOW_BYTES: usize = 64 << 10;
/// How long the rest of a result arriving in pieces is left to gather in the socket before it
/// is read. With a result streaming in at tens of megabytes a second, a read then takes several
/// of the server's 8 KiB writes instead of one wake-up each; a result adds at most this to
/// its wall time; a server that sends faster fills the buffer instead, and is read at once.
const GATHER_PAUSE: Duration = Duration::from_millis(1);
/// How long `close` may wait to hand Terminate to the kernel.
const CLOSE_WAIT: Duration = Duration::from_millis(50);

/// The SSLRequest answers.
const SSL_ACCEPTED: u8 = b'S';
const SSL_REFUSED: u8 = b'N';

/// A connected, non-blocking socket.
enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Sock {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Sock::Tcp(s) => s.as_fd(),
            Sock::Unix(s) => s.as_fd(),
        }
    }
}

/// The connection, plain or TLS.
type Transport = Stream<Sock>;

/// Whether this attempt sends SSLRequest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsPlan {
    Never,
    IfOffered,
    Required,
}

/// One PostgreSQL session.
pub struct Client {
    transport: Transport,
    session: Session,
    /// `buf[start..end]` holds received bytes not yet processed by the session.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// For errors: "user@database on target".
    target: String,
    /// Set by any error that leaves the stream out of sync; every later query fails.
    broken: bool,
    /// A query sent by [`Client::send_query`] whose reply is not read yet.
    pending: bool,
    /// Its result, read early because another query needed the connection.
    early: Option<Result<Rows, PgError>>,
    /// Results handed back by [`Client::recycle`]: the next results fill their buffers (the
    /// last one handed back first).
    spares: Vec<Rows>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .field("tls", &self.is_tls())
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects, negotiates TLS, authenticates and waits for the first ReadyForQuery, all
    /// within `params.connect_timeout`.
    pub fn connect(params: &ConnectParams, signals: Option<&Signals>) -> Result<Client, PgError> {
        let deadline = Instant::now() + params.connect_timeout;
        if params.channel_binding == ChannelBinding::Require {
            let why = match (&params.target, params.sslmode) {
                (Target::Unix { .. }, _) => Some("a Unix socket never uses TLS"),
                (_, SslMode::Disable | SslMode::Allow | SslMode::Prefer) => {
                    Some("sslmode must be require, verify-ca or verify-full")
                }
                _ => None,
            };
            if let Some(why) = why {
                return Err(PgError::Auth {
                    message: format!(
                        "[postgres] channel_binding = \"require\" needs TLS and {} cannot have it ({why}); nothing was sent",
                        params.target
                    ),
                    code: String::new(),
                });
            }
        }
        let plan = match (&params.target, params.sslmode) {
            (Target::Unix { .. }, _) | (_, SslMode::Disable | SslMode::Allow) => TlsPlan::Never,
            (_, SslMode::Prefer) => TlsPlan::IfOffered,
            (_, SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull) => TlsPlan::Required,
        };
        let first = connect_once(params, plan, deadline, signals);
        match (first, &params.target, params.sslmode) {
            // allow: the server refused the plain session (hostssl only): try TLS.
            (Err(PgError::Auth { code, .. }), Target::Tcp { .. }, SslMode::Allow)
                if !code.is_empty() =>
            {
                connect_once(params, TlsPlan::IfOffered, deadline, signals)
            }
            (r, _, _) => r,
        }
    }

    /// One simple-protocol query (a single statement); waits at most `timeout`.
    pub fn query(
        &mut self,
        sql: &str,
        timeout: Duration,
        signals: Option<&Signals>,
    ) -> Result<Rows, PgError> {
        let deadline = Instant::now() + timeout;
        self.settle(deadline, signals)?;
        self.send_query_by(sql, 1, deadline, signals)?;
        self.receive_result(deadline, signals)
    }

    /// `statements` statements sent in one simple-protocol Query message (`sql`, separated
    /// by `;`), their results apart and in order: one round trip instead of one each. They
    /// run in one implicit transaction (what one holds, locks included, is held until the
    /// last ends) and the first error ends them all. Waits at most `timeout` per statement.
    pub fn query_split(
        &mut self,
        sql: &str,
        statements: usize,
        timeout: Duration,
        signals: Option<&Signals>,
    ) -> Result<Vec<Rows>, PgError> {
        let deadline = Instant::now() + timeout.saturating_mul(statements.max(1) as u32);
        self.settle(deadline, signals)?;
        self.send_query_by(sql, statements, deadline, signals)?;
        let last = self.receive_result(deadline, signals)?;
        let mut all = self.session.take_earlier();
        all.push(last);
        if all.len() != statements {
            return Err(PgError::Protocol(format!(
                "{} results for {statements} statements",
                all.len()
            )));
        }
        Ok(all)
    }

    /// Sends one simple-protocol query without waiting for its reply, which
    /// [`Client::take_sent`] reads later (so a sampler wakes once per sample, not twice). Any
    /// other query on this connection first reads that reply and keeps it for `take_sent`.
    pub fn send_query(
        &mut self,
        sql: &str,
        timeout: Duration,
        signals: Option<&Signals>,
    ) -> Result<(), PgError> {
        let deadline = Instant::now() + timeout;
        // The reply of an earlier `send_query` nobody took is dropped: `take_sent` gives the
        // result of this one.
        self.settle(deadline, signals)?;
        self.early = None;
        self.send_query_by(sql, 1, deadline, signals)
    }

    /// Sends `sql` of `statements` statements, their results to be kept apart, filling the
    /// results handed back last (a reply pending before was settled by the caller).
    fn send_query_by(
        &mut self,
        sql: &str,
        statements: usize,
        deadline: Instant,
        signals: Option<&Signals>,
    ) -> Result<(), PgError> {
        let result = self
            .session
            .query_split(sql, statements, &mut self.spares)
            .and_then(|()| self.send(deadline, signals, "query"));
        if let Err(e) = result {
            self.broken = true;
            return Err(e);
        }
        self.pending = true;
        Ok(())
    }

    /// The result of the last [`Client::send_query`], waiting for it at most `timeout`;
    /// `None` when nothing was sent since the last call.
    pub fn take_sent(
        &mut self,
        timeout: Duration,
        signals: Option<&Signals>,
    ) -> Option<Result<Rows, PgError>> {
        if let Some(r) = self.early.take() {
            return Some(r);
        }
        if !self.pending {
            return None;
        }
        Some(self.receive_result(Instant::now() + timeout, signals))
    }

    /// Hands a result back: a next query's result fills its buffers instead of growing new
    /// ones (kept only when small, and only [`SPARE_RESULTS`] of [`SPARE_BYTES`] together;
    /// the last one handed back is filled first).
    pub fn recycle(&mut self, rows: Rows) {
        let held: usize = self.spares.iter().map(Rows::capacity_bytes).sum();
        let bytes = rows.capacity_bytes();
        if bytes <= KEEP_READ_BUFFER_BYTES
            && held + bytes <= SPARE_BYTES
            && self.spares.len() < SPARE_RESULTS
        {
            self.spares.push(rows);
        }
    }

    /// Takes the results handed back (to hand them to another connection, or to drop them).
    pub fn take_spares(&mut self) -> Vec<Rows> {
        std::mem::take(&mut self.spares)
    }

    /// Reads the reply of a query sent and not yet read, keeping it for `take_sent`.
    fn settle(&mut self, deadline: Instant, signals: Option<&Signals>) -> Result<(), PgError> {
        if self.broken {
            return Err(PgError::Closed);
        }
        if self.pending {
            let r = self.receive_result(deadline, signals);
            if self.broken {
                return Err(PgError::Closed);
            }
            self.early = Some(r);
        }
        Ok(())
    }

    /// Reads the reply of the query sent (`pending`) until ReadyForQuery: its result.
    fn receive_result(
        &mut self,
        deadline: Instant,
        signals: Option<&Signals>,
    ) -> Result<Rows, PgError> {
        self.pending = false;
        if let Err(e) = self.receive_until_ready(deadline, signals, "query") {
            self.broken = true;
            return Err(e);
        }
        if self.buf.len() > KEEP_READ_BUFFER_BYTES && self.start == self.end {
            self.buf = vec![0; READ_BUFFER_BYTES];
            self.start = 0;
            self.end = 0;
        }
        match self.session.take_result() {
            Some(r) => r,
            None => {
                self.broken = true;
                Err(PgError::Protocol("no query result".to_string()))
            }
        }
    }

    /// Sends `out` (messages built by `extended`) and feeds the replies to `feed` until it
    /// consumed ReadyForQuery; ParameterStatus and notices go to the session as between
    /// queries. Any error here leaves the connection unusable (the caller drops it).
    pub(super) fn exchange(
        &mut self,
        out: &[u8],
        deadline: Instant,
        signals: Option<&Signals>,
        feed: &mut super::extended::Feed<'_>,
    ) -> Result<(), PgError> {
        use super::extended::Step;
        self.settle(deadline, signals)?;
        if !self.session.is_ready() {
            return Err(PgError::Closed);
        }
        let result = self
            .transport
            .write_all(out, deadline, signals)
            .map_err(|e| io_error(e, "query", &self.target))
            .and_then(|()| {
                loop {
                    let input = &self.buf[self.start..self.end];
                    let step = if matches!(input.first(), Some(b'S' | b'N' | b'A')) {
                        self.session
                            .try_message(input)?
                            .map(|(n, _)| Step::Continue(n))
                    } else {
                        feed(input)?
                    };
                    match step {
                        Some(Step::Continue(n)) => self.start += n,
                        Some(Step::Ready(n)) => {
                            self.start += n;
                            break Ok(());
                        }
                        None => {
                            self.make_room(1);
                            let n = self
                                .transport
                                .read(&mut self.buf[self.end..], deadline, signals)
                                .map_err(|e| io_error(e, "query", &self.target))?;
                            self.end += n;
                        }
                    }
                }
            });
        if result.is_err() {
            self.broken = true;
        }
        if self.buf.len() > KEEP_READ_BUFFER_BYTES && self.start == self.end {
            self.buf = vec![0; READ_BUFFER_BYTES];
            self.start = 0;
            self.end = 0;
        }
        result
    }

    /// `server_version_num` parsed from the `server_version` parameter (0 when unknown).
    pub fn server_version_num(&self) -> u32 {
        super::session::parse_server_version(self.parameter("server_version").unwrap_or(""))
    }

    /// A ParameterStatus value reported by the server (`server_version`, `TimeZone` …).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.session.parameter(name)
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.transport, Stream::Tls(_))
    }

    pub fn backend_pid(&self) -> i32 {
        self.session.backend_pid()
    }

    /// Sends Terminate (and TLS close_notify), best effort, without waiting on the server.
    pub fn close(mut self) {
        self.session.terminate();
        let out = self.session.output().to_vec();
        let _ = self
            .transport
            .write_all(&out, Instant::now() + CLOSE_WAIT, None);
        if let Stream::Tls(t) = self.transport {
            t.close();
        }
    }

    /// Writes everything the session queued.
    fn send(
        &mut self,
        deadline: Instant,
        signals: Option<&Signals>,
        what: &'static str,
    ) -> Result<(), PgError> {
        if self.session.output().is_empty() {
            return Ok(());
        }
        let result = self
            .transport
            .write_all(self.session.output(), deadline, signals);
        self.session.clear_output();
        result.map_err(|e| io_error(e, what, &self.target))
    }

    /// Feeds received bytes to the session (answering it when it asks) until ReadyForQuery.
    fn receive_until_ready(
        &mut self,
        deadline: Instant,
        signals: Option<&Signals>,
        what: &'static str,
    ) -> Result<(), PgError> {
        let mut room = 1;
        // The last read emptied the socket with less than GATHER_BELOW_BYTES.
        let mut small = false;
        // Not over TLS: a read there returns a record at a time, whatever else has arrived.
        let gather = matches!(self.transport, Stream::Plain(_));
        loop {
            while let Some((n, progress)) =
                self.session.try_message(&self.buf[self.start..self.end])?
            {
                self.start += n;
                self.send(deadline, signals, what)?;
                if progress == Progress::Ready {
                    return Ok(());
                }
            }
            self.make_room(room);
            if gather && small && self.session.is_receiving() {
                // The server writes a large result 8 KiB at a time, slower than it is parsed:
                // waiting for the socket would wake this thread once per piece.
                crate::proto::pause(GATHER_PAUSE, deadline, signals)
                    .map_err(|e| io_error(e, what, &self.target))?;
            }
            let free = self.buf.len() - self.end;
            let n = self
                .transport
                .read(&mut self.buf[self.end..], deadline, signals)
                .map_err(|e| io_error(e, what, &self.target))?;
            self.end += n;
            room = if n == free { STREAMING_ROOM_BYTES } else { 1 };
            small = n < free && n < GATHER_BELOW_BYTES;
        }
    }

    /// Moves the unprocessed bytes to the front and grows the buffer when it has less than
    /// `room` bytes free. The session rejects any message above its cap, and `room` is at
    /// most [`STREAMING_ROOM_BYTES`], so the buffer never exceeds cap + header + that.
    fn make_room(&mut self, room: usize) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < room {
            let max = super::session::MAX_MESSAGE_BYTES + 5;
            let len = (self.buf.len() * 2)
                .max(self.end + room)
                .clamp(READ_BUFFER_BYTES, max.max(self.end + room));
            self.buf.resize(len, 0);
        }
    }
}

/// One attempt: socket, optional TLS, startup and authentication.
fn connect_once(
    params: &ConnectParams,
    plan: TlsPlan,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<Client, PgError> {
    let target = format!("{}@{} on {}", params.user, params.database, params.target);
    // Configuration errors (a missing root file) show before any network traffic.
    let config = match plan {
        TlsPlan::Required => Some(tls_config(params)?),
        _ => None,
    };
    let mut sock = open_socket(&params.target, deadline, signals)?;
    if let (Sock::Unix(s), Some(peer)) = (&sock, &params.requirepeer) {
        check_peer(s, peer, &params.target)?;
    }
    if plan == TlsPlan::Never {
        let trusted = matches!(params.target, Target::Unix { .. }) && params.requirepeer.is_some();
        return finish_connect(
            params,
            Stream::Plain(sock),
            trusted,
            target,
            deadline,
            signals,
        );
    }
    let mut request = bytes::BytesMut::new();
    postgres_protocol::message::frontend::ssl_request(&mut request);
    write_plain(&mut sock, &request, deadline, signals)
        .map_err(|e| io_error(e, "tls handshake", &target))?;
    // Exactly one byte: anything after 'S' must come through TLS (CVE-2021-23222).
    let mut answer = [0u8; 1];
    read_plain(&mut sock, &mut answer, deadline, signals)
        .map_err(|e| io_error(e, "tls handshake", &target))?;
    let transport = match answer[0] {
        SSL_ACCEPTED => {
            let config = match config {
                Some(c) => c,
                None => tls_config(params)?,
            };
            let host = match &params.target {
                Target::Tcp { host, .. } => host.as_str(),
                Target::Unix { .. } => "localhost",
            };
            let name = tls::server_name(host).map_err(PgError::Tls)?;
            let conn = rustls::ClientConnection::new(config, name)
                .map_err(|e| PgError::Tls(format!("{target}: {e}")))?;
            let stream = TlsStream::handshake(conn, sock, deadline, signals)
                .map_err(|e| io_error(e, "tls handshake", &target))?;
            Stream::Tls(Box::new(stream))
        }
        SSL_REFUSED if plan == TlsPlan::IfOffered => {
            return finish_connect(
                params,
                Stream::Plain(sock),
                false,
                target,
                deadline,
                signals,
            );
        }
        SSL_REFUSED => {
            return Err(PgError::Tls(format!(
                "{target}: the server does not support tls (sslmode {:?} requires it)",
                params.sslmode
            )));
        }
        other => {
            return Err(PgError::Protocol(format!(
                "{target}: unexpected answer 0x{other:02x} to SSLRequest"
            )));
        }
    };
    // Only a certificate checked against the operator's roots makes cleartext acceptable.
    let trusted = matches!(params.sslmode, SslMode::VerifyCa | SslMode::VerifyFull);
    finish_connect(params, transport, trusted, target, deadline, signals)
}

/// Refuses a Unix socket whose listening process is not `requirepeer`'s (a local user may
/// have created it while the server was down). Nothing has been sent yet.
fn check_peer(sock: &UnixStream, peer: &RequirePeer, target: &Target) -> Result<(), PgError> {
    let uid = crate::sys::process::peer_uid(sock).map_err(|e| PgError::Connect {
        target: target.to_string(),
        error: format!("cannot read the socket's owner (SO_PEERCRED): {e}"),
    })?;
    if uid == peer.uid {
        return Ok(());
    }
    let passwd = crate::sys::passwd::read();
    Err(PgError::Connect {
        target: target.to_string(),
        error: format!(
            "the socket belongs to a server running as {}, not as requirepeer {} (uid {}): refused before sending anything; set [postgres] requirepeer if that user is really the server's",
            crate::sys::passwd::describe_uid(&passwd, uid),
            peer.name,
            peer.uid
        ),
    })
}

/// The `tls-server-end-point` data of a TLS connection's server certificate.
fn end_point(transport: &Transport) -> Option<Result<Vec<u8>, String>> {
    let Stream::Tls(tls) = transport else {
        return None;
    };
    Some(
        match tls.conn().peer_certificates().and_then(|c| c.first()) {
            Some(cert) => super::cert::end_point_data(cert.as_ref()),
            None => Err("the server sent no certificate".to_string()),
        },
    )
}

/// Startup and authentication on an open transport; `trusted`: verified TLS, or a Unix
/// socket whose owner passed `requirepeer`.
fn finish_connect(
    params: &ConnectParams,
    transport: Transport,
    trusted: bool,
    target: String,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<Client, PgError> {
    let options = format!(
        "-c statement_timeout={} -c lock_timeout={} -c default_transaction_read_only=on",
        params.statement_timeout.as_millis(),
        params.lock_timeout.as_millis()
    );
    let mut startup = vec![
        ("user", params.user.as_str()),
        ("database", params.database.as_str()),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO"),
        ("TimeZone", "UTC"),
        ("extra_float_digits", "3"),
        ("options", options.as_str()),
    ];
    if !params.application_name.is_empty() {
        startup.push(("application_name", params.application_name.as_str()));
    }
    let policy = AuthPolicy::new(
        params.require_auth.as_deref(),
        trusted,
        params.channel_binding,
        end_point(&transport),
    );
    let session = Session::with_policy(&params.user, params.password.as_deref(), &startup, policy)?;
    let mut client = Client {
        transport,
        session,
        buf: vec![0; READ_BUFFER_BYTES],
        start: 0,
        end: 0,
        target,
        broken: false,
        pending: false,
        early: None,
        spares: Vec::new(),
    };
    client.send(deadline, signals, "authentication")?;
    client.receive_until_ready(deadline, signals, "authentication")?;
    Ok(client)
}

/// The TLS configuration for `params.sslmode` (see the module table).
fn tls_config(params: &ConnectParams) -> Result<Arc<rustls::ClientConfig>, PgError> {
    let default_root = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".postgresql").join("root.crt"))
        .filter(|p| p.exists());
    let root_file = params.sslrootcert.clone().or(default_root);
    let roots = |path: &PathBuf| {
        if path.as_os_str() == "system" {
            Ok(tls::system_roots().0)
        } else {
            tls::load_roots(path).map_err(PgError::Tls)
        }
    };
    let verify = match (params.sslmode, &root_file) {
        (SslMode::VerifyFull, Some(p)) => Verify::Full(roots(p)?),
        (SslMode::VerifyCa, Some(p)) => Verify::Chain(roots(p)?),
        (SslMode::VerifyFull | SslMode::VerifyCa, None) => {
            return Err(PgError::Tls(format!(
                "sslmode {:?} needs a root certificate: set sslrootcert (no ~/.postgresql/root.crt found)",
                params.sslmode
            )));
        }
        (_, Some(p)) => Verify::Chain(roots(p)?),
        (_, None) => Verify::Nothing,
    };
    tls::client_config(verify, rustls::DEFAULT_VERSIONS).map_err(PgError::Tls)
}

/// Resolves (once) and connects a non-blocking socket before `deadline`.
fn open_socket(
    target: &Target,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<Sock, PgError> {
    let connect_error = |error: String| PgError::Connect {
        target: target.to_string(),
        error,
    };
    match target {
        Target::Unix { dir, port } => {
            let path = Target::socket_path(dir, *port);
            let addr = rustix::net::SocketAddrUnix::new(&path)
                .map_err(|e| connect_error(io::Error::from(e).to_string()))?;
            let fd = connect_fd(AddressFamily::UNIX, &addr, deadline, signals)
                .map_err(|e| io_connect_error(e, target))?;
            Ok(Sock::Unix(UnixStream::from(fd)))
        }
        Target::Tcp { host, port } => {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let addrs = resolve(bare, *port, deadline, signals).map_err(|e| match e {
                ResolveError::Interrupted => PgError::Interrupted,
                ResolveError::Timeout => PgError::Timeout {
                    what: "name resolution",
                },
                ResolveError::Failed(m) => connect_error(m),
            })?;
            let mut last = connect_error("host resolves to no address".to_string());
            for addr in addrs {
                let family = match addr {
                    SocketAddr::V4(_) => AddressFamily::INET,
                    SocketAddr::V6(_) => AddressFamily::INET6,
                };
                match connect_fd(family, &addr, deadline, signals) {
                    Ok(fd) => {
                        let _ = rustix::net::sockopt::set_tcp_nodelay(&fd, true);
                        let _ = rustix::net::sockopt::set_socket_keepalive(&fd, true);
                        return Ok(Sock::Tcp(TcpStream::from(fd)));
                    }
                    Err(e @ (IoError::Timeout | IoError::Interrupted)) => {
                        return Err(io_connect_error(e, target));
                    }
                    Err(e) => last = io_connect_error(e, target),
                }
            }
            Err(last)
        }
    }
}

fn io_connect_error(e: IoError, target: &Target) -> PgError {
    match e {
        IoError::Timeout => PgError::Timeout { what: "connect" },
        IoError::Interrupted => PgError::Interrupted,
        other => PgError::Connect {
            target: target.to_string(),
            error: other.to_string(),
        },
    }
}

/// A transfer error as the caller sees it; `target` names user, database and address.
fn io_error(e: IoError, what: &'static str, target: &str) -> PgError {
    match e {
        IoError::Timeout => PgError::Timeout { what },
        IoError::Interrupted => PgError::Interrupted,
        IoError::Closed => PgError::Closed,
        IoError::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
            ) =>
        {
            PgError::Closed
        }
        IoError::Io(e) => PgError::Connect {
            target: target.to_string(),
            error: e.to_string(),
        },
        IoError::Tls(e) => PgError::Tls(format!("{target}: {e}")),
    }
}
