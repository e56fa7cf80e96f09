//! The user documentation stays true to the code:
//! - every key of `packaging/collector.toml` has a row in `docs/configuration.md` under its
//!   section's heading, and every row there is a key of the sample;
//! - every field that `once` emits against real PostgreSQL servers (a primary with a
//!   streaming standby, slots, a blocked session, a long transaction, log entries), with
//!   every metric type on, has a row in `docs/metrics.md` under its type's heading.
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::pg::{Cluster, Options, SUPERPASS, SUPERUSER, eventually};
use support::tmp::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first cell of each table row of a markdown text, when it is one backticked name:
/// `` | `name` | … `` → `name`, grouped by the `## ` heading above it.
fn documented(markdown: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_heading: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut heading = String::new();
    for line in markdown.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            heading = h.trim().to_string();
            by_heading.entry(heading.clone()).or_default();
        } else if let Some(row) = line.strip_prefix("| `") {
            let name = row.split('`').next().unwrap();
            by_heading
                .entry(heading.clone())
                .or_default()
                .insert(name.to_string());
        }
    }
    by_heading
}

#[test]
fn every_key_of_the_sample_configuration_is_documented_and_nothing_else() {
    let sample = read("packaging/collector.toml");
    let doc = toml_edit::Document::parse(sample.as_str()).unwrap();
    let mut in_sample = BTreeSet::new();
    for (section, item) in doc.as_table().iter() {
        // `[[custom_query]]` (an array of tables) is documented under `## [[custom_query]]`.
        if let Some(tables) = item.as_array_of_tables() {
            for table in tables.iter() {
                for (key, _) in table.iter() {
                    in_sample.insert(format!("[[{section}]] {key}"));
                }
            }
            continue;
        }
        for (key, _) in item.as_table().expect("sections only").iter() {
            in_sample.insert(format!("[{section}] {key}"));
        }
    }
    let mut in_docs = BTreeSet::new();
    for (heading, keys) in documented(&read("docs/configuration.md")) {
        // Key sections are headed `[name]`; other headings hold no key rows.
        let Some(section) = heading.strip_prefix('[').and_then(|h| h.strip_suffix(']')) else {
            assert!(keys.is_empty(), "rows under `## {heading}`: {keys:?}");
            continue;
        };
        for key in keys {
            in_docs.insert(format!("[{section}] {key}"));
        }
    }
    let undocumented: Vec<_> = in_sample.difference(&in_docs).collect();
    let unknown: Vec<_> = in_docs.difference(&in_sample).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "keys of packaging/collector.toml missing from docs/configuration.md: {undocumented:?}; \
         documented keys that the sample lacks: {unknown:?}"
    );
}

/// The "pull" column of docs/configuration.md says what the code lets a backend set
/// (`config::pull::allowed`, security rule S5): "yes …" exactly for those keys.
#[test]
fn the_pull_column_is_what_a_backend_may_set() {
    let mut heading = String::new();
    let mut rows = 0;
    for line in read("docs/configuration.md").lines() {
        if let Some(h) = line.strip_prefix("## ") {
            heading = h.trim().to_string();
            continue;
        }
        let Some(section) = heading.strip_prefix('[').and_then(|h| h.strip_suffix(']')) else {
            continue;
        };
        let Some(row) = line.strip_prefix("| `") else {
            continue;
        };
        let key = row.split('`').next().unwrap();
        let pull = line
            .trim_end()
            .trim_end_matches('|')
            .rsplit('|')
            .next()
            .unwrap()
            .trim();
        let allowed = pganalytics_collector::config::pull::allowed(section, key);
        assert_eq!(
            pull.starts_with("yes"),
            allowed,
            "[{section}] {key}: the pull column says {pull:?}, the code {}",
            if allowed {
                "allows it"
            } else {
                "keeps it local"
            }
        );
        assert!(
            pull.starts_with("yes") || pull == "no",
            "[{section}] {key}: {pull:?}"
        );
        rows += 1;
    }
    assert!(rows > 50, "{rows} rows read");
}

/// Objects whose keys are data (plugin names, settings), not fields: their keys are
/// written `*` in the documentation.
const MAPS: &[(&str, &str)] = &[
    ("collector_health", "collect_ms"),
    ("collector_health", "errors"),
    ("pg_wait_events", "top_queries[].waits"),
    ("pg_custom", "rows[]"),
];

/// A custom query whose result has a column of every mapped kind (`pg_custom`).
const CUSTOM_QUERY: &str = "[[custom_query]]\nname = \"docs\"\n\
                            sql = \"select 1 as n, 'x'::text as t, now() as at\"\n";

/// Every field path of `v`: `a`, `a.b`, `list[].c`.
fn paths(ty: &str, v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            let is_map = MAPS.iter().any(|&(t, p)| t == ty && p == prefix);
            for (k, x) in map {
                let k = if is_map { "*" } else { k.as_str() };
                let path = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(path.clone());
                paths(ty, x, &path, out);
            }
        }
        Value::Array(items) => {
            for x in items {
                paths(ty, x, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn config(dir: &TempDir, c: &Cluster, extra: &str) -> PathBuf {
    let pw = dir.file("pw", &format!("{SUPERPASS}\n"));
    dir.file(
        &format!("collector-{}.toml", c.port),
        &format!(
            "[collector]\nstate_dir = \"{}\"\n[logging]\nformat = \"json\"\n\
             [postgres]\nhost = \"{}\"\nport = {}\nuser = \"{SUPERUSER}\"\npassword_file = \"{}\"\n\
             databases = [\"postgres\", \"app\"]\n\
             [pg_log]\npath = \"{}\"\nmin_level = \"LOG\"\n\
             [pg_connections]\nenabled = true\nlong_transaction_secs = 0.01\n\
             [pg_locks]\nenabled = true\n[pg_cache]\nenabled = true\n[pg_bloat]\nenabled = true\n\
             [pg_extensions]\nenabled = true\n[pg_schema]\nenabled = true\n\
             [pg_wait_events]\nenabled = true\nsample_ms = 100\n{extra}\n{CUSTOM_QUERY}",
            dir.path().display(),
            c.dir.display(),
            c.port,
            pw.display(),
            c.dir.join("server.log").display(),
        ),
    )
}

/// `once` with every type, `collector_health` included: the envelope.
fn once(cfg: &Path) -> Value {
    let mut cmd = Command::new(BIN);
    for v in [
        "PGANALYTICS_CONFIG",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
    ] {
        cmd.env_remove(v);
    }
    let out = cmd
        .args(["once", "--sample-ms", "100", "-c"])
        .arg(cfg)
        .args([
            "--only",
            "sysstat,disk_usage,pg_stats,pg_query_stats,pg_log,pg_replication,pg_server,\
             pg_connections,pg_locks,pg_cache,pg_bloat,pg_extensions,pg_schema,pg_wait_events,pg_custom,\
             collector_health",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"))
}

fn add_fields(v: &Value, fields: &mut BTreeMap<String, BTreeSet<String>>) {
    for m in v["metrics"].as_array().unwrap() {
        let ty = m["type"].as_str().unwrap().to_string();
        let mut set = BTreeSet::new();
        paths(&ty, m, "", &mut set);
        fields.entry(ty).or_default().extend(set);
    }
}

#[test]
fn every_field_once_emits_against_postgresql_is_documented() {
    let primary = Cluster::start(Options {
        hba: Some(
            "local all all scram-sha-256\nlocal replication all scram-sha-256\n\
             host all all 127.0.0.1/32 scram-sha-256\n"
                .to_string(),
        ),
        settings: vec![
            "wal_level=logical".to_string(),
            "max_wal_senders=5".to_string(),
            "max_replication_slots=5".to_string(),
        ],
        ..Options::default()
    });
    // The standby first: pg_basebackup's checkpoint is quick on a server with little to write.
    let standby = primary.standby("standby_slot");
    primary.psql("postgres", "create database app");
    for sql in [
        "create extension pg_stat_statements",
        "create table t (id int primary key, v text, w int check (w > 0))",
        "create index t_v on t (v)",
        "insert into t select g, 'value ' || g, null from generate_series(1, 5000) g",
        "delete from t where id % 2 = 0",
        "create table child (id int references t (id), n numeric(10, 2) default 1.5)",
        "analyze t",
        "select count(*) from t where v = 'value 1'",
    ] {
        primary.psql("app", sql);
    }
    primary.psql("postgres", "create extension pg_stat_statements");
    primary.psql(
        "postgres",
        "select pg_create_logical_replication_slot('logical_slot', 'test_decoding')",
    );
    // Log entries of several kinds: an error with a statement, a warning, a duration.
    let _ = primary.try_psql("app", "select * from no_such_table");
    primary.psql(
        "app",
        "do $$ begin raise warning 'docs test warning'; end $$",
    );
    primary.psql(
        "app",
        "set log_min_duration_statement = 0; select pg_sleep(0.01)",
    );
    // A blocked session and a long transaction (pg_locks, pg_connections).
    primary.psql("app", "create table acct (id int primary key, v int)");
    primary.psql("app", "insert into acct values (1, 0)");
    let mut holder = primary.session("app", "holder");
    holder.send("begin;");
    holder.send("update acct set v = 1 where id = 1;");
    let holding = eventually(Duration::from_secs(60), || {
        primary.psql(
            "postgres",
            "select count(*) from pg_stat_activity where application_name = 'holder' \
             and state = 'idle in transaction'",
        ) == "1"
    });
    assert!(holding, "the holder never held its lock");
    let mut waiter = primary.session("app", "waiter");
    waiter.send("update acct set v = 2 where id = 1;");
    let waiting = eventually(Duration::from_secs(60), || {
        primary.psql(
            "postgres",
            "select count(*) from pg_stat_activity where application_name = 'waiter' \
             and wait_event_type = 'Lock'",
        ) == "1"
    });
    assert!(waiting, "the waiter never waited");

    let dir = TempDir::shared("docs");
    let mut fields = BTreeMap::new();
    // The standby streams: its primary shows the sender, the standby its receiver.
    let streaming = eventually(Duration::from_secs(60), || {
        primary.psql(
            "postgres",
            "select count(*) from pg_stat_replication where state = 'streaming'",
        ) == "1"
    });
    assert!(streaming, "the standby never streamed");
    add_fields(&once(&config(&dir, &primary, "")), &mut fields);
    let standby_dir = TempDir::shared("docs-standby");
    add_fields(&once(&config(&standby_dir, &standby, "")), &mut fields);
    drop(waiter);
    drop(holder);

    let docs = documented(&read("docs/metrics.md"));
    let common = docs
        .get("Fields of every element")
        .expect("docs/metrics.md has `## Fields of every element`");
    let mut missing = Vec::new();
    for (ty, set) in &fields {
        let heading = format!("`{ty}`");
        let Some(rows) = docs.get(&heading) else {
            missing.push(format!("the section `## {heading}`"));
            continue;
        };
        for f in set {
            if !rows.contains(f) && !common.contains(f) {
                missing.push(format!("{ty}: {f}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "emitted but not in docs/metrics.md:\n{}",
        missing.join("\n")
    );
}
