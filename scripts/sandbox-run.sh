#!/bin/sh
# Runs a command the way packaging/pganalytics-collector.service runs the collector, on a
# machine where systemd is not PID 1 (CI, containers), as root:
#   scripts/sandbox-run.sh /usr/bin/pganalytics-collector once
# It approximates, in a private mount namespace (unshare -m):
#   ProtectSystem=strict + ReadWritePaths=/var/lib/pganalytics: every mount read-only but /proc,
#     /sys, /dev and the state directory; ProtectHome=read-only comes with it;
#   ProtectKernelTunables: /proc/sys and /sys read-only;
#   ProtectProc=invisible: /proc remounted with hidepid=invisible;
#   PrivateDevices: a tmpfs /dev with null, zero, random, urandom only;
#   User=/Group= pganalytics with its supplementary groups (adm), NoNewPrivileges, empty
#   capability bounding and inheritable sets, UMask=0077, and MemoryDenyWriteExecute through
#   prctl(PR_SET_MDWE) (Linux 6.3+; kept across execve).
# Not approximated: the seccomp filters (SystemCallFilter, RestrictAddressFamilies,
# RestrictNamespaces, …; README.md says how the syscall list was checked), MemoryMax, and
# the ProtectClock/KernelModules/KernelLogs/Hostname denials, which the collector never needs.
# Needs util-linux (unshare, setpriv) and /usr/bin/python3 (for the prctl). The user
# pganalytics and /var/lib/pganalytics must exist (the packages create them).
set -eu
if [ "${PGA_SANDBOXED:-}" != 1 ]; then
  exec env PGA_SANDBOXED=1 unshare -m "$0" "$@"
fi
[ "$#" -gt 0 ] || { echo "usage: scripts/sandbox-run.sh COMMAND [ARG…]" >&2; exit 2; }

mount -n --make-rprivate /
# ReadWritePaths: its own mount, so the read-only remount below leaves it writable.
mount -n --bind /var/lib/pganalytics /var/lib/pganalytics
# ProtectSystem=strict: every other mount read-only, the API file systems excepted.
awk '{print $5}' /proc/self/mountinfo | while read -r m; do
  case "$m" in
  /proc | /proc/* | /sys | /sys/* | /dev | /dev/* | /var/lib/pganalytics) ;;
  *) mount -n -o remount,bind,ro "$m" 2>/dev/null || true ;;
  esac
done
# ProtectKernelTunables.
mount -n --bind /proc/sys /proc/sys && mount -n -o remount,bind,ro /proc/sys
mount -n -o remount,bind,ro /sys
# ProtectProc=invisible.
mount -n -t proc -o hidepid=invisible proc /proc
# PrivateDevices.
mount -n -t tmpfs -o mode=0755,nosuid,noexec tmpfs /dev
mknod -m 0666 /dev/null c 1 3
mknod -m 0666 /dev/zero c 1 5
mknod -m 0666 /dev/random c 1 8
mknod -m 0666 /dev/urandom c 1 9
umask 0077
exec setpriv --reuid pganalytics --regid pganalytics --init-groups --no-new-privs \
  --bounding-set=-all --inh-caps=-all \
  /usr/bin/python3 -c 'import ctypes, os, sys
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
if ctypes.CDLL(None).prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    sys.exit("sandbox-run.sh: prctl(PR_SET_MDWE) failed: the kernel is older than 6.3")
os.execv(sys.argv[1], sys.argv[1:])' "$@"
