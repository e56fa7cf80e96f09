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
# mutants.out/ (caught.txt, missed.txt, timeout.txt, unviable.txt), or to
# $MUTANTS_OUTPUT/mutants.out when that is set (use it rather than --output); the summary is
# printed at the end. Exits non-zero when a mutant was missed that is not in
# scripts/mutants-equivalent.txt (mutants that cannot change behaviour, one line each:
# `file:line:col: mutation — why`; line numbers follow the code, so edit it with the code).
# Timeouts are listed but do not fail: each known one makes `feed` loop forever without
# consuming input, a hang the unit tests notice by never finishing.
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
output=()
[ -n "${MUTANTS_OUTPUT:-}" ] && output=(--output "$MUTANTS_OUTPUT")
# cargo-mutants exits 2 for missed mutants and 3 for timeouts; anything else (1: usage, 4: the
# unmutated tree fails its tests) is passed on.
rc=0
cargo mutants --no-shuffle "${tasks[@]+"${tasks[@]}"}" "${output[@]+"${output[@]}"}" \
    "${files[@]}" "$@" -- --lib || rc=$?
case $rc in 0 | 2 | 3) ;; *) exit "$rc" ;; esac

out="${MUTANTS_OUTPUT:-.}/mutants.out"
if [ -s "$out/timeout.txt" ]; then
    echo "timed out (a hang, counted as caught):"
    sed 's/^/  /' "$out/timeout.txt"
fi
unexplained=$(grep -vxF -f <(sed 's/ — .*//' scripts/mutants-equivalent.txt) "$out/missed.txt" || true)
if [ -n "$unexplained" ]; then
    echo "missed, and not in scripts/mutants-equivalent.txt:"
    echo "$unexplained" | sed 's/^/  /'
    exit 1
fi
echo "no missed mutant but the known equivalent ones"
