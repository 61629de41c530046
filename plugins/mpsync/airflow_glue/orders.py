"""Task bodies of the order_sync DAG: params and connections in, one call into mpsync.orders, a mirror out."""

from __future__ import annotations

import logging

from mpsync.airflow_glue.checkpoints import mirror_checkpoint
from mpsync.airflow_glue.connections import exchange_dsn, order_api
from mpsync.orders.config import MARKETPLACES, orders_config
from mpsync.orders.runner import resolve_run_window, run_account

log = logging.getLogger(__name__)


def _split(value) -> list[str] | None:
    if not value:
        return None
    items = value if isinstance(value, list) else str(value).replace("\n", ",").split(",")
    return [str(i).strip() for i in items if str(i).strip()] or None


def accounts_of(marketplace: str, params: dict) -> list[str]:
    """Accounts of one marketplace to sync (the trigger form may name some: 'marketplace:account', ...)."""
    if marketplace not in MARKETPLACES:
        raise ValueError(f"unknown marketplace {marketplace!r}; known: {MARKETPLACES}")
    selected = _split(params.get("accounts"))
    cfg = orders_config()
    if selected and not any(cfg.by_marketplace(selected).values()):
        raise ValueError(f"no configured account matches {selected}; configured: {[a.key for a in cfg.accounts]}")
    keys = cfg.by_marketplace(selected)[marketplace]
    log.info("%s: %s", marketplace, keys or "no accounts to sync")
    return keys


def sync_one(key: str) -> dict:
    from airflow.sdk import get_current_context

    ctx = get_current_context()
    ctx["account_label"] = key
    dag_run = ctx.get("dag_run")
    resync = resolve_run_window(ctx["params"], getattr(dag_run, "run_type", None),
                                ctx.get("data_interval_start"), ctx.get("data_interval_end"))
    if resync:
        ctx["account_label"] = f"{key} re-sync {resync}"
        log.info("%s: re-sync %s (the live checkpoint stays where it is)", key, resync)
    acc = orders_config().account(key)
    report = run_account(exchange_dsn(), key, order_api(acc.conn_id), resync)
    if not resync and report.get("checkpoint_after"):
        mirror_checkpoint(f"orders__{key.replace(':', '__')}", report["checkpoint_after"])
    return report
