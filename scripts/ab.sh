#!/usr/bin/env bash
# A/B of two revisions on this machine, one after the other: the static release binary's size
# and the benchmarks whose figures a redesign must leave within noise (host cycle, the eight
# PostgreSQL types, push, log parsing) and the short host soak. Each revision is checked out in
# a temporary worktree and built with its own benches (the bench code of both must measure the
# same thing: `git diff A B -- benches` tells). Usage, from anywhere in the checkout:
#     scripts/ab.sh REV_A REV_B          # e.g. scripts/ab.sh f3063ca 0bf8b8d (issue 10)
# Outputs go to target/ab/<rev>/<bench>.txt; the end prints the figures of both side by side.
# CPU-heavy: two release builds with their benches (about 5 minutes each on 2 cores) and the
# runs (about 3 minutes each). AB_TARGET_DIR (default target/ab/target) is the shared cargo
# target directory, so dependencies build once.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: scripts/ab.sh REV_A REV_B" >&2; exit 2; }
cd "$(git rev-parse --show-toplevel)"
MUSL=x86_64-unknown-linux-musl
root=$PWD/target/ab
export CARGO_TARGET_DIR=${AB_TARGET_DIR:-$root/target}
mkdir -p "$root"

for rev in "$@"; do
  sha=$(git rev-parse --short "$rev")
  out=$root/$sha wt=$root/wt-$sha
  mkdir -p "$out"
  [ -d "$wt" ] || git worktree add --detach -f "$wt" "$sha" >/dev/null
  echo "==> $sha: $(git log -1 --format=%s "$sha" | cut -c1-100)" >&2
  (
    cd "$wt"
    cargo build --release --target "$MUSL" 2>&1 | tail -1 >&2
    bin=$CARGO_TARGET_DIR/$MUSL/release/pganalytics-collector
    stat -c %s "$bin" > "$out/size.txt"
    for b in "host_cycle|10000" "pg_types|5" "push|" "log_parse|"; do
      name=${b%%|*} args=${b#*|}
      echo "==> $sha: cargo bench --bench $name${args:+ -- $args}" >&2
      # shellcheck disable=SC2086 # args is one optional number
      PGAC_BIN=$bin cargo bench --bench "$name" --target "$MUSL" ${args:+-- $args} > "$out/$name.txt" 2>&1
    done
    python3 scripts/soak.py --bin "$bin" --checkpoints 1000,3000 > "$out/soak.txt" 2>&1
  )
  git worktree remove --force "$wt"
done

A=$root/$(git rev-parse --short "$1") B=$root/$(git rev-parse --short "$2")
A=$A B=$B python3 - <<'PY'
import os, re
a, b = os.environ["A"], os.environ["B"]
def fig(d, name, pattern):
    try:
        found = re.findall(pattern, open(os.path.join(d, name + ".txt"), encoding="utf-8").read())
    except OSError:
        return "-"
    return found[-1] if found else "-"
rows = [
    ("static binary, bytes", "size", r"(\d+)"),
    ("host cycle, median µs", "host_cycle", r"median ([\d.]+) µs"),
    ("pg_types, all eight + envelope, ms", "pg_types", r"\(all eight \+ envelope\): ([\d.]+) ms"),
    ("pg_types, slowest server query, ms", "pg_types", r"slowest query: ([\d.]+) ms"),
    ("push: envelope + gzip, ms", "push", r"together ([\d.]+) ms"),
    ("push over loopback TLS, median ms", "push", r"reused connection: median ([\d.]+) ms"),
    ("push: peak RSS of run, KiB", "push", r"nearly empty buffer: (\d+) KiB"),
    ("log parse, WARNING, lines/s", "log_parse", r"WARNING: .*?, (\d+) lines/s"),
    ("log parse, DEBUG5, entries/s", "log_parse", r"DEBUG5: .*?, (\d+) entries/s"),
    ("soak, RSS after 3 000 cycles, KiB", "soak", r"after +\d+ cycles: RSS (\d+) KiB"),
]
print(f"| figure | {os.path.basename(a)} | {os.path.basename(b)} |\n|---|---|---|")
for label, name, pattern in rows:
    print(f"| {label} | {fig(a, name, pattern)} | {fig(b, name, pattern)} |")
PY
