#!/usr/bin/env bash
# Installs what the browser test (tests/hls.rs, hls.js in headless Chromium)
# needs, only when something is missing: Debian's chromium, and the pinned npm
# packages of tests/browser (hls.js, playwright-core) from its package-lock.json.
# Idempotent, and fast when everything is there. Run as root (or with sudo).
# Playwright never downloads a browser: the test drives /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "install-browser-deps: installing chromium"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
else
  echo "install-browser-deps: chromium present"
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "install-browser-deps: installing nodejs and npm"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends nodejs npm
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "install-browser-deps: Node.js $(node --version) is too old: playwright-core needs Node.js >= 20" >&2
  exit 1
fi

# npm ci writes node_modules/.package-lock.json; it is up to date when it is
# newer than package-lock.json and package.json.
dir=tests/browser
stamp="$dir/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ] || [ "$dir/package.json" -nt "$stamp" ] \
  || [ ! -f "$dir/node_modules/hls.js/dist/hls.min.js" ] || [ ! -d "$dir/node_modules/playwright-core" ]; then
  echo "install-browser-deps: npm ci in $dir"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts)
else
  echo "install-browser-deps: $dir/node_modules up to date"
fi
