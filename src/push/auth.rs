//! The bearer token of docs/protocol.md, "Authentication": the backend's token (read from a file, refreshed before
//! it expires, persisted atomically before use) or our own HS256 token signed with a shared
//! secret. The timing rules are pure functions of an injected `now_unix`.
//!
//! Not here: the HTTP calls (the backend client, `push::client`, drives refresh and
//! registration).
//! Tokens and secrets never appear in a log line or an error message.

use crate::config::{self, AuthMode};
use crate::proto::jwt;
use crate::state::{self, StateDir};
use std::path::PathBuf;

/// Where a token's lifetime stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub iat: Option<i64>,
    pub exp: i64,
}

/// Token mode: refresh once half the lifetime has passed or 5 minutes before `exp`, whichever
/// comes first (without `iat`, only the 5 minutes rule).
/// The times come from the backend's token: arithmetic saturates (security rule S9), so an
/// `exp` of `i64::MIN` or `i64::MAX` is only "long expired" or "far away".
pub fn refresh_due(l: Lifetime, now_unix: i64) -> bool {
    let five_before = l.exp.saturating_sub(300);
    let at = match l.iat {
        Some(iat) if iat < l.exp => {
            five_before.min(iat.saturating_add(l.exp.saturating_sub(iat) / 2))
        }
        _ => five_before,
    };
    now_unix >= at
}

/// Shared-secret mode: sign a new token when less than a third of its lifetime is left.
pub fn resign_due(l: Lifetime, now_unix: i64) -> bool {
    let iat = l.iat.unwrap_or(l.exp);
    let life = l.exp.saturating_sub(iat).max(0);
    l.exp.saturating_sub(now_unix).saturating_mul(3) < life || now_unix >= l.exp
}

/// Reads a 2xx reply of the refresh endpoint, `{"token": "<JWT>"}`: the new token, or one
/// line saying what is wrong with the reply.
pub fn parse_refresh_reply(body: &[u8]) -> Result<Token, String> {
    let token = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_string))
        .ok_or_else(|| "token refresh: the reply has no token".to_string())?;
    Token::parse(&token).map_err(|e| format!("token refresh: {e}"))
}

/// A current token and its lifetime.
pub struct Token {
    secret: String,
    pub lifetime: Lifetime,
    /// The `collector_id` claim, when the payload has one.
    pub collector_id: Option<String>,
}

impl Token {
    pub fn parse(text: &str) -> Result<Token, String> {
        let token = text.lines().next().unwrap_or("").trim().to_string();
        if token.is_empty() {
            return Err("the token is empty".into());
        }
        // It goes into an `Authorization` header: visible ASCII only (a JWT is base64url and
        // dots), whatever the part the checks below do not decode (the signature).
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the token has characters an HTTP header cannot carry".into());
        }
        let (iat, exp) =
            jwt::expiry(&token).map_err(|e| format!("the token is not a readable JWT: {e}"))?;
        let collector_id = jwt::decode_payload(&token)
            .ok()
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
            .and_then(|v| v.get("collector_id")?.as_str().map(str::to_string));
        Ok(Token {
            secret: token,
            lifetime: Lifetime { iat, exp },
            collector_id,
        })
    }

    /// The `Authorization` header value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.secret)
    }

    pub fn as_str(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(<redacted>, {:?})", self.lifetime)
    }
}

/// How the collector authenticates, from `[auth]`.
pub enum Auth {
    /// The backend's token; `file` is where it is read and persisted.
    Backend { file: PathBuf, token: Option<Token> },
    /// Our own token signed with `key`.
    Shared {
        key: Vec<u8>,
        lifetime_secs: i64,
        token: Option<Token>,
    },
}

impl Auth {
    /// Reads the key or the token `[auth]` names now (start, SIGHUP).
    pub fn new(config: &config::Auth, state: &StateDir) -> Result<Auth, String> {
        match config.mode {
            AuthMode::SharedSecret => {
                let path = config.jwt_secret_file.as_ref().ok_or_else(|| {
                    "[auth] mode = \"shared_secret\" needs [auth] jwt_secret_file".to_string()
                })?;
                let mut key = std::fs::read(path).map_err(|e| {
                    format!("cannot read [auth] jwt_secret_file {}: {e}", path.display())
                })?;
                while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    key.pop();
                }
                if key.len() < config::MIN_SHARED_SECRET {
                    return Err(format!(
                        "[auth] jwt_secret_file {} holds {} bytes; the shared secret needs at least {}",
                        path.display(),
                        key.len(),
                        config::MIN_SHARED_SECRET
                    ));
                }
                Ok(Auth::Shared {
                    key,
                    lifetime_secs: config.token_lifetime.as_secs().max(1) as i64,
                    token: None,
                })
            }
            AuthMode::Token => {
                let file = token_path(config, state);
                let token = std::fs::read_to_string(&file)
                    .ok()
                    .and_then(|t| Token::parse(&t).ok());
                Ok(Auth::Backend { file, token })
            }
        }
    }

    /// For shared-secret mode: signs a new token when none is current or a third of its
    /// lifetime is left. Returns whether the backend token needs a refresh (token mode).
    pub fn prepare(&mut self, id: &str, hostname: &str, now_unix: i64) -> Prepared {
        match self {
            Auth::Shared {
                key,
                lifetime_secs,
                token,
            } => {
                if token
                    .as_ref()
                    .is_none_or(|t| resign_due(t.lifetime, now_unix))
                {
                    let claims = claims_json(id, hostname, now_unix, *lifetime_secs);
                    let signed = jwt::sign_hs256(claims.as_bytes(), key);
                    *token = Some(Token {
                        secret: signed,
                        lifetime: Lifetime {
                            iat: Some(now_unix),
                            exp: now_unix.saturating_add(*lifetime_secs),
                        },
                        collector_id: Some(id.to_string()),
                    });
                }
                Prepared::Ready
            }
            Auth::Backend { file, token } => {
                if token.is_none() {
                    // Registration or an operator may have written it since.
                    *token = std::fs::read_to_string(&*file)
                        .ok()
                        .and_then(|t| Token::parse(&t).ok());
                }
                match token {
                    None => Prepared::Missing,
                    Some(t) if refresh_due(t.lifetime, now_unix) => Prepared::RefreshDue,
                    Some(_) => Prepared::Ready,
                }
            }
        }
    }

    /// Forces a new token at the next [`Auth::prepare`] (after a 401 in shared-secret mode).
    pub fn invalidate(&mut self) {
        if let Auth::Shared { token, .. } = self {
            *token = None;
        }
    }

    pub fn token(&self) -> Option<&Token> {
        match self {
            Auth::Backend { token, .. } | Auth::Shared { token, .. } => token.as_ref(),
        }
    }

    /// Token mode: persists a new token atomically, then uses it.
    pub fn store(&mut self, new: Token) -> Result<(), String> {
        if let Auth::Backend { file, token } = self {
            state::write_private(file, format!("{}\n", new.as_str()).as_bytes())
                .map_err(|e| format!("cannot store the new token in {}: {e}", file.display()))?;
            *token = Some(new);
        }
        Ok(())
    }

    pub fn is_backend(&self) -> bool {
        matches!(self, Auth::Backend { .. })
    }
}

/// What [`Auth::prepare`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepared {
    Ready,
    RefreshDue,
    /// Token mode without a token (not registered).
    Missing,
}

/// `[auth] token_file`, else `<state_dir>/collector.token`.
pub fn token_path(config: &config::Auth, state: &StateDir) -> PathBuf {
    config
        .token_file
        .clone()
        .unwrap_or_else(|| state.file(state::TOKEN))
}

/// The claims of docs/protocol.md, "Authentication", shared-secret mode.
pub fn claims_json(id: &str, hostname: &str, now_unix: i64, lifetime_secs: i64) -> String {
    serde_json::json!({
        "collector_id": id,
        "hostname": hostname,
        "type": "access",
        "sub": format!("collector:{id}"),
        "iss": "pganalytics-collector",
        "iat": now_unix,
        "nbf": now_unix,
        "exp": now_unix.saturating_add(lifetime_secs),
    })
    .to_string()
}

/// The registration secret for re-registration (`[auth] registration_secret_file`, else the
/// environment), if any.
pub fn registration_secret(config: &config::Auth) -> Option<String> {
    let from_file = config
        .registration_secret_file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    from_file
        .or_else(|| std::env::var("PGANALYTICS_REGISTRATION_SECRET").ok())
        .map(|s| s.lines().next().unwrap_or("").trim().to_string())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refreshed token goes into a header: a signature part with other bytes than visible
    /// ASCII (found by the `backend_replies` fuzz target) is refused, not sent.
    #[test]
    fn a_token_a_header_cannot_carry_is_refused() {
        let head_and_claims = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjIwMDAwMDAwMDB9";
        assert!(Token::parse(&format!("{head_and_claims}.c2ln")).is_ok());
        for sig in ["c\u{113}n", "a b", "a\x7fb", "a\rb"] {
            let body = serde_json::json!({ "token": format!("{head_and_claims}.{sig}") });
            let e = parse_refresh_reply(body.to_string().as_bytes())
                .err()
                .unwrap_or_else(|| panic!("{sig:?} accepted"));
            assert!(e.contains("header"), "{e}");
        }
    }

    /// Security rule S9: hostile `exp`/`iat` values never overflow.
    #[test]
    fn extreme_token_times_saturate() {
        for (iat, exp) in [
            (Some(i64::MIN), i64::MAX),
            (Some(i64::MAX), i64::MIN),
            (None, i64::MIN),
            (None, i64::MAX),
            (Some(0), i64::MAX),
        ] {
            let l = Lifetime { iat, exp };
            for now in [i64::MIN, 0, 1_772_366_400, i64::MAX] {
                let _ = refresh_due(l, now);
                let _ = resign_due(l, now);
            }
        }
        assert!(refresh_due(
            Lifetime {
                iat: None,
                exp: i64::MIN
            },
            0
        ));
        assert!(!refresh_due(
            Lifetime {
                iat: Some(0),
                exp: i64::MAX
            },
            1_772_366_400
        ));
        let claims: serde_json::Value =
            serde_json::from_str(&claims_json("c", "h", i64::MAX - 5, 900)).unwrap();
        assert_eq!(claims["exp"], i64::MAX);
    }

    #[test]
    fn refresh_at_half_life_or_five_minutes_before_exp() {
        // 30 minutes: half life (15 min) comes before exp - 5 min (25 min).
        let l = Lifetime {
            iat: Some(1000),
            exp: 1000 + 1800,
        };
        assert!(!refresh_due(l, 1000));
        assert!(!refresh_due(l, 1000 + 899));
        assert!(refresh_due(l, 1000 + 900));
        // 8 minutes: exp - 5 min (3 min) comes first.
        let l = Lifetime {
            iat: Some(0),
            exp: 480,
        };
        assert!(!refresh_due(l, 179));
        assert!(refresh_due(l, 180));
        // No iat: only the five minutes rule.
        let l = Lifetime {
            iat: None,
            exp: 10_000,
        };
        assert!(!refresh_due(l, 9_699));
        assert!(refresh_due(l, 9_700));
    }

    #[test]
    fn resign_when_less_than_a_third_is_left() {
        let l = Lifetime {
            iat: Some(0),
            exp: 900,
        };
        assert!(!resign_due(l, 0));
        assert!(!resign_due(l, 600)); // exactly a third left
        assert!(resign_due(l, 601));
        assert!(resign_due(l, 2000));
    }

    #[test]
    fn claims_are_exactly_the_spec() {
        let v: serde_json::Value =
            serde_json::from_str(&claims_json("c-1", "db1", 1_700_000_000, 900)).unwrap();
        assert_eq!(v["collector_id"], "c-1");
        assert_eq!(v["hostname"], "db1");
        assert_eq!(v["type"], "access");
        assert_eq!(v["sub"], "collector:c-1");
        assert_eq!(v["iss"], "pganalytics-collector");
        assert_eq!(v["iat"], 1_700_000_000);
        assert_eq!(v["nbf"], 1_700_000_000);
        assert_eq!(v["exp"], 1_700_000_900);
        assert_eq!(v.as_object().unwrap().len(), 8);
    }

    #[test]
    fn shared_secret_signs_then_resigns_on_schedule() {
        let mut auth = Auth::Shared {
            key: b"k".to_vec(),
            lifetime_secs: 900,
            token: None,
        };
        assert_eq!(auth.prepare("c", "h", 1000), Prepared::Ready);
        let first = auth.token().unwrap().as_str().to_string();
        assert_eq!(auth.prepare("c", "h", 1600), Prepared::Ready);
        assert_eq!(auth.token().unwrap().as_str(), first);
        assert_eq!(auth.prepare("c", "h", 1601), Prepared::Ready);
        assert_ne!(auth.token().unwrap().as_str(), first);
        assert_eq!(auth.token().unwrap().lifetime.exp, 2501);
        assert!(!format!("{:?}", auth.token().unwrap()).contains(&first));
    }
}
