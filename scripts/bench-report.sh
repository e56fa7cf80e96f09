#!/usr/bin/env bash
# Runs the benchmarks as CI does (the shipped profile, static musl target) and rewrites the
# table of docs/performance.md between its marker comments with the figures, the command of
# each, today's date and this machine. CPU-heavy (about 15 minutes on 2 cores; the pg_*
# benches start their own PostgreSQL, as the tests do); pg_scale runs in its full form
# (20 databases × 1 000 tables, about 5 minutes), not CI's short one. Usage, from anywhere in
# the checkout:
#     scripts/bench-report.sh            # run, then rewrite docs/performance.md
#     scripts/bench-report.sh --dry-run  # run, print the table, change nothing
#     scripts/bench-report.sh --from DIR # no run: read DIR/<bench>.txt saved from earlier runs
# Each run keeps the benches' output in target/bench-report/<bench>.txt for --from.
set -euo pipefail
cd "$(dirname "$0")/.."
MUSL=x86_64-unknown-linux-musl
DOC=docs/performance.md
dry= from=
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1; shift ;;
    --from) from=${2:?--from needs a directory}; shift 2 ;;
    *) echo "usage: $0 [--dry-run] [--from DIR]" >&2; exit 2 ;;
  esac
done
rustup target list --installed | grep -qx "$MUSL" || { echo "rustup target add $MUSL first"; exit 1; }

out=target/bench-report
mkdir -p "$out"
# name | arguments after `--` (as .ci/run passes them; pg_scale: the full form)
benches=("host_cycle|10000" "pg_cycle|10" "pg_types|5" "pg_waits|5" "pg_scale|20 1000 5" "push|" "log_parse|")
if [ -n "$from" ]; then benches=(); [ "$from" -ef "$out" ] || cp "$from"/*.txt "$out"/; fi
for b in ${benches[@]+"${benches[@]}"}; do
  name=${b%%|*} args=${b#*|}
  echo "==> cargo bench --bench $name --target $MUSL${args:+ -- $args}" >&2
  # shellcheck disable=SC2086 # args: optional numbers, split into words
  cargo bench --bench "$name" --target "$MUSL" ${args:+-- $args} | tee "$out/$name.txt" >&2
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
os=$(. /etc/os-release && echo "$PRETTY_NAME")
machine="$(nproc) CPUs ($cpu), $os"
today=$(date -u +%F)

OUT=$out DOC=$DOC DRY=$dry MACHINE=$machine TODAY=$today MUSL=$MUSL python3 - <<'PY'
import os, re, sys
out, doc, musl = os.environ["OUT"], os.environ["DOC"], os.environ["MUSL"]
date, machine = os.environ["TODAY"], os.environ["MACHINE"]

def text(name):
    return open(os.path.join(out, name + ".txt"), encoding="utf-8").read()

def last(name, pattern):
    found = re.findall(pattern, text(name))
    if not found:
        sys.exit(f"bench-report: no match for {pattern!r} in the output of {name}")
    return found[-1]

def spaced(n):
    return f"{int(n):,}".replace(",", " ")

def cmd(name, args=""):
    return f"`cargo bench --bench {name} --target {musl}" + (f" -- {args}`" if args else "`")

rows = [
    ("host cycle (sysstat + disk_usage), median per cycle", last("host_cycle", r"median ([\d.]+) µs") + " µs", "≤ 100 µs", cmd("host_cycle", "10000")),
    ("host cycle, heap allocations per cycle", last("host_cycle", r"incl\. the JSON step: ([\d.]+)"), "0", cmd("host_cycle", "10000")),
    ("pg_stats + pg_query_stats on 1 000 tables, collector CPU per cycle", last("pg_cycle", r"envelope\): ([\d.]+) ms") + " ms", "≤ 20 ms", cmd("pg_cycle", "10")),
    ("pg_stats + pg_query_stats, peak RSS", last("pg_cycle", r"\(([\d.]+) MiB; goal: <= 8 MiB") + " MiB", "≤ 8 MiB", cmd("pg_cycle", "10")),
    ("the eight types of pg_replication … pg_schema, collector CPU per cycle", last("pg_types", r"\(all eight \+ envelope\): ([\d.]+) ms") + " ms", "≤ 20 ms", cmd("pg_types", "5")),
    ("the eight types, slowest server query", last("pg_types", r"slowest query: ([\d.]+) ms") + " ms", "≤ 50 ms", cmd("pg_types", "5")),
    ("the eight types, peak RSS", last("pg_types", r"peak RSS \(VmHWM\): \d+ KiB \(([\d.]+) MiB\)") + " MiB", "—", cmd("pg_types", "5")),
    ("pg_wait_events, 100 active sessions, collector CPU per sample", last("pg_waits", r"CPU per sample: ([\d.]+) ms") + " ms", "≤ 0.2 ms", cmd("pg_waits", "5")),
    ("pg_wait_events, server time of one sample (mean)", last("pg_waits", r"one sample: ([\d.]+) ms mean") + " ms", "—", cmd("pg_waits", "5")),
    ("at scale: 20 databases × 1 000 tables, every type, collector CPU per 1 000 tables per cycle", last("pg_scale", r"per 1 000 tables per cycle: ([\d.]+) ms") + " ms", "≤ 20 ms", cmd("pg_scale", "20 1000 5")),
    ("at scale, peak RSS", last("pg_scale", r"peak RSS \(VmHWM\): \d+ KiB \(([\d.]+) MiB\)") + " MiB", "≤ 16 MiB + " + last("pg_scale", r"buffer filled at most \d+ B \(([\d.]+) MiB\)") + " MiB in the buffer", cmd("pg_scale", "20 1000 5")),
    ("at scale, elements dropped (64 MiB buffer)", last("pg_scale", r"metrics_dropped\): (\d+)"), "0", cmd("pg_scale", "20 1000 5")),
    ("at scale, slowest server query", last("pg_scale", r"slowest query: ([\d.]+) ms") + " ms", "≤ 50 ms", cmd("pg_scale", "20 1000 5")),
    ("push round: envelope + gzip", last("push", r"together ([\d.]+) ms") + " ms", "≤ 5 ms", cmd("push")),
    ("push round: gzip ratio", last("push", r"ratio ([\d.]+) % smaller") + " % smaller", "≥ 80 %", cmd("push")),
    ("one push over loopback TLS 1.3, median", last("push", r"reused connection: median ([\d.]+) ms") + " ms", "≤ 5 ms", cmd("push")),
    ("peak RSS of `run` pushing over TLS", last("push", r"nearly empty buffer: \d+ KiB \(([\d.]+) MiB") + " MiB", "≤ 4 MiB", cmd("push")),
    ("pg_log parsing, min_level WARNING, 100 MB log", spaced(last("log_parse", r"WARNING: .*?, (\d+) lines/s")) + " lines/s", "≥ 2 000 000", cmd("log_parse")),
    ("pg_log parsing, every line an entry, 100 MB log", spaced(last("log_parse", r"DEBUG5: .*?, (\d+) entries/s")) + " entries/s", "≥ 500 000", cmd("log_parse")),
    ("pg_log parsing, peak RSS", last("log_parse", r"while parsing: (\d+) KiB") + " KiB", "—", cmd("log_parse")),
]
table = ["| figure | value | goal | command | date | machine |", "|---|---|---|---|---|---|"]
table += [f"| {f} | {v} | {g} | {c} | {date} | {machine} |" for f, v, g, c in rows]
table = "\n".join(table)
if os.environ["DRY"]:
    print(table)
    sys.exit(0)
begin, end = "<!-- bench-report:begin -->", "<!-- bench-report:end -->"
page = open(doc, encoding="utf-8").read()
if begin not in page or end not in page:
    sys.exit(f"bench-report: {doc} lacks the markers {begin} … {end}")
head, rest = page.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w", encoding="utf-8").write(f"{head}{begin}\n{table}\n{end}{tail}")
print(f"bench-report: {doc} rewritten ({len(rows)} figures, {date}, {machine})")
PY
