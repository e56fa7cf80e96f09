//! Request heads (docs/protocol.md, "Transport"): the request line, the fixed headers every request carries,
//! then the caller's headers. The body, when there is one, is the caller's to append.

use super::{HttpError, USER_AGENT, is_tchar};

/// Headers this module writes itself; the caller may not add them again (a duplicate
/// `Content-Length` or `Host` is a request-smuggling hazard, not a style issue).
const RESERVED: [&str; 5] = [
    "host",
    "user-agent",
    "connection",
    "content-length",
    "transfer-encoding",
];

/// Writes a request head into `out`: request line, `Host`, `User-Agent`,
/// `Connection: keep-alive`, `Content-Length`, then `headers` in order, then the blank line.
///
/// `Content-Length` is `body_len`; with `None` it is 0, except for GET and HEAD where it is
/// omitted. `path` is the origin-form target (starts with `/`). Any CR, LF or NUL (or other
/// control character) in a part is an error, and `out` is then left as it was.
pub fn write_request_head(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body_len: Option<usize>,
    out: &mut Vec<u8>,
) -> Result<(), HttpError> {
    validate(method, path, host, headers)?;
    let length = match body_len {
        Some(n) => Some(n),
        None if method == "GET" || method == "HEAD" => None,
        None => Some(0),
    };
    let mut line = |parts: &[&[u8]]| {
        for p in parts {
            out.extend_from_slice(p);
        }
        out.extend_from_slice(b"\r\n");
    };
    line(&[method.as_bytes(), b" ", path.as_bytes(), b" HTTP/1.1"]);
    line(&[b"Host: ", host.as_bytes()]);
    line(&[b"User-Agent: ", USER_AGENT.as_bytes()]);
    line(&[b"Connection: keep-alive"]);
    if let Some(n) = length {
        line(&[b"Content-Length: ", n.to_string().as_bytes()]);
    }
    for (name, value) in headers {
        line(&[name.as_bytes(), b": ", value.as_bytes()]);
    }
    line(&[]);
    Ok(())
}

/// A header value or host: visible characters, spaces and tabs, no controls.
fn is_field_text(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn validate(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
) -> Result<(), HttpError> {
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(HttpError::InvalidRequest("method"));
    }
    if !path.starts_with('/') || !path.bytes().all(|b| b > 0x20 && b != 0x7f) {
        return Err(HttpError::InvalidRequest("path"));
    }
    if host.is_empty() || !host.bytes().all(|b| b > 0x20 && b != 0x7f) {
        return Err(HttpError::InvalidRequest("host"));
    }
    for (name, value) in headers {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(HttpError::InvalidRequest("header name"));
        }
        if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(HttpError::InvalidRequest("header set by the client itself"));
        }
        if !is_field_text(value) {
            return Err(HttpError::InvalidRequest("header value"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body_len: Option<usize>,
    ) -> Result<String, HttpError> {
        let mut out = b"prefix".to_vec();
        write_request_head(
            method,
            path,
            "backend.example:8443",
            headers,
            body_len,
            &mut out,
        )?;
        assert!(out.starts_with(b"prefix"));
        Ok(String::from_utf8(out[6..].to_vec()).unwrap())
    }

    #[test]
    fn push_head_exact() {
        let got = head(
            "POST",
            "/api/v1/metrics/push",
            &[
                ("Authorization", "Bearer a.b.c"),
                ("Content-Type", "application/json"),
                ("Content-Encoding", "gzip"),
            ],
            Some(1234),
        )
        .unwrap();
        let want = format!(
            "POST /api/v1/metrics/push HTTP/1.1\r\n\
             Host: backend.example:8443\r\n\
             User-Agent: pganalytics-collector/{}\r\n\
             Connection: keep-alive\r\n\
             Content-Length: 1234\r\n\
             Authorization: Bearer a.b.c\r\n\
             Content-Type: application/json\r\n\
             Content-Encoding: gzip\r\n\
             \r\n",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(got, want);
    }

    #[test]
    fn content_length_rules() {
        let v = env!("CARGO_PKG_VERSION");
        assert_eq!(
            head("POST", "/api/v1/collectors/refresh-token", &[], None).unwrap(),
            format!(
                "POST /api/v1/collectors/refresh-token HTTP/1.1\r\nHost: backend.example:8443\r\nUser-Agent: pganalytics-collector/{v}\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
            )
        );
        assert_eq!(
            head(
                "GET",
                "/api/v1/config?x=1",
                &[("Accept", "application/json")],
                None
            )
            .unwrap(),
            format!(
                "GET /api/v1/config?x=1 HTTP/1.1\r\nHost: backend.example:8443\r\nUser-Agent: pganalytics-collector/{v}\r\nConnection: keep-alive\r\nAccept: application/json\r\n\r\n"
            )
        );
        assert!(
            head("POST", "/", &[], Some(0))
                .unwrap()
                .contains("\r\nContent-Length: 0\r\n")
        );
        assert!(
            !head("HEAD", "/", &[], None)
                .unwrap()
                .contains("Content-Length")
        );
    }

    #[test]
    fn rejects_injection_and_leaves_out_unchanged() {
        let bad: [(&str, &str, &str, (&str, &str)); 9] = [
            ("POST", "/", "h", ("X-A", "a\r\nX-Evil: 1")),
            ("POST", "/", "h", ("X-A", "a\nb")),
            ("POST", "/", "h", ("X-A", "a\0b")),
            ("POST", "/", "h", ("X-A\r\n", "a")),
            ("POST", "/", "h", ("", "a")),
            ("POST", "/", "h", ("content-length", "5")),
            ("POST", "/a b", "h", ("X-A", "a")),
            ("POST", "/\r\n", "h", ("X-A", "a")),
            ("PO ST", "/", "h", ("X-A", "a")),
        ];
        for (m, p, h, hdr) in bad {
            let mut out = b"keep".to_vec();
            let r = write_request_head(m, p, h, &[hdr], Some(1), &mut out);
            assert!(
                matches!(r, Err(HttpError::InvalidRequest(_))),
                "{m} {p} {hdr:?}"
            );
            assert_eq!(out, b"keep");
        }
        for host in ["a\r\nb", "", "a b"] {
            let mut out = Vec::new();
            assert_eq!(
                write_request_head("GET", "/", host, &[], None, &mut out),
                Err(HttpError::InvalidRequest("host"))
            );
            assert!(out.is_empty());
        }
        // Tabs and non-ASCII text are allowed in values.
        assert!(head("GET", "/", &[("X-A", "a\tb é")], None).is_ok());
    }
}
