//! The resolver's driver: a host name to socket addresses within the caller's deadline, every
//! wait a [`wait_io`] on the socket and the signal fd (docs/protocol.md, "Transport", "Name
//! resolution"). A numeric address is returned as is; then `/etc/hosts`; then A and AAAA
//! queries over UDP (TCP when the reply is truncated) to the `resolv.conf` servers, name by
//! name of the search list, `attempts` rounds over the servers, `timeout` seconds per server.

use super::conf::{self, ResolvConf};
use super::{DnsError, RCODE_NXDOMAIN, RCODE_OK, TYPE_A, TYPE_AAAA};
use crate::proto::{IoError, connect_fd, read_plain, wait_io, write_plain};
use crate::sys::signals::Signals;
use rustix::event::PollFlags;
use rustix::fd::AsFd;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// The system's files.
pub const HOSTS: &str = "/etc/hosts";
/// The system's resolver configuration.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// The most of either file that is read.
const MAX_FILE: usize = 1 << 20;
/// The largest UDP reply read (a server that does not see EDNS sends at most 512).
const UDP_BUF: usize = 1232;

/// How a resolution failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The caller's deadline passed.
    Timeout,
    /// A stop signal arrived while waiting.
    Interrupted,
    /// The name has no address, or no server answered usefully: the message says which.
    Failed(String),
}

/// The addresses of `host` (a name, or a numeric address without brackets) with `port`,
/// IPv6 first, from the system's `/etc/hosts` and `/etc/resolv.conf`.
pub fn resolve(
    host: &str,
    port: u16,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<Vec<SocketAddr>, ResolveError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let hosts = crate::sys::file::read_capped(Path::new(HOSTS), MAX_FILE).unwrap_or_default();
    let resolv =
        crate::sys::file::read_capped(Path::new(RESOLV_CONF), MAX_FILE).unwrap_or_default();
    resolve_with(
        host,
        port,
        &hosts,
        &conf::parse_resolv_conf(&resolv),
        deadline,
        signals,
    )
}

/// [`resolve`] with the contents of the hosts file and the resolver configuration given.
pub fn resolve_with(
    host: &str,
    port: u16,
    hosts: &[u8],
    conf: &ResolvConf,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<Vec<SocketAddr>, ResolveError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let with_port = |mut ips: Vec<IpAddr>| {
        // IPv6 first, each family in the order given.
        ips.sort_by_key(|ip| ip.is_ipv4());
        ips.into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect::<Vec<_>>()
    };
    let listed = conf::hosts_lookup(hosts, host, super::MAX_ADDRS);
    if !listed.is_empty() {
        return Ok(with_port(listed));
    }
    let names = conf::query_names(host, conf);
    if names.is_empty() {
        return Err(ResolveError::Failed(format!(
            "{host:?} is not a valid host name"
        )));
    }
    let mut last: Option<String> = None;
    for name in &names {
        let mut answered = false;
        'rounds: for _ in 0..conf.attempts.max(1) {
            for &ns in &conf.nameservers {
                let now = Instant::now();
                if now >= deadline {
                    return Err(ResolveError::Timeout);
                }
                let per_server =
                    (now + Duration::from_secs(conf.timeout_secs.max(1).into())).min(deadline);
                match exchange(ns, name, per_server, deadline, signals)? {
                    Answer::Addrs(ips) => return Ok(with_port(ips)),
                    Answer::NoSuchName => {
                        answered = true;
                        break 'rounds;
                    }
                    Answer::Unusable(why) => last = Some(why),
                }
            }
        }
        if !answered && last.is_some() {
            // No server answered for this name: the next names would fare no better.
            break;
        }
    }
    Err(ResolveError::Failed(match last {
        Some(why) => format!("cannot resolve {host:?}: {why}"),
        None => format!(
            "{host:?} has no address (asked the name servers for {})",
            names.join(", ")
        ),
    }))
}

enum Answer {
    Addrs(Vec<IpAddr>),
    /// NXDOMAIN, or no record of either type.
    NoSuchName,
    /// Silence, an error, or a failure code from this server: try the next one.
    Unusable(String),
}

/// One reply per type, as it came.
#[derive(Default)]
struct Pair {
    a: Option<super::Reply>,
    aaaa: Option<super::Reply>,
}

fn random_ids() -> [u16; 2] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 4];
    // The ids guard against stray replies only (the socket is connected to the server).
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    let a = u16::from_be_bytes([b[0], b[1]]);
    let aaaa = u16::from_be_bytes([b[2], b[3]]);
    [a, if aaaa == a { a.wrapping_add(1) } else { aaaa }]
}

fn io_to_resolve(e: IoError, ns: IpAddr) -> Result<String, ResolveError> {
    match e {
        IoError::Timeout => Err(ResolveError::Timeout),
        IoError::Interrupted => Err(ResolveError::Interrupted),
        other => Ok(format!("name server {ns}: {other}")),
    }
}

/// Asks `ns` for the A and AAAA records of `name` over UDP until `per_server` (the whole
/// resolution ends at `deadline`).
fn exchange(
    ns: IpAddr,
    name: &str,
    per_server: Instant,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<Answer, ResolveError> {
    let ids = random_ids();
    let queries = [
        super::build_query(ids[0], name, TYPE_A),
        super::build_query(ids[1], name, TYPE_AAAA),
    ];
    let queries = match queries {
        [Ok(a), Ok(aaaa)] => [a, aaaa],
        [Err(DnsError(e)), _] | [_, Err(DnsError(e))] => {
            return Err(ResolveError::Failed(format!("{name:?}: {e}")));
        }
    };
    let server = SocketAddr::new(ns, 53);
    let family = if ns.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let udp = rustix::net::socket_with(
        family,
        SocketType::DGRAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .and_then(|fd| rustix::net::connect(&fd, &server).map(|()| fd));
    let udp = match udp {
        Ok(fd) => fd,
        Err(e) => return Ok(Answer::Unusable(format!("name server {ns}: {e}"))),
    };
    for q in &queries {
        if let Err(e) = rustix::net::send(&udp, q, SendFlags::empty()) {
            return Ok(Answer::Unusable(format!("name server {ns}: {e}")));
        }
    }
    let mut got = Pair::default();
    let mut bad: Option<&'static str> = None;
    let mut buf = [0u8; UDP_BUF];
    while got.a.is_none() || got.aaaa.is_none() {
        if let Err(e) = wait_io(udp.as_fd(), PollFlags::IN, per_server, signals) {
            if matches!(e, IoError::Timeout) && per_server < deadline {
                break;
            }
            return io_to_resolve(e, ns).map(Answer::Unusable);
        }
        let n = match rustix::net::recv(&udp, &mut buf, RecvFlags::empty()) {
            Ok((n, _)) => n,
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => continue,
            // ECONNREFUSED: nothing listens there; the next server is asked at once.
            Err(e) => return Ok(Answer::Unusable(format!("name server {ns}: {e}"))),
        };
        let msg = &buf[..n];
        for (i, qtype) in [(0, TYPE_A), (1, TYPE_AAAA)] {
            match super::parse_reply(msg, ids[i], name, qtype) {
                Ok(reply) => {
                    let reply = if reply.truncated {
                        match tcp_exchange(
                            server,
                            &queries[i],
                            ids[i],
                            name,
                            qtype,
                            per_server,
                            signals,
                        ) {
                            Ok(r) => r,
                            Err(e) => return io_to_resolve(e, ns).map(Answer::Unusable),
                        }
                    } else {
                        reply
                    };
                    if reply.rcode == RCODE_NXDOMAIN {
                        return Ok(Answer::NoSuchName);
                    }
                    if i == 0 {
                        got.a = Some(reply);
                    } else {
                        got.aaaa = Some(reply);
                    }
                }
                Err(DnsError("DNS reply to another query")) => {}
                Err(DnsError(e)) => bad = Some(e),
            }
        }
    }
    let mut addrs = Vec::new();
    let mut failed = None;
    let mut nodata = 0;
    for reply in [&got.aaaa, &got.a].into_iter().flatten() {
        addrs.extend_from_slice(&reply.addrs);
        match reply.rcode {
            RCODE_OK if reply.addrs.is_empty() => nodata += 1,
            RCODE_OK => {}
            code => failed = Some(code),
        }
    }
    if !addrs.is_empty() {
        return Ok(Answer::Addrs(addrs));
    }
    if nodata == 2 {
        return Ok(Answer::NoSuchName);
    }
    Ok(Answer::Unusable(match (failed, bad) {
        (Some(code), _) => format!("name server {ns} answered with response code {code}"),
        (None, Some(e)) => format!("name server {ns} sent a bad reply: {e}"),
        (None, None) => format!("no answer from name server {ns}"),
    }))
}

/// The same question over TCP (a truncated UDP reply): two length bytes, then the message.
fn tcp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &str,
    qtype: u16,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<super::Reply, IoError> {
    let family = if server.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let mut sock = TcpStream::from(connect_fd(family, &server, deadline, signals)?);
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(query);
    write_plain(&mut sock, &framed, deadline, signals)?;
    let mut msg = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if msg.len() >= 2 {
            let want = 2 + usize::from(u16::from_be_bytes([msg[0], msg[1]]));
            if msg.len() >= want {
                msg.truncate(want);
                break;
            }
        }
        let n = read_plain(&mut sock, &mut buf, deadline, signals)?;
        msg.extend_from_slice(&buf[..n]);
    }
    let reply = super::parse_reply(&msg[2..], id, name, qtype).map_err(|DnsError(e)| {
        IoError::Io(std::io::Error::other(format!("bad reply over TCP: {e}")))
    })?;
    if reply.truncated {
        return Err(IoError::Io(std::io::Error::other(
            "truncated reply over TCP",
        )));
    }
    Ok(reply)
}
