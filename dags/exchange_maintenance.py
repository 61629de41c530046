"""
### Exchange maintenance: data that stops growing

Daily at 03:30 Moscow time (retention in the `retention:` config section, docs/production.md):

- **make partitions** – the stock and price history are partitioned by day; the days ahead are made in advance
  (a missed run loses nothing: rows of a day without partition wait in the default one and are moved);
- **drop old history** – day partitions older than `history_days` (90) are dropped whole; `stock_as_of` /
  `price_as_of` answer exactly within the retention and refuse a time before it;
- **trim log tables** – rejected rows, order sync windows, processed webhook bodies and the 1C exchange log
  older than `log_days` (90);
- **trim FTP** – archived 1C drops (`processed/YYYY-MM-DD/`) and staff result files older than `ftp_days` (90).
"""

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, task

from mpsync.airflow_glue import retention
from mpsync.airflow_glue.dag_defaults import Tag, dag_kwargs, tags


@task(task_display_name="Make the history's day partitions ahead")
def make_partitions() -> int:
    return retention.make_partitions()


@task(task_display_name="Drop history older than the retention")
def drop_old_history() -> int:
    return retention.drop_old_history()


@task(task_display_name="Trim rejected rows, order windows, webhook and 1C logs")
def trim_log_tables() -> dict:
    return retention.trim_log_tables()


@task(task_display_name="Delete old archived drops and result files on the FTP")
def trim_ftp_files() -> int:
    return retention.trim_ftp_files()


@dag(
    dag_id="exchange_maintenance",
    dag_display_name="Exchange maintenance (retention)",
    schedule=CronTriggerTimetable("30 3 * * *", timezone="Europe/Moscow"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Moscow"),
    catchup=False,
    max_active_runs=1,
    tags=tags(Tag.OPERATIONS),
    doc_md=__doc__,
    **dag_kwargs(),
)
def exchange_maintenance():
    make_partitions() >> [drop_old_history(), trim_log_tables(), trim_ftp_files()]


exchange_maintenance()
