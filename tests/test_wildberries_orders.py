"""Wildberries FBS orders through the one order engine, against the hostile WB simulator (no mocks).

The loss test fails if the adapter trusted the `next` cursor: the simulator's `next` is an offset into a list
in a new random order at every request, so a paged read skips some orders and lists others twice.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import yaml

from mpsync.orders.client import ClientSettings
from mpsync.orders.engine import Strategy, SyncSettings, sync_account
from mpsync.orders.model import OrderSyncError
from mpsync.orders.wildberries import WildberriesAdapter, final, wildberries_client
from mpsync.ratelimit import BucketLimit
from mpsync.reservations.lines import CANCELLED, OPEN, SHIPPED, order_lines
from mpsync.settings import DEFAULT_CONFIG
from mpsync.simulators.base import Hostility, SimClock
from mpsync.simulators.wildberries import STATUS, start_wildberries_simulator

# The simulator's clock is months behind the database's on purpose: every age the adapter judges must be by the
# server's clock (a cutoff by the database's now() would drop every order from the status sweep)
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc).timestamp()
SETTINGS = SyncSettings(initial_days=30, initial_window=timedelta(days=1), window=timedelta(hours=6),
                        lookback=timedelta(0), margin=timedelta(minutes=2))


def make_sim(seed: int, p_short_page: float = 0.0, start: float = T0, **hostility):
    sim = start_wildberries_simulator(seed=seed, hostility=Hostility(**hostility), clock=SimClock(start=start))
    sim.bucket_scale = 0.0005        # the simulator's bucket at WB's shape, fast enough for a test
    sim.p_short_page = p_short_page
    return sim


def make_adapter(sim, account: str = "main") -> WildberriesAdapter:
    cs = ClientSettings(timeout_seconds=2.0, max_attempts=8, backoff_seconds=0.01, max_backoff_seconds=0.2,
                        max_retry_after_seconds=5)
    client = wildberries_client(sim.url, sim.token, cs, f"wildberries:{account}", limit=BucketLimit(0.0001, 1000))
    return WildberriesAdapter(client, account, reconcile=timedelta(hours=1))


def compare(sim, dsn: str, account: str) -> tuple[int, int, list]:
    """(lost, stale, lost ids): every simulator order stored, with the status the simulator shows now."""
    with psycopg.connect(dsn) as conn:
        stored = {r[0]: r[1] for r in conn.execute(
            "select order_id, status from marketplace_order where marketplace = 'wildberries' and account = %s",
            (account,))}
    lost, stale, ids = 0, 0, []
    now = sim.clock.now()
    for oid, o in sim.truth().items():
        v = o.view(now)
        if v is None:
            continue
        if oid not in stored:
            lost += 1
            ids.append(oid)
        elif stored[oid] != "/".join(STATUS[v.status]):
            stale += 1
    return lost, stale, ids[:10]


def rounds(dsn: str, seed: int, account: str, strategy: Strategy = Strategy(), *, n: int = 6, creates: int = 1500,
           modifies: int = 400, history_per_day: int = 2500, p_short_page: float = 0.0,
           **hostility) -> tuple[int, int, list, int]:
    rng = random.Random(seed)
    sim = make_sim(seed, p_short_page, **hostility)
    failed = 0
    try:
        sim.clock.advance(-5 * 86400)      # five busy days before the first sync: windows of several pages
        sim.store.activity(5 * 86400, creates=5 * history_per_day, modifies=history_per_day)
        adapter = make_adapter(sim, account)
        for _ in range(n):
            sim.store.activity(900, creates=rng.randint(0, creates), modifies=rng.randint(0, modifies))
            try:
                sync_account(dsn, adapter, SETTINGS, strategy=strategy)
            except OrderSyncError:
                failed += 1
        sim.set_hostility(churn_per_call=0, create_per_call=0, p_rate_limit=0, p_5xx=0, p_bad_body=0)
        sim.p_short_page = 0.0
        sim.clock.advance(SETTINGS.margin.total_seconds() + 60)
        sync_account(dsn, adapter, SETTINGS, strategy=strategy)
        lost, stale, ids = compare(sim, dsn, account)
        return lost, stale, ids, failed
    finally:
        sim.stop()


HOSTILE = dict(churn_per_call=1.0, create_per_call=0.5, p_rate_limit=0.02, p_5xx=0.02)


def test_trusting_the_next_cursor_loses_orders_proven_windows_do_not(exchange_dsn):
    good = rounds(exchange_dsn, 41, "proven", **HOSTILE)
    trusted = rounds(exchange_dsn, 41, "trusted", Strategy(trust_paging=True), **HOSTILE)
    assert good[:2] == (0, 0) and good[3] == 0, good
    assert trusted[0] > 0, trusted


def test_short_pages_are_not_taken_as_the_end_of_the_list(exchange_dsn):
    lost, stale, ids, failed = rounds(exchange_dsn, 7, "short", n=3, history_per_day=1200, p_short_page=0.5)
    assert (lost, stale, failed) == (0, 0, 0), ids


def test_status_changes_of_known_orders_come_from_the_status_call(exchange_dsn):
    sim = make_sim(3)
    try:
        sim.store.activity(3600, creates=50, modifies=0)
        adapter = make_adapter(sim)
        sync_account(exchange_dsn, adapter, SETTINGS)
        sim.clock.advance(2 * 86400)                 # two days on: the orders are far behind the checkpoint
        sync_account(exchange_dsn, adapter, SETTINGS)
        for o in list(sim.store.orders.values())[::2]:
            sim.store.modify(o)                      # half of them move on; no creation window holds them
        sim.clock.advance(600)
        assert compare(sim, exchange_dsn, "main")[1] == 25
        sync_account(exchange_dsn, adapter, SETTINGS)
        assert compare(sim, exchange_dsn, "main")[:2] == (0, 0)
    finally:
        sim.stop()


def test_a_run_asks_each_order_status_once(exchange_dsn):
    """Economy: what a window of the run read with its status is not asked again by the sweep; the rest is."""
    sim = make_sim(9)

    def run() -> Counter:
        sim.status_asked.clear()
        sync_account(exchange_dsn, adapter, SETTINGS)
        assert compare(sim, exchange_dsn, "main")[:2] == (0, 0)
        return Counter(sim.status_asked)

    try:
        sim.store.activity(1800, creates=60, modifies=0)
        for o in list(sim.store.orders.values()):
            sim.store.modify(o)                      # none is new: the new-orders list is empty
        adapter = make_adapter(sim)
        run()                                        # initial (the run's live part reads the last hour again)
        sim.clock.advance(600)
        asked = run()                                # live: its reconcile windows hold all 60, the sweep none
        assert set(asked) == set(sim.store.orders) and set(asked.values()) == {1}
        sim.clock.advance(2 * 86400)
        run()                                        # the checkpoint moves two days on
        open_ = [o for o in sim.store.orders.values() if o.status not in ("DELIVERED", "CANCELLED")]
        for o in open_:
            sim.store.modify(o)
        sim.clock.advance(600)
        calls = sim.calls_by_path.get("/api/v3/orders/status", 0)
        asked = run()                                # no window holds them: the sweep asks the open ones, once
        assert open_ and set(asked) == {o.order_id for o in open_} and set(asked.values()) == {1}
        assert sim.calls_by_path["/api/v3/orders/status"] - calls == 1      # 1000 ids a call
    finally:
        sim.stop()


def test_final_statuses_are_not_asked_again():
    assert final("cancel/canceled") and final("complete/sold") and final("confirm/canceled_by_client")
    assert not final("new/waiting") and not final("complete/sorted") and not final(None)


def test_wildberries_lines_one_unit_per_assembly_order():
    lines, state = order_lines("wildberries", {"id": 5, "article": "0557722", "price": 123450,
                                               "supplierStatus": "confirm", "wbStatus": "waiting"})
    assert state == OPEN and [(x.offer_id, int(x.quantity), float(x.price)) for x in lines] == [("0557722", 1, 1234.5)]
    assert order_lines("wildberries", {"article": "X", "supplierStatus": "complete", "wbStatus": "sorted"})[1] == SHIPPED
    assert order_lines("wildberries", {"article": "X", "supplierStatus": "new",
                                       "wbStatus": "declined_by_client"})[1] == CANCELLED
    assert order_lines("wildberries", {"supplierStatus": "new"})[0] == []


@pytest.fixture
def wb_config(tmp_path, monkeypatch):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["warehouses"]["list"].append({"code": "wb", "name": "Wildberries", "marketplaces": ["wildberries"]})
    raw["warehouses"]["stock_columns"].append("wb")
    path = tmp_path / "mpsync.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    from mpsync.settings import _cached

    _cached.cache_clear()
    yield path
    _cached.cache_clear()


def test_wildberries_orders_reserve_on_its_warehouse_until_cancelled(exchange_dsn, wb_config):
    # reservations age by the database's clock (max_age_hours releases older orders): orders of today
    sim = make_sim(5, start=time.time() - 3600)
    try:
        sim.store.activity(3600, creates=20, modifies=0)
        articles = sorted({o.items[0]["offerId"] for o in sim.store.orders.values()})
        with psycopg.connect(exchange_dsn) as conn:
            for a in articles:
                conn.execute("insert into product (article, name) values (%s, %s)", (a, a))
            conn.execute("insert into stock (product_id, warehouse, quantity) select product_id, 'wb', 50 from product")
        adapter = make_adapter(sim)
        sync_account(exchange_dsn, adapter, SETTINGS)
        with psycopg.connect(exchange_dsn) as conn:
            reserved = conn.execute("select coalesce(sum(quantity), 0) from reserved_stock where warehouse = 'wb'"
                                    ).fetchone()[0]
        assert reserved == len(sim.store.orders)        # one unit per assembly order, on the WB warehouse
        for o in sim.store.orders.values():
            o.status = "CANCELLED"
        sim.clock.advance(600)
        sync_account(exchange_dsn, adapter, SETTINGS)
        with psycopg.connect(exchange_dsn) as conn:
            reserved = conn.execute("select coalesce(sum(quantity), 0) from reserved_stock where warehouse = 'wb'"
                                    ).fetchone()[0]
        assert reserved == 0
    finally:
        sim.stop()
