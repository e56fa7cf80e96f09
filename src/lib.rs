//! pganalytics-collector: a PostgreSQL host monitoring agent, one static binary, one thread.
//!
//! Layout:
//! - [`app`]: the commands (`once`, `run`, `check-config`) and the poll loop that drives them;
//! - [`collect`]: the collectors, one per metric type of `docs/metrics.md`;
//! - [`pipeline`]: the bounded element buffer, the envelope and the sinks (docs/protocol.md, "Delivery
//!   model");
//! - [`proto`]: the protocols spoken over sockets: PostgreSQL (pure session + blocking
//!   driver), the TLS driver they share, and the pure pieces of the backend push: HTTP/1.1,
//!   HS256 JWT and gzip;
//! - [`agent_log`]: the agent's own log lines on stderr (not PostgreSQL's logs);
//! - [`pg_log_format`]: the PostgreSQL log format, server log bytes to entries (stderr, csvlog,
//!   jsonlog); pure, fed by the `pg_log` collector ([`collect::pg::pg_log`]);
//! - [`tz`]: time zones (TZif files, POSIX TZ rules) that turn local timestamps to UTC;
//! - [`calendar`]: days since 1970 to dates and back, the one calendar arithmetic;
//! - [`push`]: the HTTPS sink, its connection, authentication, registration and config pull;
//! - [`state`]: the state directory, every file the collector keeps between runs;
//! - [`config`]: the TOML file, validated whole, and its model;
//! - [`sys`]: the system layer, every syscall: /proc parsers (pure), the fixed-buffer file
//!   reader, the followed log files, statfs, clocks and signals.
#![deny(unsafe_code)]

pub mod agent_log;
pub mod app;
pub mod calendar;
pub mod cli;
pub mod collect;
pub mod config;
pub mod pg_log_format;
pub mod pipeline;
pub mod proto;
pub mod push;
pub mod state;
pub mod sys;
pub mod tz;
pub mod util;

/// The git commit this binary was built from (build.rs), `unknown` outside a git checkout.
pub const GIT_COMMIT: &str = env!("PGANALYTICS_GIT_COMMIT");

/// What `--version` prints: `pganalytics-collector VERSION (commit HASH)`.
pub const VERSION_LINE: &str = concat!(
    "pganalytics-collector ",
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PGANALYTICS_GIT_COMMIT"),
    ")"
);
