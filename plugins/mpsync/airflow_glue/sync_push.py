"""Task bodies of the sync_push DAG: resolve the connection and the run's params, call mpsync.outbox."""

from __future__ import annotations

import logging

from mpsync import outbox
from mpsync.airflow_glue.connections import exchange_dsn, push_api
from mpsync.outbox.config import PUSH_GROUPS, push_settings

log = logging.getLogger(__name__)


def _split(value) -> list[str] | None:
    if not value:
        return None
    items = value if isinstance(value, list) else str(value).replace("\n", ",").split(",")
    return [str(i).strip() for i in items if str(i).strip()] or None


def unpark_requested(params: dict) -> dict:
    """The trigger form's unpark request (subscribers and/or object ids); nothing when both are empty."""
    subscribers, ids = _split(params.get("unpark_subscribers")), _split(params.get("unpark_object_ids"))
    if not subscribers and not ids:
        log.info("no unpark requested")
        return {"unparked": 0}
    cfg = push_settings()
    for name in subscribers or []:
        cfg.subscriber(name)              # an unknown name fails the task with the list of known ones
    done = outbox.unpark_objects(exchange_dsn(), subscribers, ids)
    for sub, ot, oid in done[:200]:
        log.info("unparked %s %s for %s", ot, oid, sub)
    log.info("unparked %d object(s) (subscribers=%s, ids=%s); they are pushed in this run", len(done), subscribers, ids)
    return {"unparked": len(done)}


def subscribers_of(group: str) -> list[str]:
    """Enabled subscribers of one receiving system (each system's pushes run in its own pool)."""
    if group not in PUSH_GROUPS:
        raise ValueError(f"unknown push group {group!r}; known: {PUSH_GROUPS}")
    names = [s.name for s in push_settings().enabled(group)]
    log.info("%s: subscribers to push: %s", group, names or "none (not enabled in sync_push.subscribers)")
    return names


def push_one(subscriber: str, params: dict) -> dict:
    from airflow.sdk import get_current_context

    cfg = push_settings()
    sub = cfg.subscriber(subscriber)
    get_current_context()["push_label"] = f"{sub.name} ({sub.client})"
    try:
        counts = outbox.push(exchange_dsn(), sub.name, push_api(sub.connection), cfg,
                             force_full_scan=bool(params.get("full_scan")))
    except outbox.SubscriberUnavailable as exc:
        log.error("%s; nothing was changed for the objects of the failed batch. Counts: %s", exc, exc.counts.line())
        raise
    out = counts.as_dict()
    if sub.client == "yandex_prices":
        # Yandex hides sharply changed prices until confirmed: read its quarantine right after the push and
        # confirm what mpsync vouches for (docs/feeds.md). Its failures are recorded, not raised: the prices
        # went out, and the freshness check reports what stays in quarantine.
        out["quarantine"] = outbox.settle_quarantine(exchange_dsn(), sub.name, push_api(sub.connection), cfg).as_dict()
    return out


def report() -> dict:
    summary = outbox.parked_report(exchange_dsn())
    if summary["total"]:
        log.warning("%d object(s) parked %s. Each needs a look: fix the data (a changed object comes back by "
                    "itself) or unpark with the trigger form (unpark_subscribers / unpark_object_ids).",
                    summary["total"], summary["per_subscriber"])
        for p in summary["first"]:
            log.warning("parked: %s %s for %s after %s failures: %s", p["object_type"], p["object_id"],
                        p["subscriber"], p["failures"], p["last_error"])
    else:
        log.info("no parked objects")
    return summary
