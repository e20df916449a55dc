#!/usr/bin/env bash
# The main job on the built-in lab: installs what is missing, builds Twofold, brings the four-node
# lab up, boots the demo guest and live-migrates it back and forth, then prints what happened.
# Run as root on Debian 12: bash installer/demo.sh [--rounds N] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
bash installer/install-deps.sh
cargo build --release --locked --bin twofold
exec ./target/release/twofold demo "$@"
