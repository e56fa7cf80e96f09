//! Name resolution without `getaddrinfo` (docs/protocol.md, "Transport", "Name resolution"):
//! the DNS message codec (this module, pure), the `resolv.conf` and `/etc/hosts` parsers and the
//! search-list rule ([`conf`], pure), and the driver that asks the name servers within the
//! caller's deadline, polling the socket and the signal fd ([`resolve`]).
//!
//! The codec asks one question per message (A or AAAA, class IN, recursion desired) and reads
//! the addresses of a reply: the answer's owner must be the asked name or the end of its CNAME
//! chain; compressed names are followed only backwards (no loop is possible) and never past 255
//! bytes; every section the header counts must be present, so a cut reply is an error.

pub mod conf;
pub mod resolve;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Record type A (an IPv4 address).
pub const TYPE_A: u16 = 1;
/// Record type CNAME.
pub const TYPE_CNAME: u16 = 5;
/// Record type AAAA (an IPv6 address).
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
/// The longest name on the wire (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;
/// Addresses kept from one reply; more are ignored.
pub const MAX_ADDRS: usize = 16;
/// CNAME links followed in one reply.
const MAX_CHAIN: usize = 8;
/// Response code: no error.
pub const RCODE_OK: u8 = 0;
/// Response code: the name does not exist.
pub const RCODE_NXDOMAIN: u8 = 3;

/// Why a message was refused. Static text: a reply is outside bytes, echoed nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsError(pub &'static str);

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// What a reply says about the question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// TC: the reply did not fit in UDP; ask again over TCP.
    pub truncated: bool,
    /// The response code (0 no error, 3 no such name, 2 server failure, ...).
    pub rcode: u8,
    /// The addresses of the asked type, in the reply's order (at most [`MAX_ADDRS`]).
    pub addrs: Vec<IpAddr>,
}

/// The wire form of a name, `example.com` → `7example3com0`. A trailing dot is allowed; empty
/// labels, labels over 63 bytes and names over 255 bytes are refused.
pub fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), DnsError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(DnsError("empty host name"));
    }
    let start = out.len();
    for label in name.split('.') {
        if label.is_empty() {
            return Err(DnsError("empty label in host name"));
        }
        if label.len() > 63 {
            return Err(DnsError("label longer than 63 bytes in host name"));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    if out.len() - start > MAX_NAME {
        return Err(DnsError("host name longer than 255 bytes"));
    }
    Ok(())
}

/// A query for `name` of type `qtype` (A or AAAA) with id `id`, recursion desired.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(18 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(name, &mut out)?;
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

fn u16_at(msg: &[u8], at: usize) -> Result<u16, DnsError> {
    match msg.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(DnsError("DNS message cut short")),
    }
}

/// Reads the name at `at`: its lower-case dotted text and the offset after it in place (a
/// pointer counts two bytes). Pointers must point strictly backwards.
pub fn read_name(msg: &[u8], at: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut wire_len = 0usize;
    let mut pos = at;
    let mut end = None;
    loop {
        let len = *msg
            .get(pos)
            .ok_or(DnsError("DNS message cut short in a name"))?;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    return Ok((name, end.unwrap_or(pos + 1)));
                }
                let label = msg
                    .get(pos + 1..pos + 1 + len as usize)
                    .ok_or(DnsError("DNS message cut short in a name"))?;
                wire_len += 1 + label.len();
                if wire_len + 1 > MAX_NAME {
                    return Err(DnsError("name longer than 255 bytes in a DNS reply"));
                }
                if !name.is_empty() {
                    name.push('.');
                }
                for &b in label {
                    if b == b'.' || !(0x21..0x7f).contains(&b) {
                        // Not a host name: kept distinct, never equal to an asked name.
                        name.push_str(&format!("\\{b:03}"));
                    } else {
                        name.push(b.to_ascii_lowercase() as char);
                    }
                }
                pos += 1 + len as usize;
            }
            0xC0 => {
                let low = *msg
                    .get(pos + 1)
                    .ok_or(DnsError("DNS message cut short in a name"))?;
                let target = (usize::from(len & 0x3F) << 8) | usize::from(low);
                if end.is_none() {
                    end = Some(pos + 2);
                }
                if target >= pos {
                    return Err(DnsError(
                        "compression pointer that does not point backwards",
                    ));
                }
                pos = target;
            }
            _ => return Err(DnsError("reserved label type in a DNS name")),
        }
    }
}

/// The name as [`read_name`] returns it, for comparing with an asked name.
pub fn canonical(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

struct Record<'m> {
    owner: String,
    rtype: u16,
    class: u16,
    data_at: usize,
    data: &'m [u8],
}

fn read_record(msg: &[u8], at: usize) -> Result<(Record<'_>, usize), DnsError> {
    let (owner, pos) = read_name(msg, at)?;
    let rtype = u16_at(msg, pos)?;
    let class = u16_at(msg, pos + 2)?;
    let rdlen = usize::from(u16_at(msg, pos + 8)?);
    let data_at = pos + 10;
    let data = msg
        .get(data_at..data_at + rdlen)
        .ok_or(DnsError("DNS record cut short"))?;
    Ok((
        Record {
            owner,
            rtype,
            class,
            data_at,
            data,
        },
        data_at + rdlen,
    ))
}

/// The reply to the query `id` for `qname` of type `qtype` (A or AAAA): refused unless it is a
/// response to that very question and every counted record is whole.
pub fn parse_reply(msg: &[u8], id: u16, qname: &str, qtype: u16) -> Result<Reply, DnsError> {
    if msg.len() < 12 {
        return Err(DnsError("DNS reply shorter than its header"));
    }
    if u16_at(msg, 0)? != id {
        return Err(DnsError("DNS reply to another query"));
    }
    let flags = u16_at(msg, 2)?;
    if flags & 0x8000 == 0 {
        return Err(DnsError("DNS message is a query, not a reply"));
    }
    if (flags >> 11) & 0xF != 0 {
        return Err(DnsError("DNS reply with an unexpected opcode"));
    }
    let truncated = flags & 0x0200 != 0;
    let rcode = (flags & 0xF) as u8;
    let qd = u16_at(msg, 4)?;
    let an = usize::from(u16_at(msg, 6)?);
    let ns = usize::from(u16_at(msg, 8)?);
    let ar = usize::from(u16_at(msg, 10)?);
    if qd != 1 {
        return Err(DnsError("DNS reply without exactly one question"));
    }
    let (asked, mut pos) = read_name(msg, 12)?;
    if asked != canonical(qname) || u16_at(msg, pos)? != qtype || u16_at(msg, pos + 2)? != CLASS_IN
    {
        return Err(DnsError("DNS reply to another question"));
    }
    pos += 4;
    if truncated {
        // The sections of a truncated reply may be cut anywhere: only the flag counts.
        return Ok(Reply {
            truncated,
            rcode,
            addrs: Vec::new(),
        });
    }
    let mut answers = Vec::new();
    for i in 0..an + ns + ar {
        let (record, next) = read_record(msg, pos)?;
        if i < an && record.class == CLASS_IN {
            answers.push(record);
        }
        pos = next;
    }
    // Follow the CNAME chain from the asked name, then take the addresses of its end.
    let mut owner = asked;
    for _ in 0..MAX_CHAIN {
        let next = answers
            .iter()
            .find(|r| r.rtype == TYPE_CNAME && r.owner == owner);
        match next {
            Some(r) => owner = read_name(msg, r.data_at)?.0,
            None => break,
        }
    }
    let mut addrs = Vec::new();
    for r in answers
        .iter()
        .filter(|r| r.rtype == qtype && r.owner == owner)
    {
        let addr = match (qtype, r.data.len()) {
            (TYPE_A, 4) => IpAddr::V4(Ipv4Addr::new(r.data[0], r.data[1], r.data[2], r.data[3])),
            (TYPE_AAAA, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(r.data);
                IpAddr::V6(Ipv6Addr::from(b))
            }
            _ => return Err(DnsError("address record of the wrong length")),
        };
        if addrs.len() < MAX_ADDRS && !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    Ok(Reply {
        truncated,
        rcode,
        addrs,
    })
}

/// A question as a server reads it: `(id, name, qtype)`. For test servers and the fuzz target's
/// round trip.
pub fn parse_query(msg: &[u8]) -> Result<(u16, String, u16), DnsError> {
    if msg.len() < 12 || u16_at(msg, 4)? != 1 || msg[2] & 0x80 != 0 {
        return Err(DnsError("not a DNS query with one question"));
    }
    let (name, pos) = read_name(msg, 12)?;
    Ok((u16_at(msg, 0)?, name, u16_at(msg, pos)?))
}

/// A reply to `query` (as [`build_query`] makes it) with `cnames` as a chain from the asked
/// name, then `addrs` owned by the chain's end (compressed as pointers back to earlier names),
/// flags `truncated` and `rcode`. For test servers and the fuzz target's round trip.
pub fn encode_reply(
    query: &[u8],
    cnames: &[&str],
    addrs: &[IpAddr],
    truncated: bool,
    rcode: u8,
) -> Result<Vec<u8>, DnsError> {
    let (id, _, _) = parse_query(query)?;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&id.to_be_bytes());
    let flags: u16 = 0x8180 | if truncated { 0x0200 } else { 0 } | u16::from(rcode & 0xF);
    out.extend_from_slice(&flags.to_be_bytes());
    let count = u16::try_from(cnames.len() + addrs.len())
        .map_err(|_| DnsError("too many records for one reply"))?;
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    // The question, copied from the query.
    let (_, qend) = read_name(query, 12)?;
    out.extend_from_slice(query.get(12..qend + 4).ok_or(DnsError("query cut short"))?);
    let mut owner_at = 12u16;
    for cname in cnames {
        out.extend_from_slice(&(0xC000 | owner_at).to_be_bytes());
        out.extend_from_slice(&TYPE_CNAME.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&60u32.to_be_bytes());
        let mut wire = Vec::new();
        encode_name(cname, &mut wire)?;
        out.extend_from_slice(&(wire.len() as u16).to_be_bytes());
        owner_at = u16::try_from(out.len())
            .ok()
            .filter(|&a| a < 0x3FFF)
            .ok_or(DnsError("reply too long"))?;
        out.extend_from_slice(&wire);
    }
    for addr in addrs {
        out.extend_from_slice(&(0xC000 | owner_at).to_be_bytes());
        let (rtype, data) = match addr {
            IpAddr::V4(a) => (TYPE_A, a.octets().to_vec()),
            IpAddr::V6(a) => (TYPE_AAAA, a.octets().to_vec()),
        };
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&60u32.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
