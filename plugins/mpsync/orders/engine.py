"""The one sync algorithm. Adapters only know how to read a window of their API; the rules live here.

Rules (DOMAIN.md section 4), each with a test in tests/test_orders_engine.py:
- no checkpoint yet: the last `initial_days` by CREATION time, in small windows, progress committed per window;
- then by MODIFICATION time, from the checkpoint minus a lookback (overlap; the upsert keeps the newest version);
- the upper bound is the marketplace's clock (HTTP Date of this run's first answer) minus a safety margin,
  so the checkpoint never passes the start of the run;
- no list's paging is trusted: a window is final only when its completeness is proven (windows.py), and the
  checkpoint never passes a window that is not;
- each window's orders and the checkpoint commit in ONE transaction; a failure advances nothing;
- windows are sized so one answer holds them, and split under the API's range and result limits;
- explicit [from, to) re-sync windows write orders only, never the live checkpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Protocol

import psycopg

from mpsync.orders import notices, store
from mpsync.orders.client import ApiClient
from mpsync.orders.model import CREATED, MODIFIED, UTC, Order, OrderSyncError, Read, Window, merge
from mpsync.orders.windows import count_between, walk

log = logging.getLogger(__name__)
SECOND = timedelta(seconds=1)
SWEPT = "order_sweep"          # sync mark: server time of the last sweep of open orders (Ozon)
RATE_SPAN = timedelta(hours=1)


class Adapter(Protocol):
    marketplace: str
    account: str
    client: ApiClient             # its first answer's Date is the run's "now" (no probe call)
    max_range: timedelta          # widest window one query may cover
    result_limit: int | None      # most results one window may hold (None: no limit)
    fill: int | None              # orders a window is sized for, so one answer holds it (None: no sizing)
    dimensions: tuple[str, ...]   # which of CREATED / MODIFIED the API can filter by
    reconcile: timedelta          # without MODIFIED: how far back each live run re-reads by creation time

    def calls(self) -> int: ...
    def server_now(self) -> datetime: ...            # one cheap call: only the initial sync needs it first
    def precision_of(self, dimension: str) -> timedelta: ...   # a window is never split below it
    def align(self, start: datetime, end: datetime, dimension: str) -> datetime: ...   # an end it asks exactly
    def read(self, window: Window, dimension: str, whole: bool) -> Read: ...   # see windows.py
    def sweep(self, now: datetime) -> list[Order]: ...   # extra sources: open postings, webhooks, reconciliation


@dataclass(frozen=True)
class SyncSettings:
    initial_days: int = 90
    initial_window: timedelta = timedelta(days=1)
    window: timedelta = timedelta(hours=6)
    # Windows abut exactly (half-open), and a proven window needs no second look: no re-read by default.
    # A lookback > 0 re-reads that much before the checkpoint every run (an API whose changes may become
    # visible later than the margin; it cannot replace a larger margin).
    lookback: timedelta = timedelta(0)
    margin: timedelta = timedelta(minutes=2)


@dataclass(frozen=True)
class Strategy:
    """The correct strategy is the default. The bench flips one flag at a time to show what each rule saves."""

    backward_paging: bool = True          # page a DESC list from its last page (adapters that page by number)
    overlap: bool = True                  # start at checkpoint - lookback; False: checkpoint + 1 s (":01" windows)
    server_clock: bool = True             # upper bound from the server's Date; False: the local clock
    checkpoint_with_orders: bool = True   # False: save the checkpoint first, then fetch and commit the orders
    trust_paging: bool = False            # True: one paged read of a window is final (the old way; loses orders)


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


@dataclass(frozen=True)
class _Run:
    """What every step of one run needs (one account, one connection)."""

    conn: psycopg.Connection
    adapter: Adapter
    settings: SyncSettings
    strategy: Strategy
    key: str
    report: SyncReport
    local_start: datetime | None      # the naive strategy's "now": our clock at the start of the run

    def bound(self) -> datetime | None:
        """Nothing past this is final: the server's clock (first answer of the run) minus the margin."""
        if not self.strategy.server_clock:
            return self.local_start - self.settings.margin
        first = self.adapter.client.first_date
        if first is not None and self.report.server_start is None:
            self.report.server_start = first
        return first - self.settings.margin if first is not None else None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def sync_account(dsn: str, adapter: Adapter, settings: SyncSettings = SyncSettings(), *,
                 resync: Window | None = None, resync_dimension: str = MODIFIED,
                 strategy: Strategy = Strategy(), local_now: Callable[[], datetime] | None = None) -> SyncReport:
    """Run one sync of one account. Live (resync=None) moves the checkpoint; a re-sync window never does."""
    mp, acc = adapter.marketplace, adapter.account
    key = store.account_key(mp, acc)
    report = SyncReport(mp, acc, "resync" if resync else "live")
    calls0 = adapter.calls()
    adapter.client.start_run()
    # autocommit: every `conn.transaction()` below is a real BEGIN ... COMMIT (not a savepoint inside one
    # long implicit transaction), so each window commits on its own and a failure keeps what was committed
    with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
        run = _Run(conn, adapter, settings, strategy, key, report,
                   None if strategy.server_clock else (local_now or _utcnow)())
        try:
            _run(run, resync, resync_dimension)
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


def _commit_window(run: _Run, mode: str, dimension: str, w: Window, orders: list[Order], mark: str | None,
                   calls_before: int, notified: int | None = None) -> None:
    merged: dict[str, Order] = {}
    merge(merged, orders)
    a = run.adapter
    with run.conn.transaction():
        n = store.upsert_orders(run.conn, a.marketplace, a.account, merged.values())
        if mark is not None:
            written = store.write_mark(run.conn, mark, run.key, w.end)
            if mark == store.CHECKPOINT:
                run.report.checkpoint_after = written
        store.log_window(run.conn, a.marketplace, a.account, mode, dimension, w, n, a.calls() - calls_before,
                         notified)
    run.report.windows += 1
    run.report.orders += n


def _walk_and_commit(run: _Run, mode: str, dimension: str, start: datetime, cap: timedelta, mark: str | None, *,
                     first_length: timedelta | None = None, limit: datetime | None = None,
                     gap: timedelta = timedelta(0), before_read=None, notified: list[datetime] | None = None,
                     ratio: tuple[float, float] | None = None) -> None:
    calls = run.adapter.calls()
    for w, orders in walk(run.adapter, start, dimension, cap=cap, first_length=first_length or cap,
                          bound=run.bound, limit=limit, trust=run.strategy.trust_paging, gap=gap,
                          before_read=before_read, report=run.report, notices=notified or (), ratio=ratio):
        count = None if notified is None else count_between(notified, w.start, w.end)
        _commit_window(run, mode, dimension, w, orders, mark, calls, count)
        calls = run.adapter.calls()


def _first_length(run: _Run, start: datetime, cap: timedelta) -> timedelta:
    """A first window one answer should hold, from what the last live windows held (no API call)."""
    fill = getattr(run.adapter, "fill", None)
    if fill is None:
        return cap
    a = run.adapter
    n, seconds = run.conn.execute(
        "select coalesce(sum(orders), 0), coalesce(sum(extract(epoch from window_end - window_start)), 0)"
        " from (select orders, window_start, window_end from order_sync_window where marketplace = %s"
        " and account = %s and mode = 'live' and window_end <= %s order by window_id desc limit 10) w",
        (a.marketplace, a.account, start + run.settings.lookback)).fetchone()
    if not n or not seconds:    # no live window yet: the orders stored for the hour before
        seconds = RATE_SPAN.total_seconds()
        n = run.conn.execute(
            "select count(*) from marketplace_order where marketplace = %s and account = %s"
            " and modified_at >= %s and modified_at < %s", (a.marketplace, a.account, start - RATE_SPAN, start)
        ).fetchone()[0]
    return cap if n == 0 else min(cap, timedelta(seconds=float(seconds) * fill / n))


def _run(run: _Run, resync: Window | None, resync_dimension: str) -> None:
    adapter, settings, strategy, report = run.adapter, run.settings, run.strategy, run.report
    step = min(settings.window, adapter.max_range)
    if resync is not None:
        if resync_dimension not in adapter.dimensions:
            raise OrderSyncError(f"{adapter.marketplace} cannot filter by {resync_dimension}; use {adapter.dimensions}")
        _walk_and_commit(run, "resync", resync_dimension, resync.start, step, None, limit=resync.end)
        if run.bound() is not None and run.bound() < resync.end:
            report.notes.append(f"re-sync read up to {run.bound().isoformat()}: the rest is not yet behind "
                                "the server clock minus the margin")
        return

    if strategy.trust_paging:
        adapter.server_now()    # the old way, kept whole for the bench: a clock probe, then trusted pages
    checkpoint = store.read_mark(run.conn, store.CHECKPOINT, run.key)
    report.checkpoint_before = report.checkpoint_after = checkpoint
    if checkpoint is None:
        checkpoint = _initial(run)
    if MODIFIED not in adapter.dimensions:
        # No modification filter (Megamarket searches by creation date): re-read a sliding window of recent
        # orders every run, reaching back to the checkpoint if runs were missed, so changes are reconciled.
        # (The bound is not known before the first answer: reaching back from the checkpoint covers it.)
        start = checkpoint - max(settings.lookback, adapter.reconcile)
        _walk_and_commit(run, "live", CREATED, start, step, store.CHECKPOINT)
        _sweep(run)
        return
    start = checkpoint - settings.lookback if strategy.overlap else checkpoint + SECOND
    before = None
    if not strategy.checkpoint_with_orders:
        def before(w):   # naive: the checkpoint is saved first, in its own transaction
            with run.conn.transaction():
                report.checkpoint_after = store.write_mark(run.conn, store.CHECKPOINT, run.key, w.end)
    # notifications, where connected, place the windows (hints only: the list proves them, notices.py)
    read = hasattr(adapter, "notification") and not strategy.trust_paging
    inbox, notified = notices.pending(run.conn, adapter, start) if read else ([], None)
    _walk_and_commit(run, "live", MODIFIED, start, step, None if before else store.CHECKPOINT,
                     first_length=_first_length(run, start, step),
                     gap=timedelta(0) if strategy.overlap else SECOND, before_read=before, notified=notified,
                     ratio=notices.last_ratio(run.conn, adapter) if read else None)
    with run.conn.transaction():
        notices.settle(run.conn, adapter, inbox, report.checkpoint_after)
    _sweep(run)


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


def _sweep(run: _Run) -> None:
    """Extra sources after the windows: stored webhooks, and the adapter's sweep (Ozon's open postings).

    A sweep is a second source, never a proof: the windows above already hold every change the API's filter
    sees. An adapter with `sweep_every` sweeps at most that often (the last sweep's server time is a mark).
    """
    conn, adapter, report = run.conn, run.adapter, run.report
    _webhooks(conn, adapter, report)
    now = run.report.server_start or adapter.client.first_date
    every = getattr(adapter, "sweep_every", None)
    if every and now is not None:
        last = store.read_mark(conn, SWEPT, run.key)
        if last is not None and now - last < every:
            return
    if hasattr(adapter, "bind_store"):   # an API without a change filter asks about the orders stored (Wildberries)
        adapter.bind_store(conn)
    swept = adapter.sweep(now)
    merged: dict[str, Order] = {}
    merge(merged, swept)
    with conn.transaction():
        n = store.upsert_orders(conn, adapter.marketplace, adapter.account, merged.values()) if merged else 0
        if every and (now or adapter.client.first_date):
            store.write_mark(conn, SWEPT, run.key, now or adapter.client.first_date)
        if n:
            store.log_window(conn, adapter.marketplace, adapter.account, "sweep", "open", None, n, 0)
    report.swept += n


def _initial(run: _Run) -> datetime:
    """Initial sync by creation time; returns the first modification checkpoint once complete."""
    adapter, settings, report = run.adapter, run.settings, run.report
    with run.conn.transaction():
        began = store.read_mark(run.conn, store.INITIAL_START, run.key, lock=True)
        if began is None:
            # once per account: the start of the initial sync must be known before its first window
            began = store.write_mark(run.conn, store.INITIAL_START, run.key, adapter.server_now())
    report.mode = "initial"
    end = began - settings.margin
    done = store.read_mark(run.conn, store.INITIAL_PROGRESS, run.key) or (began - timedelta(days=settings.initial_days))
    # Creation time never changes, so these windows only ever gain orders at the present (past their end).
    # An API without a creation filter (Ozon lists by status-change time) reads the same windows by what it has.
    dimension = CREATED if CREATED in adapter.dimensions else MODIFIED
    if done < end:
        _walk_and_commit(run, "initial", dimension, done, min(settings.initial_window, adapter.max_range),
                         store.INITIAL_PROGRESS, limit=end)
    # Orders modified since the initial sync began are read by modification time from here on.
    with run.conn.transaction():
        checkpoint = store.write_mark(run.conn, store.CHECKPOINT, run.key, end)
    report.checkpoint_after = checkpoint
    return checkpoint
