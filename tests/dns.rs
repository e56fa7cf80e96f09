//! Name resolution inside the poll loop (docs/protocol.md, "Transport", "Name resolution"),
//! against a real DNS server in this process: UDP and TCP on 127.53.x.y:53. The resolver is
//! driven directly (search list, truncation → TCP, a silent server, the deadline), and the
//! binary is run in a private mount namespace (`unshare -m`, as root) with `/etc/resolv.conf`
//! and `/etc/hosts` bind-mounted over, as protocol.md says tests reach a DNS server.
mod support;

use pganalytics_collector::proto::dns::conf::ResolvConf;
use pganalytics_collector::proto::dns::resolve::{ResolveError, resolve_with};
use pganalytics_collector::proto::dns::{RCODE_NXDOMAIN, encode_reply, parse_query};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::backend::{Backend, Options};
use support::tmp::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");

/// What the test server does with a question.
#[derive(Clone, Debug)]
enum Act {
    /// Nothing: the query is read and never answered.
    Silent,
    NxDomain,
    /// These addresses (those of the asked family); none is an empty "no data" answer.
    Addrs(Vec<IpAddr>),
    /// Over UDP an empty reply with TC set; over TCP the addresses.
    Truncated(Vec<IpAddr>),
    /// First a forged reply (another query id, the first address), then the real one with
    /// the rest: an off-path spoofing attempt that guessed wrong.
    ForgedFirst(Vec<IpAddr>),
}

type Rule = Arc<dyn Fn(&str, u16) -> Act + Send + Sync>;
/// A question as the server saw it: name, type, and "udp" or "tcp".
type Question = (String, u16, &'static str);

/// A DNS server on UDP and TCP port 53 of a fresh loopback address; records every question
/// as `(name, qtype, "udp" | "tcp")`.
struct Dns {
    addr: IpAddr,
    queries: Arc<Mutex<Vec<Question>>>,
    stop: Arc<AtomicBool>,
}

fn answer(query: &[u8], act: &Act, tcp: bool) -> Option<Vec<u8>> {
    let (_, _, qtype) = parse_query(query).ok()?;
    let family = |v: &Vec<IpAddr>| -> Vec<IpAddr> {
        v.iter()
            .copied()
            .filter(|a| a.is_ipv4() == (qtype == 1))
            .collect()
    };
    match act {
        Act::Silent => None,
        Act::NxDomain => encode_reply(query, &[], &[], false, RCODE_NXDOMAIN).ok(),
        Act::Addrs(v) => encode_reply(query, &[], &family(v), false, 0).ok(),
        Act::Truncated(v) if tcp => encode_reply(query, &[], &family(v), false, 0).ok(),
        Act::Truncated(_) => encode_reply(query, &[], &[], true, 0).ok(),
        Act::ForgedFirst(v) => encode_reply(query, &[], &family(&v[1..].to_vec()), false, 0).ok(),
    }
}

impl Dns {
    fn start(rule: impl Fn(&str, u16) -> Act + Send + Sync + 'static) -> Dns {
        let rule: Rule = Arc::new(rule);
        let (udp, tcp, addr) = loop {
            let n = u32::from_ne_bytes(rand4());
            let addr = IpAddr::from([127, 53, (n >> 8) as u8, (n as u8).max(1)]);
            let Ok(udp) = UdpSocket::bind((addr, 53)) else {
                continue;
            };
            let Ok(tcp) = TcpListener::bind((addr, 53)) else {
                continue;
            };
            break (udp, tcp, addr);
        };
        let queries = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let (q, s, r) = (queries.clone(), stop.clone(), rule.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                let Ok((_, name, qtype)) = parse_query(&buf[..n]) else {
                    continue;
                };
                q.lock().unwrap().push((name.clone(), qtype, "udp"));
                if let Act::ForgedFirst(v) = r(&name, qtype) {
                    let mut forged = buf[..n].to_vec();
                    forged[1] = forged[1].wrapping_add(1);
                    if let Ok(f) = encode_reply(&forged, &[], &v[..1], false, 0) {
                        let _ = udp.send_to(&f, from);
                    }
                }
                if let Some(reply) = answer(&buf[..n], &r(&name, qtype), false) {
                    let _ = udp.send_to(&reply, from);
                }
            }
        });
        let (q, s) = (queries.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((mut c, _)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut len = [0u8; 2];
                if c.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if c.read_exact(&mut msg).is_err() {
                    continue;
                }
                let Ok((_, name, qtype)) = parse_query(&msg) else {
                    continue;
                };
                q.lock().unwrap().push((name.clone(), qtype, "tcp"));
                if let Some(reply) = answer(&msg, &rule(&name, qtype), true) {
                    let mut out = (reply.len() as u16).to_be_bytes().to_vec();
                    out.extend_from_slice(&reply);
                    let _ = c.write_all(&out);
                }
            }
        });
        Dns {
            addr,
            queries,
            stop,
        }
    }

    fn queries(&self) -> Vec<Question> {
        self.queries.lock().unwrap().clone()
    }

    /// Waits (`within` at most) until a question has arrived.
    fn asked(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if !self.queries().is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn conf(&self) -> ResolvConf {
        ResolvConf {
            nameservers: vec![self.addr],
            ..ResolvConf::default()
        }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn rand4() -> [u8; 4] {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    b
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// --- the resolver, driven directly -----------------------------------------------------------

#[test]
fn the_search_list_is_followed_and_a_truncated_reply_is_asked_again_over_tcp() {
    let dns = Dns::start(|name, qtype| match (name, qtype) {
        ("db.a.test", _) => Act::NxDomain,
        ("db.b.test", 1) => Act::Truncated(vec![ip("192.0.2.7")]),
        ("db.b.test", _) => Act::Addrs(vec![ip("2001:db8::7")]),
        _ => Act::NxDomain,
    });
    let conf = ResolvConf {
        search: vec!["a.test".into(), "b.test".into()],
        ..dns.conf()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let addrs = resolve_with("db", 5432, b"", &conf, deadline, None).unwrap();
    assert_eq!(
        addrs,
        vec![
            SocketAddr::new(ip("2001:db8::7"), 5432),
            SocketAddr::new(ip("192.0.2.7"), 5432)
        ],
        "IPv6 first, then the A record that came over TCP"
    );
    let q = dns.queries();
    assert!(q.contains(&("db.a.test".into(), 1, "udp")), "{q:?}");
    assert!(q.contains(&("db.b.test".into(), 1, "tcp")), "{q:?}");
    assert!(
        !q.iter().any(|(n, ..)| n == "db"),
        "stopped at the first answer: {q:?}"
    );
}

#[test]
fn a_silent_server_gives_way_to_the_next_and_the_callers_deadline_is_kept() {
    let silent = Dns::start(|_, _| Act::Silent);
    let good = Dns::start(|_, qtype| match qtype {
        1 => Act::Addrs(vec![ip("192.0.2.9")]),
        _ => Act::Addrs(vec![]),
    });
    let conf = ResolvConf {
        nameservers: vec![silent.addr, good.addr],
        timeout_secs: 1,
        attempts: 1,
        ..ResolvConf::default()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let addrs = resolve_with("db.example", 443, b"", &conf, deadline, None).unwrap();
    assert_eq!(addrs, vec![SocketAddr::new(ip("192.0.2.9"), 443)]);
    assert!(!silent.queries().is_empty());

    // Only the silent server, a 5 s timeout per server and a deadline in 300 ms: the deadline
    // ends the wait (Timeout), not the server's timeout.
    let conf = ResolvConf {
        timeout_secs: 5,
        ..silent.conf()
    };
    let deadline = Instant::now() + Duration::from_millis(300);
    let e = resolve_with("db.example", 443, b"", &conf, deadline, None).unwrap_err();
    assert_eq!(e, ResolveError::Timeout);

    // A name that has no address anywhere is one clear line naming it.
    let nx = Dns::start(|_, _| Act::NxDomain);
    let e = resolve_with(
        "nope.example",
        1,
        b"",
        &nx.conf(),
        deadline + Duration::from_secs(10),
        None,
    )
    .unwrap_err();
    let ResolveError::Failed(m) = e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains("\"nope.example\" has no address") && !m.contains('\n'),
        "{m}"
    );
}

#[test]
fn a_reply_with_another_query_id_is_not_taken() {
    let dns = Dns::start(|_, qtype| match qtype {
        1 => Act::ForgedFirst(vec![ip("203.0.113.66"), ip("192.0.2.10")]),
        _ => Act::Addrs(vec![]),
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let addrs = resolve_with("db.example", 80, b"", &dns.conf(), deadline, None).unwrap();
    assert_eq!(addrs, vec![SocketAddr::new(ip("192.0.2.10"), 80)]);
}

#[test]
fn numeric_addresses_and_the_hosts_file_are_answered_without_asking() {
    let dns = Dns::start(|_, _| Act::Silent);
    let deadline = Instant::now() + Duration::from_secs(10);
    let hosts = b"10.1.2.3 db.lab db\n::1 db\n";
    let addrs = resolve_with("DB", 5432, hosts, &dns.conf(), deadline, None).unwrap();
    assert_eq!(
        addrs,
        vec![
            SocketAddr::new(ip("::1"), 5432),
            SocketAddr::new(ip("10.1.2.3"), 5432)
        ]
    );
    let addrs = resolve_with("192.0.2.1", 1, b"", &dns.conf(), deadline, None).unwrap();
    assert_eq!(addrs, vec![SocketAddr::new(ip("192.0.2.1"), 1)]);
    assert!(dns.queries().is_empty());
}

// --- the binary, in a private mount namespace ------------------------------------------------

/// `BIN args…` with `resolv` as /etc/resolv.conf and `hosts` as /etc/hosts, in a private mount
/// namespace: the host's files are untouched.
fn namespaced(dir: &TempDir, resolv: &str, hosts: &str, args: &[&str]) -> Command {
    let r = dir.file("resolv.conf", resolv);
    let h = dir.file("hosts", hosts);
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@""#)
        .arg("sh")
        .arg(&r)
        .arg(&h)
        .arg(BIN)
        .args(args)
        .env_remove("PGANALYTICS_CONFIG")
        .env_remove("PGHOST")
        .env_remove("PGPORT");
    c
}

/// A configuration with sysstat alone pushing to `url` (token provisioned), plus `extra`.
fn config(dir: &TempDir, b: &Backend, url: &str, extra: &str) -> PathBuf {
    let id = "c-dns-test";
    dir.file("collector.id", &format!("{id}\n"));
    dir.file(
        "collector.token",
        &format!("{}\n", b.issue_token(id, "dns-host")),
    );
    let ca = b.certs.write(&dir.0).ca;
    let mut text = format!(
        "[collector]\nhostname = \"dns-host\"\ninterval = 0.2\npush_interval = 0.2\n\
         config_pull_interval = 0\nstate_dir = {:?}\n\
         [backend]\nurl = {url:?}\nconnect_timeout_secs = 5\nrequest_timeout_secs = 5\n\
         retry_initial_secs = 0.2\nretry_max_secs = 1\n\
         [tls]\nca_file = {:?}\n[logging]\nformat = \"json\"\nlevel = \"debug\"\n",
        dir.0.display().to_string(),
        ca.display().to_string()
    );
    for t in ["disk_usage", "pg_log"] {
        text.push_str(&format!("[{t}]\nenabled = false\n"));
    }
    text.push_str(extra);
    dir.file("collector.toml", &text)
}

fn resolv_for(dns: &Dns, extra: &str) -> String {
    format!("nameserver {}\n{extra}", dns.addr)
}

#[test]
fn the_push_reaches_the_backend_by_a_name_only_dns_knows_over_tcp_after_truncation() {
    let b = Backend::start(Options::default());
    let port = b.addr.port();
    // `localhost` is not in the namespace's hosts file: only the DNS server knows it, after
    // the search domain's NXDOMAIN, and its A record comes over TCP (the UDP reply is cut).
    let dns = Dns::start(|name, qtype| match (name, qtype) {
        ("localhost", 1) => Act::Truncated(vec![ip("127.0.0.1")]),
        ("localhost", _) => Act::Addrs(vec![]),
        _ => Act::NxDomain,
    });
    let dir = TempDir::new("dnspush");
    let cfg = config(
        &dir,
        &b,
        &format!("https://localhost:{port}"),
        "[pg_stats]\nenabled = false\n[pg_query_stats]\nenabled = false\n\
         [pg_replication]\nenabled = false\n[pg_server]\nenabled = false\n",
    );
    let out = namespaced(
        &dir,
        &resolv_for(&dns, "search corp.test\noptions timeout:2\n"),
        "# empty\n",
        &["run", "--once", "-c", cfg.to_str().unwrap()],
    )
    .stdout(Stdio::null())
    .output()
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{log}", out.status);
    assert!(!b.batches().is_empty(), "{log}");
    let q = dns.queries();
    assert!(
        q.contains(&("localhost.corp.test".into(), 1, "udp")),
        "{q:?}"
    );
    assert!(q.contains(&("localhost".into(), 1, "tcp")), "{q:?}");
}

/// The PostgreSQL host's name server never answers: `once` gives up at `[postgres]
/// connect_timeout_secs` with one clear line.
#[test]
fn once_with_a_silent_name_server_ends_at_the_postgres_connect_timeout() {
    let b = Backend::start(Options::default());
    let dns = Dns::start(|_, _| Act::Silent);
    let dir = TempDir::new("dnsonce");
    let cfg = config(
        &dir,
        &b,
        &b.url,
        "[postgres]\nhost = \"db.silent.test\"\nconnect_timeout_secs = 2\n",
    );
    let t = Instant::now();
    let out = namespaced(
        &dir,
        &resolv_for(&dns, "options timeout:30 attempts:5\n"),
        "127.0.0.1 localhost\n",
        &["once", "-c", cfg.to_str().unwrap()],
    )
    .stdout(Stdio::null())
    .output()
    .unwrap();
    let took = t.elapsed();
    let log = String::from_utf8_lossy(&out.stderr);
    eprintln!("once with a silent name server took {took:?}");
    assert!(dns.asked(Duration::ZERO), "{log}");
    assert!(
        log.contains("timeout during name resolution"),
        "the error says what timed out: {log}"
    );
    // 2 s connect timeout (not 5 attempts × 30 s), with room for a loaded machine.
    assert!(took < Duration::from_secs(6), "{took:?}\n{log}");
}

/// `run` is waiting on a name server that never answers (the PostgreSQL host's): SIGTERM ends
/// the wait at once, the last push goes out, and the process exits 0 within 1 s.
#[test]
fn run_ends_within_a_second_of_sigterm_while_a_name_server_is_silent() {
    let b = Backend::start(Options::default());
    let dns = Dns::start(|_, _| Act::Silent);
    let dir = TempDir::new("dnsterm");
    let cfg = config(
        &dir,
        &b,
        &b.url,
        "[postgres]\nhost = \"db.silent.test\"\nconnect_timeout_secs = 60\n",
    );
    let mut child = namespaced(
        &dir,
        &resolv_for(&dns, "options timeout:30 attempts:5\n"),
        "127.0.0.1 localhost\n",
        &["run", "-c", cfg.to_str().unwrap()],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    assert!(
        dns.asked(Duration::from_secs(20)),
        "the collector asks the name server"
    );
    let t = Instant::now();
    rustix_kill(child.id());
    let deadline = t + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = t.elapsed();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    eprintln!("run exited {took:?} after SIGTERM");
    assert!(status.success(), "{status:?}\n{log}");
    assert!(took < Duration::from_secs(1), "{took:?}\n{log}");
    assert!(log.contains("stopping: last push"), "{log}");
}

fn rustix_kill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
}
