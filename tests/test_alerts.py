"""Failure alerts: configuration, the message, delivery to a real SMTP server, and one alert per failed run.

The SMTP server is aiosmtpd on 127.0.0.1; the failing DAG is tests/alert_dags/alert_probe.py (two mapped
fragments that fail on every try, with retries) run by dag.test().
"""

from __future__ import annotations

import email
import json
from urllib.parse import quote
from email import policy
from pathlib import Path

import pytest
import yaml

from mpsync import INCLUDE_DIR
from mpsync.airflow_glue.alerts import (
    CAUSE_KEY,
    FailureReport,
    deliver,
    one_line_cause,
    parse_alert_settings,
)
from mpsync.settings import ConfigError

PROBE_DIR = Path(__file__).resolve().parent / "alert_dags"


class _Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp_inbox(monkeypatch):
    """A real SMTP server on 127.0.0.1, exposed as the `smtp_alerts` Airflow connection (no TLS)."""
    from aiosmtpd.controller import Controller

    from mpsync.local.postgres import free_port

    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_ALERTS", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": controller.port,
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@shop.example", "retry_limit": 0},
    }))
    yield inbox
    controller.stop()


def write_config(tmp_path: Path, monkeypatch, alerts: dict) -> Path:
    raw = yaml.safe_load((INCLUDE_DIR / "config" / "mpsync.yaml").read_text(encoding="utf-8"))
    raw["alerts"] = {**(raw.get("alerts") or {}), **alerts}
    path = tmp_path / "mpsync-alerts.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return path


def body_of(msg) -> str:
    part = msg.get_body(preferencelist=("html", "plain"))
    return part.get_content()


# ---- configuration and message --------------------------------------------------------------------------

def test_the_shipped_config_is_valid():
    from mpsync.airflow_glue.alerts import alert_settings

    cfg = alert_settings()
    assert cfg.notifier in ("smtp", "log", "none")
    assert cfg.smtp_conn_id == "smtp_alerts"


@pytest.mark.parametrize("raw, key", [
    ({"notifier": "pager"}, "alerts.notifier"),
    ({"notifier": "smtp", "recipients": []}, "alerts.recipients"),
    ({"notifier": "log", "recipients": ["not-an-address"]}, "alerts.recipients"),
    ({"notifier": "log", "from": 5}, "alerts.from"),
    ({"notifier": "log", "smtp_conn_id": ""}, "alerts.smtp_conn_id"),
])
def test_bad_alert_config_names_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_alert_settings(raw, "mpsync.yaml")


def test_one_line_cause_is_the_first_line_with_the_class():
    from airflow.sdk.exceptions import AirflowFailException

    assert one_line_cause(ValueError("\n  price file refused: 0 rows\nrow 2: ...")) == (
        "ValueError: price file refused: 0 rows")
    assert one_line_cause(AirflowFailException("stock file refused: empty")) == "stock file refused: empty"
    assert one_line_cause(KeyError()) == "KeyError"
    assert "no exception" in one_line_cause(None)


def test_delivery_to_a_real_smtp_server(smtp_inbox, tmp_path, monkeypatch):
    cfg = parse_alert_settings({"notifier": "smtp", "recipients": ["ops@shop.example", "lead@shop.example"]},
                               "test")
    report = FailureReport("onec_price_import", "manual__2026-03-01", "prepare_price_import", -1, 3,
                           "PriceFileRefused: {{ not a template }} <b>", "PriceFileRefused: ...\nrow 7: bad",
                           "http://airflow.local/dags/onec_price_import/runs/manual__2026-03-01/tasks/x", "task_failure")
    deliver(report, cfg)
    assert len(smtp_inbox.messages) == 1
    msg = smtp_inbox.messages[0]
    assert sorted(smtp_inbox.envelopes[0].rcpt_tos) == ["lead@shop.example", "ops@shop.example"]
    assert msg["From"] == "airflow@shop.example"       # from the connection's extra, as configured there
    assert msg["Subject"] == "[mpsync] DAG onec_price_import failed: PriceFileRefused: {{ not a template }} <b>"
    body = body_of(msg)
    assert "{{ not a template }} &lt;b&gt;" in body    # not rendered by Jinja, HTML-escaped
    assert "row 7: bad" in body and "prepare_price_import" in body and "manual__2026-03-01" in body


def test_log_and_none_notifiers_send_no_mail(smtp_inbox, caplog):
    report = FailureReport("d", "r", "t", None, 1, "ValueError: x", "", None, None)
    with caplog.at_level("ERROR"):
        deliver(report, parse_alert_settings({"notifier": "log"}, "test"))
    assert "ALERT [mpsync] DAG d failed: ValueError: x" in caplog.text
    deliver(report, parse_alert_settings({"notifier": "none", "recipients": ["a@b.c"]}, "test"))
    assert smtp_inbox.messages == []


def test_every_alert_is_also_one_line_in_the_alerts_file(smtp_inbox, tmp_path, monkeypatch):
    """./run sets MPSYNC_ALERTS_LOG (var/alerts.log) and prints each new line on its console."""
    monkeypatch.setenv("MPSYNC_ALERTS_LOG", str(tmp_path / "alerts.log"))
    report = FailureReport("onec_stock_import", "manual__1", "prepare_stock_import", None, 1,
                           "Ostatki.csv refused, stock untouched: no known articles\nsecond line", "", "http://x/log", None)
    deliver(report, parse_alert_settings({"notifier": "none"}, "test"))
    deliver(report, parse_alert_settings({"notifier": "log"}, "test"))
    lines = (tmp_path / "alerts.log").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and smtp_inbox.messages == []
    assert lines[0].endswith("Z [mpsync] DAG onec_stock_import failed: Ostatki.csv refused, stock untouched: no known"
                             " articles second line | task prepare_stock_import | log http://x/log"), lines[0]


# ---- a real failing run: one mail for the run, whatever the retries and mapped instances ----------------

def _probe_dag(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "dags-folder", "classpath": local, "kwargs": {}},
        {"name": "alert-probe", "classpath": local, "kwargs": {"path": str(PROBE_DIR)}},
    ]))
    bag = DagBag(dag_folder=str(PROBE_DIR), bundle_name="alert-probe")
    assert not bag.import_errors, bag.import_errors
    return bag.dags["alert_probe"]


def _tries(run) -> dict[tuple[str, int], tuple[str, int]]:
    from airflow.models import TaskInstance
    from airflow.settings import Session

    with Session() as s:
        return {(ti.task_id, ti.map_index): (str(ti.state), ti.try_number) for ti in s.query(TaskInstance).filter(
            TaskInstance.run_id == run.run_id, TaskInstance.dag_id == run.dag_id)}


def test_a_failed_run_with_retries_sends_exactly_one_mail(airflow_db, smtp_inbox, tmp_path, monkeypatch):
    write_config(tmp_path, monkeypatch, {"notifier": "smtp", "recipients": ["ops@shop.example"],
                                         "subject_prefix": "[shop]"})
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.shop.example:8080")
    dag = _probe_dag(monkeypatch)
    run = dag.test()

    tries = _tries(run)
    assert str(run.state) == "failed"
    # Both fragments really went through their retries (3 tries each) before failing for good.
    assert tries[("apply_fragment", 0)] == ("failed", 3) and tries[("apply_fragment", 1)] == ("failed", 3), tries
    assert len(smtp_inbox.messages) == 1, [m["Subject"] for m in smtp_inbox.messages]
    msg = smtp_inbox.messages[0]
    assert smtp_inbox.envelopes[0].rcpt_tos == ["ops@shop.example"]
    # dag.test() runs the DAG callback without the Task SDK's XCom channel (alerts._recorded_cause): the cause
    # is not readable there, so the one mail names the task and points at its log.
    assert msg["Subject"] == "[shop] DAG alert_probe failed: task apply_fragment failed (task_failure; see the log)"
    body = body_of(msg)
    assert "alert_probe" in body and "apply_fragment[" in body and run.run_id in body
    link = "http://airflow.shop.example:8080/dags/alert_probe/runs/"
    assert link in body and "/tasks/apply_fragment/mapped/" in body and "try_number=3" in body

    # The same run's failure callback, executed the way the dag-processor executes it in production: the DAG
    # file parsed in a child process, the cause read back with the public ti.xcom_pull through its channel.
    map_index = run_failure_callback_in_dag_processor(run, tmp_path, PROBE_DIR / "alert_probe.py")
    assert len(smtp_inbox.messages) == 2, [m["Subject"] for m in smtp_inbox.messages]
    again = smtp_inbox.messages[1]
    assert again["Subject"] == ("[shop] DAG alert_probe failed: RuntimeError: FTP connection reset while reading "
                                f"fragment {map_index + 1}")
    assert "\n" not in again["Subject"] and "421" not in again["Subject"]   # one line: the first line only
    assert "server said: 421 Timeout" in body_of(again)                  # the details below the cause
    assert f"{link}{quote(run.run_id)}/tasks/apply_fragment/mapped/{map_index}?try_number=3" in body_of(again)


def run_failure_callback_in_dag_processor(run, tmp_path: Path, dag_file: Path) -> int:
    """Run the DAG's failure callback in a dag-processor child process (as production does: the public
    ti.xcom_pull works there); return the failed map index used."""
    import selectors
    import time

    import structlog
    from uuid6 import uuid7

    from airflow.sdk.log import logging_processors

    from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
    from airflow.dag_processing.processor import DagFileProcessorProcess
    from airflow.models import DagRun, TaskInstance
    from airflow.sdk.api.client import Client
    from airflow.settings import Session
    from airflow.utils.state import TaskInstanceState

    with Session() as s:
        dr = s.query(DagRun).filter(DagRun.dag_id == run.dag_id, DagRun.run_id == run.run_id).one()
        ti = s.query(TaskInstance).filter(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id,
                                          TaskInstance.state == TaskInstanceState.FAILED).first()
        request = dr.produce_dag_callback(dag=None, success=False, relevant_ti=ti, reason="task_failure")
    client = Client(base_url=None, token="", dry_run=True, transport=InProcessExecutionAPI().transport)
    client.base_url = "http://in-process.invalid./"
    selector = selectors.DefaultSelector()
    logfile = (tmp_path / "processor.log").open("ab")
    proc = DagFileProcessorProcess.start(
        id=uuid7(), path=dag_file, bundle_path=dag_file.parent, bundle_name="alert-probe",
        dag_file_rel_path=dag_file.name, callbacks=[request], selector=selector,
        logger=structlog.wrap_logger(structlog.BytesLogger(logfile), processors=logging_processors(json_output=True),
                                     logger_name="processor").bind(), logger_filehandle=logfile, client=client,
    )
    deadline = time.monotonic() + 120
    while not proc.is_ready and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1.0):
            handler, on_close = key.data
            if not handler(key.fileobj):
                on_close(key.fileobj)
                key.fileobj.close()
    logfile.close()
    assert proc.is_ready, "the dag-processor child did not finish"
    print((tmp_path / "processor.log").read_text(errors="replace")[-3000:])
    return ti.map_index
