# %post of pganalytics-collector (.rpm); $1 = 1 on install, 2 on upgrade.
# The state directory (0700, owned by the collector's user), then systemd: on a first
# install `systemctl preset` applies the distribution's policy (usually: disabled; enable it
# with `systemctl enable --now pganalytics-collector` after registering). Works without
# systemd as PID 1 (containers, CI): preset only writes symlinks, daemon-reload runs only
# when /run/systemd/system exists.
if [ ! -d /var/lib/pganalytics ]; then
    install -d -m 0700 -o pganalytics -g pganalytics /var/lib/pganalytics || exit 1
fi
if [ "$1" -eq 1 ] && command -v systemctl >/dev/null; then
    systemctl --no-reload preset pganalytics-collector.service >/dev/null 2>&1 || :
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
