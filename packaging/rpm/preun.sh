# %preun of pganalytics-collector (.rpm); $1 = 0 on erase, 1 on upgrade.
# On erase: stop the service (when systemd runs) and disable it (works offline too).
if [ "$1" -eq 0 ] && command -v systemctl >/dev/null; then
    if [ -d /run/systemd/system ]; then
        systemctl --no-reload disable --now pganalytics-collector.service >/dev/null 2>&1 || :
    else
        systemctl --no-reload disable pganalytics-collector.service >/dev/null 2>&1 || :
    fi
fi
exit 0
