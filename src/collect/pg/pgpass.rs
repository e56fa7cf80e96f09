//! `~/.pgpass` (libpq's password file): the lookup over the file's bytes, and the permission
//! rule. No I/O: the caller reads the file and its mode.
//!
//! The format, as libpq reads it (`passwordFromFile`):
//! - one entry per line: `hostname:port:database:username:password`; `\r\n` line ends are fine;
//! - a line starting with `#` is a comment (only in the first column); empty lines are skipped;
//! - `\:` is a literal colon and `\\` a literal backslash, in every field (`\x` is `x`);
//! - a field that is exactly `*` matches anything (`\*` is a literal star);
//! - the password is the rest of the line after the fourth separator (it may contain `\:`);
//! - a line with fewer than five fields is skipped; the first matching line wins;
//! - an empty password counts as none (libpq then asks the server without one).
//!
//! Host matching: a TCP connection matches its host name or address as written; a Unix socket
//! connection matches `localhost` (libpq's rule for the default socket directory) and also the
//! socket directory as written.

/// The connection a password is looked up for.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    /// The host name or address (TCP), or the socket directory (Unix).
    pub host: &'a str,
    /// Whether `host` is a Unix socket directory (then `localhost` matches too).
    pub unix: bool,
    pub port: u16,
    pub database: &'a str,
    pub user: &'a str,
}

/// The password of the first line matching `who`, unescaped.
pub fn find(file: &[u8], who: &Lookup<'_>) -> Option<String> {
    let mut port_buf = [0u8; 5];
    let port = format_port(who.port, &mut port_buf);
    for line in file.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let mut fields = Fields { rest: line };
        let (Some(host), Some(p), Some(db), Some(user)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // A fifth field must exist (libpq skips lines without one).
        let Some(password) = fields.remainder() else {
            continue;
        };
        let host_ok = field_matches(host, who.host.as_bytes())
            || (who.unix && field_matches(host, b"localhost"));
        if host_ok
            && field_matches(p, port)
            && field_matches(db, who.database.as_bytes())
            && field_matches(user, who.user.as_bytes())
        {
            let pw = unescape(password);
            return if pw.is_empty() {
                None
            } else {
                Some(String::from_utf8_lossy(&pw).into_owned())
            };
        }
    }
    None
}

/// Whether a file with permission bits `mode` may be used: not a group- or world-accessible
/// file (libpq ignores such a file with a warning; it should be 0600 or less).
pub fn mode_ok(mode: u32) -> bool {
    mode & 0o077 == 0
}

fn format_port(port: u16, buf: &mut [u8; 5]) -> &[u8] {
    let mut n = port;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Splits a line at unescaped colons; fields are returned raw (escapes still in).
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// The next field up to an unescaped `:`; `None` when no separator is left.
    fn next(&mut self) -> Option<&'a [u8]> {
        let mut i = 0;
        while i < self.rest.len() {
            match self.rest[i] {
                b'\\' => i += 2,
                b':' => {
                    let field = &self.rest[..i];
                    self.rest = &self.rest[i + 1..];
                    return Some(field);
                }
                _ => i += 1,
            }
        }
        None
    }

    /// Whatever follows the last separator taken (the password field); `None` if there was
    /// no fourth separator (then `next` already returned `None`).
    fn remainder(self) -> Option<&'a [u8]> {
        Some(self.rest)
    }
}

/// Whether a raw field matches `value`: `*` matches all, else the unescaped field equals it.
fn field_matches(raw: &[u8], value: &[u8]) -> bool {
    if raw == b"*" {
        return true;
    }
    let mut v = value.iter();
    let mut i = 0;
    while i < raw.len() {
        let c = if raw[i] == b'\\' && i + 1 < raw.len() {
            i += 1;
            raw[i]
        } else {
            raw[i]
        };
        if v.next() != Some(&c) {
            return false;
        }
        i += 1;
    }
    v.next().is_none()
}

fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && i + 1 < raw.len() {
            i += 1;
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp<'a>(host: &'a str, port: u16, db: &'a str, user: &'a str) -> Lookup<'a> {
        Lookup {
            host,
            unix: false,
            port,
            database: db,
            user,
        }
    }

    #[test]
    fn exact_match_and_first_match_wins() {
        let f = b"db1:5432:app:alice:one\ndb1:5432:app:alice:two\n";
        assert_eq!(
            find(f, &tcp("db1", 5432, "app", "alice")).as_deref(),
            Some("one")
        );
        assert_eq!(find(f, &tcp("db2", 5432, "app", "alice")), None);
        assert_eq!(find(f, &tcp("db1", 5433, "app", "alice")), None);
        assert_eq!(find(f, &tcp("db1", 5432, "other", "alice")), None);
        assert_eq!(find(f, &tcp("db1", 5432, "app", "bob")), None);
    }

    #[test]
    fn wildcards_match_anything_but_an_escaped_star_is_literal() {
        let f = b"*:*:*:alice:any\n";
        assert_eq!(find(f, &tcp("h", 1, "d", "alice")).as_deref(), Some("any"));
        assert_eq!(find(f, &tcp("h", 1, "d", "bob")), None);
        let f = b"h:1:\\*:alice:star\n";
        assert_eq!(find(f, &tcp("h", 1, "d", "alice")), None);
        assert_eq!(find(f, &tcp("h", 1, "*", "alice")).as_deref(), Some("star"));
        // `*x` is not a wildcard.
        assert_eq!(find(b"*x:1:d:u:p\n", &tcp("h", 1, "d", "u")), None);
    }

    #[test]
    fn escapes_in_fields_and_password() {
        let f = b"fe80\\:\\:1:5432:a\\\\b:u:pa\\:ss\\\\word\n";
        assert_eq!(
            find(f, &tcp("fe80::1", 5432, "a\\b", "u")).as_deref(),
            Some("pa:ss\\word")
        );
        // The password may contain plain colons too (the rest of the line).
        assert_eq!(
            find(b"h:1:d:u:a:b:c\n", &tcp("h", 1, "d", "u")).as_deref(),
            Some("a:b:c")
        );
    }

    #[test]
    fn comments_blank_lines_crlf_and_short_lines() {
        let f = b"# h:1:d:u:commented\n\n  \nh:1:d\nh:1:d:u\r\nh:1:d:u:good\r\n";
        assert_eq!(find(f, &tcp("h", 1, "d", "u")).as_deref(), Some("good"));
        // A `#` after the first column is data, not a comment.
        assert_eq!(
            find(b" #h:1:d:u:p\n", &tcp(" #h", 1, "d", "u")).as_deref(),
            Some("p")
        );
        // No trailing newline.
        assert_eq!(
            find(b"h:1:d:u:last", &tcp("h", 1, "d", "u")).as_deref(),
            Some("last")
        );
    }

    #[test]
    fn empty_password_is_none() {
        assert_eq!(find(b"h:1:d:u:\n", &tcp("h", 1, "d", "u")), None);
    }

    #[test]
    fn localhost_matches_a_unix_socket() {
        let f = b"localhost:5432:*:u:sock\n/run/pg:5432:*:v:dir\n";
        let unix = |dir, user| Lookup {
            host: dir,
            unix: true,
            port: 5432,
            database: "d",
            user,
        };
        assert_eq!(
            find(f, &unix("/var/run/postgresql", "u")).as_deref(),
            Some("sock")
        );
        assert_eq!(find(f, &unix("/run/pg", "v")).as_deref(), Some("dir"));
        assert_eq!(find(f, &tcp("127.0.0.1", 5432, "d", "u")), None);
        assert_eq!(
            find(f, &tcp("localhost", 5432, "d", "u")).as_deref(),
            Some("sock")
        );
    }

    #[test]
    fn ports_compare_as_text() {
        assert_eq!(
            find(b"h:65535:d:u:p\n", &tcp("h", 65535, "d", "u")).as_deref(),
            Some("p")
        );
        assert_eq!(find(b"h:05432:d:u:p\n", &tcp("h", 5432, "d", "u")), None);
        assert_eq!(
            find(b"h:0:d:u:p\n", &tcp("h", 0, "d", "u")).as_deref(),
            Some("p")
        );
    }

    #[test]
    fn permissions() {
        assert!(mode_ok(0o600));
        assert!(mode_ok(0o400));
        assert!(!mode_ok(0o640));
        assert!(!mode_ok(0o604));
        assert!(!mode_ok(0o610));
    }

    #[test]
    fn odd_bytes_never_panic() {
        for f in [
            &b"\\"[..],
            b"\\\\\\",
            b":::",
            b"::::",
            b"a:b:c:d:\\",
            b"\xff:\xfe",
        ] {
            let _ = find(f, &tcp("a", 1, "c", "d"));
        }
        assert_eq!(find(b"::::", &tcp("", 0, "", "")), None, "empty password");
        assert_eq!(
            find(b"::::x", &tcp("", 0, "", "")),
            None,
            "port field empty never equals a number"
        );
    }
}
