"""The one sync algorithm. Adapters only know how to ask their API for a window; the rules live here.

Rules (DOMAIN.md section 4), each with a test in tests/test_orders_engine.py:
- no checkpoint yet: the last `initial_days` by CREATION time, in small windows, progress committed per window;
- then by MODIFICATION time, from the checkpoint minus a lookback (overlap; the upsert keeps the newest version);
- the upper bound is the marketplace's clock (HTTP Date of this run's first answer) minus a safety margin,
  so the checkpoint never passes the start of the run;
- each window's orders and the checkpoint commit in ONE transaction; a failure advances nothing;
- windows split adaptively under the API's range and result limits;
- explicit [from, to) re-sync windows write orders only, never the live checkpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterator, Protocol

import psycopg

from mpsync.orders import store
from mpsync.orders.model import CREATED, MODIFIED, Order, OrderSyncError, TooManyResults, Window, merge

log = logging.getLogger(__name__)
SECOND = timedelta(seconds=1)


class Adapter(Protocol):
    marketplace: str
    account: str
    max_range: timedelta          # widest window one query may cover
    result_limit: int | None      # most results one window may hold (None: no limit)
    precision: timedelta          # the API's timestamp precision (a window is never split below it)
    dimensions: tuple[str, ...]   # which of CREATED / MODIFIED the API can filter by
    reconcile: timedelta          # without MODIFIED: how far back each live run re-reads by creation time

    def calls(self) -> int: ...
    def server_now(self) -> datetime: ...            # the marketplace's clock, one cheap call if needed
    def count(self, window: Window, dimension: str) -> int | None: ...   # None: no count query
    def fetch(self, window: Window, dimension: str, expected: int | None) -> list[Order]: ...
    def sweep(self, now: datetime) -> list[Order]: ...   # extra sources: open postings, webhooks, reconciliation


@dataclass(frozen=True)
class SyncSettings:
    initial_days: int = 90
    initial_window: timedelta = timedelta(days=1)
    window: timedelta = timedelta(hours=6)
    lookback: timedelta = timedelta(minutes=10)
    margin: timedelta = timedelta(minutes=2)


@dataclass(frozen=True)
class Strategy:
    """The correct strategy is the default. The bench flips one flag at a time to show what each rule saves."""

    backward_paging: bool = True          # page a DESC list from its last page (adapters that page by number)
    overlap: bool = True                  # start at checkpoint - lookback; False: checkpoint + 1 s (":01" windows)
    server_clock: bool = True             # upper bound from the server's Date; False: the local clock
    checkpoint_with_orders: bool = True   # False: save the checkpoint first, then fetch and commit the orders


@dataclass
class SyncReport:
    marketplace: str
    account: str
    mode: str
    server_start: datetime | None = None
    checkpoint_before: datetime | None = None
    checkpoint_after: datetime | None = None
    windows: int = 0
    orders: int = 0
    swept: int = 0
    api_calls: int = 0
    splits: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        for k in ("server_start", "checkpoint_before", "checkpoint_after"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


def leaf_windows(adapter: Adapter, window: Window, dimension: str, report: SyncReport) -> Iterator[tuple[Window, list[Order]]]:
    """Yield (window, orders) in time order, splitting any window the API cannot answer whole."""
    stack = [window]
    while stack:
        w = stack.pop()
        expected = adapter.count(w, dimension)
        try:
            if expected is not None and adapter.result_limit is not None and expected > adapter.result_limit:
                raise TooManyResults(f"{expected} orders > limit {adapter.result_limit}")
            orders = adapter.fetch(w, dimension, expected)
        except TooManyResults as exc:
            first, second = w.split(adapter.precision)   # raises when it cannot split any further
            report.splits += 1
            log.info("%s:%s window %s too large (%s): split", adapter.marketplace, adapter.account, w, exc)
            stack.extend((second, first))
            continue
        yield w, orders


def plan(window: Window, step: timedelta, overlap: bool) -> list[Window]:
    chunks = window.chunks(step)
    if overlap:
        return chunks
    # The naive plan the field report warns about: 00:00:00-00:10:00, then 00:10:01-00:20:00.
    return [chunks[0]] + [Window(c.start + SECOND, c.end) for c in chunks[1:] if c.end > c.start + SECOND]


def sync_account(dsn: str, adapter: Adapter, settings: SyncSettings = SyncSettings(), *,
                 resync: Window | None = None, resync_dimension: str = MODIFIED,
                 strategy: Strategy = Strategy(), local_now: Callable[[], datetime] | None = None) -> SyncReport:
    """Run one sync of one account. Live (resync=None) moves the checkpoint; a re-sync window never does."""
    mp, acc = adapter.marketplace, adapter.account
    key = store.account_key(mp, acc)
    report = SyncReport(mp, acc, "resync" if resync else "live")
    calls0 = adapter.calls()
    # autocommit: every `conn.transaction()` below is a real BEGIN ... COMMIT (not a savepoint inside one
    # long implicit transaction), so each window commits on its own and a failure keeps what was committed
    with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
        try:
            _run(conn, adapter, settings, strategy, local_now, key, report, resync, resync_dimension)
        except Exception as exc:
            if resync is None:
                try:   # count the failure for operators; never let this hide the real error
                    with conn.transaction():
                        store.note_failure(conn, key, f"{type(exc).__name__}: {exc}")
                except psycopg.Error:
                    log.exception("%s: could not record the failure", key)
            report.api_calls = adapter.calls() - calls0
            raise
    report.api_calls = adapter.calls() - calls0
    return report


def _commit_window(conn, adapter, key, report, mode, dimension, w, orders, mark: str | None, calls_before: int) -> None:
    with conn.transaction():
        n = store.upsert_orders(conn, adapter.marketplace, adapter.account, orders)
        if mark is not None:
            written = store.write_mark(conn, mark, key, w.end)
            if mark == store.CHECKPOINT:
                report.checkpoint_after = written
        store.log_window(conn, adapter.marketplace, adapter.account, mode, dimension, w, n,
                         adapter.calls() - calls_before)
    report.windows += 1
    report.orders += n


def _fetch_and_commit(conn, adapter, key, report, mode, dimension, window, mark):
    calls = adapter.calls()
    for w, orders in leaf_windows(adapter, window, dimension, report):
        merged: dict[str, Order] = {}
        merge(merged, orders)
        _commit_window(conn, adapter, key, report, mode, dimension, w, list(merged.values()), mark, calls)
        calls = adapter.calls()


def _run(conn, adapter, settings, strategy, local_now, key, report, resync, resync_dimension) -> None:
    # "Now" is the marketplace's clock at the start of this run; nothing is read past it minus the margin.
    server_start = adapter.server_now()
    report.server_start = server_start
    now = server_start if strategy.server_clock else local_now()
    upper = now - settings.margin
    step = min(settings.window, adapter.max_range)

    if resync is not None:
        if resync_dimension not in adapter.dimensions:
            raise OrderSyncError(f"{adapter.marketplace} cannot filter by {resync_dimension}; use {adapter.dimensions}")
        end = min(resync.end, upper)
        if end <= resync.start:
            report.notes.append(f"re-sync window {resync} is not yet behind the server clock minus the margin")
            return
        for w in Window(resync.start, end).chunks(step):
            _fetch_and_commit(conn, adapter, key, report, "resync", resync_dimension, w, None)
        return

    checkpoint = store.read_mark(conn, store.CHECKPOINT, key)
    report.checkpoint_before = report.checkpoint_after = checkpoint
    if checkpoint is None:
        checkpoint = _initial(conn, adapter, settings, key, report, server_start)
        if checkpoint is None:
            return
    if MODIFIED not in adapter.dimensions:
        # No modification filter (Megamarket searches by creation date): re-read a sliding window of recent
        # orders every run, reaching back to the checkpoint if runs were missed, so changes are reconciled.
        start = min(checkpoint - settings.lookback, upper - adapter.reconcile)
        if upper > start:
            for w in Window(start, upper).chunks(step):
                _fetch_and_commit(conn, adapter, key, report, "live", CREATED, w, store.CHECKPOINT)
        _sweep(conn, adapter, report, server_start)
        return
    start = checkpoint - settings.lookback if strategy.overlap else checkpoint + SECOND
    if upper > start:
        for w in plan(Window(start, upper), step, strategy.overlap):
            if not strategy.checkpoint_with_orders:
                # naive: the checkpoint is saved first, in its own transaction
                with conn.transaction():
                    store.write_mark(conn, store.CHECKPOINT, key, w.end)
                _fetch_and_commit(conn, adapter, key, report, "live", MODIFIED, w, None)
                report.checkpoint_after = w.end
            else:
                _fetch_and_commit(conn, adapter, key, report, "live", MODIFIED, w, store.CHECKPOINT)
    _sweep(conn, adapter, report, server_start)


def _webhooks(conn, adapter, report) -> None:
    """Orders named by stored webhook bodies: fetched by id, upserted, bodies marked processed, one transaction."""
    if not hasattr(adapter, "webhook_ids"):
        return
    with conn.transaction():
        rows = conn.execute(
            "select inbox_id, body from order_webhook_inbox where marketplace = %s and account = %s"
            " and processed_at is null order by inbox_id limit 1000 for update skip locked",
            (adapter.marketplace, adapter.account)).fetchall()
        if not rows:
            return
        ids = sorted({i for _, body in rows for i in adapter.webhook_ids(body)})
        merged: dict[str, Order] = {}
        merge(merged, adapter.orders_by_ids(ids) if ids else [])
        n = store.upsert_orders(conn, adapter.marketplace, adapter.account, merged.values())
        conn.execute("update order_webhook_inbox set processed_at = now() where inbox_id = any(%s)",
                     ([r[0] for r in rows],))
        store.log_window(conn, adapter.marketplace, adapter.account, "webhook", "ids", None, n, 0)
    report.swept += n


def _sweep(conn, adapter, report, server_start) -> None:
    _webhooks(conn, adapter, report)
    swept = adapter.sweep(server_start)
    if swept:
        merged: dict[str, Order] = {}
        merge(merged, swept)
        with conn.transaction():
            n = store.upsert_orders(conn, adapter.marketplace, adapter.account, merged.values())
            store.log_window(conn, adapter.marketplace, adapter.account, "sweep", "open", None, n, 0)
        report.swept += n


def _initial(conn, adapter, settings, key, report, server_start) -> datetime | None:
    """Initial sync by creation time; returns the first modification checkpoint once complete."""
    with conn.transaction():
        began = store.read_mark(conn, store.INITIAL_START, key, lock=True)
        if began is None:
            began = store.write_mark(conn, store.INITIAL_START, key, server_start)
    report.mode = "initial"
    end = began - settings.margin
    done = store.read_mark(conn, store.INITIAL_PROGRESS, key) or (began - timedelta(days=settings.initial_days))
    # Creation time never changes, so these windows are stable however orders move meanwhile. An API
    # without a creation filter (Ozon lists by status-change time) reads the same windows by what it has.
    dimension = CREATED if CREATED in adapter.dimensions else MODIFIED
    if done < end:
        for w in Window(done, end).chunks(min(settings.initial_window, adapter.max_range)):
            _fetch_and_commit(conn, adapter, key, report, "initial", dimension, w, store.INITIAL_PROGRESS)
    # Orders modified since the initial sync began are read by modification time from here on.
    with conn.transaction():
        checkpoint = store.write_mark(conn, store.CHECKPOINT, key, end)
    report.checkpoint_after = checkpoint
    return checkpoint
