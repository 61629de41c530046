"""
### 1C price import (`MP_PRICE`)

Applies the staff's price table (article, "Текущая цена", "цена без акции", optional per-marketplace
override columns) to the exchange database, and writes a **result file for staff** next to it on the FTP
(`results/`): every row with `applied` / `unchanged` / `held: reason` / `rejected: reason`.

**Two ways to start it**
- *Automatically*: every 10 minutes a run waits (reschedule mode) for a new `MP_PRICE*` file in the price
  drop folder whose upload has finished. Several waiting files are taken one per run, oldest first.
- *By hand* (Trigger with the form): **file** = the name of a file waiting in the price folder (empty =
  behave like the automatic run); **dry run** = compute the same report without writing anything
  (result file `...dry-run-....xlsx`). A file named differently from the pattern (e.g. `CHECK_prices.xlsx`)
  is never picked automatically: upload under such a name to preview, then rename to apply.

**Steps**
1. **ensure_schema**; **check_price_file_choice** – the form's file is really waiting on the FTP (else the
   error lists the waiting files); **route_price_run** – chosen file: skip the sensor.
2. **wait_for_price_file** – the drop-folder sensor (automatic runs only).
3. **prepare_price_import** – download, parse (cached formula values), stage; a file with no usable row is
   refused whole (result file says why; prices untouched).
4. **apply_price_fragment** – one mapped task per fragment; a price of zero, below the floor, or changed by
   more than the allowed share is **held** (not applied); only changed prices are written; safe to retry.
5. **finish_price_import** – result file on the FTP, ledger, file to `processed/`, and the `catalog_changed`
   asset event only when a price really changed.

**Backfill** (`airflow backfill create --dag-id onec_price_import --from-date ... --to-date ...`): each
backfilled interval re-reads the price tables archived for it into `price_history`; current prices are never
rolled back. A table older than one already applied is recorded as `stale` and never applied.

Guards and override columns: section `prices` of `include/config/mpsync.yaml`. Staff guide:
`docs/prices-and-catalog.md`.
"""

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from mpsync import db
from mpsync.airflow_glue import imports
from mpsync.airflow_glue.assets import CATALOG_CHANGED_ALIAS, PRICES_HELD, PRICES_HELD_ALIAS
from mpsync.airflow_glue.connections import exchange_dsn, ftp_params
from mpsync.airflow_glue.dag_defaults import Tag, default_args, failure_alert, tags
from mpsync.airflow_glue.failures import refusal_fails_without_retry
from mpsync.airflow_glue.sensors import wait_for_new_files
from mpsync.imports.price import PRICE, PriceFileChoiceError, choose_file
from mpsync.settings import settings


@task(task_display_name="Ensure the exchange DB schema")
def ensure_schema() -> list[str]:
    return db.migrate(exchange_dsn())


@task.branch(task_display_name="Live import, or backfill of history")
def choose_price_mode() -> str:
    return "reprocess_archived_price_files" if imports.is_backfill() else "check_price_file_choice"


@task(task_display_name="Backfill: archived price tables of the period into history")
def reprocess_archived_price_files() -> dict:
    return imports.backfill(PRICE)


@task(task_display_name="Check the file chosen in the trigger form")
def check_price_file_choice() -> dict | None:
    cfg = settings()
    wanted = get_current_context()["params"].get("file")
    with refusal_fails_without_retry(PriceFileChoiceError):     # a wrong name: retrying won't help
        return choose_file(ftp_params(cfg.ftp_conn_id), cfg, wanted, exchange_dsn())


@task.branch(task_display_name="Chosen file, or wait for one")
def route_price_run(choice: dict | None) -> list[str]:
    return [] if choice else ["wait_for_price_file"]


@task(trigger_rule="none_failed_min_one_success")
def prepare_price_import(choice: dict | None, sensed: list[dict] | None) -> dict:
    files = [choice] if choice else (sensed or [])
    if not files:
        raise AirflowSkipException("no new price file")
    return imports.prepare(PRICE, files)


@task
def plan_price_fragments(prepared: dict) -> list[dict]:
    return prepared["fragments"]


@task(map_index_template="{{ fragment_label }}", retries=4)
def apply_price_fragment(fragment: dict) -> int:
    return imports.apply_fragment(PRICE, fragment)


@task(outlets=[CATALOG_CHANGED_ALIAS, PRICES_HELD_ALIAS], trigger_rule="none_failed_min_one_success")
def finish_price_import(prepared: dict, *, outlet_events=None) -> dict:
    summary = imports.finish(PRICE, prepared, outlet_events)
    if summary.details.get("held_for_approval"):
        # price_approvals asks an operator: apply the held prices or keep the current ones
        outlet_events[PRICES_HELD_ALIAS].add(PRICES_HELD, extra={
            "import_file_id": summary.import_file_id, "file": summary.file,
            "held": summary.details["held_for_approval"]})
    return summary.to_dict()


@dag(
    dag_id="onec_price_import",
    dag_display_name="1C price import",
    # Every 10 minutes a run waits for a new file (the sensor pokes every minute), so a price file
    # uploaded by staff is applied within minutes; max_active_runs=1 keeps files in order.
    schedule=CronDataIntervalTimetable("*/10 * * * *", timezone="Europe/Moscow"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Moscow"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    on_failure_callback=failure_alert(),
    tags=tags(Tag.ONEC, Tag.IMPORT, Tag.PRICE),
    doc_md=__doc__,
    params={
        "file": Param(
            None, type=["null", "string"], title="Price file on the FTP",
            description="Name of a file waiting in the price drop folder (e.g. MP_PRICE_0105.xlsx). "
                        "Leave empty to take the oldest new MP_PRICE* file. If the name is not waiting there, "
                        "the first task fails and its log lists the files that are."),
        "dry_run": imports.dry_run_param("row", "the file stays"),
    },
)
def onec_price_import():
    choice = check_price_file_choice()
    ensure_schema() >> choose_price_mode() >> [choice, reprocess_archived_price_files()]
    files = wait_for_new_files("price")
    route_price_run(choice) >> files
    prepared = prepare_price_import(choice, files)
    applied = apply_price_fragment.expand(fragment=plan_price_fragments(prepared))
    applied >> finish_price_import(prepared)


onec_price_import()
