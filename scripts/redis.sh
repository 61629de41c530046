#!/usr/bin/env bash
# Debian's redis-server, the Celery broker of `./run --executor celery` and of its slow test: installed when
# missing (needs root or sudo), like scripts/chromium.sh. Prints nothing when it is there. LocalSystem starts
# its own redis-server on 127.0.0.1 (data under var/redis); the package's system service is not used.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "redis-server: installing Debian's package (the Celery broker for --executor celery)" >&2
  $sudo apt-get update -q >&2
  # RUNLEVEL=1: invoke-rc.d does not start the package's own service on 6379 (LocalSystem starts its own)
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -q --no-install-recommends redis-server >&2
fi
