"""The CeleryExecutor parts of LocalSystem (`./run --executor celery`): their Airflow settings, waiting for the
workers, and finding a worker's processes (the slow test kills one).

Broker: a redis-server on 127.0.0.1 (mpsync.local.broker). Result backend: Airflow's metadata PostgreSQL
(`db+postgresql://`), so no second store to back up. Task logs: the workers run with `--skip-serve-logs` (the
log server binds every interface, local/airflow_parts.py) and write into the one AIRFLOW_HOME the API server
reads, as under the LocalExecutor; on separate machines, remote logging replaces that (docs/production.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PING = """
import json
from airflow.providers.celery.executors.celery_executor_utils import app
print(json.dumps(sorted(name for reply in (app.control.ping(timeout=2) or []) for name in reply)))
"""


def celery_env(broker_url: str, airflow_db_dsn: str, *, workers: int, concurrency: int, flower_port: int | None,
               ) -> dict[str, str]:
    """AIRFLOW__* and MPSYNC_* for the executor, the workers and Flower (mpsync.local.airflow_parts reads them)."""
    env = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + airflow_db_dsn,        # postgresql://..., psycopg2
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        "MPSYNC_CELERY_WORKERS": str(workers),
        "MPSYNC_FLOWER": "1" if flower_port else "0",
    }
    if flower_port:
        env.update({"AIRFLOW__CELERY__FLOWER_HOST": "127.0.0.1", "AIRFLOW__CELERY__FLOWER_PORT": str(flower_port)})
    return env


def workers_answering(env: dict[str, str]) -> list[str]:
    """The Celery workers that answer a ping through the broker (e.g. ['mpsync-worker-1@host', ...])."""
    done = subprocess.run([sys.executable, "-c", PING], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode:
        return []
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker_pids(root: int, name: str, descendants) -> list[int]:
    """The main process of worker `name` (e.g. 'mpsync-worker-1') under `root`, and all its descendants (its
    pool processes and the tasks they run). Celery retitles its processes ('[celeryd: <name>@<host>:MainProcess]
    ...'), so the name is looked for in the whole command line; the first found (closest to root) is the main."""
    for pid in descendants(root):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if f"celeryd: {name}@".encode() in cmd or f"--celery-hostname {name}@%h".encode() in cmd:
            return [pid, *descendants(pid)]
    return []
