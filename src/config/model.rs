//! The validated configuration: every section and key of `docs/configuration.md`, with the built-in
//! defaults. This is what the rest of the collector reads; it never sees TOML.
//!
//! Durations are `Duration`s (the file writes seconds with an optional fraction, or `_ms`).
//! Empty strings of the file ("use the default") are `None` here.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub collector: Collector,
    pub backend: Backend,
    pub auth: Auth,
    pub tls: Tls,
    pub postgres: Postgres,
    pub logging: Logging,
    /// One entry per name of [`PLUGIN_NAMES`], same order.
    pub plugins: Vec<Plugin>,
    pub sysstat: Sysstat,
    pub disk_usage: DiskUsage,
    pub pg_stats: PgStats,
    pub pg_query_stats: PgQueryStats,
    pub pg_log: PgLog,
    pub pg_connections: PgConnections,
    pub pg_bloat: PgBloat,
    pub pg_wait_events: PgWaitEvents,
    /// `[[custom_query]]` tables, in file order (the `pg_custom` plugin; never pulled).
    pub custom_queries: Vec<CustomQuery>,
}

/// One `[[custom_query]]` (docs/metrics.md, `pg_custom`).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomQuery {
    /// `[a-z0-9_]{1,63}`, unique among the queries.
    pub name: String,
    /// One statement, no parameters.
    pub sql: String,
    /// Its own schedule (default: `[collector] interval`).
    pub interval: Duration,
    /// `None`: the `[postgres] database` alone.
    pub databases: Option<Databases>,
    /// `server_version_num` bounds; 0 = no bound.
    pub min_version: u32,
    pub max_version: u32,
    /// Rows kept per database; more sets `truncated`.
    pub max_rows: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Collector {
    /// `[collector] id`; `None` = the registered id from the state directory.
    pub id: Option<String>,
    /// `None` = the kernel node name.
    pub hostname: Option<String>,
    pub interval: Duration,
    pub push_interval: Duration,
    /// `None` = never pull (`config_pull_interval = 0`).
    pub config_pull_interval: Option<Duration>,
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// `None` when the file names no backend (only `once` and `run --stdout` work then).
    pub url: Option<super::BackendUrl>,
    pub compression: Compression,
    /// 1 (fast) … 10 (small).
    pub compression_level: u8,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub max_batch_bytes: usize,
    pub buffer_bytes: usize,
    /// Bound of the outage spool on disk; 0 = no spool (docs/protocol.md, "Spool").
    pub spool_bytes: u64,
    pub allow_insecure_http: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Token,
    SharedSecret,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    pub mode: AuthMode,
    /// `None` = `<state_dir>/collector.token`.
    pub token_file: Option<PathBuf>,
    pub registration_secret_file: Option<PathBuf>,
    pub jwt_secret_file: Option<PathBuf>,
    pub token_lifetime: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    pub verify: bool,
    pub ca_file: Option<PathBuf>,
    /// `None` = `<state_dir>/collector.crt` if present.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Which databases are monitored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Databases {
    /// `"*"`: every database that allows connections.
    All,
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Postgres {
    /// Name, IP, or absolute socket directory; `None` = as libpq (sockets, then localhost).
    pub host: Option<String>,
    pub port: u16,
    /// `None` = PGUSER, else the operating-system user.
    pub user: Option<String>,
    /// Written in the config file (or PGPASSWORD); prefer `password_file`.
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub database: String,
    pub databases: Databases,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub max_connections: u32,
    pub application_name: String,
    /// The OS user a Unix socket's server process must run as (SO_PEERCRED). `None` = the
    /// default: `postgres` when that user exists, else no check; `Some("")` = no check.
    pub requirepeer: Option<String>,
    /// The authentication methods the server may ask for. `None` = the default: SCRAM,
    /// md5 and none, plus cleartext over verified TLS or a peer-checked Unix socket.
    pub require_auth: Option<Vec<PgAuthMethod>>,
    pub channel_binding: ChannelBinding,
}

/// An authentication method a server may ask for (`require_auth`, libpq 16's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgAuthMethod {
    /// Cleartext password.
    Password,
    Md5,
    ScramSha256,
    /// The server asks for nothing (trust, peer).
    None,
}

/// SCRAM channel binding (`channel_binding`, libpq's meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
    Disable,
    Prefer,
    Require,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Logging {
    pub level: LogLevel,
    /// `None` = by environment: text when stderr is a terminal, else json.
    pub format: Option<LogFormat>,
}

/// The keys every plugin table has.
#[derive(Debug, Clone, PartialEq)]
pub struct Plugin {
    pub name: &'static str,
    pub enabled: bool,
    /// Defaults to `[collector] interval`.
    pub interval: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sysstat {
    pub include_partitions: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DiskUsage {
    pub include_fstypes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PgStats {
    pub max_tables: u32,
    pub max_indexes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PgQueryStats {
    pub limit: u32,
    pub max_query_length: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgLogFormat {
    Auto,
    Stderr,
    Csvlog,
    Jsonlog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    End,
    Beginning,
}

/// PostgreSQL severities in server order (`min_level` compares with this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PgSeverity {
    Debug5,
    Debug4,
    Debug3,
    Debug2,
    Debug1,
    Info,
    Notice,
    Warning,
    Error,
    Log,
    Fatal,
    Panic,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PgLog {
    /// A file, or a directory read with `pattern`; `None` = ask the server.
    pub path: Option<PathBuf>,
    pub pattern: String,
    pub format: PgLogFormat,
    /// `None` = `SHOW log_line_prefix`, else `'%m [%p] '`.
    pub log_line_prefix: Option<String>,
    /// `None` = `SHOW log_timezone`, else UTC.
    pub log_timezone: Option<String>,
    pub min_level: PgSeverity,
    pub start_at: StartAt,
    pub max_entries: u32,
    pub max_message_bytes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PgConnections {
    pub long_transaction: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PgBloat {
    /// The largest tables (by pages) whose bloat, and their indexes' bloat, is estimated.
    pub max_tables: u32,
}

/// `[pg_wait_events]` (docs/metrics.md, `pg_wait_events`).
#[derive(Debug, Clone, PartialEq)]
pub struct PgWaitEvents {
    /// `pg_stat_activity` is sampled this often between elements (ms, at least 100).
    pub sample_ms: u32,
    /// Query keys with the most samples listed in each element.
    pub top_queries: u32,
}

impl Config {
    /// The plugin settings by name (`None` for a name that is not a plugin).
    pub fn plugin(&self, name: &str) -> Option<&Plugin> {
        self.plugins.iter().find(|p| p.name == name)
    }

    /// The plugin settings by name, mutable (`None` for a name that is not a plugin).
    pub fn plugin_mut(&mut self, name: &str) -> Option<&mut Plugin> {
        self.plugins.iter_mut().find(|p| p.name == name)
    }
}

/// Gives an enum of the file its spellings: `NAMES` (file spelling → variant, in the order
/// messages list them) and `as_str` (the canonical spelling, as `check-config` prints it).
macro_rules! spelled {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every spelling the file accepts, canonical form.
            pub const NAMES: &'static [(&'static str, $ty)] = &[$(($name, $ty::$variant)),+];

            /// The canonical spelling in the file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }
    };
}

spelled!(Compression { Gzip => "gzip", None => "none" });
spelled!(AuthMode { Token => "token", SharedSecret => "shared_secret" });
spelled!(SslMode {
    Disable => "disable",
    Allow => "allow",
    Prefer => "prefer",
    Require => "require",
    VerifyCa => "verify-ca",
    VerifyFull => "verify-full",
});
spelled!(PgAuthMethod {
    Password => "password",
    Md5 => "md5",
    ScramSha256 => "scram-sha-256",
    None => "none",
});
spelled!(ChannelBinding { Disable => "disable", Prefer => "prefer", Require => "require" });
spelled!(LogLevel { Error => "error", Warn => "warn", Info => "info", Debug => "debug" });
spelled!(LogFormat { Json => "json", Text => "text" });
spelled!(PgLogFormat { Auto => "auto", Stderr => "stderr", Csvlog => "csvlog", Jsonlog => "jsonlog" });
spelled!(StartAt { End => "end", Beginning => "beginning" });
spelled!(PgSeverity {
    Debug5 => "DEBUG5",
    Debug4 => "DEBUG4",
    Debug3 => "DEBUG3",
    Debug2 => "DEBUG2",
    Debug1 => "DEBUG1",
    Info => "INFO",
    Notice => "NOTICE",
    Warning => "WARNING",
    Error => "ERROR",
    Log => "LOG",
    Fatal => "FATAL",
    Panic => "PANIC",
});
