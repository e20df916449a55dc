#!/usr/bin/env bash
# Installs the build-side tools Twofold needs beyond Debian packages: the front end's npm
# packages (from the committed lock file) and cargo components. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
# clippy and rustfmt come with the toolchain on the machines Twofold is built on; add them only
# where they are missing (that needs the toolchain's own download server).
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
if [ -f ui/package-lock.json ]; then
  if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
    (cd ui && npm ci --no-audit --no-fund)
  fi
  (cd ui && npm run build)
fi
# The WebDriver bridge the desktop end-to-end test drives the real app through.
if ! command -v tauri-driver >/dev/null 2>&1; then
  cargo install tauri-driver --locked --version 2.1.0
fi
