"""Rounds against a simulator, then simulator truth vs the database: used by the tests and bench/bench_orders.py.

A round: the marketplace lives for a while (orders created and modified, sometimes a burst), then one sync
run, sometimes killed mid-window (the simulator drops connections after N calls). At the end the world is
settled (no more churn, the clock moves past margin and lag) and one more sync runs; then every order the
simulator holds must be in the database at its latest version.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from mpsync.orders.client import ApiClient, ClientSettings
from mpsync.orders.engine import Strategy, SyncSettings, sync_account
from mpsync.orders.megamarket import MegamarketAdapter
from mpsync.orders.model import UTC, OrderSyncError
from mpsync.orders.ozon import OzonAdapter
from mpsync.orders.taobao import TaobaoAdapter
from mpsync.orders.webhook import WebhookReceiver
from mpsync.orders.woocommerce import WooCommerceAdapter, basic_auth
from mpsync.orders.yandex import YandexAdapter
from mpsync.simulators import (Hostility, SimClock, start_megamarket_simulator, start_ozon_simulator,
                              start_taobao_simulator, start_woocommerce_simulator, start_yandex_simulator)
from mpsync.simulators.notify import NoticeHostility, Notifier

START = {"taobao": start_taobao_simulator, "yandex": start_yandex_simulator, "ozon": start_ozon_simulator,
         "megamarket": start_megamarket_simulator, "site": start_woocommerce_simulator}
PAGE = {"taobao": 100, "yandex": 50, "ozon": 100, "megamarket": 1000, "site": 100}
DETAIL = {"taobao": 40, "megamarket": 50}
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC).timestamp()

FAST_SETTINGS = SyncSettings(initial_days=90, initial_window=timedelta(days=1), window=timedelta(hours=6),
                             lookback=timedelta(0), margin=timedelta(minutes=2))


def fast_client(sim, headers=None, **kw) -> ApiClient:
    s = ClientSettings(timeout_seconds=kw.pop("timeout_seconds", 2.0), calls_per_second=kw.pop("calls_per_second", 0),
                       max_attempts=kw.pop("max_attempts", 8), backoff_seconds=kw.pop("backoff_seconds", 0.01),
                       max_backoff_seconds=0.2, max_retry_after_seconds=5)
    return ApiClient(sim.url, headers, s, **kw)


def make_adapter(kind: str, sim, account: str = "main", strategy: Strategy = Strategy(), **client_kw):
    if kind == "taobao":
        return TaobaoAdapter(fast_client(sim, name="taobao", **client_kw), account, sim.token,
                             result_limit=sim.h.result_limit, backward_paging=strategy.backward_paging)
    if kind == "yandex":
        return YandexAdapter(fast_client(sim, {"Api-Key": sim.api_key}, name="yandex", **client_kw), account,
                             sim.business_id)
    if kind == "ozon":
        return OzonAdapter(fast_client(sim, {"Client-Id": sim.client_id, "Api-Key": sim.api_key}, name="ozon",
                                       **client_kw), account)
    if kind == "site":
        return WooCommerceAdapter(fast_client(sim, basic_auth(sim.client_id, sim.api_key), name="site", **client_kw),
                                  account)
    if kind == "megamarket":
        return MegamarketAdapter(fast_client(sim, name="megamarket", **client_kw), account, sim.token,
                                 search_limit=sim.h.result_limit, reconcile=timedelta(days=14))
    raise ValueError(kind)


def start_sim(kind: str, seed: int, skew: float = 0.0, **hostility):
    return START[kind](seed=seed, hostility=Hostility(**hostility), clock=SimClock(start=T0, skew=skew))


@dataclass
class Outcome:
    truth: int = 0
    stored: int = 0
    lost: int = 0
    stale: int = 0
    failed_runs: int = 0
    runs: int = 0
    api_calls: int = 0
    retries: int = 0                 # of api_calls: retries of injected failures
    min_calls: int = 0
    steady_runs: int = 0             # live runs with no kill, outage or burst in this round or the one before
    steady_calls: int = 0            # their calls, retries excluded
    steady_min: int = 0
    lost_ids: list = field(default_factory=list)

    def add(self, other: "Outcome") -> None:
        for f in ("truth", "stored", "lost", "stale", "failed_runs", "runs", "api_calls", "retries", "min_calls",
                  "steady_runs", "steady_calls", "steady_min"):
            setattr(self, f, getattr(self, f) + getattr(other, f))


def compare(sim, dsn: str, marketplace: str, account: str) -> Outcome:
    truth = sim.truth()
    with psycopg.connect(dsn) as conn:
        # the simulators carry their version in `version` (Ozon, Taobao...) or in a note (Yandex `notes`, the
        # website's `customer_note`: its `version` is WooCommerce's own)
        rows = dict(conn.execute(
            "select order_id, coalesce(substring(coalesce(payload->>'notes', payload->>'customer_note')"
            " from 'version (\\d+)'), payload->>'version')::int from marketplace_order"
            " where marketplace = %s and account = %s", (marketplace, account)).fetchall())
    out = Outcome(truth=len(truth), stored=len(rows))
    for oid, o in truth.items():
        if oid not in rows:
            out.lost += 1
            if len(out.lost_ids) < 10:
                out.lost_ids.append(oid)
        elif rows[oid] < o.version:
            out.stale += 1
    return out


def history(sim, days: int = 100, per_day: int = 20) -> None:
    """Orders from before the first sync: some older than the initial period, most inside it."""
    sim.clock.advance(-days * 86400)
    sim.store.activity(days * 86400, creates=days * per_day, modifies=days * per_day // 2)


def min_calls(kind: str, changed: int) -> int:
    """The least a run can spend: each order changed since the last run listed once in full pages at the API's
    largest page size, plus details where the API separates them (retries of injected failures not counted)."""
    return math.ceil(changed / PAGE[kind]) + (math.ceil(changed / DETAIL[kind]) if kind in DETAIL else 0)


def changed_since(sim, t: float) -> int:
    index = sim.store.by_modified
    return len(index) - bisect.bisect_left(index, (t, 0))


def run_rounds(kind: str, dsn: str, seed: int, strategy: Strategy = Strategy(), *, rounds: int = 10,
               account: str = "main", settings: SyncSettings = FAST_SETTINGS, skew: float = 0.0,
               creates: int = 200, modifies: int = 200, burst: int = 0, p_kill: float = 0.0,
               history_days: int = 0, hostility: dict | None = None, gap: float = 600,
               outage_rounds: int = 0, steady_rate: bool = False, notices: NoticeHostility | None = None) -> Outcome:
    """`outage_rounds`: from round rounds // 3 on, that many rounds pass with no sync run (the scheduler is down).
    Each round's orders are drawn anew (0..creates, 0..modifies), or with `steady_rate` once for the whole run.
    `notices`: the marketplace notifies changes (notify.py) to a real receiver, delivered before each run."""
    rng = random.Random(seed)
    steady = (rng.randint(0, creates), rng.randint(0, modifies)) if steady_rate else None
    sim = start_sim(kind, seed, skew=skew, **(hostility or {}))
    receiver = WebhookReceiver(dsn).start() if notices is not None else None
    try:
        if history_days:
            history(sim, history_days)
        adapter = make_adapter(kind, sim, account, strategy, max_attempts=4)
        notifier = (Notifier(sim, f"{receiver.url}/{adapter.marketplace}/{account}/notification", notices, seed)
                    if receiver is not None else None)
        out = Outcome()
        last_run, disturbed = None, True          # the first run is the initial sync: not steady
        outage = range(rounds // 3, rounds // 3 + outage_rounds)

        def one_run(steady: bool) -> bool:
            nonlocal last_run
            if notifier is not None:
                notifier.deliver()
            changed = changed_since(sim, last_run) if last_run is not None else len(sim.store.by_modified)
            last_run = sim.clock.now()
            calls, retries = adapter.calls(), adapter.client.retries
            ok = True
            try:
                sync_account(dsn, adapter, settings, strategy=strategy, local_now=sim.clock.local_now)
            except OrderSyncError as exc:
                ok, out.lost_ids = False, out.lost_ids + [f"{type(exc).__name__}: {exc}"]
            out.runs += 1
            out.min_calls += min_calls(kind, changed)
            if steady and ok:
                out.steady_runs += 1
                out.steady_calls += (adapter.calls() - calls) - (adapter.client.retries - retries)
                out.steady_min += min_calls(kind, changed)
            return ok

        for r in range(rounds):
            c, m = steady or (rng.randint(0, creates), rng.randint(0, modifies))
            sim.store.activity(gap, creates=c, modifies=m)
            if r in outage:
                disturbed = True
                continue
            hurt = bool(burst and r == rounds // 2)
            if hurt:
                sim.store.burst(burst, 3600)
            killed = bool(p_kill and rng.random() < p_kill)
            if killed:
                sim.drop_after(rng.randint(2, 12))
            ok = one_run(steady=not (disturbed or hurt or killed))
            out.failed_runs += not ok
            disturbed = hurt or killed or not ok
            sim.drop_after(None)
        # settle: the world stops changing, the clock passes margin + lag, one last ordinary run
        sim.set_hostility(churn_per_call=0, create_per_call=0, p_rate_limit=0, p_5xx=0, p_slow=0, p_bad_body=0)
        sim.clock.advance(settings.margin.total_seconds() + 60)
        if not one_run(steady=False):
            raise OrderSyncError(f"the settle run failed: {out.lost_ids[-1]}")
        res = compare(sim, dsn, adapter.marketplace, account)
        for f in ("runs", "failed_runs", "min_calls", "steady_runs", "steady_calls", "steady_min"):
            setattr(res, f, getattr(out, f))
        res.api_calls, res.retries = adapter.calls(), adapter.client.retries
        return res
    finally:
        sim.stop()
        if receiver is not None:
            receiver.stop()
