#!/usr/bin/env bash
# Mutation testing of the parsers whose unit tests must catch every plausible slip: the /proc
# parsers (src/sys/procfs) and the HTTP response parser (src/proto/http/response.rs). Each
# mutant is built and the library's unit tests run against it (`-- --lib`: no integration
# tests, no PostgreSQL, no network), so a "missed" mutant is one the unit tests let through.
#
#   scripts/mutants.sh [extra cargo-mutants arguments…]
#   MUTANTS_FILES="src/sys/procfs/mod.rs" scripts/mutants.sh     one part (374 mutants in all:
#                                                                 about 3 hours on 2 cores)
#
# Installs cargo-mutants (`cargo install --locked`) only when it is missing. Results go to
# mutants.out/ (caught.txt, missed.txt, timeout.txt, unviable.txt); the summary is printed at
# the end. Exits non-zero when a mutant was missed.
#
# Environment: CARGO_BUILD_JOBS as usual (each mutant rebuilds the crate: budget minutes per
# file on a small machine).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
    cargo install cargo-mutants --locked
fi

files=()
for f in ${MUTANTS_FILES:-src/sys/procfs/*.rs src/proto/http/response.rs}; do
    files+=(--file "$f")
done

# cargo-mutants runs its own jobserver (one task per CPU by default): give it CARGO_BUILD_JOBS.
tasks=()
[ -n "${CARGO_BUILD_JOBS:-}" ] && tasks=(--jobserver-tasks "$CARGO_BUILD_JOBS")
exec cargo mutants --no-shuffle "${tasks[@]+"${tasks[@]}"}" "${files[@]}" "$@" -- --lib
