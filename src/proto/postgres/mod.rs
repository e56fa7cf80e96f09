//! The PostgreSQL client: a pure protocol state machine ([`session`]), query results decoded
//! lazily from text ([`rows`]), and the blocking driver over TCP or a Unix socket, with TLS
//! ([`client`]).
//!
//! Custom queries use the extended protocol for one statement ([`extended`]) with binary
//! results decoded by [`binary`].
//!
//! Scope: the simple query protocol, read-only sessions (every session starts with
//! `default_transaction_read_only=on`), authentication by trust, cleartext password, md5,
//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (`tls-server-end-point`, [`cert`]), each only when
//! `require_auth` allows it; the Unix socket's owner checked against `requirepeer` before
//! anything is sent. Not here: the extended protocol beyond [`extended`]'s one statement, COPY, cancel requests,
//! GSS/Kerberos/SSPI, client certificates.

pub mod binary;
pub mod cert;
pub mod client;
pub mod extended;
pub mod rows;
pub mod scram;
pub mod session;

pub use client::Client;
pub use rows::{Row, Rows};

use crate::config::{ChannelBinding, PgAuthMethod, SslMode};
use std::path::PathBuf;
use std::time::Duration;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A host name or IP address.
    Tcp { host: String, port: u16 },
    /// The socket file is `dir/.s.PGSQL.<port>`.
    Unix { dir: PathBuf, port: u16 },
}

impl Target {
    /// The socket file of a Unix target.
    pub fn socket_path(dir: &std::path::Path, port: u16) -> PathBuf {
        dir.join(format!(".s.PGSQL.{port}"))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp { host, port } if host.contains(':') && !host.starts_with('[') => {
                write!(f, "[{host}]:{port}")
            }
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
            Target::Unix { dir, port } => {
                write!(f, "{}", Target::socket_path(dir, *port).display())
            }
        }
    }
}

/// The user a Unix socket's server process must run as (`requirepeer`), resolved to its uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirePeer {
    pub name: String,
    pub uid: u32,
}

/// Everything needed to open one session.
#[derive(Clone)]
pub struct ConnectParams {
    pub target: Target,
    pub user: String,
    /// Never in Debug output, logs or errors.
    pub password: Option<String>,
    pub database: String,
    pub application_name: String,
    /// Ignored for Unix sockets, as libpq does (TLS is never used on them).
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    /// Bounds resolution, TCP connect, TLS handshake and authentication together.
    pub connect_timeout: Duration,
    /// Server-side `statement_timeout` (zero = none).
    pub statement_timeout: Duration,
    /// Server-side `lock_timeout` (zero = none).
    pub lock_timeout: Duration,
    /// Over a Unix socket, the server must run as this user (checked with `SO_PEERCRED`
    /// before anything is sent); `None` = no check.
    pub requirepeer: Option<RequirePeer>,
    /// The authentication methods the server may ask for; `None` = the default (SCRAM, md5,
    /// none, and cleartext over verified TLS or a peer-checked socket).
    pub require_auth: Option<Vec<PgAuthMethod>>,
    pub channel_binding: ChannelBinding,
}

impl std::fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectParams")
            .field("target", &self.target)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("database", &self.database)
            .field("application_name", &self.application_name)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("lock_timeout", &self.lock_timeout)
            .field("requirepeer", &self.requirepeer)
            .field("require_auth", &self.require_auth)
            .field("channel_binding", &self.channel_binding)
            .finish()
    }
}

/// What can go wrong talking to PostgreSQL.
#[derive(Debug)]
pub enum PgError {
    /// Refused, no such host, no socket file …
    Connect {
        target: String,
        error: String,
    },
    /// "connect", "tls handshake", "authentication", "query".
    Timeout {
        what: &'static str,
    },
    Tls(String),
    /// From the server's ErrorResponse during authentication (28P01, 28000 …; `code` is
    /// empty when the error is ours).
    Auth {
        message: String,
        code: String,
    },
    Server {
        severity: String,
        code: String,
        message: String,
        detail: Option<String>,
        hint: Option<String>,
    },
    Protocol(String),
    Decode {
        column: String,
        value: String,
        expected: &'static str,
    },
    /// SIGTERM/SIGINT arrived during a wait.
    Interrupted,
    /// The server closed the connection.
    Closed,
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgError::Connect { target, error } => write!(f, "cannot connect to {target}: {error}"),
            PgError::Timeout { what } => write!(f, "timeout during {what}"),
            PgError::Tls(e) => write!(f, "tls: {e}"),
            PgError::Auth { message, code } if code.is_empty() => {
                write!(f, "authentication failed: {}", one_line(message))
            }
            PgError::Auth { message, code } => {
                write!(f, "authentication failed ({code}): {}", one_line(message))
            }
            PgError::Server { code, message, .. } => {
                write!(f, "server error {code}: {}", one_line(message))
            }
            PgError::Protocol(e) => write!(f, "protocol error: {e}"),
            PgError::Decode {
                column,
                value,
                expected,
            } => write!(f, "column {column:?}: cannot read {value:?} as {expected}"),
            PgError::Interrupted => f.write_str("interrupted by a stop signal"),
            PgError::Closed => f.write_str("the server closed the connection"),
        }
    }
}

impl std::error::Error for PgError {}

/// Server messages are one line in practice; make sure.
fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\n') {
        std::borrow::Cow::Owned(s.replace('\n', " "))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

impl PgError {
    /// The SQLSTATE of a server or authentication error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgError::Server { code, .. } | PgError::Auth { code, .. } if !code.is_empty() => {
                Some(code)
            }
            _ => None,
        }
    }

    /// The connection must be dropped (and reopened): it is closed, timed out, out of sync,
    /// or the backend ended it with a FATAL/PANIC error (e.g. 57P01 at a server shutdown).
    pub fn is_connection_lost(&self) -> bool {
        match self {
            PgError::Closed
            | PgError::Connect { .. }
            | PgError::Timeout { .. }
            | PgError::Protocol(_)
            | PgError::Tls(_)
            | PgError::Interrupted => true,
            PgError::Server { severity, .. } => matches!(severity.as_str(), "FATAL" | "PANIC"),
            PgError::Auth { .. } | PgError::Decode { .. } => false,
        }
    }
}
