#!/usr/bin/env bash
# Builds the desktop app's Debian package with the Tauri bundler (deb only) and prints its path.
#
#   installer/build-deb.sh            the release package (optimised; what people install)
#   installer/build-deb.sh --debug    an unoptimised package, quick to build (CI's install test)
#
# Needs what installer/install-deps.sh and installer/install-tools.sh install (the Tauri CLI comes
# with the front end's npm packages). The package lands in target/{release,debug}/bundle/deb/.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=release
flags=()
case "${1:-}" in
  "") ;;
  --debug) mode=debug; flags=(--debug) ;;
  *)
    echo "build-deb: unknown option '$1': use --debug for a quick unoptimised package, or nothing for the release one" >&2
    exit 2
    ;;
esac
[ -x ui/node_modules/.bin/tauri ] || {
  echo "build-deb: the Tauri CLI is missing: run installer/install-tools.sh first" >&2
  exit 1
}

(cd ui && npm run build) >&2
target=$(cargo metadata --format-version 1 --no-deps \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
out="$target/$mode/bundle/deb"
rm -rf "$out"
(cd src-tauri && ../ui/node_modules/.bin/tauri build "${flags[@]}" --bundles deb --ci) >&2
deb=$(ls "$out"/*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "build-deb: the bundler made no .deb in $out" >&2; exit 1; }
echo "$deb"
