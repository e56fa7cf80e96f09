//! `pg_custom` and `[[custom_query]]` against a real throw-away cluster, through the binary:
//! every type mapping of docs/metrics.md (binary results over the extended protocol),
//! `max_rows`, version bounds, `databases = "*"`, failures turned into the element's `error`
//! while the next query still runs (`once`), each query on its own schedule (`run --stdout`),
//! and `check-config` reporting refused SQL at the query's line.
mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::pg::{Cluster, Options, SUPERPASS, SUPERUSER};
use support::tmp::TempDir as Dir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");

/// A config for `c` over its Unix socket with `queries` appended (after every section).
fn config(dir: &Dir, name: &str, c: &Cluster, collector: &str, queries: &str) -> PathBuf {
    let pw = dir.0.join("pw");
    std::fs::write(&pw, format!("{SUPERPASS}\n")).unwrap();
    // Secret files others can read are refused (SECURITY.md).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.0.join(name);
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nstate_dir = \"{}\"\n{collector}\n[logging]\nformat = \"json\"\n\
             [postgres]\nhost = \"{}\"\nport = {}\nuser = \"{SUPERUSER}\"\npassword_file = \"{}\"\n\
             {queries}",
            dir.0.display(),
            c.dir.display(),
            c.port,
            pw.display()
        ),
    )
    .unwrap();
    cfg
}

fn cmd() -> Command {
    let mut c = Command::new(BIN);
    for v in [
        "PGANALYTICS_CONFIG",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
    ] {
        c.env_remove(v);
    }
    c
}

/// `once --only pg_custom,collector_health`: the elements of pg_custom and the health element.
fn once(cfg: &Path) -> (Vec<Value>, Value) {
    let out = cmd()
        .args([
            "once",
            "--sample-ms",
            "0",
            "--only",
            "pg_custom,collector_health",
            "-c",
        ])
        .arg(cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    let metrics = v["metrics"].as_array().unwrap();
    let health = metrics
        .iter()
        .find(|m| m["type"] == "collector_health")
        .unwrap()
        .clone();
    let custom = metrics
        .iter()
        .filter(|m| m["type"] == "pg_custom")
        .cloned()
        .collect();
    (custom, health)
}

fn find<'a>(elements: &'a [Value], name: &str, database: &str) -> Option<&'a Value> {
    elements
        .iter()
        .find(|e| e["name"] == name && e["database"] == database)
}

/// A TOML basic string of `s` (the SQL of these tests has quotes).
fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn query(name: &str, sql: &str, extra: &str) -> String {
    format!(
        "[[custom_query]]\nname = \"{name}\"\nsql = {}\n{extra}\n",
        toml_str(sql)
    )
}

#[test]
fn types_rows_versions_databases_and_failures() {
    let c = Cluster::start(Options {
        pg_stat_statements: false,
        ..Options::default()
    });
    c.psql("postgres", "create database app2");
    c.psql("postgres", "create table probe (x int)");
    let version = c.version_num();
    // Every mapping of docs/metrics.md, pg_custom (numeric infinities exist from 14 on).
    let mut types = "select 1::int2 as i2, -2::int4 as i4, 9223372036854775807::int8 as i8, \
        4294967295::oid as o, 0.1::float4 as f4, 0.42::float8 as f8, 'NaN'::float8 as f_nan, \
        'Infinity'::float8 as f_inf, '-Infinity'::float4 as f_ninf, \
        12.50::numeric as n_small, 123456789012345::numeric as n_15, \
        12345678901234567890.123::numeric as n_big, 0.0000000000000000001::numeric as n_tiny, \
        'NaN'::numeric as n_nan, true as b, false as b2, \
        '{\"a\": [1, 2.5, null]}'::jsonb as jb, '[1, \"x\"]'::json as j, \
        '2026-03-01 12:00:00.5+00'::timestamptz as tz, '2026-03-01 12:00:00'::timestamp as ts, \
        '2026-03-01'::date as d, 'infinity'::timestamptz as tz_inf, \
        '-infinity'::timestamp as ts_ninf, 'infinity'::date as d_inf, \
        'héllo'::text as t, 'v'::varchar(5) as v, 'nm'::name as nm, 'c'::char(3) as bp, \
        array[1, null, 3]::int4[] as a_int, array[['a', 'b'], ['c', 'd']]::text[] as a_text2, \
        array[1.5, 12345678901234567890]::numeric[] as a_num, '{}'::bool[] as a_empty, \
        array['2026-03-01']::date[] as a_date, null::int4 as nul, '(1,2)'::point as pt, \
        '10.0.0.1/32'::inet as ip, interval '1 day' as iv"
        .to_string();
    if version >= 140000 {
        types.push_str(", 'Infinity'::numeric as n_inf, '-Infinity'::numeric as n_ninf");
    }
    let queries = [
        query("types", &types, ""),
        query(
            "limited",
            "select g from generate_series(1, 10) g order by g",
            "max_rows = 3",
        ),
        query(
            "exact",
            "select g from generate_series(1, 4) g",
            "max_rows = 4",
        ),
        query("too_new", "select 1 as x", "min_version = 999999"),
        query("too_old", "select 1 as x", "max_version = 90600"),
        query(
            "in_range",
            "select current_setting('server_version_num')::int as v",
            &format!("min_version = {version}\nmax_version = {version}"),
        ),
        query(
            "everywhere",
            "select current_database() as db",
            "databases = \"*\"",
        ),
        query("listed", "select 1 as x", "databases = [\"app2\"]"),
        query("missing", "select * from no_such_table", ""),
        query("syntax", "selec 1", ""),
        query("several", "select 1; select 2", ""),
        query("params", "select $1::int as x", ""),
        query("write", "create table t (x int)", ""),
        query("set", "set statement_timeout = 0", ""),
        query(
            "read_only",
            "with w as (insert into probe values (1) returning x) select x from w",
            "",
        ),
        query("after", "select 'still runs' as msg", ""),
    ]
    .concat();
    let dir = Dir::new("pg-custom");
    let cfg = config(&dir, "collector.toml", &c, "", &queries);
    let (custom, health) = once(&cfg);

    let types = find(&custom, "types", "postgres").expect("types element");
    assert_eq!(types["error"], Value::Null, "{types}");
    assert_eq!(types["truncated"], false);
    let row = &types["rows"][0];
    let mut want = json!({
        "i2": 1, "i4": -2, "i8": 9223372036854775807i64, "o": 4294967295u32,
        "f4": 0.1, "f8": 0.42, "f_nan": "NaN", "f_inf": "Infinity", "f_ninf": "-Infinity",
        "n_small": 12.5, "n_15": 123456789012345i64,
        "n_big": "12345678901234567890.123", "n_tiny": 1e-19, "n_nan": "NaN",
        "b": true, "b2": false,
        "jb": {"a": [1, 2.5, null]}, "j": [1, "x"],
        "tz": "2026-03-01T12:00:00.500000Z", "ts": "2026-03-01T12:00:00",
        "d": "2026-03-01", "tz_inf": "infinity", "ts_ninf": "-infinity", "d_inf": "infinity",
        "t": "héllo", "v": "v", "nm": "nm", "bp": "c  ",
        "a_int": [1, null, 3], "a_text2": [["a", "b"], ["c", "d"]],
        "a_num": [1.5, "12345678901234567890"], "a_empty": [], "a_date": ["2026-03-01"],
        "nul": null, "pt": "(1,2)", "ip": "10.0.0.1", "iv": "1 day",
    });
    if version >= 140000 {
        want["n_inf"] = json!("Infinity");
        want["n_ninf"] = json!("-Infinity");
    }
    assert_eq!(row, &want);
    let column = |name: &str| {
        types["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("column {name}"))["type"]
            .clone()
    };
    for (name, ty) in [
        ("i8", "int8"),
        ("f4", "float4"),
        ("n_big", "numeric"),
        ("jb", "jsonb"),
        ("tz", "timestamptz"),
        ("a_int", "_int4"),
        ("a_text2", "_text"),
        ("pt", "point"),
        ("ip", "inet"),
        ("iv", "interval"),
    ] {
        assert_eq!(column(name), ty, "{name}");
    }
    // Columns keep the query's order.
    assert_eq!(types["columns"][0]["name"], "i2");
    assert_eq!(types["columns"][1]["name"], "i4");

    let limited = find(&custom, "limited", "postgres").unwrap();
    assert_eq!(limited["rows"], json!([{"g": 1}, {"g": 2}, {"g": 3}]));
    assert_eq!(limited["truncated"], true);
    let exact = find(&custom, "exact", "postgres").unwrap();
    assert_eq!(exact["rows"].as_array().unwrap().len(), 4);
    assert_eq!(
        exact["truncated"], false,
        "exactly max_rows rows is not cut"
    );

    // Version bounds: skipped silently outside, run inside.
    assert!(
        custom
            .iter()
            .all(|e| e["name"] != "too_new" && e["name"] != "too_old")
    );
    let in_range = find(&custom, "in_range", "postgres").unwrap();
    assert_eq!(in_range["rows"][0]["v"], version);

    // "*": every database that allows connections; a list: those.
    let mut everywhere: Vec<(&str, &str)> = custom
        .iter()
        .filter(|e| e["name"] == "everywhere")
        .map(|e| {
            (
                e["database"].as_str().unwrap(),
                e["rows"][0]["db"].as_str().unwrap(),
            )
        })
        .collect();
    everywhere.sort();
    assert_eq!(everywhere, [("app2", "app2"), ("postgres", "postgres")]);
    assert!(find(&custom, "listed", "app2").is_some());
    assert!(find(&custom, "listed", "postgres").is_none());

    // Failures: the element with no rows and the error; the queries after them still ran.
    for (name, code) in [
        ("missing", "42P01"),
        ("syntax", "42601"),
        ("several", "42601"),
        ("params", "42P02"),
        ("write", "0A000"),
        ("set", "0A000"),
        ("read_only", "25006"),
    ] {
        let e = find(&custom, name, "postgres").unwrap_or_else(|| panic!("{name} element"));
        let error = e["error"].as_str().unwrap_or_else(|| panic!("{name}: {e}"));
        assert!(error.contains(code), "{name}: {error}");
        assert!(error.contains("database postgres"), "{name}: {error}");
        assert_eq!(e["rows"], json!([]), "{name}");
        assert!(
            health["errors"]
                .get(format!("pg_custom/{name}/postgres"))
                .is_some()
        );
    }
    let after = find(&custom, "after", "postgres").unwrap();
    assert_eq!(after["rows"], json!([{"msg": "still runs"}]));
    assert_eq!(after["error"], Value::Null);
    // Nothing was written by the queries that tried (refused, or in a read-only session).
    assert_eq!(
        c.psql(
            "postgres",
            "select count(*) from pg_class where relname = 't'"
        ),
        "0"
    );
    assert_eq!(c.psql("postgres", "select count(*) from probe"), "0");
}

/// `run --stdout`: each query on its own interval, independent of `[collector] interval`.
#[test]
fn each_query_runs_on_its_own_schedule_in_run() {
    let c = Cluster::start(Options {
        pg_stat_statements: false,
        ..Options::default()
    });
    let queries = [
        query("fast", "select 1 as x", "interval = 0.3"),
        query("slow", "select 2 as x", "interval = 3600"),
        query("broken", "selec 1", "interval = 0.3"),
    ]
    .concat();
    let dir = Dir::new("pg-custom-run");
    let cfg = config(
        &dir,
        "collector.toml",
        &c,
        "interval = 3600\npush_interval = 0.3",
        &format!(
            "[sysstat]\nenabled = false\n[disk_usage]\nenabled = false\n[pg_stats]\nenabled = false\n\
             [pg_query_stats]\nenabled = false\n[pg_log]\nenabled = false\n\
             [pg_replication]\nenabled = false\n[pg_server]\nenabled = false\n{queries}"
        ),
    );
    let mut child = cmd()
        .args(["run", "--stdout", "-c"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let (mut fast, mut slow, mut broken) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fast < 4 && Instant::now() < deadline {
        let Ok(l) = lines.recv_timeout(Duration::from_secs(20)) else {
            break;
        };
        let v: Value = serde_json::from_str(&l).unwrap();
        for m in v["metrics"].as_array().unwrap() {
            match m["name"].as_str() {
                Some("fast") => fast += 1,
                Some("slow") => slow += 1,
                Some("broken") => {
                    assert!(m["error"].as_str().unwrap().contains("42601"), "{m}");
                    broken += 1;
                }
                _ => {}
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(fast >= 4, "fast ran {fast} times");
    assert_eq!(slow, 1, "the hourly query ran once at start");
    assert!(broken >= 2, "a failing query keeps its schedule: {broken}");
}

#[test]
fn check_config_reports_refused_sql_at_the_query_line() {
    let c = Cluster::start(Options {
        pg_stat_statements: false,
        ..Options::default()
    });
    let dir = Dir::new("pg-custom-check");
    let queries = [
        query("good", "select 1 as x", ""),
        query("bad_syntax", "selec 1", ""),
        query("two", "select 1; select 2", ""),
        query("missing_table", "select * from no_such_table", ""),
        query("bad_but_skipped", "selec 2", "min_version = 999999"),
    ]
    .concat();
    let cfg = config(&dir, "bad.toml", &c, "", &queries);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.starts_with("sql = ") && l.contains(needle))
            .unwrap()
            + 1
    };
    let out = cmd()
        .args(["check-config", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    let file = cfg.display().to_string();
    let errors: Vec<&str> = err.lines().filter(|l| !l.starts_with("warning:")).collect();
    assert_eq!(errors.len(), 2, "{err}");
    assert!(
        errors[0].starts_with(&format!(
            "{file}:{}:1: [[custom_query]] bad_syntax: server error 42601",
            line_of("selec 1")
        )),
        "{err}"
    );
    assert!(
        errors[1].starts_with(&format!(
            "{file}:{}:1: [[custom_query]] two: server error 42601",
            line_of("select 2")
        )),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: [[custom_query]] missing_table: server error 42P01")),
        "{err}"
    );
    // The effective config is still printed.
    assert!(String::from_utf8_lossy(&out.stdout).contains("[[custom_query]]\nname = \"good\""));

    // Only valid SQL: exit 0; an unreachable server: a warning, exit 0.
    let cfg = config(
        &dir,
        "good.toml",
        &c,
        "",
        &query("good", "select 1 as x", ""),
    );
    let out = cmd()
        .args(["check-config", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unreachable = dir.0.join("unreachable.toml");
    std::fs::write(
        &unreachable,
        text.replace(&format!("port = {}", c.port), "port = 1"),
    )
    .unwrap();
    let out = cmd()
        .args(["check-config", "-c"])
        .arg(&unreachable)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: [[custom_query]] bad_syntax: not checked:"),
        "{err}"
    );
}
