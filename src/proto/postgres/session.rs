//! The PostgreSQL frontend/backend protocol (v3) as a pure state machine: bytes from the server
//! go in through [`Session::try_message`], bytes for the server come out of
//! [`Session::output`]. No socket, no clock, no randomness of ours (SCRAM's nonce is drawn by
//! postgres-protocol).
//!
//! ```text
//!            startup message
//!                  │
//!   ┌──────► Authenticating ──R(SASL)──► ScramContinue ──R(SASLContinue)──► ScramFinal
//!   │              │  ▲   R(cleartext/md5): PasswordMessage                  │
//!   │              │  └────────────────────────────────────────R(SASLFinal)──┘
//!   │        R(Ok) ▼
//!   │          Startup ── S / K / N ──┐
//!   │              │ Z ◄──────────────┘
//!   │              ▼          query()
//!   │            Ready ───────────────► Query ── T / D / C / I / E / N / S
//!   │              ▲                      │
//!   │              └──────── Z ───────────┘
//!   └ any E before Startup → PgError::Auth; any protocol violation → Broken (for good)
//! ```
//!
//! Every message header is checked against a cap ([`MAX_STARTUP_MESSAGE_BYTES`] until the
//! session is ready, then [`MAX_MESSAGE_BYTES`]) before postgres-protocol's `Message::parse`
//! sees it: that function reserves whatever length the server announces.
//!
//! Not here: SSLRequest (the driver sends it before the session starts), the extended query
//! protocol, COPY (a protocol error), cancel requests.

use super::PgError;
use super::rows::{Rows, RowsBuilder};
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{self, ChannelBinding, ScramSha256};
use postgres_protocol::message::backend::{ErrorFields, Message};
use postgres_protocol::message::frontend;

/// Tag of the DataRow message.
const DATA_ROW_TAG: u8 = b'D';

/// Largest backend message accepted once the session is ready (a DataRow of wide text).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// Largest backend message accepted before the first ReadyForQuery: authentication and
/// parameter messages are small, and the server is not trusted yet.
pub const MAX_STARTUP_MESSAGE_BYTES: usize = 64 << 10;
/// Largest result kept for one query (all DataRow bodies).
pub const MAX_RESULT_BYTES: usize = 256 << 20;

/// The message shown when the server asks for a password we do not have.
pub const NO_PASSWORD: &str = "password authentication requested by the server but no password is configured: set password_file, ~/.pgpass or PGPASSWORD";

/// Where the conversation is.
enum State {
    /// Waiting for an authentication request or AuthenticationOk.
    Authenticating,
    /// SASLInitialResponse sent; waiting for the server-first message.
    ScramContinue(Box<ScramSha256>),
    /// SASLResponse sent; waiting for the server-final message.
    ScramFinal(Box<ScramSha256>),
    /// Authenticated; parameters and the key arrive until ReadyForQuery.
    Startup,
    /// Idle: a query may be sent.
    Ready,
    /// A query is running; the first ErrorResponse is kept until ReadyForQuery.
    Query {
        rows: RowsBuilder,
        error: Option<PgError>,
    },
    /// A protocol violation or fatal error: nothing more is accepted.
    Broken,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Authenticating => "authentication",
            State::ScramContinue(_) | State::ScramFinal(_) => "scram authentication",
            State::Startup => "startup",
            State::Ready => "idle",
            State::Query { .. } => "query",
            State::Broken => "broken",
        }
    }
}

/// What a processed message led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Keep feeding (and send [`Session::output`] if not empty).
    Continue,
    /// ReadyForQuery: the startup is complete, or the query's result can be taken.
    Ready,
}

/// One connection's protocol state.
pub struct Session {
    state: State,
    user: String,
    password: Option<String>,
    /// ParameterStatus values, latest per name.
    parameters: Vec<(String, String)>,
    backend_pid: i32,
    /// Bytes to send to the server, in order.
    out: BytesMut,
    /// The result of the last query, until taken.
    result: Option<Result<Rows, PgError>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state.name())
            .field("user", &self.user)
            .field("backend_pid", &self.backend_pid)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session whose StartupMessage (with `parameters`, which include `user`) is queued in
    /// the output.
    pub fn new(
        user: &str,
        password: Option<&str>,
        parameters: &[(&str, &str)],
    ) -> Result<Session, PgError> {
        let mut out = BytesMut::new();
        frontend::startup_message(parameters.iter().copied(), &mut out)
            .map_err(|e| PgError::Protocol(format!("startup message: {e}")))?;
        Ok(Session {
            state: State::Authenticating,
            user: user.to_string(),
            password: password.map(str::to_string),
            parameters: Vec::new(),
            backend_pid: 0,
            out,
            result: None,
        })
    }

    /// Bytes waiting to be sent.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Marks the output as sent.
    pub fn clear_output(&mut self) {
        self.out.clear();
    }

    /// Idle after startup: [`Session::query`] may be called.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready)
    }

    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    /// Queues a simple Query message.
    pub fn query(&mut self, sql: &str) -> Result<(), PgError> {
        if !self.is_ready() {
            return Err(PgError::Protocol(format!(
                "query while the session is {}",
                self.state.name()
            )));
        }
        frontend::query(sql, &mut self.out)
            .map_err(|e| PgError::Protocol(format!("query message: {e}")))?;
        self.state = State::Query {
            rows: RowsBuilder::default(),
            error: None,
        };
        Ok(())
    }

    /// The result of the query that ended with the last `Progress::Ready`.
    pub fn take_result(&mut self) -> Option<Result<Rows, PgError>> {
        self.result.take()
    }

    /// Queues Terminate.
    pub fn terminate(&mut self) {
        frontend::terminate(&mut self.out);
        self.state = State::Broken;
    }

    /// Processes the first message of `input` if it is complete: `Ok(None)` = need more bytes
    /// (nothing consumed, nothing changed); `Ok(Some((n, progress)))` = `n` bytes consumed.
    /// An error leaves the session broken.
    pub fn try_message(&mut self, input: &[u8]) -> Result<Option<(usize, Progress)>, PgError> {
        match self.try_message_inner(input) {
            Err(e) => {
                self.state = State::Broken;
                Err(e)
            }
            ok => ok,
        }
    }

    fn try_message_inner(&mut self, input: &[u8]) -> Result<Option<(usize, Progress)>, PgError> {
        if matches!(self.state, State::Broken) {
            return Err(PgError::Protocol("the session is broken".to_string()));
        }
        let Some((&[tag], rest)) = input.split_first_chunk::<1>() else {
            return Ok(None);
        };
        let Some((len, _)) = rest.split_first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*len) as usize;
        let cap = match self.state {
            State::Ready | State::Query { .. } => MAX_MESSAGE_BYTES,
            _ => MAX_STARTUP_MESSAGE_BYTES,
        };
        if len < 4 {
            return Err(PgError::Protocol(format!(
                "message {} with length {len} < 4",
                tag_name(tag)
            )));
        }
        if len > cap {
            return Err(PgError::Protocol(format!(
                "message {} of {len} bytes exceeds the {cap} byte limit during {}",
                tag_name(tag),
                self.state.name()
            )));
        }
        let total = len + 1;
        let Some(whole) = input.get(..total) else {
            return Ok(None);
        };
        // DataRow, by far the most frequent message, is stored straight from the input: no
        // copy into a BytesMut and no parse (RowsBuilder::push_row validates its layout).
        if tag == DATA_ROW_TAG
            && let State::Query { rows, .. } = &mut self.state
        {
            let Some((count, body)) = whole.get(5..).and_then(|p| p.split_first_chunk::<2>())
            else {
                return Err(PgError::Protocol("bad data row".to_string()));
            };
            // i16 on the wire: a negative count reads as > 32767 and fails the column check.
            rows.push_row(u16::from_be_bytes(*count), body)
                .map_err(PgError::Protocol)?;
            if rows.bytes() > MAX_RESULT_BYTES {
                return Err(PgError::Protocol(format!(
                    "query result exceeds the {MAX_RESULT_BYTES} byte limit"
                )));
            }
            return Ok(Some((total, Progress::Continue)));
        }
        let mut buf = BytesMut::from(whole);
        let message = match Message::parse(&mut buf) {
            Ok(Some(m)) => m,
            Ok(None) => return Err(PgError::Protocol("incomplete message".to_string())),
            Err(e) => {
                return Err(PgError::Protocol(format!(
                    "bad message {}: {e}",
                    tag_name(tag)
                )));
            }
        };
        let progress = self.handle(tag, message)?;
        Ok(Some((total, progress)))
    }

    fn handle(&mut self, tag: u8, message: Message) -> Result<Progress, PgError> {
        use Message as M;
        // Messages the server may send at any time.
        match message {
            M::ParameterStatus(body) => {
                let name = body.name().map_err(|e| bad_field("parameter name", e))?;
                let value = body.value().map_err(|e| bad_field("parameter value", e))?;
                match self.parameters.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.to_string(),
                    None => self.parameters.push((name.to_string(), value.to_string())),
                }
                return Ok(Progress::Continue);
            }
            M::NoticeResponse(_) | M::NotificationResponse(_) => return Ok(Progress::Continue),
            _ => {}
        }
        let state = std::mem::replace(&mut self.state, State::Broken);
        match (state, message) {
            (State::Authenticating | State::ScramContinue(_), M::ErrorResponse(body)) => {
                let e = ServerError::from_fields(body.fields());
                Err(PgError::Auth {
                    message: e.message,
                    code: e.code,
                })
            }
            (State::ScramFinal(_), M::ErrorResponse(body)) => {
                let e = ServerError::from_fields(body.fields());
                Err(PgError::Auth {
                    message: e.message,
                    code: e.code,
                })
            }
            (State::Startup | State::Ready, M::ErrorResponse(body)) => {
                Err(ServerError::from_fields(body.fields()).into())
            }
            (State::Authenticating, M::AuthenticationOk) => {
                self.state = State::Startup;
                Ok(Progress::Continue)
            }
            (State::Authenticating, M::AuthenticationCleartextPassword) => {
                let password = self.password()?.to_owned();
                frontend::password_message(password.as_bytes(), &mut self.out)
                    .map_err(|e| PgError::Protocol(format!("password message: {e}")))?;
                self.state = State::Authenticating;
                Ok(Progress::Continue)
            }
            (State::Authenticating, M::AuthenticationMd5Password(body)) => {
                let password = self.password()?.to_owned();
                let hash = md5_hash(self.user.as_bytes(), password.as_bytes(), body.salt());
                frontend::password_message(hash.as_bytes(), &mut self.out)
                    .map_err(|e| PgError::Protocol(format!("password message: {e}")))?;
                self.state = State::Authenticating;
                Ok(Progress::Continue)
            }
            (State::Authenticating, M::AuthenticationSasl(body)) => {
                let mut mechanisms = body.mechanisms();
                let mut offered = Vec::new();
                let mut scram = false;
                while let Some(m) = mechanisms
                    .next()
                    .map_err(|e| bad_field("sasl mechanism", e))?
                {
                    scram |= m == sasl::SCRAM_SHA_256;
                    offered.push(m.to_string());
                }
                if !scram {
                    return Err(auth_error(format!(
                        "the server offers no supported sasl mechanism ({})",
                        offered.join(", ")
                    )));
                }
                let password = self.password()?.to_owned();
                // Channel binding is not used: "n" (client does not support it) is accepted by
                // servers that offer SCRAM-SHA-256-PLUS as well.
                let exchange = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response(sasl::SCRAM_SHA_256, exchange.message(), &mut self.out)
                    .map_err(|e| PgError::Protocol(format!("sasl message: {e}")))?;
                self.state = State::ScramContinue(Box::new(exchange));
                Ok(Progress::Continue)
            }
            (State::ScramContinue(mut exchange), M::AuthenticationSaslContinue(body)) => {
                exchange
                    .update(body.data())
                    .map_err(|e| auth_error(format!("scram server-first message: {e}")))?;
                frontend::sasl_response(exchange.message(), &mut self.out)
                    .map_err(|e| PgError::Protocol(format!("sasl message: {e}")))?;
                self.state = State::ScramFinal(exchange);
                Ok(Progress::Continue)
            }
            (State::ScramFinal(mut exchange), M::AuthenticationSaslFinal(body)) => {
                exchange
                    .finish(body.data())
                    .map_err(|e| auth_error(format!("scram server-final message: {e}")))?;
                // Only AuthenticationOk (or an error) may follow.
                self.state = State::Authenticating;
                Ok(Progress::Continue)
            }
            (
                State::Authenticating,
                M::AuthenticationKerberosV5
                | M::AuthenticationScmCredential
                | M::AuthenticationGss
                | M::AuthenticationSspi
                | M::AuthenticationGssContinue(_),
            ) => Err(auth_error(
                "the server asks for an unsupported authentication method (kerberos, gss, sspi or scm)"
                    .to_string(),
            )),
            (State::Startup, M::BackendKeyData(body)) => {
                self.backend_pid = body.process_id();
                self.state = State::Startup;
                Ok(Progress::Continue)
            }
            (State::Startup, M::ReadyForQuery(_)) => {
                self.state = State::Ready;
                Ok(Progress::Ready)
            }
            (State::Query { mut rows, error }, M::RowDescription(body)) => {
                let mut columns = Vec::new();
                let mut fields = body.fields();
                while let Some(f) = fields.next().map_err(|e| bad_field("row description", e))? {
                    if f.format() != 0 {
                        return Err(PgError::Protocol(format!(
                            "column {:?} in binary format",
                            f.name()
                        )));
                    }
                    columns.push(f.name().to_string());
                }
                rows.set_columns(columns);
                self.state = State::Query { rows, error };
                Ok(Progress::Continue)
            }
            // DataRow in a query is handled before parsing (try_message_inner).
            (
                state @ State::Query { .. },
                M::CommandComplete(_) | M::EmptyQueryResponse,
            ) => {
                self.state = state;
                Ok(Progress::Continue)
            }
            (State::Query { rows, error }, M::ErrorResponse(body)) => {
                let e = ServerError::from_fields(body.fields());
                if e.is_fatal() {
                    // The backend exits after a FATAL error: the connection is gone.
                    return Err(e.into());
                }
                self.state = State::Query {
                    rows,
                    error: error.or(Some(e.into())),
                };
                Ok(Progress::Continue)
            }
            (State::Query { rows, error }, M::ReadyForQuery(_)) => {
                self.result = Some(match error {
                    Some(e) => Err(e),
                    None => Ok(rows.finish()),
                });
                self.state = State::Ready;
                Ok(Progress::Ready)
            }
            (state, _) => Err(PgError::Protocol(format!(
                "unexpected message {} during {}",
                tag_name(tag),
                state.name()
            ))),
        }
    }

    fn password(&self) -> Result<&str, PgError> {
        self.password
            .as_deref()
            .ok_or_else(|| auth_error(NO_PASSWORD.to_string()))
    }
}

fn auth_error(message: String) -> PgError {
    PgError::Auth {
        message,
        code: String::new(),
    }
}

fn bad_field(what: &str, e: std::io::Error) -> PgError {
    PgError::Protocol(format!("bad {what}: {e}"))
}

/// A readable name for a message tag in errors.
fn tag_name(tag: u8) -> String {
    if tag.is_ascii_graphic() {
        format!("'{}'", tag as char)
    } else {
        format!("0x{tag:02x}")
    }
}

/// The fields of an ErrorResponse we keep.
struct ServerError {
    severity: String,
    code: String,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

impl ServerError {
    /// Reads the fields; a malformed field list keeps what was read before it.
    fn from_fields(mut fields: ErrorFields<'_>) -> ServerError {
        let mut e = ServerError {
            severity: String::new(),
            code: String::new(),
            message: String::new(),
            detail: None,
            hint: None,
        };
        let mut localized_severity = String::new();
        while let Ok(Some(f)) = fields.next() {
            let value = String::from_utf8_lossy(f.value_bytes()).into_owned();
            match f.type_() {
                b'V' => e.severity = value,
                b'S' => localized_severity = value,
                b'C' => e.code = value,
                b'M' => e.message = value,
                b'D' => e.detail = Some(value),
                b'H' => e.hint = Some(value),
                _ => {}
            }
        }
        if e.severity.is_empty() {
            e.severity = localized_severity;
        }
        e
    }

    fn is_fatal(&self) -> bool {
        matches!(self.severity.as_str(), "FATAL" | "PANIC")
    }
}

impl From<ServerError> for PgError {
    fn from(e: ServerError) -> Self {
        PgError::Server {
            severity: e.severity,
            code: e.code,
            message: e.message,
            detail: e.detail,
            hint: e.hint,
        }
    }
}

/// `server_version` → `server_version_num`: "15.18 (Debian …)" → 150018, "12.22" → 120022,
/// "9.6.24" → 90624, "18beta1" / "16devel" → 180000 / 160000. Unparseable → 0.
pub fn parse_server_version(s: &str) -> u32 {
    let head = s.split_whitespace().next().unwrap_or("");
    let mut parts = head.split('.');
    let leading = |p: &str| -> Option<u32> {
        let digits: &str = &p[..p.bytes().take_while(u8::is_ascii_digit).count()];
        digits.parse().ok()
    };
    let Some(major) = parts.next().and_then(leading) else {
        return 0;
    };
    let minor = parts.next().and_then(leading).unwrap_or(0);
    if major >= 10 {
        major
            .saturating_mul(10_000)
            .saturating_add(minor.min(9_999))
    } else {
        let patch = parts.next().and_then(leading).unwrap_or(0);
        major * 10_000 + minor.min(99) * 100 + patch.min(99)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend message: tag, length, body.
    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn cstrs(parts: &[&str]) -> Vec<u8> {
        let mut b = Vec::new();
        for p in parts {
            b.extend_from_slice(p.as_bytes());
            b.push(0);
        }
        b
    }

    /// The server side of an md5 login and one query, message by message, shaped as
    /// PostgreSQL 15 sends them.
    fn exchange() -> Vec<Vec<u8>> {
        let mut row_desc = 2u16.to_be_bytes().to_vec();
        for name in ["n", "t"] {
            row_desc.extend_from_slice(&cstrs(&[name]));
            row_desc.extend_from_slice(&[
                0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4, 255, 255, 255, 255, 0, 0,
            ]);
        }
        let mut data_row = 2u16.to_be_bytes().to_vec();
        data_row.extend_from_slice(&1i32.to_be_bytes());
        data_row.push(b'7');
        data_row.extend_from_slice(&(-1i32).to_be_bytes());
        let mut error = b"SERROR\0VERROR\0C22012\0Mdivision by zero\0".to_vec();
        error.push(0);
        vec![
            msg(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]),
            msg(b'R', &[0, 0, 0, 0]),
            msg(
                b'S',
                &cstrs(&["server_version", "15.18 (Debian 15.18-1.pgdg120+1)"]),
            ),
            msg(b'S', &cstrs(&["TimeZone", "UTC"])),
            msg(b'K', &[0, 0, 0x30, 0x39, 1, 2, 3, 4]),
            msg(b'Z', b"I"),
            msg(b'T', &row_desc),
            msg(b'N', b"SNOTICE\0Mhello\0\0"),
            msg(b'D', &data_row),
            msg(b'C', &cstrs(&["SELECT 1"])),
            msg(b'E', &error),
            msg(b'Z', b"I"),
        ]
    }

    fn session(password: Option<&str>) -> Session {
        Session::new("u", password, &[("user", "u"), ("database", "postgres")]).unwrap()
    }

    #[test]
    fn every_prefix_needs_more_and_consumes_nothing() {
        let mut s = session(Some("pw"));
        assert!(!s.output().is_empty(), "startup message queued");
        s.clear_output();
        let mut readies = 0;
        for (i, m) in exchange().iter().enumerate() {
            if i == 6 {
                s.query("select 7 as n, null as t").unwrap();
                s.clear_output();
            }
            for len in 0..m.len() {
                assert_eq!(
                    s.try_message(&m[..len]).unwrap(),
                    None,
                    "message {i} prefix {len}"
                );
            }
            let (n, progress) = s.try_message(m).unwrap().unwrap();
            assert_eq!(n, m.len());
            if i == 0 {
                // md5 answer: 'p', length, "md5" + 32 hex digits, NUL.
                assert_eq!(s.output().len(), 1 + 4 + 36);
                assert!(s.output()[5..].starts_with(b"md5"));
                s.clear_output();
            }
            if progress == Progress::Ready {
                readies += 1;
            }
        }
        assert_eq!(readies, 2);
        assert_eq!(s.backend_pid(), 12345);
        assert_eq!(s.parameter("TimeZone"), Some("UTC"));
        let e = s.take_result().unwrap().unwrap_err();
        assert_eq!(e.sqlstate(), Some("22012"));
        assert!(!e.is_connection_lost());
        assert!(s.is_ready());
    }

    #[test]
    fn a_result_keeps_rows_and_columns() {
        let mut s = session(Some("pw"));
        let ex = exchange();
        for m in &ex[..6] {
            s.try_message(m).unwrap().unwrap();
        }
        s.query("select").unwrap();
        for m in ex[6..10].iter().chain([&msg(b'Z', b"I")]) {
            s.try_message(m).unwrap().unwrap();
        }
        let rows = s.take_result().unwrap().unwrap();
        assert_eq!(rows.columns().collect::<Vec<_>>(), ["n", "t"]);
        let row = rows.iter().next().unwrap();
        assert_eq!(row.get_u64("n").unwrap(), Some(7));
        assert_eq!(row.get_str("t").unwrap(), None);
    }

    #[test]
    fn oversized_headers_are_rejected_before_allocation() {
        // During startup the cap is small.
        let mut s = session(None);
        let mut huge = vec![b'R'];
        huge.extend_from_slice(&(MAX_STARTUP_MESSAGE_BYTES as u32 + 1).to_be_bytes());
        let e = s.try_message(&huge).unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
        assert!(e.is_connection_lost());
        // Once ready, 64 MiB; 0xffffffff is rejected, not reserved.
        let mut s = session(Some("pw"));
        for m in &exchange()[..6] {
            s.try_message(m).unwrap().unwrap();
        }
        s.query("select 1").unwrap();
        for len in [u32::MAX, MAX_MESSAGE_BYTES as u32 + 1] {
            let mut m = vec![b'D'];
            m.extend_from_slice(&len.to_be_bytes());
            assert!(s.try_message(&m).is_err());
        }
        // Lengths below 4 are invalid too.
        let mut s = session(None);
        assert!(s.try_message(&[b'R', 0, 0, 0, 3]).is_err());
    }

    #[test]
    fn auth_requests_without_a_password_say_what_to_configure() {
        for request in [
            msg(b'R', &[0, 0, 0, 3]),
            msg(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]),
            msg(
                b'R',
                &[
                    0, 0, 0, 10, b'S', b'C', b'R', b'A', b'M', b'-', b'S', b'H', b'A', b'-', b'2',
                    b'5', b'6', 0, 0,
                ],
            ),
        ] {
            let e = session(None).try_message(&request).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("authentication failed: {NO_PASSWORD}")
            );
        }
    }

    #[test]
    fn unexpected_messages_break_the_session() {
        let mut s = session(None);
        assert!(s.try_message(&msg(b'D', &[0, 0])).is_err());
        assert!(s.try_message(&msg(b'Z', b"I")).is_err(), "broken for good");
        let mut s = session(None);
        assert!(s.try_message(&msg(b'!', b"")).is_err());
        // SCRAM: AuthenticationOk without the server-final message is refused.
        let mut s = session(Some("pw"));
        s.try_message(&msg(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"))
            .unwrap()
            .unwrap();
        assert!(s.try_message(&msg(b'R', &[0, 0, 0, 0])).is_err());
        // A query before startup completes.
        assert!(session(None).query("select 1").is_err());
    }

    #[test]
    fn server_versions() {
        for (s, n) in [
            ("15.18 (Debian 15.18-1.pgdg120+1)", 150_018),
            ("12.22", 120_022),
            ("18beta1", 180_000),
            ("16devel", 160_000),
            ("17rc1", 170_000),
            ("9.6.24", 90_624),
            ("10.5", 100_005),
            ("", 0),
            ("x", 0),
            ("99999999999", 0),
        ] {
            assert_eq!(parse_server_version(s), n, "{s}");
        }
    }
}
