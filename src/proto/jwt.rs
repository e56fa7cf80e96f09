//! JSON Web Tokens as the backend uses them (docs/protocol.md, "Authentication"): HS256 only, compact form
//! `header.payload.signature`, every part base64url without padding.
//!
//! Scope: signing our own tokens (`shared_secret` mode, header exactly
//! `{"alg":"HS256","typ":"JWT"}`), verifying HS256 tokens (HMAC compared in constant time by
//! ring), and reading the payload of backend-issued tokens *without* verifying them (`token`
//! mode only needs `exp`). Not here: other algorithms, JWE, claim validation beyond `exp`/`iat`
//! extraction (time is the caller's: nothing here reads the clock).

use ring::hmac;

/// The header of every token we sign.
pub const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
/// `iss` of the tokens we sign.
pub const ISSUER: &str = "pganalytics-collector";
/// `type` of the tokens we sign.
pub const TOKEN_TYPE: &str = "access";
/// `sub` is this prefix + the collector id.
pub const SUBJECT_PREFIX: &str = "collector:";

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Why a token (or a base64url text) was rejected. Never contains the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    /// Not three dot-separated parts.
    Malformed,
    /// A character outside the base64url alphabet (padding included).
    BadBase64Char,
    /// A length no base64 text can have (4n+1), or non-zero unused bits at the end.
    BadBase64Length,
    /// The header is not JSON naming `"alg":"HS256"`.
    BadHeader,
    /// The signature does not match.
    BadSignature,
    /// The payload is not a JSON object.
    BadPayload,
    /// The payload has no integer `exp` (or `iat` is not a number).
    BadExpiry,
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JwtError::Malformed => "token is not header.payload.signature",
            JwtError::BadBase64Char => "invalid base64url character",
            JwtError::BadBase64Length => "invalid base64url length",
            JwtError::BadHeader => "token header is not hs256",
            JwtError::BadSignature => "token signature mismatch",
            JwtError::BadPayload => "token payload is not a json object",
            JwtError::BadExpiry => "token has no valid exp",
        })
    }
}

impl std::error::Error for JwtError {}

/// Appends the base64url encoding of `bytes` to `out`, without padding (RFC 4648 §5).
pub fn base64url_encode(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len().div_ceil(3) * 4);
    let sym = |v: u32| char::from(ALPHABET[(v & 63) as usize]);
    let mut chunks = bytes.chunks_exact(3);
    for c in &mut chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        out.extend([sym(n >> 18), sym(n >> 12), sym(n >> 6), sym(n)]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend([sym(n >> 18), sym(n >> 12)]);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend([sym(n >> 18), sym(n >> 12), sym(n >> 6)]);
        }
        _ => {}
    }
}

fn sextet(c: u8) -> Result<u32, JwtError> {
    Ok(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return Err(JwtError::BadBase64Char),
    }))
}

/// Decodes base64url without padding. Rejects `=`, `+`, `/`, whitespace, a length of 4n+1 and
/// non-zero unused trailing bits (so every text has one decoding and encode(decode(t)) = t).
pub fn base64url_decode(text: &str) -> Result<Vec<u8>, JwtError> {
    let t = text.as_bytes();
    if t.len() % 4 == 1 {
        return Err(JwtError::BadBase64Length);
    }
    let mut out = Vec::with_capacity(t.len() / 4 * 3 + 2);
    let mut chunks = t.chunks_exact(4);
    for c in &mut chunks {
        let n = sextet(c[0])? << 18 | sextet(c[1])? << 12 | sextet(c[2])? << 6 | sextet(c[3])?;
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    match *chunks.remainder() {
        [a, b] => {
            let n = sextet(a)? << 18 | sextet(b)? << 12;
            if n & 0xffff != 0 {
                return Err(JwtError::BadBase64Length);
            }
            out.push((n >> 16) as u8);
        }
        [a, b, c] => {
            let n = sextet(a)? << 18 | sextet(b)? << 12 | sextet(c)? << 6;
            if n & 0xff != 0 {
                return Err(JwtError::BadBase64Length);
            }
            out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8]);
        }
        _ => {}
    }
    Ok(out)
}

/// The three parts of a compact token, still encoded.
fn split(token: &str) -> Result<(&str, &str, &str), JwtError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(JwtError::Malformed),
    }
}

/// `header.payload.signature` with our fixed header, signed with HMAC-SHA256 under `key`.
pub fn sign_hs256(claims_json: &[u8], key: &[u8]) -> String {
    let mut token = String::new();
    base64url_encode(HEADER_JSON.as_bytes(), &mut token);
    token.push('.');
    base64url_encode(claims_json, &mut token);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), token.as_bytes());
    token.push('.');
    base64url_encode(tag.as_ref(), &mut token);
    token
}

/// Checks that the header says HS256 and the signature is HMAC-SHA256 of `header.payload`
/// under `key` (compared in constant time by ring); returns the payload JSON bytes.
pub fn verify_hs256(token: &str, key: &[u8]) -> Result<Vec<u8>, JwtError> {
    let (h, p, s) = split(token)?;
    let header = base64url_decode(h)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| JwtError::BadHeader)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(JwtError::BadHeader);
    }
    let sig = base64url_decode(s)?;
    let payload = base64url_decode(p)?;
    let signed = &token[..h.len() + 1 + p.len()];
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        signed.as_bytes(),
        &sig,
    )
    .map_err(|_| JwtError::BadSignature)?;
    Ok(payload)
}

/// The payload bytes of a token, NOT verified (the collector only reads `exp` of tokens the
/// backend issued, whose key it does not have).
pub fn decode_payload(token: &str) -> Result<Vec<u8>, JwtError> {
    let (_, p, _) = split(token)?;
    base64url_decode(p)
}

/// A JSON number as whole seconds (integers, or floats with a fraction, truncated).
fn seconds(v: &serde_json::Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        let f = v.as_f64()?;
        (f.is_finite() && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
    })
}

/// `iat` (when present) and `exp` of a token's payload, unverified, for refresh decisions.
pub fn expiry(token: &str) -> Result<(Option<i64>, i64), JwtError> {
    let payload = decode_payload(token)?;
    let v: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|_| JwtError::BadPayload)?;
    let obj = v.as_object().ok_or(JwtError::BadPayload)?;
    let exp = obj
        .get("exp")
        .and_then(seconds)
        .ok_or(JwtError::BadExpiry)?;
    let iat = match obj.get("iat") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(seconds(v).ok_or(JwtError::BadExpiry)?),
    };
    Ok((iat, exp))
}

/// The claims of a token we sign (docs/protocol.md, "Authentication" table), in that order.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
pub struct Claims {
    pub collector_id: String,
    pub hostname: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub sub: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

impl Claims {
    /// An access token's claims valid from `now_unix` for `lifetime_secs`.
    pub fn new(collector_id: &str, hostname: &str, now_unix: i64, lifetime_secs: i64) -> Claims {
        Claims {
            collector_id: collector_id.to_owned(),
            hostname: hostname.to_owned(),
            kind: TOKEN_TYPE.to_owned(),
            sub: format!("{SUBJECT_PREFIX}{collector_id}"),
            iss: ISSUER.to_owned(),
            iat: now_unix,
            nbf: now_unix,
            exp: now_unix.saturating_add(lifetime_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn enc(b: &[u8]) -> String {
        let mut s = String::new();
        base64url_encode(b, &mut s);
        s
    }

    #[test]
    fn base64url_rfc4648_vectors() {
        // RFC 4648 §10, padding removed.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(enc(plain.as_bytes()), coded);
            assert_eq!(base64url_decode(coded).unwrap(), plain.as_bytes());
        }
        // The url-safe symbols 62 and 63.
        assert_eq!(enc(&[0xfb, 0xff, 0xbf]), "-_-_");
        assert_eq!(base64url_decode("-_-_").unwrap(), [0xfb, 0xff, 0xbf]);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64url_decode(&enc(&all)).unwrap(), all);
    }

    #[test]
    fn base64url_rejects() {
        assert_eq!(base64url_decode("Zg=="), Err(JwtError::BadBase64Char));
        assert_eq!(base64url_decode("Zm8="), Err(JwtError::BadBase64Char));
        assert_eq!(base64url_decode("+/+/"), Err(JwtError::BadBase64Char));
        assert_eq!(base64url_decode("Zm 9"), Err(JwtError::BadBase64Char));
        assert_eq!(base64url_decode("Zm9vé"), Err(JwtError::BadBase64Char));
        assert_eq!(base64url_decode("Z"), Err(JwtError::BadBase64Length));
        assert_eq!(base64url_decode("Zm9vY"), Err(JwtError::BadBase64Length));
        // Non-zero unused bits: "Zh" would also decode to "f".
        assert_eq!(base64url_decode("Zh"), Err(JwtError::BadBase64Length));
        assert_eq!(base64url_decode("Zm9"), Err(JwtError::BadBase64Length));
    }

    #[test]
    fn header_is_exact() {
        let token = sign_hs256(b"{}", b"k");
        assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
        let (h, p, s) = split(&token).unwrap();
        assert_eq!(base64url_decode(h).unwrap(), HEADER_JSON.as_bytes());
        assert_eq!(p, "e30");
        assert_eq!(s.len(), 43, "32 bytes unpadded");
    }

    #[test]
    fn rfc7515_a1_style_vector() {
        // jwt.io's HS256 example token, key "your-256-bit-secret".
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        let payload = verify_hs256(token, b"your-256-bit-secret").unwrap();
        assert_eq!(
            payload,
            br#"{"sub":"1234567890","name":"John Doe","iat":1516239022}"#
        );
        assert_eq!(expiry(token), Err(JwtError::BadExpiry));
        assert_eq!(
            verify_hs256(token, b"another-secret"),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn sign_then_verify_and_tamper() {
        let claims = Claims::new("id-1", "db1", 1_700_000_000, 900);
        let json = serde_json::to_vec(&claims).unwrap();
        let token = sign_hs256(&json, b"secret");
        assert_eq!(verify_hs256(&token, b"secret").unwrap(), json);
        assert_eq!(decode_payload(&token).unwrap(), json);
        assert_eq!(
            expiry(&token).unwrap(),
            (Some(1_700_000_000), 1_700_000_900)
        );
        let back: Claims = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, claims);

        assert_eq!(verify_hs256(&token, b"secreT"), Err(JwtError::BadSignature));
        let (h, p, s) = split(&token).unwrap();
        // Payload swapped for another (valid base64) payload.
        let mut other = Claims::new("id-2", "db1", 1_700_000_000, 900);
        other.exp += 1;
        let forged = format!("{h}.{}.{s}", enc(&serde_json::to_vec(&other).unwrap()));
        assert_eq!(
            verify_hs256(&forged, b"secret"),
            Err(JwtError::BadSignature)
        );
        // One signature character changed (keeping the last, which carries unused bits).
        let mut sig = s.as_bytes().to_vec();
        sig[0] = if sig[0] == b'A' { b'B' } else { b'A' };
        let forged = format!("{h}.{p}.{}", String::from_utf8(sig).unwrap());
        assert_eq!(
            verify_hs256(&forged, b"secret"),
            Err(JwtError::BadSignature)
        );
        // Truncated signature.
        let forged = format!("{h}.{p}.{}", &s[..40]);
        assert_eq!(
            verify_hs256(&forged, b"secret"),
            Err(JwtError::BadSignature)
        );
        // alg none and friends.
        let none = format!("{}.{p}.", enc(br#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(verify_hs256(&none, b"secret"), Err(JwtError::BadHeader));
        assert_eq!(
            verify_hs256(&format!("{}.{p}.{s}", enc(b"not json")), b"secret"),
            Err(JwtError::BadHeader)
        );
        // Shapes.
        for bad in ["", "a", "a.b", "a.b.c.d", "..."] {
            assert_eq!(verify_hs256(bad, b"k"), Err(JwtError::Malformed), "{bad}");
            assert_eq!(decode_payload(bad), Err(JwtError::Malformed), "{bad}");
        }
        assert_eq!(decode_payload("a.Zg==.c"), Err(JwtError::BadBase64Char));
    }

    #[test]
    fn claims_fields_exactly_as_spec() {
        let c = Claims::new("3f0c", "db-prod-01", 1_000, 900);
        let v: serde_json::Value = serde_json::to_value(&c).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "collector_id",
                "exp",
                "hostname",
                "iat",
                "iss",
                "nbf",
                "sub",
                "type"
            ]
        );
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"collector_id":"3f0c","hostname":"db-prod-01","type":"access","sub":"collector:3f0c","iss":"pganalytics-collector","iat":1000,"nbf":1000,"exp":1900}"#
        );
    }

    #[test]
    fn expiry_of_tokens() {
        let t = |payload: &str| {
            format!(
                "{}.{}.sig",
                enc(HEADER_JSON.as_bytes()),
                enc(payload.as_bytes())
            )
        };
        assert_eq!(expiry(&t(r#"{"exp":1900}"#)), Ok((None, 1900)));
        assert_eq!(
            expiry(&t(r#"{"exp":1900,"iat":1000}"#)),
            Ok((Some(1000), 1900))
        );
        assert_eq!(expiry(&t(r#"{"exp":1900.5,"iat":null}"#)), Ok((None, 1900)));
        assert_eq!(expiry(&t(r#"{"exp":"1900"}"#)), Err(JwtError::BadExpiry));
        assert_eq!(
            expiry(&t(r#"{"exp":1900,"iat":"x"}"#)),
            Err(JwtError::BadExpiry)
        );
        assert_eq!(expiry(&t(r#"{"exp":1e300}"#)), Err(JwtError::BadExpiry));
        assert_eq!(expiry(&t(r#"[1]"#)), Err(JwtError::BadPayload));
        assert_eq!(expiry(&t("nope")), Err(JwtError::BadPayload));
        // A backend-style token (Go jwt: exp before iat, extra claims).
        let backend = format!(
            "{}.{}.c2ln",
            enc(br#"{"alg":"HS256","typ":"JWT"}"#),
            enc(br#"{"collector_id":"x","exp":1772368200,"iat":1772366400,"role":"collector"}"#)
        );
        assert_eq!(expiry(&backend), Ok((Some(1_772_366_400), 1_772_368_200)));
    }

    /// Our signature equals `openssl dgst -sha256 -hmac KEY -binary` over `header.payload`.
    #[test]
    fn signature_matches_openssl() {
        for (key, claims) in [
            ("secret", Claims::new("id-1", "db1", 1_700_000_000, 900)),
            (
                "a much longer key that is over sixty-four bytes long, so HMAC hashes it first!!",
                Claims::new(
                    "3f0c2a0e-8d7b",
                    "db-prod-01.example.com",
                    1_772_366_400,
                    3600,
                ),
            ),
        ] {
            let token = sign_hs256(&serde_json::to_vec(&claims).unwrap(), key.as_bytes());
            let (h, p, s) = split(&token).unwrap();
            let mut child = Command::new("openssl")
                .args(["dgst", "-sha256", "-hmac", key, "-binary"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("openssl runs");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{h}.{p}").as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            assert_eq!(out.stdout.len(), 32);
            assert_eq!(enc(&out.stdout), s);
        }
    }
}
