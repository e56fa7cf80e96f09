use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::config::{REDACTED, render};

const SAMPLE: &str = include_str!("../../../packaging/collector.toml");

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    parse_str("t.toml", text, &no_env)
}

fn ok(text: &str) -> Config {
    match parse(text) {
        Ok(l) => l.config,
        Err(e) => panic!("unexpected errors: {e:?}"),
    }
}

fn warnings(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(l) => l.warnings.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("unexpected errors: {e:?}"),
    }
}

/// The errors, as `LINE:COL: message`.
fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected errors for {text:?}"),
        Err(e) => e
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
            .collect(),
    }
}

fn one_error(text: &str) -> String {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:?}");
    e[0].clone()
}

fn env_of(vars: &[(&str, &str)]) -> HashMap<String, String> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn empty_file_is_the_default() {
    let l = parse("").unwrap();
    assert_eq!(l.config, Config::default());
    assert!(l.warnings.is_empty());
    assert_eq!(defaults_with_env(&no_env), Config::default());
}

#[test]
fn sample_file_has_no_warnings_and_the_values_it_shows() {
    let l = parse(SAMPLE).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let mut want = Config::default();
    want.backend.url = Some(BackendUrl::parse("https://pganalytics.example.com").unwrap());
    want.plugin_mut("disk_usage").unwrap().interval = Duration::from_secs(300);
    want.custom_queries = vec![CustomQuery {
        name: "replication_delay".into(),
        sql: "select extract(epoch from now() - pg_last_xact_replay_timestamp()) as delay_secs"
            .into(),
        interval: Duration::from_secs(60),
        databases: None,
        min_version: 0,
        max_version: 0,
        max_rows: 1000,
    }];
    assert_eq!(l.config, want);
}

#[test]
fn plugin_interval_defaults() {
    let c = ok("[collector]\ninterval = 15\n");
    for p in &c.plugins {
        let want = match p.name {
            "pg_log" => 10,
            "pg_cache" => 300,
            "pg_bloat" | "pg_extensions" | "pg_schema" => 3600,
            _ => 15,
        };
        assert_eq!(p.interval, Duration::from_secs(want), "{}", p.name);
    }
    let c = ok("[sysstat]\ninterval = 5\n");
    assert_eq!(
        c.plugin("sysstat").unwrap().interval,
        Duration::from_secs(5)
    );
    assert_eq!(
        c.plugin("disk_usage").unwrap().interval,
        Duration::from_secs(60)
    );
}

#[test]
fn type_errors() {
    let cases = [
        (
            "[tls]\nverify = \"maybe\"\n",
            "2:10: [tls] verify: expected true or false, found string",
        ),
        (
            "[tls]\nverify = \"yes\"\n",
            "2:10: [tls] verify: expected true or false, found the string \"yes\" (the C++ \
             collector's syntax); in TOML write `verify = true`",
        ),
        (
            "[collector]\nid = 5\n",
            "2:6: [collector] id: expected a string, found integer",
        ),
        (
            "[collector]\ninterval = \"60\"\n",
            "2:12: [collector] interval: expected a number of seconds, found string",
        ),
        (
            "[postgres]\nlock_timeout_ms = 1.5\n",
            "2:19: [postgres] lock_timeout_ms: expected an integer number of milliseconds, found float",
        ),
        (
            "[postgres]\nport = \"5432\"\n",
            "2:8: [postgres] port: expected an integer, found string",
        ),
        (
            "[disk_usage]\ninclude_fstypes = \"xfs\"\n",
            "2:19: [disk_usage] include_fstypes: expected an array of strings, found string",
        ),
        (
            "[disk_usage]\ninclude_fstypes = [\"xfs\", 3]\n",
            "2:27: [disk_usage] include_fstypes: expected an array of strings, found integer in it",
        ),
        (
            "[postgres]\ndatabases = 5\n",
            "2:13: [postgres] databases: expected an array of database names or a comma-separated string, found integer",
        ),
        (
            "sysstat = true\n",
            "1:11: [sysstat]: expected a table, found boolean",
        ),
        (
            "[[pg_log]]\nenabled = true\n",
            "1:1: [pg_log]: expected a table, found array of tables",
        ),
        (
            "[collector.interval]\nx = 1\n",
            "1:1: [collector] interval: expected a number of seconds, found table",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(one_error(text), want, "{text:?}");
    }
}

#[test]
fn range_errors() {
    let cases = [
        ("[collector]\ninterval = 0\n", "at least 0.01 seconds"),
        ("[collector]\ninterval = 0.001\n", "at least 0.01 seconds"),
        ("[collector]\ninterval = -5\n", "at least 0.01 seconds"),
        ("[collector]\ninterval = nan\n", "finite"),
        ("[collector]\ninterval = inf\n", "finite"),
        ("[collector]\ninterval = 1e12\n", "at most"),
        (
            "[collector]\nconfig_pull_interval = -1\n",
            "(or 0 for never)",
        ),
        ("[backend]\ncompression_level = 0\n", "must be at least 1"),
        ("[backend]\ncompression_level = 11\n", "must be at most 10"),
        ("[postgres]\nport = 0\n", "must be at least 1"),
        ("[postgres]\nport = 65536\n", "must be at most 65535"),
        ("[postgres]\nmax_connections = 0\n", "must be at least 1"),
        (
            "[postgres]\nstatement_timeout_ms = -1\n",
            "must not be negative",
        ),
        ("[pg_stats]\nmax_tables = -1\n", "must not be negative"),
        (
            "[pg_stats]\nmax_tables = 4294967296\n",
            "at most 4294967295",
        ),
        ("[backend]\nbuffer_bytes = -1\n", "must not be negative"),
        ("[backend]\nmax_batch_bytes = 0\n", "must be at least 1"),
        ("[collector]\nstate_dir = \"\"\n", "must not be empty"),
        ("[postgres]\ndatabase = \"\"\n", "must not be empty"),
        ("[postgres]\ndatabases = []\n", "at least one database"),
        ("[postgres]\ndatabases = \"*, app\"\n", "stands alone"),
    ];
    for (text, want) in cases {
        let e = one_error(text);
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn buffer_must_hold_one_largest_element() {
    let e = one_error("[backend]\nmax_batch_bytes = 1000\nbuffer_bytes = 249\n");
    assert_eq!(
        e,
        "3:1: [backend] buffer_bytes: must be at least max_batch_bytes / 4 (250) so one largest \
         element fits in the buffer"
    );
    ok("[backend]\nmax_batch_bytes = 1000\nbuffer_bytes = 250\n");
    // Security rule S6: sizes past what a host should give are configuration errors at the
    // key (they aborted at allocation before), so the default buffer always holds the
    // largest element.
    let e = one_error("[backend]\nmax_batch_bytes = 100000000\n");
    assert_eq!(
        e,
        "2:19: [backend] max_batch_bytes: must be at most 67108864"
    );
    let e = one_error("[backend]\nbuffer_bytes = 9223372036854775807\n");
    assert_eq!(
        e,
        "2:16: [backend] buffer_bytes: must be at most 1073741824"
    );
    ok("[backend]\nmax_batch_bytes = 67108864\nbuffer_bytes = 1073741824\n");
}

#[test]
fn spool_bytes_is_off_or_between_8_mib_and_64_gib() {
    for bad in ["1", "8388607", "68719476737", "-1"] {
        let e = one_error(&format!("[backend]\nspool_bytes = {bad}\n"));
        assert_eq!(
            e,
            format!(
                "2:15: [backend] spool_bytes: {bad} is out of range: 0 turns the outage spool \
                 off, otherwise it must be between 8388608 (8 MiB) and 68719476736 (64 GiB)"
            )
        );
    }
    let e = one_error("[backend]\nspool_bytes = \"64M\"\n");
    assert!(
        e.contains("spool_bytes: expected an integer number of bytes"),
        "{e}"
    );
    for good in ["0", "8388608", "68719476736"] {
        ok(&format!("[backend]\nspool_bytes = {good}\n"));
    }
}

#[test]
fn unknown_enum_values_list_the_allowed_ones() {
    let cases = [
        (
            "[backend]\ncompression = \"zstd\"\n",
            "unknown value `zstd`; expected one of gzip, none",
        ),
        (
            "[auth]\nmode = \"jwt\"\n",
            "expected one of token, shared_secret",
        ),
        (
            "[postgres]\nsslmode = \"strict\"\n",
            "expected one of disable, allow, prefer, require, verify-ca, verify-full",
        ),
        (
            "[logging]\nlevel = \"trace\"\n",
            "expected one of error, warn, info, debug",
        ),
        (
            "[logging]\nformat = \"xml\"\n",
            "expected one of json, text",
        ),
        (
            "[pg_log]\nformat = \"syslog\"\n",
            "expected one of auto, stderr, csvlog, jsonlog",
        ),
        (
            "[pg_log]\nstart_at = \"middle\"\n",
            "expected one of end, beginning",
        ),
        (
            "[pg_log]\nmin_level = \"loud\"\n",
            "expected one of DEBUG5, DEBUG4",
        ),
    ];
    for (text, want) in cases {
        let e = one_error(text);
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn min_level_any_case_and_debug_alias() {
    let c = ok("[pg_log]\nmin_level = \"error\"\n");
    assert_eq!(c.pg_log.min_level, PgSeverity::Error);
    let c = ok("[pg_log]\nmin_level = \"Debug\"\n");
    assert_eq!(c.pg_log.min_level, PgSeverity::Debug2);
    let c = ok("[pg_log]\nmin_level = \"debug5\"\n");
    assert_eq!(c.pg_log.min_level, PgSeverity::Debug5);
}

#[test]
fn all_errors_at_once_sorted_with_line_and_column() {
    let text = "\
[postgres]
port = 0
sslmode = \"nope\"

[collector]
interval = \"x\"
  push_interval = 0

[backend]
compression_level = 42
";
    assert_eq!(
        errors(text),
        [
            "2:8: [postgres] port: must be at least 1",
            "3:11: [postgres] sslmode: unknown value `nope`; expected one of disable, allow, \
             prefer, require, verify-ca, verify-full",
            "6:12: [collector] interval: expected a number of seconds, found string",
            "7:19: [collector] push_interval: must be at least 0.01 seconds",
            "10:21: [backend] compression_level: must be at most 10",
        ]
    );
}

#[test]
fn toml_syntax_error_has_a_position() {
    let e = parse("[collector]\ninterval = = 5\n").unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].col), (2, 12));
    assert!(e[0].message.starts_with("invalid TOML: "), "{}", e[0]);
    assert!(!e[0].message.contains('\n'));
    assert!(e[0].to_string().starts_with("t.toml:2:12: invalid TOML"));
}

#[test]
fn columns_count_characters() {
    // The `;` is the 10th character but the 11th byte.
    let e = one_error("[collector]\nid = \"é\" ; port = 1\n");
    assert!(e.starts_with("2:10: invalid TOML"), "{e}");
    let e = one_error("[collector]\nhostname = \"ééé\"\ninterval = 0\n");
    assert!(e.starts_with("3:12:"), "{e}");
}

#[test]
fn unknown_keys_and_sections_are_warnings_with_a_suggestion() {
    let w = warnings("foo = 1\n[collector]\nintervall = 5\n[pg_stat]\n[completely_else]\nx = 1\n");
    assert_eq!(
        w,
        [
            "t.toml:1:1: unknown top-level key `foo`, ignored",
            "t.toml:3:1: unknown key `intervall` in [collector], ignored; did you mean `interval`?",
            "t.toml:4:2: unknown section [pg_stat], ignored; did you mean `pg_stats`?",
            "t.toml:5:2: unknown section [completely_else], ignored",
        ]
    );
    let w = warnings("[postgres]\nxyz = 1\n");
    assert_eq!(w, ["t.toml:2:1: unknown key `xyz` in [postgres], ignored"]);
}

#[test]
fn cpp_compat_plugin_tables() {
    // Present without `enabled`: on, even for one that is off by default.
    let c = ok("[pg_locks]\ninterval = 30\n[pg_bloat]\n");
    assert!(c.plugin("pg_locks").unwrap().enabled);
    assert_eq!(
        c.plugin("pg_locks").unwrap().interval,
        Duration::from_secs(30)
    );
    assert!(c.plugin("pg_bloat").unwrap().enabled);
    // Absent: the built-in default.
    assert!(c.plugin("sysstat").unwrap().enabled);
    assert!(!c.plugin("pg_schema").unwrap().enabled);
    // Explicitly off.
    let c = ok("[sysstat]\nenabled = false\n");
    assert!(!c.plugin("sysstat").unwrap().enabled);
    // Inline tables and dotted keys work like sections.
    let c = ok("pg_cache = { enabled = true, interval = 7 }\npg_stats.max_tables = 9\n");
    assert!(c.plugin("pg_cache").unwrap().enabled);
    assert_eq!(
        c.plugin("pg_cache").unwrap().interval,
        Duration::from_secs(7)
    );
    assert_eq!(c.pg_stats.max_tables, 9);
}

#[test]
fn databases_forms() {
    let list = |v: &[&str]| Databases::List(v.iter().map(|s| s.to_string()).collect());
    let c = ok("[postgres]\ndatabases = \"postgres, app ,,x\"\n");
    assert_eq!(c.postgres.databases, list(&["postgres", "app", "x"]));
    let c = ok("[postgres]\ndatabases = [\"a\", \"b\", \"a\"]\n");
    assert_eq!(c.postgres.databases, list(&["a", "b"]));
    let c = ok("[postgres]\ndatabases = \"*\"\n");
    assert_eq!(c.postgres.databases, Databases::All);
    let c = ok("[postgres]\ndatabases = [\"*\"]\n");
    assert_eq!(c.postgres.databases, Databases::All);
    // `database` alone: monitors just it.
    let c = ok("[postgres]\ndatabase = \"app\"\n");
    assert_eq!(c.postgres.database, "app");
    assert_eq!(c.postgres.databases, list(&["app"]));
    // `""` is the default.
    let c = ok("[postgres]\ndatabase = \"app\"\ndatabases = \"\"\n");
    assert_eq!(c.postgres.databases, list(&["app"]));
    // Both given: independent.
    let c = ok("[postgres]\ndatabase = \"app\"\ndatabases = [\"x\"]\n");
    assert_eq!(c.postgres.databases, list(&["x"]));
}

#[test]
fn environment_fills_what_the_file_leaves_out() {
    let vars = env_of(&[
        ("PGHOST", "/run/postgresql"),
        ("PGPORT", "5433"),
        ("PGUSER", "mon"),
        ("PGPASSWORD", "s3cret-env"),
        ("PGDATABASE", "app"),
        ("PGSSLMODE", "require"),
    ]);
    let env = |k: &str| vars.get(k).cloned();
    let c = parse_str("t.toml", "", &env).unwrap().config;
    assert_eq!(c.postgres.host.as_deref(), Some("/run/postgresql"));
    assert_eq!(c.postgres.port, 5433);
    assert_eq!(c.postgres.user.as_deref(), Some("mon"));
    assert_eq!(c.postgres.password.as_deref(), Some("s3cret-env"));
    assert_eq!(c.postgres.database, "app");
    assert_eq!(c.postgres.databases, Databases::List(vec!["app".into()]));
    assert_eq!(c.postgres.sslmode, SslMode::Require);
    assert_eq!(defaults_with_env(&env), c);

    // The file wins, key by key; `""` in the file counts as set (the default, not the env).
    let text = "[postgres]\nhost = \"db1\"\nport = 6000\nuser = \"\"\ndatabase = \"x\"\nsslmode = \"disable\"\n";
    let c = parse_str("t.toml", text, &env).unwrap().config;
    assert_eq!(c.postgres.host.as_deref(), Some("db1"));
    assert_eq!(c.postgres.port, 6000);
    assert_eq!(c.postgres.user, None);
    assert_eq!(c.postgres.password.as_deref(), Some("s3cret-env"));
    assert_eq!(c.postgres.database, "x");
    assert_eq!(c.postgres.sslmode, SslMode::Disable);
}

#[test]
fn invalid_environment_is_an_error_naming_the_variable() {
    let vars = env_of(&[("PGPORT", "fivefour"), ("PGSSLMODE", "sure")]);
    let env = |k: &str| vars.get(k).cloned();
    let e = parse_str("t.toml", "[postgres]\nuser = \"a\"\n", &env).unwrap_err();
    let e: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("t.toml:1:1: environment variable PGPORT"),
        "{e:?}"
    );
    assert!(e[1].contains("environment variable PGSSLMODE"), "{e:?}");
    // Set in the file: the variable is not read.
    let text = "[postgres]\nport = 1\nsslmode = \"require\"\n";
    assert!(parse_str("t.toml", text, &env).is_ok());
    // defaults_with_env ignores invalid variables.
    assert_eq!(defaults_with_env(&env).postgres.port, 5432);
}

#[test]
fn fractional_seconds() {
    let c = ok(
        "[collector]\ninterval = 0.5\n[backend]\nretry_initial_secs = 0.2\n\
                [pg_connections]\nlong_transaction_secs = 0.01\n",
    );
    assert_eq!(c.collector.interval, Duration::from_millis(500));
    assert_eq!(c.backend.retry_initial, Duration::from_millis(200));
    assert_eq!(c.pg_connections.long_transaction, Duration::from_millis(10));
    assert_eq!(
        c.plugin("sysstat").unwrap().interval,
        Duration::from_millis(500)
    );
    let c = ok("[collector]\nconfig_pull_interval = 0\n");
    assert_eq!(c.collector.config_pull_interval, None);
    let c = ok("[collector]\nconfig_pull_interval = 0.0\n");
    assert_eq!(c.collector.config_pull_interval, None);
    let c = ok("[postgres]\nstatement_timeout_ms = 0\n");
    assert_eq!(c.postgres.statement_timeout, Duration::ZERO);
}

#[test]
fn empty_strings_are_defaults() {
    let text = "\
[collector]
id = \"\"
hostname = \"\"
[backend]
url = \"\"
[auth]
token_file = \"\"
registration_secret_file = \"\"
jwt_secret_file = \"\"
[tls]
ca_file = \"\"
cert_file = \"\"
key_file = \"\"
[postgres]
host = \"\"
user = \"\"
password = \"\"
password_file = \"\"
sslrootcert = \"\"
[logging]
format = \"\"
[pg_log]
path = \"\"
log_line_prefix = \"\"
log_timezone = \"\"
";
    assert_eq!(ok(text), Config::default());
    let c = ok("[collector]\nid = \"c-1\"\n[logging]\nformat = \"json\"\n");
    assert_eq!(c.collector.id.as_deref(), Some("c-1"));
    assert_eq!(c.logging.format, Some(LogFormat::Json));
}

#[test]
fn backend_url_rules() {
    for good in [
        "https://pganalytics.example.com",
        "https://pga.example.com:8443/base/",
        "HTTPS://[2001:db8::1]:443",
        "http://localhost:8080",
        "http://127.0.0.2",
        "http://[::1]:80",
    ] {
        let text = format!("[backend]\nurl = \"{good}\"\n");
        let l = parse(&text).unwrap_or_else(|e| panic!("{good}: {e:?}"));
        assert_eq!(
            l.config.backend.url.as_ref().map(BackendUrl::as_str),
            Some(good)
        );
        assert!(l.warnings.is_empty(), "{good}: {:?}", l.warnings);
    }
    for (bad, why) in [
        ("ftp://x", "must start with https:// or http://"),
        ("pganalytics.example.com", "must start with"),
        ("https://", "has no host"),
        ("https://:80", "has no host"),
        ("https://host:0", "invalid port"),
        ("https://host:99999", "invalid port"),
        ("https://host:", "invalid port"),
        ("https://user:pw@host", "user information"),
        ("https://host/?q=1", "query or fragment"),
        ("https://ho st", "spaces"),
        ("https://[::1", "unclosed"),
        ("https://[zz]", "IPv6"),
        ("https://h%t", "invalid host name"),
    ] {
        let e = one_error(&format!("[backend]\nurl = \"{bad}\"\n"));
        assert!(e.contains(why), "{bad}: {e}");
        assert!(e.starts_with("2:7: [backend] url: "), "{bad}: {e}");
        assert!(!e.contains("pw@"), "{e}");
    }
    let e = one_error("[backend]\nurl = \"http://pga.example.com\"\n");
    assert!(e.contains("allow_insecure_http"), "{e}");
    let w = warnings("[backend]\nurl = \"http://pga.example.com\"\nallow_insecure_http = true\n");
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("t.toml:2:7: [backend] url: plaintext http://"),
        "{w:?}"
    );
}

#[test]
fn cross_key_rules() {
    let w = warnings("[tls]\nverify = false\n");
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("t.toml:2:1: [tls] verify = false"),
        "{w:?}"
    );
    let e = one_error("[tls]\ncert_file = \"/c.pem\"\n");
    assert!(e.contains("needs `key_file`"), "{e}");
    let e = errors("[auth]\nmode = \"shared_secret\"\n");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e.iter().any(|e| e.contains("jwt_secret_file")));
    assert!(e.iter().any(|e| e.contains("[collector] id")));
    ok("[collector]\nid = \"c\"\n[auth]\nmode = \"shared_secret\"\njwt_secret_file = \"/k\"\n");
    let e = one_error("[backend]\nretry_initial_secs = 10\nretry_max_secs = 5\n");
    assert!(e.contains("must not exceed retry_max_secs"), "{e}");
}

/// A config that sets every key to something other than its default.
const EVERYTHING: &str = "\
[collector]
id = \"c-1\"
hostname = \"db \\\"one\\\"\"
interval = 0.25
push_interval = 12.5
config_pull_interval = 0
state_dir = \"/srv/pga\"
[backend]
url = \"http://pga.example.com:8080/x\"
compression = \"none\"
compression_level = 9
connect_timeout_secs = 1.5
request_timeout_secs = 2
retry_initial_secs = 0.1
retry_max_secs = 9
max_batch_bytes = 1000
buffer_bytes = 5000
allow_insecure_http = true
[auth]
mode = \"shared_secret\"
token_file = \"/t\"
registration_secret_file = \"/r\"
jwt_secret_file = \"/j\"
token_lifetime_secs = 60
[tls]
verify = false
ca_file = \"/ca\"
cert_file = \"/c\"
key_file = \"/k\"
[postgres]
host = \"db\"
port = 6432
user = \"mon\"
password = \"hunter2-file\"
password_file = \"/pw\"
database = \"app\"
databases = \"*\"
sslmode = \"verify-full\"
sslrootcert = \"/root\"
connect_timeout_secs = 3
statement_timeout_ms = 100
lock_timeout_ms = 0
max_connections = 2
application_name = \"\"
requirepeer = \"pgsrv\"
require_auth = \"scram-sha-256, none\"
channel_binding = \"require\"
[logging]
level = \"debug\"
format = \"text\"
[sysstat]
enabled = false
include_partitions = true
[disk_usage]
include_fstypes = [\"nfs4\", \"x\\ty\"]
[pg_stats]
max_tables = 1
max_indexes = 2
[pg_query_stats]
limit = 3
max_query_length = 4
[pg_log]
path = \"/var/log/pg\"
pattern = \"post*.csv\"
format = \"csvlog\"
log_line_prefix = \"%t \"
log_timezone = \"Europe/Berlin\"
min_level = \"debug\"
start_at = \"beginning\"
max_entries = 5
max_message_bytes = 6
[pg_connections]
long_transaction_secs = 0.000001
[pg_schema]
enabled = true
interval = 0.75
";

fn redacted(mut c: Config) -> Config {
    if c.postgres.password.is_some() {
        c.postgres.password = Some(REDACTED.to_string());
    }
    c
}

#[test]
fn render_round_trips() {
    // 0.000001 is below the minimum: use the smallest valid value for the round trip.
    let text = EVERYTHING.replace("0.000001", "0.010001");
    for text in [SAMPLE, "", text.as_str()] {
        let c = ok(text);
        let rendered = render(&c, &[]);
        let back =
            parse_str("r.toml", &rendered, &no_env).unwrap_or_else(|e| panic!("{rendered}\n{e:?}"));
        assert_eq!(back.config, redacted(c), "{rendered}");
    }
}

#[test]
fn render_marks_pulled_keys_and_lists_every_key() {
    let out = render(
        &Config::default(),
        &[("collector", "interval"), ("pg_log", "min_level")],
    );
    assert!(out.contains("\ninterval = 60  # pulled\n"), "{out}");
    assert!(out.contains("min_level = \"WARNING\"  # pulled\n"), "{out}");
    assert_eq!(out.matches("# pulled").count(), 2);
    // Every section and key of the sample file appears.
    let sample = toml_edit::Document::parse(SAMPLE).unwrap();
    let rendered = toml_edit::Document::parse(out.as_str()).unwrap();
    for (section, item) in sample.as_table().iter() {
        if item.is_array_of_tables() {
            // [[custom_query]]: the default has none (custom_queries_are_read_… renders them).
            continue;
        }
        let got = rendered.get(section).and_then(|i| i.as_table_like());
        let got = got.unwrap_or_else(|| panic!("[{section}] missing"));
        for (key, _) in item.as_table_like().unwrap().iter() {
            assert!(got.contains_key(key), "[{section}] {key} missing");
        }
    }
}

#[test]
fn secrets_never_appear() {
    let text = EVERYTHING.replace("0.000001", "0.5");
    let c = ok(&text);
    let out = render(&c, &[]);
    assert!(!out.contains("hunter2"), "{out}");
    assert!(out.contains("password = \"<redacted>\""));
    // Nor in diagnostics about the password.
    for text in [
        "[postgres]\npassword = \"hunter2\"\nport = 0\n[x]\n",
        "[postgres]\npassword = [\"hunter2\"]\n",
    ] {
        let e = parse(text).unwrap_err();
        for d in e {
            assert!(!d.to_string().contains("hunter2"), "{d}");
        }
    }
    let vars = env_of(&[("PGPASSWORD", "hunter2")]);
    let env = |k: &str| vars.get(k).cloned();
    let l = parse_str("t.toml", "[collector]\nidd = 1\n", &env).unwrap();
    assert!(!render(&l.config, &[]).contains("hunter2"));
    assert!(
        l.warnings
            .iter()
            .all(|w| !w.to_string().contains("hunter2"))
    );
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("pga-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn load_checks_named_files() {
    let dir = Scratch::new("files");
    let secret = dir.file("pw", "topsecret-in-file\n", 0o640);
    let open_secret = dir.file("jwt", "topsecret-in-file\n", 0o644);
    let ca = dir.file("ca.pem", "x", 0o644);
    let missing = dir.0.join("missing.key");
    let token = dir.file("token", "topsecret-in-file", 0o604);
    let text = format!(
        "[collector]\nid = \"c\"\n[auth]\nmode = \"shared_secret\"\njwt_secret_file = \"{}\"\n\
         token_file = \"{}\"\n[tls]\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n\
         [postgres]\npassword_file = \"{}\"\n",
        p(&open_secret),
        p(&token),
        p(&ca),
        p(&ca),
        p(&missing),
        p(&secret),
    );
    let config = dir.file("collector.toml", &text, 0o640);
    let Err(LoadError::Invalid(e)) = load(&config, &no_env) else {
        panic!("expected the missing key_file to be an error");
    };
    // Secrets others can read are refused (SECURITY.md, "Secrets at rest"), and so is a
    // shared secret shorter than 32 bytes; each error names the chmod or what to make.
    let file = p(&config);
    let all: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert_eq!(e.len(), 4, "{all:?}");
    let at = |line: usize, start: &str| {
        all.iter()
            .find(|s| s.starts_with(&format!("{file}:{line}:1: {start}")))
            .unwrap_or_else(|| panic!("no {line}:{start} in {all:?}"))
            .clone()
    };
    assert!(at(10, "[tls] key_file: cannot read").contains("missing.key"));
    let open = at(5, "[auth] jwt_secret_file: ");
    assert!(
        open.contains("readable by others")
            && open.contains(&format!("run chmod o-r {}", p(&open_secret))),
        "{open}"
    );
    let short = all
        .iter()
        .filter(|s| s.contains("holds 17 bytes; the shared secret needs at least 32"))
        .count();
    assert_eq!(short, 1, "{all:?}");
    assert!(at(6, "[auth] token_file: ").contains("readable by others"));
    for s in &all {
        assert!(!s.contains("topsecret"), "{s}");
    }

    // Group-readable is fine; 32 bytes are enough.
    let key = dir.file("client.key", "k", 0o600);
    let long = "topsecret-0123456789abcdef0123456789\n";
    let jwt = dir.file("jwt", long, 0o640);
    let token = dir.file("token", "topsecret-in-file", 0o640);
    let text = text.replace(&p(&missing), &p(&key));
    assert!(text.contains(&p(&jwt)) && text.contains(&p(&token)));
    let config = dir.file("collector.toml", &text, 0o640);
    let l = load(&config, &no_env).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);

    // token_file may not exist yet; a directory is not a readable file.
    let text = format!(
        "[auth]\ntoken_file = \"{}\"\n[postgres]\nsslrootcert = \"{}\"\n",
        p(&dir.0.join("later.token")),
        p(&dir.0)
    );
    let config = dir.file("collector.toml", &text, 0o600);
    let Err(LoadError::Invalid(e)) = load(&config, &no_env) else {
        panic!("expected the directory to be an error");
    };
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].message.contains("is a directory"), "{}", e[0]);
}

#[test]
fn load_warns_about_a_password_in_a_world_readable_file() {
    let dir = Scratch::new("password");
    let text = "[postgres]\nuser = \"mon\"\npassword = \"hunter2\"\n";
    let config = dir.file("collector.toml", text, 0o644);
    let l = load(&config, &no_env).unwrap();
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    let w = l.warnings[0].to_string();
    assert!(
        w.starts_with(&format!("{}:3:1: [postgres] password: ", p(&config))),
        "{w}"
    );
    assert!(!w.contains("hunter2"));
    // Group read is fine.
    let config = dir.file("collector.toml", text, 0o640);
    assert!(load(&config, &no_env).unwrap().warnings.is_empty());
    // From PGPASSWORD, not from the file: no warning.
    let config = dir.file("collector.toml", "", 0o644);
    let env = |k: &str| (k == "PGPASSWORD").then(|| "hunter2".to_string());
    assert!(load(&config, &env).unwrap().warnings.is_empty());
}

#[test]
fn load_read_error_names_the_path() {
    let dir = Scratch::new("read");
    let path = dir.0.join("nope.toml");
    let e = load(&path, &no_env).unwrap_err();
    assert!(matches!(e, LoadError::Read { .. }));
    let s = e.to_string();
    assert!(s.contains("nope.toml") && s.contains("-c FILE"), "{s}");
    assert!(!s.contains('\n'));
}

#[test]
fn load_invalid_lists_every_problem() {
    let dir = Scratch::new("invalid");
    let config = dir.file(
        "c.toml",
        "[postgres]\nport = 0\nmax_connections = 0\n",
        0o600,
    );
    let e = load(&config, &no_env).unwrap_err();
    let s = e.to_string();
    assert_eq!(s.lines().count(), 2, "{s}");
    assert!(s.lines().all(|l| l.starts_with(&p(&config))), "{s}");
}

#[test]
fn suggestion_distance() {
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(closest("intervall", ["interval", "id"]), Some("interval"));
    assert_eq!(closest("xyz", ["interval", "id"]), None);
    assert_eq!(closest("pg_stat", PLUGIN_NAMES), Some("pg_stats"));
}

/// Golden files under fixtures/config: rewrite them with `UPDATE_FIXTURES=1 cargo test`.
fn golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/config")
        .join(name);
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got,
        want,
        "{} differs; UPDATE_FIXTURES=1 rewrites it",
        path.display()
    );
}

#[test]
fn golden_effective_sample() {
    let c = ok(SAMPLE);
    golden(
        "sample.effective.toml",
        &render(&c, &[("collector", "interval")]),
    );
}

#[test]
fn golden_diagnostics() {
    let text = include_str!("../../../fixtures/config/errors.toml");
    let mut out = String::new();
    match parse_str("errors.toml", text, &no_env) {
        Ok(_) => panic!("errors.toml must not be valid"),
        Err(e) => e.iter().for_each(|d| out.push_str(&format!("{d}\n"))),
    }
    golden("errors.expected", &out);
}

#[test]
fn postgres_security_keys() {
    let c = ok("");
    assert_eq!(c.postgres.requirepeer, None);
    assert_eq!(c.postgres.require_auth, None);
    assert_eq!(c.postgres.channel_binding, ChannelBinding::Prefer);
    // "" turns the peer check off, which differs from unset; "" for require_auth is the default.
    let c = ok("[postgres]\nrequirepeer = \"\"\nrequire_auth = \"\"\n");
    assert_eq!(c.postgres.requirepeer.as_deref(), Some(""));
    assert_eq!(c.postgres.require_auth, None);
    let c = ok("[postgres]\nrequire_auth = \"md5,password, md5\"\nchannel_binding = \"disable\"\n");
    assert_eq!(
        c.postgres.require_auth,
        Some(vec![PgAuthMethod::Md5, PgAuthMethod::Password])
    );
    assert_eq!(c.postgres.channel_binding, ChannelBinding::Disable);
    assert_eq!(
        errors("[postgres]\nrequire_auth = \"scram-sha-256,!md5\"\nchannel_binding = \"on\"\n"),
        [
            "2:16: [postgres] require_auth: `!md5` is not an authentication method: list some of \
             password, md5, scram-sha-256, none (comma-separated)",
            "3:19: [postgres] channel_binding: unknown value `on`; expected one of disable, \
             prefer, require",
        ]
    );
    // Unset and "" render differently and read back the same.
    for text in ["", "[postgres]\nrequirepeer = \"\"\n"] {
        let c = ok(text);
        let back = ok(&render(&c, &[]));
        assert_eq!(back.postgres.requirepeer, c.postgres.requirepeer);
    }
}

#[test]
fn sslrootcert_system_makes_verify_full_the_default_and_refuses_a_weaker_mode() {
    let c = ok("[postgres]\nsslrootcert = \"system\"\n");
    assert_eq!(c.postgres.sslmode, SslMode::VerifyFull);
    assert_eq!(c.postgres.sslrootcert.as_deref(), Some(Path::new("system")));
    let c = ok("[postgres]\nsslrootcert = \"system\"\nsslmode = \"verify-full\"\n");
    assert_eq!(c.postgres.sslmode, SslMode::VerifyFull);
    for weak in ["disable", "allow", "prefer", "require", "verify-ca"] {
        let e = one_error(&format!(
            "[postgres]\nsslrootcert = \"system\"\nsslmode = \"{weak}\"\n"
        ));
        assert!(
            e.starts_with("3:")
                && e.contains("sslrootcert = \"system\" needs sslmode = \"verify-full\""),
            "{e}"
        );
    }
}

#[test]
fn custom_queries_are_read_with_defaults_and_render_back() {
    let text = "[collector]\ninterval = 30\n\
                [[custom_query]]\nname = \"a_1\"\nsql = \"select 1\"\n\
                [[custom_query]]\nname = \"b\"\nsql = \"select 2\"\ninterval = 5\n\
                databases = \"*\"\nmin_version = 130000\nmax_version = 170000\nmax_rows = 3\n\
                [[custom_query]]\nname = \"c\"\nsql = \"select 3\"\ndatabases = [\"x\", \"y\"]\n";
    let c = ok(text);
    let q = &c.custom_queries;
    assert_eq!(q.len(), 3);
    assert_eq!(
        (
            q[0].name.as_str(),
            q[0].interval,
            &q[0].databases,
            q[0].max_rows
        ),
        ("a_1", Duration::from_secs(30), &None, 1000)
    );
    assert_eq!(q[1].databases, Some(Databases::All));
    assert_eq!(
        (q[1].min_version, q[1].max_version, q[1].max_rows),
        (130000, 170000, 3)
    );
    assert_eq!(
        q[2].databases,
        Some(Databases::List(vec!["x".into(), "y".into()]))
    );
    assert_eq!(custom_query_lines(text), vec![5, 8, 16]);
    // check-config's rendering reads back to the same queries.
    assert_eq!(ok(&render(&c, &[])).custom_queries, c.custom_queries);
}

#[test]
fn custom_query_errors_point_at_the_key() {
    assert_eq!(
        one_error("[[custom_query]]\nname = \"Bad-Name\"\nsql = \"select 1\"\n"),
        "2:8: [custom_query] name: `Bad-Name` is not [a-z0-9_], 1 to 63 characters"
    );
    assert_eq!(
        one_error(
            "[[custom_query]]\nname = \"q\"\nsql = \"select 1\"\n\
             [[custom_query]]\nname = \"q\"\nsql = \"select 2\"\n"
        ),
        "5:8: [custom_query] name: `q` is the name of an earlier query"
    );
    assert_eq!(
        one_error("[[custom_query]]\nname = \"q\"\n"),
        "1:1: [[custom_query]]: needs `sql`"
    );
    assert_eq!(
        one_error("[[custom_query]]\nname = \"q\"\nsql = \" \"\n"),
        "3:7: [custom_query] sql: must not be empty"
    );
    assert_eq!(
        one_error("[[custom_query]]\nname = \"q\"\nsql = \"select 1\"\nmax_rows = 0\n"),
        "4:12: [custom_query] max_rows: must be at least 1"
    );
    assert_eq!(
        one_error(
            "[[custom_query]]\nname = \"q\"\nsql = \"select 1\"\nmin_version = 150000\nmax_version = 140000\n"
        ),
        "5:15: [custom_query] max_version: must not be below min_version (0 = no bound)"
    );
    assert_eq!(
        one_error("[custom_query]\nname = \"q\"\nsql = \"select 1\"\n"),
        "1:1: [custom_query]: expected an array of tables; write each query as [[custom_query]]"
    );
    assert_eq!(
        one_error("[[custom_query]]\nsql = \"select 1\"\n"),
        "1:1: [[custom_query]]: needs `name` ([a-z0-9_], 1 to 63 characters)"
    );
    let w = warnings("[[custom_query]]\nname = \"q\"\nsql = \"select 1\"\nmax_row = 1\n");
    assert!(
        w.iter()
            .any(|w| w.contains("`max_row`") && w.contains("max_rows")),
        "{w:?}"
    );
}
