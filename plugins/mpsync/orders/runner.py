"""What one `order_sync` task does, without Airflow: resolve the run's window, build the adapter, sync.

`resolve_run_window` is the one pure function that decides live vs re-sync:
trigger-form params (from/to) -> a backfill's data interval -> live (the stored checkpoint).
"""

from __future__ import annotations

import logging
from datetime import datetime

from mpsync.orders.config import build_adapter, orders_config
from mpsync.orders.engine import sync_account
from mpsync.orders.model import UTC, Window

log = logging.getLogger(__name__)


def _as_time(value) -> datetime | None:
    if value in (None, ""):
        return None
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def resolve_run_window(params: dict, run_type: str | None, interval_start=None, interval_end=None) -> Window | None:
    """None = a live run (moves the checkpoint); a Window = re-sync [from, to) that never moves it."""
    start, end = _as_time(params.get("from")), _as_time(params.get("to"))
    if start or end:
        if not (start and end):
            raise ValueError("re-sync needs both 'from' and 'to' (a half-open period [from, to))")
        return Window(start, end)
    if str(run_type or "").lower().endswith("backfill"):
        s, e = _as_time(interval_start), _as_time(interval_end)
        if s and e and e > s:
            return Window(s, e)
    return None


def run_account(dsn: str, key: str, api, resync: Window | None) -> dict:
    """Sync one account; `api` has base_url, login, password, extra (from its Airflow Connection)."""
    cfg = orders_config()
    acc = cfg.account(key)
    adapter = build_adapter(acc, cfg.client, api.base_url, api.login, api.password, api.extra)
    try:
        report = sync_account(dsn, adapter, cfg.sync, resync=resync)
    finally:
        adapter.client.close()
    log.info("%s: %s run, %d window(s), %d order(s) + %d swept, %d API calls (%d splits), checkpoint %s -> %s",
             key, report.mode, report.windows, report.orders, report.swept, report.api_calls, report.splits,
             report.checkpoint_before, report.checkpoint_after)
    return report.as_dict()
