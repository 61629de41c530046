"""
### 1C catalog import (nomenclature; spreadsheet or CommerceML)

Daily, and when triggered by hand: takes the nomenclature 1C dropped in the catalog folder on the FTP and
applies it to `product` (article, 1C code, name, brand, model, EAN, size class normal/KGT, RRP).

Accepted: the same spreadsheet kinds as stock (.xls/.xlsx/CSV), or a CommerceML exchange - 2.x
`import.xml` + `offers.xml`, or the 3.1 split files (goods, offers, prices, rests, storages, priceLists),
all new `.xml` files of the drop processed together. CommerceML prices (price types named in config) and
per-warehouse stock (1C warehouses mapped to ours in config) are applied too.

1. **ensure_schema**
2. **wait_for_catalog_file** – the drop-folder sensor (reschedule mode; nothing within the hour: skipped).
3. **prepare_catalog_import** – download, parse, stage the products (new articles without a name are
   rejected rows); a FULL file that would switch off too much of the catalog is refused whole, before
   anything is applied.
4. **plan_catalog_fragments**, **apply_catalog_fragment** – one mapped task per fragment ("rows 2–10001 of
   import.xml"): new articles create products, changed fields update them; each retries on its own.
5. **import_catalog** (Finish the catalog import) – an article missing from a FULL file is marked inactive
   (never deleted), a partial CommerceML file (`СодержитТолькоИзменения="true"`) leaves absent products
   alone, 1C's deletion marks switch products off; CommerceML prices (through the price guards) and stock;
   a result .xlsx for staff in `results/` on the FTP, the files to `processed/<the day made>/`;
   `catalog_changed` is emitted only when something changed.

**Dry run** (Trigger with the form): the exchange applied in a transaction that is rolled back; only the
result file `...dry-run-....xlsx` is written and the files stay in the drop folder. A file made before one
already applied is recorded as `stale` and not applied.

**Backfill** (`airflow backfill create --dag-id onec_catalog_import ...`): the CommerceML prices of the files
archived for each interval into `price_history`; current prices are never rolled back.

Configuration: sections `catalog` and `commerceml` of `include/config/mpsync.yaml`;
guide: `docs/prices-and-catalog.md`.
"""

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, task

from mpsync import db
from mpsync.airflow_glue import imports
from mpsync.airflow_glue.assets import CATALOG_CHANGED_ALIAS
from mpsync.airflow_glue.connections import exchange_dsn
from mpsync.airflow_glue.dag_defaults import Tag, default_args, failure_alert, tags
from mpsync.airflow_glue.sensors import wait_for_new_files
from mpsync.imports.catalog import CATALOG


@task(task_display_name="Ensure the exchange DB schema")
def ensure_schema() -> list[str]:
    return db.migrate(exchange_dsn())


@task.branch(task_display_name="Live import, or backfill of history")
def choose_catalog_mode() -> str:
    return "reprocess_archived_catalog_files" if imports.is_backfill() else "wait_for_catalog_file"


@task(task_display_name="Backfill: archived CommerceML prices of the period into history")
def reprocess_archived_catalog_files() -> dict:
    return imports.backfill(CATALOG)


@task(retries=2)
def prepare_catalog_import(files: list[dict]) -> dict:
    return imports.prepare(CATALOG, files)


@task
def plan_catalog_fragments(prepared: dict) -> list[dict]:
    return prepared["fragments"]


@task(map_index_template="{{ fragment_label }}", retries=4)
def apply_catalog_fragment(fragment: dict) -> int:
    return imports.apply_fragment(CATALOG, fragment)


# (task id kept from the one-task catalog import: runs, alerts and tests know it by this name)
@task(outlets=[CATALOG_CHANGED_ALIAS], trigger_rule="none_failed_min_one_success",
      task_display_name="Finish the catalog import")
def import_catalog(prepared: dict, *, outlet_events=None) -> dict:
    return imports.finish(CATALOG, prepared, outlet_events).to_dict()


@dag(
    dag_id="onec_catalog_import",
    dag_display_name="1C catalog import",
    # 1C sends the nomenclature (and RRP) once a day, early; the sensor waits up to an hour for it.
    schedule=CronDataIntervalTimetable("0 6 * * *", timezone="Europe/Moscow"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Moscow"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    on_failure_callback=failure_alert(),
    tags=tags(Tag.ONEC, Tag.IMPORT, Tag.CATALOG),
    doc_md=__doc__,
    params={
        "dry_run": imports.dry_run_param("product", "the files stay"),
    },
)
def onec_catalog_import():
    files = wait_for_new_files("catalog")
    ensure_schema() >> choose_catalog_mode() >> [files, reprocess_archived_catalog_files()]
    prepared = prepare_catalog_import(files)
    applied = apply_catalog_fragment.expand(fragment=plan_catalog_fragments(prepared))
    applied >> import_catalog(prepared)


onec_catalog_import()
