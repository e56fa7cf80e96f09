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
//! sees it: that function reserves whatever length the server announces. Until the first
//! ReadyForQuery the server is not trusted yet: at most [`MAX_STARTUP_PARAMETERS`]
//! ParameterStatus messages and [`MAX_STARTUP_TOTAL_BYTES`] in all (SECURITY.md, bounded input).
//!
//! Which authentication requests are answered is the [`AuthPolicy`]'s decision (`require_auth`,
//! `channel_binding`): a request for a method it does not allow ends the session before any
//! secret is queued. SCRAM-SHA-256-PLUS binds the exchange to the server certificate
//! (`tls-server-end-point`, hashed by the driver, see [`super::cert`]).
//!
//! Not here: SSLRequest (the driver sends it before the session starts), the extended query
//! protocol, COPY (a protocol error), cancel requests.

use super::PgError;
use super::rows::{Rows, RowsBuilder};
use super::scram::{Binding, Scram};
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl;
use postgres_protocol::message::backend::{ErrorFields, Message};
use postgres_protocol::message::frontend;

use crate::config::{ChannelBinding as ChannelBindingMode, PgAuthMethod};

/// Tag of the DataRow message.
const DATA_ROW_TAG: u8 = b'D';

/// Largest backend message accepted once the session is ready (a DataRow of wide text).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Largest message parsed in the session's kept scratch buffer; larger ones get their own.
const SCRATCH_KEEP_BYTES: usize = 8 << 10;
/// Largest backend message accepted before the first ReadyForQuery: authentication and
/// parameter messages are small, and the server is not trusted yet.
pub const MAX_STARTUP_MESSAGE_BYTES: usize = 8 << 10;
/// Largest ErrorResponse before the first ReadyForQuery (a server may explain at length).
pub const MAX_STARTUP_ERROR_BYTES: usize = 64 << 10;
/// Most ParameterStatus messages before the first ReadyForQuery, and most distinct parameters
/// kept at any time.
pub const MAX_STARTUP_PARAMETERS: usize = 256;
/// Most bytes received before the first ReadyForQuery, all messages together.
pub const MAX_STARTUP_TOTAL_BYTES: usize = 64 << 10;
/// Largest ParameterStatus message at any time (names and values are short).
pub const MAX_PARAMETER_MESSAGE_BYTES: usize = 8 << 10;
/// Largest result kept for one query (all DataRow bodies).
pub const MAX_RESULT_BYTES: usize = 32 << 20;
/// Tag of the ErrorResponse and ParameterStatus messages.
const ERROR_TAG: u8 = b'E';
const PARAMETER_TAG: u8 = b'S';

/// The message shown when the server asks for a password we do not have.
pub const NO_PASSWORD: &str = "password authentication requested by the server but no password is configured: set password_file, ~/.pgpass or PGPASSWORD";

/// Which authentication requests a session answers (`[postgres] require_auth` and
/// `channel_binding`, SECURITY.md "which authentication is acceptable").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPolicy {
    /// The methods the server may ask for.
    pub allowed: Vec<PgAuthMethod>,
    /// Whether `allowed` was written by the operator (`require_auth`) or is the default: the
    /// refusal says which key to change.
    pub explicit: bool,
    pub channel_binding: ChannelBindingMode,
    /// `Some` when TLS is up: the `tls-server-end-point` data (the server certificate hashed as
    /// RFC 5929 says), or why it cannot be computed.
    pub tls_end_point: Option<Result<Vec<u8>, String>>,
}

impl AuthPolicy {
    /// `require_auth` as configured (`None` = the default), for a connection that is
    /// `trusted` (TLS with a verified certificate, or a Unix socket whose peer passed the
    /// `requirepeer` check): the default allows a cleartext password only there.
    pub fn new(
        require_auth: Option<&[PgAuthMethod]>,
        trusted: bool,
        channel_binding: ChannelBindingMode,
        tls_end_point: Option<Result<Vec<u8>, String>>,
    ) -> AuthPolicy {
        let allowed = match require_auth {
            Some(list) => list.to_vec(),
            None => {
                let mut v = vec![
                    PgAuthMethod::ScramSha256,
                    PgAuthMethod::Md5,
                    PgAuthMethod::None,
                ];
                if trusted {
                    v.push(PgAuthMethod::Password);
                }
                v
            }
        };
        AuthPolicy {
            allowed,
            explicit: require_auth.is_some(),
            channel_binding,
            tls_end_point,
        }
    }

    fn allows(&self, m: PgAuthMethod) -> bool {
        self.allowed.contains(&m)
    }

    /// Why a request for `m` is refused, if it is: one line naming the method and the key.
    fn refusal(&self, m: PgAuthMethod) -> Option<String> {
        let what = match m {
            PgAuthMethod::Password => "a cleartext password",
            PgAuthMethod::Md5 => "md5 authentication",
            PgAuthMethod::ScramSha256 => "scram-sha-256 authentication",
            PgAuthMethod::None => "no authentication",
        };
        if self.channel_binding == ChannelBindingMode::Require && m != PgAuthMethod::ScramSha256 {
            return Some(format!(
                "the server asks for {what}, but [postgres] channel_binding = \"require\" needs SCRAM-SHA-256-PLUS: refused before sending anything"
            ));
        }
        if self.allows(m) {
            return None;
        }
        let allowed: Vec<&str> = self.allowed.iter().map(|m| m.as_str()).collect();
        Some(if self.explicit {
            format!(
                "the server asks for {what}, which [postgres] require_auth = \"{}\" does not allow: refused before sending anything",
                allowed.join(",")
            )
        } else if m == PgAuthMethod::Password {
            format!(
                "the server asks for {what} over a connection that is neither TLS with a verified certificate nor a Unix socket whose owner passed requirepeer: refused before sending it; use sslmode = verify-full (or verify-ca), or list password in [postgres] require_auth to allow it"
            )
        } else {
            format!(
                "the server asks for {what}, which the default [postgres] require_auth ({}) does not allow: refused; set require_auth to allow it",
                allowed.join(",")
            )
        })
    }
}

impl Default for AuthPolicy {
    /// The default `require_auth` on an untrusted connection, no TLS.
    fn default() -> Self {
        AuthPolicy::new(None, false, ChannelBindingMode::Prefer, None)
    }
}

/// Where the conversation is.
enum State {
    /// Waiting for an authentication request or AuthenticationOk.
    Authenticating,
    /// SASLInitialResponse sent; waiting for the server-first message.
    ScramContinue(Box<Scram>),
    /// SASLResponse sent; waiting for the server-final message.
    ScramFinal(Box<Scram>),
    /// The SCRAM server-final message checked out; only AuthenticationOk may follow.
    ScramDone,
    /// Authenticated; parameters and the key arrive until ReadyForQuery.
    Startup,
    /// Idle: a query may be sent.
    Ready,
    /// A query is running; the first ErrorResponse is kept until ReadyForQuery (boxed: it is
    /// rare, and this state is moved with every message).
    Query {
        rows: RowsBuilder,
        error: Option<Box<PgError>>,
    },
    /// A protocol violation or fatal error: nothing more is accepted.
    Broken,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Authenticating => "authentication",
            State::ScramContinue(_) | State::ScramFinal(_) | State::ScramDone => {
                "scram authentication"
            }
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
    /// The message being parsed (postgres-protocol parses from a `BytesMut`): its allocation is
    /// reclaimed for the next once the message is dropped, so a query's few non-DataRow
    /// messages allocate nothing.
    scratch: BytesMut,
    /// The result of the last query, until taken.
    result: Option<Result<Rows, PgError>>,
    /// Statements of the running query whose results are still to be split off at their
    /// CommandComplete ([`Session::query_split`]); 0 for a plain query.
    split: usize,
    /// The results split off so far, in order, until taken.
    earlier: Vec<Rows>,
    /// Their bytes: the cap on a query's results ([`MAX_RESULT_BYTES`]) counts them too.
    earlier_bytes: usize,
    /// Results the split-off statements fill, kept buffers and all (the last one first).
    split_spares: Vec<Rows>,
    policy: AuthPolicy,
    /// A password or SCRAM exchange was answered (else AuthenticationOk means "none").
    answered: bool,
    /// The SCRAM exchange used channel binding (SCRAM-SHA-256-PLUS).
    bound: bool,
    /// Before the first ReadyForQuery: bytes and ParameterStatus messages received.
    startup_bytes: usize,
    startup_parameters: usize,
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
    /// With the default [`AuthPolicy`] (no TLS, untrusted connection).
    pub fn new(
        user: &str,
        password: Option<&str>,
        parameters: &[(&str, &str)],
    ) -> Result<Session, PgError> {
        Session::with_policy(user, password, parameters, AuthPolicy::default())
    }

    /// A session that answers authentication requests as `policy` says.
    pub fn with_policy(
        user: &str,
        password: Option<&str>,
        parameters: &[(&str, &str)],
        policy: AuthPolicy,
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
            scratch: BytesMut::new(),
            result: None,
            split: 0,
            earlier: Vec::new(),
            earlier_bytes: 0,
            split_spares: Vec::new(),
            policy,
            answered: false,
            bound: false,
            startup_bytes: 0,
            startup_parameters: 0,
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

    /// A query's result has begun (a RowDescription or a row came) and its end has not.
    pub fn is_receiving(&self) -> bool {
        matches!(&self.state, State::Query { rows, .. } if rows.has_columns())
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
        self.query_reusing(sql, None)
    }

    /// Queues a simple Query message whose result fills `spare` (buffers kept), if given.
    pub fn query_reusing(&mut self, sql: &str, spare: Option<Rows>) -> Result<(), PgError> {
        if !self.is_ready() {
            return Err(PgError::Protocol(format!(
                "query while the session is {}",
                self.state.name()
            )));
        }
        frontend::query(sql, &mut self.out)
            .map_err(|e| PgError::Protocol(format!("query message: {e}")))?;
        self.state = State::Query {
            rows: spare.map(RowsBuilder::reusing).unwrap_or_default(),
            error: None,
        };
        Ok(())
    }

    /// Queues a simple Query message of `statements` statements (separated by `;`) whose
    /// results are kept apart: the last one through [`Session::take_result`], the others
    /// through [`Session::take_earlier`]. PostgreSQL runs them one after the other in one
    /// implicit transaction, and the first error ends them all (the result is that error).
    /// The results are filled into those taken from the end of `spares` (results handed back:
    /// the last one first), one per statement while there are any.
    pub fn query_split(
        &mut self,
        sql: &str,
        statements: usize,
        spares: &mut Vec<Rows>,
    ) -> Result<(), PgError> {
        let first = spares.pop();
        self.query_reusing(sql, first)?;
        self.split = statements.saturating_sub(1);
        self.earlier.clear();
        self.earlier_bytes = 0;
        // In the order they are popped: the next one handed back last.
        let from = spares.len().saturating_sub(self.split);
        self.split_spares.clear();
        self.split_spares.extend(spares.drain(from..));
        Ok(())
    }

    /// The results split off by the last [`Session::query_split`], in order (empty after an
    /// error).
    pub fn take_earlier(&mut self) -> Vec<Rows> {
        std::mem::take(&mut self.earlier)
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
        let started = matches!(self.state, State::Ready | State::Query { .. });
        let cap = match tag {
            PARAMETER_TAG => MAX_PARAMETER_MESSAGE_BYTES,
            _ if started => MAX_MESSAGE_BYTES,
            ERROR_TAG => MAX_STARTUP_ERROR_BYTES,
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
        if !started {
            // Checked on the header: a flood is refused before its bytes are awaited.
            if self.startup_bytes + total > MAX_STARTUP_TOTAL_BYTES {
                return Err(PgError::Protocol(format!(
                    "the server sent more than {MAX_STARTUP_TOTAL_BYTES} bytes before the session was ready"
                )));
            }
            if tag == PARAMETER_TAG && self.startup_parameters >= MAX_STARTUP_PARAMETERS {
                return Err(PgError::Protocol(format!(
                    "the server sent more than {MAX_STARTUP_PARAMETERS} parameter messages before the session was ready"
                )));
            }
        }
        let Some(whole) = input.get(..total) else {
            return Ok(None);
        };
        if !started {
            self.startup_bytes += total;
            self.startup_parameters += usize::from(tag == PARAMETER_TAG);
        }
        // DataRow, by far the most frequent message, is stored straight from the input: no
        // copy into a BytesMut and no parse (RowsBuilder::push_row validates its layout).
        if tag == DATA_ROW_TAG
            && let State::Query { rows, .. } = &mut self.state
        {
            let Some((count, body)) = whole.get(5..).and_then(|p| p.split_first_chunk::<2>())
            else {
                return Err(PgError::Protocol("bad data row".to_string()));
            };
            // Checked before the row is stored: the results of a query (all of a split one's)
            // never grow past the cap.
            let count = u16::from_be_bytes(*count);
            if self.earlier_bytes + rows.bytes() + RowsBuilder::row_bytes(count, body)
                > MAX_RESULT_BYTES
            {
                return Err(PgError::Protocol(format!(
                    "query result exceeds the {MAX_RESULT_BYTES} byte limit"
                )));
            }
            // i16 on the wire: a negative count reads as > 32767 and fails the column check.
            rows.push_row(count, body).map_err(PgError::Protocol)?;
            return Ok(Some((total, Progress::Continue)));
        }
        let mut large;
        let buf = if total > SCRATCH_KEEP_BYTES {
            // A rare large message (a long error or notice): its room is not kept.
            large = BytesMut::from(whole);
            &mut large
        } else {
            self.scratch.clear();
            self.scratch.extend_from_slice(whole);
            &mut self.scratch
        };
        let message = match Message::parse(buf) {
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
                let known = self.parameters.len();
                match self.parameters.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.to_string(),
                    None if known >= MAX_STARTUP_PARAMETERS => {
                        return Err(PgError::Protocol(format!(
                            "the server reported more than {MAX_STARTUP_PARAMETERS} parameters"
                        )));
                    }
                    None => self.parameters.push((name.to_string(), value.to_string())),
                }
                return Ok(Progress::Continue);
            }
            M::NoticeResponse(_) | M::NotificationResponse(_) => return Ok(Progress::Continue),
            _ => {}
        }
        let state = std::mem::replace(&mut self.state, State::Broken);
        match (state, message) {
            (
                State::Authenticating | State::ScramContinue(_) | State::ScramDone,
                M::ErrorResponse(body),
            ) => {
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
                // The server asked for nothing (trust, peer): "none" must be allowed.
                if !self.answered
                    && let Some(refusal) = self.policy.refusal(PgAuthMethod::None)
                {
                    return Err(auth_error(refusal));
                }
                self.state = State::Startup;
                Ok(Progress::Continue)
            }
            (State::ScramDone, M::AuthenticationOk) => {
                if self.policy.channel_binding == ChannelBindingMode::Require && !self.bound {
                    return Err(auth_error(
                        "the server completed authentication without channel binding, but [postgres] channel_binding = \"require\"".to_string(),
                    ));
                }
                self.state = State::Startup;
                Ok(Progress::Continue)
            }
            (State::Authenticating, M::AuthenticationCleartextPassword) => {
                self.check_method(PgAuthMethod::Password)?;
                let password = self.password()?.to_owned();
                self.answered = true;
                frontend::password_message(password.as_bytes(), &mut self.out)
                    .map_err(|e| PgError::Protocol(format!("password message: {e}")))?;
                self.state = State::Authenticating;
                Ok(Progress::Continue)
            }
            (State::Authenticating, M::AuthenticationMd5Password(body)) => {
                self.check_method(PgAuthMethod::Md5)?;
                let password = self.password()?.to_owned();
                self.answered = true;
                let hash = md5_hash(self.user.as_bytes(), password.as_bytes(), body.salt());
                frontend::password_message(hash.as_bytes(), &mut self.out)
                    .map_err(|e| PgError::Protocol(format!("password message: {e}")))?;
                self.state = State::Authenticating;
                Ok(Progress::Continue)
            }
            (State::Authenticating, M::AuthenticationSasl(body)) => {
                self.check_method(PgAuthMethod::ScramSha256)?;
                let mut mechanisms = body.mechanisms();
                let mut offered = Vec::new();
                let (mut scram, mut plus) = (false, false);
                while let Some(m) = mechanisms
                    .next()
                    .map_err(|e| bad_field("sasl mechanism", e))?
                {
                    scram |= m == sasl::SCRAM_SHA_256;
                    plus |= m == sasl::SCRAM_SHA_256_PLUS;
                    if offered.len() < 8 {
                        offered.push(m.to_string());
                    }
                }
                let (mechanism, binding) = self.scram_mechanism(scram, plus, &offered)?;
                let password = self.password()?.to_owned();
                self.answered = true;
                self.bound = mechanism == sasl::SCRAM_SHA_256_PLUS;
                let exchange = Scram::new(&password, binding)
                    .map_err(|e| auth_error(format!("scram: {e}")))?;
                frontend::sasl_initial_response(mechanism, exchange.message(), &mut self.out)
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
                self.state = State::ScramDone;
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
                // The names are written into the Strings of a result reused, if any.
                let mut columns = rows.take_names();
                let mut count = 0;
                let mut fields = body.fields();
                while let Some(f) = fields.next().map_err(|e| bad_field("row description", e))? {
                    if f.format() != 0 {
                        return Err(PgError::Protocol(format!(
                            "column {:?} in binary format",
                            f.name()
                        )));
                    }
                    match columns.get_mut(count) {
                        Some(name) => {
                            name.clear();
                            name.push_str(f.name());
                        }
                        None => columns.push(f.name().to_string()),
                    }
                    count += 1;
                }
                columns.truncate(count);
                rows.set_columns(columns);
                self.state = State::Query { rows, error };
                Ok(Progress::Continue)
            }
            // DataRow in a query is handled before parsing (try_message_inner).
            (State::Query { rows, error }, M::CommandComplete(_) | M::EmptyQueryResponse) => {
                if self.split > 0 && error.is_none() {
                    // A statement of a split query ended: its result is kept apart.
                    self.split -= 1;
                    self.earlier_bytes += rows.bytes();
                    self.earlier.push(rows.finish());
                    let next = self.split_spares.pop().map(RowsBuilder::reusing);
                    self.state = State::Query {
                        rows: next.unwrap_or_default(),
                        error,
                    };
                } else {
                    self.state = State::Query { rows, error };
                }
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
                    error: error.or_else(|| Some(Box::new(e.into()))),
                };
                Ok(Progress::Continue)
            }
            (State::Query { rows, error }, M::ReadyForQuery(_)) => {
                self.split = 0;
                self.split_spares.clear();
                self.result = Some(match error {
                    Some(e) => {
                        self.earlier.clear();
                        Err(*e)
                    }
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

    /// Refuses a request for `m` that the policy does not allow, before any secret is queued.
    fn check_method(&self, m: PgAuthMethod) -> Result<(), PgError> {
        match self.policy.refusal(m) {
            Some(refusal) => Err(auth_error(refusal)),
            None => Ok(()),
        }
    }

    /// The SASL mechanism and gs2 channel-binding flag, as libpq chooses them: PLUS with
    /// `tls-server-end-point` when TLS is up and the server offers it (unless disabled); "y"
    /// (we could bind, the server did not offer) over TLS otherwise; "n" without TLS.
    fn scram_mechanism(
        &self,
        scram: bool,
        plus: bool,
        offered: &[String],
    ) -> Result<(&'static str, Binding), PgError> {
        let mode = self.policy.channel_binding;
        let tls = self.policy.tls_end_point.as_ref();
        if plus
            && mode != ChannelBindingMode::Disable
            && let Some(end_point) = tls
        {
            return match end_point {
                Ok(data) => Ok((sasl::SCRAM_SHA_256_PLUS, Binding::EndPoint(data.clone()))),
                Err(why) => Err(auth_error(format!(
                    "channel binding: {why}; set [postgres] channel_binding = \"disable\" to authenticate without it"
                ))),
            };
        }
        if mode == ChannelBindingMode::Require {
            return Err(auth_error(if tls.is_none() {
                "[postgres] channel_binding = \"require\" needs TLS (sslmode require or stronger, over TCP); this connection has none".to_string()
            } else {
                format!(
                    "[postgres] channel_binding = \"require\" but the server does not offer SCRAM-SHA-256-PLUS ({})",
                    offered.join(", ")
                )
            }));
        }
        if !scram {
            return Err(auth_error(format!(
                "the server offers no supported sasl mechanism ({})",
                offered.join(", ")
            )));
        }
        let binding = if tls.is_some() && mode != ChannelBindingMode::Disable {
            Binding::Unrequested
        } else {
            Binding::Unsupported
        };
        Ok((sasl::SCRAM_SHA_256, binding))
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
        // Once ready, 16 MiB; 0xffffffff is rejected, not reserved.
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
            let all = [
                PgAuthMethod::Password,
                PgAuthMethod::Md5,
                PgAuthMethod::ScramSha256,
            ];
            let policy = AuthPolicy::new(Some(&all), false, ChannelBindingMode::Prefer, None);
            let mut s = Session::with_policy("u", None, &[("user", "u")], policy).unwrap();
            s.clear_output();
            let e = s.try_message(&request).unwrap_err();
            assert!(s.output().is_empty());
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

    const CLEARTEXT: &[u8] = &[b'R', 0, 0, 0, 8, 0, 0, 0, 3];
    const MD5: &[u8] = &[b'R', 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4];
    const OK: &[u8] = &[b'R', 0, 0, 0, 8, 0, 0, 0, 0];

    fn with(policy: AuthPolicy) -> Session {
        let mut s = Session::with_policy("u", Some("pw"), &[("user", "u")], policy).unwrap();
        s.clear_output();
        s
    }

    fn sasl(mechanisms: &[&str]) -> Vec<u8> {
        let mut body = 10u32.to_be_bytes().to_vec();
        body.extend_from_slice(&cstrs(mechanisms));
        body.push(0);
        msg(b'R', &body)
    }

    /// Refused with a line containing `needle`, and nothing queued for the server.
    fn refused(mut s: Session, request: &[u8], needle: &str) {
        let e = s.try_message(request).unwrap_err();
        assert!(s.output().is_empty(), "{e}");
        assert!(matches!(e, PgError::Auth { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(needle), "{text}");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn the_default_refuses_cleartext_on_an_untrusted_connection() {
        let prefer = ChannelBindingMode::Prefer;
        refused(
            with(AuthPolicy::default()),
            CLEARTEXT,
            "sslmode = verify-full",
        );
        // Trusted (verified TLS, checked socket): the password goes.
        let mut s = with(AuthPolicy::new(None, true, prefer, None));
        s.try_message(CLEARTEXT).unwrap().unwrap();
        assert!(s.output().ends_with(b"pw\0"));
        // md5, SCRAM and none are in the default.
        let mut s = with(AuthPolicy::default());
        s.try_message(MD5).unwrap().unwrap();
        assert!(!s.output().is_empty());
        with(AuthPolicy::default())
            .try_message(OK)
            .unwrap()
            .unwrap();
        // Listed explicitly: allowed anywhere.
        let explicit = [PgAuthMethod::Password];
        let mut s = with(AuthPolicy::new(Some(&explicit), false, prefer, None));
        s.try_message(CLEARTEXT).unwrap().unwrap();
    }

    #[test]
    fn require_auth_refuses_what_it_does_not_list() {
        let prefer = ChannelBindingMode::Prefer;
        let scram = [PgAuthMethod::ScramSha256];
        let policy = || AuthPolicy::new(Some(&scram), true, prefer, None);
        refused(with(policy()), MD5, "require_auth = \"scram-sha-256\"");
        refused(with(policy()), CLEARTEXT, "cleartext password");
        // No authentication at all (trust) is "none".
        refused(with(policy()), OK, "no authentication");
        let mut s = with(policy());
        s.try_message(&sasl(&["SCRAM-SHA-256"])).unwrap().unwrap();
        assert!(s.output().starts_with(b"p"));
    }

    #[test]
    fn channel_binding_modes() {
        use ChannelBindingMode as C;
        let end_point = || Some(Ok(vec![7u8; 32]));
        let both = sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
        // require: only SCRAM-SHA-256-PLUS over TLS.
        refused(
            with(AuthPolicy::new(None, true, C::Require, end_point())),
            CLEARTEXT,
            "channel_binding",
        );
        refused(
            with(AuthPolicy::new(None, true, C::Require, end_point())),
            OK,
            "channel_binding",
        );
        refused(
            with(AuthPolicy::new(None, false, C::Require, None)),
            &both,
            "needs TLS",
        );
        refused(
            with(AuthPolicy::new(None, false, C::Require, end_point())),
            &sasl(&["SCRAM-SHA-256"]),
            "does not offer SCRAM-SHA-256-PLUS",
        );
        // PLUS with tls-server-end-point: the mechanism and the gs2 header say so.
        for mode in [C::Require, C::Prefer] {
            let mut s = with(AuthPolicy::new(None, false, mode, end_point()));
            s.try_message(&both).unwrap().unwrap();
            let out = String::from_utf8_lossy(s.output()).into_owned();
            assert!(out.contains("SCRAM-SHA-256-PLUS\0"), "{out}");
            assert!(out.contains("p=tls-server-end-point,,n=,r="), "{out}");
        }
        // prefer over TLS without PLUS offered: "y"; without TLS or disabled: "n".
        for (mode, tls, gs2) in [
            (C::Prefer, end_point(), "y,,n=,r="),
            (C::Prefer, None, "n,,n=,r="),
            (C::Disable, end_point(), "n,,n=,r="),
        ] {
            let mut s = with(AuthPolicy::new(None, false, mode, tls));
            let offer = if mode == C::Disable {
                &both
            } else {
                &sasl(&["SCRAM-SHA-256"])
            };
            s.try_message(offer).unwrap().unwrap();
            let out = String::from_utf8_lossy(s.output()).into_owned();
            assert!(out.contains("SCRAM-SHA-256\0"), "{out}");
            assert!(out.contains(gs2), "{mode:?}: {out}");
        }
        // A certificate whose hash cannot be determined: a clear refusal.
        refused(
            with(AuthPolicy::new(
                None,
                false,
                C::Prefer,
                Some(Err("signature algorithm X".into())),
            )),
            &both,
            "channel_binding = \"disable\"",
        );
    }

    fn ready_session() -> Session {
        let mut s = session(Some("pw"));
        for m in &exchange()[..6] {
            s.try_message(m).unwrap().unwrap();
        }
        s
    }

    /// A result reused for the next query carries that query's columns only: more, fewer or
    /// none (a command without rows) than the result it reuses.
    #[test]
    fn a_reused_result_has_the_new_columns() {
        let row_desc = |names: &[&str]| {
            let mut b = (names.len() as u16).to_be_bytes().to_vec();
            for name in names {
                b.extend_from_slice(&cstrs(&[name]));
                b.extend_from_slice(&[
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4, 255, 255, 255, 255, 0, 0,
                ]);
            }
            msg(b'T', &b)
        };
        let mut s = ready_session();
        let mut spare = None;
        for names in [
            &["a", "bb"][..],
            &["longer name", "c", "d"],
            &["e"],
            &[],
            &["f", "g"],
        ] {
            s.query_reusing("q", spare.take()).unwrap();
            if !names.is_empty() {
                s.try_message(&row_desc(names)).unwrap().unwrap();
            }
            s.try_message(&msg(b'C', &cstrs(&["SELECT 0"])))
                .unwrap()
                .unwrap();
            s.try_message(&msg(b'Z', b"I")).unwrap().unwrap();
            let rows = s.take_result().unwrap().unwrap();
            assert_eq!(rows.columns().collect::<Vec<_>>(), names);
            spare = Some(rows);
        }
    }

    /// A split query's results come apart and in order, whatever results they reuse; an
    /// error in any statement is the query's result and nothing of the others is kept; a
    /// plain query over several statements still gives one result (the last).
    #[test]
    fn a_split_query_keeps_each_statements_result() {
        let row_desc = |name: &str| {
            let mut b = 1u16.to_be_bytes().to_vec();
            b.extend_from_slice(&cstrs(&[name]));
            b.extend_from_slice(&[
                0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 255, 255, 255, 255, 255, 255, 0, 0,
            ]);
            msg(b'T', &b)
        };
        let row = |v: &str| {
            let mut b = 1u16.to_be_bytes().to_vec();
            b.extend_from_slice(&(v.len() as i32).to_be_bytes());
            b.extend_from_slice(v.as_bytes());
            msg(b'D', &b)
        };
        let complete = msg(b'C', &cstrs(&["SELECT 1"]));
        let ready = msg(b'Z', b"I");
        let statement = |s: &mut Session, name: &str, values: &[&str]| {
            s.try_message(&row_desc(name)).unwrap().unwrap();
            for v in values {
                s.try_message(&row(v)).unwrap().unwrap();
            }
            s.try_message(&complete).unwrap().unwrap();
        };
        let texts = |rows: &Rows| -> Vec<String> {
            rows.iter()
                .map(|r| r.str_at(0).unwrap().unwrap().to_string())
                .collect()
        };
        let mut s = ready_session();
        let mut spares = Vec::new();
        for _ in 0..3 {
            s.query_split("a; b; c", 3, &mut spares).unwrap();
            statement(&mut s, "a", &["1"]);
            statement(&mut s, "b", &[]);
            statement(&mut s, "c", &["2", "3"]);
            assert_eq!(s.try_message(&ready).unwrap().unwrap().1, Progress::Ready);
            let last = s.take_result().unwrap().unwrap();
            let mut all = s.take_earlier();
            all.push(last);
            let columns: Vec<Vec<&str>> = all.iter().map(|r| r.columns().collect()).collect();
            assert_eq!(columns, [["a"], ["b"], ["c"]]);
            assert_eq!(
                all.iter().map(texts).collect::<Vec<_>>(),
                [vec!["1"], vec![], vec!["2", "3"]]
            );
            spares = all;
        }
        // An error in the second statement: the query's result, nothing else kept.
        s.query_split("a; b", 2, &mut spares).unwrap();
        statement(&mut s, "a", &["1"]);
        let mut e = b"SERROR\0C42P01\0Mno such table\0".to_vec();
        e.push(0);
        s.try_message(&msg(b'E', &e)).unwrap().unwrap();
        s.try_message(&ready).unwrap().unwrap();
        assert!(s.take_result().unwrap().is_err());
        assert!(s.take_earlier().is_empty());
        // A plain query of two statements: the last one's result, as before.
        s.query("a; c").unwrap();
        statement(&mut s, "a", &["1"]);
        statement(&mut s, "c", &["2"]);
        s.try_message(&ready).unwrap().unwrap();
        assert_eq!(texts(&s.take_result().unwrap().unwrap()), ["2"]);
        assert!(s.take_earlier().is_empty());
    }

    #[test]
    fn input_before_ready_is_bounded() {
        let param = |i: usize| msg(b'S', &cstrs(&[&format!("p{i}"), "v"]));
        // 256 ParameterStatus are fine, the 257th is refused on its header.
        let mut s = session(Some("pw"));
        s.try_message(OK).unwrap().unwrap();
        for i in 0..MAX_STARTUP_PARAMETERS {
            s.try_message(&param(i)).unwrap().unwrap();
        }
        let e = s.try_message(&param(999)[..5]).unwrap_err();
        assert!(e.to_string().contains("256 parameter messages"), "{e}");
        // 64 KiB in all: long (but each allowed) notices add up.
        let mut s = session(Some("pw"));
        let notice = msg(b'N', &vec![b'x'; 8000]);
        let mut sent = 0;
        let e = loop {
            match s.try_message(&notice) {
                Ok(_) => sent += notice.len(),
                Err(e) => break e,
            }
        };
        assert!(sent <= MAX_STARTUP_TOTAL_BYTES, "{sent}");
        assert!(
            e.to_string().contains("before the session was ready"),
            "{e}"
        );
        // 8 KiB per message, 64 KiB for an error.
        let e = session(None)
            .try_message(&msg(b'N', &vec![b'x'; 8 << 10]))
            .unwrap_err();
        assert!(e.to_string().contains("8192 byte limit"), "{e}");
        let mut error = b"SFATAL\0VFATAL\0C28000\0M".to_vec();
        error.extend_from_slice(&vec![b'y'; 40_000]);
        error.extend_from_slice(b"\0\0");
        let e = session(None).try_message(&msg(b'E', &error)).unwrap_err();
        assert_eq!(e.sqlstate(), Some("28000"), "{e}");
        // After ready, ParameterStatus stays small and distinct names are bounded.
        let mut s = ready_session();
        assert!(s.try_message(&msg(b'S', &vec![b'x'; 9000])[..5]).is_err());
        let mut s = ready_session();
        let e = (0..300)
            .find_map(|i| s.try_message(&param(i)).err())
            .unwrap();
        assert!(e.to_string().contains("parameters"), "{e}");
    }

    #[test]
    fn a_result_is_capped_before_it_is_stored() {
        let mut s = ready_session();
        s.query("select").unwrap();
        capped(s, false);
        // The statements of a split query share the cap: a lying server cannot multiply it.
        let mut s = ready_session();
        s.query_split("select; select", 2, &mut Vec::new()).unwrap();
        capped(s, true);
    }

    /// Feeds rows of 12 MiB until the third passes the cap; with `split`, the second is in a
    /// result of its own.
    fn capped(mut s: Session, split: bool) {
        let mut desc = 1u16.to_be_bytes().to_vec();
        desc.extend_from_slice(&cstrs(&["t"]));
        desc.extend_from_slice(&[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 255, 255, 255, 255, 255, 255, 0, 0,
        ]);
        s.try_message(&msg(b'T', &desc)).unwrap().unwrap();
        let field = 12usize << 20;
        let mut body = 1u16.to_be_bytes().to_vec();
        body.extend_from_slice(&(field as i32).to_be_bytes());
        body.resize(body.len() + field, b'a');
        let row = msg(b'D', &body);
        s.try_message(&row).unwrap().unwrap();
        if split {
            s.try_message(&msg(b'C', &cstrs(&["SELECT 1"])))
                .unwrap()
                .unwrap();
            s.try_message(&msg(b'T', &desc)).unwrap().unwrap();
        }
        s.try_message(&row).unwrap().unwrap();
        let e = s.try_message(&row).unwrap_err();
        assert!(e.to_string().contains("33554432 byte limit"), "{e}");
        assert!(e.is_connection_lost());
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
