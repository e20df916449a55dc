#!/usr/bin/env bash
# Runs every Twofold test on this machine: formatting and lints, unit tests (libvirt test driver),
# the lab integration tests (real libvirtd, QEMU, GlusterFS, sshd in four namespaced nodes),
# the front end's unit tests, the desktop app's end-to-end test (the real window under Xvfb, driven
# through WebDriver, setting the bare lab up) and the installed .deb's smoke test.
# Installs what is missing first. Run as root on Debian 12: bash installer/test.sh
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOG_DIR=${TWOFOLD_TEST_LOGS:-$ROOT/artifacts/test-logs}
mkdir -p "$LOG_DIR"

bash installer/install-deps.sh || exit 1
bash installer/install-tools.sh || exit 1

passed=0
failed=0
failures=()

# Leave no lab behind, whatever happens.
cleanup() { ./target/debug/twofold lab down >/dev/null 2>&1 || true; }
trap cleanup EXIT

# Run a step; count its tests from the runner's own summary lines.
step() {
  local name=$1; shift
  echo "=== $name"
  local log="$LOG_DIR/$name.log"
  local t0=$SECONDS
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local p f counted
  # Only the runners' summary lines: cargo's "test result:", Vitest's "Tests  N passed",
  # and the plain "N passed, M failed".
  counted=$(sed -E 's/\x1b\[[0-9;]*m//g' "$log" | grep -aE '^test result:|^ *Tests +[0-9]|^[0-9]+ passed, [0-9]+ failed' || true)
  p=$(echo "$counted" | grep -aoE '([0-9]+) passed' | awk '{s+=$1} END {print s+0}')
  f=$(echo "$counted" | grep -aoE '([0-9]+) failed' | awk '{s+=$1} END {print s+0}')
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" != 0 ]; then failures+=("$name"); fi
  echo "=== $name: exit $rc ($p passed, $f failed) in $((SECONDS - t0)) s"
}

step fmt cargo fmt --all -- --check
step build cargo build --workspace --all-targets --locked
step clippy cargo clippy --workspace --all-targets --locked -- -D warnings
step unit cargo test --workspace --lib --bins --test cli --test shutdown --locked
step lab cargo test --locked --test lab
step ui bash -c 'cd ui && npm test'
step e2e bash tests/desktop-e2e.sh
step desktop bash tests/desktop-smoke.sh

echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "failed steps: ${failures[*]} (logs in $LOG_DIR)"
fi
echo "$passed passed, $failed failed"
[ ${#failures[@]} -eq 0 ] && [ "$failed" = 0 ]
