//! `[postgres] sslrootcert = "system"` (security rule S9): the system's CA bundle, found at its
//! usual path, verifies the server (verify-full by default). Against a real PostgreSQL over
//! TLS: with the test CA bind-mounted over `/etc/ssl/certs/ca-certificates.crt` in a private
//! mount namespace (`unshare -m`, as root) `once` reads the server; with the host's real bundle
//! (public CAs only) the same configuration is refused as an unknown issuer.
mod support;

use std::process::{Command, Output};
use support::pg::{Cluster, Options, SUPERPASS, SUPERUSER};
use support::tmp::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");
const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn once(cfg: &std::path::Path, bundle: Option<&std::path::Path>) -> Output {
    let mut c = match bundle {
        Some(b) => {
            let mut c = Command::new("unshare");
            c.args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(r#"mount --bind "$1" "$2" && shift 2 && exec "$@""#)
                .arg("sh")
                .arg(b)
                .arg(BUNDLE)
                .arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    c.args(["once", "--only", "pg_server", "-c"])
        .arg(cfg)
        .env_remove("PGANALYTICS_CONFIG")
        .env_remove("PGHOST")
        .env_remove("PGSSLMODE")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

#[test]
fn sslrootcert_system_verifies_the_server_with_the_system_bundle() {
    if !std::path::Path::new(BUNDLE).exists() {
        // The bind mount needs the file to exist; every supported CI image has it.
        panic!("{BUNDLE} is missing on this machine");
    }
    let c = Cluster::start(Options {
        hba: Some("hostssl all all 127.0.0.1/32 scram-sha-256\n".to_string()),
        tls: true,
        ..Options::default()
    });
    let dir = TempDir::new("sysroots");
    let cfg = dir.file(
        "collector.toml",
        &format!(
            "[postgres]\nhost = \"localhost\"\nport = {}\nuser = \"{SUPERUSER}\"\n\
             password = \"{SUPERPASS}\"\nsslrootcert = \"system\"\nconnect_timeout_secs = 5\n",
            c.port
        ),
    );
    let trusted = once(&cfg, c.ca_file.as_deref());
    let stdout = String::from_utf8_lossy(&trusted.stdout);
    let stderr = String::from_utf8_lossy(&trusted.stderr);
    assert!(
        stdout.contains("\"pg_server\""),
        "the test CA as the system bundle: {stdout}\n{stderr}"
    );
    let refused = once(&cfg, None);
    let stdout = String::from_utf8_lossy(&refused.stdout);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!stdout.contains("\"pg_server\""), "{stdout}");
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
}
