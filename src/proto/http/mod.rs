//! HTTP/1.1 client codec for the backend API (docs/protocol.md, "Transport"), sans-io: it writes request heads
//! into a caller buffer ([`write_request_head`]) and parses responses fed as bytes arrive
//! ([`ResponseParser`]); the blocking driver owns the socket.
//!
//! Scope: one request at a time on a keep-alive connection; request bodies always carry
//! `Content-Length` (the caller appends the body bytes itself); responses framed by
//! `Content-Length`, `Transfer-Encoding: chunked` or the connection closing. Limits: a response
//! head of at most [`MAX_HEAD_BYTES`], a body of at most [`MAX_BODY_BYTES`]; over either is an
//! error and the connection must be dropped. Not here: redirects, proxies, `Expect`,
//! content codings (a gzip *response* body is returned as is), upgrades (101 is an error).

pub mod request;
pub mod response;

pub use request::write_request_head;
pub use response::ResponseParser;

/// Largest response head (status line + headers + blank line), and largest chunked trailer.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Largest decoded response body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest chunk-size line (size, extensions, CRLF) of a chunked body.
pub const MAX_CHUNK_LINE_BYTES: usize = 4 * 1024;
/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("pganalytics-collector/", env!("CARGO_PKG_VERSION"));

/// Why a request could not be written or a response could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// The response head exceeds [`MAX_HEAD_BYTES`] (or a chunked trailer does).
    HeadTooLarge,
    /// The response body exceeds [`MAX_BODY_BYTES`].
    BodyTooLarge,
    /// The response breaks HTTP/1.1 framing; the text says where.
    Malformed(&'static str),
    /// A request part contains CR, LF, NUL or a character its grammar forbids.
    InvalidRequest(&'static str),
    /// The peer closed the connection before the response was complete.
    UnexpectedEof,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::HeadTooLarge => write!(f, "response head over {MAX_HEAD_BYTES} bytes"),
            HttpError::BodyTooLarge => write!(f, "response body over {MAX_BODY_BYTES} bytes"),
            HttpError::Malformed(what) => write!(f, "malformed response: {what}"),
            HttpError::InvalidRequest(what) => write!(f, "invalid request: {what}"),
            HttpError::UnexpectedEof => f.write_str("connection closed mid-response"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    pub status: u16,
    /// In arrival order, names as sent, values without surrounding whitespace. Bytes that are
    /// not UTF-8 are replaced by U+FFFD.
    pub headers: Vec<(String, String)>,
    /// Decoded (de-chunked) body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Retry-After` in its delta-seconds form (an HTTP date gives `None`).
    pub fn retry_after_secs(&self) -> Option<u64> {
        let v = self.header("retry-after")?;
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // All digits: only overflow can fail; a huge delay saturates.
        Some(v.parse().unwrap_or(u64::MAX))
    }
}

/// RFC 9110 `tchar`: the characters of a token (method, header name).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_and_retry_after() {
        let r = |v: &str| Response {
            status: 429,
            headers: vec![
                ("Retry-After".into(), v.into()),
                ("retry-after".into(), "1".into()),
            ],
            body: Vec::new(),
        };
        assert_eq!(r("120").header("RETRY-AFTER"), Some("120"));
        assert_eq!(r("120").header("x"), None);
        assert_eq!(r("120").retry_after_secs(), Some(120));
        assert_eq!(r("0").retry_after_secs(), Some(0));
        assert_eq!(r("Fri, 31 Dec 1999 23:59:59 GMT").retry_after_secs(), None);
        assert_eq!(r("-1").retry_after_secs(), None);
        assert_eq!(r("1.5").retry_after_secs(), None);
        assert_eq!(r("").retry_after_secs(), None);
        assert_eq!(
            r("99999999999999999999999").retry_after_secs(),
            Some(u64::MAX)
        );
        assert!(USER_AGENT.starts_with("pganalytics-collector/0."));
    }
}
