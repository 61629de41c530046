"""dag.test() of order_sync against the simulators (real HTTP on 127.0.0.1, real clock) and the real database.

Three runs: (1) the Taobao-style API starts dropping every connection mid-initial-sync, so its task dies
half-way; (2) the next run resumes from the last committed window: nothing lost, no window read twice into
the initial progress, the checkpoint mirrored to a Variable; (3) a re-sync [from, to) from the trigger form
re-reads that period and leaves the live checkpoint as it was. Plus the pure run-window resolution.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import yaml

from mpsync.orders import store
from mpsync.orders.model import Window
from mpsync.orders.runner import resolve_run_window
from mpsync.settings import DEFAULT_CONFIG
from mpsync.simulators import Hostility, SimClock, start_ozon_simulator, start_taobao_simulator, start_yandex_simulator
from mpsync.simulators.harness import compare

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "order_sync.py"
UTC = timezone.utc


def test_resolve_run_window():
    s, e = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 2, tzinfo=UTC)
    assert resolve_run_window({}, "scheduled", s, e) is None                     # live: the checkpoint decides
    assert resolve_run_window({}, "manual", s, e) is None
    assert resolve_run_window({}, "backfill", s, e) == Window(s, e)              # a backfill re-syncs its interval
    assert resolve_run_window({"from": "2026-04-01T00:00:00Z", "to": "2026-04-02T00:00:00+00:00"}, "manual") == \
        Window(datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC))
    with pytest.raises(ValueError, match="both"):
        resolve_run_window({"from": "2026-04-01T00:00:00Z"}, "manual")


def _states(run) -> dict:
    from airflow.models import TaskInstance
    from airflow.settings import Session

    with Session() as s:
        return {(ti.task_id, ti.map_index): (str(ti.state), ti.rendered_map_index)
                for ti in s.query(TaskInstance).filter(TaskInstance.run_id == run.run_id,
                                                      TaskInstance.dag_id == run.dag_id)}


def _world(sim, days, per_day):
    sim.clock.advance(-days * 86400)
    sim.store.activity(days * 86400 - 120, creates=per_day * days, modifies=per_day * days // 3)
    sim.clock.advance(120 - (sim.clock.now() - __import__("time").time()))   # back to the real clock


def test_order_sync_dag_resumes_after_a_killed_task_and_resync_leaves_the_checkpoint(
        tmp_path, monkeypatch, airflow_db, exchange_dsn):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models import Variable

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["orders"].update({"margin_minutes": 0.05, "lookback_minutes": 1, "max_attempts": 2, "backoff_seconds": 0.01,
                          "timeout_seconds": 5})
    raw["orders"]["marketplaces"] = {"taobao": {"calls_per_second": 0, "result_limit": 100},
                                     "yandex": {"calls_per_second": 0, "business_id": 7001}}
    raw["orders"]["accounts"] = [{"marketplace": "taobao", "account": "main"},
                                 {"marketplace": "yandex", "account": "main"}]
    (tmp_path / "mpsync.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(tmp_path / "mpsync.yaml"))

    taobao = start_taobao_simulator(seed=1, hostility=Hostility(churn_per_call=0.3), clock=SimClock())
    yandex = start_yandex_simulator(seed=2, hostility=Hostility(p_rate_limit=0.05, retry_after=0), clock=SimClock())
    try:
        _world(taobao, 80, 15)      # orders over most of the 3 initial months
        _world(yandex, 3, 100)
        monkeypatch.setenv("AIRFLOW_CONN_TAOBAO_API", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": taobao.server_address[1], "password": taobao.token}))
        monkeypatch.setenv("AIRFLOW_CONN_YANDEX_MARKET_API", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": yandex.server_address[1], "password": yandex.api_key}))
        bag = DagBag(dag_folder=str(DAG_FILE))
        assert not bag.import_errors, bag.import_errors
        dag = bag.dags["order_sync"]
        assert dag.max_active_runs == 1
        for t in dag.tasks:
            t.retries = 0           # let the killed task fail now; the next run is the "retry"

        # 1. the Taobao-style API goes away after 40 calls: mid-way through the 91 initial windows
        taobao.drop_after(40)
        run = dag.test()
        states = _states(run)
        assert states[("sync_taobao_orders", 0)] == ("failed", "taobao:main"), states
        assert states[("sync_yandex_orders", 0)][0] == "success", states
        with psycopg.connect(exchange_dsn) as conn:
            progress = store.read_mark(conn, store.INITIAL_PROGRESS, "taobao:main")
            assert progress is not None                                      # some windows committed...
            assert store.read_mark(conn, store.CHECKPOINT, "taobao:main") is None   # ...the initial not done
            partial = conn.execute("select count(*) from marketplace_order where marketplace = 'taobao'").fetchone()[0]
        assert 0 < partial < len(taobao.truth())

        # 2. the API is back; meanwhile orders arrived and changed. The next run resumes.
        taobao.drop_after(None)
        for sim in (taobao, yandex):
            now = sim.clock.now()
            for o in list(sim.store.orders.values())[-20:]:
                sim.store.modify(o, at=now - 30)
            for _ in range(25):
                sim.store.create(at=now - 20)
        run = dag.test()
        assert str(run.state) == "success", _states(run)
        for sim, mp in ((taobao, "taobao"), (yandex, "yandex")):
            out = compare(sim, exchange_dsn, mp, "main")
            assert out.lost == 0 and out.stale == 0, (mp, out)
        with psycopg.connect(exchange_dsn) as conn:
            starts = [r[0] for r in conn.execute(
                "select window_start from order_sync_window where marketplace = 'taobao' and mode = 'initial'")]
            live = store.read_mark(conn, store.CHECKPOINT, "taobao:main")
        assert len(starts) == len(set(starts)) == 90      # 90 one-day windows, each committed exactly once
        assert Variable.get("checkpoint__orders__taobao__main") == live.isoformat()

        # 3. re-sync yesterday's 6 hours from the trigger form: orders re-read, the checkpoint untouched
 
        taobao.set_hostility(churn_per_call=0)   # (orders changed while read would come back newer, rightly)
        with psycopg.connect(exchange_dsn) as conn:
            conn.execute("delete from marketplace_order where marketplace = 'taobao'")
        t = datetime.fromtimestamp(taobao.clock.now(), UTC).replace(microsecond=0) - timedelta(days=1)
        run = dag.test(run_conf={"accounts": "taobao:main", "from": (t - timedelta(hours=6)).isoformat(),
                                 "to": t.isoformat()})
        states = _states(run)
        assert str(run.state) == "success", states
        assert states[("sync_taobao_orders", 0)][1].startswith("taobao:main re-sync")
        with psycopg.connect(exchange_dsn) as conn:
            assert store.read_mark(conn, store.CHECKPOINT, "taobao:main") == live
            n, newest = conn.execute("select count(*), max(modified_at) from marketplace_order"
                                     " where marketplace = 'taobao'").fetchone()
        assert n > 0 and newest < t + timedelta(seconds=1)
        expected = {k for k, o in taobao.truth().items()
                    if (t - timedelta(hours=6)).timestamp() <= o.modified < t.timestamp()}
        assert n >= len(expected) > 0   # (+ any order at exactly `to`: the API reads whole seconds inclusive)
        assert Variable.get("checkpoint__orders__taobao__main") == live.isoformat()
    finally:
        taobao.stop()
        yandex.stop()


def test_order_sync_dag_catches_up_after_an_outage_longer_than_the_lookback(
        tmp_path, monkeypatch, airflow_db, exchange_dsn):
    """Issue 15, end to end: unstable page cursors (offset tokens, orders changing between any two page
    requests), then 40 minutes in which the marketplaces' APIs are down (the run fails, nothing advances) while
    orders keep being created and changed, then the next run catches up: nothing lost, nothing stale."""
    from airflow.dag_processing.dagbag import DagBag

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["orders"].update({"margin_minutes": 0.05, "lookback_minutes": 10, "max_attempts": 3, "backoff_seconds": 0.01,
                          "timeout_seconds": 5})
    raw["orders"]["marketplaces"] = {"taobao": {"calls_per_second": 0, "result_limit": 1000},
                                     "yandex": {"calls_per_second": 0, "business_id": 7001},
                                     "ozon": {"calls_per_second": 0}}
    raw["orders"]["accounts"] = [{"marketplace": m, "account": "main"} for m in ("taobao", "yandex", "ozon")]
    (tmp_path / "mpsync.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(tmp_path / "mpsync.yaml"))

    hostile = dict(churn_per_call=1.0, create_per_call=0.5, p_5xx=0.03)
    sims = {"taobao": start_taobao_simulator(seed=3, hostility=Hostility(**hostile), clock=SimClock()),
            "yandex": start_yandex_simulator(seed=4, hostility=Hostility(**hostile), clock=SimClock()),
            "ozon": start_ozon_simulator(seed=5, hostility=Hostility(**hostile), clock=SimClock())}
    try:
        for sim in sims.values():
            _world(sim, 2, 100)
        t, y, o = sims["taobao"], sims["yandex"], sims["ozon"]
        for name, conn in (("TAOBAO_API", {"port": t.server_address[1], "password": t.token}),
                           ("YANDEX_MARKET_API", {"port": y.server_address[1], "password": y.api_key}),
                           ("OZON_API", {"port": o.server_address[1], "login": o.client_id, "password": o.api_key})):
            monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps({"conn_type": "http", "host": "127.0.0.1", **conn}))
        bag = DagBag(dag_folder=str(DAG_FILE))
        assert not bag.import_errors, bag.import_errors
        dag = bag.dags["order_sync"]
        for task in dag.tasks:
            task.retries = 0
        assert str(dag.test().state) == "success"                 # the initial sync of each account
        with psycopg.connect(exchange_dsn) as conn:
            before = {m: store.read_mark(conn, store.CHECKPOINT, f"{m}:main") for m in sims}

        # the outage: every API drops every connection for 40 minutes of marketplace life (> the lookback)
        for sim in sims.values():
            sim.drop_after(0)
            sim.store.activity(2400, creates=600, modifies=400)
        run = dag.test()
        states = _states(run)
        assert all(states[(f"sync_{m}_orders", 0)][0] == "failed" for m in sims), states
        with psycopg.connect(exchange_dsn) as conn:
            assert {m: store.read_mark(conn, store.CHECKPOINT, f"{m}:main") for m in sims} == before

        # back: one run catches up over the whole outage, its windows proven though pages shift under it
        for sim in sims.values():
            sim.drop_after(None)
        run = dag.test()
        assert str(run.state) == "success", _states(run)
        with psycopg.connect(exchange_dsn) as conn:
            after = {m: store.read_mark(conn, store.CHECKPOINT, f"{m}:main") for m in sims}
        assert all(after[m] - before[m] > timedelta(minutes=40) for m in sims), (before, after)

        # settle: the orders changed while that run read (newer versions, ahead of its checkpoint) are read next
        for sim in sims.values():
            sim.set_hostility(churn_per_call=0, create_per_call=0, p_5xx=0)
            sim.clock.advance(10)
        assert str(dag.test().state) == "success"
        for m, sim in sims.items():
            out = compare(sim, exchange_dsn, m, "main")
            assert out.truth > 700 and out.lost == 0 and out.stale == 0, (m, out)
    finally:
        for sim in sims.values():
            sim.stop()
