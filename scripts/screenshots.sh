#!/usr/bin/env bash
# Screenshots of the Airflow UI for docs/operators.md, from the running demo (see scripts/screenshots.py).
# Installs Debian's chromium when it is missing (scripts/chromium.sh), then runs the script with the venv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
"$root/scripts/chromium.sh"
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
exec "$root/.venv/bin/python" "$root/scripts/screenshots.py" "$@"
