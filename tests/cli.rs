//! The binary as users run it: commands, exit codes, `run --stdout`, and signals sent to a
//! child process (signals are blocked process-wide, so they are never tested in-process).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");

fn cmd() -> Command {
    let mut c = Command::new(BIN);
    // Tests never depend on the developer's environment or an installed config.
    c.env_remove("PGANALYTICS_CONFIG")
        .env_remove("PGHOST")
        .env_remove("PGPORT");
    c
}

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "pgac-cli-{tag}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fast_config(dir: &TempDir, push_interval: &str) -> PathBuf {
    dir.file(
        "collector.toml",
        &format!(
            "[collector]\ninterval = 0.05\npush_interval = {push_interval}\nstate_dir = \"{}\"\n\
             [logging]\nformat = \"json\"\n",
            dir.0.display()
        ),
    )
}

/// `run --stdout -c config` with stdout and stderr piped.
fn run_stdout(config: &Path) -> Child {
    cmd()
        .args(["run", "--stdout", "-c"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A running `run --stdout` child whose stdout lines and stderr arrive through channels.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        let mut child = run_stdout(config);
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let (etx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if etx.send(l).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            lines,
            stderr,
        }
    }

    fn line(&self) -> serde_json::Value {
        let l = self
            .lines
            .recv_timeout(Duration::from_secs(10))
            .expect("an envelope line within 10 s");
        serde_json::from_str(&l).expect("each line is one JSON envelope")
    }

    fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, sig).unwrap();
    }

    /// Waits for a stderr line containing `needle`; returns it.
    fn stderr_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no stderr line with {needle:?}");
    }

    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The types of an envelope's elements without the pg_* ones: those appear only when a local
/// PostgreSQL server happens to answer, so tests of the host plugins ignore them.
fn host_types(envelope: &serde_json::Value) -> Vec<String> {
    types(envelope)
        .into_iter()
        .filter(|t| !t.starts_with("pg_"))
        .collect()
}

fn types(envelope: &serde_json::Value) -> Vec<String> {
    envelope["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn once_prints_one_real_envelope() {
    let out = cmd().args(["once", "--sample-ms", "50"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one line without --pretty");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["collector_id"], "unregistered");
    assert_eq!(v["batch_id"].as_str().unwrap().len(), 32);
    assert_eq!(v["metrics_count"], types(&v).len());
    assert_eq!(
        host_types(&v),
        ["sysstat", "disk_usage", "collector_health"]
    );
    for m in v["metrics"].as_array().unwrap() {
        assert!(m["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    // A real interval: the CPU shares are numbers that add up to 100.
    let cpu = &v["metrics"][0]["cpu"];
    let sum: f64 = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ]
    .iter()
    .map(|k| cpu[k].as_f64().expect("a share"))
    .sum();
    assert!((sum - 100.0).abs() < 0.1, "{sum}");
}

#[test]
fn once_only_and_pretty() {
    let out = cmd()
        .args([
            "once",
            "--pretty",
            "--only",
            "disk_usage",
            "--sample-ms",
            "0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() > 5, "indented");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        types(&v),
        ["disk_usage"],
        "collector_health only when named"
    );

    let out = cmd()
        .args([
            "once",
            "--only",
            "collector_health,sysstat",
            "--sample-ms",
            "0",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(types(&v), ["sysstat", "collector_health"]);

    let out = cmd().args(["once", "--only", "nonsense"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("nonsense") && err.contains("known types"),
        "{err}"
    );
}

#[test]
fn usage_and_config_errors_exit_2_with_every_problem_located() {
    assert_eq!(cmd().output().unwrap().status.code(), Some(2));
    assert_eq!(cmd().arg("bogus").output().unwrap().status.code(), Some(2));
    let help = cmd().arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("check-config"));
    let version = cmd().arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        pganalytics_collector::VERSION_LINE
    );

    let dir = TempDir::new("bad");
    let bad = dir.file(
        "bad.toml",
        "[collector]\ninterval = 0\n\n[backend]\ncompression_level = 11\n",
    );
    for args in [
        vec!["check-config", "-c"],
        vec!["once", "-c"],
        vec!["run", "--stdout", "-c"],
    ] {
        let out = cmd().args(&args).arg(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        let name = bad.display().to_string();
        assert!(err.contains(&format!("{name}:2:")), "{args:?}: {err}");
        assert!(
            err.contains(&format!("{name}:5:")),
            "{args:?}: both errors at once: {err}"
        );
    }
    let out = cmd()
        .args(["once", "-c", "/nonexistent/collector.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/collector.toml"));
}

#[test]
fn check_config_prints_the_effective_config_without_secrets() {
    let dir = TempDir::new("check");
    let cfg = dir.file(
        "c.toml",
        "[postgres]\npassword = \"hunter2-secret\"\n[sysstat]\nintervall = 5\n",
    );
    let out = cmd()
        .args(["check-config", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));
    assert!(stdout.contains("<redacted>"));
    assert!(stdout.contains("[pg_schema]"), "every section: {stdout}");
    assert!(stderr.contains("did you mean `interval`"), "{stderr}");
}

#[test]
fn run_without_stdout_or_backend_is_a_usage_error() {
    let out = cmd().args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--stdout"));
}

#[test]
fn run_stdout_prints_one_envelope_per_push_interval() {
    let dir = TempDir::new("run");
    let cfg = fast_config(&dir, "0.2");
    let mut d = Daemon::start(&cfg);
    let first = d.line();
    let t0 = Instant::now();
    let mut last = first;
    for _ in 0..3 {
        last = d.line();
    }
    let per = t0.elapsed() / 3;
    assert!(per >= Duration::from_millis(150), "{per:?} per envelope");
    let t = types(&last);
    // interval 0.05 and push 0.2: about four of each collection per envelope.
    assert!(t.iter().filter(|t| *t == "sysstat").count() >= 3, "{t:?}");
    assert_eq!(t.last().unwrap(), "collector_health");
    assert_eq!(last["metrics_count"], t.len());
    d.signal(rustix::process::Signal::TERM);
    assert!(d.wait_exit(Duration::from_secs(3)).success());
}

#[test]
fn sighup_applies_a_valid_file_and_keeps_running_on_an_invalid_one() {
    let dir = TempDir::new("hup");
    let cfg = fast_config(&dir, "0.1");
    let d = Daemon::start(&cfg);
    d.line();

    std::fs::write(&cfg, "[collector]\ninterval = \"soon\"\n").unwrap();
    d.signal(rustix::process::Signal::HUP);
    let located = d.stderr_with(&format!("{}:2:", cfg.display()));
    assert!(located.contains("\"level\":\"error\""), "{located}");
    d.stderr_with("reload rejected");
    // Still running on the old config.
    while d.lines.try_recv().is_ok() {}
    d.line();

    std::fs::write(
        &cfg,
        format!(
            "[collector]\ninterval = 0.05\npush_interval = 0.1\nstate_dir = \"{}\"\n\
             [logging]\nformat = \"json\"\n[disk_usage]\nenabled = false\n",
            dir.0.display()
        ),
    )
    .unwrap();
    d.signal(rustix::process::Signal::HUP);
    d.stderr_with("reloaded");
    while d.lines.try_recv().is_ok() {}
    d.line(); // may still hold elements collected before the reload
    let after = d.line();
    assert!(
        !types(&after).contains(&"disk_usage".to_string()),
        "{:?}",
        types(&after)
    );
}

#[test]
fn sigusr1_logs_a_health_line_and_sigterm_exits_0_promptly_with_a_last_push() {
    let dir = TempDir::new("term");
    // A long push interval: the last push on SIGTERM is the only way the data comes out.
    let cfg = fast_config(&dir, "3600");
    let mut d = Daemon::start(&cfg);
    let first = d.line(); // the first round runs right after start
    assert_eq!(types(&first)[0], "sysstat");
    // Health lines on SIGUSR1 until two more sysstat elements are waiting.
    let size = first["metrics"][0].to_string().len() as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        d.signal(rustix::process::Signal::USR1);
        let line = d.stderr_with("\"msg\":\"health\"");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let health: serde_json::Value =
            serde_json::from_str(v["health"].as_str().unwrap()).unwrap();
        assert_eq!(health["type"], "collector_health", "{line}");
        if health["buffer_bytes"].as_u64().unwrap() >= 2 * size {
            break;
        }
        assert!(Instant::now() < deadline, "nothing collected: {line}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = Instant::now();
    d.signal(rustix::process::Signal::TERM);
    let last = d.line();
    assert!(types(&last).iter().filter(|t| *t == "sysstat").count() >= 2);
    assert!(d.wait_exit(Duration::from_secs(10)).success());
    // config.md: the last push is bounded by 5 s, then exit 0.
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn a_closed_stdout_ends_run_quietly_with_exit_0() {
    let dir = TempDir::new("pipe");
    let cfg = fast_config(&dir, "0.05");
    let mut child = run_stdout(&cfg);
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "still running after stdout closed"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("\"level\":\"error\""), "{err}");
}

#[test]
fn run_once_delivers_one_round_and_exits_0() {
    let dir = TempDir::new("runonce");
    let cfg = fast_config(&dir, "60");
    let out = cmd()
        .args(["run", "--stdout", "--once", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        host_types(&v),
        ["sysstat", "disk_usage", "collector_health"]
    );
}

#[test]
fn once_with_an_unreachable_server_warns_in_one_line_and_prints_the_rest() {
    // A port nobody listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = cmd()
        .args(["once", "--sample-ms", "10"])
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .env("PGUSER", "nobody")
        .output()
        .unwrap();
    assert!(out.status.success(), "host metrics were produced");
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("pg_stats") && lines[0].contains("pg_query_stats"));
    assert!(lines[0].contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(lines[0].contains("user nobody"), "{err}");
    assert!(lines[0].contains("PGHOST"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = types(&v);
    assert!(t.contains(&"sysstat".to_string()) && t.contains(&"collector_health".to_string()));
    let health = v["metrics"].as_array().unwrap().last().unwrap();
    assert!(health["errors"]["pg_stats/postgres"].is_string());
}

#[test]
fn sigterm_ends_a_hung_postgres_wait_at_once() {
    // Accepts TCP connections (the kernel completes them) but never answers a byte.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = TempDir::new("hung");
    let cfg = dir.file(
        "collector.toml",
        &format!(
            "[collector]\ninterval = 60\npush_interval = 60\nstate_dir = \"{}\"\n\
             [logging]\nformat = \"json\"\n\
             [postgres]\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"u\"\nconnect_timeout_secs = 30\n\
             [sysstat]\nenabled = false\n[disk_usage]\nenabled = false\n\
             [pg_query_stats]\nenabled = false\n",
            dir.0.display()
        ),
    );
    let mut d = Daemon::start(&cfg);
    // The first pg_stats collection starts 250 ms after start: wait until it has connected
    // (the kernel completed the handshake and we accept it), so it waits on the socket.
    silent.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let _conn = loop {
        match silent.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the collector never connected");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "still waiting on the server"
    );
    let t = Instant::now();
    d.signal(rustix::process::Signal::TERM);
    let status = d.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    // The connect timeout is 30 s: ending well before it means the wait was interrupted; the
    // stop itself is bounded only by the 5 s of the last push (config.md).
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(silent);
}

/// Security rule S6: a size no host can give is a configuration error at its key, in
/// `check-config` and in every command that reads the file (`once` aborted at allocation).
#[test]
fn an_impossible_buffer_size_is_a_located_error_never_an_abort() {
    let dir = TempDir::new("bigbuf");
    let cfg = dir.file("c.toml", "[backend]\nbuffer_bytes = 9223372036854775807\n");
    for args in [
        &["check-config", "-c"][..],
        &["once", "-c"],
        &["run", "--stdout", "--once", "-c"],
    ] {
        let out = cmd().args(args).arg(&cfg).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "{}:2:16: [backend] buffer_bytes: must be at most 1073741824",
                cfg.display()
            )),
            "{args:?}: {err}"
        );
    }
}

/// Security rule S1: a `requirepeer` naming a user the host does not have is a configuration
/// error at its key (it could never match a socket's owner), in `check-config` and `once`.
#[test]
fn a_requirepeer_user_that_does_not_exist_is_a_located_error() {
    let dir = TempDir::new("peer");
    let cfg = dir.file(
        "c.toml",
        "[postgres]\nrequirepeer = \"no-such-user-pgac\"\n",
    );
    for args in [&["check-config", "-c"][..], &["once", "-c"]] {
        let out = cmd().args(args).arg(&cfg).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "{}:2:1: [postgres] requirepeer: no user `no-such-user-pgac` in /etc/passwd",
                cfg.display()
            )),
            "{args:?}: {err}"
        );
    }
    // The user PostgreSQL runs as here, and "" (no check), are fine.
    for v in ["postgres", ""] {
        let cfg = dir.file("ok.toml", &format!("[postgres]\nrequirepeer = {v:?}\n"));
        let out = cmd()
            .args(["check-config", "-c"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{v:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A reader that stops reading cannot hold `run --stdout` past SIGTERM: the pipe fills, the
/// agent waits for room on stdout and the signal fd together, and SIGTERM ends it (at most the
/// last push's 5 s later). Every line that reached the pipe whole is one JSON envelope. On a
/// pipe the agent writes with `RWF_NOWAIT` until it is full; a FIFO refuses `RWF_NOWAIT`, so
/// there every write waits for room first and is at most `PIPE_BUF` bytes.
#[test]
fn sigterm_ends_run_stdout_while_the_reader_does_not_read() {
    let dir = TempDir::new("fullpipe");
    let cfg = fast_config(&dir, "0.05");
    let mut child = run_stdout(&cfg);
    let out = std::fs::File::from(std::os::fd::OwnedFd::from(child.stdout.take().unwrap()));
    sigterm_while_the_reader_does_not_read(child, out);
}

#[test]
fn sigterm_ends_run_stdout_into_a_fifo_while_the_reader_does_not_read() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = TempDir::new("fullfifo");
    let cfg = fast_config(&dir, "0.05");
    let fifo = dir.0.join("out");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    // The read end first, without waiting for a writer; then the write end does not wait.
    let out = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nonblock())
        .open(&fifo)
        .unwrap();
    let write_end = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let child = cmd()
        .args(["run", "--stdout", "-c"])
        .arg(&cfg)
        .stdout(write_end)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Reads below wait for bytes (the write end stays open in the agent until it exits).
    rustix::fs::fcntl_setfl(&out, rustix::fs::OFlags::empty()).unwrap();
    sigterm_while_the_reader_does_not_read(child, out);
}

/// `O_NONBLOCK` as `OpenOptionsExt::custom_flags` takes it.
fn libc_o_nonblock() -> i32 {
    rustix::fs::OFlags::NONBLOCK.bits() as i32
}

fn sigterm_while_the_reader_does_not_read(mut child: Child, mut out: std::fs::File) {
    // The pipe is full when what it holds stops growing for a second (20 rounds a second are
    // written while there is room; how much it holds then depends on how writes share its
    // pages, so no byte count is expected).
    let pending = |fd: &std::fs::File| rustix::io::ioctl_fionread(fd).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut still) = (0, 0);
    while still < 5 {
        let now = pending(&out);
        still = if now == last && now > 16 * 1024 {
            still + 1
        } else {
            0
        };
        last = now;
        assert!(
            Instant::now() < deadline,
            "the pipe never filled: {now} bytes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let t = Instant::now();
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "run --stdout ignored SIGTERM while its reader did not read"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    let mut lines: Vec<&str> = text.split('\n').collect();
    let tail = lines.pop().unwrap();
    assert!(lines.len() > 3, "{} whole lines", lines.len());
    for l in &lines {
        serde_json::from_str::<serde_json::Value>(l).expect("each whole line is an envelope");
    }
    // What follows the last newline is at most one line cut by the stop (never two glued).
    assert!(!tail.contains("}{\""), "lines glued together: {tail:.200}");
}
