#!/usr/bin/env bash
# The static aarch64 binary, built on an x86_64 Debian host without Docker, and run under
# qemu user emulation:
#   scripts/aarch64.sh
# Needs: `rustup target add aarch64-unknown-linux-musl`,
#        `apt-get install gcc-aarch64-linux-gnu qemu-user-static` (.ci/run installs them).
# Debian's cross gcc is the linker (Rust ships musl's crt and libc for the target, so the
# glibc cross toolchain only drives the link) and compiles ring's C and assembly.
# Checks: `file` says static aarch64, the size is at most 3 MiB, and
# `qemu-aarch64-static BIN once` prints a valid envelope with a sysstat element.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-unknown-linux-musl
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar
BIN=${CARGO_TARGET_DIR:-target}/$TARGET/release/pganalytics-collector
MAX_BYTES=$((3 * 1024 * 1024))

cargo build --release --target "$TARGET"
file "$BIN"
file "$BIN" | grep -q 'ARM aarch64' || { echo "aarch64.sh: $BIN is not an aarch64 binary" >&2; exit 1; }
file "$BIN" | grep -q 'static' || { echo "aarch64.sh: $BIN is not static" >&2; exit 1; }
bytes=$(stat -c %s "$BIN")
echo "size: $bytes bytes ($(awk "BEGIN{printf \"%.2f\", $bytes/1048576}") MiB; goal <= 3 MiB)"
[ "$bytes" -le "$MAX_BYTES" ] || { echo "aarch64.sh: over the 3 MiB goal" >&2; exit 1; }

# `once` needs no config; PostgreSQL may be absent (a warning on stderr, an error in
# collector_health), the host part must be there. Exit 0 = at least one plugin produced.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
qemu-aarch64-static "$BIN" once --sample-ms 100 >"$out"
python3 - "$out" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))
types = [m["type"] for m in e["metrics"]]
assert "sysstat" in types, f"no sysstat element: {types}"
assert e["metrics_count"] == len(e["metrics"]), "metrics_count differs from the elements"
s = next(m for m in e["metrics"] if m["type"] == "sysstat")
assert s["cpu"]["cores"] >= 1 and s["memory"], "sysstat without cpu cores or memory"
print("aarch64 once under qemu:", e["metrics_count"], "metrics:", types,
      "| cores:", s["cpu"]["cores"])
PY
