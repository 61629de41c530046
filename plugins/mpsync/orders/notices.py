"""Marketplace notifications as hints where the changes are: Yandex's API notifications, Ozon's push.

A notification says "order X changed at T". The sync still proves every window from the list (windows.py);
the notified times only place the windows so one answer holds each, which saves the calls the rate's guess
wastes. So nothing a notification says is trusted: a lost, duplicated, late or differently timed one (both
specs allow all of these: neither promises delivery, Yandex says duplicates come and the notified time may
differ from the API's) costs at most a call, never an order.

Received by webhook.py (`POST /<marketplace>/<account>/notification`), stored durably in
`order_webhook_inbox` before the answer; each marketplace's format is its adapter's `notification(body)`,
which returns the notices or raises `WrongEvent`. A live run reads the pending ones (`pending`) and marks
processed those its checkpoint has passed (`settle`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from mpsync.orders.model import ApiError, parse_time

log = logging.getLogger(__name__)
STALE = timedelta(days=1)      # a notice received this long ago is settled whatever its time says


class WrongEvent(ValueError):
    """The body is not a notification of this marketplace's format (answered 400, never stored)."""


@dataclass(frozen=True)
class Notice:
    order_id: str
    at: datetime


def notices_in(body, type_key: str, id_key: str, kinds: dict[str, tuple[str, ...]]) -> list[Notice]:
    """The order change a notification body names, by its type (`kinds`: the time keys of each order type;
    another type, a ping or a chat, names none); WrongEvent if it is not a notification."""
    if not isinstance(body, dict) or not isinstance(body.get(type_key), str):
        raise WrongEvent(f"{type_key} is missing")
    keys = kinds.get(body[type_key])
    return [notice(body, id_key, keys)] if keys else []


def notice(body: dict, id_key: str, time_keys: tuple[str, ...]) -> Notice:
    """The notice in `body`: its order and the first of `time_keys` present; WrongEvent if either is missing."""
    oid = body.get(id_key)
    if not isinstance(oid, (int, str)) or isinstance(oid, bool) or str(oid) == "":
        raise WrongEvent(f"{id_key} is missing or not an id")
    for key in time_keys:
        if body.get(key) is not None:
            try:
                return Notice(str(oid), parse_time(body[key]))
            except ApiError as exc:
                raise WrongEvent(f"{key}: {exc}") from None
    raise WrongEvent(f"none of {', '.join(time_keys)} is given")


def pending(conn, adapter, since: datetime) -> tuple[list[int], list[datetime]]:
    """Pending notifications of the account: their inbox ids, and each notified order's latest time at or
    after `since` (an order changed twice is one order in the window that holds its latest change)."""
    rows = conn.execute(
        "select inbox_id, body from order_webhook_inbox where marketplace = %s and account = %s"
        " and processed_at is null", (adapter.marketplace, adapter.account)).fetchall()
    latest: dict[str, datetime] = {}
    for _, body in rows:
        try:
            for n in adapter.notification(body):
                latest[n.order_id] = max(n.at, latest.get(n.order_id, n.at))
        except WrongEvent as exc:       # stored by an older receiver, say: a hint less, nothing else
            log.warning("%s/%s: a stored notification is unreadable: %s", adapter.marketplace, adapter.account, exc)
    return [r[0] for r in rows], sorted(t for t in latest.values() if t >= since)


def last_ratio(conn, adapter, windows: int = 3) -> tuple[float, float] | None:
    """Orders listed and notified in the account's last live windows that had notifications: where the next
    run's placement starts (most orders notified, or a share lost all along), not from "all of them"."""
    listed, notified = conn.execute(
        "select sum(orders), sum(notified) from (select orders, notified from order_sync_window"
        " where marketplace = %s and account = %s and mode = 'live' and notified > 0"
        " order by window_id desc limit %s) w", (adapter.marketplace, adapter.account, windows)).fetchone()
    return (float(listed), float(notified)) if notified else None


def settle(conn, adapter, ids: list[int], checkpoint: datetime | None) -> int:
    """Mark processed the notifications read this run whose every notice is behind the checkpoint (or that
    came over a day ago: a time far in the future must not keep a row pending for ever)."""
    if not ids or checkpoint is None:
        return 0
    done = []
    for inbox_id, body, old in conn.execute(
            "select inbox_id, body, received_at < now() - %s from order_webhook_inbox where inbox_id = any(%s)",
            (STALE, ids)).fetchall():
        try:
            behind = all(n.at < checkpoint for n in adapter.notification(body))
        except WrongEvent:
            behind = True
        if behind or old:
            done.append(inbox_id)
    if done:
        conn.execute("update order_webhook_inbox set processed_at = now() where inbox_id = any(%s)", (done,))
    return len(done)
