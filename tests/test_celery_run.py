"""`./run --executor celery` (issue 21): the parts it starts and their settings (fast), and the whole exchange
on two real Celery workers with a real redis-server broker (slow)."""

from __future__ import annotations

import os
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


def test_a_worker_is_found_by_its_name_whatever_celery_retitles(own_dir):
    """The slow test kills a worker by name: its main process (retitled '[celeryd: <name>@<host>:MainProcess]'
    by Celery, or still 'airflow celery worker --celery-hostname <name>@%h') and everything under it."""
    import subprocess
    import sys

    from mpsync.local.celery import worker_pids
    from mpsync.local.processes import descendants

    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); time.sleep(30)"
    procs = [subprocess.Popen([sys.executable, "-c", code, "--celery-hostname", f"mpsync-worker-{n}@%h"])
             for n in (1, 2)]
    try:
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(worker_pids(os.getpid(), "mpsync-worker-2", descendants)) < 2:
            time.sleep(0.1)
        found = worker_pids(os.getpid(), "mpsync-worker-2", descendants)
        assert found[0] == procs[1].pid and len(found) == 2            # the worker and its child, not worker 1
        assert worker_pids(os.getpid(), "mpsync-worker-3", descendants) == []
    finally:
        for p in procs:
            for pid in descendants(p.pid):
                os.kill(pid, 9)
            p.kill()
            p.wait()


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


# ---- the whole exchange on two real Celery workers (slow) -------------------------------------------------

class _Held:
    """`lock table <t> in share mode`, held by the test: every task that writes the table waits inside its
    transaction, so the tasks of a run are running side by side (on both workers) until it is released."""

    def __init__(self, dsn: str, table: str):
        import psycopg

        self.table = table
        self.conn = psycopg.connect(dsn)
        self.conn.execute(f"lock table {table} in share mode")

    def waiting(self) -> int:
        """Transactions waiting for the table (tasks blocked mid-write)."""
        import psycopg

        with psycopg.connect(self.conn.info.dsn, password=self.conn.info.password) as other:
            return other.execute("select count(*) from pg_locks where relation = %s::regclass and not granted",
                                 (self.table,)).fetchone()[0]

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.commit()
            self.conn.close()


def _running_hosts(af, dag_id: str, run_id: str, task_prefix: str) -> dict[str, str]:
    """label -> hostname of the running task instances whose task id starts with task_prefix."""
    return {f"{ti['task_id']}[{ti['map_index']}]": ti["hostname"] for ti in af.task_instances(dag_id, run_id)
            if ti["task_id"].startswith(task_prefix) and ti["state"] == "running" and ti.get("hostname")}


def _wait_for(check, timeout: float, what: str, explain=lambda: ""):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"not within {timeout:.0f}s: {what}\n{explain()}")


def _set_paused(af, dag_id: str, paused: bool) -> None:
    r = af.system.api("PATCH", f"/api/v2/dags/{dag_id}", af.token, json={"is_paused": paused})
    assert r.status_code == 200, f"{dag_id}: {r.status_code} {r.text[:300]}"


def _spread_while_held(af, dsn: str, table: str, dag_id: str, task_prefix: str, at_least: int):
    """Start dag_id with `table` held (triggered; a scheduled run may be the one that gets there first); wait
    until its tasks are blocked in it on both workers. (run id, the lock still held, label -> worker)."""
    held = _Held(dsn, table)
    af.trigger(dag_id)

    def spread():
        for run in af.runs(dag_id):
            if run["state"] in ("success", "failed"):
                continue
            hosts = _running_hosts(af, dag_id, run["dag_run_id"], task_prefix)
            if len(set(hosts.values())) >= 2 and len(hosts) >= at_least and held.waiting() >= at_least:
                return run["dag_run_id"], hosts
        return None

    found = _wait_for(spread, 180, f"{dag_id}: {at_least} {task_prefix}* tasks blocked on {table} on both workers",
                      lambda: "\n".join(af.explain(dag_id, r["dag_run_id"]) for r in af.runs(dag_id)))
    return found[0], held, found[1]


@pytest.mark.slow
def test_the_exchange_on_two_celery_workers_survives_losing_one(own_dir, monkeypatch):
    """Two Celery workers and a redis-server broker, all real: a stock import's fragments run on both workers;
    a feed published by one of them is what the feeds server serves; the order accounts spread over both;
    then a worker is SIGKILLed while its fragments are inside their transactions, and the import ends clean
    after the scheduler retries them on the other worker."""
    import dataclasses
    import json
    import signal
    import time

    import psycopg
    import requests
    import yaml

    from mpsync.feeds.config import feeds_config
    from mpsync.local import demo
    from mpsync.settings import _cached, load_settings
    from tests.test_end_to_end import Airflow, _seed_orders, _test_config, _upload

    t0 = time.monotonic()
    config = _test_config(own_dir)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["stock_import"]["min_fragment_rows"] = 6            # the demo's 36 rows in 6 fragments
    config.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(config))
    _cached.cache_clear()
    cfg = load_settings(config)
    assert cfg.stock_import.min_fragment_rows == 6
    products = demo.demo_products(warehouses=len(cfg.stock_columns))
    system = LocalSystem(own_dir / "var", ports=Ports.free(), executor="celery", celery_workers=2,
                         worker_concurrency=2, flower=False, dags_paused_at_creation=True,
                         extra_env={"MPSYNC_CONFIG": str(config), "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
                                    # a dead worker's tasks are found within seconds, not the default 5 minutes
                                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                                    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                                    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90"},
                         log=lambda line: print(f"[system] {line}", flush=True))
    held = None
    try:
        system.start_services()
        sold = (next(p.article for p in products if p.stock[0] >= 2), 2)
        _seed_orders(system, sold)
        system.start_airflow(wait_timeout=420)
        dsn = system.exchange_dsn
        exposed = [e for e in system.listening() if e[0] != "127.0.0.1"]
        assert not exposed, f"listening beyond 127.0.0.1: {exposed}"
        assert system.ports.redis in {port for _, port, _ in system.listening()}
        af = Airflow(system)
        workers = {"mpsync-worker-1", "mpsync-worker-2"}

        # The catalog, then the demo's stock report and price table (dropped once the catalog is in).
        for dag_id in ("onec_catalog_import", "onec_price_import"):
            _set_paused(af, dag_id, False)
        af.wait_for_import("onec_catalog_import", "import_catalog", timeout=300)
        af.wait_for_import("onec_price_import", "finish_price_import", timeout=240)
        for dag_id in ("onec_catalog_import", "onec_price_import"):
            _set_paused(af, dag_id, True)
        print(f"[celery] catalog and prices in after {time.monotonic() - t0:.0f}s", flush=True)

        # 1. A stock import whose fragments run on both workers.
        _set_paused(af, "onec_stock_import", False)
        run_id, held, hosts = _spread_while_held(af, dsn, "stock", "onec_stock_import", "apply_stock_fragment", 3)
        held.release()
        af.wait_success("onec_stock_import", run_id, timeout=240)
        done = [ti for ti in af.task_instances("onec_stock_import", run_id) if ti["task_id"] == "apply_stock_fragment"]
        assert len(done) >= 4 and {ti["hostname"] for ti in done} == workers, [(t["map_index"], t["hostname"])
                                                                               for t in done]
        print(f"[celery] stock import on both workers after {time.monotonic() - t0:.0f}s: {hosts}", flush=True)

        # 2. A feed published by a worker is what the feeds server serves.
        _set_paused(af, "marketplace_feeds", False)
        feeds_run = af.trigger("marketplace_feeds")
        af.wait_success("marketplace_feeds", feeds_run, timeout=240)
        published = {ti["task_id"]: ti["hostname"] for ti in af.task_instances("marketplace_feeds", feeds_run)
                     if ti["task_id"] == "publish_yandex_feed"}
        assert published and set(published.values()) <= workers, published
        file = feeds_config(cfg).feed("yandex").file
        served = requests.get(f"{system.feeds_url}{file}", timeout=30)
        assert served.status_code == 200 and served.content.count(b"<offer ") >= 1
        assert served.content == (system.feeds_dir / file).read_bytes()
        # what the publishing task recorded (by content hash, the date aside) is what is served
        record = json.loads((system.feeds_dir / f".{file}.json").read_text(encoding="utf-8"))
        assert record["size"] == len(served.content), record

        # 3. The order accounts spread over both workers.
        _set_paused(af, "order_sync", False)
        orders_run, held, hosts = _spread_while_held(af, dsn, "marketplace_order", "order_sync", "sync_", 3)
        held.release()
        af.wait_success("order_sync", orders_run, timeout=240)
        # (a marketplace with no account in the config maps over nothing: skipped, on no worker)
        accounts = {ti["task_id"]: ti["hostname"] for ti in af.task_instances("order_sync", orders_run)
                    if ti["task_id"].startswith("sync_") and ti["task_id"].endswith("_orders")
                    and ti["state"] != "skipped"}
        assert len(accounts) == 4 and set(accounts.values()) == workers, accounts
        _set_paused(af, "order_sync", True)
        _set_paused(af, "marketplace_feeds", True)
        print(f"[celery] feed and orders after {time.monotonic() - t0:.0f}s: {accounts}", flush=True)

        # 4. The next report changes every row; a worker dies (SIGKILL) while its fragments are mid-transaction.
        nxt = [dataclasses.replace(p, stock=tuple(q + 1 for q in p.stock)) for p in products]
        made = demo.onec_now()
        name = f"Ostatki_MP_{made:%Y%m%d_%H%M}_2.xlsx"
        _upload(system, demo.write_stock_report(own_dir / name, nxt, made), f"/1c/stock/{name}")
        run_id, held, hosts = _spread_while_held(af, dsn, "stock", "onec_stock_import", "apply_stock_fragment", 3)
        victim = sorted(set(hosts.values()))[0]
        survivor = (workers - {victim}).pop()
        killed_labels = {label for label, host in hosts.items() if host == victim}
        pids = system.worker_pids(victim)
        assert len(pids) >= 2, f"{victim}: {pids}"              # the worker, its pool and the running tasks
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        print(f"[celery] killed {victim} ({len(pids)} processes) running {sorted(killed_labels)}", flush=True)
        time.sleep(1)
        held.release()
        af.wait_success("onec_stock_import", run_id, timeout=300)
        fragments = {f"{ti['task_id']}[{ti['map_index']}]": ti for ti in af.task_instances("onec_stock_import", run_id)
                     if ti["task_id"] == "apply_stock_fragment"}
        for label in killed_labels:
            ti = fragments[label]
            assert ti["state"] == "success" and ti["try_number"] >= 2 and ti["hostname"] == survivor, ti
        with psycopg.connect(dsn) as conn:
            stock = dict(((a, w), float(q)) for a, w, q in conn.execute(
                "select p.article, s.warehouse, s.quantity from stock s join product p using (product_id)"))
            ledger = conn.execute("select import_file_id, status, changed from import_file where name = %s",
                                  (name,)).fetchone()
            staged = conn.execute("select count(*) from stock_staging").fetchone()[0]
            recorded = conn.execute("select count(*), count(distinct (first_seq, last_seq)) from import_fragment "
                                    "where import_file_id = %s", (ledger[0],)).fetchone()
        want = {(p.article, w): float(q) for p in nxt for w, q in zip(cfg.stock_columns, p.stock)}
        assert stock == want
        assert ledger[1] == "applied" and ledger[2] == sum(len(p.stock) for p in nxt), ledger
        assert staged == 0 and recorded[0] == recorded[1] == len(fragments), (staged, recorded, len(fragments))
        print(f"[celery] clean end state after losing {victim}: {time.monotonic() - t0:.0f}s", flush=True)
    finally:
        if held is not None:
            held.release()
        system.stop()
