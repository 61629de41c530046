"""The Exchange page's data (issue 19): each list read one page at a time, by key, never by OFFSET.

Plain Python over a psycopg connection, so it is tested without Airflow; mpsync.airflow_glue.exchange_page
serves it as HTML inside Airflow's API server. The SQL lives in include/sql/exchange_page/, the indexes the
keys walk in migration 0021 (bench/bench_exchange_page.py measures a page at a million articles).

Every list returns a Page: its rows and `next`, an opaque cursor (the last row's key, URL-safe) to pass back
as `after` for the following page, or None on the last page. A cursor from a URL is untrusted text: a bad one
raises BadCursor (the page answers 400), never a database error.

    files_page(conn, "stock", after=None) / rejects_page(conn, article=..., file=..., file_id=...)
    parked_page(conn, subscriber=..., object_id=...) / order_accounts_page(conn)
    feeds_summary(conn, feeds_config) / feed_rejections_page(conn, feed, article=...)
    unpark(dsn, subscriber, object_ids)
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

import psycopg
from psycopg.rows import dict_row

from mpsync import SQL_DIR

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
KINDS = ("stock", "price", "catalog")


class BadCursor(ValueError):
    """A cursor (or a search value) the page cannot use: answered with 400, not a database error."""


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next: str | None = None                 # cursor of the following page; None on the last page
    note: str | None = None                 # why the list is empty when a search matched nothing to look in
    extra: dict[str, Any] = field(default_factory=dict)


@cache
def _sql(name: str) -> str:
    return (SQL_DIR / "exchange_page" / f"{name}.sql").read_text(encoding="utf-8")


def connect(dsn: str) -> psycopg.Connection:
    # Never prepared: every request is a new connection, and each page's plan must see its own values
    # (a generic plan of `$1 is null or article = $1` cannot pick the article index).
    return psycopg.connect(dsn, autocommit=True, connect_timeout=10, prepare_threshold=None, row_factory=dict_row)


def encode_cursor(key: list) -> str:
    raw = json.dumps(key, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, types: tuple[type, ...]) -> list | None:
    """The key in a cursor, checked against the types the list's key has (str for timestamps too)."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise BadCursor(f"unreadable page cursor: {exc}") from None
    if (not isinstance(key, list) or len(key) != len(types)
            or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, types))):
        raise BadCursor("page cursor does not fit this list")
    return key


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadCursor(f"page size must be within 1..{MAX_PAGE_SIZE}")
    return limit


def _page(conn: psycopg.Connection, sql: str, params: dict, limit: int, key) -> Page:
    """One more row than shown tells whether a next page exists, without counting the list."""
    rows = conn.execute(_sql(sql), {**params, "limit": limit + 1}).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(key(rows[-1])) if more else None)


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def files_page(conn: psycopg.Connection, kind: str, after: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """1C files of one kind, newest first: state, counts, result file; a price file's held prices (`held`)
    and those still waiting for an operator (`held_waiting`)."""
    if kind not in KINDS:
        raise BadCursor(f"unknown file kind {kind!r}")
    key = decode_cursor(after, (int,))
    return _page(conn, "files", {"kind": kind, "after": key[0] if key else None}, _limit(limit),
                 lambda r: [r["import_file_id"]])


def file_ids_named(conn: psycopg.Connection, name: str) -> list[int]:
    """Every ledger entry of a file name (1C writes the same name every day: each is a distinct file)."""
    rows = conn.execute("select import_file_id from import_file where name = %s and kind = any(%s)",
                        (name, list(KINDS))).fetchall()
    return [r["import_file_id"] for r in rows]


def rejects_page(conn: psycopg.Connection, *, article: str | None = None, file: str | None = None,
                 file_id: int | None = None, after: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """Rejected rows, newest file first; searched by exact article, by file name, or by one ledger entry."""
    article, file = _clean(article), _clean(file)
    ids: list[int] | None = None
    if file_id is not None:
        ids = [file_id]
    if file is not None:
        named = file_ids_named(conn, file)
        ids = named if ids is None else [i for i in ids if i in named]
        if not ids:
            return Page([], None, note=f"no file named {file!r} in the ledger")
    key = decode_cursor(after, (int, int))
    params = {"article": article, "files": [-i for i in ids] if ids is not None else None,
              "after_file": key[0] if key else None, "after_id": key[1] if key else None}
    return _page(conn, "rejects", params, _limit(limit), lambda r: [-r["import_file_id"], r["reject_id"]])


def parked_page(conn: psycopg.Connection, *, subscriber: str | None = None, object_id: str | None = None,
                after: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """Parked sync objects, most recently parked first; filtered by subscriber and exact object id."""
    from mpsync.outbox.store import OUTBOX_TYPES

    key = decode_cursor(after, (str, str, str, str))
    if key:
        try:
            datetime.fromisoformat(key[0])
        except ValueError:
            raise BadCursor("page cursor does not fit this list") from None
    params = {"types": list(OUTBOX_TYPES), "subscriber": _clean(subscriber), "object_id": _clean(object_id),
              "after_at": key[0] if key else None, "after_sub": key[1] if key else None,
              "after_type": key[2] if key else None, "after_id": key[3] if key else None}
    return _page(conn, "parked", params, _limit(limit),
                 lambda r: [r["parked_key"].isoformat(), r["subscriber"], r["object_type"], r["object_id"]])


def order_accounts_page(conn: psycopg.Connection, after: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """Each order account's checkpoint, its lag behind now, and the last committed window."""
    key = decode_cursor(after, (str,))
    return _page(conn, "order_accounts", {"after": key[0] if key else None}, _limit(limit),
                 lambda r: [r["account"]])


def feed_rejections_page(conn: psycopg.Connection, feed: str, *, article: str | None = None,
                         after: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """Offers the last run of one feed left out, by article."""
    key = decode_cursor(after, (str, str))
    params = {"feed": feed, "article": _clean(article),
              "after_article": key[0] if key else None, "after_rule": key[1] if key else None}
    return _page(conn, "feed_rejections", params, _limit(limit), lambda r: [r["article"], r["rule"]])


def feeds_summary(conn: psycopg.Connection, cfg, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per configured feed: file, age since published, size, offers, and offers the last run left out.

    Offers and publication time come from the sidecar record the publisher keeps beside each feed
    (mpsync.feeds.publish); rejected offers from the feed_rejection table (the last run's, whether or not
    that run published), with the sidecar's count as a fallback for a run the table does not know yet.
    """
    from mpsync.feeds.publish import published_feeds

    now = now or datetime.now(timezone.utc)
    counts = {r["feed"]: r for r in conn.execute(_sql("feed_rejection_counts")).fetchall()}
    out = []
    for name, info in published_feeds(cfg).items():
        fs = cfg.feeds[name]
        path = cfg.folder / fs.file
        if getattr(cfg, "store", None) is not None:      # the shared store's record (mpsync.feeds.store)
            size = info.get("size") if info.get("exists") else None
        else:
            size = path.stat().st_size if info.get("exists") else None
        epoch = info.get("published_epoch")
        published = datetime.fromtimestamp(float(epoch), timezone.utc) if epoch else None
        last_run = info.get("last_run") or {}
        rejected = counts[name]["rejected"] if name in counts else last_run.get("offers_rejected")
        out.append({"feed": name, "marketplace": fs.marketplace, "enabled": fs.enabled, "file": fs.file,
                    "exists": bool(info.get("exists")), "size": size, "published_at": published,
                    "age": now - published if published else None,
                    "offers": (info.get("counts") or {}).get("offers_total"), "rejected": rejected,
                    "last_run_at": last_run.get("at"), "last_run_status": last_run.get("status"),
                    "last_run_reason": last_run.get("reason")})
    return out


def unpark(dsn: str, subscriber: str, object_ids: list[str]) -> list[tuple[str, str, str]]:
    """The Unpark button: the objects get a fresh set of attempts at the next push (mpsync.outbox)."""
    from mpsync.outbox import unpark_objects

    ids = [i for i in (o.strip() for o in object_ids) if i]
    if not _clean(subscriber) or not ids:
        raise BadCursor("unpark needs a subscriber and at least one object id")
    return unpark_objects(dsn, [subscriber.strip()], ids)


def human_age(delta: timedelta | None) -> str:
    """'3 d 4 h', '2 h 5 min', '40 s': what an operator reads at a glance."""
    if delta is None:
        return "—"
    s = int(delta.total_seconds())
    sign, s = ("-" if s < 0 else ""), abs(s)
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if d:
        return f"{sign}{d} d {h} h"
    if h:
        return f"{sign}{h} h {m} min"
    return f"{sign}{m} min" if m else f"{sign}{s} s"


def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)
