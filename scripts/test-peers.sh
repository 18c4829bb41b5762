#!/usr/bin/env bash
# Installs the real peers the integration tests talk to (not needed to run Switchboard).
set -euo pipefail
cd "$(dirname "$0")/.."

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
