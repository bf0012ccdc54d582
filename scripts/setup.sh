#!/usr/bin/env bash
# Set up a control node from nothing: apt prerequisites, the virtual environment,
# provision itself with its test tools. Safe to run again: it only does what is missing.
#
#   bash scripts/setup.sh          (what `make setup` runs)
#
# Environment: PYTHON (default python3) picks the interpreter for the venv.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv

# What the lab and the tests need from Debian: systemd-nspawn, debootstrap, the
# package cache for lab hosts, ip, the ssh client, vagrant for `vagrant validate`,
# postgresql for the tests that keep the state store in PostgreSQL (they start a
# throwaway server of their own; the system service is not used).
APT_PACKAGES=(systemd-container debootstrap apt-cacher-ng iproute2 openssh-client vagrant postgresql qemu-system-x86 qemu-utils fdisk chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them as root: apt-get install ${missing[*]}" >&2
    exit 3
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps package scripts from starting apt-cacher-ng's system
  # service: the lab starts its own proxy on its own address and port.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x $VENV/bin/python ]]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp=$VENV/.provision-installed
if [[ ! -f $stamp || setup.cfg -nt $stamp || pyproject.toml -nt $stamp ]]; then
  echo "setup: installing provision and its test tools into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip setuptools wheel
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi
# An editable install leaves provision's own modules as source; where the shell
# sets PYTHONDONTWRITEBYTECODE, every command would compile them again (about
# 0.3 s of CPU per command). Bytecode for what changed since the last setup.
"$VENV/bin/python" -m compileall -q -j 0 provision >/dev/null
echo "setup: ready ($("$VENV/bin/provision" --version))"
