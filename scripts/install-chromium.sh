#!/usr/bin/env bash
# The browser tests (tests/browser) drive Debian's chromium at /usr/bin/chromium through
# Playwright; Playwright's own browser download is never used. Install it when it is missing.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq && apt-get install -y -qq chromium
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo apt-get update -qq && sudo apt-get install -y -qq chromium
else
  echo "make install: /usr/bin/chromium is missing; the browser tests need it." >&2
  echo "  Debian/Ubuntu, as root: apt-get install chromium   (then run make install again)" >&2
  exit 1
fi
