#!/usr/bin/env bash
# The whole test suite: unit and integration tests (against a real embedded PostgreSQL, the real
# HTTP server and the real binary), then the web chat in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
export SQLX_OFFLINE=true
export SWITCHBOARD_PG_BIN="$PWD/.tools/pgserver/pgserver/pginstall/bin"

echo "==> cargo test"
cargo test --workspace --locked

echo "==> browser test"
scripts/browser-test.sh
