"""`./run --executor celery` (issue 21): the parts it starts and their settings (fast), and the whole exchange
on two real Celery workers with a real redis-server broker (slow)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from mpsync.local import airflow_parts
from mpsync.local.system import LocalSystem, Ports


@pytest.fixture
def own_dir():
    path = Path(tempfile.mkdtemp(prefix="mpsync-celery-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_celery_settings_and_parts(own_dir):
    ports = Ports.free()
    system = LocalSystem(own_dir / "var", ports=ports, executor="celery", celery_workers=3, worker_concurrency=2)
    system.secrets()
    env = system.airflow_env()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == f"redis://127.0.0.1:{ports.redis}/0"
    # the result backend is Airflow's own metadata database (no second store), through psycopg2
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + system.pg.dsn("airflow")
    assert env["AIRFLOW__CELERY__FLOWER_HOST"] == "127.0.0.1"
    assert int(env["AIRFLOW__CORE__PARALLELISM"]) >= 3 * 2
    parts = airflow_parts.parts(env)
    workers = {n: p for n, p in parts.items() if n.startswith("worker-")}
    assert sorted(workers) == ["worker-1", "worker-2", "worker-3"]
    names = {p[1]["MPSYNC_WORKER_NAME"] for p in workers.values()}
    assert names == {"mpsync-worker-1", "mpsync-worker-2", "mpsync-worker-3"}
    for args, worker_env in workers.values():
        assert args[:2] == ["celery", "worker"] and "--skip-serve-logs" in args    # no log server on 0.0.0.0
        assert args[args.index("--celery-hostname") + 1] == worker_env["MPSYNC_WORKER_NAME"] + "@%h"
        assert worker_env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "mpsync.local.worker_name.hostname"
    assert parts["flower"][0][:4] == ["celery", "flower", "--hostname", "127.0.0.1"]
    assert airflow_parts.essential("scheduler") and not airflow_parts.essential("worker-2")
    # The default stays the LocalExecutor, with no worker, broker or Flower.
    local = LocalSystem(own_dir / "var", ports=ports)
    local_env = local.airflow_env()
    assert local_env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor" and local.redis is None
    assert set(airflow_parts.parts(local_env)) == set(airflow_parts.PARTS)


def test_a_worker_names_itself_in_its_task_instances(monkeypatch):
    import socket

    from mpsync.local.worker_name import hostname

    monkeypatch.setenv("MPSYNC_WORKER_NAME", "mpsync-worker-2")
    assert hostname() == "mpsync-worker-2"
    monkeypatch.delenv("MPSYNC_WORKER_NAME")
    assert hostname() == socket.getfqdn()


def test_the_broker_listens_on_localhost_only_and_stops(own_dir):
    import psutil

    from mpsync.local.broker import LocalRedis

    redis = LocalRedis(own_dir / "redis", Ports.free().redis).start()
    try:
        assert redis.ping()
        listening = {(c.laddr.ip, c.laddr.port) for c in psutil.Process(redis.pid()).net_connections("inet")
                     if c.status == psutil.CONN_LISTEN}
        assert listening == {("127.0.0.1", redis.port)}
    finally:
        redis.stop()
    assert not redis.ping()
