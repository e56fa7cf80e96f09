//! The backend client: the one way to the pgAnalytics backend. It owns the connection and the
//! authentication (docs/protocol.md, authentication): the token or the shared secret, the refresh
//! before expiry, the re-registration when a token can no longer be refreshed, and the one
//! retry after a 401. The HTTPS sink pushes through it, the run loop pulls the configuration
//! through it, and `register` registers through it.
//!
//! ```text
//!  HttpsSink ──push──┐
//!  run loop ──pull───┼──▶ Backend ── call: token ready? ──▶ request ──▶ 401? ──▶ refresh /
//!  register ─────────┘      │          (sign, refresh,                   re-sign / register,
//!                           │           register)                        then once more
//!                           └── Transport (conn::Conn: TLS 1.3, deadlines, signal fd)
//! ```
//!
//! Not here: batches, backoff and outcomes (the sink); what a pulled document may set and how
//! it is applied (`config::pull`); the state files' names (`state`).

use super::auth::{self, Auth, Prepared, Token};
use super::conn::{ConnConfig, ConnError, Request, Transport};
use super::register::{self, Registration};
use crate::agent_log::{self, Repeated};
use crate::config::{self, Config, pull};
use crate::proto::http::Response;
use crate::state::{self, StateDir};
use std::time::Instant;

pub const REFRESH_PATH: &str = "/api/v1/collectors/refresh-token";
pub const REGISTER_PATH: &str = "/api/v1/collectors/register";

/// What the client is built from: `[auth]`, the connection's part of the configuration, and
/// the state directory (the token and the registration's files).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    pub auth: config::Auth,
    pub conn: ConnConfig,
    pub state: StateDir,
}

impl ClientSettings {
    pub fn from_config(config: &Config) -> Result<ClientSettings, String> {
        Ok(ClientSettings {
            auth: config.auth.clone(),
            conn: ConnConfig::from_config(config)?,
            state: StateDir::new(&config.collector.state_dir),
        })
    }
}

/// Who is calling: the envelope identity and the wall-clock second of the call.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub collector_id: &'a str,
    pub hostname: &'a str,
    pub now_unix: i64,
}

/// Why a call did not get an answer to act on.
#[derive(Debug)]
pub enum CallError {
    /// A stop signal arrived while waiting.
    Interrupted,
    /// Worth trying again later (connection, TLS, refused token, missing registration): the
    /// status when the backend answered, and its `Retry-After` in seconds (0 when none).
    Failed {
        status: Option<u16>,
        msg: String,
        retry_after: u64,
    },
}

impl CallError {
    fn msg(msg: impl Into<String>) -> CallError {
        CallError::Failed {
            status: None,
            msg: msg.into(),
            retry_after: 0,
        }
    }
}

impl From<ConnError> for CallError {
    fn from(e: ConnError) -> CallError {
        match e {
            ConnError::Interrupted => CallError::Interrupted,
            ConnError::Transient(msg) | ConnError::Config(msg) => CallError::msg(msg),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Interrupted => f.write_str("interrupted by a stop signal"),
            CallError::Failed { msg, .. } => f.write_str(msg),
        }
    }
}

/// What a config pull came to.
#[derive(Debug)]
pub enum PullResult {
    /// 304, 404, or a version already applied.
    Nothing,
    New {
        version: Option<i64>,
        pulled: pull::Pulled,
    },
    /// 401 (after the one refresh) or another failure: wait for the next interval.
    Failed(String),
}

pub struct Backend<T: Transport> {
    transport: T,
    auth: Auth,
    settings: ClientSettings,
    /// The id of a re-registration; envelopes use it from then on.
    registered_id: Option<String>,
    /// Early refreshes (before the token expires) that failed in a row.
    refresh_failing: Repeated,
    /// The last push after SIGTERM: every wait ends by then.
    deadline: Option<Instant>,
    /// When this process last registered (unix seconds): at most once per hour.
    last_registration: Option<i64>,
}

/// Re-registration creates a new identity on the backend: at most once per this many seconds,
/// and never while `collector.id` is younger (security rule S5).
pub const REREGISTER_EVERY_SECS: i64 = 3600;

impl<T: Transport> Backend<T> {
    /// A client that authenticates as `[auth]` says (the key or token is read now).
    pub fn new(transport: T, settings: ClientSettings) -> Result<Backend<T>, String> {
        let auth = Auth::new(&settings.auth, &settings.state)?;
        Ok(Backend {
            transport,
            auth,
            settings,
            registered_id: None,
            refresh_failing: Repeated::default(),
            deadline: None,
            last_registration: None,
        })
    }

    /// A client for `register` alone: no token or key is read (there may be none yet).
    pub fn for_registration(transport: T, settings: ClientSettings) -> Backend<T> {
        let file = auth::token_path(&settings.auth, &settings.state);
        Backend {
            transport,
            auth: Auth::Backend { file, token: None },
            settings,
            registered_id: None,
            refresh_failing: Repeated::default(),
            deadline: None,
            last_registration: None,
        }
    }

    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The id of a re-registration during this run, which replaces the engine's.
    pub fn registered_id(&self) -> Option<&str> {
        self.registered_id.as_deref()
    }

    /// The id envelopes carry: a re-registration's, else the engine's; an unregistered engine
    /// with a backend token takes the token's `collector_id` claim (they must match).
    pub fn envelope_id<'a>(&'a self, engine_id: &'a str) -> &'a str {
        if let Some(id) = self.registered_id.as_deref() {
            return id;
        }
        if engine_id == "unregistered"
            && self.auth.is_backend()
            && let Some(claim) = self.auth.token().and_then(|t| t.collector_id.as_deref())
        {
            return claim;
        }
        engine_id
    }

    /// New settings (SIGHUP, a pulled document): `[auth]` and the TLS files are read again; a
    /// current backend token is kept when the token file did not change.
    pub fn reconfigure(&mut self, settings: ClientSettings) {
        match Auth::new(&settings.auth, &settings.state) {
            Ok(mut a) => {
                if let (
                    Auth::Backend {
                        token: new,
                        file: nf,
                    },
                    Auth::Backend {
                        token: old,
                        file: of,
                    },
                ) = (&mut a, &mut self.auth)
                    && nf == of
                    && new.is_none()
                {
                    *new = old.take();
                }
                self.auth = a;
            }
            Err(e) => agent_log::error("push", &format!("[auth] not reloaded: {e}"), &[]),
        }
        if let Err(e) = self.transport.reconfigure(&settings.conn) {
            agent_log::error("push", &format!("TLS settings not reloaded: {e}"), &[]);
        }
        self.settings = settings;
    }

    /// The last calls (after SIGTERM): every wait ends by `deadline`, whatever signals arrive.
    pub fn last_calls(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
        self.transport.ignore_signals();
    }

    /// The deadline of the last calls, if they have begun.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// One authenticated request: the token is made ready (signed, refreshed or registered
    /// again when due), `request` sends it with the `Authorization` value and the envelope id,
    /// and a 401 is answered by one refresh (or re-signing, or re-registration) and one more
    /// try. The response of that last try is returned whatever its status.
    pub fn call(
        &mut self,
        caller: Caller<'_>,
        mut request: impl FnMut(&mut T, &str, &str, Option<Instant>) -> Result<Response, ConnError>,
    ) -> Result<Response, CallError> {
        self.ready_token(caller)?;
        let response = self.try_once(caller, &mut request)?;
        if response.status != 401 {
            return Ok(response);
        }
        self.recover_auth(caller)?;
        self.try_once(caller, &mut request)
    }

    fn try_once(
        &mut self,
        caller: Caller<'_>,
        request: &mut impl FnMut(&mut T, &str, &str, Option<Instant>) -> Result<Response, ConnError>,
    ) -> Result<Response, CallError> {
        let bearer = self.auth.token().map(Token::bearer).unwrap_or_default();
        let id = self.envelope_id(caller.collector_id).to_string();
        Ok(request(&mut self.transport, &bearer, &id, self.deadline)?)
    }

    /// Config pull (docs/protocol.md, config pull): `GET /api/v1/config/{collector_id}` once, with
    /// the 401 recovery. `applied` is the version already applied.
    pub fn pull_config(&mut self, caller: Caller<'_>, applied: Option<i64>) -> PullResult {
        let result = self.call(caller, |t, bearer, id, cap| {
            let path = format!("/api/v1/config/{id}");
            let headers = [
                ("Authorization", bearer),
                ("Accept", "application/toml, application/json, text/plain"),
            ];
            let req = Request {
                method: "GET",
                path: &path,
                headers: &headers,
                body: None,
            };
            t.send(&req, cap)
        });
        let r = match result {
            Ok(r) => r,
            Err(e) => return PullResult::Failed(format!("config pull: {e}")),
        };
        match r.status {
            200 => {
                let version = r
                    .header("x-config-version")
                    .and_then(|v| v.trim().parse::<i64>().ok());
                if version.is_some() && version == applied {
                    PullResult::Nothing
                } else {
                    match pull::parse_document(&r.body) {
                        Ok(pulled) => PullResult::New { version, pulled },
                        Err(e) => PullResult::Failed(format!("pulled config rejected: {e}")),
                    }
                }
            }
            304 | 404 => PullResult::Nothing,
            s => PullResult::Failed(format!(
                "config pull failed (HTTP {s}): {}",
                super::error_text(&r.body)
            )),
        }
    }

    /// Registration (docs/protocol.md, registration): `POST /api/v1/collectors/register` with the
    /// registration secret. Nothing is persisted here.
    pub fn register(
        &mut self,
        secret: &str,
        name: &str,
        hostname: &str,
    ) -> Result<Registration, CallError> {
        let body = register::body(name, hostname);
        let headers = [
            ("Content-Type", "application/json"),
            ("X-Registration-Secret", secret),
        ];
        let req = Request {
            method: "POST",
            path: REGISTER_PATH,
            headers: &headers,
            body: Some(body.as_bytes()),
        };
        let r = self.transport.send(&req, self.deadline)?;
        if !(200..300).contains(&r.status) {
            let hint = match r.status {
                401 => {
                    "; check the registration secret (--secret-file or PGANALYTICS_REGISTRATION_SECRET)"
                }
                404 => "; check [backend] url",
                429 => "; the backend is rate limiting, try again later",
                _ => "",
            };
            return Err(CallError::Failed {
                status: Some(r.status),
                msg: format!(
                    "the backend refused the registration (HTTP {}): {}{hint}",
                    r.status,
                    super::error_text(&r.body)
                ),
                retry_after: r.retry_after_secs().unwrap_or(0),
            });
        }
        register::parse_reply(&r.body)
            .ok_or_else(|| CallError::msg("the registration reply has no collector_id or token"))
    }

    /// Signs or refreshes the token when due; a missing token is registered for when a
    /// registration secret is at hand, else a failure to back off from.
    fn ready_token(&mut self, caller: Caller<'_>) -> Result<(), CallError> {
        let id = self.envelope_id(caller.collector_id).to_string();
        match self.auth.prepare(&id, caller.hostname, caller.now_unix) {
            Prepared::Ready => Ok(()),
            Prepared::RefreshDue => {
                // A failed early refresh is logged; the current token may still work.
                match self.refresh() {
                    Ok(()) => {}
                    Err(CallError::Interrupted) => return Err(CallError::Interrupted),
                    Err(CallError::Failed { msg, .. }) => {
                        if self.refresh_failing.failed() {
                            let n = self.refresh_failing.count().to_string();
                            agent_log::warn("push", &msg, &[("failures", &n)]);
                        }
                    }
                }
                Ok(())
            }
            Prepared::Missing => {
                if auth::registration_secret(&self.settings.auth).is_some() {
                    return self.reregister(caller);
                }
                Err(CallError::msg(format!(
                    "no token at {}: run `pganalytics-collector register` first, or set [auth] token_file",
                    auth::token_path(&self.settings.auth, &self.settings.state).display()
                )))
            }
        }
    }

    /// After a 401: re-sign (shared secret) or refresh, else register again when a secret is
    /// at hand.
    fn recover_auth(&mut self, caller: Caller<'_>) -> Result<(), CallError> {
        if !self.auth.is_backend() {
            self.auth.invalidate();
            let id = self.envelope_id(caller.collector_id).to_string();
            self.auth.prepare(&id, caller.hostname, caller.now_unix);
            return Ok(());
        }
        match self.refresh() {
            Ok(()) => Ok(()),
            // Only a refresh refused with 401 means the identity is gone; a 404, 5xx or a
            // network error is a backend problem that a new identity would not fix.
            Err(CallError::Failed {
                status: Some(401),
                msg,
                ..
            }) => {
                if auth::registration_secret(&self.settings.auth).is_some() {
                    agent_log::warn("push", &msg, &[("action", "registering again")]);
                    self.reregister(caller)
                } else {
                    Err(CallError::Failed {
                        status: Some(401),
                        msg: format!(
                            "{msg}; the collector keeps collecting but cannot push: run `pganalytics-collector register --force`, or set [auth] registration_secret_file to let it register again"
                        ),
                        retry_after: 0,
                    })
                }
            }
            Err(other) => Err(other),
        }
    }

    /// `POST /api/v1/collectors/refresh-token`; the new token is persisted before use.
    fn refresh(&mut self) -> Result<(), CallError> {
        let bearer = self.auth.token().map(Token::bearer).unwrap_or_default();
        let headers = [("Authorization", bearer.as_str())];
        let req = Request {
            method: "POST",
            path: REFRESH_PATH,
            headers: &headers,
            body: Some(b""),
        };
        let r = self.transport.send(&req, self.deadline)?;
        if !(200..300).contains(&r.status) {
            return Err(CallError::Failed {
                status: Some(r.status),
                msg: format!(
                    "token refresh refused (HTTP {}): {}",
                    r.status,
                    super::error_text(&r.body)
                ),
                retry_after: r.retry_after_secs().unwrap_or(0),
            });
        }
        let token = super::auth::parse_refresh_reply(&r.body).map_err(CallError::msg)?;
        self.auth.store(token).map_err(CallError::msg)?;
        self.refresh_failing.succeeded();
        agent_log::info("push", "token refreshed", &[]);
        Ok(())
    }

    /// Registers again (a new identity), persists it, and uses its token and certificate;
    /// at most once per [`REREGISTER_EVERY_SECS`], and not while `collector.id` is younger.
    fn reregister(&mut self, caller: Caller<'_>) -> Result<(), CallError> {
        let Some(secret) = auth::registration_secret(&self.settings.auth) else {
            return Err(CallError::msg("no registration secret"));
        };
        let now = caller.now_unix;
        let last = self.last_registration.map(|t| now.saturating_sub(t));
        let id_age = self.settings.state.age_secs(state::COLLECTOR_ID, now);
        if let Some(age) = last
            .into_iter()
            .chain(id_age)
            .find(|a| *a < REREGISTER_EVERY_SECS)
        {
            return Err(CallError::Failed {
                status: Some(401),
                msg: format!(
                    "the backend refuses this collector's token, and it registered {age} s ago: not registering again before {REREGISTER_EVERY_SECS} s have passed; check the backend, or run `pganalytics-collector register --force`"
                ),
                retry_after: 0,
            });
        }
        self.last_registration = Some(now);
        let reg = self
            .register(&secret, caller.hostname, caller.hostname)
            .map_err(|e| match e {
                CallError::Failed {
                    status,
                    msg,
                    retry_after,
                } => CallError::Failed {
                    status,
                    msg: format!("registering again failed: {msg}"),
                    retry_after,
                },
                other => other,
            })?;
        register::persist(&self.settings.state, &reg, true).map_err(CallError::msg)?;
        // The registration writes `<state_dir>/collector.token`; a configured token_file gets
        // the new token too.
        let token =
            Token::parse(&reg.token).map_err(|e| CallError::msg(format!("registration: {e}")))?;
        self.auth.store(token).map_err(CallError::msg)?;
        if let Err(e) = self.transport.reconfigure(&self.settings.conn) {
            agent_log::warn("push", &e, &[]);
        }
        agent_log::warn(
            "push",
            "registered again: the backend knows this collector under a new id",
            &[("collector_id", &reg.collector_id)],
        );
        self.registered_id = Some(reg.collector_id);
        Ok(())
    }
}
