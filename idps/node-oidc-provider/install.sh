#!/usr/bin/env bash
# Installs node-oidc-provider (pinned by package-lock.json) into this folder's node_modules, once.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node-oidc-provider needs Node.js 20 or newer and npm; install them, then run this again" >&2
  exit 2
fi
pinned=$(node -p "require('./package.json').dependencies['oidc-provider']")
installed=$(node -p "try { require('./node_modules/oidc-provider/package.json').version } catch { '' }")
if [ "$installed" != "$pinned" ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
