//! `pg_stats` and `pg_query_stats` against real throw-away clusters, through the binary
//! (`once` and `run --stdout`), compared with what psql reads from the same views.
mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::pg::{Cluster, Options, SUPERPASS, SUPERUSER};
use support::tmp::TempDir as Dir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");

/// A config for `cluster` over its Unix socket: `collector` and `postgres` go into those
/// sections, `extra` (more sections) is appended.
fn config(dir: &Dir, c: &Cluster, collector: &str, postgres_extra: &str, extra: &str) -> PathBuf {
    let pw = dir.0.join("pw");
    std::fs::write(&pw, format!("{SUPERPASS}\n")).unwrap();
    // Secret files others can read are refused (SECURITY.md).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.0.join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nstate_dir = \"{}\"\n{collector}\n[logging]\nformat = \"json\"\n\
             [postgres]\nhost = \"{}\"\nport = {}\nuser = \"{SUPERUSER}\"\npassword_file = \"{}\"\n\
             {postgres_extra}\n{extra}\n",
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

fn once(cfg: &Path, only: &str) -> (Value, String, bool) {
    let out = cmd()
        .args(["once", "--sample-ms", "0", "--only", only, "-c"])
        .arg(cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    (v, err, out.status.success())
}

fn elements<'a>(v: &'a Value, ty: &str) -> Vec<&'a Value> {
    v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == ty)
        .collect()
}

fn for_db<'a>(v: &'a Value, ty: &str, db: &str) -> Option<&'a Value> {
    elements(v, ty).into_iter().find(|m| m["database"] == db)
}

fn num(s: String) -> i64 {
    s.trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

#[test]
fn pg_stats_and_query_stats_match_psql() {
    let c = Cluster::start(Options::default());
    c.psql("postgres", "create database app");
    c.psql("app", "create extension pg_stat_statements");
    c.psql(
        "app",
        "create table t1 (id int primary key, v text); create index t1_v on t1 (v); \
         create table t2 (x int); \
         insert into t1 select g, 'v' || g from generate_series(1, 1000) g; \
         delete from t1 where id > 901; insert into t2 values (1); analyze t1",
    );
    // A few MB more than `postgres`, so that its size cannot pass for app's.
    c.psql(
        "app",
        "create table t3 as select g, repeat('x', 200) as pad from generate_series(1, 20000) g",
    );
    for _ in 0..3 {
        c.psql("app", "select count(*) from t1");
    }
    for i in 0..5 {
        c.psql("app", &format!("select * from t1 where id = {i}"));
    }
    // The same statement run by a second role: its own row, with its own `user`.
    c.psql("app", "create role other; grant select on t1 to other");
    c.psql(
        "app",
        "set role other; select count(*) from t1; select count(*) from t1",
    );
    let dir = Dir::shared("match");
    let cfg = config(
        &dir,
        &c,
        "",
        "databases = [\"app\", \"postgres\", \"nosuchdb\"]",
        "",
    );
    let (v, err, ok) = once(&cfg, "pg_stats,pg_query_stats,collector_health");
    assert!(ok, "{err}");

    // pg_stats of app, against psql.
    let s = for_db(&v, "pg_stats", "app").unwrap_or_else(|| panic!("{v}\n{err}"));
    let db_size = num(c.psql("app", "select pg_database_size('app')"));
    let other_size = num(c.psql("app", "select pg_database_size('postgres')"));
    assert!(
        (db_size - other_size).abs() > 1 << 20,
        "the test's databases differ"
    );
    let size = s["size_bytes"].as_i64().unwrap();
    // Within 64 KiB (8 pages: statistics and hint bits written since) of psql's figure.
    assert!((size - db_size).abs() < 64 << 10, "{size} vs {db_size}");
    let postgres = for_db(&v, "pg_stats", "postgres").unwrap();
    // Read after app over lists reused from it: nothing of app's is left in them.
    assert_eq!(postgres["tables"], serde_json::json!([]), "{postgres}");
    assert_eq!(postgres["indexes"], serde_json::json!([]), "{postgres}");
    let other = postgres["size_bytes"].as_i64().unwrap();
    assert!(
        (other - other_size).abs() < 64 << 10,
        "{other} vs {other_size}"
    );
    assert!(s["numbackends"].as_i64().unwrap() >= 1);
    assert!(s["cache_hit_ratio"].as_f64().unwrap() > 0.0);
    for k in [
        "transactions_committed",
        "blocks_hit",
        "tuples_returned",
        "deadlocks",
    ] {
        assert!(s[k].is_i64(), "{k}: {s}");
    }
    let tables = s["tables"].as_array().unwrap();
    assert_eq!(tables[0]["name"], "t3", "largest first: {tables:?}");
    assert_eq!(tables[1]["name"], "t1", "largest first: {tables:?}");
    let t1 = &tables[1];
    let q = |col: &str| {
        num(c.psql(
            "app",
            &format!("select {col} from pg_stat_user_tables where relname = 't1'"),
        ))
    };
    assert_eq!(t1["live_tuples"].as_i64().unwrap(), q("n_live_tup"));
    assert_eq!(t1["dead_tuples"].as_i64().unwrap(), q("n_dead_tup"));
    assert_eq!(t1["seq_scan"].as_i64().unwrap(), q("seq_scan"));
    assert_eq!(t1["idx_scan"].as_i64().unwrap(), q("idx_scan"));
    assert_eq!(t1["n_tup_ins"].as_i64().unwrap(), 1000);
    assert_eq!(
        t1["size_bytes"].as_i64().unwrap(),
        num(c.psql("app", "select pg_total_relation_size('t1')"))
    );
    assert_eq!(t1["analyze_count"], 1);
    let analyzed = t1["last_analyze"].as_str().unwrap();
    assert!(
        analyzed.ends_with('Z') && analyzed.len() >= 20,
        "{analyzed}"
    );
    assert_eq!(
        &analyzed[..19],
        c.psql(
            "app",
            "select to_char(last_analyze at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') from pg_stat_user_tables where relname = 't1'"
        )
    );
    assert!(t1["last_vacuum"].is_null());
    let idx = s["indexes"].as_array().unwrap();
    let pkey = idx.iter().find(|i| i["name"] == "t1_pkey").unwrap();
    assert_eq!(pkey["table"], "t1");
    assert_eq!(pkey["status"], "USED");
    assert_eq!(
        pkey["scans"].as_i64().unwrap(),
        num(c.psql(
            "app",
            "select idx_scan from pg_stat_user_indexes where indexrelname = 't1_pkey'"
        ))
    );
    let tv = idx.iter().find(|i| i["name"] == "t1_v").unwrap();
    assert_eq!(tv["status"], "UNUSED");
    assert_eq!(
        tv["size_bytes"].as_i64().unwrap(),
        num(c.psql("app", "select pg_relation_size('t1_v')"))
    );

    // pg_query_stats of app: each statement this test ran, every field equal to psql's row
    // for the same queryid (nothing runs them again in between, so the row is unchanged).
    let qs = for_db(&v, "pg_query_stats", "app").unwrap();
    assert!(qs.get("error").is_none(), "{qs}");
    let version = c.version_num();
    let (exec, plan) = if version >= 130000 {
        ("_exec_time", "total_plan_time")
    } else {
        ("_time", "null::float8")
    };
    let (blk_read, blk_write) = if version >= 170000 {
        ("shared_blk_read_time", "shared_blk_write_time")
    } else {
        ("blk_read_time", "blk_write_time")
    };
    let wal = |col: &str| {
        if version >= 130000 {
            col.to_string()
        } else {
            "null::bigint".to_string()
        }
    };
    let checked = [
        ("select count(*) from t1", "count", "text"),
        ("select * from t1 where id = $1", "by id", "text"),
        ("insert into t1 select g, %", "insert", "prefix"),
        ("delete from t1 where id > $1", "delete", "text"),
    ];
    let queries = qs["queries"].as_array().unwrap();
    for (text, what, how) in checked {
        let filter = if how == "prefix" {
            format!("query like '{text}'")
        } else {
            format!("query = '{}'", text.replace('\'', "''"))
        };
        let row = c.psql(
            "app",
            &format!(
                "select json_build_object(\
                 'hash', queryid, 'user', (select rolname from pg_roles where oid = userid), \
                 'text', query, 'calls', calls, \
                 'total_time', total{exec}, 'mean_time', mean{exec}, 'min_time', min{exec}, \
                 'max_time', max{exec}, 'stddev_time', stddev{exec}, 'rows', rows, \
                 'shared_blks_hit', shared_blks_hit, 'shared_blks_read', shared_blks_read, \
                 'shared_blks_dirtied', shared_blks_dirtied, \
                 'shared_blks_written', shared_blks_written, 'local_blks_hit', local_blks_hit, \
                 'local_blks_read', local_blks_read, 'local_blks_dirtied', local_blks_dirtied, \
                 'local_blks_written', local_blks_written, 'temp_blks_read', temp_blks_read, \
                 'temp_blks_written', temp_blks_written, 'blk_read_time', {blk_read}, \
                 'blk_write_time', {blk_write}, 'wal_records', {}, 'wal_fpi', {}, \
                 'wal_bytes', {}, 'query_plan_time', {plan}, 'query_exec_time', total{exec}) \
                 from pg_stat_statements \
                 where dbid = (select oid from pg_database where datname = 'app') \
                 and userid = (select oid from pg_roles where rolname = current_user) and {filter}",
                wal("wal_records"),
                wal("wal_fpi"),
                wal("wal_bytes")
            ),
        );
        let want: Value =
            serde_json::from_str(&row).unwrap_or_else(|e| panic!("{what}: {e}: {row}"));
        let id = want["hash"].as_i64().unwrap();
        assert_eq!(want["user"], "test", "{what}: {row}");
        let got = queries
            .iter()
            .find(|q| q["hash"].as_i64() == Some(id) && q["user"] == "test")
            .unwrap_or_else(|| panic!("{what}: {id} not in {qs}"));
        let mut want_keys: Vec<&String> = want.as_object().unwrap().keys().collect();
        want_keys.sort();
        let mut got_keys: Vec<&String> = got.as_object().unwrap().keys().collect();
        got_keys.sort();
        assert_eq!(
            got_keys, want_keys,
            "{what}: the fields docs/metrics.md lists"
        );
        for (k, w) in want.as_object().unwrap() {
            let g = &got[k];
            match w {
                Value::Null => assert!(g.is_null(), "{what}: {k} = {g}, psql: null"),
                Value::String(_) => assert_eq!(g, w, "{what}: {k}"),
                Value::Number(_) if k.ends_with("_time") => assert_eq!(
                    g.as_f64(),
                    w.as_f64(),
                    "{what}: {k} = {g}, psql: {w} ({got})"
                ),
                Value::Number(_) => {
                    assert!(g.is_i64(), "{what}: {k} = {g} is not an integer");
                    assert_eq!(
                        g.as_i64(),
                        w.as_i64(),
                        "{what}: {k} = {g}, psql: {w} ({got})"
                    );
                }
                _ => panic!("{what}: {k} = {w}?"),
            }
        }
        // The figures are not all zeros (a swap of two zero columns would go unseen).
        if what == "insert" {
            assert_eq!(got["rows"], 1000, "{got}");
            assert!(got["shared_blks_dirtied"].as_i64().unwrap() > 0, "{got}");
            if version >= 130000 {
                assert!(got["wal_records"].as_i64().unwrap() > 0, "{got}");
            }
        }
        if what == "by id" {
            assert_eq!(got["calls"], 5, "{got}");
            assert_eq!(got["rows"], 4, "ids 1 to 4 exist: {got}");
            assert!(
                got["total_time"].as_f64() > got["max_time"].as_f64(),
                "{got}"
            );
        }
    }

    // One statement, two roles: two rows with the same hash, not summed.
    let count_rows: Vec<&Value> = queries
        .iter()
        .filter(|q| q["text"] == "select count(*) from t1")
        .collect();
    let mut by_user: Vec<(String, i64)> = count_rows
        .iter()
        .map(|q| {
            (
                q["user"].as_str().unwrap().to_string(),
                q["calls"].as_i64().unwrap(),
            )
        })
        .collect();
    by_user.sort();
    assert_eq!(
        by_user,
        [("other".to_string(), 2), ("test".to_string(), 3)],
        "{count_rows:?}"
    );
    assert_eq!(count_rows[0]["hash"], count_rows[1]["hash"]);

    // postgres: no extension there → empty list + error.
    let qp = for_db(&v, "pg_query_stats", "postgres").unwrap();
    assert_eq!(qp["queries"], serde_json::json!([]));
    assert!(
        qp["error"].as_str().unwrap().contains("not installed"),
        "{qp}"
    );
    assert!(for_db(&v, "pg_stats", "postgres").is_some());

    // nosuchdb: an error for it alone, naming host, user and database.
    assert!(for_db(&v, "pg_stats", "nosuchdb").is_none());
    let health = &elements(&v, "collector_health")[0];
    let e = health["errors"]["pg_stats/nosuchdb"]
        .as_str()
        .unwrap_or_else(|| panic!("{health}"));
    assert!(
        e.contains("user test")
            && e.contains("database nosuchdb")
            && e.contains(&c.port.to_string()),
        "{e}"
    );
    assert!(health["errors"].get("pg_stats/app").is_none(), "{health}");
}

/// A `run --stdout` child; its stdout lines arrive through a channel.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    fn start(cfg: &Path) -> Daemon {
        let mut child = cmd()
            .args(["run", "--stdout", "-c"])
            .arg(cfg)
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
        Daemon { child, lines }
    }

    fn next(&self) -> Value {
        let l = self
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("an envelope");
        serde_json::from_str(&l).unwrap()
    }

    /// Envelopes until `f` holds for one (within 20 s).
    fn until(&self, what: &str, mut f: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let v = self.next();
            if f(&v) {
                return v;
            }
        }
        panic!("no envelope with {what}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dbs(v: &Value, ty: &str) -> Vec<String> {
    let mut d: Vec<String> = elements(v, ty)
        .iter()
        .map(|m| m["database"].as_str().unwrap().to_string())
        .collect();
    d.sort();
    d.dedup();
    d
}

/// Collections and pushes every 0.3 s.
const FAST: &str = "interval = 0.3\npush_interval = 0.3";

#[test]
fn star_follows_databases_within_max_connections() {
    let c = Cluster::start(Options::default());
    c.psql("postgres", "create database a");
    c.psql("postgres", "create database b");
    let dir = Dir::shared("star");
    let cfg = config(
        &dir,
        &c,
        FAST,
        "databases = \"*\"\nmax_connections = 1",
        "[disk_usage]\nenabled = false\n",
    );
    let d = Daemon::start(&cfg);
    let v = d.until("a, b and postgres", |v| {
        dbs(v, "pg_stats") == ["a", "b", "postgres"]
    });
    assert!(
        v["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "sysstat")
    );
    let sessions = || {
        num(c.psql(
            "postgres",
            "select count(*) from pg_stat_activity where application_name = 'pganalytics-collector'",
        ))
    };
    for _ in 0..10 {
        assert!(sessions() <= 1, "max_connections = 1");
        std::thread::sleep(Duration::from_millis(30));
    }
    c.psql("postgres", "create database c");
    d.until("c", |v| dbs(v, "pg_stats").contains(&"c".to_string()));
    // Dropping needs the collector's session on c gone: retry while it is in use.
    assert!(support::pg::eventually(Duration::from_secs(10), || {
        // WITH (FORCE) is PG 13+: end the collector's session first, which works on 12 too.
        let _ = c.try_psql(
            "postgres",
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = 'c'",
        );
        c.try_psql("postgres", "drop database c").is_ok()
    }));
    d.until("c forgotten", |v| {
        let names = dbs(v, "pg_stats");
        !names.is_empty() && !names.contains(&"c".to_string())
    });
    assert!(sessions() <= 1);
}

#[test]
fn restart_reports_then_recovers_and_stop_leaves_sysstat() {
    let c = Cluster::start(Options::default());
    let dir = Dir::shared("restart");
    let cfg = config(&dir, &c, FAST, "", "[disk_usage]\nenabled = false\n");
    let d = Daemon::start(&cfg);
    d.until("pg_stats", |v| !elements(v, "pg_stats").is_empty());
    c.restart();
    let failed = d.until("an error after the restart", |v| {
        let h = elements(v, "collector_health");
        h.iter().any(|h| {
            h["errors"]
                .as_object()
                .is_some_and(|e| e.keys().any(|k| k.starts_with("pg_stats")))
        })
    });
    let errors = elements(&failed, "collector_health")[0]["errors"].to_string();
    assert!(
        errors.contains("database postgres") && errors.contains("user test"),
        "{errors}"
    );
    d.until("recovery", |v| !elements(v, "pg_stats").is_empty());

    c.stop();
    let v = d.until("a clear error with the server stopped", |v| {
        elements(v, "pg_stats").is_empty()
            && elements(v, "collector_health").iter().any(|h| {
                h["errors"].as_object().is_some_and(|e| {
                    e.iter().any(|(k, m)| {
                        k == "pg_stats/postgres"
                            && m.as_str().unwrap_or("").contains("database postgres")
                    })
                })
            })
    });
    assert!(
        !elements(&v, "sysstat").is_empty(),
        "sysstat unaffected: {v}"
    );
}

#[test]
fn extension_not_preloaded_gives_an_empty_list_with_the_reason() {
    let c = Cluster::start(Options {
        pg_stat_statements: false,
        ..Options::default()
    });
    c.psql("postgres", "create extension pg_stat_statements");
    let dir = Dir::shared("nopreload");
    let cfg = config(&dir, &c, "", "", "");
    let (v, err, ok) = once(&cfg, "pg_query_stats");
    assert!(ok, "the element is still sent: {err}");
    let q = for_db(&v, "pg_query_stats", "postgres").unwrap();
    assert_eq!(q["queries"], serde_json::json!([]));
    let why = q["error"].as_str().unwrap();
    assert!(why.contains("shared_preload_libraries"), "{why}");
    assert!(err.contains("shared_preload_libraries"), "logged: {err}");
}

/// `statement_timeout_ms = 0`: no server-side limit, and the client waits as long as the
/// plugin's interval. A `pg_stats` query held behind an ACCESS EXCLUSIVE lock for 3 s (the
/// server holds it: `pg_sleep` inside the locking transaction) still completes; before, a
/// hidden 1 s client deadline dropped the connection and the database was reported failed.
#[test]
fn zero_statement_timeout_waits_the_interval_not_one_second() {
    // Trust: a SCRAM exchange in a debug build takes a good part of a second, which would
    // come off the time the query waits behind the lock.
    let c = Cluster::start(Options {
        hba: Some("local all all trust\nhost all all 127.0.0.1/32 trust\n".into()),
        ..Options::default()
    });
    c.psql("postgres", "create database app");
    c.psql("app", "create table t (id int)");
    let dir = Dir::shared("nolimit");
    let cfg = config(
        &dir,
        &c,
        "",
        "databases = [\"app\"]\nstatement_timeout_ms = 0\nlock_timeout_ms = 0",
        "[pg_stats]\ninterval = 30\n",
    );
    let mut holder = c.session("app", "holder");
    holder.send("begin; lock table t in access exclusive mode; select pg_sleep(3); commit;");
    assert!(
        support::pg::eventually(Duration::from_secs(20), || c.psql(
            "postgres",
            "select count(*) from pg_stat_activity where application_name = 'holder' \
             and wait_event = 'PgSleep'"
        ) == "1"),
        "the holder never held its lock"
    );
    let (v, err, ok) = once(&cfg, "pg_stats,collector_health");
    assert!(ok, "{err}");
    let health = &elements(&v, "collector_health")[0];
    assert!(health["errors"].as_object().unwrap().is_empty(), "{health}");
    let s = for_db(&v, "pg_stats", "app").unwrap_or_else(|| panic!("{v}\n{err}"));
    assert!(
        s["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "t"),
        "{s}"
    );
    // The scenario really held the query past the old 1 s bound.
    let took = health["collect_ms"]["pg_stats"].as_f64().unwrap();
    assert!(
        took > 1000.0,
        "pg_stats took {took} ms: the lock did not hold it"
    );
    drop(holder);
}

/// A database whose `pg_stats` element would pass the element size rule (`max_batch_bytes /
/// 4`) is split into parts, never dropped: every table and index of psql's list arrives once,
/// each part within the rule, each with the database counters and `part` / `parts`.
#[test]
fn pg_stats_split_into_parts_under_a_small_max_batch_bytes() {
    let c = Cluster::start(Options::default());
    c.psql("postgres", "create database app");
    c.psql(
        "app",
        "do $$ begin for i in 1..60 loop \
         execute format('create table t%s (id int primary key)', i); end loop; end $$",
    );
    let dir = Dir::shared("parts");
    let max_batch = 16384;
    let cfg = config(
        &dir,
        &c,
        "",
        "databases = [\"app\"]",
        &format!("[backend]\nmax_batch_bytes = {max_batch}\n"),
    );
    let (v, err, ok) = once(&cfg, "pg_stats,collector_health");
    assert!(ok, "{err}");
    let parts = elements(&v, "pg_stats");
    assert!(parts.len() > 2, "{} parts", parts.len());
    let mut tables = Vec::new();
    let mut indexes = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        assert!(
            serde_json::to_vec(p).unwrap().len() <= max_batch / 4,
            "part {i} over the element size"
        );
        assert_eq!(p["part"], i + 1, "{p}");
        assert_eq!(p["parts"], parts.len(), "{p}");
        assert!(p["numbackends"].as_i64().unwrap() >= 1, "{p}");
        assert!(p["size_bytes"].is_i64(), "{p}");
        for t in p["tables"].as_array().unwrap() {
            tables.push(t["name"].as_str().unwrap().to_string());
        }
        for x in p["indexes"].as_array().unwrap() {
            indexes.push(x["name"].as_str().unwrap().to_string());
        }
    }
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let psql_list =
        |sql: &str| -> Vec<String> { c.psql("app", sql).lines().map(str::to_string).collect() };
    assert_eq!(
        sorted(tables),
        psql_list("select relname from pg_stat_user_tables order by relname")
    );
    assert_eq!(
        sorted(indexes),
        psql_list("select indexrelname from pg_stat_user_indexes order by indexrelname")
    );
    let health = &elements(&v, "collector_health")[0];
    assert_eq!(health["metrics_dropped"], 0, "{health}");
}
