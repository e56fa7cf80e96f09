#!/usr/bin/env python3
"""CPU per cycle of the steady state: the shipped binary's `run --stdout` with the host plugins
(sysstat, disk_usage, collector_health) every second, PostgreSQL types off, measured for the
whole process from /proc/PID/schedstat (nanoseconds on a CPU) and the user/kernel split from
utime/stime in /proc/PID/stat (clock ticks, so the split is coarse over a short run).

One cycle = one second: every host collection and one push round (an envelope line on stdout).
The first --warmup cycles are not counted (start-up, first reads, buffers growing to size).

  scripts/steady.py                      # 120 measured cycles (about 2 minutes)
  scripts/steady.py --cycles 600         # a steadier figure
  scripts/steady.py --floor              # also the floor: scripts/steady_floor.c (built with
                                         # cc), the same system calls with no parsing or JSON,
                                         # measured the same way: what no collector can go under
  scripts/steady.py --perf               # also the kernel/user split from `perf record`
                                         # (cpu-clock samples every 20 us of CPU) and the
                                         # system calls that cost most

Goal (docs/performance.md): <= 0.25 ms per cycle.
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

PG_TYPES = ["pg_stats", "pg_query_stats", "pg_log", "pg_replication", "pg_server"]


def schedstat_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of stat(5) (utime, stime); rest[0] is field 3.
    return int(rest[11]), int(rest[12])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/x86_64-unknown-linux-musl/release/pganalytics-collector")
    ap.add_argument("--cycles", type=int, default=120)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--goal-ms", type=float, default=0.25)
    ap.add_argument("--perf", action="store_true", help="also run perf stat over the window")
    ap.add_argument("--check", action="store_true", help="exit 1 when over the goal")
    ap.add_argument("--floor", action="store_true",
                    help="also measure scripts/steady_floor.c: the same system calls, no work")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"steady: {a.bin} not found; build it with: cargo build --release --target x86_64-unknown-linux-musl")
    hz = os.sysconf("SC_CLK_TCK")
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "collector.toml")
        with open(cfg, "w") as f:
            f.write(f'[collector]\ninterval = {a.interval}\npush_interval = {a.interval}\nstate_dir = "{d}"\n'
                    '[logging]\nlevel = "warn"\n'
                    + ''.join(f'[{t}]\nenabled = false\n' for t in PG_TYPES))
        p = subprocess.Popen([a.bin, "run", "--stdout", "-c", cfg], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        perf = None
        n = 0
        try:
            for _ in p.stdout:
                n += 1
                if n == a.warmup:
                    ns0, (u0, s0), t0 = schedstat_ns(p.pid), ticks(p.pid), time.time()
                    if a.perf and shutil.which("perf"):
                        perf_data = os.path.join(d, "perf.data")
                        perf = subprocess.Popen(
                            ["perf", "record", "-q", "-e", "cpu-clock", "-c", "20000", "-g", "-p", str(p.pid),
                             "-o", perf_data], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                if n == a.warmup + a.cycles:
                    ns1, (u1, s1), t1 = schedstat_ns(p.pid), ticks(p.pid), time.time()
                    break
        finally:
            if perf:
                perf.send_signal(2)
                perf.communicate(timeout=30)
                report = lambda *args: subprocess.run(
                    ["perf", "report", "-i", perf_data, "--stdio", "-g", "none", *args],
                    capture_output=True, text=True).stdout
                by_dso = report("--no-children", "--sort", "dso")
                by_sym = report("--children", "--sort", "sym")
            p.terminate()
            p.wait(timeout=10)
        if n < a.warmup + a.cycles:
            sys.exit(f"steady: the collector stopped after {n} cycles: {p.stderr.read().decode(errors='replace')[-2000:]}")
    per_cycle_ms = (ns1 - ns0) / a.cycles / 1e6
    user_ms = (u1 - u0) * 1000 / hz / a.cycles
    sys_ms = (s1 - s0) * 1000 / hz / a.cycles
    print(f"steady: {a.cycles} cycles of {a.interval} s in {t1 - t0:.0f} s: "
          f"CPU {per_cycle_ms:.3f} ms per cycle (schedstat); "
          f"user {user_ms:.3f} ms, kernel {sys_ms:.3f} ms per cycle (utime/stime, {1000 / hz:.0f} ms ticks); "
          f"goal <= {a.goal_ms} ms")
    if perf:
        # "  73.98%  [kernel.kallsyms]": the share of samples in the kernel and in the binary.
        shares = {}
        for line in by_dso.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith("%") and not line.startswith("#"):
                shares[parts[1]] = float(parts[0].rstrip("%"))
        kernel = sum(v for k, v in shares.items() if k.startswith("[kernel"))
        print(f"perf: {kernel:.0f} % of the CPU time in the kernel ({kernel * per_cycle_ms / 100:.3f} ms per cycle), "
              f"{100 - kernel:.0f} % in the collector ({(100 - kernel) * per_cycle_ms / 100:.3f} ms)")
        # The system calls and /proc generators, with their callees.
        rows = []
        for line in by_sym.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[0].endswith("%") and (
                    parts[3].startswith("__x64_sys_") or parts[3].endswith("_show") or parts[3].startswith("show_")):
                rows.append(f"{parts[3]} {parts[0]}")
        print("perf: " + ", ".join(rows[:12]))
    if a.floor:
        floor_ms = measure_floor(a)
        print(f"floor: {floor_ms:.3f} ms per cycle (scripts/steady_floor.c: the same reads, statfs and "
              f"write, no parsing or JSON); the collector's own work is {per_cycle_ms - floor_ms:.3f} ms")
    if a.check and per_cycle_ms > a.goal_ms:
        sys.exit("steady: over the goal")


def measure_floor(a):
    """CPU per cycle of scripts/steady_floor.c over the same number of cycles."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        sys.exit("steady: --floor needs a C compiler (cc or gcc)")
    here = os.path.dirname(os.path.abspath(__file__))
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("ext4", "xfs", "btrfs", "ext3", "ext2", "zfs", "f2fs", "vfat"):
                mounts.append(fields[4])
    with tempfile.TemporaryDirectory() as d:
        exe = os.path.join(d, "steady_floor")
        subprocess.run([cc, "-O2", "-o", exe, os.path.join(here, "steady_floor.c")], check=True)
        p = subprocess.Popen([exe, str(int(a.interval * 1000)), *mounts], stdout=subprocess.DEVNULL)
        try:
            time.sleep(a.interval * a.warmup)
            ns0 = schedstat_ns(p.pid)
            time.sleep(a.interval * a.cycles)
            ns1 = schedstat_ns(p.pid)
        finally:
            p.terminate()
            p.wait(timeout=10)
    return (ns1 - ns0) / a.cycles / 1e6


main()
