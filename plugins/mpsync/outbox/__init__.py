"""The outbox: push only what changed, through the universal `sync` table, to the website and marketplaces.

Entry points (plain Python; the Airflow glue only resolves connections and calls these):
- `push(dsn, subscriber, api)`: one run for one subscriber -> PushCounts (raises SubscriberUnavailable).
- `unpark_objects(dsn, subscribers=None, object_ids=None)`: the operator's manual unpark.
- `parked_report(dsn)`: what is parked, per subscriber, with the last errors.
- `settle_quarantine(dsn, subscriber, api)`: after a Yandex price push, Yandex's price quarantine read,
  confirmed where mpsync vouches for the price, the rest stored for the freshness check (outbox/quarantine.py).
See docs/sync-push.md.
"""

from __future__ import annotations

import logging

import psycopg

from mpsync.outbox import store
from mpsync.outbox.clients import ApiParams, client_for
from mpsync.outbox.config import PushSettings, Subscriber, push_settings
from mpsync.outbox.push import PushCounts, SubscriberUnavailable, push_subscriber
from mpsync.outbox.sources import ObjectSource, TableSource, source_for
from mpsync.settings import settings

__all__ = ["ApiParams", "ObjectSource", "PushCounts", "PushSettings", "Subscriber", "SubscriberUnavailable",
           "TableSource", "parked_report", "push", "push_settings", "settle_quarantine", "source_for",
           "unpark_objects"]


def push(dsn: str, subscriber: str, api: ApiParams, cfg: PushSettings | None = None, **kwargs) -> PushCounts:
    base = settings()
    cfg = cfg or push_settings(base)
    sub = cfg.subscriber(subscriber)
    client = client_for(sub.client, api, timeout=sub.timeout_seconds, calls_per_minute=sub.calls_per_minute)
    try:
        return push_subscriber(dsn, sub, source_for(sub, base), client, cfg, **kwargs)
    finally:
        client.close()


def settle_quarantine(dsn: str, subscriber: str, api: ApiParams, cfg: PushSettings | None = None, **kwargs):
    """Yandex's price quarantine after the push of a `yandex_prices` subscriber -> QuarantineCounts."""
    from mpsync.outbox.quarantine import settle

    base = settings()
    cfg = cfg or push_settings(base)
    return settle(dsn, cfg.subscriber(subscriber), api, cfg, base, **kwargs)


def _wildberries_cards(dsn: str, sub: Subscriber, api: ApiParams, *, force: bool) -> None:
    """WB's ids for our articles (nmID, chrtId) come from the seller's cards: refreshed when due. A failed
    refresh with cards already stored pushes with those; with none, nothing can be addressed: the run fails."""
    from mpsync.outbox.clients import RequestFailed, RequestRejected
    from mpsync.outbox.wildberries_cards import refresh_if_due

    try:
        refresh_if_due(dsn, api, sub.account, sub.cards_refresh_hours, force=force, timeout=sub.timeout_seconds)
    except (RequestFailed, RequestRejected) as exc:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            known = conn.execute("select count(*) from wildberries_card where account = %s", (sub.account,)).fetchone()[0]
        if not known:
            raise SubscriberUnavailable(f"{sub.name}: Wildberries cards could not be read ({exc}) and none are "
                                        "stored: no article can be addressed", PushCounts(sub.name)) from exc
        logging.getLogger(__name__).warning("%s: cards refresh failed (%s); pushing with the %d size(s) stored",
                                            sub.name, exc, known)


def unpark_objects(dsn: str, subscribers: list[str] | None = None,
                   object_ids: list[str] | None = None) -> list[tuple[str, str, str]]:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        return store.unpark(conn, subscribers=subscribers, object_ids=object_ids)


def parked_report(dsn: str, limit: int = 50) -> dict:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        total, sample = store.parked(conn, limit=limit)
        per = conn.execute("select subscriber, count(*) from sync_parked where object_type = any(%s)"
                           " group by subscriber order by subscriber", (list(store.OUTBOX_TYPES),)).fetchall()
    return {"total": total, "per_subscriber": dict(per),
            "first": [{**p, "parked_at": p["parked_at"].isoformat() if p["parked_at"] else None} for p in sample]}
