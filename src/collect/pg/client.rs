//! The PostgreSQL client the pg collectors use.
//!
//! TEMPORARY: a stand-in with the agreed API of `crate::proto::postgres` (branch `pgclient`),
//! so this branch builds before that one lands. Every connect fails with "not available".
//! The merge replaces this file's body with `pub use crate::proto::postgres::*;`.
#![allow(dead_code)]

use crate::sys::signals::Signals;
use crate::util::WallTime;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp { host: String, port: u16 },
    Unix { dir: PathBuf, port: u16 },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
            Target::Unix { dir, port } => write!(f, "{}/.s.PGSQL.{port}", dir.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectParams {
    pub target: Target,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub application_name: String,
    pub sslmode: crate::config::SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
}

#[derive(Debug)]
pub enum PgError {
    Connect {
        target: String,
        error: std::io::Error,
    },
    Timeout {
        what: &'static str,
    },
    Tls(String),
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
    Interrupted,
    Closed,
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgError::Connect { target, error } => write!(f, "{target}: {error}"),
            PgError::Timeout { what } => write!(f, "timeout: {what}"),
            PgError::Tls(m) | PgError::Protocol(m) => f.write_str(m),
            PgError::Auth { message, .. } => f.write_str(message),
            PgError::Server { message, .. } => f.write_str(message),
            PgError::Decode { column, .. } => write!(f, "bad value in column {column}"),
            PgError::Interrupted => f.write_str("interrupted"),
            PgError::Closed => f.write_str("connection closed"),
        }
    }
}

impl PgError {
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgError::Server { code, .. } | PgError::Auth { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_connection_lost(&self) -> bool {
        matches!(self, PgError::Closed | PgError::Protocol(_))
    }
}

pub struct Client;

impl Client {
    pub fn connect(params: &ConnectParams, _signals: Option<&Signals>) -> Result<Client, PgError> {
        Err(PgError::Connect {
            target: params.target.to_string(),
            error: std::io::Error::other("PostgreSQL client not available in this build"),
        })
    }

    pub fn query(
        &mut self,
        _sql: &str,
        _timeout: Duration,
        _signals: Option<&Signals>,
    ) -> Result<Rows, PgError> {
        Err(PgError::Closed)
    }

    pub fn server_version_num(&self) -> u32 {
        0
    }

    pub fn parameter(&self, _name: &str) -> Option<&str> {
        None
    }

    pub fn is_tls(&self) -> bool {
        false
    }

    pub fn backend_pid(&self) -> i32 {
        0
    }

    pub fn close(self) {}
}

pub struct Rows;

impl Rows {
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        true
    }

    pub fn columns(&self) -> impl Iterator<Item = &str> {
        std::iter::empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        std::iter::empty()
    }
}

pub struct Row<'a>(&'a ());

impl<'a> Row<'a> {
    pub fn get_str(&self, _col: &str) -> Result<Option<&'a str>, PgError> {
        Ok(None)
    }
    pub fn get_i64(&self, _col: &str) -> Result<Option<i64>, PgError> {
        Ok(None)
    }
    pub fn get_u64(&self, _col: &str) -> Result<Option<u64>, PgError> {
        Ok(None)
    }
    pub fn get_f64(&self, _col: &str) -> Result<Option<f64>, PgError> {
        Ok(None)
    }
    pub fn get_bool(&self, _col: &str) -> Result<Option<bool>, PgError> {
        Ok(None)
    }
    pub fn get_timestamptz(&self, _col: &str) -> Result<Option<WallTime>, PgError> {
        Ok(None)
    }
}
