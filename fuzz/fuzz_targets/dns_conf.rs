//! `resolv.conf` and `/etc/hosts` (files another package or a container runtime writes). Any
//! bytes: no panic; the result keeps glibc's caps (1 to 3 servers, at most 6 search domains,
//! ndots ≤ 15, 1 ≤ timeout ≤ 30, 1 ≤ attempts ≤ 5); a hosts lookup gives at most `max`
//! distinct addresses; the search list asks for the name itself exactly once.
#![no_main]
use pganalytics_collector::proto::dns::conf::{
    MAX_NAMESERVERS, MAX_SEARCH, hosts_lookup, parse_resolv_conf, query_names,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let c = parse_resolv_conf(data);
    assert!((1..=MAX_NAMESERVERS).contains(&c.nameservers.len()));
    assert!(c.search.len() <= MAX_SEARCH);
    assert!(c.ndots <= 15 && (1..=30).contains(&c.timeout_secs) && (1..=5).contains(&c.attempts));
    let names = query_names("db", &c);
    assert_eq!(names.iter().filter(|n| *n == "db").count(), 1);
    assert!(names.iter().all(|n| n.len() < 254));
    for max in [1, 16] {
        let found = hosts_lookup(data, "db", max);
        assert!(found.len() <= max);
        for (i, a) in found.iter().enumerate() {
            assert!(!found[..i].contains(a));
        }
    }
});
