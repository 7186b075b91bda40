#!/usr/bin/env bash
# Make sure a Python >= 3.11 with venv and a C toolchain exist (a fresh Debian 12/13 has
# python3 but neither venv nor pip), then create .venv and install meterhub into it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
python=${PYTHON:-python3}

need_apt=()
command -v "$python" >/dev/null 2>&1 || need_apt+=(python3)
if command -v "$python" >/dev/null 2>&1 && ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  need_apt+=(python3-venv)
fi
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
command -v make >/dev/null 2>&1 || need_apt+=(make)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: missing ${need_apt[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "bootstrap: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" python3-dev >/dev/null
fi

"$python" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"bootstrap: meterhub needs Python >= 3.11, this is {sys.version.split()[0]}")
PY

stamp="$venv/.installed"
if [ -f "$stamp" ] && [ "$stamp" -nt "$root/pyproject.toml" ] && [ "$stamp" -nt "$root/requirements.lock" ]; then
  exit 0
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# The lock pins every transitive version (constraints), so CI installs what was tested.
"$venv/bin/python" -m pip install -q -c "$root/requirements.lock" -e "$root[dev]"
touch "$stamp"
echo "bootstrap: installed meterhub into $venv"
