"""
### Exchange freshness watcher

Every 15 minutes, checks that data is still flowing (thresholds in `alerts.freshness`, docs/alerts.md):

- **stock** – a 1C stock file has arrived within the allowed silence, counted in business hours only
  (1C drops hourly 07:30–22:00 Moscow time; nights and closed days are not checked);
- **feeds** – every enabled feed file was published recently enough;
- **orders** – every configured order account's checkpoint has moved recently;
- **parked** – no more parked sync objects than allowed.

All fresh: the run succeeds. Something stale: the run **fails** with one message listing everything stale
(the failure alert mails it). The same stale things are re-alerted every `realert_minutes`; in between, runs are
**skipped** ("still stale, already alerted") so the operator is not mailed every 15 minutes.
"""

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, task

from mpsync.airflow_glue.alerts import watch_freshness
from mpsync.airflow_glue.connections import exchange_dsn
from mpsync.airflow_glue.dag_defaults import Tag, dag_kwargs, tags


@task(task_display_name="Check stock, feeds, orders and parked objects")
def check_freshness() -> str:
    return watch_freshness(exchange_dsn())


@dag(
    dag_id="exchange_freshness",
    dag_display_name="Exchange freshness watcher",
    schedule=CronTriggerTimetable("*/15 * * * *", timezone="Europe/Moscow"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Moscow"),
    catchup=False,
    max_active_runs=1,
    tags=tags(Tag.OPERATIONS),
    doc_md=__doc__,
    **dag_kwargs(),
)
def exchange_freshness():
    check_freshness()


exchange_freshness()
