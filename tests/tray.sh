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
    # Up to 30 s: it registers in under a second here, but once did not within 5 s while the
    # machine's two cores were busy compiling.
    for _ in $(seq 1 300); do
        # Ready once the tray has registered itself as the host that shows the icons.
        watcher --method org.freedesktop.DBus.Properties.Get org.kde.StatusNotifierWatcher \
            IsStatusNotifierHostRegistered 2>/dev/null | grep -q true && return 0
        kill -0 "$TRAY_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "the standalone tray did not start within 30 s; its output ($1):" >&2
    tail -n 20 "$1" >&2
    return 1
}
