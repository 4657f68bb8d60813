#!/usr/bin/env bash
# Installs Debian's chromium for the HTML report's rendering test, where it is missing.
# Pinned: the version below is installed. Debian's security archive keeps only the newest build
# of a package, so when the pinned one has been withdrawn the script installs the archive's
# current build instead, and says which, so that the pin can be moved.
set -euo pipefail

PINNED="156.0.8078.79-1~deb12u1"

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: apt-get is not available; install Chromium and put 'chromium' on the PATH" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-chromium: not root and no sudo; install Debian's chromium package ($PINNED)" >&2
    exit 1
  fi
  sudo=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "chromium=$PINNED" >/dev/null; then
  echo "install-chromium: chromium $PINNED is no longer in the archive; installing its current build" >&2
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
echo "install-chromium: $(chromium --version)" >&2
