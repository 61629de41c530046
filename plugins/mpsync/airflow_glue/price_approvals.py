"""Task bodies of the price_approvals DAG: the held prices a price import announced, and the decision."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import psycopg
from airflow.sdk.exceptions import AirflowSkipException

from mpsync import price_approval, results
from mpsync.airflow_glue.assets import CATALOG_CHANGED, CATALOG_CHANGED_ALIAS, PRICES_HELD
from mpsync.airflow_glue.connections import exchange_dsn, ftp_params
from mpsync.settings import settings
from mpsync.imports.files import work_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Question:
    """What the ask task shows (subject, body) and which files' held prices it decides."""
    files: dict[str, str]          # import_file_id (as text: XCom is JSON) -> file name
    subject: str
    body: str


def held_prices(context) -> dict:
    """The files whose held prices still wait for a decision (the price imports' prices_held events)."""
    events = context["triggering_asset_events"].get(PRICES_HELD, []) if context.get("triggering_asset_events") else []
    files = {int(e.extra["import_file_id"]): e.extra.get("file", "?") for e in events if e.extra}
    waiting, bodies = [], []
    with psycopg.connect(exchange_dsn()) as conn:
        if not events:          # triggered by hand: every file with a held price still undecided
            files = dict(conn.execute(
                "select distinct h.import_file_id, f.name from price_hold h join import_file f using (import_file_id)"
                " where h.decision is null").fetchall())
        for fid, name in sorted(files.items()):
            holds = price_approval.pending(conn, fid)
            if holds:
                waiting.append(fid)
                bodies.append(price_approval.describe(holds, name))
                for h in holds[:50]:
                    log.warning("held in %s: %s (%s) %s -> %s: %s", name, h.article, h.price_list, h.current_price,
                                h.price, h.reason.strip())
    if not waiting:
        raise AirflowSkipException("no held price waits for a decision (decided already)")
    names = ", ".join(files[f] for f in waiting)
    return asdict(Question(files={str(f): files[f] for f in waiting},
                           subject=f"Held prices in {names}: apply them or keep the current ones?",
                           body="\n\n".join(bodies)))


def apply_answer(held: dict, answer: dict, outlet_events) -> dict:
    """The operator's answer (the Human-in-the-loop task's result) applied to every file it was asked about."""
    apply = price_approval.APPLY in (answer.get("chosen_options") or [])
    raw = ((answer.get("params_input") or {}).get("articles") or "").replace("\n", ",")
    articles = [a.strip() for a in raw.split(",") if a.strip()] or None
    who = str((answer.get("responded_by_user") or {}).get("name") or "timeout")
    totals = {"applied": 0, "superseded": 0, "kept": 0}
    cfg = settings()
    for fid, name in Question(**held).files.items():
        for k, v in price_approval.decide(exchange_dsn(), int(fid), apply, articles, who).items():
            totals[k] += v
        # the staff who sent the file read what became of its held prices, and who decided
        local = price_approval.decision_result(exchange_dsn(), int(fid), name, work_dir() / "price" / "results",
                                               cfg.results_timezone)
        remote = results.publish_result(ftp_params(cfg.ftp_conn_id), local, folder=cfg.results_folder)
        log.info("decision on %s written for staff: %s", name, remote)
    if totals["applied"]:
        outlet_events[CATALOG_CHANGED_ALIAS].add(CATALOG_CHANGED, extra={"source": "price_approval", **totals})
    log.info("decision of %s: %s", who, totals)
    return totals
