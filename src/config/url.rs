//! `[backend] url`, parsed once at load into the value every user takes: the loader validates
//! with it, `check-config` prints it, the backend connection dials it. Schemes are
//! case-insensitive (RFC 3986 §3.1): `HTTPS://host` is `https://host`.
//!
//! Accepted: `http://` or `https://`, a host (name, IPv4, or `[IPv6]`), an optional port, an
//! optional path prefix. Refused: user information, a query, a fragment, spaces and control
//! characters. Whether plaintext `http://` is allowed is the loader's rule (loopback only,
//! unless `allow_insecure_http`), decided with [`BackendUrl::is_loopback`].

use std::net::{Ipv4Addr, Ipv6Addr};

/// A valid backend URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendUrl {
    /// As written in the file (shown back by `check-config`).
    text: String,
    pub https: bool,
    /// The host as written, brackets of an IPv6 literal kept.
    pub host: String,
    /// The port given, else 443 or 80.
    pub port: u16,
    /// The path prefix without a trailing '/', put before every request path.
    pub base: String,
}

impl BackendUrl {
    /// Parses and validates; the error says what is wrong, to follow "[backend] url ".
    pub fn parse(url: &str) -> Result<BackendUrl, &'static str> {
        let scheme_end = url
            .find("://")
            .ok_or("must start with https:// or http://")?;
        let https = match url[..scheme_end].to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err("must start with https:// or http://"),
        };
        let rest = &url[scheme_end + 3..];
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters");
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if tail.contains(['?', '#']) {
            return Err("must not have a query or fragment");
        }
        if authority.contains('@') {
            return Err("must not contain user information (user:password@)");
        }
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            let Some((host, after)) = inner.split_once(']') else {
                return Err("has an unclosed [ in its host");
            };
            if host.parse::<Ipv6Addr>().is_err() {
                return Err("has an invalid IPv6 address");
            }
            let port = match after {
                "" => None,
                p => match p.strip_prefix(':') {
                    Some(p) => Some(p),
                    None => return Err("has text after its IPv6 address"),
                },
            };
            (&authority[..host.len() + 2], port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("has no host");
        }
        if !host.starts_with('[')
            && !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err("has an invalid host name");
        }
        let port = match port {
            None => {
                if https {
                    443
                } else {
                    80
                }
            }
            Some(p) => {
                let ok = !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
                match p.parse::<u16>() {
                    Ok(n @ 1..) if ok => n,
                    _ => return Err("has an invalid port (1..65535)"),
                }
            }
        };
        Ok(BackendUrl {
            text: url.to_string(),
            https,
            host: host.to_string(),
            port,
            base: tail.trim_end_matches('/').to_string(),
        })
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `host:port`, as error messages name the backend.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The `Host` header value (the port only when it is not the scheme's).
    pub fn host_header(&self) -> String {
        if (self.https && self.port == 443) || (!self.https && self.port == 80) {
            self.host.clone()
        } else {
            self.authority()
        }
    }

    /// 127.0.0.0/8, ::1 and `localhost`: the hosts plain `http://` may reach without
    /// `allow_insecure_http`.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let host = host.strip_suffix('.').unwrap_or(host);
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback())
            || host.parse::<Ipv6Addr>().is_ok_and(|a| a.is_loopback())
    }
}

impl std::fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_defaults() {
        let u = BackendUrl::parse("https://b.example.com:8443/x/").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.base.as_str()),
            (true, "b.example.com", 8443, "/x")
        );
        assert_eq!(u.host_header(), "b.example.com:8443");
        let u = BackendUrl::parse("http://[::1]").unwrap();
        assert_eq!((u.https, u.host.as_str(), u.port), (false, "[::1]", 80));
        assert_eq!(u.host_header(), "[::1]");
        assert!(u.is_loopback());
        assert_eq!(u.to_string(), "http://[::1]");
    }

    #[test]
    fn schemes_are_case_insensitive() {
        for s in ["HTTPS://host", "Https://host", "hTtPs://host"] {
            let u = BackendUrl::parse(s).unwrap();
            assert!(u.https, "{s}");
            assert_eq!((u.host.as_str(), u.port), ("host", 443));
        }
        assert!(!BackendUrl::parse("HTTP://localhost").unwrap().https);
    }

    #[test]
    fn refusals() {
        for (url, why) in [
            ("ftp://x", "must start with https:// or http://"),
            ("host:443", "must start with https:// or http://"),
            ("https://:1", "has no host"),
            (
                "https://u:p@host",
                "must not contain user information (user:password@)",
            ),
            ("https://host/?q=1", "must not have a query or fragment"),
            ("https://host:0", "has an invalid port (1..65535)"),
            ("https://host:+1", "has an invalid port (1..65535)"),
            (
                "https://ho st",
                "must not contain spaces or control characters",
            ),
            ("https://[::1", "has an unclosed [ in its host"),
            ("https://[zz]", "has an invalid IPv6 address"),
            ("https://h*st", "has an invalid host name"),
        ] {
            assert_eq!(BackendUrl::parse(url), Err(why), "{url}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for (url, lo) in [
            ("http://localhost", true),
            ("http://LOCALHOST.", true),
            ("http://127.9.0.1:8080", true),
            ("http://[::1]:80", true),
            ("http://10.0.0.1", false),
            ("http://example.com", false),
        ] {
            assert_eq!(BackendUrl::parse(url).unwrap().is_loopback(), lo, "{url}");
        }
    }
}
