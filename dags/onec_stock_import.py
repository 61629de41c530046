"""
### 1C stock import (`Ostatki_MP`)

Every hour, and when triggered by hand, takes the newest stock report 1C dropped on the FTP and applies it
to the exchange database.

1. **ensure_schema** – the exchange database schema is up to date.
2. **wait_for_stock_file** – waits (reschedule mode) for a new file matching the configured pattern whose
   size has stopped changing. No file within the hour: the run is *skipped*, not failed.
3. **prepare_stock_import** – downloads, parses (.xls/.xlsx/CSV), rejects bad rows (unknown article,
   duplicate, non-numeric, negative: see the log and table `import_reject`), and **refuses the whole file**
   if it is empty or covers too few known articles compared to the previous import. Stock is then untouched.
4. **plan_stock_fragments**, **apply_stock_fragment** – one mapped task per fragment ("rows 2–2001 of Ostatki_MP.xlsx"); only
   quantities that changed are written; each fragment retries on its own and is safe to re-run. Rows equal to
   the last applied report are in no fragment (the prepare log counts them as "unchanged since the last
   report"), so an hourly file with few changes maps few rows.
5. **finish_stock_import** – ledger totals, file moved to `processed/<date>/` on the FTP, checkpoint, and the
   `catalog_changed` asset event when stock really changed (feeds and pushes follow).

**Dry run** (Trigger with the form, *dry run* on): the same parse and comparison with current stock, nothing
written; the result file `...dry-run-....xlsx` in `results/` lists every row as «будет применено» / «без изменений» /
«отклонено», and the file stays in the drop folder.

**Backfill** (`airflow backfill create --dag-id onec_stock_import --from-date 2026-11-01 --to-date 2026-11-08`):
each backfilled hour re-reads the files archived for that hour into `stock_history` (what the stock was, and
which file set it). Current stock is never rolled back.

Column binding (position -> warehouse -> marketplace) is in `include/config/mpsync.yaml`.
"""

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, task

from mpsync import db
from mpsync.airflow_glue import imports
from mpsync.airflow_glue.assets import CATALOG_CHANGED_ALIAS
from mpsync.airflow_glue.connections import exchange_dsn
from mpsync.airflow_glue.dag_defaults import Tag, default_args, failure_alert, tags
from mpsync.airflow_glue.sensors import wait_for_new_files
from mpsync.imports.stock import STOCK


@task(task_display_name="Ensure the exchange DB schema")
def ensure_schema() -> list[str]:
    return db.migrate(exchange_dsn())


@task.branch(task_display_name="Live import, or backfill of history")
def choose_stock_mode() -> str:
    return "reprocess_archived_stock_files" if imports.is_backfill() else "wait_for_stock_file"


@task(task_display_name="Backfill: archived files of the period into history")
def reprocess_archived_stock_files() -> dict:
    return imports.backfill(STOCK)


@task(retries=2)
def prepare_stock_import(files: list[dict]) -> dict:
    return imports.prepare(STOCK, files)


@task
def plan_stock_fragments(prepared: dict) -> list[dict]:
    return prepared["fragments"]


@task(map_index_template="{{ fragment_label }}", retries=4)
def apply_stock_fragment(fragment: dict) -> int:
    return imports.apply_fragment(STOCK, fragment)


@task(outlets=[CATALOG_CHANGED_ALIAS], trigger_rule="none_failed_min_one_success")
def finish_stock_import(prepared: dict, *, outlet_events=None) -> dict:
    return imports.finish(STOCK, prepared, outlet_events).to_dict()


@dag(
    dag_id="onec_stock_import",
    dag_display_name="1C stock import",
    # Interval timetable, not a bare cron: a run covers a real hour, so backfills have a period.
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="Europe/Moscow"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Moscow"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    on_failure_callback=failure_alert(),
    tags=tags(Tag.ONEC, Tag.IMPORT, Tag.STOCK),
    doc_md=__doc__,
    params={
        "dry_run": imports.dry_run_param("row", "the file stays"),
    },
)
def onec_stock_import():
    files = wait_for_new_files("stock")
    ensure_schema() >> choose_stock_mode() >> [files, reprocess_archived_stock_files()]
    prepared = prepare_stock_import(files)
    applied = apply_stock_fragment.expand(fragment=plan_stock_fragments(prepared))
    applied >> finish_stock_import(prepared)


onec_stock_import()
