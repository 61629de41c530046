"""The exchange's database side: sessions, query -> claim, success -> ack, 1C's answer -> onec_order.

What 1C has is tracked by the outbox (mpsync.outbox.store) as subscriber `onec_orders`:
- query:   scan the order source, claim up to query_limit pending orders, remember exactly what was sent
           (ids, markers, versions) on the session;
- success: acknowledge with the markers SENT (an order changed meanwhile stays pending and goes next time),
           record the versions in onec_order (acked_at/acked_modified) and release the reservations 1C's
           figures now hold, all in one transaction;
- a query never confirmed: the next query gives its orders back as one failure each (backoff
           retry_base_seconds, 0 by default: they are offered again at once); after max_unconfirmed such
           queries of the same version an order is parked (sync_parked) so one order 1C chokes on cannot
           block the exchange; it comes back when it changes or is unparked (sync_push trigger form).
Connections are autocommit; multi-statement steps open their own transaction.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from mpsync.onec.commerceml_orders import OnecOrdersFile
from mpsync.onec_exchange.config import OBJECT_TYPE, SUBSCRIBER, ExchangeSettings
from mpsync.onec_exchange.source import order_source, split_object_id
from mpsync.outbox import store as outbox
from mpsync.reservations import store as reservations

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Session:
    session_hash: str
    login: str
    claim_token: str | None
    upload_name: str | None
    upload: bytes | None


@dataclass(frozen=True)
class Claimed:
    """What one query sends: the current rows of the claimed orders, with their markers."""

    token: str
    rows: tuple[tuple[str, str, dict], ...]      # (object id, marker, payload)


def _hash(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def sessid_for(cookie: str) -> str:
    """The CSRF key of newer exchange modules (checkauth's 4th line): derived, so nothing more is stored."""
    return hashlib.sha256(b"sessid:" + cookie.encode()).hexdigest()[:32]


def open_session(conn: psycopg.Connection, login: str, cfg: ExchangeSettings) -> str:
    cookie = secrets.token_urlsafe(32)
    with conn.transaction():
        # sessions far past their life go; an unconfirmed claim on one is given back by the next query anyway
        conn.execute("delete from onec_exchange_session where last_seen_at < now() - make_interval(secs => %s)"
                     " and claim_token is null", (cfg.session_hours * 3600 * 2,))
        conn.execute("insert into onec_exchange_session (session_hash, login) values (%s, %s)", (_hash(cookie), login))
    return cookie


def find_session(conn: psycopg.Connection, cookie: str, cfg: ExchangeSettings) -> Session | None:
    row = conn.execute(
        "update onec_exchange_session set last_seen_at = now()"
        " where session_hash = %s and created_at > now() - make_interval(secs => %s)"
        " returning session_hash, login, claim_token, upload_name, upload",
        (_hash(cookie), cfg.session_hours * 3600)).fetchone()
    return Session(row[0], row[1], row[2], row[3], bytes(row[4]) if row[4] is not None else None) if row else None


def log_event(conn: psycopg.Connection, mode: str, outcome: str, orders: int = 0, detail: str | None = None) -> None:
    conn.execute("insert into onec_exchange_log (mode, outcome, orders, detail) values (%s, %s, %s, %s)",
                 (mode, outcome, orders, (detail or "")[:2000] or None))


def give_back_unconfirmed(conn: psycopg.Connection, cfg: ExchangeSettings) -> int:
    """Every earlier query 1C never confirmed: its orders are pending again (one failure each). Returns them."""
    n = 0
    with conn.transaction():
        rows = conn.execute(
            "select session_hash, claim_token, queried_at, sent_ids, sent_markers from onec_exchange_session"
            " where claim_token is not null for update").fetchall()
        for session_hash, token, queried_at, ids, markers in rows:
            message = f"1C did not confirm (mode=success) the query of {queried_at:%Y-%m-%d %H:%M:%S %Z}"
            parked = outbox.record_failures(
                conn, SUBSCRIBER, OBJECT_TYPE, token, [(i, m, message, None) for i, m in zip(ids or [], markers or [])],
                max_failures=cfg.max_unconfirmed, retry_base=cfg.retry_base_seconds, retry_max=cfg.retry_max_seconds)
            if parked:
                log.error("1C exchange: parked after %d unconfirmed queries: %s (view sync_parked)",
                          cfg.max_unconfirmed, ", ".join(parked[:50]))
            conn.execute("update onec_exchange_session set claim_token = null, sent_ids = null, sent_markers = null,"
                         " sent_modified = null where session_hash = %s", (session_hash,))
            n += len(ids or [])
    return n


def claim_orders(conn: psycopg.Connection, cfg: ExchangeSettings) -> Claimed:
    """Scan, then claim up to query_limit pending orders and read their current rows."""
    source = order_source(cfg.max_order_age_days)
    result = outbox.scan(conn, SUBSCRIBER, source, lookback=timedelta(seconds=cfg.scan_lookback_seconds),
                         full_every=timedelta(hours=cfg.full_scan_hours))
    token = uuid.uuid4().hex
    ids = outbox.claim(conn, SUBSCRIBER, OBJECT_TYPE, token, cfg.query_limit,
                       lease=timedelta(seconds=cfg.claim_lease_seconds), due_at=result.at)
    try:
        rows = outbox.fetch(conn, source, ids) if ids else []
        found = {r[0] for r in rows}
        outbox.settle_vanished(conn, SUBSCRIBER, OBJECT_TYPE, token, [i for i in ids if i not in found])
    except BaseException:
        outbox.release(conn, SUBSCRIBER, OBJECT_TYPE, token)
        raise
    return Claimed(token, tuple((r[0], r[1], r[2]) for r in rows))


def remember_sent(conn: psycopg.Connection, session: Session, claimed: Claimed, modified: list[datetime]) -> None:
    conn.execute(
        "update onec_exchange_session set claim_token = %s, queried_at = now(), sent_ids = %s, sent_markers = %s,"
        " sent_modified = %s where session_hash = %s",
        (claimed.token, [r[0] for r in claimed.rows], [r[1] for r in claimed.rows], modified, session.session_hash))


_ACKED_SQL = """
insert into onec_order as o (marketplace, account, order_id, acked_at, acked_modified)
select split_part(s.id, ':', 1), split_part(s.id, ':', 2),
       substr(s.id, length(split_part(s.id, ':', 1)) + length(split_part(s.id, ':', 2)) + 3), now(), s.modified
from unnest(%(ids)s::text[], %(markers)s::text[], %(modified)s::timestamptz[]) as s(id, marker, modified)
join sync x on x.subscriber = %(sub)s and x.object_type = %(ot)s and x.object_id = s.id
           and x.sync_updated = s.marker and x.synced_at = now()       -- acknowledged in this transaction
on conflict (marketplace, account, order_id) do update
   set acked_at = excluded.acked_at, acked_modified = excluded.acked_modified
 where o.acked_modified is null or excluded.acked_modified >= o.acked_modified
"""


def confirm(conn: psycopg.Connection, session: Session) -> int:
    """1C loaded what this session's last query sent: ack with the SENT markers; returns the orders acked."""
    with conn.transaction():
        row = conn.execute("select claim_token, sent_ids, sent_markers, sent_modified from onec_exchange_session"
                           " where session_hash = %s for update", (session.session_hash,)).fetchone()
        token, ids, markers, modified = row if row else (None, None, None, None)
        if not token:
            return 0
        acked = outbox.acknowledge(conn, SUBSCRIBER, OBJECT_TYPE, token, list(zip(ids, markers)))
        conn.execute(_ACKED_SQL, {"ids": ids, "markers": markers, "modified": modified,
                                  "sub": SUBSCRIBER, "ot": OBJECT_TYPE})
        conn.execute("update onec_exchange_session set claim_token = null, sent_ids = null, sent_markers = null,"
                     " sent_modified = null where session_hash = %s", (session.session_hash,))
        reservations.release_ready(conn)
        log_event(conn, "success", "ok", acked, f"{acked} of {len(ids)} order(s) sent acknowledged")
    return acked


def save_upload(conn: psycopg.Connection, session: Session, name: str | None, data: bytes | None) -> None:
    conn.execute("update onec_exchange_session set upload_name = %s, upload = %s where session_hash = %s",
                 (name, data, session.session_hash))


def _resolve(conn: psycopg.Connection, answers: OnecOrdersFile) -> dict[int, tuple[str, str, str]]:
    """Answer index -> our order (marketplace, account, order id) for the answers naming a stored order."""
    candidates: dict[tuple[str, str, str], list[int]] = {}
    for n, a in enumerate(answers.orders):
        for key in a.keys:
            try:
                candidates.setdefault(split_object_id(key), []).append(n)
            except ValueError:
                continue
    if not candidates:
        return {}
    keys = list(candidates)
    known = {tuple(r) for r in conn.execute(
        "select marketplace, account, order_id from marketplace_order where (marketplace, account, order_id) in"
        " (select * from unnest(%s::text[], %s::text[], %s::text[]))",
        ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]))}
    out: dict[int, tuple[str, str, str]] = {}
    for n, a in enumerate(answers.orders):
        for key in a.keys:
            try:
                k = split_object_id(key)
            except ValueError:
                continue
            if k in known:
                out[n] = k
                break
    return out


def store_answers(conn: psycopg.Connection, answers: OnecOrdersFile) -> tuple[int, list[str]]:
    """1C's numbers and statuses into onec_order, in one transaction. Returns (stored, keys of unknown orders)."""
    with conn.transaction():
        resolved = _resolve(conn, answers)
        rows = [(*resolved[n], a.onec_number, a.onec_status, a.shipped, a.cancelled)
                for n, a in enumerate(answers.orders) if n in resolved]
        with conn.cursor() as cur:
            cur.executemany(
                """insert into onec_order as o (marketplace, account, order_id, onec_number, onec_status, onec_shipped,
                                                onec_cancelled, onec_updated_at)
                   values (%s, %s, %s, %s, %s, %s, %s, now())
                   on conflict (marketplace, account, order_id) do update
                      set onec_number = coalesce(excluded.onec_number, o.onec_number),
                          onec_status = excluded.onec_status, onec_shipped = excluded.onec_shipped,
                          onec_cancelled = excluded.onec_cancelled, onec_updated_at = now()""", rows)
        unknown = [a.keys[0] for n, a in enumerate(answers.orders) if n not in resolved]
        detail = f"{answers.name}: {len(rows)} order(s) stored"
        log_event(conn, "file", "ok", len(rows), detail + (f", unknown: {', '.join(unknown[:20])}" if unknown else ""))
    return len(rows), unknown
