//! Recognising the C++ collector's own file syntax, to say how to write a line in TOML.
//!
//! The C++ collector read `/etc/pganalytics/collector.toml` with a line-based parser that is
//! not TOML: `;` starts a comment line, values need no quotes, booleans are `true`, `yes` or
//! `1` in any case, and a comment after a value is part of the value (docs/MIGRATION.md,
//! "Converting a file in the C++ collector's syntax"). Files written as TOML load unchanged;
//! this module only turns the errors of files that are *not* TOML into one message per line
//! saying that the file is in the C++ collector's syntax and how to write that line.
//!
//! What it does not do: parse such a file (no fallback parser: a value that TOML cannot read
//! is never guessed at), or read files. Everything here is pure (text in, messages out).

/// Every line in the C++ collector's syntax, as (byte offset of the line's first
/// non-blank character, message), when the TOML error at byte `error_at` lies on one of
/// them; empty otherwise (the TOML parser's own message is then the better one).
pub fn diagnose(text: &str, error_at: usize) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut error_line_is_cpp = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let end = offset + line.len();
        if let Some(message) = line_hint(line) {
            let indent = line.len() - line.trim_start().len();
            found.push((offset + indent, message));
            // The error may point past the last character of its line (at the newline).
            if (offset..end.max(offset + 1)).contains(&error_at) {
                error_line_is_cpp = true;
            }
        }
        offset = end;
    }
    if error_line_is_cpp { found } else { Vec::new() }
}

/// The hint for one line of a file, when the line is valid only in the C++ collector's
/// syntax: a `;` comment, or `key = value` whose value TOML cannot read unquoted.
pub fn line_hint(line: &str) -> Option<String> {
    let line = line.trim();
    if let Some(comment) = line.strip_prefix(';') {
        return Some(format!(
            "the file is in the C++ collector's syntax, not TOML: `;` starts a comment only \
             there; in TOML write `#{comment}`"
        ));
    }
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    let value = value.trim();
    if !is_bare_key(key) || value.is_empty() || value.starts_with(['"', '\'', '[', '{', '=']) {
        return None;
    }
    if toml_edit::Document::parse(format!("k = {value}")).is_ok() {
        return None;
    }
    // The C++ parser kept a trailing comment in the value; the intent was a comment.
    let (value, comment) = split_comment(value);
    let toml = match bool_word(value) {
        Some(b) => format!("{key} = {b}"),
        None => format!("{key} = {}", quote(value)),
    };
    let toml = match comment {
        Some(c) => format!("{toml}  {c}"),
        None => toml,
    };
    Some(format!(
        "the file is in the C++ collector's syntax, not TOML (values need quotes, booleans \
         are true or false); in TOML write `{toml}`"
    ))
}

/// A string value the C++ collector read as a boolean (`true`, `yes`, `1` in any case, and
/// their opposites): `Some(b)` for a word, to suggest `b` in TOML instead of the string.
pub fn bool_word(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// The message for a boolean key given as a string such as `"yes"` (valid TOML, wrong
/// type): how to write it in TOML; `None` when the string is no boolean word.
pub fn bool_string_hint(section: &str, key: &str, value: &str) -> Option<String> {
    let b = bool_word(value.trim())?;
    Some(format!(
        "[{section}] {key}: expected true or false, found the string {value:?} (the C++ \
         collector's syntax); in TOML write `{key} = {b}`"
    ))
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Splits `value # comment` (or `; comment`) at the first `#` or `;` that follows a blank.
fn split_comment(value: &str) -> (&str, Option<String>) {
    let bytes = value.as_bytes();
    for i in 1..bytes.len() {
        if (bytes[i] == b'#' || bytes[i] == b';') && bytes[i - 1].is_ascii_whitespace() {
            let comment = value[i + 1..].trim();
            return (value[..i].trim_end(), Some(format!("# {comment}")));
        }
    }
    (value, None)
}

/// A TOML basic string holding `s`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(line: &str) -> String {
        line_hint(line).unwrap_or_else(|| panic!("no hint for {line:?}"))
    }

    #[test]
    fn semicolon_comment_lines_become_hash_comments() {
        let h = hint("; PostgreSQL connection");
        assert!(
            h.starts_with("the file is in the C++ collector's syntax"),
            "{h}"
        );
        assert!(
            h.ends_with("in TOML write `# PostgreSQL connection`"),
            "{h}"
        );
        assert!(hint("   ;x").ends_with("`#x`"));
    }

    #[test]
    fn unquoted_values_are_quoted() {
        assert!(hint("host = localhost").ends_with("in TOML write `host = \"localhost\"`"));
        assert!(
            hint("url = http://backend:8080").ends_with("`url = \"http://backend:8080\"`"),
            "{}",
            hint("url = http://backend:8080")
        );
        assert!(hint("databases = postgres, app").ends_with("`databases = \"postgres, app\"`"));
        assert!(hint("password = a \"b\" c").ends_with(r#"`password = "a \"b\" c"`"#));
    }

    #[test]
    fn boolean_words_become_toml_booleans() {
        assert!(hint("enabled = yes").ends_with("`enabled = true`"));
        assert!(hint("enabled = No").ends_with("`enabled = false`"));
        assert!(hint("verify = TRUE").ends_with("`verify = true`"));
        assert!(hint("verify = off").ends_with("`verify = false`"));
    }

    #[test]
    fn a_comment_after_an_unquoted_value_stays_a_comment() {
        assert!(
            hint("host = db1 # primary").ends_with("`host = \"db1\"  # primary`"),
            "{}",
            hint("host = db1 # primary")
        );
        assert!(hint("enabled = yes ; on").ends_with("`enabled = true  # on`"));
    }

    #[test]
    fn valid_toml_lines_get_no_hint() {
        for line in [
            "# a comment",
            "[pg_stats]",
            "[a.b]",
            "interval = 60",
            "interval = 60 # seconds",
            "enabled = true",
            "host = \"localhost\"",
            "databases = [\"a\", \"b\"]",
            "databases = 'a, b'",
            "",
            "interval = = 5",
            "\"quoted key\" = x",
        ] {
            assert_eq!(line_hint(line), None, "{line:?}");
        }
    }

    #[test]
    fn every_cpp_line_is_reported_when_the_toml_error_is_on_one() {
        let text = "[collector]\n; comment\nid = \"a\"\n  host = db # x\n";
        let found = diagnose(text, text.find(';').unwrap());
        let at: Vec<usize> = found.iter().map(|(at, _)| *at).collect();
        assert_eq!(at, [12, text.find("host").unwrap()]);
        // Pointing at the end of the line (its newline) counts as the line.
        assert_eq!(diagnose(text, 21).len(), 2);
    }

    #[test]
    fn an_error_elsewhere_keeps_the_toml_message() {
        let text = "[collector]\ninterval = = 5\n; comment\n";
        assert!(diagnose(text, text.find("= 5").unwrap()).is_empty());
        assert!(diagnose("x = 1\n", 0).is_empty());
    }

    #[test]
    fn boolean_strings_get_a_hint() {
        let h = bool_string_hint("tls", "verify", "yes").unwrap();
        assert_eq!(
            h,
            "[tls] verify: expected true or false, found the string \"yes\" (the C++ \
             collector's syntax); in TOML write `verify = true`"
        );
        assert_eq!(bool_string_hint("tls", "verify", "maybe"), None);
    }
}
