//! The effective configuration as TOML (`check-config`): every section and key in the order
//! of docs/configuration.md, secrets replaced by `"<redacted>"`, pulled keys marked `# pulled`.
//!
//! The output parses back to the same [`Config`] (but the password, which reads back as
//! `"<redacted>"`): seconds are written to the microsecond, the precision the parser keeps.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use super::model::*;
use crate::collect::registry;

/// What a rendered password reads.
pub const REDACTED: &str = "<redacted>";

struct Out<'p> {
    text: String,
    section: &'static str,
    pulled: &'p [(&'p str, &'p str)],
}

impl Out<'_> {
    fn section(&mut self, name: &'static str) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        // unwrap: writing to a String cannot fail.
        writeln!(self.text, "[{name}]").unwrap();
        self.section = name;
    }

    fn key(&mut self, key: &str, value: String) {
        let mark = if self.pulled.contains(&(self.section, key)) {
            "  # pulled"
        } else {
            ""
        };
        // unwrap: writing to a String cannot fail.
        writeln!(self.text, "{key} = {value}{mark}").unwrap();
    }
}

/// A TOML basic string: `"` and `\` escaped, control characters as `\uXXXX`.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                // unwrap: writing to a String cannot fail.
                write!(out, "\\u{:04X}", u32::from(c)).unwrap();
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn opt_string(s: &Option<String>) -> String {
    string(s.as_deref().unwrap_or(""))
}

fn opt_path(p: &Option<PathBuf>) -> String {
    string(
        &p.as_deref()
            .map_or(String::new(), |p| p.display().to_string()),
    )
}

fn strings(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| string(s)).collect();
    format!("[{}]", items.join(", "))
}

/// Seconds with up to six decimals: `60`, `0.5`, `0.000001`.
fn seconds(d: Duration) -> String {
    let micros = d.as_micros();
    let (whole, frac) = (micros / 1_000_000, micros % 1_000_000);
    if frac == 0 {
        whole.to_string()
    } else {
        let frac = format!("{frac:06}");
        format!("{whole}.{}", frac.trim_end_matches('0'))
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

/// A plugin's table, as its registry entry writes it.
pub struct PluginRender<'a, 'p> {
    out: &'a mut Out<'p>,
}

impl PluginRender<'_, '_> {
    pub fn bool(&mut self, key: &str, value: bool) {
        self.out.key(key, value.to_string());
    }

    pub fn u32(&mut self, key: &str, value: u32) {
        self.out.key(key, value.to_string());
    }

    pub fn seconds(&mut self, key: &str, value: Duration) {
        self.out.key(key, seconds(value));
    }

    pub fn strings(&mut self, key: &str, value: &[String]) {
        self.out.key(key, strings(value));
    }
}

/// `[pg_log]`: every key but `enabled` and `interval`.
pub fn render_pg_log(r: &mut PluginRender<'_, '_>, c: &Config) {
    let (o, l) = (&mut *r.out, &c.pg_log);
    o.key("path", opt_path(&l.path));
    o.key("pattern", string(&l.pattern));
    o.key("format", string(l.format.as_str()));
    o.key("log_line_prefix", opt_string(&l.log_line_prefix));
    o.key("log_timezone", opt_string(&l.log_timezone));
    o.key("min_level", string(l.min_level.as_str()));
    o.key("start_at", string(l.start_at.as_str()));
    o.key("max_entries", l.max_entries.to_string());
    o.key("max_message_bytes", l.max_message_bytes.to_string());
}

/// The effective configuration as TOML, every section and key, secrets (`password`) as
/// `"<redacted>"`; keys listed in `pulled` (section, key) get a trailing `# pulled` comment.
pub fn render(config: &Config, pulled: &[(&str, &str)]) -> String {
    let mut o = Out {
        text: String::new(),
        section: "",
        pulled,
    };
    let c = config;

    o.section("collector");
    o.key("id", opt_string(&c.collector.id));
    o.key("hostname", opt_string(&c.collector.hostname));
    o.key("interval", seconds(c.collector.interval));
    o.key("push_interval", seconds(c.collector.push_interval));
    o.key(
        "config_pull_interval",
        c.collector
            .config_pull_interval
            .map_or("0".to_string(), seconds),
    );
    o.key(
        "state_dir",
        string(&c.collector.state_dir.display().to_string()),
    );

    let b = &c.backend;
    o.section("backend");
    o.key("url", opt_string(&b.url.as_ref().map(ToString::to_string)));
    o.key("compression", string(b.compression.as_str()));
    o.key("compression_level", b.compression_level.to_string());
    o.key("connect_timeout_secs", seconds(b.connect_timeout));
    o.key("request_timeout_secs", seconds(b.request_timeout));
    o.key("retry_initial_secs", seconds(b.retry_initial));
    o.key("retry_max_secs", seconds(b.retry_max));
    o.key("max_batch_bytes", b.max_batch_bytes.to_string());
    o.key("buffer_bytes", b.buffer_bytes.to_string());
    o.key("spool_bytes", b.spool_bytes.to_string());
    o.key("allow_insecure_http", b.allow_insecure_http.to_string());

    let a = &c.auth;
    o.section("auth");
    o.key("mode", string(a.mode.as_str()));
    o.key("token_file", opt_path(&a.token_file));
    o.key(
        "registration_secret_file",
        opt_path(&a.registration_secret_file),
    );
    o.key("jwt_secret_file", opt_path(&a.jwt_secret_file));
    o.key("token_lifetime_secs", seconds(a.token_lifetime));

    o.section("tls");
    o.key("verify", c.tls.verify.to_string());
    o.key("ca_file", opt_path(&c.tls.ca_file));
    o.key("cert_file", opt_path(&c.tls.cert_file));
    o.key("key_file", opt_path(&c.tls.key_file));

    let p = &c.postgres;
    o.section("postgres");
    o.key("host", opt_string(&p.host));
    o.key("port", p.port.to_string());
    o.key("user", opt_string(&p.user));
    let password = if p.password.is_some() { REDACTED } else { "" };
    o.key("password", string(password));
    o.key("password_file", opt_path(&p.password_file));
    o.key("database", string(&p.database));
    let databases = match &p.databases {
        Databases::All => string("*"),
        Databases::List(list) => strings(list),
    };
    o.key("databases", databases);
    o.key("sslmode", string(p.sslmode.as_str()));
    o.key("sslrootcert", opt_path(&p.sslrootcert));
    o.key("connect_timeout_secs", seconds(p.connect_timeout));
    o.key("statement_timeout_ms", millis(p.statement_timeout));
    o.key("lock_timeout_ms", millis(p.lock_timeout));
    o.key("max_connections", p.max_connections.to_string());
    o.key("application_name", string(&p.application_name));
    match &p.requirepeer {
        Some(user) => o.key("requirepeer", string(user)),
        // Unset and "" differ: unset is "postgres when that user exists".
        None => o
            .text
            .push_str("# requirepeer unset: \"postgres\" when that user exists, else no check\n"),
    }
    let methods: Vec<&str> = p
        .require_auth
        .iter()
        .flatten()
        .map(|m| m.as_str())
        .collect();
    o.key("require_auth", string(&methods.join(",")));
    o.key("channel_binding", string(p.channel_binding.as_str()));

    o.section("logging");
    o.key("level", string(c.logging.level.as_str()));
    o.key(
        "format",
        string(c.logging.format.map_or("", LogFormat::as_str)),
    );

    for plugin in &c.plugins {
        o.section(plugin.name);
        o.key("enabled", plugin.enabled.to_string());
        o.key("interval", seconds(plugin.interval));
        if let Some(spec) = registry::find(plugin.name) {
            (spec.render)(&mut PluginRender { out: &mut o }, c);
        }
    }
    for q in &c.custom_queries {
        // unwrap: writing to a String cannot fail.
        write!(o.text, "\n[[custom_query]]\n").unwrap();
        o.section = "custom_query";
        o.key("name", string(&q.name));
        o.key("sql", string(&q.sql));
        o.key("interval", seconds(q.interval));
        let databases = match &q.databases {
            None => "[]".to_string(),
            Some(Databases::All) => string("*"),
            Some(Databases::List(list)) => strings(list),
        };
        o.key("databases", databases);
        o.key("min_version", q.min_version.to_string());
        o.key("max_version", q.max_version.to_string());
        o.key("max_rows", q.max_rows.to_string());
    }
    o.text
}
