//! `--version`: the package version and the git commit the binary was built from, or
//! `unknown` when built outside a git checkout (build_commit.rs, shared with build.rs).

#[path = "../build_commit.rs"]
mod build_commit;
mod support;

use std::path::Path;
use std::process::Command;

use support::tmp::TempDir;

#[test]
fn version_names_the_package_version_and_the_commit_built_from() {
    let out = Command::new(env!("CARGO_BIN_EXE_pganalytics-collector"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let line = String::from_utf8(out.stdout).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // This test runs from a checkout (CI clones the repository): the commit is HEAD's.
    let head = build_commit::commit_of(root).expect("the tests run in a git checkout");
    assert_eq!(head.len(), 12, "{head}");
    assert!(head.bytes().all(|b| b.is_ascii_hexdigit()), "{head}");
    assert_eq!(
        line.trim_end(),
        format!(
            "pganalytics-collector {} (commit {head})",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn outside_a_git_checkout_the_commit_is_unknown() {
    // A directory that is no repository (as an unpacked source tarball in /tmp).
    let dir = TempDir::new("tarball");
    assert_eq!(build_commit::commit_of(dir.path()), None);
    // A directory inside a checkout but not its top level (a tarball unpacked into some
    // other repository) must not take that repository's commit.
    let sub = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert_eq!(build_commit::commit_of(&sub), None);
}
