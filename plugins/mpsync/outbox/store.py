"""The outbox's SQL on the `sync` table: scan, claim, acknowledge, fail, release, unpark, report.

Every statement is scoped by (subscriber, object_type): checkpoint rows of other features share the table.
Connections are expected in autocommit mode; multi-statement steps open their own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from mpsync.outbox.sources import ObjectSource

# onec_order: the orders 1C takes through its site exchange (mpsync.onec_exchange), parked and unparked alike
OUTBOX_TYPES = ("stock_offer", "offer_price", "site_product", "onec_order")


@dataclass(frozen=True)
class ScanResult:
    full: bool
    since: datetime | None
    marked: int          # objects whose marker changed (or that are new): now pending
    unparked: int        # parked objects that changed, so they come back by themselves
    at: datetime         # the database time of the scan: a run claims what was due at this time


def scan(conn: psycopg.Connection, subscriber: str, source: ObjectSource, *, lookback: timedelta,
         full_every: timedelta, force_full: bool = False) -> ScanResult:
    """Record the current marker of every object changed since the last scan (or of all objects).

    This is the DOMAIN's "object LEFT JOIN sync" restricted, through the source's modification cursor, to
    what may have changed. Only rows whose marker differs are written, so re-imported identical values
    write nothing. Concurrent scans of one subscriber serialise on its sync_scan row.
    """
    ot = source.object_type
    with conn.transaction():
        conn.execute(
            "insert into sync_scan (subscriber, object_type, source_fingerprint, scanned_to, full_scan_at)"
            " values (%s, %s, '', 'epoch', 'epoch') on conflict do nothing", (subscriber, ot))
        fingerprint, scanned_to, full_at = conn.execute(
            "select source_fingerprint, scanned_to, full_scan_at from sync_scan"
            " where subscriber = %s and object_type = %s for update", (subscriber, ot)).fetchone()
        # The next scan may start where this one's snapshot is complete: no earlier than the oldest open
        # transaction (its rows carry updated_at = its start and are not visible to us yet).
        now, watermark = conn.execute(
            "select now(), least(now(), (select min(xact_start) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid() and xact_start is not null))"
        ).fetchone()
        full = (force_full or not source.has_cursor or fingerprint != source.fingerprint
                or full_at < now - full_every)
        since = None if full else scanned_to - lookback
        params = dict(source.params, ot=ot, sub=subscriber, since=since)
        marked, unparked = conn.execute(
            f"""
            with c as ({source.sql("all" if full else "changed")}),
            d as materialized (
                select c.object_id, c.marker from c
                left join sync x on x.object_type = %(ot)s and x.subscriber = %(sub)s and x.object_id = c.object_id
                where x.object_marker is distinct from c.marker
            ),
            revived as (
                select count(*) as n from d
                join sync x on x.object_type = %(ot)s and x.subscriber = %(sub)s and x.object_id = d.object_id
                where x.parked and x.failed_marker is distinct from d.marker
            ),
            w as (
                insert into sync as s (object_type, object_id, subscriber, object_marker)
                select %(ot)s, object_id, %(sub)s, marker from d
                on conflict (object_type, object_id, subscriber) do update set
                    object_marker = excluded.object_marker,
                    parked = s.parked and excluded.object_marker is not distinct from s.failed_marker,
                    parked_at = case when s.parked and excluded.object_marker is distinct from s.failed_marker
                                     then null else s.parked_at end,
                    failures = case when s.parked and excluded.object_marker is distinct from s.failed_marker
                                    then 0 else s.failures end,
                    next_attempt_at = case when s.parked and excluded.object_marker is distinct from s.failed_marker
                                           then null else s.next_attempt_at end
                returning 1
            )
            select (select count(*) from w), (select n from revived)
            """,
            params,
        ).fetchone()
        conn.execute(
            "update sync_scan set source_fingerprint = %s, scanned_to = %s,"
            " full_scan_at = case when %s then %s else full_scan_at end"
            " where subscriber = %s and object_type = %s",
            (source.fingerprint, watermark, full, now, subscriber, ot))
    return ScanResult(full=full, since=since, marked=marked, unparked=unparked, at=now)


def claim(conn: psycopg.Connection, subscriber: str, object_type: str, token: str, limit: int, *,
          lease: timedelta, min_resend: timedelta = timedelta(0), due_at: datetime | None = None) -> list[str]:
    """Claim up to `limit` pending, due, unparked, unclaimed objects for this run; return their ids.

    `due_at` (the run's start): an object that failed during this run is not due again in the same run.

    SKIP LOCKED plus the lease in claimed_until: two runs never hold the same object, and a crashed run's
    claims expire by themselves.

    The ORDER BY is sync_pending_idx's order (partial: pending rows only), so a claim reads pending rows only.
    Without it the planner, which cannot estimate `object_marker is distinct from sync_updated`, expects most
    rows pending and scans the table: each claim re-read it from its start (the last, empty one all of it), a
    cost that grew with the table, not the batch (issue 20's bench, 3M sync rows). Descending, nulls first:
    fresh changes first, then retries; rows waiting for their retry time are read only once those run out.
    """
    rows = conn.execute(
        """
        with c as (
            select object_type, object_id, subscriber from sync
            where subscriber = %(sub)s and object_type = %(ot)s
              and object_marker is not null and object_marker is distinct from sync_updated and not parked
              and (next_attempt_at is null or next_attempt_at <= coalesce(%(due_at)s, now()))
              and (claimed_until is null or claimed_until < now())
              and (%(min_resend)s = interval '0' or synced_at is null or synced_at <= now() - %(min_resend)s)
            order by next_attempt_at desc nulls first
            limit %(n)s
            for update skip locked
        )
        update sync s set claim_token = %(token)s, claimed_until = now() + %(lease)s
        from c
        where s.object_type = c.object_type and s.object_id = c.object_id and s.subscriber = c.subscriber
        returning s.object_id
        """,
        {"sub": subscriber, "ot": object_type, "n": limit, "token": token, "lease": lease, "min_resend": min_resend,
         "due_at": due_at},
    ).fetchall()
    return [r[0] for r in rows]


def fetch(conn: psycopg.Connection, source: ObjectSource, object_ids: list[str]) -> list[tuple[str, str, dict]]:
    """The current (object_id, marker, payload) of claimed objects: what is sent is what is current now."""
    return conn.execute(source.sql("ids"), dict(source.params, ids=object_ids, since=None)).fetchall()


def acknowledge(conn: psycopg.Connection, subscriber: str, object_type: str, token: str,
                acked: list[tuple[str, str]]) -> int:
    """Success: sync_updated := the marker the receiver ECHOED. Compare-and-set on this run's claim."""
    if not acked:
        return 0
    cur = conn.execute(
        """
        update sync s set sync_updated = r.echoed, failures = 0, last_error = null, failed_marker = null,
               next_attempt_at = null, parked = false, parked_at = null,
               claim_token = null, claimed_until = null, synced_at = now()
        from unnest(%(ids)s::text[], %(markers)s::text[]) as r(object_id, echoed)
        where s.subscriber = %(sub)s and s.object_type = %(ot)s and s.object_id = r.object_id
          and s.claim_token = %(token)s
        """,
        {"sub": subscriber, "ot": object_type, "token": token,
         "ids": [a[0] for a in acked], "markers": [a[1] for a in acked]},
    )
    return cur.rowcount


def record_failures(conn: psycopg.Connection, subscriber: str, object_type: str, token: str,
                    failed: list[tuple[str, str, str, float | None]], *, max_failures: int,
                    retry_base: float, retry_max: float) -> list[str]:
    """Per-item errors (object_id, sent marker, message, retry_after).

    A permanent error counts: failures+1, the message kept, retry after base*2^(failures-1) seconds, and
    parked at max_failures. A transient one (retry_after set: the receiver's own rate limit for the item)
    only postpones. Returns the ids parked now.
    """
    if not failed:
        return []
    rows = conn.execute(
        """
        update sync s set
            failures = case when r.retry_after is null then s.failures + 1 else s.failures end,
            last_error = left(r.message, 2000),
            failed_marker = r.marker,
            next_attempt_at = now() + make_interval(secs => coalesce(r.retry_after,
                                  least(%(base)s * power(2, s.failures), %(cap)s))),
            -- Park only the version that is still current: one that changed in flight gets its own tries.
            parked = r.retry_after is null and s.failures + 1 >= %(max)s and s.object_marker = r.marker,
            parked_at = case when r.retry_after is null and s.failures + 1 >= %(max)s and s.object_marker = r.marker
                             then now() end,
            claim_token = null, claimed_until = null
        from unnest(%(ids)s::text[], %(markers)s::text[], %(messages)s::text[], %(retry)s::float8[])
             as r(object_id, marker, message, retry_after)
        where s.subscriber = %(sub)s and s.object_type = %(ot)s and s.object_id = r.object_id
          and s.claim_token = %(token)s
        returning s.object_id, s.parked
        """,
        {"sub": subscriber, "ot": object_type, "token": token, "base": float(retry_base), "cap": float(retry_max),
         "max": max_failures, "ids": [f[0] for f in failed], "markers": [f[1] for f in failed],
         "messages": [f[2] for f in failed], "retry": [f[3] for f in failed]},
    ).fetchall()
    return [r[0] for r in rows if r[1]]


def settle_vanished(conn: psycopg.Connection, subscriber: str, object_type: str, token: str,
                    object_ids: list[str]) -> None:
    """Claimed objects the source no longer yields (product deleted): nothing to send, not pending."""
    if object_ids:
        conn.execute(
            "update sync set object_marker = sync_updated, claim_token = null, claimed_until = null"
            " where subscriber = %s and object_type = %s and object_id = any(%s) and claim_token = %s",
            (subscriber, object_type, object_ids, token))


def release(conn: psycopg.Connection, subscriber: str, object_type: str, token: str) -> int:
    """Give back this run's claims unchanged (whole-request failure: no row's state moves)."""
    return conn.execute(
        "update sync set claim_token = null, claimed_until = null"
        " where subscriber = %s and object_type = %s and claim_token = %s",
        (subscriber, object_type, token)).rowcount


def unpark(conn: psycopg.Connection, *, subscribers: list[str] | None = None,
           object_ids: list[str] | None = None) -> list[tuple[str, str, str]]:
    """Operator's unpark: the objects get a fresh set of attempts now. Returns (subscriber, type, id)."""
    rows = conn.execute(
        """
        update sync set parked = false, parked_at = null, failures = 0, next_attempt_at = null
        where parked and object_type = any(%(types)s)
          and (%(subs)s::text[] is null or subscriber = any(%(subs)s::text[]))
          and (%(ids)s::text[] is null or object_id = any(%(ids)s::text[]))
        returning subscriber, object_type, object_id
        """,
        {"types": list(OUTBOX_TYPES), "subs": subscribers or None, "ids": object_ids or None},
    ).fetchall()
    return [tuple(r) for r in rows]


def parked(conn: psycopg.Connection, subscriber: str | None = None, limit: int = 50) -> tuple[int, list[dict]]:
    """How many objects are parked, and the first `limit` of them with their last error."""
    where = "where object_type = any(%(types)s) and (%(sub)s::text is null or subscriber = %(sub)s)"
    params = {"types": list(OUTBOX_TYPES), "sub": subscriber, "n": limit}
    total = conn.execute(f"select count(*) from sync_parked {where}", params).fetchone()[0]
    cur = conn.execute(
        f"select subscriber, object_type, object_id, failures, last_error, parked_at from sync_parked {where}"
        " order by parked_at desc nulls last, object_id limit %(n)s", params)
    names = [d.name for d in cur.description]
    return total, [dict(zip(names, r)) for r in cur.fetchall()]


def pending(conn: psycopg.Connection, subscriber: str, object_type: str) -> tuple[int, int]:
    """(pending and due now, pending but waiting for a retry time)."""
    return conn.execute(
        """
        select count(*) filter (where next_attempt_at is null or next_attempt_at <= now()),
               count(*) filter (where next_attempt_at > now())
        from sync
        where subscriber = %s and object_type = %s
          and object_marker is not null and object_marker is distinct from sync_updated and not parked
        """, (subscriber, object_type)).fetchone()
