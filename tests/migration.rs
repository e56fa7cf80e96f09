//! docs/MIGRATION.md, "Today's backend": the collector, run with exactly the configuration
//! block of that section (URL, paths and intervals shortened), against a test backend that
//! behaves as today's pgAnalytics Go backend does: plain HTTP, 400 for a gzip body, 401
//! "User not found" on every config pull, 429 without `Retry-After`. Elements arrive, the 429s
//! are waited out, and no request is repeated in a loop. The same backend with the defaults
//! this configuration changes (gzip, config pull on) shows why each setting is there.
mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::backend::{self, Backend, ConfigReply, Fault, Mode, Options, PUSH};
use support::tmp::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_pganalytics-collector");
const HOSTNAME: &str = "migration-test-host";

/// The ```toml block of the `## Today's backend` section of docs/MIGRATION.md.
fn documented_config() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/MIGRATION.md");
    let text = std::fs::read_to_string(path).unwrap();
    let section = text
        .split("\n## Today's backend\n")
        .nth(1)
        .expect("docs/MIGRATION.md has `## Today's backend`");
    let block = section
        .split("```toml\n")
        .nth(1)
        .expect("a ```toml block in `## Today's backend`");
    block.split("\n```").next().unwrap().to_string()
}

/// Today's backend: plain HTTP, gzip refused, config pull 401 "User not found".
fn todays_backend() -> Backend {
    let b = Backend::start(Options {
        mode: Mode::Http,
        ..Options::default()
    });
    b.set_reject_gzip(true);
    b.set_config(Some(ConfigReply::Unauthorized(
        "User not found".to_string(),
    )));
    b
}

/// The documented configuration with the test's URL, paths and short intervals; `edit`
/// changes more keys. A registration as `register` leaves it (id and token) is provisioned.
fn config(dir: &TempDir, b: &Backend, edit: impl FnOnce(&mut toml_edit::DocumentMut)) -> PathBuf {
    let mut doc: toml_edit::DocumentMut = documented_config().parse().unwrap();
    let secret = dir.file("registration.secret", "registration-secret\n");
    let state = dir.path().display().to_string();
    doc["backend"]["url"] = toml_edit::value(b.url.clone());
    doc["backend"]["retry_initial_secs"] = toml_edit::value(0.2);
    doc["backend"]["retry_max_secs"] = toml_edit::value(1.0);
    doc["auth"]["registration_secret_file"] = toml_edit::value(secret.display().to_string());
    doc["collector"]["state_dir"] = toml_edit::value(state);
    doc["collector"]["hostname"] = toml_edit::value(HOSTNAME);
    doc["collector"]["push_interval"] = toml_edit::value(0.3);
    doc["sysstat"]["interval"] = toml_edit::value(0.1);
    // No PostgreSQL in this test: the host types are enough to see elements arrive.
    for t in [
        "pg_stats",
        "pg_query_stats",
        "pg_log",
        "pg_replication",
        "pg_server",
        "disk_usage",
    ] {
        doc[t]["enabled"] = toml_edit::value(false);
    }
    edit(&mut doc);
    let id = "c-migration";
    dir.file("collector.id", &format!("{id}\n"));
    dir.file(
        "collector.token",
        &format!("{}\n", b.issue_token(id, HOSTNAME)),
    );
    dir.file("collector.toml", &doc.to_string())
}

/// `run -c cfg`, stderr into a file of `dir`; killed when dropped.
struct Daemon(Child, PathBuf);

impl Daemon {
    fn start(dir: &TempDir, cfg: &Path) -> Daemon {
        let log = dir.path().join("stderr.log");
        let child = Command::new(BIN)
            .env_remove("PGANALYTICS_CONFIG")
            .env_remove("PGANALYTICS_REGISTRATION_SECRET")
            .args(["run", "-c"])
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon(child, log)
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sysstat_elements(b: &Backend) -> usize {
    b.batches()
        .iter()
        .flat_map(|batch| batch.metrics().iter())
        .filter(|m| m["type"] == "sysstat")
        .count()
}

/// Requests to `path` answered with `status` (any status when `None`).
fn count(b: &Backend, path: &str, status: Option<u16>) -> usize {
    b.requests()
        .iter()
        .filter(|r| r.path.starts_with(path) && status.is_none_or(|s| r.status == s))
        .count()
}

#[test]
fn the_documented_configuration_works_with_todays_backend() {
    let doc = documented_config();
    assert!(doc.contains("compression = \"none\""), "{doc}");
    assert!(doc.contains("config_pull_interval = 0"), "{doc}");
    let b = todays_backend();
    let dir = TempDir::new("migr");
    let cfg = config(&dir, &b, |_| {});
    let d = Daemon::start(&dir, &cfg);

    // Plain JSON pushes are stored.
    assert!(
        b.wait(Duration::from_secs(10), |s| s.batches.len() >= 3),
        "no pushes accepted: {:?}\n{}",
        b.requests(),
        d.log()
    );
    assert!(sysstat_elements(&b) > 0);
    assert!(b.batches().iter().all(|batch| !batch.gzip()));

    // 429 without Retry-After, three times: waited out with the backoff, then delivered.
    let before = b.batches().len();
    b.push_faults(3, Fault::TooMany(None));
    assert!(
        b.wait(Duration::from_secs(15), |s| {
            s.requests.iter().filter(|r| r.status == 429).count() == 3 && s.batches.len() > before
        }),
        "not delivered after the 429s: {:?}\n{}",
        b.requests(),
        d.log()
    );
    let throttled: Vec<Instant> = b
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .map(|r| r.at)
        .collect();
    let accepted_after = b
        .batches()
        .iter()
        .filter(|batch| batch.at > throttled[2])
        .count();
    assert!(accepted_after >= 1);

    // Nothing loops: over two seconds, pushes follow push_interval (0.3 s), and the config is
    // never asked for (config_pull_interval = 0).
    let from = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let pushes = b.pushes_between(from, Instant::now());
    assert!((2..=12).contains(&pushes), "{pushes} pushes in 2 s");
    assert_eq!(count(&b, backend::CONFIG, None), 0);
    assert_eq!(count(&b, PUSH, Some(400)), 0);
    assert!(b.violations().is_empty(), "{:?}", b.violations());
    // The only errors logged are the three 429s.
    for line in d
        .log()
        .lines()
        .filter(|l| l.contains("\"level\":\"error\""))
    {
        assert!(line.contains("rate limiting pushes (429)"), "{line}");
    }
}

#[test]
fn with_gzip_each_batch_gets_400_once_and_is_never_resent() {
    let b = todays_backend();
    let dir = TempDir::new("migr-gzip");
    let cfg = config(&dir, &b, |doc| {
        doc["backend"]["compression"] = toml_edit::value("gzip");
    });
    let d = Daemon::start(&dir, &cfg);
    assert!(
        b.wait(Duration::from_secs(10), |s| {
            s.requests.iter().filter(|r| r.status == 400).count() >= 4
        }),
        "{}",
        d.log()
    );
    // Every 400 was a different batch (the body is gzip: this backend did not decode it).
    let mut ids = Vec::new();
    for r in b.requests().iter().filter(|r| r.path == PUSH) {
        assert_eq!(r.status, 400, "{r:?}");
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&r.body[..])
            .read_to_end(&mut plain)
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        ids.push(v["batch_id"].as_str().unwrap().to_string());
    }
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a rejected batch was sent again");
    assert!(b.batches().is_empty());
    assert!(
        d.log().contains("the backend rejected a batch (400)"),
        "{}",
        d.log()
    );
}

#[test]
fn with_config_pull_on_each_pull_gets_one_refresh_and_one_retry_then_waits() {
    let b = todays_backend();
    let dir = TempDir::new("migr-pull");
    let cfg = config(&dir, &b, |doc| {
        doc["collector"]["config_pull_interval"] = toml_edit::value(0.5);
    });
    let d = Daemon::start(&dir, &cfg);
    assert!(b.wait(Duration::from_secs(10), |s| s.batches.len() >= 2));
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let elapsed = start.elapsed().as_secs_f64() + 10.0;
    let pulls = count(&b, backend::CONFIG, None);
    let refreshes = count(&b, backend::REFRESH, None);
    // At most two pulls (the first and its retry) per 0.5 s interval since start.
    let bound = (2.0 * (elapsed / 0.5 + 1.0)) as usize;
    assert!(pulls >= 2, "{pulls} pulls\n{}", d.log());
    assert!(pulls <= bound, "{pulls} pulls: a loop\n{}", d.log());
    assert!(
        refreshes <= pulls,
        "{refreshes} refreshes for {pulls} pulls"
    );
    assert_eq!(
        count(&b, backend::CONFIG, Some(401)),
        pulls,
        "every pull is answered 401 User not found"
    );
    // Pushes go on, and the state files were not replaced by a registration.
    let batches = b.batches().len();
    assert!(b.wait(Duration::from_secs(5), |s| s.batches.len() > batches));
    assert!(b.registered().is_empty());
}
