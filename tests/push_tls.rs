//! The push connection against minimal in-process servers: a rustls server (TLS 1.3, TLS
//! 1.2 only, client certificate required) and a plaintext loopback backend for `run --once`.

use pganalytics_collector::config::BackendUrl;
use pganalytics_collector::proto::tls;
use pganalytics_collector::push::conn::{Conn, ConnError, ConnSettings, Request};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Pki {
    ca: String,
    cert: String,
    key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "push test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.signed_by(&key, &issuer).unwrap();
    let ckey = KeyPair::generate().unwrap();
    let cparams = CertificateParams::new(vec!["collector".to_string()]).unwrap();
    let ccert = cparams.signed_by(&ckey, &issuer).unwrap();
    Pki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
        client_cert: ccert.pem(),
        client_key: ckey.serialize_pem(),
    }
}

#[derive(Default)]
struct Seen {
    accepts: AtomicUsize,
    requests: Mutex<Vec<(String, Vec<u8>)>>,
}

/// Reads one request (head + Content-Length body); `None` at the end of the connection.
fn read_request(r: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((head, body))
}

fn serve_conn<S: Read + Write>(s: S, seen: &Seen) {
    serve_with(s, seen, &|_, _, _| {
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}".to_vec()
    });
}

type Responder = dyn Fn(usize, &str, &[u8]) -> Vec<u8> + Send + Sync;

/// Serves requests on one connection, answering each with `reply(index, head, body)`.
fn serve_with<S: Read + Write>(s: S, seen: &Seen, reply: &Responder) {
    let mut r = BufReader::new(s);
    while let Some((head, body)) = read_request(&mut r) {
        let n = {
            let mut reqs = seen.requests.lock().unwrap();
            reqs.push((head.clone(), body.clone()));
            reqs.len() - 1
        };
        let reply = reply(n, &head, &body);
        if r.get_mut().write_all(&reply).is_err() {
            return;
        }
        let _ = r.get_mut().flush();
    }
}

/// A TLS server on 127.0.0.1 (one connection at a time) with the given versions and,
/// optionally, a required client certificate.
fn tls_server(
    p: &Pki,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client_ca: bool,
) -> (u16, Arc<Seen>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = vec![CertificateDer::from_pem_slice(p.cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(p.key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = if client_ca {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(p.ca.as_bytes()).unwrap())
            .unwrap();
        let v =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(v)
    } else {
        builder.with_no_client_auth()
    };
    let config = Arc::new(builder.with_single_cert(certs, key).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            s2.accepts.fetch_add(1, Ordering::SeqCst);
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let tls = rustls::StreamOwned::new(conn, stream);
            serve_conn(tls, &s2);
        }
    });
    (port, seen)
}

fn settings(p: &Pki, dir: &std::path::Path, port: u16, identity: bool) -> ConnSettings {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &p.ca).unwrap();
    let id = identity.then(|| {
        let (c, k) = (dir.join("client.crt"), dir.join("client.key"));
        std::fs::write(&c, &p.client_cert).unwrap();
        std::fs::write(&k, &p.client_key).unwrap();
        tls::load_identity(&c, &k).unwrap()
    });
    let config = tls::client_config_with_identity(
        tls::Verify::Full(tls::load_roots(&ca).unwrap()),
        &[&rustls::version::TLS13],
        id,
    )
    .unwrap();
    ConnSettings {
        endpoint: BackendUrl::parse(&format!("https://localhost:{port}")).unwrap(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        tls: Some(config),
    }
}

/// The connection settings the collector builds from its configuration (`[backend] url`,
/// `[tls] ca_file`): the production TLS policy, not one chosen by the test.
fn production_settings(p: &Pki, dir: &std::path::Path, port: u16) -> ConnSettings {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &p.ca).unwrap();
    let text = format!(
        "[collector]\nstate_dir = {:?}\n[backend]\nurl = \"https://localhost:{port}\"\n\
         [tls]\nca_file = {:?}\n",
        dir.display().to_string(),
        ca.display().to_string()
    );
    let loaded = pganalytics_collector::config::parse_str("test.toml", &text, &|_| None)
        .unwrap_or_else(|e| panic!("{e:?}"));
    ConnSettings::from_config(&loaded.config).unwrap()
}

fn tmp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pgac-pushtls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn post(conn: &mut Conn<'_>, body: &[u8]) -> Result<u16, ConnError> {
    let headers = [("Content-Type", "application/json")];
    let req = Request {
        method: "POST",
        path: "/api/v1/metrics/push",
        headers: &headers,
        body: Some(body),
    };
    conn.request(&req, None).map(|r| r.status)
}

#[test]
fn tls13_requests_share_one_kept_alive_connection() {
    let p = pki();
    let dir = tmp("ka");
    let (port, seen) = tls_server(&p, &[&rustls::version::TLS13], false);
    let mut conn = Conn::new(settings(&p, &dir, port, false), None);
    assert_eq!(post(&mut conn, b"{\"a\":1}").unwrap(), 202);
    assert_eq!(post(&mut conn, b"{\"a\":2}").unwrap(), 202);
    assert_eq!(seen.accepts.load(Ordering::SeqCst), 1);
    let reqs = seen.requests.lock().unwrap();
    assert_eq!(reqs.len(), 2);
    assert!(
        reqs[0]
            .0
            .starts_with("POST /api/v1/metrics/push HTTP/1.1\r\n")
    );
    assert!(reqs[0].0.contains("User-Agent: pganalytics-collector/"));
    assert_eq!(reqs[1].1, b"{\"a\":2}");
}

#[test]
fn a_tls12_only_server_is_refused_with_a_clear_message() {
    let p = pki();
    let dir = tmp("t12");
    let (port, seen) = tls_server(&p, &[&rustls::version::TLS12], false);
    // The settings the collector itself derives from its configuration: if its policy let
    // TLS 1.2 through, this request would succeed.
    let mut conn = Conn::new(production_settings(&p, &dir, port), None);
    let err = post(&mut conn, b"{}").unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "localhost:{port} offers no TLS 1.3: pganalytics-collector speaks TLS 1.3 only; upgrade the proxy"
        )
    );
    assert!(
        seen.requests.lock().unwrap().is_empty(),
        "no request over TLS 1.2"
    );
    // The same settings reach a TLS 1.3 server (so the failure above is the version alone).
    let (port13, _) = tls_server(&p, &[&rustls::version::TLS13], false);
    let mut conn = Conn::new(production_settings(&p, &dir, port13), None);
    assert_eq!(post(&mut conn, b"{}").unwrap(), 202);
}

#[test]
fn mtls_presents_the_client_certificate() {
    let p = pki();
    let dir = tmp("mtls");
    let (port, _) = tls_server(&p, &[&rustls::version::TLS13], true);
    let mut with = Conn::new(settings(&p, &dir, port, true), None);
    assert_eq!(post(&mut with, b"{}").unwrap(), 202);
    let mut without = Conn::new(settings(&p, &dir, port, false), None);
    let err = post(&mut without, b"{}").unwrap_err().to_string();
    assert!(err.contains(&format!("localhost:{port}")), "{err}");
}

#[test]
fn an_untrusted_certificate_names_the_fix() {
    let p = pki();
    let other = pki();
    let dir = tmp("untrusted");
    let (port, _) = tls_server(&p, &[&rustls::version::TLS13], false);
    let mut conn = Conn::new(settings(&other, &dir, port, false), None);
    let err = post(&mut conn, b"{}").unwrap_err().to_string();
    assert!(err.contains("ca_file"), "{err}");
}

/// `run --once` against a plaintext loopback backend with a shared secret: the push arrives
/// gzip-compressed with a valid envelope and the process exits 0.
#[test]
fn run_once_pushes_to_a_loopback_backend() {
    let dir = tmp("once");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream): Result<TcpStream, _> = stream else {
                return;
            };
            serve_conn(stream, &s2);
        }
    });
    let key = dir.join("jwt.key");
    std::fs::write(&key, "secret-0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nid = \"c-9\"\nstate_dir = \"{}\"\n[backend]\nurl = \"http://127.0.0.1:{port}\"\n[auth]\nmode = \"shared_secret\"\njwt_secret_file = \"{}\"\n[pg_stats]\nenabled = false\n[pg_query_stats]\nenabled = false\n[pg_log]\nenabled = false\n[pg_replication]\nenabled = false\n[pg_server]\nenabled = false\n",
            dir.join("state").display(),
            key.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pganalytics-collector"))
        .args(["run", "--once", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reqs = seen.requests.lock().unwrap();
    assert_eq!(reqs.len(), 1);
    let (head, body) = &reqs[0];
    assert!(head.contains("Content-Encoding: gzip"), "{head}");
    assert!(head.contains("Authorization: Bearer "), "{head}");
    let json = pganalytics_collector::proto::gzip::decompress(body, 1 << 24).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["collector_id"], "c-9");
    let types: Vec<&str> = v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"sysstat") && types.contains(&"collector_health"),
        "{types:?}"
    );
}

/// The daemon against a loopback backend: pushes fail twice (503) and are resent with the
/// same batch_id, the config pull is applied and persisted, SIGTERM ends it with exit 0.
#[test]
fn run_backs_off_resends_the_same_batch_pulls_config_and_stops_on_sigterm() {
    let dir = tmp("daemon");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s2 = seen.clone();
    let pushes = Arc::new(AtomicUsize::new(0));
    let p2 = pushes.clone();
    let responder: Arc<Responder> = Arc::new(move |_, head: &str, _: &[u8]| {
        if head.starts_with("GET /api/v1/config/c-9 ") {
            let doc =
                "[collector]\npush_interval = 0.4\n[backend]\nurl = \"https://evil.example\"\n";
            return format!(
                "HTTP/1.1 200 OK\r\nX-Config-Version: 3\r\nContent-Type: application/toml\r\nContent-Length: {}\r\n\r\n{doc}",
                doc.len()
            )
            .into_bytes();
        }
        if p2.fetch_add(1, Ordering::SeqCst) < 2 {
            return b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec();
        }
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec()
    });
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream): Result<TcpStream, _> = stream else {
                return;
            };
            let (s3, r3) = (s2.clone(), responder.clone());
            std::thread::spawn(move || serve_with(stream, &s3, &*r3));
        }
    });
    let key = dir.join("jwt.key");
    std::fs::write(&key, "secret-0123456789abcdef0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let state = dir.join("state");
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nid = \"c-9\"\nstate_dir = \"{}\"\ninterval = 0.2\npush_interval = 0.3\nconfig_pull_interval = 0.5\n[backend]\nurl = \"http://127.0.0.1:{port}\"\nretry_initial_secs = 0.05\nretry_max_secs = 0.2\ncompression = \"none\"\n[auth]\nmode = \"shared_secret\"\njwt_secret_file = \"{}\"\n[disk_usage]\nenabled = false\n[pg_stats]\nenabled = false\n[pg_query_stats]\nenabled = false\n[pg_log]\nenabled = false\n[pg_replication]\nenabled = false\n[pg_server]\nenabled = false\n",
            state.display(),
            key.display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pganalytics-collector"))
        .args(["run", "-c"])
        .arg(&config)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let delivered = |seen: &Seen| {
        seen.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(h, _)| h.starts_with("POST /api/v1/metrics/push"))
            .count()
            >= 5
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !(delivered(&seen) && state.join("remote-config.toml").exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no pushes/pull in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(6));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    let reqs = seen.requests.lock().unwrap();
    let ids: Vec<String> = reqs
        .iter()
        .filter(|(h, _)| h.starts_with("POST /api/v1/metrics/push"))
        .map(|(_, b)| {
            let v: serde_json::Value = serde_json::from_slice(b).unwrap();
            v["batch_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids[0], ids[1], "a resend keeps its batch_id");
    assert_eq!(ids[0], ids[2]);
    // First failure logged; the pulled key outside the allowed set warned about.
    assert!(stderr.contains("503"), "{stderr}");
    assert!(stderr.contains("backend.url"), "{stderr}");
    let remote = std::fs::read_to_string(state.join("remote-config.toml")).unwrap();
    assert!(
        remote.starts_with("# pulled from the backend; config version: 3\n"),
        "{remote}"
    );
    assert!(!remote.contains("evil"));
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_pganalytics-collector"))
        .args(["check-config", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("push_interval"))
        .unwrap();
    // The pulled 0.4 s is raised to the 10 s a backend may set at least (security rule S5).
    assert!(line.contains("= 10") && line.contains("pulled"), "{line}");
}

/// Security rule S9: bytes after a complete response close the connection. A hostile backend
/// (or proxy) appends a second, unrequested response to its first; reusing the connection
/// would hand that stale 418 to the next request as its answer.
#[test]
fn bytes_after_a_complete_response_close_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            s2.accepts.fetch_add(1, Ordering::SeqCst);
            serve_with(stream, &s2, &|n, _, _| {
                let mut r = b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}".to_vec();
                if n == 0 {
                    r.extend_from_slice(b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n");
                }
                r
            });
        }
    });
    let settings = ConnSettings {
        endpoint: BackendUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        tls: None,
    };
    let mut conn = Conn::new(settings, None);
    assert_eq!(post(&mut conn, b"{\"a\":1}").unwrap(), 202);
    assert_eq!(
        post(&mut conn, b"{\"a\":2}").unwrap(),
        202,
        "the smuggled reply was taken"
    );
    assert_eq!(
        seen.accepts.load(Ordering::SeqCst),
        2,
        "a new connection for the second"
    );
    assert_eq!(seen.requests.lock().unwrap().len(), 2);
}

/// Security rule S9, the slower variant: the unrequested response arrives after the
/// requested one, while the connection is idle; it must not become the next answer.
#[test]
fn an_unrequested_response_on_an_idle_connection_is_never_read_as_an_answer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepts = Arc::new(AtomicUsize::new(0));
    let a2 = accepts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let first = a2.fetch_add(1, Ordering::SeqCst) == 0;
            std::thread::spawn(move || {
                let mut r = BufReader::new(stream);
                while read_request(&mut r).is_some() {
                    let s = r.get_mut();
                    let _ = s.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}");
                    let _ = s.flush();
                    if first {
                        std::thread::sleep(Duration::from_millis(100));
                        let _ =
                            s.write_all(b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n");
                        let _ = s.flush();
                    }
                }
            });
        }
    });
    let settings = ConnSettings {
        endpoint: BackendUrl::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        tls: None,
    };
    let mut conn = Conn::new(settings, None);
    assert_eq!(post(&mut conn, b"{\"a\":1}").unwrap(), 202);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        post(&mut conn, b"{\"a\":2}").unwrap(),
        202,
        "the unrequested reply was taken"
    );
    assert_eq!(accepts.load(Ordering::SeqCst), 2);
}
