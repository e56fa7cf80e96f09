//! The built-in configuration: every key's default. The plugins' come from the registry
//! (on by default, default interval).

use super::model::*;
use crate::collect::registry::{self, PLUGINS};
use std::path::PathBuf;
use std::time::Duration;

impl Default for Config {
    fn default() -> Self {
        let interval = Duration::from_secs(60);
        Config {
            collector: Collector {
                id: None,
                hostname: None,
                interval,
                push_interval: Duration::from_secs(60),
                config_pull_interval: Some(Duration::from_secs(300)),
                state_dir: PathBuf::from("/var/lib/pganalytics"),
            },
            backend: Backend {
                url: None,
                compression: Compression::Gzip,
                compression_level: 3,
                connect_timeout: Duration::from_secs(10),
                request_timeout: Duration::from_secs(30),
                retry_initial: Duration::from_secs(1),
                retry_max: Duration::from_secs(300),
                max_batch_bytes: 4 * 1024 * 1024,
                buffer_bytes: 16 * 1024 * 1024,
                spool_bytes: 64 * 1024 * 1024,
                allow_insecure_http: false,
            },
            auth: Auth {
                mode: AuthMode::Token,
                token_file: None,
                registration_secret_file: None,
                jwt_secret_file: None,
                token_lifetime: Duration::from_secs(900),
            },
            tls: Tls {
                verify: true,
                ca_file: None,
                cert_file: None,
                key_file: None,
            },
            postgres: Postgres {
                host: None,
                port: 5432,
                user: None,
                password: None,
                password_file: None,
                database: "postgres".to_string(),
                databases: Databases::List(vec!["postgres".to_string()]),
                sslmode: SslMode::Prefer,
                sslrootcert: None,
                connect_timeout: Duration::from_secs(5),
                statement_timeout: Duration::from_millis(5000),
                lock_timeout: Duration::from_millis(1000),
                max_connections: 4,
                application_name: "pganalytics-collector".to_string(),
                requirepeer: None,
                require_auth: None,
                channel_binding: ChannelBinding::Prefer,
            },
            logging: Logging {
                level: LogLevel::Info,
                format: None,
            },
            plugins: PLUGINS
                .iter()
                .map(|p| Plugin {
                    name: p.name,
                    enabled: p.on_by_default,
                    interval: registry::default_interval(p, interval),
                })
                .collect(),
            sysstat: Sysstat {
                include_partitions: false,
            },
            disk_usage: DiskUsage {
                include_fstypes: Vec::new(),
            },
            pg_stats: PgStats {
                max_tables: 500,
                max_indexes: 500,
            },
            pg_query_stats: PgQueryStats {
                limit: 100,
                max_query_length: 4096,
            },
            pg_log: PgLog {
                path: None,
                pattern: "*.log".to_string(),
                format: PgLogFormat::Auto,
                log_line_prefix: None,
                log_timezone: None,
                min_level: PgSeverity::Warning,
                start_at: StartAt::End,
                max_entries: 10_000,
                max_message_bytes: 8192,
            },
            pg_connections: PgConnections {
                long_transaction: Duration::from_secs(300),
            },
            pg_bloat: PgBloat { max_tables: 500 },
            pg_wait_events: PgWaitEvents {
                sample_ms: 1000,
                top_queries: 20,
            },
            custom_queries: Vec::new(),
        }
    }
}

/// `max_rows` of a `[[custom_query]]` that sets none.
pub const CUSTOM_QUERY_MAX_ROWS: u32 = 1000;
