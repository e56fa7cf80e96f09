//! Registration (docs/protocol.md, registration), the pure part and the files: the request body,
//! the reply, and the id, token, certificate and key persisted in the state directory. The
//! request itself is the backend client's (`client::Backend::register`), used by the
//! `register` command and by `run` when its token can no longer be refreshed.

use crate::state::{self, StateDir};

/// What the backend answered.
pub struct Registration {
    pub collector_id: String,
    pub token: String,
    pub certificate: Option<String>,
    pub private_key: Option<String>,
}

/// The request body.
pub fn body(name: &str, hostname: &str) -> String {
    serde_json::json!({
        "name": name,
        "hostname": hostname,
        "version": env!("CARGO_PKG_VERSION"),
    })
    .to_string()
}

/// Reads a 2xx reply; `None` when the id or token is missing.
pub fn parse_reply(body: &[u8]) -> Option<Registration> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .filter(|x| !x.is_empty())
    };
    Some(Registration {
        collector_id: s("collector_id")?,
        token: s("token")?,
        certificate: s("certificate"),
        private_key: s("private_key"),
    })
}

/// Writes collector.id, collector.token, collector.crt and collector.key (each atomic, 0600).
/// Without `force`, an existing collector.id is left alone and an error returned.
pub fn persist(state: &StateDir, reg: &Registration, force: bool) -> Result<(), String> {
    let id_path = state.file(state::COLLECTOR_ID);
    if !force && id_path.exists() {
        return Err(format!(
            "{} exists: this host is already registered; pass --force to register a new collector",
            id_path.display()
        ));
    }
    let write = |name: &str, text: &str| {
        let mut bytes = text.as_bytes().to_vec();
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        state
            .write(name, &bytes)
            .map_err(|e| format!("cannot write {}: {e}", state.file(name).display()))
    };
    if let (Some(c), Some(k)) = (&reg.certificate, &reg.private_key) {
        write(state::CERT, c)?;
        write(state::KEY, k)?;
    }
    write(state::TOKEN, &reg.token)?;
    write(state::COLLECTOR_ID, &reg.collector_id)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reply_and_files() {
        let reply = br#"{"collector_id":"3f0c","token":"a.b.c","certificate":"-----BEGIN CERTIFICATE-----\nx","private_key":"k","expires_at":"2026-03-01T12:30:00Z"}"#;
        let reg = parse_reply(reply).unwrap();
        assert_eq!(reg.collector_id, "3f0c");
        assert!(parse_reply(br#"{"collector_id":"x"}"#).is_none());
        let dir = std::env::temp_dir().join(format!("pgac-reg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = StateDir::new(&dir);
        persist(&state, &reg, false).unwrap();
        for f in [
            "collector.id",
            "collector.token",
            "collector.crt",
            "collector.key",
        ] {
            let m = std::fs::metadata(dir.join(f)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
        }
        assert_eq!(
            std::fs::read_to_string(dir.join("collector.id")).unwrap(),
            "3f0c\n"
        );
        assert!(
            persist(&state, &reg, false)
                .unwrap_err()
                .contains("--force")
        );
        persist(&state, &reg, true).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn body_fields() {
        let v: serde_json::Value = serde_json::from_str(&body("n", "h")).unwrap();
        assert_eq!(v["name"], "n");
        assert_eq!(v["hostname"], "h");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    }
}
