# %postun of pganalytics-collector (.rpm); $1 = 0 on erase, 1 on upgrade.
# On upgrade: restart the service if it was running (the new binary is in place).
# On erase: rpm has no "purge": /var/lib/pganalytics (collector id, token, client
# certificate, log offsets) and the user `pganalytics` stay, so a reinstall keeps its
# registration; a modified config is kept as collector.toml.rpmsave. Remove them by hand:
# `rm -rf /var/lib/pganalytics; userdel pganalytics`.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart pganalytics-collector.service >/dev/null 2>&1 || :
    fi
fi
exit 0
