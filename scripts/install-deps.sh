#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need (or those named
# as arguments), when missing.
# Idempotent: a machine that has them all is left alone.
set -euo pipefail

packages=(softhsm2 swtpm swtpm-tools tpm2-tools opensc libssl-dev curl jq ca-certificates awscli)
# With arguments, only those packages (make demo names what the demo needs).
if [ $# -gt 0 ]; then packages=("$@"); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all Debian packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=sudo
  else
    echo "install-deps: missing packages: ${missing[*]}" >&2
    echo "install-deps: not root; run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
