"""`dag.test()` of onec_stock_import end to end: real Airflow, PostgreSQL and FTP on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from tests.stock_helpers import add_products, drop, stock_csv, stock_snapshot, write_test_config

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "onec_stock_import.py"
ARTICLES = [f"ART-{i:03d}" for i in range(1, 11)]


def load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["onec_stock_import"]
    for t in dag.tasks:
        t.retry_delay = timedelta(seconds=0)        # keep the retry in the test fast; the policy is unchanged
        t.retry_exponential_backoff = False
    return dag


def task_states(run) -> dict[str, list[str]]:
    from airflow.settings import Session

    from airflow.models import TaskInstance

    with Session() as s:
        tis = s.query(TaskInstance).filter(TaskInstance.run_id == run.run_id,
                                           TaskInstance.dag_id == run.dag_id).all()
        out: dict[str, list[str]] = {}
        for ti in tis:
            out.setdefault(ti.task_id, []).append(str(ti.state))
        return out


@pytest.fixture
def dag_env(tmp_path, monkeypatch, airflow_db, exchange_dsn, ftp_server, work_dir):
    monkeypatch.setenv("MPSYNC_CONFIG", str(write_test_config(tmp_path / "mpsync.yaml")))
    add_products(exchange_dsn, ARTICLES)
    return exchange_dsn


def fail_first_fragment_once(dsn: str) -> None:
    """A real database-side failure: the first write to `stock` in this DB raises, once (a sequence is not
    rolled back with the failed transaction, so the second attempt passes)."""
    with psycopg.connect(dsn) as conn:
        conn.execute("create sequence fail_once")
        conn.execute("""
            create function fail_once() returns trigger language plpgsql as $$
            begin
              if nextval('fail_once') = 1 then raise exception 'injected failure in a stock fragment'; end if;
              return new;
            end $$""")
        conn.execute("create trigger fail_once before insert or update on stock "
                     "for each statement execute function fail_once()")


def test_file_applied_then_same_file_changes_nothing(dag_env, ftp_params, tmp_path):
    dsn = dag_env
    rows = [(a, i, i + 1, i + 2) for i, a in enumerate(ARTICLES)] + [("NOPE", 1, 1, 1), ("ART-001", 9, 9, 9)]
    drop(ftp_params, tmp_path, "Ostatki_MP_0900.csv", stock_csv(rows, encoding="cp1251"))
    fail_first_fragment_once(dsn)

    dag = load_dag()
    run = dag.test()
    assert str(run.state) == "success", task_states(run)
    states = task_states(run)
    assert len(states["apply_stock_fragment"]) >= 3           # min_fragment_rows=3 in the test config
    # ART-001 is duplicated in the file: rejected both times, the other 9 applied.
    expected = {(a, w): float(i + k) for i, a in enumerate(ARTICLES) if a != "ART-001"
                for k, w in enumerate(("sber", "ozon", "yandex"))}
    assert stock_snapshot(dsn) == expected                    # same end state as a clean run despite the retry
    with psycopg.connect(dsn) as conn:
        assert conn.execute("select last_value from fail_once").fetchone()[0] >= 2   # the failure did happen
        status, changed, rejected = conn.execute(
            "select status, changed, rejected from import_file where name = 'Ostatki_MP_0900.csv'").fetchone()
        checkpoint = conn.execute(
            "select sync_updated from sync where object_type = 'checkpoint' and object_id = 'onec_stock_import'"
        ).fetchone()
    assert (status, changed, rejected) == ("applied", 27, 3)
    assert checkpoint is not None

    from airflow.models.asset import AssetEvent
    from airflow.settings import Session

    def events_of(r):
        with Session() as s:
            return s.query(AssetEvent).filter_by(source_dag_id="onec_stock_import", source_run_id=r.run_id).count()

    assert events_of(run) == 1                                  # catalog_changed emitted: stock changed

    # The same content dropped again: nothing changes, and no asset event.
    drop(ftp_params, tmp_path, "Ostatki_MP_1000.csv", stock_csv(rows, encoding="cp1251"))
    run2 = load_dag().test()
    assert str(run2.state) == "success", task_states(run2)
    assert stock_snapshot(dsn) == expected
    assert events_of(run2) == 0


def test_refused_file_fails_the_run_with_one_line_cause(dag_env, ftp_params, tmp_path):
    dsn = dag_env
    drop(ftp_params, tmp_path, "Ostatki_MP_empty.csv", b"")
    run = load_dag().test()
    assert str(run.state) == "failed"
    states = task_states(run)
    assert states["prepare_stock_import"] == ["failed"]
    from airflow.models import TaskInstance
    from airflow.settings import Session

    with Session() as s:
        ti = s.query(TaskInstance).filter_by(run_id=run.run_id, task_id="prepare_stock_import").one()
        assert ti.try_number == 1                     # a refusal is final: not retried
    assert stock_snapshot(dsn) == {}
    with psycopg.connect(dsn) as conn:
        status, message = conn.execute("select status, message from import_file").fetchone()
    assert status == "refused" and "\n" not in message


def _queue_a_run(dag_id: str, run_id: str) -> None:
    """A run queued behind the one dag.test() starts (what an operator's trigger is while a run senses)."""
    import pendulum
    from airflow.models.dagrun import DagRun
    from airflow.settings import Session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    with Session() as s:
        s.add(DagRun(dag_id=dag_id, run_id=run_id, run_type=DagRunType.MANUAL, state=DagRunState.QUEUED,
                     run_after=pendulum.now("UTC")))
        s.commit()


def _reschedules(run, task_id: str) -> int:
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.models import TaskInstance
    from airflow.settings import Session

    with Session() as s:
        ti = s.query(TaskInstance).filter(TaskInstance.run_id == run.run_id, TaskInstance.dag_id == run.dag_id,
                                          TaskInstance.task_id == task_id).one()
        return s.query(TaskReschedule).filter(TaskReschedule.ti_id == ti.id).count()


def test_a_waiting_sensor_gives_way_to_a_run_queued_behind_it(dag_env):
    """Issue 19: with max_active_runs=1 a scheduled run sensing an empty drop folder held a hand-triggered run
    in the queue for up to 55 minutes. Now, with no file yet and a run queued, it is skipped at its first look;
    without a queued run it keeps waiting (rescheduled) until its timeout, as before."""
    from airflow.settings import Session
    from airflow.models.dagrun import DagRun

    dag = load_dag()
    alone = dag.test()
    assert task_states(alone)["wait_for_stock_file"] == ["skipped"]
    assert _reschedules(alone, "wait_for_stock_file") >= 1              # it waited for a file

    _queue_a_run(dag.dag_id, "manual__queued_by_an_operator")
    try:
        behind = dag.test()
        assert task_states(behind)["wait_for_stock_file"] == ["skipped"]
        assert _reschedules(behind, "wait_for_stock_file") == 0         # gave way at its first look
    finally:
        with Session() as s:
            s.query(DagRun).filter(DagRun.run_id == "manual__queued_by_an_operator").delete()
            s.commit()
