//! The test cluster harness itself works: initdb, start, psql, TLS files, restart.
mod support;
use support::pg::{Cluster, Options};

#[test]
fn a_cluster_starts_answers_and_restarts() {
    let c = Cluster::start(Options {
        tls: true,
        ..Options::default()
    });
    assert!(c.version_num() >= 120000);
    assert_eq!(c.psql("postgres", "select 1 + 1"), "2");
    assert_eq!(c.psql("postgres", "show ssl"), "on");
    assert!(c.ca_pem.as_deref().unwrap().contains("BEGIN CERTIFICATE"));
    c.restart();
    assert_eq!(c.psql("postgres", "select current_user"), "test");
    c.psql("postgres", "create extension pg_stat_statements");
}
