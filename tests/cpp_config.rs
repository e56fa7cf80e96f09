//! Configuration files of the C++ collector (fixtures/cpp-config/, README.md there): the
//! TOML ones pass `check-config`, warned only about the keys this collector ignores, and a
//! file in the C++ parser's own syntax is refused line by line with each line's TOML form
//! (docs/MIGRATION.md, "Configuration files").

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::tmp::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");

/// `check-config` on a private copy of the fixture (0600: a `password` in a file readable
/// by others is a warning of its own), with no PG* variable from the developer's shell.
fn check_config(dir: &TempDir, fixture: &str) -> Output {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/cpp-config")
        .join(fixture);
    let path = dir.file(fixture, &std::fs::read_to_string(src).unwrap());
    let mut cmd = Command::new(BIN);
    for var in [
        "PGANALYTICS_CONFIG",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGSSLMODE",
    ] {
        cmd.env_remove(var);
    }
    cmd.arg("check-config")
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap()
}

/// Loads the fixture; returns the warnings (the text after `FILE:LINE:COL: `) and the
/// effective configuration printed.
fn loads(fixture: &str) -> (Vec<String>, String) {
    let dir = TempDir::new("cppcfg");
    let out = check_config(&dir, fixture);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{fixture}: {stderr}");
    let warnings: Vec<String> = stderr
        .lines()
        .map(|l| {
            let rest = l
                .strip_prefix("warning: ")
                .unwrap_or_else(|| panic!("{fixture}: not a warning: {l}"));
            // FILE:LINE:COL: message
            rest.splitn(4, ':').nth(3).unwrap().trim().to_string()
        })
        .collect();
    for w in &warnings {
        assert!(
            w.contains(", ignored"),
            "{fixture}: a warning about something else: {w}"
        );
    }
    (warnings, stdout)
}

fn names(warnings: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = warnings
        .iter()
        .map(|w| w.split([',', ';']).next().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn the_sample_file_loads_with_its_ignored_sections_named() {
    let (w, config) = loads("sample.toml");
    assert_eq!(
        names(&w),
        [
            "[tls] cert_file: /etc/pganalytics/collector.crt (the C++ collector's default) does not exist",
            "[tls] key_file: /etc/pganalytics/collector.key (the C++ collector's default) does not exist",
            "unknown section [collector_threading]",
            "unknown section [postgresql]",
            "unknown section [registration]",
        ]
    );
    assert!(config.contains("databases = [\"postgres\"]"), "{config}");
    // The missing C++ identity files are taken as unset: the state directory's are used.
    assert!(config.contains("cert_file = \"\"\n"), "{config}");
    // The sample turns six plugins off; a table with `enabled = false` stays off.
    let pg_schema = config.split("[pg_schema]").nth(1).unwrap();
    assert!(pg_schema.contains("enabled = false"), "{config}");
}

#[test]
fn the_container_entrypoint_file_loads_with_databases_as_a_comma_string() {
    let (w, config) = loads("entrypoint.toml");
    assert_eq!(names(&w), ["unknown section [registration]"]);
    assert!(
        config.contains("databases = [\"postgres\", \"app\"]"),
        "{config}"
    );
    // Tables without `enabled` are on, as in the C++ collector.
    let pg_log = config.split("[pg_log]").nth(1).unwrap();
    assert!(pg_log.contains("enabled = true"), "{config}");
    // The secrets never reach the output.
    assert!(!config.contains("s3cret") && !config.contains("registration-secret"));
}

#[test]
fn the_larger_example_loads_with_each_ignored_key_named() {
    let (w, config) = loads("larger-example.toml");
    assert_eq!(
        names(&w),
        [
            "unknown key `file` in [logging]",
            "unknown key `max_retries` in [backend]",
            "unknown key `retry_delay` in [backend]",
            "unknown key `timeout` in [backend]",
            "unknown key `token` in [backend]",
            "unknown section [alerts]",
            "unknown section [custom_queries]",
            "unknown section [filters]",
            "unknown section [health_check]",
            "unknown section [performance]",
            "unknown section [proxy]",
        ]
    );
    assert!(
        config.contains("databases = [\"postgres\", \"app\"]"),
        "{config}"
    );
    // A comment after a value is a comment, not part of the value.
    assert!(
        config.contains("hostname = \"db1.example.com\""),
        "{config}"
    );
    assert!(config.contains("port = 5432"), "{config}");
}

#[test]
fn a_file_in_the_cpp_syntax_is_refused_with_each_line_in_toml() {
    let dir = TempDir::new("cppsyn");
    let out = check_config(&dir, "cpp-syntax.conf");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<(&str, &str)> = stderr
        .lines()
        .map(|l| {
            let mut parts = l.splitn(4, ':');
            let line = parts.nth(1).unwrap();
            (line, parts.nth(1).unwrap().trim())
        })
        .collect();
    let expect = [
        ("1", "`# pgAnalytics collector configuration"),
        ("3", "`id = \"collector-001\"`"),
        ("4", "`hostname = \"db1\"  # a comment after a value`"),
        ("8", "`url = \"https://pganalytics.example.com\"`"),
        ("11", "`host = \"localhost\"`"),
        ("12", "`databases = \"postgres, app\"`"),
        ("15", "`enabled = true`"),
    ];
    assert_eq!(lines.len(), expect.len(), "{stderr}");
    for ((line, message), (want_line, want)) in lines.iter().zip(expect) {
        assert_eq!(*line, want_line, "{stderr}");
        assert!(
            message.starts_with("the file is in the C++ collector's syntax, not TOML"),
            "{message}"
        );
        assert!(
            message.contains(&format!("in TOML write {want}")),
            "{message}"
        );
    }
}

#[test]
fn a_boolean_written_as_a_cpp_word_string_says_how_to_write_it() {
    let dir = TempDir::new("cppbool");
    let path = dir.file("c.toml", "[tls]\nverify = \"yes\"\n");
    let out = Command::new(BIN)
        .arg("check-config")
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.trim_end().ends_with(
            ":2:10: [tls] verify: expected true or false, found the string \"yes\" (the C++ \
             collector's syntax); in TOML write `verify = true`"
        ),
        "{stderr}"
    );
}
