//! The commands of docs/configuration.md and the poll loop that runs the collector.

pub mod engine;
pub mod pull;
pub mod runloop;
pub mod schedule;

use crate::agent_log;
use crate::cli::{self, Command};
use crate::collect::{self, Now};
use crate::config::{self, Config};
use crate::pipeline::sink::{SinkError, StdoutSink};
use crate::push;
use std::path::PathBuf;
use std::time::Duration;

/// Where the configuration lives when `-c` does not say.
pub const DEFAULT_CONFIG: &str = "/etc/pganalytics/collector.toml";

/// Process exit codes of docs/configuration.md.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILURE: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The config file to read: `-c`, else `PGANALYTICS_CONFIG`; `explicit` tells whether the user
/// named it (then it must exist), otherwise it is the default path.
fn config_path(flag: Option<&str>) -> (PathBuf, bool) {
    match flag
        .map(str::to_string)
        .or_else(|| env_var("PGANALYTICS_CONFIG").filter(|s| !s.is_empty()))
    {
        Some(p) => (PathBuf::from(p), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    }
}

/// Loads the configuration; `Ok(None)` when the default file is absent (built-in defaults).
fn load_config(flag: Option<&str>) -> Result<(Config, Option<PathBuf>), i32> {
    let (path, explicit) = config_path(flag);
    if !explicit && !path.exists() {
        return Ok((config::defaults_with_env(&env_var), None));
    }
    match config::load(&path, &env_var) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                agent_log::warn("config", &w.to_string(), &[]);
            }
            Ok((loaded.config, Some(path)))
        }
        Err(config::LoadError::Invalid(diagnostics)) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            eprintln!(
                "{}: {} error(s); fix them and try again (check with `pganalytics-collector check-config -c {}`)",
                path.display(),
                diagnostics.len(),
                path.display()
            );
            Err(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("{e}");
            Err(EXIT_USAGE)
        }
    }
}

/// Runs the command line; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let program = args.first().map_or("pganalytics-collector", String::as_str);
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let cli = match cli::parse(program, &rest) {
        Ok(cli) => cli,
        Err((text, code)) => {
            if code == 0 {
                print!("{text}");
            } else {
                eprintln!("{}", text.trim_end());
            }
            return code;
        }
    };
    if cli.version {
        println!("{}", crate::VERSION_LINE);
        return EXIT_OK;
    }
    // Messages before the config is read: text on a terminal, JSON otherwise.
    agent_log::configure(crate::config::LogLevel::Info, None);
    match cli.command {
        None => {
            eprintln!(
                "{program}: a command is needed: once, run, register or check-config (see --help)"
            );
            EXIT_USAGE
        }
        Some(Command::Once(o)) => once(&o),
        Some(Command::Run(r)) => run(&r),
        Some(Command::CheckConfig(c)) => check_config(&c),
        Some(Command::Register(r)) => register(&r),
    }
}

/// `once`: every enabled plugin (or `--only`) one time, one envelope on stdout.
fn once(o: &cli::Once) -> i32 {
    let (config, _) = match load_config(o.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    agent_log::configure(config.logging.level, config.logging.format);
    for p in state_dir_problems(&config) {
        agent_log::warn("state", &p, &[]);
    }
    let only: Option<Vec<&str>> = o.only.as_deref().map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect()
    });
    if let Some(list) = &only {
        for t in list {
            if *t != "collector_health" && !collect::registry::PLUGIN_NAMES.contains(t) {
                eprintln!(
                    "once: --only names `{t}`, which this build does not collect; known types: {}, collector_health",
                    collect::registry::PLUGIN_NAMES.join(", ")
                );
                return EXIT_USAGE;
            }
        }
    }
    let with_health = only
        .as_ref()
        .is_none_or(|l| l.contains(&"collector_health"));
    let sample = Duration::from_millis(o.sample_ms);
    let mut engine = collect_once(config, only.as_deref(), sample);
    for line in once_warnings(&engine.errors) {
        eprintln!("{line}");
    }
    let produced = engine.slots.iter().filter(|s| s.emitted > 0).count();
    let requested = engine.slots.len();
    let now = Now::read();
    if with_health {
        engine.add_health(now);
    }
    let mut sink = StdoutSink::new(std::io::stdout().lock(), o.pretty);
    match engine.push(&mut sink, now) {
        Ok(()) | Err(SinkError::Closed) => {}
        Err(SinkError::Failed(msg) | SinkError::Retry(msg)) => {
            eprintln!("once: {msg}");
            return EXIT_FAILURE;
        }
    }
    if produced > 0 || (requested == 0 && with_health) {
        EXIT_OK
    } else {
        EXIT_FAILURE
    }
}

/// One line per distinct problem of a `once` collection: plugins that failed the same way
/// (both PostgreSQL plugins on an unreachable server) share a line; PostgreSQL problems say how
/// to point the collector at the server.
fn once_warnings(errors: &collect::Errors) -> Vec<String> {
    let mut by_message: Vec<(&str, Vec<&str>)> = Vec::new();
    for (key, msg) in errors {
        match by_message.iter_mut().find(|(m, _)| m == msg) {
            Some((_, keys)) => keys.push(key),
            None => by_message.push((msg, vec![key])),
        }
    }
    by_message
        .into_iter()
        .map(|(msg, keys)| {
            let hint = if keys.iter().any(|k| k.starts_with("pg_")) {
                "; point the collector at the server with PGHOST/PGPORT/PGUSER/PGPASSWORD (or ~/.pgpass), or -c FILE with a [postgres] section"
            } else {
                ""
            };
            format!("once: {}: {msg}{hint}", keys.join(", "))
        })
        .collect()
}

/// Baseline, wait `sample` (running the ticks of plugins that sample in between, such as
/// `pg_wait_events`), collect each plugin once.
fn collect_once(config: Config, only: Option<&[&str]>, sample: Duration) -> engine::Engine {
    let start = Now::read();
    let mut engine = engine::Engine::with_mode(config, only, sample, start, collect::Mode::Once);
    engine.log_errors = false;
    let end = start
        .mono_ns
        .saturating_add(u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX));
    loop {
        let now = Now::read();
        if now.mono_ns >= end {
            break;
        }
        engine.tick_due(now, None);
        let next = engine.next_tick().unwrap_or(end).min(end);
        let wait = next.saturating_sub(crate::sys::time::monotonic_ns());
        std::thread::sleep(Duration::from_nanos(wait));
    }
    let now = Now::read();
    for i in 0..engine.slots.len() {
        engine.collect_slot(i, now, None);
    }
    engine
}

/// `check-config`'s look at `[[custom_query]]` on a reachable server (Parse + Describe):
/// SQL the server refuses as a syntax error, several statements or parameters is an error at
/// the query's line (exit 2); other refusals and an unreachable server are warnings.
fn check_custom_queries(path: &std::path::Path, config: &config::Config) -> i32 {
    let report = collect::pg::custom::check(config, None);
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if report.errors.is_empty() {
        return EXIT_OK;
    }
    let lines = std::fs::read_to_string(path)
        .map(|t| config::custom_query_lines(&t))
        .unwrap_or_default();
    for (i, message) in &report.errors {
        let d = config::Diagnostic {
            file: path.display().to_string(),
            line: lines.get(*i).copied().unwrap_or(1),
            col: 1,
            message: message.clone(),
        };
        eprintln!("{d}");
    }
    EXIT_USAGE
}

/// `run`: the daemon.
fn run(r: &cli::Run) -> i32 {
    // Block the signals before anything else (and before any thread could exist).
    let signals = match crate::sys::signals::Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("run: cannot set up signal handling: {e}");
            return EXIT_FAILURE;
        }
    };
    let (path, explicit) = config_path(r.config.as_deref());
    if !r.stdout && !path.exists() {
        eprintln!(
            "run: no config file at {}: `run` needs one with a [backend] url (pass -c FILE), or use `run --stdout` to print each push round",
            path.display()
        );
        return EXIT_USAGE;
    }
    if explicit && !path.exists() {
        eprintln!("run: config file {} does not exist", path.display());
        return EXIT_USAGE;
    }
    let (mut config, path) = match load_config(r.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    agent_log::configure(config.logging.level, config.logging.format);
    if !state_dir_usable("run", &config) {
        return EXIT_USAGE;
    }
    // The last pulled document is re-applied at start (docs/protocol.md, "Config pull").
    let mut applied_version = None;
    if let Some(p) = &path
        && let Some((overlaid, version, _)) = config::pull::remote_overlay(p, &config, &env_var)
    {
        config = overlaid;
        applied_version = version;
        agent_log::configure(config.logging.level, config.logging.format);
    }
    let mut opts = runloop::RunOptions {
        config_path: path,
        once: r.once,
        sample: Duration::from_millis(250),
        push_offset: Duration::ZERO,
        applied_version,
    };
    let mut state_lock = None;
    let mut outlet = if r.stdout {
        runloop::Outlet::Stdout(StdoutSink::new(
            crate::sys::stdout::Stdout::new(&signals),
            false,
        ))
    } else {
        let file = opts
            .config_path
            .as_ref()
            .map_or_else(String::new, |p| p.display().to_string());
        if config.backend.url.is_none() {
            eprintln!(
                "run: {file} names no [backend] url: set it to the pgAnalytics backend, or use `run --stdout` to print each push round"
            );
            return EXIT_USAGE;
        }
        // One `run` per state directory: the spool and the offsets have one writer.
        match lock_state_dir(&config.collector.state_dir) {
            Ok(lock) => state_lock = Some(lock),
            Err(msg) => {
                eprintln!("run: {msg}");
                return EXIT_USAGE;
            }
        }
        let client = match backend_client(&config, Some(&signals)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("run: {e}");
                return EXIT_USAGE;
            }
        };
        let seed = push::backoff::random_seed();
        if !r.once {
            let interval = config.collector.push_interval.as_nanos();
            let offset = u64::try_from(interval).unwrap_or(u64::MAX);
            let mut rng = push::backoff::Backoff::new(1, 1, seed.rotate_left(17));
            opts.push_offset = Duration::from_nanos(rng.random_below(offset));
        }
        let delivery = push::sink::Delivery::from_config(&config);
        let mut sink = push::sink::HttpsSink::new(client, delivery, seed);
        if !r.once && config.backend.spool_bytes > 0 {
            let state_dir = &config.collector.state_dir;
            match push::spool::Spool::open(state_dir, config.backend.spool_bytes) {
                Ok(spool) => {
                    let f = spool.figures();
                    if f.elements > 0 || f.corrupt > 0 {
                        agent_log::info(
                            "spool",
                            "the outage spool holds elements from an earlier run: they are sent first",
                            &[
                                ("elements", &f.elements.to_string()),
                                ("bytes", &f.bytes.to_string()),
                                ("corrupt_records_skipped", &f.corrupt.to_string()),
                            ],
                        );
                    }
                    sink = sink.with_spool(spool);
                }
                Err(e) => agent_log::error(
                    "spool",
                    &format!(
                        "cannot open the outage spool in {}: {e}; running without it (an outage is kept in memory only); fix the directory's permissions and restart",
                        state_dir.join(push::spool::DIR).display()
                    ),
                    &[],
                ),
            }
        }
        runloop::Outlet::Backend(Box::new(sink))
    };
    let exit = runloop::run(config, opts, &signals, &mut outlet);
    drop(outlet);
    drop(state_lock);
    match exit {
        runloop::Exit::Done => EXIT_OK,
        runloop::Exit::Failed(msg) => {
            agent_log::error("main", &msg, &[]);
            EXIT_FAILURE
        }
    }
}

/// What is wrong with the state directory for this process (SECURITY.md, "Secrets at rest").
fn state_dir_problems(config: &Config) -> Vec<String> {
    crate::state::check(&config.collector.state_dir, crate::sys::logfile::euid())
}

/// `run` and `register` refuse a state directory another user owns or may write: one line
/// per problem, then exit 2 (`once` and `check-config` only warn).
fn state_dir_usable(command: &str, config: &Config) -> bool {
    let problems = state_dir_problems(config);
    for p in &problems {
        eprintln!("{command}: {p}");
    }
    problems.is_empty()
}

/// Takes `<state_dir>/lock` for the life of `run` (security rule S7); the error names the
/// process that holds it when its pid is readable.
fn lock_state_dir(state_dir: &std::path::Path) -> Result<crate::sys::spoolfile::DirLock, String> {
    use crate::sys::spoolfile::{self, LockError};
    let path = state_dir.join(crate::state::LOCK);
    let _ = spoolfile::create_private_dir(state_dir);
    match spoolfile::lock_exclusive(&path) {
        Ok(lock) => Ok(lock),
        Err(LockError::Held(pid)) => Err(format!(
            "another collector{} is running on the state directory {} (it holds {}): stop it first, or give this one its own [collector] state_dir",
            pid.map_or_else(String::new, |p| format!(" (pid {p})")),
            state_dir.display(),
            path.display()
        )),
        Err(LockError::Io(e)) => Err(format!(
            "cannot lock {}: {e}; check that [collector] state_dir exists and belongs to the collector's user",
            path.display()
        )),
    }
}

/// The backend client of `config` (connection settings and `[auth]` read now).
fn backend_client<'s>(
    config: &Config,
    signals: Option<&'s crate::sys::signals::Signals>,
) -> Result<push::client::Backend<push::conn::Conn<'s>>, String> {
    let settings = push::client::ClientSettings::from_config(config)?;
    let conn = push::conn::Conn::new(push::conn::ConnSettings::load(&settings.conn)?, signals);
    push::client::Backend::new(conn, settings)
}

/// The client `register` uses: the connection only, no `[auth]` files read.
fn registration_client(
    config: &Config,
) -> Result<push::client::Backend<push::conn::Conn<'static>>, String> {
    let settings = push::client::ClientSettings::from_config(config)?;
    let conn = push::conn::Conn::new(push::conn::ConnSettings::load(&settings.conn)?, None);
    Ok(push::client::Backend::for_registration(conn, settings))
}

/// `register`: docs/protocol.md, registration; then the id on stdout.
fn register(r: &cli::Register) -> i32 {
    let (config, _) = match load_config(r.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    agent_log::configure(config.logging.level, config.logging.format);
    if !state_dir_usable("register", &config) {
        return EXIT_USAGE;
    }
    let state_dir = &config.collector.state_dir;
    let id_path = state_dir.join(crate::state::COLLECTOR_ID);
    if !r.force && id_path.exists() {
        eprintln!(
            "register: {} exists: this host is already registered; pass --force to register a new collector (the backend creates a new one each time)",
            id_path.display()
        );
        return EXIT_USAGE;
    }
    let secret = match &r.secret_file {
        Some(f) => match std::fs::read_to_string(f) {
            Ok(s) => s.lines().next().unwrap_or("").trim().to_string(),
            Err(e) => {
                eprintln!("register: cannot read the secret file {f}: {e}");
                return EXIT_USAGE;
            }
        },
        None => env_var("PGANALYTICS_REGISTRATION_SECRET")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    };
    if secret.is_empty() {
        eprintln!(
            "register: no registration secret: pass --secret-file FILE or set PGANALYTICS_REGISTRATION_SECRET (never on the command line)"
        );
        return EXIT_USAGE;
    }
    if config.backend.url.is_none() {
        eprintln!("register: the configuration names no [backend] url; set it and try again");
        return EXIT_USAGE;
    }
    let mut client = match registration_client(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("register: {e}");
            return EXIT_USAGE;
        }
    };
    let identity = engine::Identity::resolve(&config);
    let name = r.name.clone().unwrap_or_else(|| identity.hostname.clone());
    let reg = match client.register(&secret, &name, &identity.hostname) {
        Ok(reg) => reg,
        Err(e) => {
            eprintln!("register: {e}");
            return EXIT_FAILURE;
        }
    };
    let state = crate::state::StateDir::new(state_dir);
    if let Err(e) = push::register::persist(&state, &reg, r.force) {
        eprintln!("register: {e}");
        return EXIT_FAILURE;
    }
    println!("{}", reg.collector_id);
    EXIT_OK
}

/// `check-config`: validate, print the effective configuration with secrets redacted.
fn check_config(c: &cli::CheckConfig) -> i32 {
    let (path, explicit) = config_path(c.config.as_deref());
    if !explicit && !path.exists() {
        eprintln!(
            "check-config: no config file at {}; pass one with -c (the sample is packaging/collector.toml)",
            path.display()
        );
        return EXIT_USAGE;
    }
    match config::load(&path, &env_var) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            for p in state_dir_problems(&loaded.config) {
                eprintln!("warning: {p}");
            }
            match config::pull::remote_overlay(&path, &loaded.config, &env_var) {
                Some((overlaid, _, pulled)) => {
                    print!("{}", config::render(&overlaid, &pulled.marks()));
                }
                None => print!("{}", config::render(&loaded.config, &[])),
            }
            check_custom_queries(&path, &loaded.config)
        }
        Err(config::LoadError::Invalid(diagnostics)) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            EXIT_USAGE
        }
        Err(e) => {
            eprintln!("{e}");
            EXIT_USAGE
        }
    }
}
