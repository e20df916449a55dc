#!/usr/bin/env bash
# End-to-end test of the desktop app: the real app under Xvfb with a D-Bus session, driven by
# tauri-driver + WebKitWebDriver, walks the setup wizard against the built-in lab (bare nodes).
# The tests are ui/e2e/*.e2e.mjs (Node's test runner, selenium-webdriver). Screenshots of every
# step go to artifacts/screenshots/, the app's log files to artifacts/desktop-e2e-logs/. Leaves no
# app, driver, X server or lab behind.
#
# Usage (root): bash tests/desktop-e2e.sh

set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

fail() { echo "desktop-e2e: FAIL: $*" >&2; echo "0 passed, 1 failed"; exit 1; }
say() { echo "desktop-e2e: $*" >&2; }

command -v tauri-driver >/dev/null || fail "tauri-driver is missing: run installer/install-tools.sh"
[ -x /usr/bin/WebKitWebDriver ] || fail "WebKitWebDriver is missing: apt-get install webkit2gtk-driver"

say "building the front end and the app"
(cd ui && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build) >&2 || fail "front-end build failed"
cargo build --workspace --bins --examples >&2 || fail "cargo build failed"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
export TWOFOLD_E2E_APP="$TARGET_DIR/debug/twofold-desktop" TWOFOLD_E2E_CLI="$TARGET_DIR/debug/twofold"
export TWOFOLD_E2E_SHOTS="$ROOT/artifacts/screenshots"
rm -rf "$TWOFOLD_E2E_SHOTS"; mkdir -p "$TWOFOLD_E2E_SHOTS"

TMP=$(mktemp -d -t twofold-e2e.XXXXXX)
cleanup() {
    # The app's own log, kept with the screenshots.
    [ -d "$TMP/data/twofold/logs" ] && rm -rf "$ROOT/artifacts/desktop-e2e-logs" \
        && cp -r "$TMP/data/twofold/logs" "$ROOT/artifacts/desktop-e2e-logs"
    pkill -f "$TWOFOLD_E2E_APP" 2>/dev/null
    "$TWOFOLD_E2E_CLI" lab down >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
# Start from no lab at all: the wizard brings it up itself.
"$TWOFOLD_E2E_CLI" lab down >/dev/null 2>&1

# The app's inventory, saved wizard progress and SSH key: all throwaway. So are its data folder
# (its logs go to $XDG_DATA_HOME/twofold/logs) and the desktop's settings, in which the program
# that opens folders (for the tray's "Open logs") notes the folder it was given.
export TWOFOLD_DB="$TMP/twofold.db"
export XDG_DATA_HOME="$TMP/data" XDG_CONFIG_HOME="$TMP/config" TWOFOLD_E2E_OPENED="$TMP/opened"
mkdir -p "$XDG_DATA_HOME/applications" "$XDG_CONFIG_HOME"
printf '#!/bin/sh\nprintf "%%s\\n" "$1" >"%s"\n' "$TWOFOLD_E2E_OPENED" >"$TMP/open-folder"
chmod +x "$TMP/open-folder"
cat >"$XDG_DATA_HOME/applications/twofold-e2e-folders.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Name=Folders (end-to-end test)
Exec=$TMP/open-folder %f
MimeType=inode/directory;
NoDisplay=true
DESKTOP
printf '[Default Applications]\ninode/directory=twofold-e2e-folders.desktop\n' >"$XDG_CONFIG_HOME/mimeapps.list"
# Software GL only. Not WEBKIT_DISABLE_COMPOSITING_MODE or WEBKIT_DISABLE_DMABUF_RENDERER (which the
# smoke test sets): with either, WebKitWebDriver's screenshot command never answers.
export LIBGL_ALWAYS_SOFTWARE=1
export TWOFOLD_STATUS_INTERVAL_MS=2000

cat >"$TMP/inner.sh" <<'SH'
. tests/tray.sh
start_tray "$TMP/tray.log" || exit 1
tauri-driver --port 4444 --native-driver /usr/bin/WebKitWebDriver >"$TMP/driver.log" 2>&1 &
drv=$!
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/4444) 2>/dev/null && break; sleep 0.1; done
node --test --test-reporter=tap --test-concurrency=1 ui/e2e/*.e2e.mjs >"$TMP/tap.txt" 2>&1
rc=$?
kill "$drv" "$TRAY_PID" 2>/dev/null; wait "$drv" "$TRAY_PID" 2>/dev/null
exit $rc
SH
export TMP
say "running the wizard end to end (about 5 minutes)"
START=$(date +%s)
timeout --kill-after=15 1500 xvfb-run -a -s "-screen 0 1280x900x24 -nolisten tcp" \
    dbus-run-session -- bash "$TMP/inner.sh"
RC=$?
cat "$TMP/tap.txt"
say "finished with $RC after $(($(date +%s) - START)) s; screenshots in $TWOFOLD_E2E_SHOTS"
[ "$RC" -ne 0 ] && { echo "---- tauri-driver log (last 30 lines) ----"; tail -n 30 "$TMP/driver.log"; } >&2
p=$(grep -aE '^# pass ' "$TMP/tap.txt" | awk '{print $3}'); f=$(grep -aE '^# fail ' "$TMP/tap.txt" | awk '{print $3}')
p=${p:-0}; f=${f:-0}
[ "$RC" -eq 0 ] && [ "$p" = 0 ] && { echo "desktop-e2e: no test ran" >&2; RC=1; }
[ "$RC" -ne 0 ] && [ "$f" = 0 ] && f=1
echo "$p passed, $f failed"
[ "$RC" -eq 0 ]
