#!/usr/bin/env bash
# Debian's Chromium and a CJK font for the dashboard's browser tests (tests/dashboard/).
# Idempotent: quick when both are present. Needs root (CI and `make test` run as root).
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg-query -W -f='${Status}' fonts-wqy-microhei 2>/dev/null | grep -q "ok installed" \
    || missing+=(fonts-wqy-microhei)

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "browser.sh: need root to install ${missing[*]} (apt-get)" >&2
    exit 1
fi
echo "browser.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
