//! Build script: records the git commit the binary is built from, for `--version`
//! (docs/operations.md, "Version"). `unknown` outside a git checkout (a source tarball).

#[path = "build_commit.rs"]
mod build_commit;

use std::path::PathBuf;

fn main() {
    // unwrap: cargo always sets CARGO_MANIFEST_DIR for build scripts.
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let commit = build_commit::commit_of(&dir).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PGANALYTICS_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build_commit.rs");
    for file in build_commit::watched_files(&dir) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}
