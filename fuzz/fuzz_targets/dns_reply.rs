//! DNS replies (outside bytes from a name server, or anyone who can send to the socket).
//! Any bytes: `parse_reply` and `read_name` never panic, a name read is at most 255 bytes, and
//! an accepted reply holds at most `MAX_ADDRS` addresses of the asked family only. Round trip:
//! a query for a name made from the input, answered by `encode_reply` with a CNAME chain and
//! addresses from the input, parses back to those addresses (asked family, de-duplicated,
//! capped), and every strict prefix of that reply is refused.
#![no_main]
use pganalytics_collector::proto::dns::{
    MAX_ADDRS, TYPE_A, TYPE_AAAA, build_query, canonical, encode_reply, parse_query, parse_reply,
    read_name,
};
use std::net::IpAddr;

fn label(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| (b'a' + b % 26) as char)
        .take(63)
        .collect()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Arbitrary bytes as a reply to a fixed question.
    if data.len() >= 3 {
        let id = u16::from_be_bytes([data[0], data[1]]);
        let qtype = if data[2] & 1 == 0 { TYPE_A } else { TYPE_AAAA };
        if let Ok(r) = parse_reply(data, id, "db.example", qtype) {
            assert!(r.addrs.len() <= MAX_ADDRS);
            assert!(r.addrs.iter().all(|a| a.is_ipv4() == (qtype == TYPE_A)));
            assert!(!r.truncated || r.addrs.is_empty());
        }
        for at in 0..data.len().min(64) {
            if let Ok((name, end)) = read_name(data, at) {
                assert!(end <= data.len() && end > at);
                assert!(name.split('.').map(|l| l.len() + 1).sum::<usize>() <= 4 * 255);
            }
        }
    }

    // Round trip: the input shapes a name, a CNAME chain and addresses.
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let qtype = if head & 1 == 0 { TYPE_A } else { TYPE_AAAA };
    let labels = 1 + usize::from(head >> 1) % 3;
    let (name_bytes, rest) = rest.split_at(rest.len().min(labels * 4));
    let name: Vec<String> = name_bytes
        .chunks(4)
        .map(label)
        .filter(|l| !l.is_empty())
        .collect();
    if name.is_empty() {
        return;
    }
    let name = name.join(".");
    let chain_len = usize::from(head >> 3) % 3;
    let cnames: Vec<String> = (0..chain_len).map(|i| format!("c{i}.{name}")).collect();
    let cname_refs: Vec<&str> = cnames.iter().map(String::as_str).collect();
    let addrs: Vec<IpAddr> = rest
        .chunks_exact(17)
        .take(24)
        .map(|c| {
            if c[0] & 1 == 0 {
                IpAddr::from([c[1], c[2], c[3], c[4]])
            } else {
                let mut b = [0u8; 16];
                b.copy_from_slice(&c[1..17]);
                IpAddr::from(b)
            }
        })
        .collect();
    let id = u16::from(head) * 257;
    let query = build_query(id, &name, qtype).expect("a valid name");
    assert_eq!(parse_query(&query).unwrap(), (id, canonical(&name), qtype));
    let reply = encode_reply(&query, &cname_refs, &addrs, false, 0).expect("a reply");
    let parsed = parse_reply(&reply, id, &name, qtype).expect("its own reply parses");
    let mut want: Vec<IpAddr> = Vec::new();
    for a in addrs.iter().filter(|a| a.is_ipv4() == (qtype == TYPE_A)) {
        if want.len() < MAX_ADDRS && !want.contains(a) {
            want.push(*a);
        }
    }
    assert_eq!(parsed.addrs, want);
    for n in 0..reply.len() {
        assert!(
            parse_reply(&reply[..n], id, &name, qtype).is_err(),
            "prefix {n} accepted"
        );
    }
});
