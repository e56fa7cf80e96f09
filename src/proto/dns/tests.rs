use super::*;

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A reply captured by hand from the wire format (RFC 1035 §4.1): id 0x1234, RD RA, one
/// question `db.example` A, answers `db.example CNAME web.example` (the owner a pointer to the
/// question, the target's `example` a pointer too) and `web.example A 192.0.2.7`, then one
/// additional record that is skipped.
const CAPTURED: &[u8] = &[
    0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 1, // header
    2, b'd', b'b', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, 0, 1, 0, 1, // question
    0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, b'w', b'e', b'b', 0xC0, 15, // CNAME @40
    0xC0, 40, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7, // A, owner → web.example
    0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0, // OPT (additional)
];

#[test]
fn a_captured_reply_follows_the_cname_chain_to_the_address() {
    let r = parse_reply(CAPTURED, 0x1234, "DB.example.", TYPE_A).unwrap();
    assert_eq!(
        r,
        Reply {
            truncated: false,
            rcode: 0,
            addrs: vec![v4("192.0.2.7")]
        }
    );
}

#[test]
fn every_prefix_of_a_reply_is_refused() {
    for n in 0..CAPTURED.len() {
        assert!(
            parse_reply(&CAPTURED[..n], 0x1234, "db.example", TYPE_A).is_err(),
            "prefix of {n} bytes accepted"
        );
    }
    let q = build_query(7, "db.example", TYPE_AAAA).unwrap();
    let full = encode_reply(
        &q,
        &["x.example"],
        &["2001:db8::1".parse().unwrap()],
        false,
        0,
    )
    .unwrap();
    for n in 0..full.len() {
        assert!(parse_reply(&full[..n], 7, "db.example", TYPE_AAAA).is_err());
    }
    assert_eq!(
        parse_reply(&full, 7, "db.example", TYPE_AAAA)
            .unwrap()
            .addrs,
        vec!["2001:db8::1".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn a_reply_to_another_question_or_query_is_refused() {
    assert_eq!(
        parse_reply(CAPTURED, 0x1235, "db.example", TYPE_A)
            .unwrap_err()
            .0,
        "DNS reply to another query"
    );
    assert!(parse_reply(CAPTURED, 0x1234, "db.example", TYPE_AAAA).is_err());
    assert!(parse_reply(CAPTURED, 0x1234, "other.example", TYPE_A).is_err());
    let mut query = CAPTURED.to_vec();
    query[2] &= 0x7F;
    assert!(parse_reply(&query, 0x1234, "db.example", TYPE_A).is_err());
}

#[test]
fn records_of_other_owners_are_not_taken() {
    // The A record belongs to a name outside the chain (`example`): a poisoning attempt.
    let mut m = CAPTURED.to_vec();
    assert_eq!(m[47], 40);
    m[47] = 15;
    let r = parse_reply(&m, 0x1234, "db.example", TYPE_A).unwrap();
    assert!(r.addrs.is_empty(), "{r:?}");
}

#[test]
fn compression_loops_and_forward_pointers_are_refused() {
    // A name that points at itself.
    let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
    assert!(read_name(&m, 12).is_err());
    // A pointer forwards.
    let m2 = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xC0, 14, 0];
    assert!(read_name(&m2, 12).is_err());
    // A chain of backward pointers that builds a name over 255 bytes.
    let mut long = vec![0u8; 12];
    long.extend_from_slice(&[1, b'a', 0]);
    let mut prev = 12usize;
    for _ in 0..200 {
        let at = long.len();
        long.extend_from_slice(&[1, b'a', 0xC0 | (prev >> 8) as u8, prev as u8]);
        prev = at;
    }
    let last = prev;
    assert_eq!(
        read_name(&long, last).unwrap_err().0,
        "name longer than 255 bytes in a DNS reply"
    );
    // Reserved label types.
    assert!(read_name(&[0x40, 0], 0).is_err());
    assert!(read_name(&[0x80, 0], 0).is_err());
}

#[test]
fn truncation_and_response_codes_are_reported() {
    let q = build_query(9, "db.example", TYPE_A).unwrap();
    let t = encode_reply(&q, &[], &[], true, 0).unwrap();
    assert!(parse_reply(&t, 9, "db.example", TYPE_A).unwrap().truncated);
    // A truncated reply may be cut anywhere after the question.
    let mut cut = encode_reply(&q, &[], &[v4("192.0.2.1"), v4("192.0.2.2")], true, 0).unwrap();
    cut.truncate(cut.len() - 3);
    assert!(
        parse_reply(&cut, 9, "db.example", TYPE_A)
            .unwrap()
            .truncated
    );
    let nx = encode_reply(&q, &[], &[], false, RCODE_NXDOMAIN).unwrap();
    assert_eq!(
        parse_reply(&nx, 9, "db.example", TYPE_A).unwrap().rcode,
        RCODE_NXDOMAIN
    );
}

#[test]
fn an_address_of_the_wrong_length_is_refused_and_the_count_is_capped() {
    let q = build_query(3, "db", TYPE_A).unwrap();
    let many: Vec<IpAddr> = (0..40).map(|i| IpAddr::from([10, 0, 0, i])).collect();
    let r = parse_reply(
        &encode_reply(&q, &[], &many, false, 0).unwrap(),
        3,
        "db",
        TYPE_A,
    )
    .unwrap();
    assert_eq!(r.addrs, many[..MAX_ADDRS].to_vec());
    let mut m = encode_reply(&q, &[], &[v4("10.0.0.1")], false, 0).unwrap();
    let len_at = m.len() - 6;
    m[len_at + 1] = 3;
    m.pop();
    assert_eq!(
        parse_reply(&m, 3, "db", TYPE_A).unwrap_err().0,
        "address record of the wrong length"
    );
}

#[test]
fn queries_are_built_for_valid_names_only() {
    let q = build_query(0xABCD, "db.example.", TYPE_AAAA).unwrap();
    assert_eq!(&q[..4], &[0xAB, 0xCD, 0x01, 0x00]);
    assert_eq!(
        parse_query(&q).unwrap(),
        (0xABCD, "db.example".to_string(), TYPE_AAAA)
    );
    assert!(build_query(1, "", TYPE_A).is_err());
    assert!(build_query(1, "a..b", TYPE_A).is_err());
    assert!(build_query(1, &"a".repeat(64), TYPE_A).is_err());
    let long = vec!["a".repeat(63); 4].join(".");
    assert!(build_query(1, &long, TYPE_A).is_err());
    assert!(build_query(1, &long[..250], TYPE_A).is_ok());
}
