#!/usr/bin/env bash
# Make sure Debian's Chromium and its WebDriver are installed for the browser tests:
# /usr/bin/chromium and /usr/bin/chromedriver (packages chromium, chromium-driver).
# fonts-liberation gives pages real text glyphs. Playwright's own browser download is never
# used. Fast when both are present.
set -euo pipefail

say() { printf 'chromium: %s\n' "$*"; }
die() { printf 'chromium: error: %s\n' "$*" >&2; exit 1; }

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    command -v apt-get >/dev/null || die "no apt-get here: install Chromium and chromedriver at /usr/bin yourself"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    say "installing Debian's chromium and chromium-driver"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null
    [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] \
        || die "apt-get finished but /usr/bin/chromium or /usr/bin/chromedriver is missing"
fi

say "$(/usr/bin/chromium --version 2>/dev/null | head -n1) at /usr/bin/chromium"
say "$(/usr/bin/chromedriver --version 2>/dev/null | head -n1) at /usr/bin/chromedriver"
