//! Config pull, the pure part (docs/protocol.md, config pull): the document the backend serves for this collector, reduced
//! to the collection settings it may set, laid over the config file and validated whole.
//!
//! Pure here: [`parse_document`] (TOML, or JSON when the first non-blank character is `{`),
//! [`allowed`] (which keys survive), [`overlay`] (the file's text with the pulled keys set),
//! [`remote_file`] / [`read_remote_file`] (the persisted `remote-config.toml` with its version).
//! Not here: the HTTP call (the backend client's `pull_config`), the schedule and the
//! persisting (the run loop's pull step).

use crate::agent_log;
use crate::collect::registry;
use crate::config::{self, Config, Env};
use std::path::Path;

/// `[collector]` keys a backend may set.
const COLLECTOR_KEYS: [&str; 3] = ["interval", "push_interval", "config_pull_interval"];
/// Whether a pulled document may set `[section] key` (security rule S5, "bounded influence
/// of the backend"): intervals, the `enabled` switches and limits the plugin registry marks.
/// What is read (databases, file systems, partitions, every pg_log key but its interval) and
/// custom queries stay local.
pub fn allowed(section: &str, key: &str) -> bool {
    match section {
        "collector" => COLLECTOR_KEYS.contains(&key),
        s => registry::find(s).is_some_and(|p| match key {
            "interval" => true,
            "enabled" => p.pull_enabled,
            k => p
                .keys
                .iter()
                .any(|x| x.name == k && x.pull_default.is_some()),
        }),
    }
}

/// The bounds a pulled number must keep: (at least, at most, and whether 0 is ignored).
fn bounds(section: &str, key: &str) -> (Option<f64>, Option<f64>, bool) {
    match (section, key) {
        ("collector", "interval") => (Some(10.0), None, false),
        ("collector", "push_interval") => (Some(10.0), Some(300.0), false),
        ("collector", "config_pull_interval") => (Some(10.0), Some(3600.0), true),
        (s, k) => match registry::find(s) {
            Some(p) if k == "interval" => (Some(p.pull_min_interval_secs), None, false),
            Some(p) => {
                let default = p
                    .keys
                    .iter()
                    .find(|x| x.name == k)
                    .and_then(|x| x.pull_default);
                (None, default.map(|d| d * 10.0), false)
            }
            None => (None, None, false),
        },
    }
}

/// `value` kept within the bounds of `[section] key`: `Ok(None)` when it is within them (or
/// not a number: the loader judges its type), `Ok(Some(new text))` when clamped, `Err` when
/// the value is ignored (a pulled `config_pull_interval` of 0: a backend cannot switch off its
/// own recovery path).
fn clamp(section: &str, key: &str, value: &toml_edit::Value) -> Result<Option<String>, String> {
    let n = match value {
        toml_edit::Value::Integer(i) => *i.value() as f64,
        toml_edit::Value::Float(f) => *f.value(),
        _ => return Ok(None),
    };
    let (min, max, zero_ignored) = bounds(section, key);
    if zero_ignored && n == 0.0 {
        return Err(format!(
            "{section}.{key} = 0 would stop config pulls for good; ignored"
        ));
    }
    let clamped = match (min, max) {
        (Some(lo), _) if n < lo => lo,
        (_, Some(hi)) if n > hi => hi,
        _ => return Ok(None),
    };
    Ok(Some(if clamped.fract() == 0.0 {
        format!("{}", clamped as i64)
    } else {
        format!("{clamped}")
    }))
}

/// A pulled document reduced to the keys it may set.
#[derive(Debug, Clone, PartialEq)]
pub struct Pulled {
    /// (section, key, TOML value text), in document order.
    pub keys: Vec<(String, String, String)>,
    /// `section.key` of everything ignored.
    pub ignored: Vec<String>,
    /// One line for each value brought within its bounds, or ignored for its value.
    pub clamped: Vec<String>,
}

impl Pulled {
    /// (section, key) pairs, as `config::render` marks them.
    pub fn marks(&self) -> Vec<(&str, &str)> {
        self.keys
            .iter()
            .map(|(s, k, _)| (s.as_str(), k.as_str()))
            .collect()
    }

    /// The allowed keys as a TOML document.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let mut section = "";
        for (s, k, v) in &self.keys {
            if s != section {
                out.push_str(&format!("[{s}]\n"));
                section = s;
            }
            out.push_str(&format!("{k} = {v}\n"));
        }
        out
    }
}

/// Parses a pulled body: TOML, or JSON when its first non-blank character is `{`.
pub fn parse_document(body: &[u8]) -> Result<Pulled, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the document is not UTF-8".to_string())?;
    let doc: toml_edit::DocumentMut = if text.trim_start().starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        toml_edit::ser::to_document(&v).map_err(|e| format!("JSON not expressible as TOML: {e}"))?
    } else {
        text.parse()
            .map_err(|e: toml_edit::TomlError| format!("invalid TOML: {}", e.message().trim()))?
    };
    let mut pulled = Pulled {
        keys: Vec::new(),
        ignored: Vec::new(),
        clamped: Vec::new(),
    };
    for (section, item) in doc.as_table().iter() {
        let Some(table) = item.as_table_like() else {
            pulled.ignored.push(section.to_string());
            continue;
        };
        for (key, value) in table.iter() {
            match value.as_value() {
                Some(v) if allowed(section, key) => {
                    let mut v = v.clone();
                    v.decor_mut().clear();
                    let text = match clamp(section, key, &v) {
                        Ok(None) => v.to_string(),
                        Ok(Some(within)) => {
                            pulled.clamped.push(format!(
                                "{section}.{key} = {v} is outside what a backend may set; {within} used"
                            ));
                            within
                        }
                        Err(why) => {
                            pulled.clamped.push(why);
                            continue;
                        }
                    };
                    pulled
                        .keys
                        .push((section.to_string(), key.to_string(), text));
                }
                _ => pulled.ignored.push(format!("{section}.{key}")),
            }
        }
    }
    Ok(pulled)
}

/// The config file's text with the pulled keys set (tables created when absent).
pub fn overlay(file_text: &str, pulled: &Pulled) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = file_text
        .parse()
        .map_err(|e: toml_edit::TomlError| format!("invalid TOML: {}", e.message().trim()))?;
    let values: toml_edit::DocumentMut =
        pulled
            .to_toml()
            .parse()
            .map_err(|e: toml_edit::TomlError| {
                format!("invalid pulled TOML: {}", e.message().trim())
            })?;
    for (section, key, _) in &pulled.keys {
        let Some(v) = values
            .get(section)
            .and_then(|t| t.get(key))
            .and_then(|i| i.as_value())
        else {
            continue;
        };
        let table = doc
            .entry(section)
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        let Some(table) = table.as_table_like_mut() else {
            return Err(format!("[{section}] is not a table in the config file"));
        };
        table.insert(key, toml_edit::Item::Value(v.clone()));
    }
    Ok(doc.to_string())
}

/// The persisted form: the version in a leading comment, then the allowed keys.
pub fn remote_file(version: Option<i64>, pulled: &Pulled) -> String {
    let v = version.map_or_else(|| "none".to_string(), |v| v.to_string());
    format!(
        "# pulled from the backend; config version: {v}\n{}",
        pulled.to_toml()
    )
}

/// Reads a persisted document back: (version, keys).
pub fn read_remote_file(text: &str) -> Result<(Option<i64>, Pulled), String> {
    let version = text
        .lines()
        .next()
        .and_then(|l| l.rsplit_once("config version:"))
        .and_then(|(_, v)| v.trim().parse().ok());
    Ok((version, parse_document(text.as_bytes())?))
}

/// The file at `path` with `pulled` laid over it, validated whole (the file itself was
/// validated by `config::load`). Every problem in one line each.
pub fn apply(path: &Path, pulled: &Pulled, env: Env) -> Result<Config, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let merged = overlay(&text, pulled)?;
    let file = format!("{} + pulled config", path.display());
    config::parse_str(&file, &merged, env)
        .map(|l| l.config)
        .map_err(|diags| {
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
}

/// The persisted pulled document of `base`'s state directory laid over the file at `path`:
/// (config, version, document), or `None` when there is none or it no longer validates
/// (logged).
pub fn remote_overlay(
    path: &Path,
    base: &Config,
    env: Env,
) -> Option<(Config, Option<i64>, Pulled)> {
    let remote = base.collector.state_dir.join(crate::state::REMOTE_CONFIG);
    let text = std::fs::read_to_string(&remote).ok()?;
    let result = read_remote_file(&text).and_then(|(v, p)| {
        let mut c = apply(path, &p, env)?;
        c.collector.state_dir = base.collector.state_dir.clone();
        Ok((c, v, p))
    });
    match result {
        Ok(r) => Some(r),
        Err(e) => {
            agent_log::warn(
                "config",
                &format!("the last pulled config is not applied: {e}"),
                &[("file", &remote.display().to_string())],
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_keys_survive_toml_and_json_alike() {
        let toml = b"[collector]\ninterval = 30\nstate_dir = \"/tmp/x\"\n[backend]\nurl = \"https://evil\"\n[pg_stats]\nmax_tables = 10\nenabled = false\n[postgres]\ndatabases = [\"a\", \"b\"]\npassword = \"p\"\n";
        let p = parse_document(toml).unwrap();
        assert_eq!(
            p.marks(),
            vec![
                ("collector", "interval"),
                ("pg_stats", "max_tables"),
                ("pg_stats", "enabled"),
            ]
        );
        assert_eq!(
            p.ignored,
            vec![
                "collector.state_dir",
                "backend.url",
                "postgres.databases",
                "postgres.password"
            ]
        );
        let json = br#"  {"collector": {"interval": 30, "state_dir": "/x"}, "pg_stats": {"max_tables": 10, "enabled": false}, "postgres": {"databases": ["a","b"]}}"#;
        let j = parse_document(json).unwrap();
        assert_eq!(j.marks().len(), 3);
        assert!(parse_document(b"{not json").is_err());
    }

    /// Security rule S5: a pulled document that tries every local-only key and out-of-range
    /// values gets each ignored or brought within bounds, with a line saying so.
    #[test]
    fn local_keys_are_ignored_and_values_clamped() {
        let doc = br#"
[collector]
interval = 0.01
push_interval = 86400
config_pull_interval = 0
hostname = "evil"
[postgres]
databases = "*"
host = "evil.example"
[sysstat]
include_partitions = true
[disk_usage]
include_fstypes = ["nfs"]
[pg_log]
enabled = true
min_level = "DEBUG5"
path = "/etc/shadow"
interval = 1
[pg_bloat]
enabled = true
interval = 0.01
max_tables = 1000000
[pg_schema]
enabled = true
[pg_extensions]
enabled = true
[pg_query_stats]
limit = 5000
max_query_length = 100
[pg_connections]
long_transaction_secs = 1e9
[tls]
verify = false
[custom_query]
sql = "select 1"
"#;
        let p = parse_document(doc).unwrap();
        let keys: Vec<(&str, &str, &str)> = p
            .keys
            .iter()
            .map(|(s, k, v)| (s.as_str(), k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("collector", "interval", "10"),
                ("collector", "push_interval", "300"),
                ("pg_log", "interval", "10"),
                ("pg_bloat", "interval", "60"),
                ("pg_bloat", "max_tables", "5000"),
                ("pg_query_stats", "limit", "1000"),
                ("pg_query_stats", "max_query_length", "100"),
                ("pg_connections", "long_transaction_secs", "3000"),
            ]
        );
        for local in [
            "collector.hostname",
            "postgres.databases",
            "postgres.host",
            "sysstat.include_partitions",
            "disk_usage.include_fstypes",
            "pg_log.enabled",
            "pg_log.min_level",
            "pg_log.path",
            "pg_bloat.enabled",
            "pg_schema.enabled",
            "pg_extensions.enabled",
            "tls.verify",
            "custom_query.sql",
        ] {
            assert!(
                p.ignored.iter().any(|i| i == local),
                "{local}: {:?}",
                p.ignored
            );
        }
        assert_eq!(p.clamped.len(), 8, "{:?}", p.clamped);
        assert!(
            p.clamped
                .iter()
                .any(|c| c.contains("config_pull_interval = 0"))
        );
        // What survives validates over a file.
        let text = overlay("[collector]\ninterval = 60\n", &p).unwrap();
        crate::config::parse_str("merged", &text, &|_| None).unwrap();
    }

    #[test]
    fn overlay_sets_keys_and_validates_whole_through_the_loader() {
        let file = "# mine\n[collector]\ninterval = 60 # keep\n[pg_stats]\nmax_tables = 500\n";
        let p =
            parse_document(b"[collector]\ninterval = 15\n[pg_stats]\nmax_indexes = 5\n").unwrap();
        let text = overlay(file, &p).unwrap();
        let loaded = crate::config::parse_str("merged", &text, &|_| None).unwrap();
        assert_eq!(loaded.config.collector.interval.as_secs(), 15);
        assert_eq!(loaded.config.pg_stats.max_indexes, 5);
        assert_eq!(loaded.config.pg_stats.max_tables, 500);
        // An invalid value is caught by the loader: the document is rejected whole.
        let bad = parse_document(b"[pg_stats]\nmax_tables = -1\n").unwrap();
        assert!(
            crate::config::parse_str("merged", &overlay(file, &bad).unwrap(), &|_| None).is_err()
        );
    }

    #[test]
    fn custom_queries_are_never_pulled() {
        let file = "[[custom_query]]\nname = \"mine\"\nsql = \"select 1\"\n";
        for doc in [
            &b"[pg_custom]\nenabled = false\n[[custom_query]]\nname = \"theirs\"\nsql = \"select pg_read_file('/etc/shadow')\"\n"[..],
            br#"{"pg_custom": {"enabled": false}, "custom_query": [{"name": "theirs", "sql": "select 2"}]}"#,
            b"[pg_custom]\nenabled = false\n[custom_query]\nname = \"theirs\"\nsql = \"select 2\"\n",
        ] {
            let p = parse_document(doc).unwrap();
            assert!(p.keys.is_empty(), "{:?}", p.keys);
            assert!(
                p.ignored.iter().any(|i| i.starts_with("custom_query")),
                "{:?}",
                p.ignored
            );
            assert!(p.ignored.iter().any(|i| i == "pg_custom.enabled"), "{:?}", p.ignored);
            let text = overlay(file, &p).unwrap();
            let c = crate::config::parse_str("merged", &text, &|_| None).unwrap().config;
            let names: Vec<&str> = c.custom_queries.iter().map(|q| q.name.as_str()).collect();
            assert_eq!(names, ["mine"]);
            assert!(c.plugin("pg_custom").unwrap().enabled);
        }
    }

    #[test]
    fn persisted_form_round_trips_with_its_version() {
        let p = parse_document(b"[pg_stats]\nenabled = false\n").unwrap();
        let text = remote_file(Some(7), &p);
        assert!(text.starts_with("# pulled from the backend; config version: 7\n"));
        let (v, back) = read_remote_file(&text).unwrap();
        assert_eq!((v, back), (Some(7), p));
    }
}
