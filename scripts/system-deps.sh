#!/usr/bin/env bash
# Debian packages the tests (and the code sandbox) use. Installs only what is missing.
# Usage: scripts/system-deps.sh [test]
set -euo pipefail
want=(bubblewrap)
if [ "${1:-}" = "test" ]; then
  want+=(chromium)
fi
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "note: cannot install ${missing[*]} (no apt-get); the sandbox falls back to rlimits, browser tests skip" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "note: not root and no sudo: skipping ${missing[*]}" >&2; exit 0
  fi
fi
echo "installing ${missing[*]} ..." >&2
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
