"""Failure alerts: ONE message per failed DAG run, through the notifier chosen in the `alerts:` config section.

Two callbacks, both installed for every DAG (dag_defaults):

* `record_failure_cause` - task level (in `default_args`). It runs in the worker only when a task has FAILED for
  good (a retry calls `on_retry_callback`, which we do not set), and it sends nothing: it keeps the exception's
  first line (and a short excerpt) as an XCom of the failed task.
* `FailureAlert` - DAG level (`on_failure_callback=failure_alert()`). Airflow calls it once per failed run
  (in the dag-processor), with the context of the task that made the run fail. It reads the recorded cause and
  sends one message naming the DAG, task, run, cause and log link.

So a run whose 40 mapped fragments all fail (the database is down) sends one message, not 40, and a task
that fails twice and then succeeds sends none.
"""

from __future__ import annotations

import html
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import BaseNotifier

from mpsync.settings import ConfigError, settings

log = logging.getLogger(__name__)

NOTIFIERS = ("smtp", "log", "none")
SMTP_CONN_ID = "smtp_alerts"
CAUSE_KEY = "mpsync_failure_cause"
# Every alert also goes to this file as one line when the variable is set (./run sets it to var/alerts.log and
# prints each new line on its console), whatever the notifier.
ALERTS_FILE_ENV = "MPSYNC_ALERTS_LOG"
DETAILS_LIMIT = 4000
# Glue wrappers whose class name says nothing to an operator (the message itself is the cause).
_WRAPPERS = ("AirflowFailException", "AirflowException", "AirflowSkipException")


# ---- configuration ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlertSettings:
    notifier: str
    recipients: tuple[str, ...]
    smtp_conn_id: str
    sender: str | None
    subject_prefix: str


def parse_alert_settings(raw: dict[str, Any], source) -> AlertSettings:
    """Validate the `alerts:` section (errors name the key)."""
    raw = raw or {}
    notifier = raw.get("notifier", "log")
    if notifier not in NOTIFIERS:
        raise ConfigError(f"{source}: 'alerts.notifier' must be one of {NOTIFIERS}, got {notifier!r}")
    recipients = raw.get("recipients") or []
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, list) or not all(isinstance(r, str) and "@" in r for r in recipients):
        raise ConfigError(f"{source}: 'alerts.recipients' must be a list of e-mail addresses, got {recipients!r}")
    if notifier == "smtp" and not recipients:
        raise ConfigError(f"{source}: 'alerts.recipients' is empty but 'alerts.notifier' is smtp")
    sender = raw.get("from")
    if sender is not None and (not isinstance(sender, str) or "@" not in sender):
        raise ConfigError(f"{source}: 'alerts.from' must be an e-mail address or null, got {sender!r}")
    conn_id = raw.get("smtp_conn_id", SMTP_CONN_ID)
    if not isinstance(conn_id, str) or not conn_id:
        raise ConfigError(f"{source}: 'alerts.smtp_conn_id' must be a connection id, got {conn_id!r}")
    prefix = raw.get("subject_prefix", "[mpsync]")
    if not isinstance(prefix, str):
        raise ConfigError(f"{source}: 'alerts.subject_prefix' must be text, got {prefix!r}")
    return AlertSettings(notifier, tuple(recipients), conn_id, sender, prefix)


def alert_settings() -> AlertSettings:
    st = settings()
    return parse_alert_settings(st.section("alerts"), st.source)


# ---- the message -----------------------------------------------------------------------------------------

def one_line_cause(exc: BaseException | None) -> str:
    """The exception's first non-empty line, with its class name when that adds meaning."""
    if exc is None:
        return "no exception recorded (killed, timed out or marked failed)"
    text = str(exc).strip()
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    name = type(exc).__name__
    if not first:
        return name
    return first if name in _WRAPPERS else f"{name}: {first}"


@dataclass(frozen=True)
class FailureReport:
    dag_id: str
    run_id: str
    task_id: str | None
    map_index: int | None
    try_number: int | None
    cause: str
    details: str
    log_url: str | None
    reason: str | None

    @property
    def task_label(self) -> str:
        if not self.task_id:
            return "(no task: the run itself failed)"
        return self.task_id + (f"[{self.map_index}]" if self.map_index is not None and self.map_index >= 0 else "")

    def subject(self, prefix: str = "") -> str:
        line = f"{prefix} DAG {self.dag_id} failed: {self.cause}".strip()
        return line if len(line) <= 200 else line[:197] + "..."

    def text(self) -> str:
        lines = [
            f"DAG:    {self.dag_id}",
            f"Task:   {self.task_label}" + (f" (try {self.try_number})" if self.try_number else ""),
            f"Run:    {self.run_id}",
            f"Cause:  {self.cause}",
            f"Log:    {self.log_url or '-'}",
        ]
        if self.details and self.details.strip() != self.cause:
            lines += ["", self.details]
        return "\n".join(lines)

    def html(self) -> str:
        e = html.escape
        rows = [("DAG", self.dag_id), ("Task", self.task_label), ("Run", self.run_id), ("Cause", self.cause)]
        body = "".join(f"<tr><th align='left'>{k}</th><td>{e(str(v))}</td></tr>" for k, v in rows)
        link = f"<a href='{e(self.log_url)}'>{e(self.log_url)}</a>" if self.log_url else "-"
        body += f"<tr><th align='left'>Log</th><td>{link}</td></tr>"
        extra = f"<pre>{e(self.details)}</pre>" if self.details and self.details.strip() != self.cause else ""
        return f"<table>{body}</table>{extra}"


# ---- task level: keep the cause, send nothing -------------------------------------------------------------

def record_failure_cause(context) -> None:
    """Task on_failure_callback: store the cause for the run's single alert. Never sends anything."""
    exc = context.get("exception")
    ti = context["ti"]
    details = str(exc or "").strip()
    ti.xcom_push(CAUSE_KEY, {"cause": one_line_cause(exc), "details": details[:DETAILS_LIMIT]})


def _recorded_cause(ti) -> dict | None:
    # The Task SDK's public `ti.xcom_pull`, which the dag-processor serves to DAG callbacks (Airflow 3.1+,
    # apache/airflow#55542). dag.test() runs DAG callbacks in its own process without that channel, so there
    # it raises and the alert goes out without the cause ("see the log"): the only other way is reading the
    # metadata database, which Airflow 3 rules out of the public interface.
    return ti.xcom_pull(task_ids=ti.task_id, key=CAUSE_KEY, map_indexes=ti.map_index)


def failure_report(context) -> FailureReport:
    """Everything the alert says, from a DAG failure callback's context."""
    ti = context.get("ti")
    dag = context.get("dag")
    dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "?")
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    reason = context.get("reason")
    recorded = None
    if ti is not None:
        try:
            recorded = _recorded_cause(ti)
        except Exception as exc:  # the alert must go out even when the cause cannot be read
            log.warning("could not read the recorded failure cause (%s: %s)", type(exc).__name__, exc)
    if recorded:
        cause, details = recorded.get("cause") or "?", recorded.get("details") or ""
    elif ti is not None:
        cause, details = f"task {ti.task_id} failed ({reason or 'no cause recorded'}; see the log)", ""
    else:
        cause, details = f"run failed: {reason or 'unknown reason'}", ""
    log_url = None
    if ti is not None:
        try:
            log_url = ti.log_url
        except Exception:
            log_url = None
    return FailureReport(
        dag_id=dag_id, run_id=run_id, task_id=getattr(ti, "task_id", None),
        map_index=getattr(ti, "map_index", None), try_number=getattr(ti, "try_number", None),
        cause=cause, details=details, log_url=log_url, reason=reason,
    )


# ---- delivery ---------------------------------------------------------------------------------------------

def alert_line(report: FailureReport, prefix: str = "", at: datetime | None = None) -> str:
    """The alert as one line: time (UTC), subject, task, log link."""
    at = at or datetime.now(timezone.utc)
    line = f"{at:%Y-%m-%d %H:%M:%SZ} {report.subject(prefix)} | task {report.task_label} | log {report.log_url or '-'}"
    return " ".join(line.split())          # a cause with a line break stays one line


def append_to_alerts_file(report: FailureReport, prefix: str = "") -> None:
    path = os.environ.get(ALERTS_FILE_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:     # one short append: whole lines even from two writers
            fh.write(alert_line(report, prefix) + "\n")
    except OSError as exc:                                 # never let the copy stop the real alert
        log.warning("could not append the alert to %s: %s", path, exc)


def deliver(report: FailureReport, cfg: AlertSettings) -> None:
    """Send one report through the configured notifier (and one line to the alerts file, if set)."""
    append_to_alerts_file(report, cfg.subject_prefix)
    if cfg.notifier == "none":
        log.info("alerts.notifier is none; not sent: %s", report.subject())
        return
    if cfg.notifier == "log":
        log.error("ALERT %s\n%s", report.subject(cfg.subject_prefix), report.text())
        return
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    # A fresh notifier per message: SmtpNotifier fills its fields in place. Subject and body are final text
    # (never Jinja-rendered: an exception message may contain braces).
    SmtpNotifier(
        to=list(cfg.recipients),
        from_email=cfg.sender,
        subject=report.subject(cfg.subject_prefix),
        html_content=report.html(),
        smtp_conn_id=cfg.smtp_conn_id,
    ).notify({})    # no DAG in the context: nothing is templated (dag.test() hands over a SerializedDAG)
    log.info("failure alert sent to %s: %s", ", ".join(cfg.recipients), report.subject())


class FailureAlert(BaseNotifier):
    """DAG on_failure_callback: one alert per failed run. Configuration is read when it fires, not at parse."""

    def render_template_fields(self, context, jinja_env=None) -> None:
        """Nothing to template: the message is built from the context as plain text."""

    def notify(self, context) -> None:
        deliver(failure_report(context), alert_settings())


def failure_alert() -> FailureAlert:
    return FailureAlert()



# ---- freshness watcher -------------------------------------------------------------------------------------

def watch_freshness(dsn: str) -> str:
    """The watcher task: succeed when all is fresh; fail WITHOUT retry (-> one alert listing everything stale)
    when something is stale and due; skip when the same stale things were alerted less than realert ago."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from mpsync import freshness

    verdict = freshness.evaluate(dsn)
    if not verdict.findings:
        log.info("freshness: all fresh")
        return verdict.summary()
    if verdict.alert:
        raise AirflowFailException(verdict.summary())
    since = min(verdict.alerted_at.values()).isoformat(timespec="minutes") if verdict.alerted_at else "?"
    raise AirflowSkipException(f"still stale, already alerted (first at {since}); no new alert yet:\n"
                               + verdict.summary())
