#!/usr/bin/env bash
# Headless Chromium for the docs browser test (Debian packages; needs root).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then echo "chromium already installed"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "not root: cannot apt-get install chromium"; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium chromium-driver >/dev/null
chromium --version
