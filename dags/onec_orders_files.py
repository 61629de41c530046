"""
### Orders to 1C as files (for 1C loading orders from a folder)

Only for setups where 1C loads orders from an FTP folder instead of taking them over HTTP at `/onec/exchange`:
switch on with `onec_exchange.ftp: {enabled: true, mode: files}` in the config (otherwise every run is
**skipped**). Every **5 minutes**, the orders 1C does not have yet (new or changed since the last file) go into
ONE CommerceML document written to the FTP folder (`onec_exchange.ftp.folder`, default `/1c/orders`) as
`orders_<time>_<n>.xml`: uploaded as `.part`, then renamed, so 1C never opens a half-written file. They count
as sent only once the file is there; a failed upload sends them in the next file. A run with nothing new is
skipped and writes no file. docs/onec-exchange.md, "The file alternative".
"""

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, task

from mpsync.airflow_glue.dag_defaults import Tag, dag_kwargs, tags
from mpsync.airflow_glue.onec_orders_files import write_orders_file


@task(task_display_name="Write new and changed orders as one file for 1C")
def write_file() -> dict:
    return write_orders_file()


@dag(
    dag_id="onec_orders_files",
    dag_display_name="Orders to 1C as files on the FTP",
    schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=tags(Tag.ONEC, Tag.ORDERS),
    doc_md=__doc__,
    **dag_kwargs(),
)
def onec_orders_files():
    write_file()


onec_orders_files()
