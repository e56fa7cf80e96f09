# %pre of pganalytics-collector (.rpm); $1 = 1 on install, 2 on upgrade.
# Creates the system user and group before the files are laid down, so that rpm can give
# /etc/pganalytics/collector.toml to root:pganalytics 0640. Does nothing when they exist
# (upgrade, reinstall, a user created by hand).
if ! getent group pganalytics >/dev/null; then
    groupadd --system pganalytics || exit 1
fi
if ! getent passwd pganalytics >/dev/null; then
    nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/sbin/nologin
    useradd --system --gid pganalytics --home-dir /var/lib/pganalytics --no-create-home \
        --shell "$nologin" --comment "pgAnalytics collector" pganalytics || exit 1
    # PostgreSQL logs readable by the group adm (Debian-style layouts). PGDG/RHEL keep the logs
    # in the data directory, postgres-owned: see README.md (log_file_mode and group).
    if getent group adm >/dev/null; then
        usermod -a -G adm pganalytics || :
    fi
fi
exit 0
