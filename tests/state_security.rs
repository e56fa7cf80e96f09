//! Secrets at rest (SECURITY.md): through the binary, with real directories, owners and
//! modes. A state directory another user owns or that group/others may write is refused by
//! `run` and `register` (exit 2, one line saying what to run) and only warned about by `once`
//! and `check-config`; secret files readable by others are refused at start and a reload that
//! would use one is rejected; a shared secret shorter than 32 bytes is refused.
//!
//! Tests run as root: "another user" is a chown to an unused uid.
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::tmp::TempDir as Dir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");

fn cmd() -> Command {
    let mut c = Command::new(BIN);
    for v in [
        "PGANALYTICS_CONFIG",
        "PGANALYTICS_REGISTRATION_SECRET",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
    ] {
        c.env_remove(v);
    }
    c
}

/// A config collecting `sysstat` only, every 0.2 s, with `extra` appended.
fn config(dir: &Dir, state: &Path, extra: &str) -> PathBuf {
    config_with(dir, state, "", extra)
}

/// The same with `collector` lines in `[collector]`.
fn config_with(dir: &Dir, state: &Path, collector: &str, extra: &str) -> PathBuf {
    let cfg = dir.0.join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\n{collector}state_dir = \"{}\"\ninterval = 0.2\npush_interval = 0.2\n\
             [logging]\nformat = \"text\"\n\
             [disk_usage]\nenabled = false\n[pg_stats]\nenabled = false\n\
             [pg_query_stats]\nenabled = false\n[pg_log]\nenabled = false\n\
             [pg_replication]\nenabled = false\n[pg_server]\nenabled = false\n\
             [sysstat]\ninterval = 0.2\n{extra}",
            state.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    cfg
}

/// Runs `args` to the end: (exit code, stderr).
fn run(args: &[&str], cfg: &Path) -> (Option<i32>, String) {
    let out = cmd()
        .args(args)
        .arg("-c")
        .arg(cfg)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn run_and_register_refuse_a_state_directory_others_own_or_may_write() {
    let dir = Dir::new("statedir");
    let state = dir.0.join("state");
    std::fs::create_dir(&state).unwrap();
    chmod(&state, 0o700);
    let me = rustix::process::geteuid().as_raw();
    let cfg = config(&dir, &state, "");
    let s = state.display().to_string();
    let secret = dir.file("reg.secret", "registration-secret\n");
    let register = ["register", "--secret-file", secret.to_str().unwrap()];

    // Another user's directory.
    std::os::unix::fs::chown(&state, Some(4244), None).unwrap();
    let owned = format!(
        "state directory {s} belongs to uid 4244, not to the collector's uid {me}; run chown {me} {s}"
    );
    let (code, err) = run(&["run", "--stdout", "--once"], &cfg);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("run: {owned}")), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let (code, err) = run(&register, &cfg);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("register: {owned}")), "{err}");
    // once and check-config only warn.
    let (code, err) = run(&["once", "--sample-ms", "0", "--only", "sysstat"], &cfg);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&owned), "{err}");
    let (code, err) = run(&["check-config"], &cfg);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains(&format!("warning: {owned}")), "{err}");

    // Ours but writable by the group.
    std::os::unix::fs::chown(&state, Some(me), None).unwrap();
    chmod(&state, 0o770);
    let (code, err) = run(&["run", "--stdout", "--once"], &cfg);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "state directory {s} is writable by group or others (mode 770); run chmod go-w {s}"
        )),
        "{err}"
    );

    // Closed again, but a token others can read was left in it.
    chmod(&state, 0o700);
    let token = state.join("collector.token");
    std::fs::write(&token, "t\n").unwrap();
    chmod(&token, 0o644);
    let (code, err) = run(&["run", "--stdout", "--once"], &cfg);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("run chmod o-r {}", token.display())),
        "{err}"
    );

    // As the package makes it: run goes on.
    chmod(&token, 0o600);
    let (code, err) = run(&["run", "--stdout", "--once"], &cfg);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn secret_files_others_can_read_are_refused_at_start_and_on_reload() {
    let dir = Dir::new("secrets");
    let state = dir.0.join("state");
    let long = "0123456789abcdef0123456789abcdef\n";
    let jwt = dir.file("jwt.key", long);
    let shared = format!(
        "[backend]\nurl = \"http://127.0.0.1:9\"\n[auth]\nmode = \"shared_secret\"\njwt_secret_file = \"{}\"\n",
        jwt.display()
    );
    let cfg = config_with(&dir, &state, "id = \"c-1\"\n", &shared);
    chmod(&jwt, 0o644);
    let (code, err) = run(&["run"], &cfg);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "[auth] jwt_secret_file: {} holds a secret and is readable by others, so it is refused; run chmod o-r {}",
            jwt.display(),
            jwt.display()
        )),
        "{err}"
    );
    assert!(!err.contains("0123456789abcdef"), "secret logged: {err}");

    // Group-readable but short.
    std::fs::write(&jwt, "short\n").unwrap();
    chmod(&jwt, 0o640);
    let (code, err) = run(&["run"], &cfg);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("holds 5 bytes; the shared secret needs at least 32"),
        "{err}"
    );

    // A password file others can read, at start and then on reload.
    let dir = Dir::new("secrets-reload");
    let state = dir.0.join("state");
    let pw = dir.file("pw", "hunter2\n");
    let cfg = config(
        &dir,
        &state,
        &format!("[postgres]\npassword_file = \"{}\"\n", pw.display()),
    );
    chmod(&pw, 0o604);
    let (code, err) = run(&["run", "--stdout", "--once"], &cfg);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("run chmod o-r {}", pw.display())),
        "{err}"
    );
    chmod(&pw, 0o600);
    let mut child = cmd()
        .args(["run", "--stdout", "-c"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let gather = |r: Box<dyn std::io::Read + Send>| {
        let text = Arc::new(Mutex::new(String::new()));
        let t = text.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(r).lines().map_while(Result::ok) {
                let mut g = t.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
            }
        });
        text
    };
    let out = gather(Box::new(child.stdout.take().unwrap()));
    let err = gather(Box::new(child.stderr.take().unwrap()));
    let wait = Duration::from_secs(60);
    assert!(
        support::pg::eventually(wait, || out.lock().unwrap().contains("sysstat")),
        "run pushed nothing: {}",
        err.lock().unwrap()
    );
    chmod(&pw, 0o644);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    assert!(
        support::pg::eventually(wait, || err.lock().unwrap().contains("reload rejected")),
        "{}",
        err.lock().unwrap()
    );
    let e = err.lock().unwrap().clone();
    assert!(
        e.contains(&format!("run chmod o-r {}", pw.display())),
        "{e}"
    );
    // Still running on the kept configuration: more rounds come.
    let before = out.lock().unwrap().lines().count();
    assert!(support::pg::eventually(wait, || out
        .lock()
        .unwrap()
        .lines()
        .count()
        > before));
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{e}");
}
