"""The database side: upsert orders keeping the newest version, checkpoints in `sync`, the window log.

Callers run these inside one transaction: orders + checkpoint + window log commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

import psycopg
from psycopg.types.json import Jsonb

from mpsync.orders.model import Order, Window, parse_time

SUBSCRIBER = "order_sync"
CHECKPOINT = "order_checkpoint"            # sync_updated = modification-time checkpoint (ISO, UTC)
INITIAL_START = "order_initial_start"      # sync_updated = server time the initial sync began
INITIAL_PROGRESS = "order_initial"         # sync_updated = creation time covered so far


def account_key(marketplace: str, account: str) -> str:
    return f"{marketplace}:{account}"


def upsert_orders(conn: psycopg.Connection, marketplace: str, account: str, orders: Iterable[Order]) -> int:
    """Insert or replace by (marketplace, account, order id); an older version never overwrites a newer one."""
    rows = [
        (marketplace, account, o.order_id, o.status, o.created_at, o.modified_at, Jsonb(o.payload))
        for o in orders
    ]
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            """
            insert into marketplace_order (marketplace, account, order_id, status, created_at, modified_at, payload)
            values (%s, %s, %s, %s, %s, %s, %s)
            on conflict (marketplace, account, order_id) do update
               set status = excluded.status,
                   created_at = coalesce(excluded.created_at, marketplace_order.created_at),
                   modified_at = excluded.modified_at,
                   payload = excluded.payload,
                   last_seen_at = now()
             where excluded.modified_at >= marketplace_order.modified_at
            """,
            rows,
        )
    # Reserved in the same transaction as the orders: what is sold is subtracted before anything reads it.
    from mpsync.reservations import config as reservations_config, store as reservations
    from mpsync.settings import settings

    reservations.reserve_orders(conn, marketplace, account, [r[2] for r in rows],
                                reservations_config.channel_rules(settings()))
    return len(rows)


def read_mark(conn: psycopg.Connection, kind: str, key: str, *, lock: bool = False) -> datetime | None:
    sql = "select sync_updated from sync where object_type = %s and object_id = %s and subscriber = %s"
    row = conn.execute(sql + (" for update" if lock else ""), (kind, key, SUBSCRIBER)).fetchone()
    return parse_time(row[0]) if row and row[0] else None


def write_mark(conn: psycopg.Connection, kind: str, key: str, value: datetime, *, forward_only: bool = True) -> datetime:
    """Set a mark; a checkpoint only moves forward (a late, slower writer cannot pull it back)."""
    current = read_mark(conn, kind, key, lock=True)
    if forward_only and current is not None and current >= value:
        return current
    conn.execute(
        """
        insert into sync (object_type, object_id, subscriber, sync_updated, synced_at, failures, last_error)
        values (%s, %s, %s, %s, now(), 0, null)
        on conflict (object_type, object_id, subscriber) do update
           set sync_updated = excluded.sync_updated, synced_at = now(), failures = 0, last_error = null
        """,
        (kind, key, SUBSCRIBER, value.isoformat()),
    )
    return value


def note_failure(conn: psycopg.Connection, key: str, error: str) -> None:
    """Count consecutive failed runs on the checkpoint row, for operators (the mark itself is untouched)."""
    conn.execute(
        """
        insert into sync (object_type, object_id, subscriber, failures, last_error, synced_at)
        values (%s, %s, %s, 1, %s, null)
        on conflict (object_type, object_id, subscriber) do update
           set failures = sync.failures + 1, last_error = excluded.last_error
        """,
        (CHECKPOINT, key, SUBSCRIBER, error[:2000]),
    )


def log_window(conn: psycopg.Connection, marketplace: str, account: str, mode: str, dimension: str,
               window: Window | None, orders: int, api_calls: int, notified: int | None = None) -> None:
    conn.execute(
        "insert into order_sync_window (marketplace, account, mode, dimension, window_start, window_end, orders,"
        " api_calls, notified) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (marketplace, account, mode, dimension, window.start if window else None, window.end if window else None,
         orders, api_calls, notified),
    )
