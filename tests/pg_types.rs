//! The PostgreSQL types of docs/metrics.md, `pg_replication` … `pg_schema` against real throw-away clusters, through the binary
//! (`once`): every type on the server of `PG_BIN` (scripts/pg-matrix.sh runs this file on
//! PostgreSQL 12 to 18) with no SQL error and every documented field, the version-dependent
//! ones present exactly where the version has them; a primary with a streaming standby and
//! physical and logical slots; blocking locks and long transactions held by two sessions.
mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::pg::{Cluster, Options, SUPERPASS, SUPERUSER, eventually};
use support::tmp::TempDir as Dir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");
/// How long a condition may take on a loaded machine.
const WITHIN: Duration = Duration::from_secs(60);
const ALL: &str = "pg_replication,pg_server,pg_connections,pg_locks,pg_cache,pg_bloat,\
                   pg_extensions,pg_schema,collector_health";

/// A config for `c` over its Unix socket, with `extra` appended (more sections).
fn config(dir: &Dir, c: &Cluster, postgres_extra: &str, extra: &str) -> PathBuf {
    let pw = dir.0.join("pw");
    std::fs::write(&pw, format!("{SUPERPASS}\n")).unwrap();
    // Secret files others can read are refused (SECURITY.md).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.0.join(format!("collector-{}.toml", c.port));
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nstate_dir = \"{}\"\n[logging]\nformat = \"json\"\n\
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

/// `once --only types`: the envelope; fails the test on a collection error.
fn once(cfg: &Path, only: &str) -> Value {
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
        .args(["once", "--sample-ms", "0", "--only", only, "-c"])
        .arg(cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    let health = elements(&v, "collector_health");
    if let Some(h) = health.first() {
        assert!(
            h["errors"].as_object().is_none_or(|e| e.is_empty()),
            "collection errors: {}\n{err}",
            h["errors"]
        );
    }
    assert!(out.status.success(), "{err}");
    v
}

/// The types that are off by default, turned on.
const ENABLE_ALL: &str = "[pg_connections]\nenabled = true\n[pg_locks]\nenabled = true\n\
                          [pg_cache]\nenabled = true\n[pg_bloat]\nenabled = true\n\
                          [pg_extensions]\nenabled = true\n[pg_schema]\nenabled = true\n";

fn elements<'a>(v: &'a Value, ty: &str) -> Vec<&'a Value> {
    v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == ty)
        .collect()
}

fn one<'a>(v: &'a Value, ty: &str) -> &'a Value {
    let e = elements(v, ty);
    assert_eq!(e.len(), 1, "one {ty} element: {v}");
    e[0]
}

fn for_db<'a>(v: &'a Value, ty: &str, db: &str) -> Vec<&'a Value> {
    elements(v, ty)
        .into_iter()
        .filter(|m| m["database"] == db)
        .collect()
}

/// Every key of `keys` is in `obj` (present, maybe `null`).
fn has_keys(obj: &Value, keys: &[&str], what: &str) {
    for k in keys {
        assert!(obj.get(*k).is_some(), "{what}: `{k}` missing in {obj}");
    }
}

/// `value` is non-null exactly when `version` >= `since`.
fn since(obj: &Value, key: &str, version: u32, since: u32) {
    let v = obj
        .get(key)
        .unwrap_or_else(|| panic!("`{key}` missing in {obj}"));
    assert_eq!(
        !v.is_null(),
        version >= since,
        "`{key}` on server {version} (present from {since}): {obj}"
    );
}

/// "X/Y" → the WAL position as a number.
fn lsn(v: &Value) -> u64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not an LSN: {v}"));
    let (hi, lo) = s.split_once('/').unwrap();
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
}

fn slot<'a>(repl: &'a Value, name: &str) -> &'a Value {
    repl["replication_slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot_name"] == name)
        .unwrap_or_else(|| panic!("slot {name} missing: {repl}"))
}

const SLOT_KEYS: &[&str] = &[
    "slot_name",
    "slot_type",
    "database",
    "active",
    "backend_pid",
    "restart_lsn",
    "confirmed_flush_lsn",
    "bytes_retained",
    "wal_status",
];
const SENDER_KEYS: &[&str] = &[
    "server_pid",
    "usename",
    "application_name",
    "client_addr",
    "backend_start",
    "state",
    "sync_state",
    "sent_lsn",
    "write_lsn",
    "flush_lsn",
    "replay_lsn",
    "write_lag_ms",
    "flush_lag_ms",
    "replay_lag_ms",
    "behind_by_mb",
];

/// Replication lines for local connections (pg_basebackup and the standby's walreceiver).
fn replication_hba() -> String {
    "local all all scram-sha-256\nlocal replication all scram-sha-256\n\
     host all all 127.0.0.1/32 scram-sha-256\n"
        .to_string()
}

fn logical_options() -> Options {
    Options {
        hba: Some(replication_hba()),
        settings: vec![
            "wal_level=logical".to_string(),
            "max_wal_senders=5".to_string(),
            "max_replication_slots=5".to_string(),
        ],
        ..Options::default()
    }
}

#[test]
fn every_type_on_this_server_with_every_field() {
    let c = Cluster::start(logical_options());
    let version = c.version_num();
    c.psql("postgres", "create database app");
    for sql in [
        "create extension pg_stat_statements",
        "create table t (id int primary key, v text, w int check (w > 0))",
        "comment on table t is 'the test table'",
        "create index t_v_hash on t using hash (v)",
        "create index t_lower on t (lower(v))",
        "create index t_brin on t using brin (id)",
        "insert into t select g, 'value ' || g, null from generate_series(1, 20000) g",
        "delete from t where id % 2 = 0",
        "create table child (id int references t (id), n numeric(10, 2) default 1.5)",
        "create table parted (a int, b text) partition by range (a)",
        "create table parted_1 partition of parted for values from (0) to (100)",
        "insert into parted select g, 'x' from generate_series(0, 99) g",
        "create table never_analyzed (x int)",
        "create view t_view as select id from t",
        "create materialized view t_mat as select id, v from t where id < 100",
        "analyze t",
        "analyze parted",
        "analyze t_mat",
        "insert into never_analyzed values (1)",
        // Enough tables that a small element size splits pg_schema.
        "do $$ begin for i in 1..40 loop execute format('create table many_%s (a int primary key, b text not null default ''some default text'', c timestamptz)', i); end loop; end $$",
    ] {
        c.psql("app", sql);
    }
    c.psql(
        "postgres",
        "select pg_create_logical_replication_slot('logical_slot', 'test_decoding')",
    );
    c.psql(
        "postgres",
        "select pg_create_physical_replication_slot('physical_slot', true)",
    );

    let dir = Dir::shared("all");
    let cfg = config(
        &dir,
        &c,
        "databases = [\"postgres\", \"app\"]",
        // A small element size rule: pg_schema of `app` must be split.
        &format!("[backend]\nmax_batch_bytes = 131072\n{ENABLE_ALL}"),
    );
    // Counters that only grow, read before and after the collection: the collector's figure
    // lies between (the server is quiet, so the two are close or equal).
    let counters = |c: &Cluster| -> Vec<i64> {
        let (alloc, req) = if version >= 170_000 {
            (
                "(select buffers_alloc from pg_stat_bgwriter)",
                "(select num_requested from pg_stat_checkpointer)",
            )
        } else {
            (
                "(select buffers_alloc from pg_stat_bgwriter)",
                "(select checkpoints_req from pg_stat_bgwriter)",
            )
        };
        let wal = if version >= 140_000 {
            "(select wal_records || ',' || wal_bytes from pg_stat_wal)"
        } else {
            "'0,0'"
        };
        c.psql(
            "app",
            &format!(
                "select extract(epoch from now() - pg_postmaster_start_time())::bigint \
                 || ',' || {alloc} || ',' || {req} || ',' || {wal} \
                 || ',' || (select pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint \
                            from pg_replication_slots where slot_name = 'physical_slot') \
                 || ',' || (select age(datfrozenxid) from pg_database where datname = 'app') \
                 || ',' || (select heap_blks_hit from pg_statio_user_tables where relname = 't')"
            ),
        )
        .split(',')
        .map(|x| x.trim().parse().unwrap_or_else(|_| panic!("{x:?}")))
        .collect()
    };
    let before = counters(&c);
    let v = once(&cfg, ALL);
    let after = counters(&c);
    let between = |what: &str, got: i64, i: usize, slack: i64| {
        assert!(
            before[i] - slack <= got && got <= after[i] + slack,
            "{what}: {got}, psql {} before and {} after",
            before[i],
            after[i]
        );
    };
    {
        let s = one(&v, "pg_server");
        between("uptime_secs", s["uptime_secs"].as_i64().unwrap(), 0, 1);
        between(
            "bgwriter.buffers_alloc",
            s["bgwriter"]["buffers_alloc"].as_i64().unwrap(),
            1,
            0,
        );
        between(
            "checkpointer.num_requested",
            s["checkpointer"]["num_requested"].as_i64().unwrap(),
            2,
            0,
        );
        if version >= 140_000 {
            between(
                "wal.wal_records",
                s["wal"]["wal_records"].as_i64().unwrap(),
                3,
                0,
            );
            between(
                "wal.wal_bytes",
                s["wal"]["wal_bytes"].as_i64().unwrap(),
                4,
                0,
            );
        }
        let r = one(&v, "pg_replication");
        let physical = slot(r, "physical_slot");
        between(
            "physical_slot.bytes_retained",
            physical["bytes_retained"].as_i64().unwrap(),
            5,
            0,
        );
        let app = r["wraparound_risk"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["database"] == "app")
            .unwrap();
        between("app xid_age", app["xid_age"].as_i64().unwrap(), 6, 0);
        let cache = for_db(&v, "pg_cache", "app");
        let t = cache[0]["table_cache_hit"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "t")
            .unwrap();
        between(
            "t heap_blks_hit",
            t["heap_blks_hit"].as_i64().unwrap(),
            7,
            0,
        );

        // Inactive slots do not move: their LSNs are psql's, exactly.
        for name in ["physical_slot", "logical_slot"] {
            let row = c.psql(
                "postgres",
                &format!(
                    "select coalesce(restart_lsn::text, '') || ',' || \
                     coalesce(confirmed_flush_lsn::text, '') \
                     from pg_replication_slots where slot_name = '{name}'"
                ),
            );
            let (restart, confirmed) = row.split_once(',').unwrap();
            let got = slot(r, name);
            assert_eq!(got["restart_lsn"], restart, "{name}: {got}");
            if confirmed.is_empty() {
                assert!(got["confirmed_flush_lsn"].is_null(), "{name}: {got}");
            } else {
                assert_eq!(got["confirmed_flush_lsn"], confirmed, "{name}: {got}");
            }
        }

        // Settings with units, converted to bytes, milliseconds or seconds as psql would.
        let mut converted = 0;
        for (key, value) in s.as_object().unwrap() {
            let (name, factor) = if let Some(n) = key.strip_suffix("_bytes") {
                (
                    n,
                    "pg_size_bytes(case when unit ~ '^[0-9]' then unit else '1' || unit end)",
                )
            } else if let Some(n) = key.strip_suffix("_ms") {
                (
                    n,
                    "case unit when 'ms' then 1 when 's' then 1000 when 'min' then 60000 \
                     when 'h' then 3600000 when 'd' then 86400000 end",
                )
            } else if let Some(n) = key.strip_suffix("_secs") {
                (
                    n,
                    "case unit when 's' then 1 when 'min' then 60 when 'h' then 3600 \
                     when 'd' then 86400 end",
                )
            } else {
                continue;
            };
            let want = c.psql(
                "app",
                &format!(
                    "select (setting::numeric * {factor})::bigint from pg_settings \
                     where name = '{name}' and unit is not null and setting <> '-1'"
                ),
            );
            if want.is_empty() {
                continue; // not a setting (uptime_secs), or unset (-1)
            }
            assert_eq!(
                value.as_f64(),
                want.parse().ok(),
                "{key}: {value}, psql {want}"
            );
            converted += 1;
        }
        assert!(
            converted >= 2,
            "settings with units compared: {converted} ({s})"
        );
        assert_eq!(
            s["max_connections"].to_string(),
            c.psql("app", "show max_connections")
        );
        let n = c.psql("app", "select count(*) from pg_stat_bgwriter");
        assert_eq!(n, "1");

        // Extensions: the same (name, version, schema) list as pg_extension's.
        let ext = for_db(&v, "pg_extensions", "app");
        let mut got: Vec<String> = ext[0]["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{}|{}|{}",
                    e["name"].as_str().unwrap(),
                    e["version"].as_str().unwrap(),
                    e["schema"].as_str().unwrap()
                )
            })
            .collect();
        got.sort();
        let want = c.psql(
            "app",
            "select string_agg(extname || '|' || extversion || '|' || nspname, ',' order by extname) \
             from pg_extension join pg_namespace n on n.oid = extnamespace",
        );
        assert_eq!(got.join(","), want);

        // Bloat: the estimate against pgstattuple's measure (dead tuples and free space as a
        // share of the table), within 15 points.
        c.psql("app", "create extension pgstattuple");
        let measured: f64 = c
            .psql(
                "app",
                "select (dead_tuple_len + free_space) * 100.0 / table_len from pgstattuple('t')",
            )
            .parse()
            .unwrap();
        let bloat = for_db(&v, "pg_bloat", "app");
        let t = bloat[0]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "t")
            .unwrap();
        let estimate = t["bloat_ratio"].as_f64().unwrap();
        eprintln!("bloat of t: estimate {estimate:.1} %, pgstattuple {measured:.1} %");
        assert!(
            (estimate - measured).abs() <= 15.0,
            "bloat estimate {estimate} %, pgstattuple {measured} %"
        );
        c.psql("app", "drop extension pgstattuple");
    }

    // pg_replication on a primary.
    let r = one(&v, "pg_replication");
    has_keys(
        r,
        &[
            "is_standby",
            "replication_status",
            "replication_slots",
            "wal_receiver",
            "wraparound_risk",
        ],
        "pg_replication",
    );
    assert_eq!(r["is_standby"], false);
    assert!(r["wal_receiver"].is_null());
    assert_eq!(r["replication_status"], serde_json::json!([]));
    let logical = slot(r, "logical_slot");
    let physical = slot(r, "physical_slot");
    for s in [logical, physical] {
        has_keys(s, SLOT_KEYS, "slot");
        assert!(s["bytes_retained"].as_i64().unwrap() >= 0, "{s}");
        assert_eq!(s["active"], false);
        since(s, "wal_status", version, 130_000);
        since(s, "two_phase", version, 140_000);
        has_keys(s, &["safe_wal_size", "invalidation_reason"], "slot");
    }
    since(logical, "conflicting", version, 160_000);
    assert_eq!(logical["slot_type"], "logical");
    assert_eq!(logical["database"], "postgres");
    assert!(!logical["confirmed_flush_lsn"].is_null());
    assert_eq!(physical["slot_type"], "physical");
    let wrap = r["wraparound_risk"].as_array().unwrap();
    let app = wrap.iter().find(|w| w["database"] == "app").unwrap();
    has_keys(
        app,
        &["database", "xid_age", "percent_until_wraparound", "at_risk"],
        "wraparound_risk",
    );
    assert_eq!(app["at_risk"], false);
    assert!(app["percent_until_wraparound"].as_f64().unwrap() > 99.0);

    // pg_server: counters under one set of names, present where the version has them.
    let s = one(&v, "pg_server");
    has_keys(
        s,
        &[
            "version",
            "version_num",
            "uptime_secs",
            "is_standby",
            "checkpointer",
            "bgwriter",
            "wal",
            "archiver",
            "max_connections",
            "shared_buffers_bytes",
            "work_mem_bytes",
        ],
        "pg_server",
    );
    assert_eq!(s["version_num"].as_u64().unwrap(), u64::from(version));
    assert_eq!(s["is_standby"], false);
    assert_eq!(s["max_connections"], 40);
    assert!(s["shared_buffers_bytes"].as_i64().unwrap() >= 128 * 1024);
    assert_eq!(s["wal_level"], "logical");
    let cp = &s["checkpointer"];
    has_keys(
        cp,
        &[
            "num_timed",
            "num_requested",
            "write_time_ms",
            "sync_time_ms",
            "buffers_written",
        ],
        "checkpointer",
    );
    assert!(cp["num_timed"].is_i64(), "{cp}");
    since(cp, "restartpoints_timed", version, 170_000);
    since(cp, "num_done", version, 180_000);
    let bg = &s["bgwriter"];
    for k in [
        "buffers_clean",
        "maxwritten_clean",
        "buffers_alloc",
        "buffers_backend",
    ] {
        assert!(bg[k].is_i64(), "{k}: {bg}");
    }
    since(s, "wal", version, 140_000);
    if version >= 140_000 {
        for k in ["wal_records", "wal_bytes", "wal_write", "wal_sync"] {
            assert!(s["wal"][k].is_i64(), "{k}: {}", s["wal"]);
        }
        assert!(s["wal"]["wal_bytes"].as_i64().unwrap() > 0);
    }
    assert!(s["archiver"]["archived_count"].is_i64());

    // pg_connections and pg_locks (nothing held here; see the lock test).
    let conn = one(&v, "pg_connections");
    has_keys(
        conn,
        &[
            "by_state",
            "total_connections",
            "max_connections",
            "long_running_transactions",
            "idle_in_transaction",
            "waiting",
        ],
        "pg_connections",
    );
    assert!(conn["total_connections"].as_i64().unwrap() >= 1);
    assert_eq!(conn["max_connections"], 40);
    let locks = one(&v, "pg_locks");
    has_keys(locks, &["active_locks", "blocking"], "pg_locks");

    // pg_cache: NULL counters of a table without index or TOAST are null.
    let cache = for_db(&v, "pg_cache", "app");
    assert_eq!(cache.len(), 1);
    let tables = cache[0]["table_cache_hit"].as_array().unwrap();
    let na = tables
        .iter()
        .find(|t| t["name"] == "never_analyzed")
        .unwrap();
    assert!(
        na["idx_blks_read"].is_null() && na["idx_hit_ratio"].is_null(),
        "{na}"
    );
    let t = tables.iter().find(|t| t["name"] == "t").unwrap();
    assert!(t["heap_blks_hit"].as_i64().unwrap() > 0, "{t}");
    let idx = cache[0]["index_cache_hit"].as_array().unwrap();
    assert!(idx.iter().any(|i| i["name"] == "t_pkey"), "{idx:?}");
    assert_eq!(for_db(&v, "pg_cache", "postgres").len(), 1);

    // pg_bloat: half of t deleted; no statistics → null, not an error; no partitioned
    // parent; btree indexes only.
    let bloat = for_db(&v, "pg_bloat", "app");
    assert_eq!(bloat.len(), 1);
    let bt = bloat[0]["tables"].as_array().unwrap();
    let t = bt.iter().find(|t| t["name"] == "t").unwrap();
    has_keys(
        t,
        &["schema", "name", "size_bytes", "bloat_bytes", "bloat_ratio"],
        "pg_bloat table",
    );
    let ratio = t["bloat_ratio"].as_f64().unwrap();
    assert!((30.0..70.0).contains(&ratio), "half deleted: {t}");
    assert_eq!(t["has_statistics"], true);
    let na = bt.iter().find(|t| t["name"] == "never_analyzed").unwrap();
    assert_eq!(na["has_statistics"], false);
    assert!(na["bloat_ratio"].is_null());
    assert!(bt.iter().all(|t| t["name"] != "parted"), "{bt:?}");
    assert!(bt.iter().any(|t| t["name"] == "parted_1"), "{bt:?}");
    let bi = bloat[0]["indexes"].as_array().unwrap();
    let pkey = bi.iter().find(|i| i["name"] == "t_pkey").unwrap();
    assert!(pkey["bloat_ratio"].as_f64().unwrap() > 20.0, "{pkey}");
    let lower = bi.iter().find(|i| i["name"] == "t_lower").unwrap();
    assert_eq!(
        lower["has_statistics"], true,
        "expression statistics: {lower}"
    );
    assert!(
        bi.iter()
            .all(|i| i["name"] != "t_v_hash" && i["name"] != "t_brin"),
        "{bi:?}"
    );

    // The same estimate for a role that reads the pg_stats view instead of pg_statistic.
    c.psql(
        "app",
        &format!(
            "create role monitor login password '{SUPERPASS}' in role pg_monitor; \
             grant select on all tables in schema public to monitor"
        ),
    );
    let as_monitor = dir.0.join("monitor.toml");
    std::fs::write(
        &as_monitor,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace(&format!("user = \"{SUPERUSER}\""), "user = \"monitor\""),
    )
    .unwrap();
    let mv = once(&as_monitor, "pg_bloat,collector_health");
    let mb = for_db(&mv, "pg_bloat", "app");
    let same = |list: &str, name: &str| {
        let find = |e: &Value| {
            e[list]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == name)
                .cloned()
                .unwrap()
        };
        assert_eq!(find(mb[0]), find(bloat[0]), "{list} {name}");
    };
    same("tables", "t");
    same("tables", "never_analyzed");
    same("indexes", "t_pkey");
    // (Expression statistics are not shown to other roles by pg_stats: t_lower has none.)

    // pg_extensions.
    let ext = for_db(&v, "pg_extensions", "app");
    let list = ext[0]["extensions"].as_array().unwrap();
    let pgss = list
        .iter()
        .find(|e| e["name"] == "pg_stat_statements")
        .unwrap();
    has_keys(
        pgss,
        &["name", "version", "schema", "relocatable", "description"],
        "extension",
    );
    assert_eq!(pgss["schema"], "public");
    assert!(pgss["description"].is_string());

    // pg_schema: split into parts under max_batch_bytes / 4, every table exactly once.
    let parts = for_db(&v, "pg_schema", "app");
    assert!(parts.len() > 1, "{} parts", parts.len());
    let mut tables = Vec::new();
    let (mut columns, mut constraints, mut indexes) = (Vec::new(), Vec::new(), Vec::new());
    for p in &parts {
        assert!(
            p.to_string().len() <= 131072 / 4,
            "part of {} bytes",
            p.to_string().len()
        );
        assert_eq!(p["parts"].as_u64().unwrap() as usize, parts.len());
        tables.extend(p["tables"].as_array().unwrap().iter().cloned());
        columns.extend(p["columns"].as_array().unwrap().iter().cloned());
        constraints.extend(p["constraints"].as_array().unwrap().iter().cloned());
        indexes.extend(p["indexes"].as_array().unwrap().iter().cloned());
    }
    let names: Vec<&str> = tables.iter().filter_map(|t| t["name"].as_str()).collect();
    for n in [
        "t", "child", "parted", "parted_1", "t_view", "t_mat", "many_40",
    ] {
        assert_eq!(
            names.iter().filter(|x| **x == n).count(),
            1,
            "{n}: {names:?}"
        );
    }
    let t = tables.iter().find(|t| t["name"] == "t").unwrap();
    assert_eq!(t["comment"], "the test table");
    assert_eq!(t["kind"], "table");
    let n = columns
        .iter()
        .find(|c| c["table"] == "child" && c["name"] == "n")
        .unwrap();
    has_keys(
        n,
        &[
            "schema",
            "table",
            "name",
            "position",
            "data_type",
            "nullable",
            "default",
        ],
        "column",
    );
    assert_eq!(n["data_type"], "numeric(10,2)");
    assert_eq!(n["default"], "1.5");
    assert!(
        constraints.iter().any(|c| c["table"] == "t"
            && c["type"] == "check"
            && c["definition"].as_str().unwrap().contains("w > 0")),
        "{constraints:?}"
    );
    assert!(
        constraints
            .iter()
            .any(|c| c["table"] == "child" && c["type"] == "foreign key"),
        "{constraints:?}"
    );
    let hash = indexes.iter().find(|i| i["name"] == "t_v_hash").unwrap();
    assert_eq!(hash["method"], "hash");
    assert!(
        hash["definition"]
            .as_str()
            .unwrap()
            .starts_with("CREATE INDEX t_v_hash ON public.t USING hash"),
        "{hash}"
    );
}

/// Waits until `cfg`'s pg_replication satisfies `f`; returns that element.
fn replication_until(cfg: &Path, what: &str, mut f: impl FnMut(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let ok = eventually(WITHIN, || {
        let v = once(cfg, "pg_replication,collector_health");
        last = one(&v, "pg_replication").clone();
        f(&last)
    });
    assert!(ok, "{what}: {last}");
    last
}

#[test]
fn primary_and_standby_with_slots() {
    let primary = Cluster::start(logical_options());
    let version = primary.version_num();
    primary.psql("postgres", "create table w (x int, pad text)");
    primary.psql(
        "postgres",
        "select pg_create_logical_replication_slot('logical_slot', 'test_decoding')",
    );
    let standby = primary.standby("standby_slot");
    let dir = Dir::shared("repl");
    let on_primary = config(&dir, &primary, "", "");
    let on_standby = config(&dir, &standby, "", "");
    let write = |rows: u32| {
        primary.psql(
            "postgres",
            &format!("insert into w select g, repeat('x', 200) from generate_series(1, {rows}) g"),
        );
    };

    // Primary: the standby streams through its slot.
    let r = replication_until(&on_primary, "the standby streams", |r| {
        r["replication_status"]
            .as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["state"] == "streaming")
    });
    assert_eq!(r["is_standby"], false);
    assert!(r["wal_receiver"].is_null());
    let sender = &r["replication_status"][0];
    has_keys(sender, SENDER_KEYS, "replication_status");
    assert_eq!(sender["sync_state"], "async");
    assert!(sender["server_pid"].as_i64().unwrap() > 0);
    let sent_before = lsn(&sender["sent_lsn"]);
    let s = slot(&r, "standby_slot");
    assert_eq!(s["active"], true);
    assert_eq!(s["backend_pid"], sender["server_pid"]);
    since(s, "wal_status", version, 130_000);
    let logical = slot(&r, "logical_slot");
    assert_eq!(logical["active"], false);

    // Standby: a WAL receiver, no pg_current_wal_lsn() error, no senders.
    let sb = replication_until(&on_standby, "the standby receives", |r| {
        r["wal_receiver"]["status"] == "streaming"
    });
    assert_eq!(sb["is_standby"], true);
    assert_eq!(sb["replication_status"], serde_json::json!([]));
    let wr = &sb["wal_receiver"];
    has_keys(
        wr,
        &[
            "status",
            "sender_host",
            "slot_name",
            "written_lsn",
            "flushed_lsn",
            "replay_lsn",
            "replay_delay_secs",
        ],
        "wal_receiver",
    );
    assert_eq!(wr["slot_name"], "standby_slot");
    assert!(!wr["flushed_lsn"].is_null(), "{wr}");
    let replay_before = lsn(&wr["replay_lsn"]);
    // Every type on the standby: no error (pg_current_wal_lsn() would raise one there).
    let every = config(&dir, &standby, "", ENABLE_ALL);
    let v = once(&every, ALL);
    assert_eq!(one(&v, "pg_server")["is_standby"], true);
    assert_eq!(one(&v, "pg_replication")["is_standby"], true);
    for t in ["pg_cache", "pg_bloat", "pg_extensions", "pg_schema"] {
        assert!(!for_db(&v, t, "postgres").is_empty(), "{t} on the standby");
    }

    // Writes move the LSNs on both sides, and the lag columns get measured.
    write(2000);
    let r = replication_until(&on_primary, "sent_lsn advances with lag measured", |r| {
        let s = &r["replication_status"][0];
        let measured = ["write_lag_ms", "flush_lag_ms", "replay_lag_ms"]
            .iter()
            .all(|k| s[*k].as_f64().is_some_and(|x| x >= 0.0));
        if !measured {
            // Lags are shown only while WAL flows: keep it flowing.
            write(10);
        }
        s["sent_lsn"].is_string() && lsn(&s["sent_lsn"]) > sent_before && measured
    });
    let s = &r["replication_status"][0];
    assert!(s["behind_by_mb"].as_f64().unwrap() >= 0.0, "{s}");
    // written_lsn (13+) is null until the receiver has written something.
    let sb = replication_until(&on_standby, "replay_lsn advances", |r| {
        let wr = &r["wal_receiver"];
        wr["replay_lsn"].is_string()
            && lsn(&wr["replay_lsn"]) > replay_before
            && (version < 130_000 || wr["written_lsn"].is_string())
    });
    since(&sb["wal_receiver"], "written_lsn", version, 130_000);

    // A stopped standby: its sender row goes away, its slot holds WAL back more and more.
    standby.stop();
    let r = replication_until(&on_primary, "the sender row disappears", |r| {
        r["replication_status"] == serde_json::json!([])
            && slot(r, "standby_slot")["active"] == false
    });
    let retained = slot(&r, "standby_slot")["bytes_retained"].as_i64().unwrap();
    write(20000);
    let r = replication_until(&on_primary, "retention grows", |r| {
        slot(r, "standby_slot")["bytes_retained"].as_i64().unwrap() > retained + 1_000_000
    });
    assert!(slot(&r, "standby_slot")["backend_pid"].is_null());
    assert!(slot(&r, "logical_slot")["bytes_retained"].as_i64().unwrap() > 1_000_000);
}

/// The pid of the session named `app`, once it satisfies `cond` (SQL over pg_stat_activity).
fn pid_of(c: &Cluster, app: &str, cond: &str) -> i64 {
    let mut pid = String::new();
    let ok = eventually(WITHIN, || {
        pid = c.psql(
            "postgres",
            &format!(
                "select pid from pg_stat_activity where application_name = '{app}' and {cond}"
            ),
        );
        !pid.is_empty()
    });
    assert!(ok, "session {app} never reached {cond}");
    pid.parse().unwrap()
}

#[test]
fn blocking_locks_and_long_transactions() {
    let c = Cluster::start(Options::default());
    c.psql(
        "postgres",
        "create table acct (id int primary key, v int); insert into acct values (1, 0)",
    );
    let mut holder = c.session("postgres", "holder");
    holder.send("begin;");
    holder.send(
        "update acct set v = 1 where id = 1 /* the holder's update, long enough to be cut */;",
    );
    let holder_pid = pid_of(&c, "holder", "state = 'idle in transaction'");
    let mut waiter = c.session("postgres", "waiter");
    waiter.send(
        "update acct set v = 2 where id = 1 /* the waiter's update, long enough to be cut */;",
    );
    let waiter_pid = pid_of(&c, "waiter", "wait_event_type = 'Lock'");

    let dir = Dir::shared("locks");
    let max_query = 40;
    let cfg = config(
        &dir,
        &c,
        "",
        &format!(
            "[pg_query_stats]\nmax_query_length = {max_query}\n\
             [pg_connections]\nlong_transaction_secs = 0.5\n[pg_locks]\nenabled = true\n"
        ),
    );

    let v = once(&cfg, "pg_locks,collector_health");
    let locks = one(&v, "pg_locks");
    let pairs = locks["blocking"].as_array().unwrap();
    assert_eq!(pairs.len(), 1, "{locks}");
    let p = &pairs[0];
    has_keys(
        p,
        &[
            "blocked_pid",
            "blocking_pid",
            "blocked_query",
            "blocking_query",
            "wait_seconds",
        ],
        "blocking",
    );
    assert_eq!(p["blocked_pid"], waiter_pid);
    assert_eq!(p["blocking_pid"], holder_pid);
    let blocked = p["blocked_query"].as_str().unwrap();
    let blocking = p["blocking_query"].as_str().unwrap();
    assert!(
        blocked.len() <= max_query && blocked.starts_with("update acct set v = 2"),
        "{blocked}"
    );
    assert!(
        blocking.len() <= max_query && blocking.starts_with("update acct set v = 1"),
        "{blocking}"
    );
    assert!(p["wait_seconds"].as_f64().unwrap() >= 0.0);
    let active = locks["active_locks"].as_array().unwrap();
    assert!(
        active
            .iter()
            .any(|l| l["granted"] == false && l["count"].as_i64() >= Some(1)),
        "a lock waited for: {active:?}"
    );
    assert!(
        active
            .iter()
            .all(|l| l.get("lock_type").is_some() && l.get("mode").is_some())
    );

    // The holder's transaction passes long_transaction_secs.
    let mut conn = Value::Null;
    let ok = eventually(WITHIN, || {
        let v = once(&cfg, "pg_connections,collector_health");
        conn = one(&v, "pg_connections").clone();
        conn["long_running_transactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["pid"] == holder_pid)
    });
    assert!(ok, "holder never listed as long-running: {conn}");
    let long = conn["long_running_transactions"].as_array().unwrap();
    let h = long.iter().find(|t| t["pid"] == holder_pid).unwrap();
    assert!(h["duration_seconds"].as_f64().unwrap() >= 0.5, "{h}");
    assert!(h["xact_start"].as_str().unwrap().ends_with('Z'));
    let q = h["query"].as_str().unwrap();
    assert!(
        q.len() <= max_query && q.starts_with("update acct set v = 1"),
        "{q}"
    );
    let idle = conn["idle_in_transaction"].as_array().unwrap();
    assert!(idle.iter().any(|t| t["pid"] == holder_pid), "{idle:?}");
    assert!(idle.iter().all(|t| t["pid"] != waiter_pid));
    let waiting = conn["waiting"].as_array().unwrap();
    assert!(
        waiting
            .iter()
            .any(|w| w["wait_event_type"] == "Lock" && w["count"].as_i64() >= Some(1)),
        "{waiting:?}"
    );
    let by_state = conn["by_state"].as_array().unwrap();
    let idle_group = by_state
        .iter()
        .find(|g| g["state"] == "idle in transaction" && g["database"] == "postgres")
        .unwrap();
    has_keys(
        idle_group,
        &["database", "state", "count", "max_age_seconds"],
        "by_state",
    );
    assert!(conn["total_connections"].as_i64().unwrap() >= 3);

    // The holder commits: the waiter goes through, nothing blocks any more.
    holder.send("commit;");
    let ok = eventually(WITHIN, || {
        let v = once(&cfg, "pg_locks,collector_health");
        one(&v, "pg_locks")["blocking"] == serde_json::json!([])
    });
    assert!(ok, "blocking pair still listed after commit");
    drop(waiter);
}
