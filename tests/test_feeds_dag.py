"""The marketplace_feeds DAG: its schedule, a real run under dag.test(), and the asset path from an import.

How "a catalog import triggers the feeds" is proved, and how the proof can fail:
1. the DAG's schedule is an AssetOrTimeSchedule whose asset condition is CATALOG_CHANGED (fails if someone
   swaps it for a bare cron, or the feeds DAG listens to a different asset than the one imports emit);
2. dag.test() of marketplace_feeds writes it (and its asset reference) to the metadata DB and publishes
   all four feeds (fails on any broken task wiring);
3. a tiny producer emits exactly like the imports do — `outlet_events[CATALOG_CHANGED_ALIAS].add(CATALOG_CHANGED)`
   from a task whose outlets hold the alias; after its dag.test() the metadata DB must hold an asset event
   from that producer AND a queued run request (AssetDagRunQueue) for marketplace_feeds, which is what the
   scheduler turns into the asset-triggered run. Fails if the alias emission does not resolve to the asset,
   if the event is not registered, or if the feeds DAG is not a consumer of that asset.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.feeds_data import insert_products

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "marketplace_feeds.py"


def load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["marketplace_feeds"]


def test_schedule_is_hourly_or_on_catalog_changed():
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable
    from airflow.serialization.serialized_objects import DagSerialization

    from mpsync.airflow_glue.assets import CATALOG_CHANGED

    dag = load_dag()
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert dag.timetable.asset_condition == CATALOG_CHANGED
    assert isinstance(dag.timetable.timetable, CronTriggerTimetable)
    assert dag.timetable.timetable.expression == "0 * * * *"
    assert sorted(t.task_id for t in dag.tasks) == [
        "publish_megamarket_feed", "publish_ozon_feed", "publish_ozon_kgt_feed", "publish_yandex_feed"]
    serialized = json.dumps(DagSerialization.to_dict(dag))
    assert CATALOG_CHANGED.uri in serialized            # what the scheduler reads carries the asset


@pytest.fixture
def feeds_env(airflow_db, exchange_dsn, tmp_path, monkeypatch):
    monkeypatch.setenv("MPSYNC_FEEDS_DIR", str(tmp_path / "feeds"))
    insert_products(exchange_dsn)
    return tmp_path / "feeds"


PRODUCER = """
from airflow.sdk import dag, task

from mpsync.airflow_glue.assets import CATALOG_CHANGED, CATALOG_CHANGED_ALIAS


@task(outlets=[CATALOG_CHANGED_ALIAS], retries=2)
def apply_import(*, outlet_events=None):
    # Exactly how the stock/price/catalog imports announce changed rows.
    outlet_events[CATALOG_CHANGED_ALIAS].add(CATALOG_CHANGED, extra={"source": "test", "changed": 3})


@dag(dag_id="test_catalog_producer", schedule=None, tags=["import"])
def test_catalog_producer():
    apply_import()


test_catalog_producer()
"""


def _producer_dag(folder: Path, monkeypatch):
    """A tiny import-like DAG in its own DAG bundle (dag.test() only runs DAGs it can find in a bundle)."""
    from airflow.dag_processing.dagbag import DagBag

    folder.mkdir()
    (folder / "test_catalog_producer.py").write_text(PRODUCER, encoding="utf-8")
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "dags-folder", "classpath": local, "kwargs": {}},
        {"name": "feeds-test-producer", "classpath": local, "kwargs": {"path": str(folder)}},
    ]))
    bag = DagBag(dag_folder=str(folder), bundle_name="feeds-test-producer")
    assert not bag.import_errors, bag.import_errors
    return bag.dags["test_catalog_producer"]


def _states(run) -> dict[str, str]:
    from airflow.models import TaskInstance
    from airflow.settings import Session

    with Session() as s:
        return {ti.task_id: str(ti.state) for ti in s.query(TaskInstance).filter(
            TaskInstance.run_id == run.run_id, TaskInstance.dag_id == run.dag_id)}


def test_feeds_run_then_a_catalog_change_queues_the_next_run(feeds_env, monkeypatch):
    from airflow.models import DagModel
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.settings import Session

    from mpsync.airflow_glue.assets import CATALOG_CHANGED

    feeds = load_dag()
    run = feeds.test()
    assert str(run.state) == "success", _states(run)
    assert sorted(p.name for p in feeds_env.glob("*.xml")) == [
        "megamarket.xml", "ozon.xml", "ozon_kgt.xml", "yandex.xml"]

    with Session() as s:        # new DAGs start paused; a paused consumer is never queued
        s.query(DagModel).filter(DagModel.dag_id == "marketplace_feeds").update({"is_paused": False})
        s.query(AssetDagRunQueue).delete()
        s.commit()

    producer = _producer_dag(feeds_env.parent / "producer_bundle", monkeypatch)
    prun = producer.test()
    assert str(prun.state) == "success", _states(prun)

    with Session() as s:
        asset = s.query(AssetModel).filter(AssetModel.uri == CATALOG_CHANGED.uri).one()
        events = s.query(AssetEvent).filter(AssetEvent.asset_id == asset.id,
                                            AssetEvent.source_dag_id == "test_catalog_producer").all()
        assert len(events) == 1 and events[0].extra["changed"] == 3
        queued = s.query(AssetDagRunQueue).filter(AssetDagRunQueue.asset_id == asset.id).all()
        assert [q.target_dag_id for q in queued] == ["marketplace_feeds"]
