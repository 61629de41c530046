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
3. **import_catalog** – parse and apply in one transaction: new articles create products, changed fields
   update them, an article missing from a FULL file is marked inactive (never deleted); a partial
   CommerceML file (`СодержитТолькоИзменения="true"`) leaves absent products alone. A full file that would
   switch off too much of the catalog is refused whole. A result .xlsx for staff goes to `results/` on the
   FTP, the files to `processed/`; `catalog_changed` is emitted only when something changed.

**Dry run** (Trigger with the form): the exchange applied in a transaction that is rolled back; only the
result file `...dry-run-....xlsx` is written and the files stay in the drop folder. A file made before one
already applied is recorded as `stale` and not applied. Files are archived by the day they were made.

Configuration: sections `catalog` and `commerceml` of `include/config/mpsync.yaml`;
guide: `docs/prices-and-catalog.md`.
"""

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from mpsync import db
from mpsync.airflow_glue.assets import CATALOG_CHANGED, CATALOG_CHANGED_ALIAS
from mpsync.airflow_glue.checkpoints import mirror_checkpoint
from mpsync.airflow_glue.connections import exchange_dsn, ftp_params
from mpsync.airflow_glue.dag_defaults import Tag, default_args, failure_alert, tags
from mpsync.airflow_glue.failures import refusal_fails_without_retry
from mpsync.airflow_glue.sensors import wait_for_new_files
from mpsync.imports import catalog
from mpsync.settings import settings


@task(task_display_name="Ensure the exchange DB schema")
def ensure_schema() -> list[str]:
    return db.migrate(exchange_dsn())


@task(outlets=[CATALOG_CHANGED_ALIAS], task_display_name="Import the catalog")
def import_catalog(files: list[dict], *, outlet_events=None) -> dict:
    cfg = settings()
    dry_run = bool(get_current_context()["params"].get("dry_run"))
    with refusal_fails_without_retry():
        summary = catalog.run(exchange_dsn(), ftp_params(cfg.ftp_conn_id), files, cfg, dry_run=dry_run)
    if summary.checkpoint:
        mirror_checkpoint(catalog.CHECKPOINT_NAME, summary.checkpoint)
    if summary.changed:
        outlet_events[CATALOG_CHANGED_ALIAS].add(CATALOG_CHANGED, extra={"source": "catalog", **summary.to_dict()})
    return summary.to_dict()


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
        "dry_run": Param(
            False, type="boolean", title="Dry run",
            description="Only report what would change: the result file (…dry-run…xlsx in results/) lists "
                        "every product as 'would apply', 'unchanged' or 'rejected'; nothing is written and the "
                        "files stay in the drop folder."),
    },
)
def onec_catalog_import():
    files = wait_for_new_files("catalog")
    ensure_schema() >> files
    import_catalog(files)


onec_catalog_import()
