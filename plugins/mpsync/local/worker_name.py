"""`[core] hostname_callable` of the Celery workers `./run --executor celery` starts: each worker's own name
(MPSYNC_WORKER_NAME, set by mpsync.local.airflow_parts) in the task instances it runs, so the UI, the REST API
and the slow test tell apart two workers on one machine. Elsewhere the machine's name, as Airflow's default."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("MPSYNC_WORKER_NAME") or socket.getfqdn()
