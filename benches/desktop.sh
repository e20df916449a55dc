#!/usr/bin/env bash
# Benchmark of the desktop app against the smallest Tauri v2 app (benches/hello-app), both built,
# packaged and installed in this same run:
#   - the .deb: file size and installed size;
#   - start to a usable window: from starting the installed program to its page having rendered
#     and called back into the app (Twofold: the first refresh of the wizard or dashboard, the
#     smoke report; hello: its `ready` command). Cold (page cache dropped before each start) and
#     warm, medians of several starts, the two apps taking turns;
#   - memory of the idle app: PSS of the app and its WebKit processes after it has sat idle.
# Prints medians and the ratios Twofold / hello. Both packages are removed again at the end.
#
# Usage (root, Debian 12, after installer/install-deps.sh and installer/install-tools.sh):
#   bash benches/desktop.sh [--debug] [--runs N]
# --debug builds unoptimised packages (quick, but sizes and times are not the shipped ones).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

die() { echo "bench-desktop: $*" >&2; exit 1; }
say() { echo "bench-desktop: $*" >&2; }

MODE=release RUNS=7 FLAGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) MODE=debug; FLAGS=(--debug) ;;
    --runs)
      [[ "${2:-}" =~ ^[1-9][0-9]?$ ]] || die "--runs needs a whole number from 1 to 99, not '${2:-}'"
      RUNS=$2; shift ;;
    *) die "unknown option '$1' (use --debug and/or --runs N)" ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || die "run as root: the packages are installed with apt and the page cache is dropped"

# ---- build both packages ------------------------------------------------------------------------
TARGET=$(cargo metadata --format-version 1 --no-deps \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))') \
  || die "cannot find cargo's target directory"
t0=$SECONDS
APP_DEB=$(bash installer/build-deb.sh "${FLAGS[@]}") || die "building Twofold's .deb failed"
APP_BUILD_S=$((SECONDS - t0))
HELLO_OUT="$TARGET/$MODE/bundle/deb"
t0=$SECONDS
# The hello app is outside the workspace; it shares the target directory (and so the compiled
# dependencies it has in common with Twofold) and pins the same versions in its own lock file.
(cd benches/hello-app && CARGO_TARGET_DIR="$TARGET" "$ROOT/ui/node_modules/.bin/tauri" build "${FLAGS[@]}" --bundles deb --ci) >&2 \
  || die "building the hello app's .deb failed"
HELLO_BUILD_S=$((SECONDS - t0))
HELLO_DEB=$(ls "$HELLO_OUT"/tauri-hello_*.deb | head -1)
[ -f "$HELLO_DEB" ] || die "no hello .deb in $HELLO_OUT"

TMP=$(mktemp -d -t twofold-bench-desktop.XXXXXX)
INSTALLED=()
cleanup() {
  for p in "${INSTALLED[@]}"; do dpkg -r "$p" >/dev/null 2>&1; done
  rm -rf "$TMP"
}
trap cleanup EXIT
for deb in "$APP_DEB" "$HELLO_DEB"; do
  pkg=$(dpkg-deb -f "$deb" Package)
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then INSTALLED+=("$pkg"); fi
  apt-get install -y -qq --no-install-recommends --reinstall "$deb" >"$TMP/apt.log" 2>&1 \
    || { tail -n 20 "$TMP/apt.log" >&2; die "installing $deb failed"; }
done
APP_BIN=$(dpkg -L "$(dpkg-deb -f "$APP_DEB" Package)" | grep '^/usr/bin/' | head -1)
HELLO_BIN=$(dpkg -L "$(dpkg-deb -f "$HELLO_DEB" Package)" | grep '^/usr/bin/' | head -1)

# ---- measure, inside one X server and D-Bus session ---------------------------------------------
cat >"$TMP/measure.sh" <<'SH'
set -u
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# One start: program and the file its window writes once usable; prints milliseconds or "fail".
start_once() {
  local which=$1 cold=$2 ready="$TMP/ready" t0 t1 pid
  rm -f "$ready"
  [ "$cold" = 1 ] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
  t0=$(now_ms)
  if [ "$which" = app ]; then
    TWOFOLD_DB="$TMP/idle.db" TWOFOLD_DESKTOP_SMOKE="$ready" TWOFOLD_DESKTOP_SMOKE_LINGER_MS=0 "$APP_BIN" >/dev/null 2>&1 &
  else
    HELLO_READY="$ready" "$HELLO_BIN" >/dev/null 2>&1 &
  fi
  pid=$!
  while [ ! -s "$ready" ] && kill -0 "$pid" 2>/dev/null && [ $(( $(now_ms) - t0 )) -lt 60000 ]; do sleep 0.005; done
  t1=$(now_ms)
  if [ -s "$ready" ]; then echo $((t1 - t0)); else echo fail; fi
  wait "$pid" 2>/dev/null
}
# PSS (KiB) of a process and all its descendants.
pss_tree() {
  local pids=$1 all=$1 kids
  while [ -n "$pids" ]; do
    kids=$(for p in $pids; do cat /proc/$p/task/*/children 2>/dev/null; done | xargs)
    all="$all $kids"; pids=$kids
  done
  for p in $all; do awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup 2>/dev/null; done | awk '{s+=$1} END {print s+0}'
}
idle_pss() {
  local which=$1 pid kib
  if [ "$which" = app ]; then TWOFOLD_DB="$TMP/idle.db" "$APP_BIN" >/dev/null 2>&1 &
  else "$HELLO_BIN" >/dev/null 2>&1 & fi
  pid=$!
  sleep 20
  kib=$(pss_tree "$pid")
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  echo "$kib"
}
# A first start of each warms nothing we count: the inventory file and WebKit's caches exist after.
start_once app 0 >/dev/null; start_once hello 0 >/dev/null
for kind in cold warm; do
  c=0; [ "$kind" = cold ] && c=1
  for i in $(seq 1 "$RUNS"); do
    echo "$kind app $(start_once app $c)"
    echo "$kind hello $(start_once hello $c)"
  done
done
echo "idle app $(idle_pss app)"
echo "idle hello $(idle_pss hello)"
SH
export TMP RUNS APP_BIN HELLO_BIN
say "measuring ($RUNS cold and $RUNS warm starts of each, then idle memory)"
timeout --kill-after=10 1200 xvfb-run -a -s "-screen 0 1280x900x24 -nolisten tcp" \
  dbus-run-session -- bash "$TMP/measure.sh" >"$TMP/results.txt" 2>"$TMP/measure.log" \
  || { tail -n 20 "$TMP/measure.log" >&2; die "the measuring run failed"; }
grep -q fail "$TMP/results.txt" && { cat "$TMP/results.txt" >&2; die "a start never reached a usable window"; }

# ---- report -------------------------------------------------------------------------------------
node - "$TMP/results.txt" "$APP_DEB" "$HELLO_DEB" "$MODE" "$APP_BUILD_S" "$HELLO_BUILD_S" <<'JS'
const fs = require("fs");
const { execFileSync } = require("child_process");
const [file, appDeb, helloDeb, mode, appBuild, helloBuild] = process.argv.slice(2);
const rows = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => l.split(" "));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const pick = (kind, who) => rows.filter((r) => r[0] === kind && r[1] === who).map((r) => Number(r[2]));
const installed = (deb) => Number(execFileSync("dpkg-deb", ["-f", deb, "Installed-Size"], { encoding: "utf8" }).trim()) / 1024;
const size = (deb) => fs.statSync(deb).size / 1048576;
const line = (what, a, h, unit, digits = 1) =>
  console.log(`${what.padEnd(44)} ${a.toFixed(digits).padStart(9)} ${h.toFixed(digits).padStart(9)}  ${unit.padEnd(4)} ${(a / h).toFixed(2).padStart(6)}`);
console.log(`desktop benchmark (${mode} build; packages built in ${appBuild} s and ${helloBuild} s)`);
console.log(`${"".padEnd(44)} ${"Twofold".padStart(9)} ${"hello".padStart(9)}  unit  ratio`);
line(".deb file", size(appDeb), size(helloDeb), "MiB");
line("installed size", installed(appDeb), installed(helloDeb), "MiB");
for (const kind of ["cold", "warm"]) {
  const a = pick(kind, "app"), h = pick(kind, "hello");
  line(`start to usable window, ${kind} (median of ${a.length})`, median(a), median(h), "ms", 0);
}
line("idle memory (PSS, app + WebKit)", pick("idle", "app")[0] / 1024, pick("idle", "hello")[0] / 1024, "MiB");
JS
