//! Everything between the element buffer and the backend (docs/protocol.md: connection,
//! registration, authentication, push, config pull):
//!
//! ```text
//!  ElementBuffer ──take──▶ sink::HttpsSink ──▶ client::Backend ──▶ conn::Conn ──TLS 1.3──▶ backend
//!                           batches, backoff     auth::Auth: token, refresh,
//!                                                re-registration, the 401 retry
//!  run loop ── config pull ──────────────────▶ client::Backend
//!  `register` ───────────────────────────────▶ client::Backend · register: body, reply, files
//! ```
//!
//! Not here: the HTTP, gzip and JWT codecs (`proto`), what a pulled document may set
//! (`config::pull`), the loop (`app::runloop`).

pub mod auth;
pub mod backoff;
pub mod client;
pub mod conn;
pub mod register;
pub mod sink;
pub mod spool;

/// What of a backend body reaches a log line or an error message (security rule S8/S5).
pub const ERROR_TEXT_BYTES: usize = 512;

/// The one-line `message`/`details` of a backend error body `{"code","message","details"}`,
/// else the start of the body; at most [`ERROR_TEXT_BYTES`], control characters escaped, so
/// a hostile body can neither flood the log nor write terminal escapes into it.
pub fn error_text(body: &[u8]) -> String {
    let body = &body[..body.len().min(64 * 1024)];
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let part = |k: &str| match v.get(k) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let text = [part("message"), part("details")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
        if !text.is_empty() {
            return one_line(&text);
        }
    }
    one_line(&String::from_utf8_lossy(
        &body[..body.len().min(ERROR_TEXT_BYTES)],
    ))
}

/// Whitespace runs become one space, other control characters `\u{..}`, cut at
/// [`ERROR_TEXT_BYTES`] on a character boundary (`…` marks the cut).
fn one_line(s: &str) -> String {
    let mut out = String::new();
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            if c.is_control() {
                out.push_str(&c.escape_unicode().to_string());
            } else {
                out.push(c);
            }
        }
        if out.len() > ERROR_TEXT_BYTES {
            break;
        }
    }
    if out.len() > ERROR_TEXT_BYTES {
        let mut cut = ERROR_TEXT_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_error_bodies() {
        assert_eq!(
            error_text(br#"{"code":400,"message":"bad","details":"metrics[0]:\n no type"}"#),
            "bad: metrics[0]: no type"
        );
        assert_eq!(error_text(b"<html>oops</html>"), "<html>oops</html>");
    }

    #[test]
    fn hostile_bodies_are_cut_and_escaped() {
        let esc = error_text(b"{\"message\":\"\\u001b[2Jgone\\rback\"}");
        assert_eq!(esc, "\\u{1b}[2Jgone back");
        let huge = format!("{{\"message\":\"{}\"}}", "é".repeat(20_000));
        let t = error_text(huge.as_bytes());
        assert!(t.len() <= ERROR_TEXT_BYTES + '…'.len_utf8(), "{}", t.len());
        assert!(t.ends_with('…'));
        let raw = vec![b'x'; 1 << 20];
        assert!(error_text(&raw).len() <= ERROR_TEXT_BYTES + 3);
        assert!(!error_text(b"a\x07b\x1bc").chars().any(char::is_control));
    }
}
