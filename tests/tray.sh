# Sourced by the desktop tests' scripts inside their X server and D-Bus session (from the
# repository root): a standalone tray along the top of the screen, with its own
# StatusNotifierWatcher, so the app's tray icon has somewhere to go.
#   start_tray LOG    starts it, waits until it shows icons, sets TRAY_PID
#   watcher ARGS...   gdbus call on the watcher

watcher() {
    gdbus call --session --dest org.kde.StatusNotifierWatcher --object-path /StatusNotifierWatcher "$@"
}

start_tray() {
    gtk-sni-tray-standalone --top --end --watcher --size 32 --color '#303030' >"$1" 2>&1 &
    TRAY_PID=$!
    for _ in $(seq 1 50); do
        # Ready once the tray has registered itself as the host that shows the icons.
        watcher --method org.freedesktop.DBus.Properties.Get org.kde.StatusNotifierWatcher \
            IsStatusNotifierHostRegistered 2>/dev/null | grep -q true && return 0
        sleep 0.1
    done
    echo "the standalone tray did not start; see $1" >&2
    return 1
}
