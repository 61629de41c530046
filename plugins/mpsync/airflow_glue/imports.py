"""The import tasks' bodies, the same for every kind (mpsync.imports.pipeline): settings and connections in,
JSON out (XCom), refusals failing without retry, the checkpoint mirrored, catalog_changed announced only
when rows really changed."""

from __future__ import annotations

from airflow.sdk import Param, get_current_context

from mpsync.airflow_glue.assets import CATALOG_CHANGED, CATALOG_CHANGED_ALIAS
from mpsync.airflow_glue.checkpoints import mirror_checkpoint
from mpsync.airflow_glue.connections import exchange_dsn, ftp_params
from mpsync.airflow_glue.failures import refusal_fails_without_retry
from mpsync.imports import pipeline
from mpsync.imports.contracts import Fragment, ImportSummary
from mpsync.settings import settings


def prepare(kind: pipeline.Kind, files: list[dict]) -> dict:
    """The trigger form's dry run (param dry_run) only writes a result file ("would apply")."""
    cfg = settings()
    dry_run = bool(get_current_context()["params"].get("dry_run"))
    with refusal_fails_without_retry():
        return pipeline.prepare(kind, exchange_dsn(), ftp_params(cfg.ftp_conn_id), files, cfg,
                                dry_run=dry_run).to_dict()


def apply_fragment(kind: pipeline.Kind, fragment: dict) -> int:
    # The mapped task instance is named by its rows ("rows 2–2001 of Ostatki_MP.xlsx"): map_index_template
    get_current_context()["fragment_label"] = Fragment.from_dict(fragment).label
    with refusal_fails_without_retry():
        return pipeline.apply_fragment(kind, exchange_dsn(), fragment, settings())


def finish(kind: pipeline.Kind, prepared: dict, outlet_events) -> ImportSummary:
    cfg = settings()
    with refusal_fails_without_retry():
        summary = pipeline.finish(kind, exchange_dsn(), ftp_params(cfg.ftp_conn_id), prepared, cfg)
    if summary.checkpoint:
        mirror_checkpoint(kind.checkpoint, summary.checkpoint)
    if summary.changed:
        outlet_events[CATALOG_CHANGED_ALIAS].add(CATALOG_CHANGED, extra={"source": kind.name, **summary.to_dict()})
    return summary


def backfill(kind: pipeline.Kind) -> dict:
    """The run's data interval's archived files into history (a backfill run)."""
    ctx, cfg = get_current_context(), settings()
    return pipeline.backfill(kind, exchange_dsn(), ftp_params(cfg.ftp_conn_id), cfg,
                             ctx["data_interval_start"], ctx["data_interval_end"]).to_dict()


def is_backfill() -> bool:
    return get_current_context()["dag_run"].run_type == "backfill"


def dry_run_param(rows: str = "row", stays: str = "the file stays") -> Param:
    """The trigger form's dry run switch (read by prepare)."""
    return Param(False, type="boolean", title="Dry run",
                 description=f"Only report what would change: the result file (…dry-run…xlsx in results/) lists "
                             f"every {rows} as «будет применено», «без изменений», «отложено» or «отклонено»; nothing is "
                             f"written and {stays} in the drop folder.")
