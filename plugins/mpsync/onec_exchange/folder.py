"""Orders to 1C as files only, for 1C set up to load orders from a folder (`onec_exchange.ftp.mode: files`).

With no HTTP exchange there is no `query` to answer: each run of the `onec_orders_files` DAG is one exchange.
The orders 1C does not have yet (the same outbox subscriber `onec_orders` the HTTP query uses: new or changed
since last sent) go into one CommerceML document, uploaded as ONE file atomically (`.part`, then renamed:
ftp_files.write_document). Only once the file is on the FTP are they marked sent (the markers written, one
transaction); a failed upload gives the claim back and they go in the next file. An upload that succeeded
but could not be marked sends the same orders again: 1C matches a document by its Ид, so it updates them.

Writing a file is not 1C taking the order: no acknowledgment time is recorded (onec_order.acked_at stays as
it is), so the reservation of an order that went only as a file is released by the shipment rule or the
max age (docs/reservations.md), never by a stock report that may have been made before 1C loaded the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable
from zoneinfo import ZoneInfo

import psycopg

from mpsync.onec_exchange import store
from mpsync.onec_exchange.config import OBJECT_TYPE, SUBSCRIBER, ExchangeSettings
from mpsync.onec_exchange.document import render
from mpsync.onec_exchange.orders import order_docs
from mpsync.outbox import store as outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileExchange:
    """What one file exchange wrote: the file's path on the FTP (None: nothing pending) and its orders."""

    path: str | None
    orders: int


def write_pending_orders(dsn: str, cfg: ExchangeSettings, tz: ZoneInfo,
                         upload: Callable[[bytes], str]) -> FileExchange:
    """Claim what 1C does not have, write it as one file through `upload` (returns the path), mark it sent."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        claimed = store.claim_orders(conn, cfg)
        if not claimed.rows:
            return FileExchange(None, 0)
        try:
            docs = order_docs(conn, claimed.rows)
            path = upload(render(docs, cfg, tz))
        except BaseException:
            outbox.release(conn, SUBSCRIBER, OBJECT_TYPE, claimed.token)    # nothing moved: the next run sends them
            raise
        with conn.transaction():
            sent = outbox.acknowledge(conn, SUBSCRIBER, OBJECT_TYPE, claimed.token,
                                      [(oid, marker) for oid, marker, _ in claimed.rows])
            store.log_event(conn, "ftp_file", "ok", sent, path)
    log.info("1C orders file %s: %d order(s)", path, sent)
    return FileExchange(path, sent)
