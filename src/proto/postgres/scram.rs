//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, the client side, as PostgreSQL speaks them (RFC 5802,
//! RFC 7677; channel binding `tls-server-end-point`, RFC 5929). Pure: bytes from the server in,
//! bytes to send out; the one piece of state kept across connections is the salted password
//! (below).
//!
//! ```text
//!  new ──► client-first  "n,,n=,r=NONCE"            (gs2 header: n | y | p=tls-server-end-point)
//!  update(server-first "r=NONCE+S,s=SALT,i=N") ──► client-final "c=…,r=NONCE+S,p=PROOF"
//!  finish(server-final "v=SIGNATURE" | "e=ERROR") ──► the server proved it knows the password
//! ```
//!
//! Ours, not postgres-protocol's `ScramSha256`, for two reasons. The salted password is
//! PBKDF2 of the password over the server's salt and iteration count (4 096 HMAC-SHA-256 rounds
//! by default, about 4 ms of CPU); the same role on the same server gives the same salt and
//! count at every connection, and the pool reconnects each time it visits a database it has
//! no connection for (with 20 databases and 4 connections, about 140 times a cycle), so the
//! result is remembered per (password, salt, count), the last [`REMEMBERED`] of them: a
//! reconnect costs a few HMACs. And the count a server may ask for is bounded
//! ([`MAX_ITERATIONS`]): a lying server asking for four billion would hold the one thread
//! beyond SIGTERM (docs/SECURITY.md, "Bounded input from the server").
//!
//! The password is prepared with SASLprep (RFC 4013) when it is valid UTF-8 and SASLprep
//! accepts it, else used as it is: what libpq and PostgreSQL do.

use crate::proto::jwt::{base64url_decode, base64url_encode};
use ring::{digest, hmac, pbkdf2};
use std::cell::RefCell;
use std::num::NonZeroU32;

/// The most PBKDF2 iterations a server may ask for (PostgreSQL's default is 4 096; OWASP's
/// advice for PBKDF2-HMAC-SHA-256 is 600 000).
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// Salted passwords remembered (one per role and server in practice).
pub const REMEMBERED: usize = 8;
/// Most bytes of a server's `e=` error shown.
const ERROR_BYTES: usize = 128;

/// The channel binding of the exchange (the gs2 header's flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// `n`: the client does not support channel binding (no TLS, or it is switched off).
    Unsupported,
    /// `y`: the client supports it, the server did not offer SCRAM-SHA-256-PLUS.
    Unrequested,
    /// `p=tls-server-end-point` with the hash of the server's certificate.
    EndPoint(Vec<u8>),
}

impl Binding {
    fn gs2_header(&self) -> &'static str {
        match self {
            Binding::Unsupported => "n,,",
            Binding::Unrequested => "y,,",
            Binding::EndPoint(_) => "p=tls-server-end-point,,",
        }
    }
}

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// A message out of the exchange's order.
    Order,
    /// The server's message does not follow the grammar (what is wrong).
    Malformed(&'static str),
    /// The server's nonce does not extend ours.
    Nonce,
    /// More iterations than [`MAX_ITERATIONS`].
    Iterations(u32),
    /// The server's signature is not the one the password gives: it does not know it.
    Signature,
    /// The server ended the exchange with `e=` (its text, cut and made printable).
    Server(String),
    /// The system random source failed.
    Random,
}

impl std::fmt::Display for ScramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScramError::Order => f.write_str("message out of order"),
            ScramError::Malformed(what) => write!(f, "malformed message: {what}"),
            ScramError::Nonce => f.write_str("the server's nonce does not extend the client's"),
            ScramError::Iterations(n) => write!(
                f,
                "the server asks for {n} iterations, more than {MAX_ITERATIONS}"
            ),
            ScramError::Signature => {
                f.write_str("the server's signature is wrong: it does not know the password")
            }
            ScramError::Server(e) => write!(f, "the server ended the exchange: {e}"),
            ScramError::Random => f.write_str("the system random source failed"),
        }
    }
}

impl std::error::Error for ScramError {}

enum Step {
    /// client-first sent; waiting for server-first.
    First,
    /// client-final sent; waiting for server-final.
    Final {
        server_key: [u8; 32],
        auth_message: Vec<u8>,
    },
    Done,
}

/// One exchange.
pub struct Scram {
    password: Vec<u8>,
    binding: Binding,
    nonce: String,
    client_first_bare: String,
    message: Vec<u8>,
    step: Step,
}

impl Scram {
    /// An exchange with a fresh 18-byte nonce; [`Scram::message`] is the client-first message.
    pub fn new(password: &str, binding: Binding) -> Result<Scram, ScramError> {
        let mut raw = [0u8; 18];
        crate::util::random_bytes(&mut raw).map_err(|_| ScramError::Random)?;
        Ok(Scram::with_nonce(password, binding, "", &base64(&raw)))
    }

    /// With a given user name (PostgreSQL ignores it and libpq sends none) and nonce.
    fn with_nonce(password: &str, binding: Binding, user: &str, nonce: &str) -> Scram {
        let client_first_bare = format!("n={user},r={nonce}");
        let message = format!("{}{client_first_bare}", binding.gs2_header()).into_bytes();
        Scram {
            password: saslprep(password),
            binding,
            nonce: nonce.to_string(),
            client_first_bare,
            message,
            step: Step::First,
        }
    }

    /// What to send now.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// Takes the server-first message; [`Scram::message`] becomes the client-final message.
    pub fn update(&mut self, server_first: &[u8]) -> Result<(), ScramError> {
        if !matches!(self.step, Step::First) {
            return Err(ScramError::Order);
        }
        let text = std::str::from_utf8(server_first)
            .map_err(|_| ScramError::Malformed("server-first is not UTF-8"))?;
        let mut attrs = text.split(',');
        let nonce = attr(attrs.next(), 'r').ok_or(ScramError::Malformed("no nonce (r=)"))?;
        let salt = attr(attrs.next(), 's').ok_or(ScramError::Malformed("no salt (s=)"))?;
        let count = attr(attrs.next(), 'i').ok_or(ScramError::Malformed("no count (i=)"))?;
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(self.nonce.as_str()) {
            return Err(ScramError::Nonce);
        }
        if !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(ScramError::Malformed("nonce not printable"));
        }
        let salt = unbase64(salt).ok_or(ScramError::Malformed("salt not base64"))?;
        if salt.is_empty() {
            return Err(ScramError::Malformed("empty salt"));
        }
        let count = parse_count(count)?;
        let salted = salted_password(&self.password, &salt, count);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let server_key = hmac_sha256(&salted, b"Server Key");
        let stored_key = digest::digest(&digest::SHA256, &client_key);

        let mut cbind = self.binding.gs2_header().as_bytes().to_vec();
        if let Binding::EndPoint(data) = &self.binding {
            cbind.extend_from_slice(data);
        }
        let without_proof = format!("c={},r={nonce}", base64(&cbind));
        let auth_message =
            format!("{},{text},{without_proof}", self.client_first_bare).into_bytes();
        let signature = hmac_sha256(stored_key.as_ref(), &auth_message);
        let mut proof = client_key;
        for (p, s) in proof.iter_mut().zip(signature) {
            *p ^= s;
        }
        self.message = format!("{without_proof},p={}", base64(&proof)).into_bytes();
        self.step = Step::Final {
            server_key,
            auth_message,
        };
        Ok(())
    }

    /// Takes the server-final message: Ok when the server's signature proves it knows the
    /// password.
    pub fn finish(&mut self, server_final: &[u8]) -> Result<(), ScramError> {
        let Step::Final {
            server_key,
            auth_message,
        } = &self.step
        else {
            return Err(ScramError::Order);
        };
        let text = std::str::from_utf8(server_final)
            .map_err(|_| ScramError::Malformed("server-final is not UTF-8"))?;
        let first = text.split(',').next();
        if let Some(e) = attr(first, 'e') {
            let shown: String = e
                .chars()
                .take(ERROR_BYTES)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            return Err(ScramError::Server(shown));
        }
        let verifier = attr(first, 'v').ok_or(ScramError::Malformed("no verifier (v=)"))?;
        let got = unbase64(verifier).ok_or(ScramError::Malformed("verifier not base64"))?;
        let want = hmac_sha256(server_key, auth_message);
        // Constant time: the comparison reveals nothing of the expected signature.
        let differ = got.len() != want.len()
            || got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0;
        if differ {
            return Err(ScramError::Signature);
        }
        self.step = Step::Done;
        self.message.clear();
        Ok(())
    }
}

/// The value of attribute `name` in `part` (`name=value`).
fn attr(part: Option<&str>, name: char) -> Option<&str> {
    let rest = part?.strip_prefix(name)?;
    rest.strip_prefix('=')
}

fn parse_count(text: &str) -> Result<u32, ScramError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.starts_with('0') {
        return Err(ScramError::Malformed("count is not a positive number"));
    }
    match text.parse::<u32>() {
        Ok(n) if n <= MAX_ITERATIONS => Ok(n),
        Ok(n) => Err(ScramError::Iterations(n)),
        Err(_) => Err(ScramError::Iterations(u32::MAX)),
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// One remembered salted password: SHA-256 of the prepared password (never the password
/// itself), the salt, the count, the result.
struct Remembered {
    password_hash: [u8; 32],
    salt: Vec<u8>,
    count: u32,
    salted: [u8; 32],
}

thread_local! {
    static SALTED: RefCell<Vec<Remembered>> = const { RefCell::new(Vec::new()) };
}

/// PBKDF2-HMAC-SHA-256 of `password` over `salt`, `count` rounds; remembered.
fn salted_password(password: &[u8], salt: &[u8], count: u32) -> [u8; 32] {
    let mut password_hash = [0u8; 32];
    password_hash.copy_from_slice(digest::digest(&digest::SHA256, password).as_ref());
    let known = SALTED.with_borrow(|r| {
        r.iter()
            .find(|e| e.password_hash == password_hash && e.salt == salt && e.count == count)
            .map(|e| e.salted)
    });
    if let Some(salted) = known {
        return salted;
    }
    let mut salted = [0u8; 32];
    let rounds = NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        password,
        &mut salted,
    );
    SALTED.with_borrow_mut(|r| {
        if r.len() == REMEMBERED {
            r.remove(0);
        }
        r.push(Remembered {
            password_hash,
            salt: salt.to_vec(),
            count,
            salted,
        });
    });
    salted
}

/// SASLprep (RFC 4013) when it accepts the password, else the password's bytes.
fn saslprep(password: &str) -> Vec<u8> {
    match stringprep::saslprep(password) {
        Ok(p) => p.into_owned().into_bytes(),
        Err(_) => password.as_bytes().to_vec(),
    }
}

/// Base64 with `+`, `/` and padding (RFC 4648 §4), through the base64url coder of the JWT.
fn base64(bytes: &[u8]) -> String {
    let mut s = String::new();
    base64url_encode(bytes, &mut s);
    let mut s: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}

fn unbase64(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let body = text
        .strip_suffix("==")
        .or(text.strip_suffix('='))
        .unwrap_or(text);
    if body.contains(['-', '_', '=']) {
        return None;
    }
    let url: String = body
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    base64url_decode(&url).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3: user "user", password "pencil".
    #[test]
    fn rfc7677_known_answer() {
        let mut s = Scram::with_nonce(
            "pencil",
            Binding::Unsupported,
            "user",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(s.message(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        s.update(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            std::str::from_utf8(s.message()).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.finish(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        // A second exchange with the same salt and count takes the remembered salted password
        // and gives the same proof.
        let mut again = Scram::with_nonce(
            "pencil",
            Binding::Unsupported,
            "user",
            "rOprNGfwEbeRWgbNEkqO",
        );
        again
            .update(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert!(
            std::str::from_utf8(again.message())
                .unwrap()
                .ends_with("p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        );
    }

    fn exchange(password: &str) -> Scram {
        let mut s = Scram::with_nonce(password, Binding::Unsupported, "", "abc");
        s.update(b"r=abcdef,s=c2FsdA==,i=2").unwrap();
        s
    }

    #[test]
    fn a_server_that_does_not_know_the_password_is_refused() {
        let mut s = exchange("secret");
        let wrong = base64(&[7u8; 32]);
        assert_eq!(
            s.finish(format!("v={wrong}").as_bytes()),
            Err(ScramError::Signature)
        );
        let mut s = exchange("secret");
        assert_eq!(s.finish(b"v=AAAA"), Err(ScramError::Signature));
        let mut s = exchange("secret");
        assert_eq!(
            s.finish(b"e=invalid-proof\x1b[2J"),
            Err(ScramError::Server("invalid-proof?[2J".into()))
        );
    }

    #[test]
    fn server_first_messages_that_break_the_rules() {
        let cases: [(&[u8], ScramError); 9] = [
            (b"r=abc,s=c2FsdA==,i=2", ScramError::Nonce),
            (b"r=xyzdef,s=c2FsdA==,i=2", ScramError::Nonce),
            (
                b"s=c2FsdA==,r=abcdef,i=2",
                ScramError::Malformed("no nonce (r=)"),
            ),
            (b"r=abcdef,s=,i=2", ScramError::Malformed("empty salt")),
            (
                b"r=abcdef,s=c2F*dA==,i=2",
                ScramError::Malformed("salt not base64"),
            ),
            (
                b"r=abcdef,s=c2FsdA==,i=0",
                ScramError::Malformed("count is not a positive number"),
            ),
            (
                b"r=abcdef,s=c2FsdA==,i=1000001",
                ScramError::Iterations(1_000_001),
            ),
            (
                b"r=abcdef,s=c2FsdA==,i=99999999999",
                ScramError::Iterations(u32::MAX),
            ),
            (
                b"r=abc\x7fdef,s=c2FsdA==,i=2",
                ScramError::Malformed("nonce not printable"),
            ),
        ];
        for (msg, want) in cases {
            let mut s = Scram::with_nonce("pw", Binding::Unsupported, "", "abc");
            assert_eq!(s.update(msg), Err(want), "{}", String::from_utf8_lossy(msg));
        }
        let mut s = Scram::with_nonce("pw", Binding::Unsupported, "", "abc");
        assert_eq!(s.finish(b"v=AAAA"), Err(ScramError::Order));
    }

    #[test]
    fn the_binding_goes_into_the_gs2_header_and_the_proof() {
        let end_point = Binding::EndPoint(vec![1, 2, 3]);
        let mut s = Scram::with_nonce("pw", end_point, "", "abc");
        assert!(s.message().starts_with(b"p=tls-server-end-point,,n=,r=abc"));
        s.update(b"r=abcdef,s=c2FsdA==,i=2").unwrap();
        let cbind = base64(b"p=tls-server-end-point,,\x01\x02\x03");
        assert!(
            s.message()
                .starts_with(format!("c={cbind},r=abcdef,p=").as_bytes())
        );
        let y = Scram::with_nonce("pw", Binding::Unrequested, "", "abc");
        assert!(y.message().starts_with(b"y,,n=,r=abc"));
    }

    #[test]
    fn base64_round_trips_with_padding() {
        for n in 0..40u8 {
            let bytes: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let text = base64(&bytes);
            assert_eq!(text.len() % 4, 0);
            assert_eq!(unbase64(&text), Some(bytes));
        }
        assert_eq!(base64(b"\xfb\xff"), "+/8=");
        assert_eq!(unbase64("c2FsdA"), None);
        assert_eq!(unbase64("c2F-dA=="), None);
    }
}
