"""One `dag.test()` of sync_push: real Airflow, PostgreSQL and HTTP simulators on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import psycopg
import yaml

from mpsync.settings import DEFAULT_CONFIG
from mpsync.simulators.push_site import start_site_simulator
from mpsync.simulators.push_yandex import start_yandex_simulator
from tests.test_sync_push import seed

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "sync_push.py"


def test_sync_push_dag_pushes_each_subscriber_and_unparks_on_request(tmp_path, monkeypatch, airflow_db, exchange_dsn):
    from airflow.dag_processing.dagbag import DagBag

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["sync_push"]["subscribers"]["yandex_stock"]["enabled"] = True
    raw["sync_push"]["request_retry_seconds"] = 0.01
    (tmp_path / "mpsync.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(tmp_path / "mpsync.yaml"))

    seed(exchange_dsn, 5)
    # A0003 was parked for the site earlier (its current version failed 5 times).
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("""insert into sync (object_type, object_id, subscriber, object_marker, failed_marker, failures,
                                          parked, parked_at, last_error)
                        values ('site_product', 'A0003', 'site', 'm', 'm', 5, true, now(), 'was broken')""")
        conn.execute("insert into sync_scan values ('site', 'site_product', '', 'epoch', 'epoch')")

    with start_site_simulator() as site, start_yandex_simulator() as yandex:
        yandex.queue_fault(status=420, retry_after=0)          # rate limited once: the batch is retried
        monkeypatch.setenv("AIRFLOW_CONN_SITE_API", f"http://ck:cs@127.0.0.1:{site.port}")
        monkeypatch.setenv("AIRFLOW_CONN_YANDEX_MARKET_API", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": yandex.port, "password": "key",
             "extra": {"campaign_id": 1001, "business_id": 2002}}))
        bag = DagBag(dag_folder=str(DAG_FILE))
        assert not bag.import_errors, bag.import_errors
        dag = bag.dags["sync_push"]
        for t in dag.tasks:
            t.retry_delay = timedelta(seconds=0)
        run = dag.test(run_conf={"unpark_object_ids": "A0003"})
        assert str(run.state) == "success", run.state
        assert sorted(site.received_keys()) == ["A0001", "A0002", "A0003", "A0004", "A0005"]
        assert sorted(yandex.received_keys()) == ["00000000001", "A0002", "A0003", "A0004", "A0005"]
        assert [r["status"] for r in yandex.requests] == [420, 200]

    from airflow.models import TaskInstance
    from airflow.settings import Session

    with Session() as s:
        tis = s.query(TaskInstance).filter(TaskInstance.run_id == run.run_id, TaskInstance.dag_id == "sync_push").all()
        states = {(ti.task_id, ti.map_index): str(ti.state) for ti in tis}
        labels = {ti.task_id: ti.rendered_map_index for ti in tis if ti.map_index >= 0}
    assert states[("push_to_site", 0)] == "success" and states[("push_to_yandex", 0)] == "success"
    assert states[("report_parked_objects", -1)] == "success"
    assert labels["push_to_site"] == "site (woocommerce)"
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*) from sync_parked").fetchone()[0] == 0
        assert conn.execute("select count(*) from sync where object_marker is distinct from sync_updated"
                            " and object_type in ('site_product', 'stock_offer')").fetchone()[0] == 0
