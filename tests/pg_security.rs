//! The PostgreSQL client against hostile servers (SECURITY.md: who is the server, which
//! authentication is acceptable, bounded input). Each test plays the attacker for real: a
//! socket in /tmp created by another user, TCP servers that decline TLS or present a
//! self-signed certificate and ask for a cleartext password, a ParameterStatus flood, a 200 MB
//! DataRow. The fake servers record every byte they receive: "nothing was sent" is read there.
mod support;

use pganalytics_collector::collect::pg::conninfo::LibpqEnv;
use pganalytics_collector::collect::pg::pool::Pool;
use pganalytics_collector::config::{ChannelBinding, Config, PgAuthMethod, SslMode};
use pganalytics_collector::proto::postgres::{Client, ConnectParams, PgError, Target};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::pg::{Cluster, Options, SUPERPASS, SUPERUSER};
use support::tmp::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");
const SECRET: &str = "s3cret-never-sent";
const NOBODY: u32 = 65534;

fn params(target: Target) -> ConnectParams {
    ConnectParams {
        target,
        user: "mon".to_string(),
        password: Some(SECRET.to_string()),
        database: "postgres".to_string(),
        application_name: "pgac-test".to_string(),
        sslmode: SslMode::Prefer,
        sslrootcert: None,
        connect_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(5),
        lock_timeout: Duration::from_secs(1),
        requirepeer: Some(support::pg::postgres_peer()),
        require_auth: None,
        channel_binding: ChannelBinding::Prefer,
    }
}

// ---------------------------------------------------------------------------------------
// S1: a socket in /tmp created by another user.

/// The fake socket server, run in a child process as `nobody` (see
/// `a_socket_of_another_user_gets_nothing`): listens on `PGAC_FAKE_SOCKET`, says so on
/// stdout, then for each of two connections reports how many bytes it received before EOF.
#[test]
fn fake_socket_server_child() {
    let Some(path) = std::env::var_os("PGAC_FAKE_SOCKET") else {
        return;
    };
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    println!("\nlistening");
    for _ in 0..2 {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            // A startup message: answer nothing more, close.
            if got.len() >= 8 {
                break;
            }
        }
        println!("received {}", got.len());
    }
}

#[test]
fn a_socket_of_another_user_gets_nothing() {
    let dir = TempDir::shared("peer");
    std::os::unix::fs::chown(&dir.0, Some(NOBODY), Some(NOBODY)).unwrap();
    let port = 5999;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fake_socket_server_child", "--nocapture"])
        .env("PGAC_FAKE_SOCKET", Target::socket_path(&dir.0, port))
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = |prefix: &str| loop {
        let line = lines.next().expect("child output").unwrap();
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest.to_string();
        }
    };
    next_line("listening");
    let target = Target::Unix {
        dir: dir.0.clone(),
        port,
    };
    // requirepeer = postgres: refused before anything is sent, naming both users.
    let e = Client::connect(&params(target.clone()), None).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, PgError::Connect { .. }), "{e:?}");
    assert!(text.contains("nobody (uid 65534)"), "{text}");
    assert!(text.contains("requirepeer postgres"), "{text}");
    assert!(!text.contains('\n'));
    assert_eq!(next_line("received "), "0", "bytes sent to the impostor");
    // The same socket without the check (requirepeer = ""): the startup message goes out,
    // which proves the recorder would have seen it.
    let mut p = params(target);
    p.requirepeer = None;
    assert!(Client::connect(&p, None).is_err());
    assert_ne!(next_line("received "), "0");
    assert!(child.wait().unwrap().success());
}

// ---------------------------------------------------------------------------------------
// Fake TCP servers for S2 and S4.

/// What a fake server does after reading the startup message.
#[derive(Clone, Copy, Debug)]
enum Script {
    /// Asks for a cleartext password, then records what comes.
    Cleartext,
    /// Asks for an md5 password, then records what comes.
    Md5,
    /// Trust, then ParameterStatus messages without end.
    ParameterFlood,
    /// Trust, a normal startup, then answers every query with a 200 MB DataRow.
    HugeRow,
    /// Trust, a normal startup, `one = 1` for every query.
    Good,
    /// SCRAM-SHA-256 with a valid server-first message asking for 4 294 967 295 iterations
    /// (hours of PBKDF2 in the one thread), then records what comes.
    ScramIterations,
}

/// How a fake server answers SSLRequest.
#[derive(Clone, Copy, PartialEq)]
enum Tls {
    Decline,
    SelfSigned,
}

/// Bytes each connection received after the startup message (one entry per connection).
type Received = Arc<Mutex<Vec<Vec<u8>>>>;

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn auth(code: u32, extra: &[u8]) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(extra);
    msg(b'R', &body)
}

fn read_exact_or_eof(s: &mut dyn Read, n: usize) -> Option<Vec<u8>> {
    let mut b = vec![0; n];
    s.read_exact(&mut b).ok()?;
    Some(b)
}

/// One frontend message: tag and body.
fn read_message(s: &mut dyn Read) -> Option<(u8, Vec<u8>)> {
    let head = read_exact_or_eof(s, 5)?;
    let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
    Some((head[0], read_exact_or_eof(s, len.checked_sub(4)?)?))
}

fn ready(s: &mut dyn Write) -> std::io::Result<()> {
    let mut out = auth(0, b"");
    out.extend(msg(b'S', b"server_version\x0015.4\x00"));
    out.extend(msg(b'K', &[0, 0, 0, 42, 0, 0, 0, 7]));
    out.extend(msg(b'Z', b"I"));
    s.write_all(&out)
}

fn row_description() -> Vec<u8> {
    let mut desc = 1u16.to_be_bytes().to_vec();
    desc.extend_from_slice(b"one\0");
    desc.extend_from_slice(&[
        0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4, 255, 255, 255, 255, 0, 0,
    ]);
    msg(b'T', &desc)
}

fn play(s: &mut dyn ReadWrite, script: Script, received: &Received, slot: usize) {
    let record = |b: &[u8]| received.lock().unwrap()[slot].extend_from_slice(b);
    // Until the client hangs up, or its first message (then hang up: the client's error).
    let rest = |s: &mut dyn ReadWrite| {
        let mut buf = [0u8; 4096];
        if let Ok(n) = s.read(&mut buf) {
            record(&buf[..n]);
        }
    };
    match script {
        Script::Cleartext => {
            let _ = s.write_all(&auth(3, b""));
            rest(s);
        }
        Script::Md5 => {
            let _ = s.write_all(&auth(5, &[1, 2, 3, 4]));
            rest(s);
        }
        Script::ScramIterations => {
            let _ = s.write_all(&auth(10, b"SCRAM-SHA-256\0\0"));
            let Some((b'p', body)) = read_message(s) else {
                return;
            };
            // "SCRAM-SHA-256\0", length, "n,,n=,r=NONCE"
            let text = String::from_utf8_lossy(&body).into_owned();
            let nonce = text.rsplit("r=").next().unwrap_or("").to_string();
            let first = format!("r={nonce}server,s=c2FsdA==,i=4294967295");
            let _ = s.write_all(&auth(11, first.as_bytes()));
            rest(s);
        }
        Script::ParameterFlood => {
            let _ = s.write_all(&auth(0, b""));
            for i in 0..1_000_000u32 {
                let m = msg(b'S', format!("p{i}\0v\0").as_bytes());
                if s.write_all(&m).is_err() {
                    break;
                }
            }
        }
        Script::HugeRow | Script::Good => {
            if ready(s).is_err() {
                return;
            }
            while let Some((tag, body)) = read_message(s) {
                record(&[tag]);
                record(&body);
                if tag != b'Q' {
                    break;
                }
                let mut out = row_description();
                if let Script::Good = script {
                    out.extend(msg(b'D', &[0, 1, 0, 0, 0, 1, b'1']));
                    out.extend(msg(b'C', b"SELECT 1\0"));
                    out.extend(msg(b'Z', b"I"));
                    if s.write_all(&out).is_err() {
                        break;
                    }
                    continue;
                }
                // 200 MB announced, then streamed until the client hangs up.
                let total: u32 = 200_000_000;
                out.push(b'D');
                out.extend_from_slice(&(total + 4).to_be_bytes());
                out.extend_from_slice(&[0, 1]);
                out.extend_from_slice(&(total as i32 - 6).to_be_bytes());
                let chunk = vec![b'x'; 1 << 16];
                let mut sent = 0usize;
                if s.write_all(&out).is_ok() {
                    while sent < total as usize && s.write_all(&chunk).is_ok() {
                        sent += chunk.len();
                    }
                }
                break;
            }
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A self-signed certificate for localhost: (DER certificate, DER key).
fn self_signed() -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

/// Serves one connection per script, in order, on a thread; the port and the recordings.
fn fake_server(tls: Tls, scripts: Vec<Script>) -> (u16, Received, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::new(Mutex::new(vec![Vec::new(); scripts.len()]));
    let rec = received.clone();
    let handle = std::thread::spawn(move || {
        for (slot, script) in scripts.into_iter().enumerate() {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let Some(first) = read_exact_or_eof(&mut s, 8) else {
                continue;
            };
            let mut len = u32::from_be_bytes(first[..4].try_into().unwrap()) as usize;
            let ssl_request = len == 8 && first[4..8] == [0x04, 0xd2, 0x16, 0x2f];
            if ssl_request {
                if tls == Tls::SelfSigned {
                    s.write_all(b"S").unwrap();
                    let (cert, key) = self_signed();
                    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(
                        vec![cert.into()],
                        rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
                    )
                    .unwrap();
                    let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, s);
                    let Some(head) = read_exact_or_eof(&mut tls, 4) else {
                        continue;
                    };
                    len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
                    let _startup = read_exact_or_eof(&mut tls, len - 4);
                    play(&mut tls, script, &rec, slot);
                    continue;
                }
                s.write_all(b"N").unwrap();
                let Some(head) = read_exact_or_eof(&mut s, 4) else {
                    continue;
                };
                len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
                let _startup = read_exact_or_eof(&mut s, len - 4);
            } else {
                let _startup = read_exact_or_eof(&mut s, len - 8);
            }
            play(&mut s, script, &rec, slot);
        }
    });
    (port, received, handle)
}

fn tcp(port: u16) -> Target {
    Target::Tcp {
        host: "127.0.0.1".to_string(),
        port,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------
// S2: which authentication is acceptable.

#[test]
fn a_server_declining_tls_gets_no_cleartext_password() {
    let (port, received, server) = fake_server(
        Tls::Decline,
        vec![Script::Cleartext, Script::Md5, Script::Md5],
    );
    // Defaults (sslmode prefer, require_auth unset): cleartext over plain TCP is refused.
    let e = Client::connect(&params(tcp(port)), None).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("cleartext password"), "{text}");
    assert!(text.contains("require_auth"), "{text}");
    assert!(!text.contains('\n'));
    // md5 refused where require_auth does not list it (the default allows md5, security.md).
    let mut p = params(tcp(port));
    p.require_auth = Some(vec![PgAuthMethod::ScramSha256]);
    let e = Client::connect(&p, None).unwrap_err();
    assert!(e.to_string().contains("md5 authentication"), "{e}");
    assert!(
        e.to_string().contains("require_auth = \"scram-sha-256\""),
        "{e}"
    );
    // The recorder works: md5 allowed (the default) sends the salted hash, never the secret.
    let _ = Client::connect(&params(tcp(port)), None);
    server.join().unwrap();
    let got = received.lock().unwrap();
    assert!(
        got[0].is_empty(),
        "sent after the cleartext request: {:?}",
        got[0]
    );
    assert!(
        got[1].is_empty(),
        "sent after the md5 request: {:?}",
        got[1]
    );
    assert!(got[2].starts_with(b"p"), "{:?}", got[2]);
    assert!(contains(&got[2], b"md5"));
    for g in got.iter() {
        assert!(!contains(g, SECRET.as_bytes()));
    }
}

/// S4: a server asking for four billion SCRAM iterations would hold the one thread for hours
/// (beyond SIGTERM); the count is bounded and the connection refused at once.
#[test]
fn a_server_asking_four_billion_scram_iterations_is_refused_at_once() {
    let (port, received, server) = fake_server(Tls::Decline, vec![Script::ScramIterations]);
    let started = Instant::now();
    let e = Client::connect(&params(tcp(port)), None).unwrap_err();
    let took = started.elapsed();
    let text = e.to_string();
    assert!(text.contains("4294967295 iterations"), "{text}");
    assert!(text.contains("1000000"), "{text}");
    assert!(!text.contains('\n'));
    assert!(took < Duration::from_secs(5), "refused after {took:?}");
    server.join().unwrap();
    assert!(
        received.lock().unwrap()[0].is_empty(),
        "no client-final sent"
    );
}

#[test]
fn a_self_signed_tls_server_gets_no_cleartext_password_under_require() {
    let (port, received, server) = fake_server(Tls::SelfSigned, vec![Script::Cleartext]);
    let mut p = params(tcp(port));
    p.sslmode = SslMode::Require;
    let e = Client::connect(&p, None).unwrap_err();
    assert!(e.to_string().contains("cleartext password"), "{e}");
    assert!(e.to_string().contains("verify-full"), "{e}");
    server.join().unwrap();
    assert!(received.lock().unwrap()[0].is_empty());
}

#[test]
fn scram_sha_256_plus_against_postgresql_over_tls() {
    let hba = "\
local all all scram-sha-256
hostssl all all 127.0.0.1/32 scram-sha-256
";
    let c = Cluster::start(Options {
        hba: Some(hba.to_string()),
        tls: true,
        ..Options::default()
    });
    let mut p = params(tcp(c.port));
    p.user = SUPERUSER.to_string();
    p.password = Some(SUPERPASS.to_string());
    p.channel_binding = ChannelBinding::Require;
    // require (certificate not checked) and verify-full: both bind the channel.
    for (mode, root) in [
        (SslMode::Require, None),
        (SslMode::VerifyFull, c.ca_file.clone()),
    ] {
        p.sslmode = mode;
        p.sslrootcert = root;
        let mut client = Client::connect(&p, None).unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(client.is_tls());
        let rows = client
            .query("select 1 as one", Duration::from_secs(10), None)
            .unwrap();
        assert_eq!(rows.len(), 1);
        client.close();
    }
    // A wrong password through SCRAM-SHA-256-PLUS: the server's refusal.
    p.password = Some("wrong".to_string());
    let e = Client::connect(&p, None).unwrap_err();
    assert_eq!(e.sqlstate(), Some("28P01"), "{e}");
    // require where TLS cannot be: a Unix socket, or sslmode prefer. Refused before connecting.
    p.password = Some(SUPERPASS.to_string());
    for (target, mode) in [
        (
            Target::Unix {
                dir: c.dir.clone(),
                port: c.port,
            },
            SslMode::Require,
        ),
        (tcp(c.port), SslMode::Prefer),
    ] {
        p.target = target;
        p.sslmode = mode;
        let e = Client::connect(&p, None).unwrap_err();
        assert!(e.to_string().contains("channel_binding"), "{e}");
        assert!(e.to_string().contains("nothing was sent"), "{e}");
    }
    // The real server's socket, owned by the postgres user, passes the default requirepeer
    // (unset: "postgres", read from this host's /etc/passwd) through the pool.
    let mut cfg = Config::default().postgres;
    cfg.host = Some(c.dir.display().to_string());
    cfg.port = c.port;
    cfg.user = Some(SUPERUSER.into());
    cfg.password = Some(SUPERPASS.into());
    let mut pool = Pool::with_env(&cfg, LibpqEnv::read());
    let rows = pool
        .with_client("postgres", 0, None, |c| {
            c.query("select 1 as one", Duration::from_secs(10), None)
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
}

// ---------------------------------------------------------------------------------------
// S4: bounded input.

#[test]
fn floods_and_huge_rows_fail_one_query_and_the_next_cycle_works() {
    let (port, _, server) = fake_server(
        Tls::Decline,
        vec![Script::ParameterFlood, Script::HugeRow, Script::Good],
    );
    let mut cfg = Config::default().postgres;
    cfg.host = Some("127.0.0.1".into());
    cfg.port = port;
    cfg.user = Some("mon".into());
    let mut pool = Pool::with_env(&cfg, LibpqEnv::default());
    let q = |c: &mut Client| c.query("select 1 as one", Duration::from_secs(10), None);
    // The flood before authentication completes: the connection attempt fails.
    let e = pool.with_client("postgres", 0, None, q).unwrap_err();
    assert!(e.to_string().contains("256 parameter messages"), "{e}");
    // After the backoff: the 200 MB DataRow fails that query, on its header.
    let s = 1_000_000_000;
    let e = pool.with_client("postgres", 2 * s, None, q).unwrap_err();
    assert!(e.to_string().contains("16777216 byte limit"), "{e}");
    assert!(!e.to_string().contains('\n'));
    assert_eq!(pool.open_count(), 0, "the connection is closed");
    // The next cycle, against a good server, works.
    let rows = pool.with_client("postgres", 10 * s, None, q).unwrap();
    assert_eq!(rows.iter().next().unwrap().get_i64("one").unwrap(), Some(1));
    drop(pool);
    server.join().unwrap();
}

/// `once`, the shipped binary, against each hostile server: one clear line, and a peak RSS
/// (the kernel's maxrss of that process) far below the unit's MemoryMax.
#[test]
fn the_binary_stays_small_against_a_flood_and_a_200_mb_row() {
    let (port, _, server) =
        fake_server(Tls::Decline, vec![Script::ParameterFlood, Script::HugeRow]);
    let dir = TempDir::new("pgsec-once");
    let mut peaks = Vec::new();
    for expected in ["256 parameter messages", "16777216 byte limit"] {
        let cfg = dir.0.join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "[collector]\nstate_dir = \"{}\"\n[logging]\nformat = \"text\"\n\
                 [postgres]\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"mon\"\n",
                dir.0.display()
            ),
        )
        .unwrap();
        // Waited for with wait4 below (for its rusage), not with Child::wait.
        #[allow(clippy::zombie_processes)]
        let child = Command::new(BIN)
            .args(["once", "-c"])
            .arg(&cfg)
            .args(["--only", "pg_server"])
            .env_remove("PGPASSWORD")
            .env_remove("PGHOST")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut stderr = String::new();
        child.stderr.unwrap().read_to_string(&mut stderr).unwrap();
        let maxrss_kib = wait_maxrss(pid);
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(expected)).collect();
        assert!(!lines.is_empty(), "{stderr}");
        peaks.push(maxrss_kib);
        eprintln!("once against {expected:?}: peak RSS {maxrss_kib} KiB");
        assert!(maxrss_kib < 64 << 10, "peak RSS {maxrss_kib} KiB");
    }
    server.join().unwrap();
    eprintln!("peak RSS (KiB): {peaks:?}");
}

/// Waits for `pid` and returns its peak resident set (`ru_maxrss`, KiB).
fn wait_maxrss(pid: i32) -> i64 {
    let mut status = 0;
    // SAFETY: wait4 writes to the two out-pointers, both valid for the call; pid is our child,
    // not waited for by anything else (std's Child was consumed without wait).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    usage.ru_maxrss
}
