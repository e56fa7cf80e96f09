//! Reading the config file: TOML text → a validated [`Config`], with every problem at once.
//!
//! [`parse_str`] is pure (text and an injected environment in, config or diagnostics out);
//! [`load`] adds the two edges: reading the file and the checks that need the file system
//! (named files readable, secrets not readable by others). Neither applies a pulled document
//! (docs/protocol.md, "Config pull") nor decides defaults that need the host (hostname, the state directory's
//! files): the model keeps those as `None`.
//!
//! Rules from docs/configuration.md handled here, in one place each:
//! - C++ compatibility: a plugin table without `enabled` is on; `databases` may be a
//!   comma-separated string; a file that sets `database` but not `databases` monitors just it.
//! - `""` means "the default" for the keys docs/configuration.md shows as `""` (→ `None`).
//! - Seconds keys take integers or floats, at least 0.01 s, and are kept to the microsecond
//!   (so rendering and parsing again gives the same `Duration`), at most [`MAX_SECONDS`];
//!   `config_pull_interval = 0` means never (`None`). `_ms` keys take integers, `0` = no limit
//!   (as PostgreSQL's `statement_timeout` and `lock_timeout`).
//! - Cross-key rules: `buffer_bytes >= max_batch_bytes / 4`, `retry_initial <= retry_max`,
//!   `cert_file` and `key_file` together, `shared_secret` needs `jwt_secret_file` and an `id`,
//!   plaintext `http://` only to loopback unless `allow_insecure_http` (then a warning).
//! - Diagnostics never quote the password or a secret file's content; environment errors
//!   point at the `[postgres]` header (or 1:1).
//! - `min_level` is case-insensitive; `DEBUG` means `DEBUG2`, as in PostgreSQL's own settings.
//! - PG* environment variables fill `[postgres]` keys the file leaves out.

use super::BackendUrl;
use crate::collect::registry::{self, PLUGIN_NAMES};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{Document, TableLike, Value};

use super::cpp_syntax;
use super::model::*;

/// One problem in the file: Display is exactly `FILE:LINE:COL: message` (1-based line and
/// column, column in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for Diagnostic {}

/// A parsed, valid file and the warnings found on the way (sorted by position).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// The environment, injectable for tests: returns the value of a variable.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Why [`load`] gave no config.
#[derive(Debug)]
pub enum LoadError {
    /// The file itself could not be read (missing, permission, not UTF-8).
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file was read; these are all its problems, sorted by position.
    Invalid(Vec<Diagnostic>),
}

impl fmt::Display for LoadError {
    /// `Read` is one line; `Invalid` is one line per diagnostic.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, error } => write!(
                f,
                "cannot read config file {}: {error}; create it, fix its permissions or pass -c FILE",
                path.display()
            ),
            LoadError::Invalid(diagnostics) => {
                for (i, d) in diagnostics.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{d}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Largest seconds value of any key: one year. Keeps `Duration` arithmetic far from overflow.
pub const MAX_SECONDS: f64 = 31_536_000.0;
/// Smallest seconds value of any key (docs/configuration.md: "minimum 0.01").
pub const MIN_SECONDS: f64 = 0.01;
/// Largest `_ms` value: PostgreSQL's own limit for its timeouts (`INT_MAX` milliseconds).
pub const MAX_MILLIS: i64 = i32::MAX as i64;

const COLLECTOR_KEYS: &[&str] = &[
    "id",
    "hostname",
    "interval",
    "push_interval",
    "config_pull_interval",
    "state_dir",
];
const BACKEND_KEYS: &[&str] = &[
    "url",
    "compression",
    "compression_level",
    "connect_timeout_secs",
    "request_timeout_secs",
    "retry_initial_secs",
    "retry_max_secs",
    "max_batch_bytes",
    "buffer_bytes",
    "spool_bytes",
    "allow_insecure_http",
];
const AUTH_KEYS: &[&str] = &[
    "mode",
    "token_file",
    "registration_secret_file",
    "jwt_secret_file",
    "token_lifetime_secs",
];
const TLS_KEYS: &[&str] = &["verify", "ca_file", "cert_file", "key_file"];
const POSTGRES_KEYS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "password_file",
    "database",
    "databases",
    "sslmode",
    "sslrootcert",
    "connect_timeout_secs",
    "statement_timeout_ms",
    "lock_timeout_ms",
    "max_connections",
    "application_name",
    "requirepeer",
    "require_auth",
    "channel_binding",
];
const LOGGING_KEYS: &[&str] = &["level", "format"];
/// The largest `buffer_bytes` a file may ask for (security rule S6, "sizes a config may ask
/// for": larger is a configuration error, never an abort at allocation).
pub const MAX_BUFFER_BYTES: usize = 1 << 30;
/// The bounds of `spool_bytes` other than 0 (security rule S6).
pub const MIN_SPOOL_BYTES: u64 = 8 << 20;
pub const MAX_SPOOL_BYTES: u64 = 64 << 30;
/// The largest `max_batch_bytes`.
pub const MAX_BATCH_BYTES: usize = 64 << 20;

/// The keys a section knows (`None`: not a section of the file). A plugin's table has
/// `enabled`, `interval` and the keys of its registry entry.
fn known_keys(section: &str) -> Option<Vec<&'static str>> {
    Some(match section {
        "collector" => COLLECTOR_KEYS.to_vec(),
        "backend" => BACKEND_KEYS.to_vec(),
        "auth" => AUTH_KEYS.to_vec(),
        "tls" => TLS_KEYS.to_vec(),
        "postgres" => POSTGRES_KEYS.to_vec(),
        "logging" => LOGGING_KEYS.to_vec(),
        name => {
            let plugin = registry::find(name)?;
            ["enabled", "interval"]
                .into_iter()
                .chain(plugin.keys.iter().map(|k| k.name))
                .collect()
        }
    })
}

const SECTION_NAMES: [&str; 6] = ["collector", "backend", "auth", "tls", "postgres", "logging"];

/// Errors and warnings gathered while reading, by byte offset into the text.
struct Ctx<'t> {
    text: &'t str,
    errors: Vec<(usize, String)>,
    warnings: Vec<(usize, String)>,
    /// Keys the file sets (valid or not), with the offset of the key.
    seen: Vec<(&'static str, &'static str, usize)>,
}

impl<'t> Ctx<'t> {
    fn new(text: &'t str) -> Self {
        Ctx {
            text,
            errors: Vec::new(),
            warnings: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn error(&mut self, at: usize, message: String) {
        self.errors.push((at, message));
    }

    fn warn(&mut self, at: usize, message: String) {
        self.warnings.push((at, message));
    }

    /// Offset of `key` in `[section]` when the file sets it.
    fn key_at(&self, section: &str, key: &str) -> Option<usize> {
        self.seen
            .iter()
            .find(|(s, k, _)| *s == section && *k == key)
            .map(|&(_, _, at)| at)
    }

    fn diagnostics(&self, file: &str, list: &[(usize, String)]) -> Vec<Diagnostic> {
        let mut list = list.to_vec();
        list.sort_by_key(|(at, _)| *at);
        list.into_iter()
            .map(|(at, message)| {
                let (line, col) = line_col(self.text, at);
                Diagnostic {
                    file: file.to_string(),
                    line,
                    col,
                    message,
                }
            })
            .collect()
    }
}

/// 1-based line and column (in characters) of byte offset `at`, clamped into the text.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn start(span: Option<std::ops::Range<usize>>) -> usize {
    span.map_or(0, |r| r.start)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The candidate closest to `name`, when close enough to be a typo: at most one edit per
/// three characters (at least one).
fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn did_you_mean(found: Option<&str>) -> String {
    found.map_or(String::new(), |c| format!("; did you mean `{c}`?"))
}

/// One table of the file, read key by key. Every getter returns `None` when the key is
/// absent or invalid (the error is recorded), else the value.
struct Section<'d> {
    name: &'static str,
    table: Option<&'d dyn TableLike>,
    /// Offset of the header (or of the key of an inline table).
    at: Option<usize>,
}

/// A key's value and where to point at it.
struct Field<'d> {
    section: &'static str,
    key: &'static str,
    value: Option<&'d Value>,
    /// The item's kind when it is no plain value (a `[section.key]` table).
    kind: &'static str,
    at: usize,
}

impl Field<'_> {
    fn error(&self, ctx: &mut Ctx, message: impl fmt::Display) {
        ctx.error(
            self.at,
            format!("[{}] {}: {message}", self.section, self.key),
        );
    }

    fn type_error(&self, ctx: &mut Ctx, expected: &str) {
        let found = self.value.map_or(self.kind, |v| v.type_name());
        self.error(ctx, format!("expected {expected}, found {found}"));
    }
}

impl<'d> Section<'d> {
    /// Opens `[name]` of the root table, warning about unknown keys in it.
    fn open(ctx: &mut Ctx, root: &'d toml_edit::Table, name: &'static str) -> Self {
        let mut section = Section {
            name,
            table: None,
            at: None,
        };
        let Some((key, item)) = root.get_key_value(name) else {
            return section;
        };
        let at = start(item.span().or_else(|| key.span()));
        section.at = Some(at);
        let Some(table) = item.as_table_like() else {
            ctx.error(
                at,
                format!("[{name}]: expected a table, found {}", item.type_name()),
            );
            return section;
        };
        let known = known_keys(name).unwrap_or_default();
        for (k, _) in table.iter() {
            if !known.contains(&k) {
                let at = start(table.key(k).and_then(|k| k.span()));
                let hint = did_you_mean(closest(k, known.iter().copied()));
                ctx.warn(at, format!("unknown key `{k}` in [{name}], ignored{hint}"));
            }
        }
        section.table = Some(table);
        section
    }

    fn present(&self) -> bool {
        self.table.is_some()
    }

    fn field(&self, ctx: &mut Ctx, key: &'static str) -> Option<Field<'d>> {
        let (k, item) = self.table?.get_key_value(key)?;
        let key_at = start(k.span());
        ctx.seen.push((self.name, key, key_at));
        let at = item.span().map_or(key_at, |r| r.start);
        Some(Field {
            section: self.name,
            key,
            value: item.as_value(),
            kind: item.type_name(),
            at,
        })
    }

    fn bool(&self, ctx: &mut Ctx, key: &'static str) -> Option<bool> {
        let f = self.field(ctx, key)?;
        match f.value.and_then(Value::as_bool) {
            Some(b) => Some(b),
            None => {
                let cpp = f.value.and_then(Value::as_str);
                if let Some(h) = cpp.and_then(|s| cpp_syntax::bool_string_hint(f.section, key, s)) {
                    ctx.error(f.at, h);
                    return None;
                }
                f.type_error(ctx, "true or false");
                None
            }
        }
    }

    /// A string, `""` included.
    fn string(&self, ctx: &mut Ctx, key: &'static str) -> Option<(String, Field<'d>)> {
        let f = self.field(ctx, key)?;
        match f.value.and_then(Value::as_str) {
            Some(s) => Some((s.to_string(), f)),
            None => {
                f.type_error(ctx, "a string");
                None
            }
        }
    }

    /// A string where `""` means the default: `Some(None)`.
    fn opt_string(&self, ctx: &mut Ctx, key: &'static str) -> Option<Option<String>> {
        let (s, _) = self.string(ctx, key)?;
        Some((!s.is_empty()).then_some(s))
    }

    fn opt_path(&self, ctx: &mut Ctx, key: &'static str) -> Option<Option<PathBuf>> {
        self.opt_string(ctx, key).map(|s| s.map(PathBuf::from))
    }

    /// A string that must not be empty.
    fn required_string(&self, ctx: &mut Ctx, key: &'static str) -> Option<String> {
        let (s, f) = self.string(ctx, key)?;
        if s.is_empty() {
            f.error(ctx, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// An integer in `min..=max`.
    fn int(&self, ctx: &mut Ctx, key: &'static str, min: i64, max: i64) -> Option<i64> {
        let f = self.field(ctx, key)?;
        let Some(i) = f.value.and_then(Value::as_integer) else {
            f.type_error(ctx, "an integer");
            return None;
        };
        if i < min {
            if min == 0 {
                f.error(ctx, "must not be negative");
            } else {
                f.error(ctx, format!("must be at least {min}"));
            }
            return None;
        }
        if i > max {
            f.error(ctx, format!("must be at most {max}"));
            return None;
        }
        Some(i)
    }

    fn u32(&self, ctx: &mut Ctx, key: &'static str, min: u32) -> Option<u32> {
        // unwrap-free: the range check keeps the value inside u32.
        self.int(ctx, key, i64::from(min), i64::from(u32::MAX))
            .and_then(|i| u32::try_from(i).ok())
    }

    /// A byte size in `min..=max`.
    fn size(&self, ctx: &mut Ctx, key: &'static str, min: usize, max: usize) -> Option<usize> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let min = i64::try_from(min).unwrap_or(i64::MAX);
        self.int(ctx, key, min, max)
            .and_then(|i| usize::try_from(i).ok())
    }

    /// Seconds: an integer or a float, at least [`MIN_SECONDS`]; `zero_is_none` lets `0` mean
    /// "never" (`Some(None)`).
    fn seconds_or_zero(
        &self,
        ctx: &mut Ctx,
        key: &'static str,
        zero_is_none: bool,
    ) -> Option<Option<Duration>> {
        let f = self.field(ctx, key)?;
        let secs = match f.value {
            Some(Value::Integer(i)) => *i.value() as f64,
            Some(Value::Float(x)) => *x.value(),
            _ => {
                f.type_error(ctx, "a number of seconds");
                return None;
            }
        };
        if zero_is_none && secs == 0.0 {
            return Some(None);
        }
        if !secs.is_finite() {
            f.error(ctx, "must be a finite number of seconds");
            return None;
        }
        if secs < MIN_SECONDS {
            let also = if zero_is_none {
                " (or 0 for never)"
            } else {
                ""
            };
            f.error(ctx, format!("must be at least {MIN_SECONDS} seconds{also}"));
            return None;
        }
        if secs > MAX_SECONDS {
            f.error(
                ctx,
                format!("must be at most {MAX_SECONDS} seconds (one year)"),
            );
            return None;
        }
        // In range 0.01..=3.2e7 s, so the microsecond count is exact in f64 and fits u64.
        Some(Some(Duration::from_micros((secs * 1e6).round() as u64)))
    }

    fn seconds(&self, ctx: &mut Ctx, key: &'static str) -> Option<Duration> {
        self.seconds_or_zero(ctx, key, false).flatten()
    }

    /// Milliseconds: a non-negative integer (0 = no limit, as in PostgreSQL).
    fn millis(&self, ctx: &mut Ctx, key: &'static str) -> Option<Duration> {
        let f = self.field(ctx, key)?;
        if !matches!(f.value, Some(Value::Integer(_))) {
            f.type_error(ctx, "an integer number of milliseconds");
            return None;
        }
        self.int(ctx, key, 0, MAX_MILLIS)
            .map(|ms| Duration::from_millis(ms.unsigned_abs()))
    }

    /// One of `names` (exact spelling, or any case with `any_case`).
    fn choice<T: Copy>(
        &self,
        ctx: &mut Ctx,
        key: &'static str,
        names: &[(&str, T)],
        any_case: bool,
    ) -> Option<T> {
        let (s, f) = self.string(ctx, key)?;
        choose(&s, names, any_case).or_else(|| {
            f.error(ctx, unknown_value(&s, names));
            None
        })
    }

    fn strings(&self, ctx: &mut Ctx, key: &'static str) -> Option<Vec<String>> {
        let f = self.field(ctx, key)?;
        let Some(array) = f.value.and_then(Value::as_array) else {
            f.type_error(ctx, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for v in array.iter() {
            match v.as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    let at = start(v.span()).max(f.at);
                    ctx.error(
                        at,
                        format!(
                            "[{}] {}: expected an array of strings, found {} in it",
                            f.section,
                            f.key,
                            v.type_name()
                        ),
                    );
                    return None;
                }
            }
        }
        Some(out)
    }
}

fn choose<T: Copy>(s: &str, names: &[(&str, T)], any_case: bool) -> Option<T> {
    names
        .iter()
        .find(|(n, _)| *n == s || (any_case && n.eq_ignore_ascii_case(s)))
        .map(|&(_, v)| v)
}

fn unknown_value<T>(s: &str, names: &[(&str, T)]) -> String {
    let allowed: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
    format!(
        "unknown value {}; expected one of {}",
        quoted(s),
        allowed.join(", ")
    )
}

/// A value echoed in a message, shortened and with control characters escaped.
fn quoted(s: &str) -> String {
    let short: String = s.chars().take(64).collect();
    let more = if short.len() < s.len() { "…" } else { "" };
    format!("`{}{more}`", short.escape_debug())
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// `min_level`: a PostgreSQL severity in any case; `DEBUG` is `DEBUG2` as in PostgreSQL.
fn min_level(ctx: &mut Ctx, section: &Section, key: &'static str) -> Option<PgSeverity> {
    let (s, f) = section.string(ctx, key)?;
    if s.eq_ignore_ascii_case("debug") {
        return Some(PgSeverity::Debug2);
    }
    choose(&s, PgSeverity::NAMES, true).or_else(|| {
        f.error(ctx, unknown_value(&s, PgSeverity::NAMES));
        None
    })
}

/// `databases`: an array of names, or a comma-separated string (C++ compatibility); `"*"`
/// (alone, or as the only element) means every database. `Some(None)`: `""`, the default.
fn databases(ctx: &mut Ctx, section: &Section, key: &'static str) -> Option<Option<Databases>> {
    let f = section.field(ctx, key)?;
    let names: Vec<String> = match f.value {
        Some(Value::String(s)) => {
            if s.value().trim().is_empty() {
                return Some(None);
            }
            s.value()
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        }
        Some(Value::Array(_)) => {
            let names = section.strings(ctx, key)?;
            if names.iter().any(|n| n.trim().is_empty()) {
                f.error(ctx, "database names must not be empty");
                return None;
            }
            names
        }
        _ => {
            f.type_error(
                ctx,
                "an array of database names or a comma-separated string",
            );
            return None;
        }
    };
    if names.is_empty() {
        f.error(ctx, "must name at least one database, or \"*\" for all");
        return None;
    }
    if names.iter().any(|n| n == "*") {
        if names.len() > 1 {
            f.error(ctx, "\"*\" means every database and stands alone");
            return None;
        }
        return Some(Some(Databases::All));
    }
    let mut unique: Vec<String> = Vec::with_capacity(names.len());
    for n in names {
        if !unique.contains(&n) {
            unique.push(n);
        }
    }
    Some(Some(Databases::List(unique)))
}

/// Pure: no file system access. Parses and validates `text` (shown as `file` in
/// diagnostics); PG* env vars fill `[postgres]` keys the file leaves out. Returns every error
/// at once (sorted by position).
pub fn parse_str(file: &str, text: &str, env: Env) -> Result<Loaded, Vec<Diagnostic>> {
    parse_inner(file, text, env).map(|(loaded, _)| loaded)
}

/// Where the file set each key: `load` points its file-system diagnostics there.
type Seen = Vec<(&'static str, &'static str, usize)>;

fn parse_inner(file: &str, text: &str, env: Env) -> Result<(Loaded, Seen), Vec<Diagnostic>> {
    let mut ctx = Ctx::new(text);
    let doc = match Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let message = e.message().trim().replace('\n', "; ");
            // A file in the C++ collector's syntax: say so, and how to write each line.
            let cpp = super::cpp_syntax::diagnose(text, start(e.span()));
            if cpp.is_empty() {
                ctx.error(start(e.span()), format!("invalid TOML: {message}"));
            }
            cpp.into_iter().for_each(|(at, m)| ctx.error(at, m));
            return Err(ctx.diagnostics(file, &ctx.errors));
        }
    };
    let config = read_config(&mut ctx, doc.as_table(), env);
    if !ctx.errors.is_empty() {
        return Err(ctx.diagnostics(file, &ctx.errors));
    }
    let warnings = ctx.diagnostics(file, &ctx.warnings);
    Ok((Loaded { config, warnings }, ctx.seen))
}

/// The built-in defaults with the PG* environment applied (used when no file exists, e.g.
/// `once` on a fresh host). Invalid variables are ignored here (libpq reports them when it
/// connects); [`parse_str`] reports them as errors.
pub fn defaults_with_env(env: Env) -> Config {
    let mut ctx = Ctx::new("");
    let mut config = Config::default();
    apply_env(&mut ctx, &mut config.postgres, env, 0);
    let databases = Databases::List(vec![config.postgres.database.clone()]);
    config.postgres.databases = databases;
    config
}

fn read_config(ctx: &mut Ctx, root: &toml_edit::Table, env: Env) -> Config {
    let mut c = Config::default();

    for (name, item) in root.iter() {
        if SECTION_NAMES.contains(&name) || PLUGIN_NAMES.contains(&name) || name == CUSTOM_QUERY {
            continue;
        }
        let at = start(root.key(name).and_then(|k| k.span()));
        let candidates = SECTION_NAMES.iter().chain(PLUGIN_NAMES.iter()).copied();
        let hint = did_you_mean(closest(name, candidates));
        if item.is_table_like() || item.is_array_of_tables() {
            ctx.warn(at, format!("unknown section [{name}], ignored{hint}"));
        } else {
            ctx.warn(at, format!("unknown top-level key `{name}`, ignored{hint}"));
        }
    }

    let s = Section::open(ctx, root, "collector");
    set(&mut c.collector.id, s.opt_string(ctx, "id"));
    set(&mut c.collector.hostname, s.opt_string(ctx, "hostname"));
    set(&mut c.collector.interval, s.seconds(ctx, "interval"));
    set(
        &mut c.collector.push_interval,
        s.seconds(ctx, "push_interval"),
    );
    set(
        &mut c.collector.config_pull_interval,
        s.seconds_or_zero(ctx, "config_pull_interval", true),
    );
    set(
        &mut c.collector.state_dir,
        s.required_string(ctx, "state_dir").map(PathBuf::from),
    );

    read_backend(ctx, root, &mut c.backend);
    read_auth(ctx, root, &mut c);

    let s = Section::open(ctx, root, "tls");
    set(&mut c.tls.verify, s.bool(ctx, "verify"));
    set(&mut c.tls.ca_file, s.opt_path(ctx, "ca_file"));
    set(&mut c.tls.cert_file, s.opt_path(ctx, "cert_file"));
    set(&mut c.tls.key_file, s.opt_path(ctx, "key_file"));
    if !c.tls.verify {
        let at = ctx.key_at("tls", "verify").unwrap_or(0);
        ctx.warn(
            at,
            "[tls] verify = false: the backend's certificate is not checked; use only in a lab"
                .to_string(),
        );
    }
    if c.tls.cert_file.is_some() != c.tls.key_file.is_some() {
        let (set_key, missing) = if c.tls.cert_file.is_some() {
            ("cert_file", "key_file")
        } else {
            ("key_file", "cert_file")
        };
        let at = ctx.key_at("tls", set_key).unwrap_or(0);
        ctx.error(
            at,
            format!(
                "[tls] {set_key}: needs `{missing}` too (client certificate and key go together)"
            ),
        );
    }

    read_postgres(ctx, root, &mut c.postgres, env);

    let s = Section::open(ctx, root, "logging");
    set(
        &mut c.logging.level,
        s.choice(ctx, "level", LogLevel::NAMES, false),
    );
    if let Some((format, f)) = s.string(ctx, "format") {
        if format.is_empty() {
            c.logging.format = None;
        } else if let Some(v) = choose(&format, LogFormat::NAMES, false) {
            c.logging.format = Some(v);
        } else {
            f.error(ctx, unknown_value(&format, LogFormat::NAMES));
        }
    }

    read_plugins(ctx, root, &mut c);
    read_custom_queries(ctx, root, &mut c);
    c
}

/// The array of tables of custom queries.
const CUSTOM_QUERY: &str = "custom_query";
const CUSTOM_QUERY_KEYS: &[&str] = &[
    "name",
    "sql",
    "interval",
    "databases",
    "min_version",
    "max_version",
    "max_rows",
];
/// The most rows a custom query may keep per database.
pub const MAX_CUSTOM_QUERY_ROWS: u32 = 100_000;

/// `[[custom_query]]`: each table validated whole; a bad name, an empty `sql` or a duplicate
/// name is an error with its position (the SQL itself is the server's to judge).
fn read_custom_queries(ctx: &mut Ctx, root: &toml_edit::Table, c: &mut Config) {
    let Some((key, item)) = root.get_key_value(CUSTOM_QUERY) else {
        return;
    };
    let at = start(item.span().or_else(|| key.span()));
    let Some(tables) = item.as_array_of_tables() else {
        ctx.error(
            at,
            format!(
                "[{CUSTOM_QUERY}]: expected an array of tables; write each query as [[{CUSTOM_QUERY}]]"
            ),
        );
        return;
    };
    for table in tables.iter() {
        let at = start(table.span());
        for (k, _) in table.iter() {
            if !CUSTOM_QUERY_KEYS.contains(&k) {
                let at = start(table.key(k).and_then(|k| k.span()));
                let hint = did_you_mean(closest(k, CUSTOM_QUERY_KEYS.iter().copied()));
                ctx.warn(
                    at,
                    format!("unknown key `{k}` in [[{CUSTOM_QUERY}]], ignored{hint}"),
                );
            }
        }
        let s = Section {
            name: CUSTOM_QUERY,
            table: Some(table),
            at: Some(at),
        };
        let name = match s.field(ctx, "name") {
            None => {
                ctx.error(
                    at,
                    format!("[[{CUSTOM_QUERY}]]: needs `name` ([a-z0-9_], 1 to 63 characters)"),
                );
                None
            }
            Some(_) => s.string(ctx, "name").and_then(|(n, f)| {
                let valid = (1..=63).contains(&n.len())
                    && n.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !valid {
                    f.error(
                        ctx,
                        format!("{} is not [a-z0-9_], 1 to 63 characters", quoted(&n)),
                    );
                    None
                } else if c.custom_queries.iter().any(|q| q.name == n) {
                    f.error(
                        ctx,
                        format!("{} is the name of an earlier query", quoted(&n)),
                    );
                    None
                } else {
                    Some(n)
                }
            }),
        };
        let sql = if s.field(ctx, "sql").is_none() {
            ctx.error(at, format!("[[{CUSTOM_QUERY}]]: needs `sql`"));
            None
        } else {
            s.string(ctx, "sql").and_then(|(q, f)| {
                if q.trim().is_empty() {
                    f.error(ctx, "must not be empty");
                    None
                } else {
                    Some(q)
                }
            })
        };
        let mut q = CustomQuery {
            name: String::new(),
            sql: String::new(),
            interval: c.collector.interval,
            databases: None,
            min_version: 0,
            max_version: 0,
            max_rows: super::defaults::CUSTOM_QUERY_MAX_ROWS,
        };
        let interval = s.seconds(ctx, "interval");
        // `[]` (as config.md writes the default): the `[postgres] database`.
        let empty = table
            .get("databases")
            .and_then(|i| i.as_array())
            .is_some_and(|a| a.is_empty());
        let databases = if empty {
            None
        } else {
            databases(ctx, &s, "databases")
        };
        let min_version = s.u32(ctx, "min_version", 0);
        let max_version = s.u32(ctx, "max_version", 0);
        let max_rows = s.int(ctx, "max_rows", 1, i64::from(MAX_CUSTOM_QUERY_ROWS));
        set(&mut q.interval, interval);
        set(&mut q.databases, databases);
        set(&mut q.min_version, min_version);
        set(&mut q.max_version, max_version);
        set(
            &mut q.max_rows,
            max_rows.and_then(|i| u32::try_from(i).ok()),
        );
        if q.max_version != 0
            && q.max_version < q.min_version
            && let Some(f) = s.field(ctx, "max_version")
        {
            f.error(ctx, "must not be below min_version (0 = no bound)");
        }
        if let (Some(name), Some(sql)) = (name, sql) {
            q.name = name;
            q.sql = sql;
            c.custom_queries.push(q);
        }
    }
}

/// The 1-based line of each `[[custom_query]]`'s `sql` key in `text`, in file order (where
/// `check-config` reports what the server says of it); empty when the text is not TOML.
pub fn custom_query_lines(text: &str) -> Vec<usize> {
    let Ok(doc) = Document::parse(text) else {
        return Vec::new();
    };
    let Some(tables) = doc.get(CUSTOM_QUERY).and_then(|i| i.as_array_of_tables()) else {
        return Vec::new();
    };
    tables
        .iter()
        .filter(|t| t.get("name").is_some() && t.get("sql").is_some())
        .map(|t| {
            let at = t
                .get_key_value("sql")
                .and_then(|(k, _)| k.span())
                .or_else(|| t.span());
            line_col(text, start(at)).0
        })
        .collect()
}

fn read_backend(ctx: &mut Ctx, root: &toml_edit::Table, b: &mut Backend) {
    let s = Section::open(ctx, root, "backend");
    let url = s.string(ctx, "url");
    set(
        &mut b.compression,
        s.choice(ctx, "compression", Compression::NAMES, false),
    );
    set(
        &mut b.compression_level,
        s.int(ctx, "compression_level", 1, 10)
            .and_then(|i| u8::try_from(i).ok()),
    );
    set(
        &mut b.connect_timeout,
        s.seconds(ctx, "connect_timeout_secs"),
    );
    set(
        &mut b.request_timeout,
        s.seconds(ctx, "request_timeout_secs"),
    );
    set(&mut b.retry_initial, s.seconds(ctx, "retry_initial_secs"));
    set(&mut b.retry_max, s.seconds(ctx, "retry_max_secs"));
    set(
        &mut b.max_batch_bytes,
        s.size(ctx, "max_batch_bytes", 1, MAX_BATCH_BYTES),
    );
    set(
        &mut b.buffer_bytes,
        s.size(ctx, "buffer_bytes", 0, MAX_BUFFER_BYTES),
    );
    if let Some(f) = s.field(ctx, "spool_bytes") {
        match f.value.and_then(toml_edit::Value::as_integer) {
            Some(0) => b.spool_bytes = 0,
            Some(n) if (MIN_SPOOL_BYTES as i64..=MAX_SPOOL_BYTES as i64).contains(&n) => {
                b.spool_bytes = n as u64;
            }
            Some(n) => f.error(
                ctx,
                format!(
                    "{n} is out of range: 0 turns the outage spool off, \
                     otherwise it must be between {MIN_SPOOL_BYTES} (8 MiB) and \
                     {MAX_SPOOL_BYTES} (64 GiB)"
                ),
            ),
            None => f.type_error(ctx, "an integer number of bytes"),
        }
    }
    set(
        &mut b.allow_insecure_http,
        s.bool(ctx, "allow_insecure_http"),
    );

    if let Some((url, f)) = url {
        if url.is_empty() {
            b.url = None;
        } else {
            match BackendUrl::parse(&url) {
                Err(why) => f.error(ctx, why),
                Ok(u) if !u.https && !u.is_loopback() => {
                    if b.allow_insecure_http {
                        ctx.warn(
                            f.at,
                            "[backend] url: plaintext http:// to a host that is not loopback; \
                             tokens and metrics travel unencrypted"
                                .to_string(),
                        );
                    } else {
                        f.error(
                            ctx,
                            "plaintext http:// is allowed only to a loopback host; use https:// \
                             or set allow_insecure_http = true",
                        );
                    }
                    b.url = Some(u);
                }
                Ok(u) => b.url = Some(u),
            }
        }
    }

    if b.retry_initial > b.retry_max {
        let at = ctx
            .key_at("backend", "retry_initial_secs")
            .or(ctx.key_at("backend", "retry_max_secs"))
            .unwrap_or(0);
        ctx.error(
            at,
            "[backend] retry_initial_secs: must not exceed retry_max_secs".to_string(),
        );
    }
    let least = b.max_batch_bytes / 4;
    if b.buffer_bytes < least {
        let at = ctx
            .key_at("backend", "buffer_bytes")
            .or(ctx.key_at("backend", "max_batch_bytes"))
            .unwrap_or(0);
        ctx.error(
            at,
            format!(
                "[backend] buffer_bytes: must be at least max_batch_bytes / 4 ({least}) so one \
                 largest element fits in the buffer"
            ),
        );
    }
}

fn read_auth(ctx: &mut Ctx, root: &toml_edit::Table, c: &mut Config) {
    let s = Section::open(ctx, root, "auth");
    let a = &mut c.auth;
    set(&mut a.mode, s.choice(ctx, "mode", AuthMode::NAMES, false));
    set(&mut a.token_file, s.opt_path(ctx, "token_file"));
    set(
        &mut a.registration_secret_file,
        s.opt_path(ctx, "registration_secret_file"),
    );
    set(&mut a.jwt_secret_file, s.opt_path(ctx, "jwt_secret_file"));
    set(&mut a.token_lifetime, s.seconds(ctx, "token_lifetime_secs"));
    if a.mode == AuthMode::SharedSecret {
        let at = ctx.key_at("auth", "mode").unwrap_or(0);
        if a.jwt_secret_file.is_none() {
            ctx.error(
                at,
                "[auth] mode: shared_secret needs `jwt_secret_file`".to_string(),
            );
        }
        if c.collector.id.is_none() {
            ctx.error(
                at,
                "[auth] mode: shared_secret needs [collector] id (the token's collector_id)"
                    .to_string(),
            );
        }
    }
}

fn read_postgres(ctx: &mut Ctx, root: &toml_edit::Table, p: &mut Postgres, env: Env) {
    let s = Section::open(ctx, root, "postgres");
    set(&mut p.host, s.opt_string(ctx, "host"));
    set(
        &mut p.port,
        s.int(ctx, "port", 1, 65535)
            .and_then(|i| u16::try_from(i).ok()),
    );
    set(&mut p.user, s.opt_string(ctx, "user"));
    set(&mut p.password, s.opt_string(ctx, "password"));
    set(&mut p.password_file, s.opt_path(ctx, "password_file"));
    set(&mut p.database, s.required_string(ctx, "database"));
    let dbs = databases(ctx, &s, "databases");
    let sslmode = s.choice(ctx, "sslmode", SslMode::NAMES, false);
    set(&mut p.sslmode, sslmode);
    set(&mut p.sslrootcert, s.opt_path(ctx, "sslrootcert"));
    if p.sslrootcert.as_deref() == Some(Path::new("system")) {
        // As libpq 16: the system roots verify the host name, so verify-full is the default
        // and a weaker explicit mode is a mistake.
        match sslmode {
            None => p.sslmode = SslMode::VerifyFull,
            Some(SslMode::VerifyFull) => {}
            Some(_) => {
                let at = ctx.key_at("postgres", "sslmode").unwrap_or(0);
                ctx.error(
                    at,
                    "[postgres] sslrootcert = \"system\" needs sslmode = \"verify-full\" (its default): \
                     remove sslmode, or name a CA file in sslrootcert"
                        .to_string(),
                );
            }
        }
    }
    set(
        &mut p.connect_timeout,
        s.seconds(ctx, "connect_timeout_secs"),
    );
    set(
        &mut p.statement_timeout,
        s.millis(ctx, "statement_timeout_ms"),
    );
    set(&mut p.lock_timeout, s.millis(ctx, "lock_timeout_ms"));
    set(&mut p.max_connections, s.u32(ctx, "max_connections", 1));
    set(
        &mut p.application_name,
        s.string(ctx, "application_name").map(|(s, _)| s),
    );
    set(
        &mut p.requirepeer,
        s.string(ctx, "requirepeer").map(|(s, _)| Some(s)),
    );
    if let Some((text, f)) = s.string(ctx, "require_auth") {
        match parse_require_auth(&text) {
            Ok(methods) => p.require_auth = methods,
            Err(e) => f.error(ctx, &e),
        }
    }
    set(
        &mut p.channel_binding,
        s.choice(ctx, "channel_binding", ChannelBinding::NAMES, false),
    );
    apply_env(ctx, p, env, s.at.unwrap_or(0));
    // C++ compatibility: a file (or PGDATABASE) naming only `database` monitors just it.
    p.databases = match dbs {
        Some(Some(d)) => d,
        _ => Databases::List(vec![p.database.clone()]),
    };
}

/// `require_auth`: a comma list of `password`, `md5`, `scram-sha-256`, `none` (libpq 16's
/// names); `""` = the default (`None`). Duplicates are kept once.
pub fn parse_require_auth(text: &str) -> Result<Option<Vec<PgAuthMethod>>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let mut methods = Vec::new();
    for item in text.split(',').map(str::trim) {
        let Some(m) = choose(item, PgAuthMethod::NAMES, false) else {
            return Err(format!(
                "{} is not an authentication method: list some of password, md5, scram-sha-256, none (comma-separated)",
                quoted(item)
            ));
        };
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    Ok(Some(methods))
}

/// PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE fill the `[postgres]` keys the
/// file leaves out. Empty variables count as unset (as in libpq). Errors point at `at`.
fn apply_env(ctx: &mut Ctx, p: &mut Postgres, env: Env, at: usize) {
    let var = |ctx: &Ctx, name: &str, key: &str| -> Option<String> {
        if ctx.key_at("postgres", key).is_some() {
            return None;
        }
        env(name).filter(|v| !v.is_empty())
    };
    if let Some(v) = var(ctx, "PGHOST", "host") {
        p.host = Some(v);
    }
    if let Some(v) = var(ctx, "PGPORT", "port") {
        match v.trim().parse::<u16>() {
            Ok(port) if port > 0 => p.port = port,
            _ => ctx.error(
                at,
                format!(
                    "environment variable PGPORT: {} is not a port (1..65535)",
                    quoted(&v)
                ),
            ),
        }
    }
    if let Some(v) = var(ctx, "PGUSER", "user") {
        p.user = Some(v);
    }
    if let Some(v) = var(ctx, "PGPASSWORD", "password") {
        p.password = Some(v);
    }
    if let Some(v) = var(ctx, "PGDATABASE", "database") {
        p.database = v;
    }
    if let Some(v) = var(ctx, "PGSSLMODE", "sslmode") {
        match choose(&v, SslMode::NAMES, false) {
            Some(mode) => p.sslmode = mode,
            None => ctx.error(
                at,
                format!(
                    "environment variable PGSSLMODE: {}",
                    unknown_value(&v, SslMode::NAMES)
                ),
            ),
        }
    }
}

fn read_plugins(ctx: &mut Ctx, root: &toml_edit::Table, c: &mut Config) {
    let collector_interval = c.collector.interval;
    for spec in &registry::PLUGINS {
        let s = Section::open(ctx, root, spec.name);
        let enabled = s.bool(ctx, "enabled");
        let interval = s.seconds(ctx, "interval");
        if let Some(plugin) = c.plugin_mut(spec.name) {
            // C++ compatibility: a table without `enabled` means on.
            plugin.enabled = enabled.unwrap_or(s.present() || spec.on_by_default);
            plugin.interval =
                interval.unwrap_or_else(|| registry::default_interval(spec, collector_interval));
        }
        (spec.read)(&mut PluginKeys { ctx, section: &s }, c);
    }
}

/// A plugin's table, as its registry entry reads it: each method validates one key (errors
/// and their position are the loader's) and sets the value when the file has the key.
pub struct PluginKeys<'a, 'b, 't, 'd> {
    ctx: &'a mut Ctx<'t>,
    section: &'b Section<'d>,
}

impl PluginKeys<'_, '_, '_, '_> {
    pub fn bool(&mut self, key: &'static str, slot: &mut bool) {
        set(slot, self.section.bool(self.ctx, key));
    }

    /// A non-negative integer, at least `min`.
    pub fn u32(&mut self, key: &'static str, min: u32, slot: &mut u32) {
        set(slot, self.section.u32(self.ctx, key, min));
    }

    /// Seconds, with an optional fraction.
    pub fn seconds(&mut self, key: &'static str, slot: &mut Duration) {
        set(slot, self.section.seconds(self.ctx, key));
    }

    /// An array of strings (or one comma-separated string).
    pub fn strings(&mut self, key: &'static str, slot: &mut Vec<String>) {
        set(slot, self.section.strings(self.ctx, key));
    }
}

/// `[pg_log]`: every key but `enabled` and `interval`.
pub fn read_pg_log(k: &mut PluginKeys<'_, '_, '_, '_>, c: &mut Config) {
    let (ctx, s, l) = (&mut *k.ctx, k.section, &mut c.pg_log);
    set(&mut l.path, s.opt_path(ctx, "path"));
    set(&mut l.pattern, s.required_string(ctx, "pattern"));
    set(
        &mut l.format,
        s.choice(ctx, "format", PgLogFormat::NAMES, false),
    );
    set(&mut l.log_line_prefix, s.opt_string(ctx, "log_line_prefix"));
    set(&mut l.log_timezone, s.opt_string(ctx, "log_timezone"));
    set(&mut l.min_level, min_level(ctx, s, "min_level"));
    set(
        &mut l.start_at,
        s.choice(ctx, "start_at", StartAt::NAMES, false),
    );
    set(&mut l.max_entries, s.u32(ctx, "max_entries", 0));
    set(&mut l.max_message_bytes, s.u32(ctx, "max_message_bytes", 0));
}

/// Reads the file at `path`, then [`parse_str`], then the file-system checks: files the
/// config names must be readable (except `token_file`, which registration writes); secret
/// files readable by others are errors (SECURITY.md, "Secrets at rest"), and so is a shared
/// secret shorter than [`MIN_SHARED_SECRET`]; a `password` in a config file readable by others
/// is a warning. These diagnostics point at the key that named the file.
pub fn load(path: &Path, env: Env) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let file = path.display().to_string();
    let (mut loaded, seen) = parse_inner(&file, &text, env).map_err(LoadError::Invalid)?;
    let mut ctx = Ctx::new(&text);
    ctx.seen = seen;
    cpp_identity_defaults(&mut ctx, &mut loaded.config);
    check_files(&mut ctx, &loaded.config, path);
    if !ctx.errors.is_empty() {
        return Err(LoadError::Invalid(ctx.diagnostics(&file, &ctx.errors)));
    }
    loaded
        .warnings
        .extend(ctx.diagnostics(&file, &ctx.warnings));
    loaded
        .warnings
        .sort_by_key(|d| (d.line, d.col, d.message.clone()));
    Ok(loaded)
}

/// The C++ collector's client certificate and key, which its files name at its defaults.
const CPP_CERT_FILE: &str = "/etc/pganalytics/collector.crt";
const CPP_KEY_FILE: &str = "/etc/pganalytics/collector.key";

/// C++ compatibility: `[tls] cert_file` / `key_file` at the C++ collector's defaults are used
/// when the files exist, as there; when they do not, a warning, and the key is taken as unset
/// (the registration's files in the state directory, if any), instead of the error any other
/// unreadable file named by the configuration is.
fn cpp_identity_defaults(ctx: &mut Ctx, c: &mut Config) {
    for (key, default, slot) in [
        ("cert_file", CPP_CERT_FILE, &mut c.tls.cert_file),
        ("key_file", CPP_KEY_FILE, &mut c.tls.key_file),
    ] {
        if slot.as_deref() == Some(Path::new(default)) && !Path::new(default).exists() {
            let at = ctx.key_at("tls", key).unwrap_or(0);
            ctx.warn(
                at,
                format!(
                    "[tls] {key}: {default} (the C++ collector's default) does not exist, \
                     ignored: the client certificate of `register` in the state directory is \
                     used when there is one"
                ),
            );
            *slot = None;
        }
    }
}

/// Fewest bytes of the `shared_secret` mode's key (HS256: a key shorter than the hash is
/// guessable offline from one token).
pub const MIN_SHARED_SECRET: usize = 32;

/// Others may read it (`o+r`); group read is fine (packages give the file to our group).
fn readable_by_others(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o004 != 0
}

fn check_files(ctx: &mut Ctx, c: &Config, config_path: &Path) {
    // (section, key, path, holds a secret)
    let named: [(&str, &str, Option<&PathBuf>, bool); 7] = [
        (
            "auth",
            "registration_secret_file",
            c.auth.registration_secret_file.as_ref(),
            true,
        ),
        (
            "auth",
            "jwt_secret_file",
            c.auth.jwt_secret_file.as_ref(),
            true,
        ),
        ("tls", "ca_file", c.tls.ca_file.as_ref(), false),
        ("tls", "cert_file", c.tls.cert_file.as_ref(), false),
        ("tls", "key_file", c.tls.key_file.as_ref(), true),
        (
            "postgres",
            "password_file",
            c.postgres.password_file.as_ref(),
            true,
        ),
        (
            "postgres",
            "sslrootcert",
            c.postgres.sslrootcert.as_ref(),
            false,
        ),
    ];
    for (section, key, path, secret) in named {
        let Some(path) = path else { continue };
        if (section, key) == ("postgres", "sslrootcert") && path.as_os_str() == "system" {
            continue;
        }
        let at = ctx.key_at(section, key).unwrap_or(0);
        let opened = std::fs::File::open(path).and_then(|f| f.metadata());
        match opened {
            Err(e) => ctx.error(
                at,
                format!("[{section}] {key}: cannot read {}: {e}", path.display()),
            ),
            Ok(meta) if meta.is_dir() => ctx.error(
                at,
                format!(
                    "[{section}] {key}: {} is a directory, not a file",
                    path.display()
                ),
            ),
            Ok(meta) => {
                if secret && readable_by_others(&meta) {
                    refuse_others(ctx, at, section, key, path);
                }
            }
        }
    }
    if c.auth.mode == AuthMode::SharedSecret
        && let Some(path) = &c.auth.jwt_secret_file
        && let Ok(mut key) = std::fs::read(path)
    {
        while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            key.pop();
        }
        if key.len() < MIN_SHARED_SECRET {
            let at = ctx.key_at("auth", "jwt_secret_file").unwrap_or(0);
            ctx.error(
                at,
                format!(
                    "[auth] jwt_secret_file: {} holds {} bytes; the shared secret needs at least {MIN_SHARED_SECRET} (make one with `head -c 32 /dev/urandom | base64 > {}`, and give the backend the same)",
                    path.display(),
                    key.len(),
                    path.display()
                ),
            );
        }
    }
    if let Some(user) = c.postgres.requirepeer.as_deref().filter(|u| !u.is_empty())
        && crate::sys::passwd::uid_of(&crate::sys::passwd::read(), user).is_none()
    {
        let at = ctx.key_at("postgres", "requirepeer").unwrap_or(0);
        ctx.error(
            at,
            format!(
                "[postgres] requirepeer: no user `{user}` in /etc/passwd; name the user PostgreSQL runs as, or set \"\" to turn the socket owner check off"
            ),
        );
    }
    if let Some(path) = &c.auth.token_file {
        // Registration writes it later: only an existing file is checked.
        if let Ok(meta) = std::fs::metadata(path)
            && readable_by_others(&meta)
        {
            let at = ctx.key_at("auth", "token_file").unwrap_or(0);
            refuse_others(ctx, at, "auth", "token_file", path);
        }
    }
    if let Some(at) = ctx.key_at("postgres", "password")
        && c.postgres.password.is_some()
        && std::fs::metadata(config_path).is_ok_and(|m| readable_by_others(&m))
    {
        ctx.warn(
            at,
            format!(
                "[postgres] password: {} is readable by others; run chmod o-r on it or move \
                 the password to password_file",
                config_path.display()
            ),
        );
    }
}

fn refuse_others(ctx: &mut Ctx, at: usize, section: &str, key: &str, path: &Path) {
    ctx.error(
        at,
        format!(
            "[{section}] {key}: {} holds a secret and is readable by others, so it is refused; run chmod o-r {}",
            path.display(),
            path.display()
        ),
    );
}

#[cfg(test)]
mod tests;
