#!/usr/bin/env bash
# Desktop smoke test of the installed package: build the app's .deb (installer/build-deb.sh
# --debug), install it with apt, seed a throwaway inventory with two nodes and a VM, start the
# installed /usr/bin/twofold-desktop under Xvfb (with a D-Bus session and a standalone tray), and
# check that the page it rendered lists the seeded nodes and that its tray icon registered with the
# tray, menu and all. The app reports what it rendered and exits by itself when
# TWOFOLD_DESKTOP_SMOKE is set (src-tauri/src/smoke.rs); it exits 2 on its own after 60 s if the
# page never reports. The app's log file must appear in its data folder ($XDG_DATA_HOME/twofold/logs)
# with its start line. A screenshot is saved to artifacts/desktop-main.png. The package is removed
# again at the end unless it was installed before.
#
# Usage (root): bash tests/desktop-smoke.sh

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

fail() {
    echo "desktop-smoke: FAIL: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

step() { echo "desktop-smoke: $*" >&2; }

# ---- build and install --------------------------------------------------------------------------
step "building the seeding tool"
cargo build --workspace --bins --examples >&2 || fail "cargo build failed"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))') \
    || fail "cannot find cargo's target directory"

step "building the .deb"
DEB=$(bash installer/build-deb.sh --debug) || fail "installer/build-deb.sh --debug failed"
step "package: $DEB ($(du -h "$DEB" | cut -f1))"
PKG=$(dpkg-deb -f "$DEB" Package)
WAS_INSTALLED=0
dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q 'install ok installed' && WAS_INSTALLED=1
TMP=$(mktemp -d -t twofold-desktop-smoke.XXXXXX)
cleanup() {
    [ "$WAS_INSTALLED" = 0 ] && dpkg -r "$PKG" >/dev/null 2>&1
    rm -rf "$TMP"
}
trap cleanup EXIT
step "installing $PKG"
apt-get install -y -qq --no-install-recommends "$DEB" >"$TMP/apt.log" 2>&1 \
    || { tail -n 20 "$TMP/apt.log" >&2; fail "apt-get install $DEB failed"; }
APP=$(dpkg -L "$PKG" | grep -E '^/usr/bin/' | head -1)
[ -x "$APP" ] || fail "the package installs no program under /usr/bin"
dpkg -L "$PKG" | grep -q '\.desktop$' || fail "the package has no menu entry (.desktop file)"
step "installed $APP"

# Every library the program links against comes from a package the .deb depends on, directly or
# through those packages' own dependencies: the package installs on a machine that lacks them.
DEPENDS=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed -E 's/\(.*\)//; s/\|.*//; s/ //g' | grep -v '^$')
CLOSURE=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $DEPENDS 2>/dev/null | grep -v '^ ' | sed 's/:amd64$//' | sort -u)
for lib in $(readelf -d "$APP" | sed -nE 's/.*NEEDED.*\[(.*)\]/\1/p'); do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ {print $NF; exit}')
    [ -n "$path" ] || fail "$APP needs $lib, which is not installed"
    owner=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
    [ -n "$owner" ] || owner=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
    echo "$CLOSURE" | grep -qx "$owner" \
        || fail "$APP needs $lib from $owner, which the package does not depend on (bundle.linux.deb.depends in src-tauri/tauri.conf.json)"
done
step "depends on: $(echo $DEPENDS | tr ' ' ',') (every linked library covered)"

# ---- fixture ------------------------------------------------------------------------------------
DB="$TMP/twofold.db"
REPORT="$TMP/report.json"

step "seeding $DB"
"$TARGET_DIR/debug/examples/seed-inventory" "$DB" >&2 || fail "seeding the inventory failed"

# ---- run ----------------------------------------------------------------------------------------
# Xvfb has no GPU. Here (Debian 12, WebKitGTK 2.4x, as root) the window renders without these, but
# on other runners the accelerated compositor or the DMA-BUF renderer can leave a blank window;
# they force the plain software path and cost nothing.
export WEBKIT_DISABLE_COMPOSITING_MODE=1
export WEBKIT_DISABLE_DMABUF_RENDERER=1
export LIBGL_ALWAYS_SOFTWARE=1
export TWOFOLD_DB="$DB" TWOFOLD_DESKTOP_SMOKE="$REPORT"
# The app's data folder, where its log files go ($XDG_DATA_HOME/twofold/logs).
export XDG_DATA_HOME="$TMP/data"
# Keep the window up for a moment after the report so the screenshot shows it.
# Long enough for the tray icon to register (several seconds after the window) and be read.
export TWOFOLD_DESKTOP_SMOKE_LINGER_MS=20000

# The screenshot comes from Xvfb's own framebuffer file (-fbdir, XWD format), so no screenshot tool
# is needed. Runs inside the X server and D-Bus session. A file, not an exported function:
# xvfb-run is a /bin/sh script, and dash drops exported functions.
mkdir -p "$TMP/fb"
cat >"$TMP/run-app.sh" <<'SH'
. tests/tray.sh
start_tray "$FBDIR/../tray.log" || exit 1
"$APP" &
pid=$!
for _ in $(seq 1 900); do
    [ -s "$REPORT" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ -s "$REPORT" ]; then
    sleep 1
    cp "$FBDIR/Xvfb_screen0" "$FBDIR/shot.xwd" 2>/dev/null
    # The tray item the app registered (it can take several seconds after the window), and the
    # labels of its menu (com.canonical.dbusmenu).
    for _ in $(seq 1 60); do
        bus=$(watcher --method org.freedesktop.DBus.Properties.Get org.kde.StatusNotifierWatcher \
            RegisteredStatusNotifierItems | grep -oE "'[^'/]+" | head -1 | tr -d "'")
        [ -n "$bus" ] && break
        sleep 0.25
    done
    if [ -n "$bus" ]; then
        path=$(gdbus introspect --session --dest "$bus" --object-path / --recurse \
            | awk '/^ *node \// {p=$2} /interface org.kde.StatusNotifierItem \{/ {print p; exit}')
        menu=$(gdbus call --session --dest "$bus" --object-path "$path" --method \
            org.freedesktop.DBus.Properties.Get org.kde.StatusNotifierItem Menu | grep -oE "'/[^']*'" | tr -d "'")
        gdbus call --session --dest "$bus" --object-path "$menu" --method com.canonical.dbusmenu.GetLayout \
            -- 0 -1 '[]' >"$FBDIR/../tray-menu.txt" 2>&1
    fi
fi
wait "$pid"
rc=$?
kill "$TRAY_PID" 2>/dev/null
exit $rc
SH
export APP REPORT FBDIR="$TMP/fb"

step "running the app under Xvfb"
START=$(date +%s)
timeout --kill-after=10 120 \
    xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp -fbdir $TMP/fb" \
    dbus-run-session -- bash "$TMP/run-app.sh" >"$TMP/app.log" 2>&1
RC=$?
step "app exited with $RC after $(($(date +%s) - START)) s"

# Screenshot: the XWD frame (32-bit pixels) to a PNG cropped to the window (the non-black part).
SHOT="$ROOT/artifacts/desktop-main.png"
if [ -s "$TMP/fb/shot.xwd" ] && mkdir -p artifacts; then
    node - "$TMP/fb/shot.xwd" "$SHOT" <<'JS' && step "screenshot: $SHOT" || step "no screenshot (ignored)"
const fs = require("fs"), zlib = require("zlib");
const d = fs.readFileSync(process.argv[2]);
const f = (i) => d.readUInt32BE(i * 4);
const [headerSize, width, height, byteOrder, bpp, bpl, ncolors] = [f(0), f(4), f(5), f(7), f(11), f(12), f(19)];
if (bpp !== 32) throw new Error(`unexpected ${bpp} bits per pixel`);
const px = headerSize + ncolors * 12;
const at = (x, y) => (byteOrder === 0 ? d.readUInt32LE : d.readUInt32BE).call(d, px + y * bpl + x * 4) & 0xffffff;
let w = 0, h = 0;
for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if (at(x, y)) { w = Math.max(w, x + 1); h = Math.max(h, y + 1); }
if (!w) throw new Error("the screen is black");
const raw = Buffer.alloc((w * 3 + 1) * h);
for (let y = 0, o = 0; y < h; y++) {
  raw[o++] = 0;
  for (let x = 0; x < w; x++, o += 3) { const v = at(x, y); raw[o] = v >> 16; raw[o + 1] = (v >> 8) & 255; raw[o + 2] = v & 255; }
}
const crcTable = Array.from({ length: 256 }, (_, n) => { for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1; return n >>> 0; });
const crc = (b) => { let c = ~0; for (const x of b) c = crcTable[(c ^ x) & 255] ^ (c >>> 8); return ~c >>> 0; };
const chunk = (type, data) => {
  const td = Buffer.concat([Buffer.from(type), data]), len = Buffer.alloc(4), sum = Buffer.alloc(4);
  len.writeUInt32BE(data.length); sum.writeUInt32BE(crc(td));
  return Buffer.concat([len, td, sum]);
};
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
fs.writeFileSync(process.argv[3], Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  chunk("IHDR", ihdr), chunk("IDAT", zlib.deflateSync(raw)), chunk("IEND", Buffer.alloc(0)),
]));
JS
fi

if [ "$RC" -ne 0 ] || [ ! -s "$REPORT" ]; then
    echo "---- app output (last 40 lines) ----" >&2
    tail -n 40 "$TMP/app.log" >&2
    [ -s "$REPORT" ] && { echo "---- report ----" >&2; cat "$REPORT" >&2; }
    case "$RC" in
        124 | 137) fail "the app did not exit within 120 s" ;;
        2) fail "the window never reported a render (60 s safety timeout)" ;;
        *) fail "the app exited with $RC" ;;
    esac
fi

# ---- check --------------------------------------------------------------------------------------
step "report: $(tr -d '\n ' <"$REPORT")"
node - "$REPORT" <<'JS' || fail "the window did not list what the inventory holds"
const r = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
const problems = [];
if (r.error) problems.push(`error banner: [${r.error.code}] ${r.error.message}`);
for (const name of ["smoke-host1", "smoke-stor1"]) {
  if (!(r.nodeNames || []).includes(name)) problems.push(`node ${name} not listed`);
}
if (r.nodeRows !== 2) problems.push(`expected 2 node rows, got ${r.nodeRows}`);
if (r.vmRows !== 1) problems.push(`expected 1 VM row, got ${r.vmRows}`);
for (const p of problems) console.error(`desktop-smoke: ${p}`);
process.exit(problems.length ? 1 : 0);
JS

# ---- the tray ----------------------------------------------------------------------------------
[ -s "$TMP/tray-menu.txt" ] || fail "the installed app registered no tray icon (or its menu could not be read)"
for label in "Open dashboard" "Open logs" "Quit"; do
    grep -q "$label" "$TMP/tray-menu.txt" || fail "the tray menu has no '$label': $(cat "$TMP/tray-menu.txt")"
done
step "tray menu: $(grep -oE "'label': <'[^']+'>" "$TMP/tray-menu.txt" | sed -E "s/'label': <'([^']+)'>/\1/" | paste -sd '|')"

# ---- the log --------------------------------------------------------------------------------------
LOGS="$XDG_DATA_HOME/twofold/logs"
LOG_FILE=$(ls "$LOGS"/twofold-desktop.*.log 2>/dev/null | head -1)
[ -s "$LOG_FILE" ] || fail "the app wrote no log file in $LOGS"
grep -q 'INFO .*Twofold desktop starting' "$LOG_FILE" \
    || fail "the log file $LOG_FILE lacks the start line: $(head -c 2000 "$LOG_FILE")"
step "log file: $LOG_FILE ($(wc -l <"$LOG_FILE") lines)"

echo "1 passed, 0 failed"
