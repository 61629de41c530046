#!/usr/bin/env bash
# Screenshots of the Airflow UI for docs/operators.md, from the running demo (see scripts/screenshots.py).
# Installs Debian's chromium when it is missing (needs root or sudo), then runs the script with the venv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "screenshots: installing chromium (Debian package)" >&2
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends chromium
fi
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
exec "$root/.venv/bin/python" "$root/scripts/screenshots.py" "$@"
