#!/usr/bin/env bash
# What the docs browser test (tests/test_docs_browser.py) needs:
# 1. the JavaScript the offline docs pages load (Jupyter widget HTML manager, require.js, MathJax), from npm
#    into tools/widget_manager/node_modules (not committed; versions pinned in package-lock.json);
# 2. headless Chromium (Debian packages; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
WM=tools/widget_manager
apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "not root: cannot apt-get install $*"; return 1; fi
  if [ $apt_updated = 0 ]; then apt-get update -qq; apt_updated=1; fi
  apt-get install -y -qq "$@" >/dev/null
}

# 1. npm packages (skipped when node_modules matches the lock file)
if [ -f $WM/node_modules/.package-lock.json ] && [ $WM/node_modules/.package-lock.json -nt $WM/package-lock.json ] \
   && [ -f $WM/node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js ]; then
  echo "widget manager JS already installed"
else
  command -v npm >/dev/null 2>&1 || apt_install npm
  npm ci --prefix $WM --no-audit --no-fund --loglevel=error
fi

# 2. Chromium
if command -v chromium >/dev/null 2>&1; then echo "chromium already installed"; exit 0; fi
apt_install chromium chromium-driver
chromium --version
