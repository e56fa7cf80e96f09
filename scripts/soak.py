#!/usr/bin/env python3
"""RSS of `run --stdout` over many cycles, every interval (plugins and push) at 0.01 s.

Runs the shipped binary (static musl release build unless --bin is given), counts envelope
lines (one per push round = one cycle) and prints VmRSS after each checkpoint. Goal: <= 2 MiB
and not growing between the checkpoints.

  scripts/soak.py                       # 1 000 and 50 000 cycles (about 9 minutes)
  scripts/soak.py --checkpoints 1000,3000  # the short form CI runs
"""
import argparse, json, os, subprocess, sys, tempfile, time


# Every PostgreSQL type on by default (docs/configuration.md): the soak measures the host loop of the
# foundation issue; PostgreSQL collection has its own benches (pg_cycle, pg_types).
PG_TYPES = ["pg_stats", "pg_query_stats", "pg_log", "pg_replication", "pg_server"]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/x86_64-unknown-linux-musl/release/pganalytics-collector")
    ap.add_argument("--checkpoints", default="1000,50000")
    ap.add_argument("--goal-kib", type=int, default=2048)
    a = ap.parse_args()
    checkpoints = sorted(int(c) for c in a.checkpoints.split(","))
    if not os.path.exists(a.bin):
        sys.exit(f"soak: {a.bin} not found; build it with: cargo build --release --target x86_64-unknown-linux-musl")
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "collector.toml")
        with open(cfg, "w") as f:
            f.write(f'[collector]\ninterval = 0.01\npush_interval = 0.01\nstate_dir = "{d}"\n'
                    '[logging]\nlevel = "warn"\n'
                    + ''.join(f'[{t}]\nenabled = false\n' for t in PG_TYPES))
        p = subprocess.Popen([a.bin, "run", "--stdout", "-c", cfg], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, bufsize=1 << 16)
        results, n, t0, last = [], 0, time.time(), None
        try:
            for line in p.stdout:
                n += 1
                if n == 1:
                    json.loads(line)  # one valid envelope per line
                if n in checkpoints:
                    last = json.loads(line)
                    kib = rss_kib(p.pid)
                    results.append((n, kib))
                    print(f"after {n:>6} cycles: RSS {kib} KiB ({kib / 1024:.2f} MiB), "
                          f"{time.time() - t0:.0f} s", flush=True)
                    if n == checkpoints[-1]:
                        break
        finally:
            p.terminate()
            p.wait(timeout=10)
        err = p.stderr.read().decode(errors="replace")
        if len(results) != len(checkpoints):
            sys.exit(f"soak: the collector stopped after {n} cycles (exit {p.returncode}): {err[-2000:]}")
        health = [m for m in last["metrics"] if m["type"] == "collector_health"][0]
        print(f"collector_health at the end: rss_bytes {health['rss_bytes']}, "
              f"metrics_dropped {health['metrics_dropped']}, errors {health['errors']}")
        first, final = results[0][1], results[-1][1]
        growth = final - first
        print(f"growth between {results[0][0]} and {results[-1][0]} cycles: {growth:+d} KiB; "
              f"goal: <= {a.goal_kib} KiB and not growing")
        if p.returncode not in (0, -15):
            sys.exit(f"soak: exit status {p.returncode}: {err[-2000:]}")
        if final > a.goal_kib or growth > 64:
            sys.exit("soak: over the goal")

main()
