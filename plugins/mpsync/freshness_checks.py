"""The freshness checks (mpsync.freshness runs them and decides whether to alert): each returns Findings, one
line an operator can act on, with a stable key.

Here, not in freshness.py, so that the configuration and the alerting decision read apart from what is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import psycopg

if TYPE_CHECKING:
    from mpsync.freshness import FreshnessSettings

ORDER_CHECKPOINT = "order_checkpoint"      # mpsync.orders.store.CHECKPOINT (not imported: keep this module light)
ORDER_SUBSCRIBER = "order_sync"


@dataclass(frozen=True)
class Finding:
    key: str            # stable identity across runs: "stock", "feed:ozon", "order:ozon:main", "parked"
    label: str          # short, for the summary line
    message: str        # one line an operator can act on


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins:02d} min" if hours else f"{mins} min"


def _local(when: datetime, tz: ZoneInfo) -> str:
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def check_stock(conn: psycopg.Connection, cfg: FreshnessSettings, now: datetime) -> list[Finding]:
    """No stock file received for max_silence of business time. Silent outside business hours."""
    local = now.astimezone(cfg.tz)
    bh = cfg.business_hours
    if not bh.is_open(local):
        return []
    row = conn.execute(
        "select name, received_at, status from import_file where kind = 'stock' order by received_at desc limit 1"
    ).fetchone()
    opened = bh.opened_at(local)
    # Silence counts from the last file, or from today's opening when that is later (nights do not count), and
    # never from before the exchange database came into service (a first start is not 'silence').
    since = max(row[1] if row else opened, opened, in_service_since(conn))
    silence = now - since
    if silence <= cfg.stock_max_silence:
        return []
    last = f"last: {row[0]} received {_local(row[1], cfg.tz)}, {row[2]}" if row else "no stock file ever received"
    return [Finding("stock", "stock file",
                    f"stock: no stock file from 1C for {_age(silence)} of business hours "
                    f"(limit {_age(cfg.stock_max_silence)}; {last})")]


def in_service_since(conn: psycopg.Connection) -> datetime:
    """When the exchange database came into service: its first migration."""
    return conn.execute("select coalesce(min(applied_at), now()) from schema_migration").fetchone()[0]


def check_feeds(folder: Path, feeds: dict[str, str], cfg: FreshnessSettings, now: datetime,
                since: datetime | None = None) -> list[Finding]:
    """Published feed files (feed name -> file name in `folder`) older than the limit, or missing (once the
    system has been in service for longer than the limit: `since`)."""
    out = []
    for feed, file in sorted(feeds.items()):
        path = folder / file
        try:
            modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        except FileNotFoundError:
            if since is not None and now - since <= cfg.feed_max_age:
                continue                        # a first start: the first feeds are still to come
            out.append(Finding(f"feed:{feed}", f"feed {feed}", f"feed {feed}: {path} is not published (missing)"))
            continue
        age = now - modified
        last = _last_feed_run(path)
        if age > cfg.feed_max_age:
            out.append(Finding(f"feed:{feed}", f"feed {feed}",
                               f"feed {feed}: {path} last published {_local(modified, cfg.tz)}, {_age(age)} ago "
                               f"(limit {_age(cfg.feed_max_age)}){_rejected_text(last)}"))
        elif last.get("status") == "refused":
            out.append(Finding(f"feed:{feed}:refused", f"feed {feed}",
                               f"feed {feed}: the last run was refused ({last.get('reason')}); the previous file "
                               f"stays{_rejected_text(last)}"))
    return out


def _last_feed_run(path: Path) -> dict:
    """The feed run's record beside the file (mpsync.feeds.publish writes `.<file>.json`)."""
    import json

    try:
        return json.loads(path.with_name(f".{path.name}.json").read_text(encoding="utf-8")).get("last_run") or {}
    except (OSError, ValueError):
        return {}


def _rejected_text(last: dict) -> str:
    by_rule = last.get("rejected_by_rule") or {}
    if not by_rule:
        return ""
    return "; left out by rule in the last run: " + ", ".join(f"{k} {v}" for k, v in sorted(by_rule.items()))


def check_orders(conn: psycopg.Connection, cfg: FreshnessSettings, now: datetime,
                 accounts: list[str] | None = None) -> list[Finding]:
    """Order account checkpoints ('<marketplace>:<account>') that have not moved for max_stall.

    `accounts`: the configured accounts (others' checkpoints are left over and ignored); None = all checkpoints.
    An account with no checkpoint yet (initial sync still running) is not judged here.
    """
    rows = conn.execute(
        "select object_id, sync_updated, synced_at, failures, last_error from sync"
        " where object_type = %s and subscriber = %s and sync_updated is not null and synced_at is not null"
        " order by object_id",
        (ORDER_CHECKPOINT, ORDER_SUBSCRIBER),
    ).fetchall()
    out = []
    for key, checkpoint, moved_at, failures, last_error in rows:
        if accounts is not None and key not in accounts:
            continue
        stalled = now - moved_at
        if stalled <= cfg.order_max_stall:
            continue
        why = f"; {failures} failed runs, last error: {last_error.splitlines()[0][:200]}" if last_error else ""
        out.append(Finding(f"order:{key}", f"order account {key}",
                           f"order account {key}: checkpoint {checkpoint} has not moved for {_age(stalled)} "
                           f"(since {_local(moved_at, cfg.tz)}; limit {_age(cfg.order_max_stall)}){why}"))
    return out


NOTICE_MIN_CHANGES = 20       # fewer changes listed than this in the silence proves nothing: no alert
NOTICE_WORKED = timedelta(days=7)   # notifications that came within this before the silence had been set up


def check_notifications(conn: psycopg.Connection, cfg: "FreshnessSettings", now: datetime,
                        accounts: list[str] | None = None) -> list[Finding]:
    """Yandex and Ozon accounts whose notifications stopped: over the last `max_silence` their live windows
    listed at least NOTICE_MIN_CHANGES changes and the marketplace had notified none of them, while
    notifications did come in the week before (the receiver, the proxy or the cabinet's URL broke). Nothing is
    lost (the list proves every window), but each change costs more calls until they come back. An account
    that never had notifications is shown on the Exchange page, not alerted every run."""
    since = now - cfg.notice_max_silence
    pairs = [k.split(":", 1) for k in accounts] if accounts is not None else None
    # per configured account through order_sync_window_account_idx (the table keeps `retention.log_days`)
    rows = conn.execute(
        "select w.marketplace || ':' || w.account, sum(w.orders),"
        "       (select max(received_at) from order_webhook_inbox i"
        "         where i.marketplace = w.marketplace and i.account = w.account)"
        " from order_sync_window w"
        " where w.mode = 'live' and w.notified is not null and w.committed_at > %(since)s"
        "   and (%(mps)s::text[] is null or (w.marketplace, w.account) in"
        "        (select * from unnest(%(mps)s::text[], %(accs)s::text[])))"
        " group by w.marketplace, w.account having sum(w.notified) = 0 and sum(w.orders) >= %(least)s order by 1",
        {"since": since, "least": NOTICE_MIN_CHANGES, "mps": [m for m, _ in pairs] if pairs is not None else None,
         "accs": [a for _, a in pairs] if pairs is not None else None}).fetchall()
    out = []
    for key, listed, last in rows:
        if last is None or last < since - NOTICE_WORKED:
            continue
        out.append(Finding(f"notices:{key}", f"notifications of {key}",
                           f"order account {key}: {listed} changes listed in the last {_age(cfg.notice_max_silence)}, "
                           f"none notified by the marketplace (the last notification came {_local(last, cfg.tz)}): "
                           "check the cabinet's notification URL and the proxy to /orders (docs/orders.md); no "
                           "order is lost meanwhile, each change costs more API calls"))
    return out


def check_reservations(conn: psycopg.Connection) -> list[Finding]:
    """Open orders with lines whose goods the catalog does not know: they reserve nothing (docs/reservations.md).
    One finding per order, so each order is alerted once when it appears (and re-alerted while it stays)."""
    rows = conn.execute("select marketplace, account, order_id, offer_ids from reservation_unknown"
                        " order by order_modified desc limit 50").fetchall()
    return [Finding(f"unknown:{mp}:{acc}:{oid}", f"order {mp}:{acc} {oid}",
                    f"order {mp}:{acc} {oid}: {', '.join(offers)} not in the catalog: reserves nothing for them")
            for mp, acc, oid, offers in rows]


def check_parked(conn: psycopg.Connection, cfg: FreshnessSettings) -> list[Finding]:
    """More parked sync objects than allowed (all subscribers together)."""
    rows = conn.execute(
        "select subscriber, object_type, count(*) from sync where parked group by 1, 2 order by 3 desc, 1, 2"
    ).fetchall()
    total = sum(r[2] for r in rows)
    if total <= cfg.parked_max:
        return []
    newest = conn.execute(
        "select subscriber, object_type, object_id, last_error from sync where parked"
        " order by parked_at desc nulls last limit 1"
    ).fetchone()
    per = ", ".join(f"{s}/{t} {n}" for s, t, n in rows)
    reason = newest[3].splitlines()[0][:200] if newest[3] else "no error recorded"
    return [Finding("parked", "parked objects",
                    f"parked: {total} sync objects parked (limit {cfg.parked_max}): {per}; newest "
                    f"{newest[0]}/{newest[1]} {newest[2]}: {reason}")]


def check_held(conn: psycopg.Connection) -> list[Finding]:
    """Held prices still undecided, one finding per price file: the operator is told once (and again every
    realert) that a decision waits in Airflow's Required actions, with the articles and prices."""
    rows = conn.execute(
        "select f.import_file_id, f.name, count(*), string_agg(p.article || ' ' || coalesce(h.current_price::text, '-')"
        " || ' -> ' || h.price::text, ', ' order by p.article) filter (where h.rn <= 5)"
        " from (select h.*, row_number() over (partition by h.import_file_id order by h.product_id) rn"
        "       from price_hold h where h.decision is null) h"
        " join import_file f using (import_file_id) join product p using (product_id)"
        " group by f.import_file_id, f.name order by f.import_file_id").fetchall()
    return [Finding(f"held:{file_id}", f"held prices of {name}",
                    f"held: {n} price(s) of {name} wait for a decision (Airflow: Required actions, DAG "
                    f"price_approvals): {sample}{', ...' if n > 5 else ''}")
            for file_id, name, n, sample in rows]


def check_quarantine(conn: psycopg.Connection) -> list[Finding]:
    """Offers in Yandex's price quarantine that mpsync did not confirm, one finding each (outbox.quarantine)."""
    from mpsync.outbox.quarantine_store import findings    # the outbox is heavy: loaded only when checked

    return findings(conn)
