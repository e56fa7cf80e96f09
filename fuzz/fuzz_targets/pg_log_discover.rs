//! The log-discovery helpers on server-controlled strings: the glob, the destination pick,
//! the Debian cluster name, where the settings put the log, and the containment test of a
//! server-named path. Properties: a name always matches itself as a pattern and a trailing
//! `*` never loses a match; the destination picked is one of the three and named in the
//! input, the configured format's when the input names it; a Debian cluster name never leaves `/var/log/postgresql`; a name the containment
//! test accepts is one plain component directly in the log directory.
#![no_main]
use pganalytics_collector::collect::pg::pg_log::contain::name_in;
use pganalytics_collector::collect::pg::pg_log::discover::{
    DEBIAN_LOG_DIR, ServerLogging, debian_cluster, debian_log_path, glob, pick_destination,
};
use pganalytics_collector::config::PgLogFormat;
use std::path::{Component, Path};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut f = data.split(|&b| b == 0xff);
    let mut next = || f.next().unwrap_or(&[]);
    let (a, b) = (next(), next());

    assert!(glob(a, a), "a name matches itself as a pattern");
    if glob(a, b) {
        let mut star = a.to_vec();
        star.push(b'*');
        assert!(glob(&star, b));
    }
    assert!(glob(b"*", b));

    let s = |x: &[u8]| String::from_utf8_lossy(x).into_owned();
    let (dest, name, dir) = (s(next()), s(next()), s(next()));
    let format = match data.last().map(|b| b % 4) {
        Some(1) => PgLogFormat::Stderr,
        Some(2) => PgLogFormat::Csvlog,
        Some(3) => PgLogFormat::Jsonlog,
        _ => PgLogFormat::Auto,
    };
    if let Some(d) = pick_destination(&dest, format) {
        assert!(["jsonlog", "csvlog", "stderr"].contains(&d));
        assert!(dest.to_ascii_lowercase().contains(d));
        // The configured format wins whenever the server writes it.
        if let Some(asked) = pick_destination(&dest, PgLogFormat::Auto).and(match format {
            PgLogFormat::Auto => None,
            PgLogFormat::Stderr => Some("stderr"),
            PgLogFormat::Csvlog => Some("csvlog"),
            PgLogFormat::Jsonlog => Some("jsonlog"),
        }) && dest
            .split(',')
            .any(|x| x.trim().eq_ignore_ascii_case(asked))
        {
            assert_eq!(d, asked);
        }
    } else {
        assert_eq!(pick_destination(&dest, PgLogFormat::Auto), None);
    }
    if let Some(c) = debian_cluster(&name, &dir) {
        assert!(!c.is_empty() && !c.contains(['/', '\0']));
        let p = debian_log_path("15", &c);
        assert_eq!(p.parent(), Some(Path::new(DEBIAN_LOG_DIR)));
    }

    let (log_dir, path) = (s(a), s(b));
    if let Ok(n) = name_in(Path::new(&log_dir), Path::new(&path)) {
        let mut comps = Path::new(n).components();
        assert!(matches!(comps.next(), Some(Component::Normal(_))) && comps.next().is_none());
        assert!(
            Path::new(&log_dir)
                .join(n)
                .components()
                .eq(Path::new(&path).components())
        );
    }

    let server = ServerLogging {
        log_destination: dest,
        logging_collector: data.first().is_some_and(|b| b & 1 == 1),
        log_directory: Some(log_dir),
        data_directory: Some(dir),
        log_line_prefix: None,
        log_timezone: None,
        cluster_name: Some(name),
        version_num: 150_004,
        current_logfile: Some(path).filter(|p| !p.is_empty()),
    };
    if let Some(place) = server.locate(PgLogFormat::Auto, Some(b)) {
        if let (Some(cur), Some(d)) = (&place.current, &place.dir) {
            // Whatever the server claims, a path is read only if it is directly in the dir.
            if let Ok(n) = name_in(&d.dir, cur) {
                assert!(!n.is_empty());
            }
        }
    }
});
