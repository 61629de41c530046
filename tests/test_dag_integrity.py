"""Every DAG file parses without errors, quickly, and follows the house rules (owner, tags, retries, docs)."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from mpsync.airflow_glue.dag_defaults import APPROVED_TAGS, OWNER

DAGS = Path(__file__).resolve().parents[1] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))
# Airflow's own default dagbag_import_timeout; a DAG file near it does work at parse time it should not.
PARSE_SECONDS_LIMIT = 30.0


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{k}: {v}" for k, v in dagbag.import_errors.items())
    assert dagbag.dags, "no DAG found"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_parse_time_per_file_is_bounded(path):
    from airflow.dag_processing.dagbag import DagBag

    start = time.perf_counter()
    bag = DagBag(dag_folder=str(path))
    elapsed = time.perf_counter() - start
    print(f"{path.name}: parsed in {elapsed:.2f}s")
    assert not bag.import_errors
    assert elapsed < PARSE_SECONDS_LIMIT


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_no_dag_imports_another_dag(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    others = {p.stem for p in DAG_FILES} - {path.stem}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in others | {"dags"}, f"{path.name} imports {name}"


def test_house_rules(dagbag):
    problems = []
    for dag_id, dag in dagbag.dags.items():
        if not dag.doc_md or len(dag.doc_md.strip()) < 40:
            problems.append(f"{dag_id}: doc_md missing or too short")
        if not dag.tags or not set(dag.tags) <= APPROVED_TAGS:
            problems.append(f"{dag_id}: tags {sorted(dag.tags)} not all in {sorted(APPROVED_TAGS)}")
        for t in dag.tasks:
            if t.owner != OWNER:
                problems.append(f"{dag_id}.{t.task_id}: owner {t.owner!r}")
            if (t.retries or 0) < 2:
                problems.append(f"{dag_id}.{t.task_id}: retries {t.retries} < 2")
    assert not problems, "\n".join(problems)


def test_every_dag_alerts_once_per_failed_run(dagbag):
    """DAG level: failure_alert() (one message per failed run). Task level: only the cause recorder, which sends
    nothing - a task-level notifier would mail once per failed task (a storm when 40 fragments fail)."""
    from mpsync.airflow_glue.alerts import FailureAlert, record_failure_cause

    def callbacks(value):
        return value if isinstance(value, list) else [value] if value else []

    problems = []
    for dag_id, dag in dagbag.dags.items():
        if not any(isinstance(cb, FailureAlert) for cb in callbacks(dag.on_failure_callback)):
            problems.append(f"{dag_id}: no on_failure_callback=failure_alert() (dag_defaults.dag_kwargs())")
        for t in dag.tasks:
            task_cbs = callbacks(t.on_failure_callback)
            if record_failure_cause not in task_cbs:
                problems.append(f"{dag_id}.{t.task_id}: on_failure_callback lacks record_failure_cause")
            if any(isinstance(cb, FailureAlert) for cb in task_cbs + callbacks(t.on_retry_callback)):
                problems.append(f"{dag_id}.{t.task_id}: a task-level alert would send one message per task")
    assert not problems, "\n".join(problems)
