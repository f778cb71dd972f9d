#!/usr/bin/env bash
# Installs the Debian packages the tests need: SoftHSM2 for the PKCS#11 key provider, Chromium to render the
# report pages in a real browser.
set -euo pipefail
missing=()
[ -e /usr/lib/softhsm/libsofthsm2.so ] || missing+=(softhsm2)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v curl >/dev/null || missing+=(curl)  # curl and jq: the README's examples (test_readme_examples)
command -v jq >/dev/null || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "Missing Debian packages: run 'sudo apt-get install ${missing[*]}' and try again." >&2
    exit 1
  fi
  echo "Installing ${missing[*]} ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
