#!/usr/bin/env bash
# Builds the static musl release binary once and both packages from that same file:
#   scripts/package.sh [TARGET]      TARGET: x86_64-unknown-linux-musl (default) or
#                                    aarch64-unknown-linux-musl (needs gcc-aarch64-linux-gnu)
# Packages land in $CARGO_TARGET_DIR/packages/ (default target/packages/): the .deb by
# cargo-deb (`--no-build`: it packages the binary built here), the .rpm by cargo-generate-rpm
# (no automatic library requirements: the binary is static; gzip payload so that rpm < 4.14
# reads it too). Prints the sizes of the binary and both packages, and fails when the binary
# is not static or exceeds 3 MiB.
# Needs: cargo-deb, cargo-generate-rpm (`cargo install cargo-deb cargo-generate-rpm --locked`),
# musl-tools (ring's C code needs a musl C compiler) for x86_64. .ci/run installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=${1:-x86_64-unknown-linux-musl}
case "$TARGET" in
x86_64-unknown-linux-musl) ;;
aarch64-unknown-linux-musl)
  # Debian's cross gcc links the static musl binary (Rust ships musl's crt and libc) and
  # compiles ring's C and assembly.
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc
  export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
  export AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar
  ;;
*) echo "package.sh: unsupported target $TARGET (x86_64-unknown-linux-musl or aarch64-unknown-linux-musl)" >&2; exit 2 ;;
esac
for tool in cargo-deb cargo-generate-rpm; do
  command -v "$tool" >/dev/null || { echo "package.sh: $tool is missing: cargo install $tool --locked" >&2; exit 2; }
done

TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT=$TARGET_DIR/packages
BIN=$TARGET_DIR/$TARGET/release/pganalytics-collector
MAX_BYTES=$((3 * 1024 * 1024))

cargo build --release --target "$TARGET"
file "$BIN" | grep -q 'static' || { file "$BIN"; echo "package.sh: $BIN is not a static binary" >&2; exit 1; }

mkdir -p "$OUT"
# The profile already strips (Cargo.toml [profile.release] strip = true).
deb=$(cargo deb --target "$TARGET" --no-build --no-strip --output "$OUT/" | tail -n 1)
cargo generate-rpm --target "$TARGET" --payload-compress gzip --output "$OUT/"
rpm_arch=${TARGET%%-*}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
rpm=$OUT/pganalytics-collector-$version-1.$rpm_arch.rpm
[ -f "$deb" ] || { echo "package.sh: no .deb at $deb" >&2; exit 1; }
[ -f "$rpm" ] || { echo "package.sh: no .rpm at $rpm" >&2; exit 1; }

mib() { awk "BEGIN{printf \"%.2f MiB\", $1/1048576}"; }
echo
echo "sizes ($TARGET):"
for pair in "binary:$BIN" "deb:$deb" "rpm:$rpm"; do
  f=${pair#*:}
  b=$(stat -c %s "$f")
  printf '  %-6s %9d bytes  %s  %s\n' "${pair%%:*}" "$b" "$(mib "$b")" "$f"
done
bin_bytes=$(stat -c %s "$BIN")
if [ "$bin_bytes" -gt "$MAX_BYTES" ]; then
  echo "package.sh: the binary is $bin_bytes bytes, over the 3 MiB goal" >&2
  exit 1
fi
# For callers (.ci/run): where the packages are.
echo "deb: $deb"
echo "rpm: $rpm"
