//! The response parser: bytes in as they arrive, one [`Response`] out.
//!
//! ```text
//!            ┌── 1xx (not 101): skipped ──┐
//!            ▼                            │
//!  Head ── blank line ──┬── HEAD request / 204 / 304 / Content-Length: 0 ──────► Done
//!                       ├── Content-Length: n ──► Length(n) ──────────────────► Done
//!                       ├── chunked ──► ChunkSize ⇄ ChunkData ⇄ ChunkDataEnd
//!                       │                  └── size 0 ──► Trailer ── blank ───► Done
//!                       └── neither ──► UntilClose ── finish_on_eof ──────────► Done
//! ```
//!
//! Quirks handled here: lines may end in a bare LF (as httparse accepts); empty lines before the
//! status line are skipped; chunk extensions and trailer fields are read and dropped; with both
//! `Transfer-Encoding` and `Content-Length`, chunked wins and the connection is not reused
//! (RFC 9112 §6.3); several identical `Content-Length` values are one. Obsolete line folding,
//! transfer codings other than `chunked`, and 101 are errors. After an error the parser keeps
//! returning it.

use super::{HttpError, MAX_BODY_BYTES, MAX_CHUNK_LINE_BYTES, MAX_HEAD_BYTES, Response, is_tchar};

/// At most this much of a `Content-Length` body is reserved before the bytes arrive.
const MAX_BODY_RESERVE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting the status line and headers in `head`.
    Head,
    /// This many body bytes still to come.
    Length(usize),
    /// Collecting a chunk-size line in `line`.
    ChunkSize,
    /// This many bytes of the current chunk still to come.
    ChunkData(usize),
    /// The CRLF after chunk data; `true` once the CR was seen.
    ChunkDataEnd(bool),
    /// Collecting trailer lines in `line`.
    Trailer,
    /// The body runs until the peer closes.
    UntilClose,
    /// `response` is complete.
    Done,
    /// An error happened; it is returned again by every call.
    Failed(HttpError),
}

/// Incremental HTTP/1.1 response parser for one response on a keep-alive connection.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    /// The head so far (bytes of complete and partial lines); at most [`MAX_HEAD_BYTES`].
    head: Vec<u8>,
    /// Where the current (incomplete) head line starts in `head`.
    line_start: usize,
    /// A non-empty line (the status line) has been seen in `head`.
    head_started: bool,
    /// The current chunk-size or trailer line.
    line: Vec<u8>,
    /// Trailer bytes so far, bounded by [`MAX_HEAD_BYTES`].
    trailer_bytes: usize,
    /// The request was HEAD: no body whatever the headers say.
    head_request: bool,
    /// The connection cannot carry another request after this response.
    close: bool,
    /// Filled in as parsing goes; handed out once `state` is `Done`.
    response: Response,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

/// Appends `input` to `buf` up to and including the first LF; returns (consumed, line ended).
/// `buf` may hold at most `limit` bytes: more is `over`.
fn take_line(
    buf: &mut Vec<u8>,
    input: &[u8],
    limit: usize,
    over: HttpError,
) -> Result<(usize, bool), HttpError> {
    let (n, ended) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (i + 1, true),
        None => (input.len(), false),
    };
    if buf.len().saturating_add(n) > limit {
        return Err(over);
    }
    buf.extend_from_slice(&input[..n]);
    Ok((n, ended))
}

/// A line without its LF and the CR before it, if any.
fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Field text: no control characters but HTAB.
fn is_field_text(s: &[u8]) -> bool {
    s.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// The comma-separated elements of a list header, trimmed, empty ones dropped.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(|s| s.trim_matches([' ', '\t']))
        .filter(|s| !s.is_empty())
}

impl ResponseParser {
    /// A parser for the response to any request but HEAD.
    pub fn new() -> Self {
        ResponseParser {
            state: State::Head,
            head: Vec::new(),
            line_start: 0,
            head_started: false,
            line: Vec::new(),
            trailer_bytes: 0,
            head_request: false,
            close: false,
            response: Response::default(),
        }
    }

    /// A parser for the response to a HEAD request (never a body).
    pub fn for_head_request() -> Self {
        ResponseParser {
            head_request: true,
            ..Self::new()
        }
    }

    /// Consumes what it can of `input`; returns the bytes consumed and whether the response is
    /// complete. It never consumes past the end of this response, so bytes left over belong to
    /// the next one. Once complete, further calls consume nothing.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, bool), HttpError> {
        let r = self.step(input);
        if let Err(e) = r {
            self.state = State::Failed(e);
            self.close = true;
        }
        r
    }

    /// The peer closed the connection: completes a close-delimited body; anything else not yet
    /// complete is [`HttpError::UnexpectedEof`].
    pub fn finish_on_eof(&mut self) -> Result<(), HttpError> {
        match self.state {
            State::Done => Ok(()),
            State::UntilClose => {
                self.state = State::Done;
                Ok(())
            }
            State::Failed(e) => Err(e),
            _ => {
                self.state = State::Failed(HttpError::UnexpectedEof);
                self.close = true;
                Err(HttpError::UnexpectedEof)
            }
        }
    }

    /// The response, once complete.
    pub fn response(&self) -> Option<&Response> {
        (self.state == State::Done).then_some(&self.response)
    }

    /// The response, once complete, moved out (the parser then holds an empty one).
    pub fn take_response(&mut self) -> Option<Response> {
        (self.state == State::Done).then(|| std::mem::take(&mut self.response))
    }

    /// The connection cannot be reused: `Connection: close`, HTTP/1.0 without keep-alive, a
    /// close-delimited body, or an error.
    pub fn must_close(&self) -> bool {
        self.close
    }

    fn step(&mut self, input: &[u8]) -> Result<(usize, bool), HttpError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                State::Done => return Ok((pos, true)),
                State::Failed(e) => return Err(e),
                _ if rest.is_empty() => return Ok((pos, false)),
                State::Head => {
                    let (n, ended) = take_line(
                        &mut self.head,
                        rest,
                        MAX_HEAD_BYTES,
                        HttpError::HeadTooLarge,
                    )?;
                    pos += n;
                    if ended {
                        let empty = trim_eol(&self.head[self.line_start..]).is_empty();
                        self.line_start = self.head.len();
                        if !empty {
                            self.head_started = true;
                        } else if self.head_started {
                            self.end_of_head()?;
                        }
                    }
                }
                State::Length(remaining) => {
                    let n = remaining.min(rest.len());
                    self.response.body.extend_from_slice(&rest[..n]);
                    pos += n;
                    self.state = if n == remaining {
                        State::Done
                    } else {
                        State::Length(remaining - n)
                    };
                }
                State::ChunkSize => {
                    let (n, ended) = take_line(
                        &mut self.line,
                        rest,
                        MAX_CHUNK_LINE_BYTES,
                        HttpError::Malformed("chunk size line too long"),
                    )?;
                    pos += n;
                    if ended {
                        self.end_of_chunk_size()?;
                    }
                }
                State::ChunkData(remaining) => {
                    let n = remaining.min(rest.len());
                    self.response.body.extend_from_slice(&rest[..n]);
                    pos += n;
                    self.state = if n == remaining {
                        State::ChunkDataEnd(false)
                    } else {
                        State::ChunkData(remaining - n)
                    };
                }
                State::ChunkDataEnd(cr) => {
                    self.state = match rest[0] {
                        b'\r' if !cr => State::ChunkDataEnd(true),
                        b'\n' => State::ChunkSize,
                        _ => return Err(HttpError::Malformed("no crlf after chunk data")),
                    };
                    pos += 1;
                }
                State::Trailer => {
                    let limit = MAX_HEAD_BYTES - self.trailer_bytes;
                    let (n, ended) =
                        take_line(&mut self.line, rest, limit, HttpError::HeadTooLarge)?;
                    pos += n;
                    if ended {
                        self.trailer_bytes += self.line.len();
                        let empty = trim_eol(&self.line).is_empty();
                        self.line.clear();
                        if empty {
                            self.state = State::Done;
                        }
                    }
                }
                State::UntilClose => {
                    if self.response.body.len() + rest.len() > MAX_BODY_BYTES {
                        return Err(HttpError::BodyTooLarge);
                    }
                    self.response.body.extend_from_slice(rest);
                    pos += rest.len();
                }
            }
        }
    }

    /// The blank line after the headers: parse them and choose how the body is framed.
    fn end_of_head(&mut self) -> Result<(), HttpError> {
        let head = std::mem::take(&mut self.head);
        let parsed = parse_head(&head);
        // Keep the allocation for a following head (1xx).
        self.head = head;
        self.head.clear();
        self.line_start = 0;
        self.head_started = false;
        let (http10, status, headers) = parsed?;

        if (100..200).contains(&status) {
            if status == 101 {
                return Err(HttpError::Malformed("unexpected 101 switching protocols"));
            }
            // 100 Continue, 102, 103: informational, the real response follows.
            return Ok(());
        }
        self.response.status = status;
        self.response.headers = headers;
        let r = &self.response;

        let mut close = false;
        let mut keep_alive = false;
        for (_, v) in r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        {
            for token in list(v) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
        self.close = close || (http10 && !keep_alive);

        let chunked = {
            let mut codings = r
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
                .flat_map(|(_, v)| list(v))
                .peekable();
            match codings.next() {
                None => false,
                Some(c) if c.eq_ignore_ascii_case("chunked") && codings.peek().is_none() => true,
                Some(_) => return Err(HttpError::Malformed("unsupported transfer-encoding")),
            }
        };
        let length = content_length(r)?;

        self.state = if self.head_request || status == 204 || status == 304 {
            State::Done
        } else if chunked {
            // Both headers: a smuggling sign; read this response, then drop the connection.
            self.close |= length.is_some();
            State::ChunkSize
        } else {
            match length {
                Some(0) => State::Done,
                Some(n) => {
                    self.response.body.reserve(n.min(MAX_BODY_RESERVE));
                    State::Length(n)
                }
                None => {
                    self.close = true;
                    State::UntilClose
                }
            }
        };
        Ok(())
    }

    /// A complete chunk-size line in `line`.
    fn end_of_chunk_size(&mut self) -> Result<(), HttpError> {
        let line = trim_eol(&self.line);
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 {
            return Err(HttpError::Malformed("chunk size"));
        }
        let mut size = 0usize;
        for &b in &line[..digits] {
            // unwrap: the byte is an ASCII hex digit.
            let d = char::from(b).to_digit(16).unwrap_or(0) as usize;
            size = size * 16 + d;
            // Checked per digit, so it never overflows: MAX_BODY_BYTES * 16 fits a usize.
            if size > MAX_BODY_BYTES {
                return Err(HttpError::BodyTooLarge);
            }
        }
        let ext = trim_ows(&line[digits..]);
        if !(ext.is_empty() || ext.starts_with(b";")) {
            return Err(HttpError::Malformed("chunk size"));
        }
        self.line.clear();
        if size == 0 {
            self.state = State::Trailer;
        } else if self.response.body.len() + size > MAX_BODY_BYTES {
            return Err(HttpError::BodyTooLarge);
        } else {
            self.state = State::ChunkData(size);
        }
        Ok(())
    }
}

/// The body length from `Content-Length` headers (all values must agree).
fn content_length(r: &Response) -> Result<Option<usize>, HttpError> {
    let mut length = None;
    for (_, v) in r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        let mut any = false;
        for value in v.split(',').map(|s| s.trim_matches([' ', '\t'])) {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::Malformed("content-length"));
            }
            let digits = value.trim_start_matches('0');
            // More digits than MAX_BODY_BYTES has: too large, whatever the value.
            let n = if digits.len() > 7 {
                return Err(HttpError::BodyTooLarge);
            } else {
                digits.parse::<usize>().unwrap_or(0)
            };
            if n > MAX_BODY_BYTES {
                return Err(HttpError::BodyTooLarge);
            }
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::Malformed("conflicting content-length"));
            }
            length = Some(n);
            any = true;
        }
        if !any {
            return Err(HttpError::Malformed("content-length"));
        }
    }
    Ok(length)
}

/// A parsed head: (HTTP/1.0?, status, headers).
type Head = (bool, u16, Vec<(String, String)>);

/// Status line and headers of a complete head.
fn parse_head(head: &[u8]) -> Result<Head, HttpError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(trim_eol)
        .skip_while(|l| l.is_empty());
    let status_line = lines.next().ok_or(HttpError::Malformed("status line"))?;
    let (http10, rest) = if let Some(rest) = status_line.strip_prefix(b"HTTP/1.1 ") {
        (false, rest)
    } else if let Some(rest) = status_line.strip_prefix(b"HTTP/1.0 ") {
        (true, rest)
    } else {
        return Err(HttpError::Malformed("status line"));
    };
    let (code, reason) = rest
        .split_at_checked(3)
        .ok_or(HttpError::Malformed("status code"))?;
    if !code.iter().all(u8::is_ascii_digit) || code[0] == b'0' {
        return Err(HttpError::Malformed("status code"));
    }
    if !(reason.is_empty() || reason[0] == b' ') || !is_field_text(reason) {
        return Err(HttpError::Malformed("status line"));
    }
    let status = code
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));

    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(HttpError::Malformed("folded header line"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HttpError::Malformed("header line without colon"))?;
        let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
        if name.is_empty() || !name.iter().copied().all(is_tchar) {
            return Err(HttpError::Malformed("header name"));
        }
        if !is_field_text(value) {
            return Err(HttpError::Malformed("header value"));
        }
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    Ok((http10, status, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One-shot parse of a response that fills `input` exactly.
    fn parse_all(input: &[u8]) -> Result<(Response, bool), HttpError> {
        let mut p = ResponseParser::new();
        let (n, done) = p.feed(input)?;
        if !done {
            p.finish_on_eof()?;
        } else {
            assert_eq!(n, input.len(), "consumed all");
        }
        Ok((p.response().cloned().unwrap(), p.must_close()))
    }

    const CONTENT_LENGTH: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";
    const CHUNKED: &[u8] =
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\nX-Request-Id: 7\r\n\r\n\
        4\r\n{\"ok\r\n\
        6;name=value;flag\r\n\":true\r\n\
        1 ; ext=\"quoted\"\r\n}\r\n\
        0\r\nX-Trailer: 1\r\nX-Other: two\r\n\r\n";
    const NO_CONTENT: &[u8] =
        b"HTTP/1.1 204 No Content\r\nDate: Fri, 27 Nov 2026 23:00:00 GMT\r\n\r\n";
    const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
    const RETRY: &[u8] =
        b"HTTP/1.1 429 Too Many Requests\r\nretry-AFTER: 30\r\ncontent-length: 0\r\n\r\n";
    const BARE_LF: &[u8] = b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc";
    const CLOSE_DELIMITED: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";

    fn valid() -> Vec<(&'static str, &'static [u8])> {
        vec![
            ("content-length", CONTENT_LENGTH),
            ("chunked", CHUNKED),
            ("204", NO_CONTENT),
            ("1xx", CONTINUE),
            ("retry", RETRY),
            ("bare lf", BARE_LF),
            ("close-delimited", CLOSE_DELIMITED),
        ]
    }

    #[test]
    fn content_length_body() {
        let (r, close) = parse_all(CONTENT_LENGTH).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"{\"ok\":true}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.headers[0],
            ("Content-Type".into(), "application/json".into())
        );
        assert!(!close);
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let (r, close) = parse_all(CHUNKED).unwrap();
        assert_eq!(r.status, 202);
        assert_eq!(r.body, b"{\"ok\":true}");
        assert_eq!(r.header("x-request-id"), Some("7"));
        assert_eq!(r.header("x-trailer"), None, "trailers are dropped");
        assert!(!close);
        // Upper-case hex, leading zeros, no trailers.
        let (r, _) =
            parse_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n00A\r\n0123456789\r\n000\r\n\r\n")
                .unwrap();
        assert_eq!(r.body, b"0123456789");
    }

    #[test]
    fn bodyless_statuses_and_head() {
        let (r, close) = parse_all(NO_CONTENT).unwrap();
        assert_eq!((r.status, r.body.len(), close), (204, 0, false));
        // 204/304 with a (bogus) length still have no body; the next bytes are not eaten.
        for status in ["204 No Content", "304 Not Modified"] {
            let input = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\nHTTP/1.1");
            let mut p = ResponseParser::new();
            assert_eq!(p.feed(input.as_bytes()).unwrap(), (input.len() - 8, true));
        }
        let mut p = ResponseParser::for_head_request();
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        assert_eq!(p.feed(input).unwrap(), (input.len(), true));
        assert!(p.response().unwrap().body.is_empty());
        assert!(!p.must_close());
    }

    #[test]
    fn informational_responses_are_skipped() {
        let (r, _) = parse_all(CONTINUE).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"{}"[..]));
        assert_eq!(r.header("link"), None);
        assert_eq!(
            parse_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n").unwrap_err(),
            HttpError::Malformed("unexpected 101 switching protocols")
        );
    }

    #[test]
    fn close_delimited_body() {
        let mut p = ResponseParser::new();
        assert_eq!(
            p.feed(CLOSE_DELIMITED).unwrap(),
            (CLOSE_DELIMITED.len(), false)
        );
        assert!(p.response().is_none());
        assert!(p.must_close());
        assert_eq!(p.feed(b" and more").unwrap(), (9, false));
        p.finish_on_eof().unwrap();
        assert_eq!(p.response().unwrap().body, b"until the end and more");
        // EOF anywhere else is an error.
        let mut p = ResponseParser::new();
        p.feed(&CONTENT_LENGTH[..CONTENT_LENGTH.len() - 1]).unwrap();
        assert_eq!(p.finish_on_eof(), Err(HttpError::UnexpectedEof));
        assert!(p.must_close());
        let mut p = ResponseParser::new();
        assert_eq!(p.finish_on_eof(), Err(HttpError::UnexpectedEof));
        // The peer closing after a complete response (or closing twice) loses nothing.
        let mut p = ResponseParser::new();
        assert_eq!(
            p.feed(CONTENT_LENGTH).unwrap(),
            (CONTENT_LENGTH.len(), true)
        );
        assert_eq!(p.finish_on_eof(), Ok(()));
        assert_eq!(p.finish_on_eof(), Ok(()));
        assert_eq!(p.response().unwrap().body, b"{\"ok\":true}");
        assert!(!p.must_close());
    }

    #[test]
    fn pipelined_responses() {
        let mut both = CONTENT_LENGTH.to_vec();
        both.extend_from_slice(CHUNKED);
        both.extend_from_slice(RETRY);
        let mut rest = &both[..];
        let mut got = Vec::new();
        for want in [CONTENT_LENGTH, CHUNKED, RETRY] {
            let mut p = ResponseParser::new();
            let (n, done) = p.feed(rest).unwrap();
            assert!(done);
            assert_eq!(n, want.len(), "stops at the end of its response");
            assert_eq!(
                p.feed(&rest[n..]).unwrap(),
                (0, true),
                "complete: consumes nothing"
            );
            got.push(p.take_response().unwrap().status);
            rest = &rest[n..];
        }
        assert!(rest.is_empty());
        assert_eq!(got, [200, 202, 429]);
    }

    #[test]
    fn retry_after_and_header_case() {
        let (r, _) = parse_all(RETRY).unwrap();
        assert_eq!(r.status, 429);
        assert_eq!(r.retry_after_secs(), Some(30));
        assert_eq!(r.header("Retry-After"), Some("30"));
        assert_eq!(r.headers[0].0, "retry-AFTER", "names kept as sent");
        let (r, _) = parse_all(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: Fri, 27 Nov 2026 23:00:00 GMT\r\nCONTENT-LENGTH:2\r\n\r\nno").unwrap();
        assert_eq!(
            (r.retry_after_secs(), r.body.as_slice()),
            (None, &b"no"[..])
        );
        // Whitespace around values, empty values, no reason phrase.
        let (r, _) = parse_all(
            b"HTTP/1.1 200\r\nX-A: \t padded \t\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (r.status, r.header("x-a"), r.header("x-empty")),
            (200, Some("padded"), Some(""))
        );
    }

    #[test]
    fn connection_reuse() {
        let close = |input: &[u8]| parse_all(input).unwrap().1;
        assert!(close(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(close(
            b"HTTP/1.1 200 OK\r\nConnection: foo, CLOSE\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!close(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(close(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!close(
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(close(CLOSE_DELIMITED));
        // Both framings: chunked wins, the connection is dropped afterwards.
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n";
        let (r, close) = parse_all(input).unwrap();
        assert_eq!((r.body.as_slice(), close), (&b"x"[..], true));
    }

    #[test]
    fn limits() {
        // A head of exactly MAX_HEAD_BYTES is fine; one byte more is not.
        let build = |total: usize| {
            let start = b"HTTP/1.1 200 OK\r\nX-Pad: ";
            let end = b"\r\nContent-Length: 0\r\n\r\n";
            let mut v = start.to_vec();
            v.resize(total - end.len(), b'a');
            v.extend_from_slice(end);
            v
        };
        assert!(parse_all(&build(MAX_HEAD_BYTES)).is_ok());
        assert_eq!(
            parse_all(&build(MAX_HEAD_BYTES + 1)).unwrap_err(),
            HttpError::HeadTooLarge
        );
        // Never any end of head.
        let mut p = ResponseParser::new();
        let mut last = Ok((0, false));
        for _ in 0..20 {
            last = p.feed(&[b'a'; 1000]);
        }
        assert_eq!(last, Err(HttpError::HeadTooLarge));

        let max = MAX_BODY_BYTES;
        let head = |len: usize| format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
        let mut ok = head(max).into_bytes();
        ok.resize(ok.len() + max, b'x');
        assert_eq!(parse_all(&ok).unwrap().0.body.len(), max);
        assert_eq!(
            parse_all(head(max + 1).as_bytes()).unwrap_err(),
            HttpError::BodyTooLarge
        );
        assert_eq!(
            parse_all(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999999\r\n\r\n")
                .unwrap_err(),
            HttpError::BodyTooLarge
        );
        assert!(
            parse_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0000000000000000000000000001\r\n\r\nx")
                .is_ok()
        );

        // Chunked: one huge chunk, a chunk size overflowing any integer, many chunks in total.
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for size in ["100001", "ffffffffffffffffffffffffffff"] {
            let mut v = chunked.to_vec();
            v.extend_from_slice(format!("{size}\r\n").as_bytes());
            assert_eq!(
                parse_all(&v).unwrap_err(),
                HttpError::BodyTooLarge,
                "{size}"
            );
        }
        let mut v = chunked.to_vec();
        for _ in 0..=(max / 0x8000) {
            v.extend_from_slice(b"8000\r\n");
            v.resize(v.len() + 0x8000, b'y');
            v.extend_from_slice(b"\r\n");
        }
        assert_eq!(parse_all(&v).unwrap_err(), HttpError::BodyTooLarge);
        // Huge trailers and chunk lines.
        let mut v = chunked.to_vec();
        v.extend_from_slice(b"0\r\n");
        for _ in 0..2000 {
            v.extend_from_slice(b"X-T: 12345678\r\n");
        }
        assert_eq!(parse_all(&v).unwrap_err(), HttpError::HeadTooLarge);
        let mut v = chunked.to_vec();
        v.extend_from_slice(b"1;");
        v.resize(v.len() + MAX_CHUNK_LINE_BYTES, b'e');
        assert_eq!(
            parse_all(&v).unwrap_err(),
            HttpError::Malformed("chunk size line too long")
        );

        // Close-delimited: a body of exactly the limit is fine, one byte more is not.
        let mut v = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        v.resize(v.len() + max, b'z');
        assert_eq!(parse_all(&v).unwrap().0.body.len(), max);
        v.push(b'z');
        assert_eq!(parse_all(&v).unwrap_err(), HttpError::BodyTooLarge);
        let mut v = CLOSE_DELIMITED.to_vec();
        v.resize(v.len() + max, b'z');
        assert_eq!(parse_all(&v).unwrap_err(), HttpError::BodyTooLarge);
    }

    #[test]
    fn malformed() {
        let cases: [&[u8]; 17] = [
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 099 OK\r\n\r\n",
            b"http/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1x\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        ];
        for input in cases {
            let mut p = ResponseParser::new();
            let e = p.feed(input).unwrap_err();
            assert!(
                matches!(e, HttpError::Malformed(_)),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            // Sticky, and the connection is dropped.
            assert_eq!(p.feed(b"HTTP/1.1 200 OK\r\n\r\n"), Err(e));
            assert_eq!(p.finish_on_eof(), Err(e));
            assert!(p.must_close() && p.response().is_none());
        }
        // Empty lines before the status line are skipped.
        let (r, _) = parse_all(b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(r.status, 200);
    }

    /// Chunked bodies up to the limit: one chunk of exactly `MAX_BODY_BYTES`, two halves; a
    /// total one byte over is refused even when no single chunk is.
    #[test]
    fn chunked_body_limit_both_sides() {
        let max = MAX_BODY_BYTES;
        let chunked = |sizes: &[usize]| {
            let mut v = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for &size in sizes {
                v.extend_from_slice(format!("{size:x}\r\n").as_bytes());
                v.resize(v.len() + size, b'c');
                v.extend_from_slice(b"\r\n");
            }
            v.extend_from_slice(b"0\r\n\r\n");
            v
        };
        assert_eq!(format!("{max:x}"), "100000");
        assert_eq!(parse_all(&chunked(&[max])).unwrap().0.body.len(), max);
        assert_eq!(
            parse_all(&chunked(&[max / 2, max / 2]))
                .unwrap()
                .0
                .body
                .len(),
            max
        );
        assert_eq!(
            parse_all(&chunked(&[max - 1, 2])).unwrap_err(),
            HttpError::BodyTooLarge
        );
        assert_eq!(
            parse_all(&chunked(&[1, max])).unwrap_err(),
            HttpError::BodyTooLarge
        );
    }

    /// A `Content-Length` body is reserved up front, but at most 64 KiB of it: an announced
    /// length (up to 1 MiB) does not allocate before the bytes arrive.
    #[test]
    fn body_reserve_is_bounded() {
        let reserved = |len: usize| {
            let mut p = ResponseParser::new();
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
            assert_eq!(p.feed(head.as_bytes()).unwrap(), (head.len(), false));
            p.response.body.capacity()
        };
        assert!(reserved(11) >= 11);
        let big = reserved(MAX_BODY_BYTES);
        assert!((64 * 1024..128 * 1024).contains(&big), "{big}");
    }

    /// Exact errors where a looser parser would take the input or blame the wrong thing.
    #[test]
    fn malformed_messages() {
        let err = |input: &[u8]| ResponseParser::new().feed(input).unwrap_err();
        for folded in [&b" folded"[..], b"\tfolded", b"\tX-B: 2", b" X-B: 2"] {
            let mut input = b"HTTP/1.1 200 OK\r\nX-A: 1\r\n".to_vec();
            input.extend_from_slice(folded);
            input.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
            assert_eq!(
                err(&input),
                HttpError::Malformed("folded header line"),
                "{folded:?}"
            );
        }
        // Only `chunked` alone (in one or several headers) is a transfer coding we read.
        for codings in [
            &b"Transfer-Encoding: gzip\r\n"[..],
            b"Transfer-Encoding: chunked, gzip\r\n",
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
            b"Transfer-Encoding: gzip, chunked\r\n",
        ] {
            let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
            input.extend_from_slice(codings);
            input.extend_from_slice(b"\r\n");
            assert_eq!(
                err(&input),
                HttpError::Malformed("unsupported transfer-encoding"),
                "{codings:?}"
            );
        }
        // After chunk data: CRLF or a bare LF, nothing else (not two CRs).
        let chunk = |after: &[u8]| {
            let mut v = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx".to_vec();
            v.extend_from_slice(after);
            v.extend_from_slice(b"0\r\n\r\n");
            v
        };
        assert_eq!(parse_all(&chunk(b"\r\n")).unwrap().0.body, b"x");
        assert_eq!(parse_all(&chunk(b"\n")).unwrap().0.body, b"x");
        for bad in [&b"\r\r\n"[..], b"\rx\n", b"x\r\n"] {
            assert_eq!(
                err(&chunk(bad)),
                HttpError::Malformed("no crlf after chunk data"),
                "{bad:?}"
            );
        }
    }

    /// Byte by byte, and every prefix to a fresh parser: never complete early, same result.
    #[test]
    fn every_prefix_and_byte_by_byte() {
        for (name, input) in valid() {
            let (whole, close) = parse_all(input).unwrap();
            let close_delimited = name == "close-delimited";

            let mut p = ResponseParser::new();
            for (i, b) in input.iter().enumerate() {
                let (n, done) = p.feed(std::slice::from_ref(b)).unwrap();
                assert_eq!(n, 1, "{name} byte {i}");
                assert_eq!(
                    done,
                    i + 1 == input.len() && !close_delimited,
                    "{name} byte {i}"
                );
            }
            if close_delimited {
                p.finish_on_eof().unwrap();
            }
            assert_eq!(p.response(), Some(&whole), "{name}");
            assert_eq!(p.must_close(), close, "{name}");

            for k in 0..input.len() {
                let mut p = ResponseParser::new();
                assert_eq!(
                    p.feed(&input[..k]).unwrap(),
                    (k, false),
                    "{name} prefix {k}"
                );
                assert!(p.response().is_none());
                // And the rest completes it identically.
                let (n, done) = p.feed(&input[k..]).unwrap();
                assert_eq!(
                    (n, done),
                    (input.len() - k, !close_delimited),
                    "{name} split {k}"
                );
                if close_delimited {
                    p.finish_on_eof().unwrap();
                }
                assert_eq!(p.response(), Some(&whole), "{name} split {k}");
            }
        }
    }
}
