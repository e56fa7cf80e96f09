//! The resolver's configuration files, as glibc reads them: `resolv.conf` (`nameserver`,
//! `search`/`domain`, `options ndots: timeout: attempts:`) and `/etc/hosts`; and the list of
//! names to ask for a host (the search rule). Pure: bytes in, values out.

use std::net::IpAddr;

/// At most this many name servers are used (glibc's MAXNS).
pub const MAX_NAMESERVERS: usize = 3;
/// At most this many search domains are used (glibc's MAXDNSRCH).
pub const MAX_SEARCH: usize = 6;

/// What `resolv.conf` says, with glibc's defaults and caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// The servers to ask, in order (127.0.0.1 when the file names none).
    pub nameservers: Vec<IpAddr>,
    /// The search domains, in order.
    pub search: Vec<String>,
    /// A name with at least this many dots is asked as is first (default 1, at most 15).
    pub ndots: u8,
    /// Seconds to wait for one server before the next (default 5, at most 30).
    pub timeout_secs: u8,
    /// Rounds over all the servers (default 2, at most 5).
    pub attempts: u8,
}

impl Default for ResolvConf {
    fn default() -> Self {
        ResolvConf {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout_secs: 5,
            attempts: 2,
        }
    }
}

fn option_value(word: &str, key: &str, max: u8) -> Option<u8> {
    let v = word.strip_prefix(key)?.strip_prefix(':')?;
    let n: u32 = v.parse().ok()?;
    Some(n.min(u32::from(max)) as u8)
}

/// Reads `resolv.conf`. Lines it does not know, and values it cannot read, are skipped (as
/// glibc does); an empty or missing file gives the defaults with 127.0.0.1 as the server.
pub fn parse_resolv_conf(text: &[u8]) -> ResolvConf {
    let mut conf = ResolvConf::default();
    for line in text.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        if line.starts_with(['#', ';']) {
            continue;
        }
        let mut words = line.split_ascii_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(Ok(addr)) = words.next().map(str::parse::<IpAddr>)
                    && conf.nameservers.len() < MAX_NAMESERVERS
                {
                    conf.nameservers.push(addr);
                }
            }
            Some(kw @ ("search" | "domain")) => {
                conf.search = words
                    .take_while(|w| !w.starts_with(['#', ';']))
                    .map(|w| w.trim_end_matches('.').to_ascii_lowercase())
                    .filter(|w| !w.is_empty() && w.len() < 254)
                    .take(if kw == "domain" { 1 } else { MAX_SEARCH })
                    .collect();
            }
            Some("options") => {
                for w in words {
                    if let Some(n) = option_value(w, "ndots", 15) {
                        conf.ndots = n;
                    } else if let Some(n) = option_value(w, "timeout", 30) {
                        conf.timeout_secs = n.max(1);
                    } else if let Some(n) = option_value(w, "attempts", 5) {
                        conf.attempts = n.max(1);
                    }
                }
            }
            _ => {}
        }
    }
    if conf.nameservers.is_empty() {
        conf.nameservers.push(IpAddr::from([127, 0, 0, 1]));
    }
    conf
}

/// The addresses `/etc/hosts` gives `name` (case-insensitive, aliases included), in the file's
/// order, at most `max`.
pub fn hosts_lookup(text: &[u8], name: &str, max: usize) -> Vec<IpAddr> {
    let want = super::canonical(name);
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = match line.iter().position(|&b| b == b'#') {
            Some(i) => &line[..i],
            None => line,
        };
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let mut words = line.split_ascii_whitespace();
        let Some(Ok(addr)) = words.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if words.any(|w| super::canonical(w) == want) && !out.contains(&addr) && out.len() < max {
            out.push(addr);
        }
    }
    out
}

/// The names to ask for `host`, in order: a name ending in a dot as is; else, with at least
/// `ndots` dots, as is then with each search domain; with fewer, with each search domain then
/// as is. Names that would be too long are left out.
pub fn query_names(host: &str, conf: &ResolvConf) -> Vec<String> {
    if let Some(absolute) = host.strip_suffix('.') {
        return vec![absolute.to_string()];
    }
    let dots = host.bytes().filter(|&b| b == b'.').count();
    let searched = conf
        .search
        .iter()
        .map(|d| format!("{host}.{d}"))
        .filter(|n| n.len() < super::MAX_NAME - 1);
    if dots >= usize::from(conf.ndots) {
        std::iter::once(host.to_string()).chain(searched).collect()
    } else {
        searched.chain(std::iter::once(host.to_string())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_reads_servers_search_and_options_with_caps() {
        let c = parse_resolv_conf(
            b"# comment\nnameserver 10.0.0.1\nnameserver ::1\nnameserver bad\n\
              nameserver 10.0.0.3\nnameserver 10.0.0.4\ndomain old.example\n\
              search Corp.Example. lab.example # trailing\n\
              options ndots:3 timeout:99 attempts:0 rotate\n",
        );
        assert_eq!(
            c.nameservers,
            vec![
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap(),
                "10.0.0.3".parse().unwrap()
            ]
        );
        assert_eq!(c.search, vec!["corp.example", "lab.example"]);
        assert_eq!((c.ndots, c.timeout_secs, c.attempts), (3, 30, 1));
    }

    #[test]
    fn an_empty_resolv_conf_asks_the_local_server_with_the_defaults() {
        let c = parse_resolv_conf(b"");
        assert_eq!(c.nameservers, vec![IpAddr::from([127, 0, 0, 1])]);
        assert_eq!((c.ndots, c.timeout_secs, c.attempts), (1, 5, 2));
        // Bytes that are not text are skipped, not an error.
        let c = parse_resolv_conf(b"\xff\xfe\nnameserver 10.1.1.1\n");
        assert_eq!(c.nameservers, vec![IpAddr::from([10, 1, 1, 1])]);
    }

    #[test]
    fn hosts_matches_names_and_aliases_case_insensitively() {
        let hosts = b"127.0.0.1 localhost\n# 10.9.9.9 db\n10.0.0.5 db.lab DB # primary\n\
                      fe80::1 db\nnot-an-address db\n10.0.0.5 db\n";
        assert_eq!(
            hosts_lookup(hosts, "db", 8),
            vec![
                "10.0.0.5".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        assert_eq!(hosts_lookup(hosts, "DB.lab.", 8).len(), 1);
        assert!(hosts_lookup(hosts, "other", 8).is_empty());
        assert_eq!(hosts_lookup(hosts, "db", 1).len(), 1);
    }

    #[test]
    fn search_order_follows_ndots() {
        let c = ResolvConf {
            search: vec!["a.example".into(), "b.example".into()],
            ..ResolvConf::default()
        };
        assert_eq!(
            query_names("db", &c),
            vec!["db.a.example", "db.b.example", "db"]
        );
        assert_eq!(
            query_names("db.lab", &c),
            vec!["db.lab", "db.lab.a.example", "db.lab.b.example"]
        );
        assert_eq!(query_names("db.", &c), vec!["db"]);
        let c = ResolvConf { ndots: 3, ..c };
        assert_eq!(query_names("db.lab", &c)[2], "db.lab");
    }
}
