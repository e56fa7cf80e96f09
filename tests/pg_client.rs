//! The PostgreSQL client against real servers started by `support::pg` (the version matrix
//! reruns this file against other majors through `PG_BIN`).
mod support;

use pganalytics_collector::config::{ChannelBinding, PgAuthMethod, SslMode};
use pganalytics_collector::proto::postgres::{Client, ConnectParams, PgError, Target};
use std::time::{Duration, Instant};
use support::pg::{Cluster, Options, SUPERPASS, SUPERUSER};

const Q: Duration = Duration::from_secs(10);

fn unix(c: &Cluster) -> Target {
    Target::Unix {
        dir: c.dir.clone(),
        port: c.port,
    }
}

fn tcp(c: &Cluster, host: &str) -> Target {
    Target::Tcp {
        host: host.to_string(),
        port: c.port,
    }
}

fn params(target: Target, user: &str, password: Option<&str>) -> ConnectParams {
    ConnectParams {
        target,
        user: user.to_string(),
        password: password.map(str::to_string),
        database: "postgres".to_string(),
        application_name: "pgac-test".to_string(),
        sslmode: SslMode::Disable,
        sslrootcert: None,
        connect_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(5),
        lock_timeout: Duration::from_secs(1),
        // The harness's servers run as the postgres user.
        requirepeer: Some(support::pg::postgres_peer()),
        require_auth: None,
        channel_binding: ChannelBinding::Prefer,
    }
}

fn select_one(client: &mut Client) {
    let rows = client.query("select 1 as one", Q, None).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows.columns().collect::<Vec<_>>(), ["one"]);
    assert_eq!(rows.iter().next().unwrap().get_i64("one").unwrap(), Some(1));
}

fn connect(p: &ConnectParams) -> Client {
    Client::connect(p, None).unwrap_or_else(|e| panic!("connect {p:?}: {e}"))
}

#[test]
fn every_auth_method_over_unix_socket_and_tcp() {
    let hba = "\
local all u_trust trust
local all u_pw password
local all u_md5 md5
local all all scram-sha-256
host all u_trust 127.0.0.1/32 trust
host all u_pw 127.0.0.1/32 password
host all u_md5 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
";
    let c = Cluster::start(Options {
        hba: Some(hba.to_string()),
        ..Options::default()
    });
    c.psql("postgres", "create role u_trust login");
    c.psql("postgres", "create role u_pw login password 'pw secret'");
    c.psql("postgres", "create role u_scram login password 'scram-pw'");
    c.psql(
        "postgres",
        "set password_encryption = 'md5'; create role u_md5 login password 'md5-pw'",
    );
    assert!(
        c.psql(
            "postgres",
            "select rolpassword from pg_authid where rolname = 'u_md5'"
        )
        .starts_with("md5")
    );
    for target in [unix(&c), tcp(&c, "127.0.0.1"), tcp(&c, "localhost")] {
        for (user, pw) in [
            ("u_trust", None),
            ("u_pw", Some("pw secret")),
            ("u_md5", Some("md5-pw")),
            ("u_scram", Some("scram-pw")),
            (SUPERUSER, Some(SUPERPASS)),
        ] {
            let mut p = params(target.clone(), user, pw);
            if user == "u_pw" && matches!(target, Target::Tcp { .. }) {
                // A cleartext password over plain TCP is refused by default (SECURITY.md):
                // before anything is sent, naming the key that allows it.
                let e = Client::connect(&p, None).unwrap_err();
                assert!(e.to_string().contains("require_auth"), "{e}");
                p.require_auth = Some(vec![PgAuthMethod::Password]);
            }
            let mut client = connect(&p);
            select_one(&mut client);
            assert!(!client.is_tls());
            assert!(client.backend_pid() > 0);
            let who = client.query("select current_user as u", Q, None).unwrap();
            assert_eq!(who.iter().next().unwrap().get_str("u").unwrap(), Some(user));
            client.close();
        }
        // Wrong password: the server's message and SQLSTATE 28P01, for every password method.
        let allow_all = || {
            Some(vec![
                PgAuthMethod::Password,
                PgAuthMethod::Md5,
                PgAuthMethod::ScramSha256,
            ])
        };
        for user in ["u_pw", "u_md5", "u_scram"] {
            let mut p = params(target.clone(), user, Some("wrong"));
            p.require_auth = allow_all();
            let e = Client::connect(&p, None).unwrap_err();
            assert!(matches!(e, PgError::Auth { .. }), "{e:?}");
            assert_eq!(e.sqlstate(), Some("28P01"), "{e}");
            assert!(
                e.to_string().contains("password authentication failed"),
                "{e}"
            );
            assert!(!e.is_connection_lost());
        }
        // No password configured: our own clear message.
        for user in ["u_pw", "u_md5", "u_scram"] {
            let mut p = params(target.clone(), user, None);
            p.require_auth = allow_all();
            let e = Client::connect(&p, None).unwrap_err();
            assert!(e.to_string().contains("no password is configured"), "{e}");
            assert!(e.to_string().contains("PGPASSWORD"), "{e}");
        }
    }
}

#[test]
fn queries_types_timeouts_and_read_only_sessions() {
    let c = Cluster::start(Options::default());
    let mut p = params(unix(&c), SUPERUSER, Some(SUPERPASS));
    p.statement_timeout = Duration::from_millis(100);
    let signals = pganalytics_collector::sys::signals::Signals::install().unwrap();
    let mut client = Client::connect(&p, Some(&signals)).unwrap();
    assert_eq!(client.server_version_num(), c.version_num());
    assert_eq!(client.parameter("TimeZone"), Some("UTC"));
    assert_eq!(client.parameter("DateStyle"), Some("ISO, MDY"));
    assert_eq!(client.parameter("client_encoding"), Some("UTF8"));

    // Typed getters on real values.
    let rows = client
        .query(
            "select 9007199254740993::int8 as i, -5::int4 as neg, 0.1::float8 as f, true as t, false as ff, \
             '2026-11-27 21:33:02.966761+00'::timestamptz as ts, \
             '2026-11-27 23:03:02+01:30'::timestamptz as ts2, null::text as n, 'zażółć ☃'::text as s, \
             'NaN'::float8 as nan, 'infinity'::timestamptz as inf, 12345678901234567890::numeric as big \
             from generate_series(1, 3)",
            Q,
            Some(&signals),
        )
        .unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows.iter() {
        assert_eq!(row.get_i64("i").unwrap(), Some(9_007_199_254_740_993));
        assert_eq!(row.get_u64("i").unwrap(), Some(9_007_199_254_740_993));
        assert_eq!(row.get_i64("neg").unwrap(), Some(-5));
        assert!(row.get_u64("neg").is_err());
        assert_eq!(row.get_f64("f").unwrap(), Some(0.1));
        assert_eq!(row.get_bool("t").unwrap(), Some(true));
        assert_eq!(row.get_bool("ff").unwrap(), Some(false));
        let ts = row.get_timestamptz("ts").unwrap().unwrap();
        assert_eq!((ts.secs, ts.nanos), (1_795_815_182, 966_761_000));
        assert_eq!(
            row.get_timestamptz("ts2").unwrap().unwrap().secs,
            1_795_815_182
        );
        assert_eq!(row.get_str("n").unwrap(), None);
        assert_eq!(row.get_i64("n").unwrap(), None);
        assert_eq!(row.get_str("s").unwrap(), Some("zażółć ☃"));
        assert_eq!(
            row.get_u64("big").unwrap(),
            Some(12_345_678_901_234_567_890)
        );
        for (col, e) in [
            ("nan", row.get_f64("nan").unwrap_err()),
            ("inf", row.get_timestamptz("inf").unwrap_err()),
            ("s", row.get_i64("s").unwrap_err()),
            ("t", row.get_i64("t").unwrap_err()),
            ("missing", row.get_str("missing").unwrap_err()),
        ] {
            assert!(
                matches!(&e, PgError::Decode { column, .. } if column == col),
                "{e:?}"
            );
            assert!(e.to_string().contains(col), "{e}");
            assert!(!e.is_connection_lost());
        }
    }
    // Empty results and statements without rows.
    let rows = client.query("select 1 as x where false", Q, None).unwrap();
    assert!(rows.is_empty());
    assert_eq!(rows.columns().collect::<Vec<_>>(), ["x"]);
    assert!(client.query("", Q, None).unwrap().is_empty());
    assert!(
        client
            .query("set application_name = 'pgac-test'", Q, None)
            .unwrap()
            .is_empty()
    );

    // application_name is visible to the server.
    let rows = client
        .query(
            "select application_name from pg_stat_activity where pid = pg_backend_pid()",
            Q,
            None,
        )
        .unwrap();
    assert_eq!(
        rows.iter()
            .next()
            .unwrap()
            .get_str("application_name")
            .unwrap(),
        Some("pgac-test")
    );

    // The session is read-only.
    let e = client.query("create table t (x int)", Q, None).unwrap_err();
    assert_eq!(e.sqlstate(), Some("25006"), "{e}");
    assert!(!e.is_connection_lost());

    // A server error keeps the connection usable.
    let e = client.query("select 1/0", Q, None).unwrap_err();
    assert_eq!(e.sqlstate(), Some("22012"));
    assert_eq!(e.to_string(), "server error 22012: division by zero");
    select_one(&mut client);

    // statement_timeout (100 ms here): 57014, and the connection still works.
    let started = Instant::now();
    let e = client
        .query("select pg_sleep(2)", Q, Some(&signals))
        .unwrap_err();
    assert_eq!(e.sqlstate(), Some("57014"), "{e}");
    assert_eq!(
        e.to_string(),
        "server error 57014: canceling statement due to statement timeout"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
    select_one(&mut client);
    client.close();

    // The client-side query timeout ends a long query that the server would not stop.
    let mut p = params(tcp(&c, "127.0.0.1"), SUPERUSER, Some(SUPERPASS));
    p.statement_timeout = Duration::ZERO;
    p.lock_timeout = Duration::ZERO;
    let mut client = Client::connect(&p, Some(&signals)).unwrap();
    let rows = client.query("show statement_timeout", Q, None).unwrap();
    assert_eq!(
        rows.iter()
            .next()
            .unwrap()
            .get_str("statement_timeout")
            .unwrap(),
        Some("0")
    );
    let started = Instant::now();
    let e = client
        .query(
            "select pg_sleep(5)",
            Duration::from_millis(300),
            Some(&signals),
        )
        .unwrap_err();
    assert!(matches!(e, PgError::Timeout { what: "query" }), "{e:?}");
    assert!(e.is_connection_lost());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The connection is unusable afterwards.
    assert!(
        client
            .query("select 1", Q, None)
            .unwrap_err()
            .is_connection_lost()
    );

    // A database that does not exist.
    let mut p = params(unix(&c), SUPERUSER, Some(SUPERPASS));
    p.database = "nope".to_string();
    let e = Client::connect(&p, None).unwrap_err();
    assert_eq!(e.sqlstate(), Some("3D000"), "{e}");
}

#[test]
fn tls_modes() {
    let hba = "\
local all all scram-sha-256
hostssl all all 127.0.0.1/32 scram-sha-256
";
    let c = Cluster::start(Options {
        hba: Some(hba.to_string()),
        tls: true,
        ..Options::default()
    });
    let ca = c.ca_file.clone().unwrap();
    let tls_params = |host: &str, mode: SslMode, root: Option<std::path::PathBuf>| {
        let mut p = params(tcp(&c, host), SUPERUSER, Some(SUPERPASS));
        p.sslmode = mode;
        p.sslrootcert = root;
        p
    };
    for host in ["localhost", "127.0.0.1"] {
        for mode in [
            SslMode::VerifyFull,
            SslMode::VerifyCa,
            SslMode::Require,
            SslMode::Prefer,
            SslMode::Allow,
        ] {
            let mut client = connect(&tls_params(host, mode, Some(ca.clone())));
            assert!(client.is_tls(), "{mode:?}");
            select_one(&mut client);
            let rows = client
                .query(
                    "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
                    Q,
                    None,
                )
                .unwrap();
            assert_eq!(
                rows.iter().next().unwrap().get_bool("ssl").unwrap(),
                Some(true)
            );
            client.close();
        }
    }
    // require and prefer without a CA: encrypted, certificate not checked.
    for mode in [SslMode::Require, SslMode::Prefer] {
        let mut client = connect(&tls_params("127.0.0.1", mode, None));
        assert!(client.is_tls());
        select_one(&mut client);
    }
    // A CA that did not sign the server certificate.
    let dir = std::env::temp_dir().join(format!("pgac-wrong-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("ca.pem");
    std::fs::write(&wrong, support::pg::certificates().0).unwrap();
    for mode in [SslMode::VerifyFull, SslMode::VerifyCa, SslMode::Require] {
        let e =
            Client::connect(&tls_params("localhost", mode, Some(wrong.clone())), None).unwrap_err();
        assert!(matches!(e, PgError::Tls(_)), "{e:?}");
        assert!(
            e.to_string().contains("UnknownIssuer") || e.to_string().contains("certificate"),
            "{e}"
        );
    }
    // verify-full needs a root file; a missing file is a clear error.
    let e = Client::connect(
        &tls_params("localhost", SslMode::VerifyFull, Some(dir.join("none.pem"))),
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("none.pem"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    // disable against a hostssl-only server: the server's message.
    let e = Client::connect(&tls_params("127.0.0.1", SslMode::Disable, None), None).unwrap_err();
    assert!(matches!(e, PgError::Auth { .. }), "{e:?}");
    assert_eq!(e.sqlstate(), Some("28000"), "{e}");
    assert!(e.to_string().contains("pg_hba.conf"), "{e}");
    // A Unix socket never uses TLS, whatever the mode (as libpq).
    let mut p = params(unix(&c), SUPERUSER, Some(SUPERPASS));
    p.sslmode = SslMode::Require;
    let mut client = connect(&p);
    assert!(!client.is_tls());
    select_one(&mut client);
}

#[test]
fn tls_required_but_server_has_none() {
    let c = Cluster::start(Options::default());
    let mut p = params(tcp(&c, "127.0.0.1"), SUPERUSER, Some(SUPERPASS));
    p.sslmode = SslMode::Require;
    let e = Client::connect(&p, None).unwrap_err();
    assert!(matches!(e, PgError::Tls(_)), "{e:?}");
    assert!(e.to_string().contains("does not support tls"), "{e}");
    p.sslmode = SslMode::Prefer;
    let mut client = connect(&p);
    assert!(!client.is_tls());
    select_one(&mut client);
}

#[test]
fn restarted_and_stopped_servers() {
    let c = Cluster::start(Options::default());
    for target in [unix(&c), tcp(&c, "127.0.0.1")] {
        let p = params(target, SUPERUSER, Some(SUPERPASS));
        let mut client = connect(&p);
        select_one(&mut client);
        c.restart();
        let e = client.query("select 1", Q, None).unwrap_err();
        assert!(e.is_connection_lost(), "{e:?}");
        let mut again = connect(&p);
        select_one(&mut again);
    }
    c.stop();
    for target in [unix(&c), tcp(&c, "127.0.0.1")] {
        let started = Instant::now();
        let e = Client::connect(&params(target, SUPERUSER, Some(SUPERPASS)), None).unwrap_err();
        assert!(matches!(e, PgError::Connect { .. }), "{e:?}");
        assert!(e.is_connection_lost());
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(e.to_string().contains(&c.port.to_string()), "{e}");
    }
}

#[test]
fn a_silent_server_times_out_the_connect() {
    // A listener that accepts (through the kernel backlog) but never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut p = params(
        Target::Tcp {
            host: "127.0.0.1".to_string(),
            port,
        },
        "x",
        None,
    );
    p.connect_timeout = Duration::from_millis(300);
    for mode in [SslMode::Disable, SslMode::Prefer] {
        p.sslmode = mode;
        let started = Instant::now();
        let e = Client::connect(&p, None).unwrap_err();
        assert!(matches!(e, PgError::Timeout { .. }), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

/// A query sent without waiting (the wait-event sampler's way) is read later, even when
/// another query used the connection in between, and never twice; a failed one comes back as
/// its error and the connection stays usable.
#[test]
fn a_query_sent_now_is_read_later_even_across_other_queries() {
    let c = Cluster::start(Options::default());
    let mut client = connect(&params(unix(&c), SUPERUSER, Some(SUPERPASS)));
    assert!(client.take_sent(Q, None).is_none(), "nothing sent yet");

    client.send_query("select 41 + 1 as sent", Q, None).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let rows = client.take_sent(Q, None).unwrap().unwrap();
    assert_eq!(
        rows.iter().next().unwrap().get_i64("sent").unwrap(),
        Some(42)
    );
    client.recycle(rows);
    assert!(client.take_sent(Q, None).is_none(), "read once");

    // Another query in between reads the reply first and keeps it.
    client
        .send_query("select 'first' as which", Q, None)
        .unwrap();
    select_one(&mut client);
    let rows = client.take_sent(Q, None).unwrap().unwrap();
    assert_eq!(
        rows.iter().next().unwrap().get_str("which").unwrap(),
        Some("first")
    );

    // A failing one: its error, then the connection works on.
    client.send_query("select 1/0", Q, None).unwrap();
    let e = client.take_sent(Q, None).unwrap().unwrap_err();
    assert!(e.to_string().contains("division by zero"), "{e}");
    select_one(&mut client);

    // A reply nobody took is dropped by the next send, never mixed with the next result.
    client
        .send_query("select 'stale' as which", Q, None)
        .unwrap();
    select_one(&mut client);
    client
        .send_query("select 'fresh' as which", Q, None)
        .unwrap();
    let rows = client.take_sent(Q, None).unwrap().unwrap();
    assert_eq!(
        rows.iter().next().unwrap().get_str("which").unwrap(),
        Some("fresh")
    );
}

/// A result the server sends in pieces, slower than they are read (the reader pauses between
/// pieces to let them gather: `GATHER_PAUSE` in src/proto/postgres/client.rs), and one it
/// sends faster than that, over the Unix socket and over TCP: every row whole and in order,
/// and the connection usable after each.
#[test]
fn results_arriving_in_pieces_are_read_whole() {
    let c = Cluster::start(Options::default());
    for target in [unix(&c), tcp(&c, "127.0.0.1")] {
        let mut client = connect(&params(target, SUPERUSER, Some(SUPERPASS)));
        // 300 rows of 8 000 bytes, one a millisecond: each row is a piece of its own.
        // Then 5 000 rows of 1 000 bytes at once (5 MB, far beyond the socket's buffer).
        for (sql, rows, width) in [
            (
                "select g, repeat(chr(65 + g % 26), 8000) as pad, pg_sleep(0.001)::text as s \
                 from generate_series(1, 300) g",
                300,
                8000,
            ),
            (
                "select g, repeat(chr(65 + g % 26), 1000) as pad, '' as s \
                 from generate_series(1, 5000) g",
                5000,
                1000,
            ),
        ] {
            let result = client.query(sql, Duration::from_secs(30), None).unwrap();
            assert_eq!(result.len(), rows);
            for (i, r) in result.iter().enumerate() {
                let g = i as i64 + 1;
                assert_eq!(r.get_i64("g").unwrap(), Some(g));
                let pad = r.get_str("pad").unwrap().unwrap();
                assert_eq!(pad.len(), width);
                let letter = char::from(b'A' + (g % 26) as u8);
                assert!(pad.chars().all(|ch| ch == letter), "row {g}");
            }
            client.recycle(result);
            select_one(&mut client);
        }
    }
}

/// Several statements in one round trip (`pg_stats` sends a chunk's tables and indexes so):
/// each result apart and in order, reusing results handed back; an error in any of them is the
/// call's error and the connection stays usable.
#[test]
fn statements_sent_together_come_back_apart() {
    let c = Cluster::start(Options::default());
    let mut client = connect(&params(unix(&c), SUPERUSER, Some(SUPERPASS)));
    for _ in 0..3 {
        let all = client
            .query_split(
                "select g as n from generate_series(1, 3) g;\nselect 'x' as a, 'y' as b where false;\nselect repeat('z', 100000) as big",
                3,
                Q,
                None,
            )
            .unwrap();
        assert_eq!(all.len(), 3);
        let ns: Vec<i64> = all[0]
            .iter()
            .map(|r| r.get_i64("n").unwrap().unwrap())
            .collect();
        assert_eq!(ns, [1, 2, 3]);
        assert_eq!(all[1].columns().collect::<Vec<_>>(), ["a", "b"]);
        assert!(all[1].is_empty());
        let big = all[2]
            .iter()
            .next()
            .unwrap()
            .get_str("big")
            .unwrap()
            .unwrap();
        assert_eq!(big.len(), 100_000);
        for rows in all {
            client.recycle(rows);
        }
    }
    let e = client
        .query_split("select 1 as one;\nselect * from no_such_table", 2, Q, None)
        .unwrap_err();
    assert_eq!(e.sqlstate(), Some("42P01"), "{e}");
    select_one(&mut client);
}
