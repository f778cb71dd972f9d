#!/usr/bin/env bash
# Installs the Debian packages the tests need (SoftHSM2 for the PKCS#11 key provider).
set -euo pipefail
if [ ! -e /usr/lib/softhsm/libsofthsm2.so ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "SoftHSM2 is missing: run 'sudo apt-get install softhsm2' and try again." >&2
    exit 1
  fi
  echo "Installing softhsm2 (PKCS#11 test token) ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null
fi
