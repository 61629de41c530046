#!/usr/bin/env bash
# Debian's chromium for what a person looks at (the slow browser tests, scripts/screenshots.sh): installed
# when missing (needs root or sudo). Prints nothing when it is there.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "chromium: installing Debian's package (headless browser for the UI tests and screenshots)" >&2
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium >&2
fi
