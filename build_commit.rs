// The git commit a build comes from, shared by build.rs and tests/version.rs (the test
// includes this file with `#[path]`, so both use the same rule).
//
// Only a checkout whose top level is the crate's own directory counts: a source tarball
// unpacked inside some other repository must not report that repository's commit. Without
// git, or outside a checkout, there is no commit and `--version` says `unknown`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `git -C dir ARGS` and returns its first output line, or `None` on any failure.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}

/// The abbreviated commit (12 hex digits) of the checkout rooted at `dir`; `None` when
/// `dir` is not a checkout's top level or git is missing. Uncommitted edits are not marked:
/// the build script reruns on a new commit, not on every edited file.
#[allow(dead_code)]
pub fn commit_of(dir: &Path) -> Option<String> {
    let top = PathBuf::from(git(dir, &["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    git(dir, &["rev-parse", "--short=12", "HEAD"])
}

/// Files whose change means another commit (or a checkout of another branch): HEAD, the
/// branch's ref and packed-refs, as paths git itself resolves (worktrees keep HEAD apart).
#[allow(dead_code)]
pub fn watched_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut add = |name: &str| {
        // Only files that exist: cargo reruns a build script at every build for a missing one.
        let path = git(
            dir,
            &["rev-parse", "--path-format=absolute", "--git-path", name],
        );
        if let Some(p) = path.map(PathBuf::from).filter(|p| p.exists()) {
            files.push(p);
        }
    };
    add("HEAD");
    add("packed-refs");
    if let Some(r) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        add(&r);
    }
    files
}
