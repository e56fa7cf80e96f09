//! Everything between the element buffer and the backend (protocol.md: connection,
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

/// The one-line `message`/`details` of a backend error body `{"code","message","details"}`,
/// else the start of the body.
pub fn error_text(body: &[u8]) -> String {
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
    one_line(&String::from_utf8_lossy(&body[..body.len().min(200)]))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
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
}
