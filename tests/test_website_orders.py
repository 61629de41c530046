"""Website orders (issue 14): the WooCommerce adapter through the one order engine, against a hostile WooCommerce
simulator (real HTTP on 127.0.0.1, virtual clock, seeded); a website order reserves and goes to 1C.

The loss test runs the old trust-the-pages strategy on an identical simulator in the same test and requires it to
lose orders, so it cannot pass vacuously.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psycopg

from mpsync.orders.engine import Strategy, sync_account
from mpsync.simulators import Hostility, SimClock, start_woocommerce_simulator
from mpsync.orders.model import MODIFIED, UTC, Window
from mpsync.simulators.harness import FAST_SETTINGS, T0, compare, make_adapter, run_rounds, start_sim

UNSTABLE = dict(rounds=6, creates=500, modifies=300, gap=900, outage_rounds=2,
                hostility={"churn_per_call": 1.0, "create_per_call": 0.5})


def test_trusting_woocommerce_pages_loses_orders_proven_windows_do_not(exchange_dsn):
    # page numbers = offsets into a list that shifts when an order in the window changes between two page
    # requests; equal modification seconds reshuffled on every request; a 30-minute scheduler outage
    good = run_rounds("site", exchange_dsn, seed=32, account="proven", **UNSTABLE)
    old = run_rounds("site", exchange_dsn, seed=32, account="trusted", strategy=Strategy(trust_paging=True),
                     **UNSTABLE)
    assert good.lost == 0 and good.stale == 0 and good.failed_runs == 0, good
    assert old.lost > 0, old


def test_hostile_website_loses_nothing(exchange_dsn):
    out = run_rounds("site", exchange_dsn, seed=21, rounds=5, creates=300, modifies=200, p_kill=0.3, history_days=5,
                     hostility={"churn_per_call": 1, "create_per_call": 0.5, "p_rate_limit": 0.05, "p_5xx": 0.05,
                                "p_bad_body": 0.03, "visibility_lag_ms": 30_000})
    assert out.lost == 0 and out.stale == 0, out


def test_the_adapter_asks_what_the_docs_define(exchange_dsn):
    sim = start_sim("site", 4)
    try:
        sim.store.activity(3600, creates=300, modifies=100)
        adapter = make_adapter("site", sim)
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)          # the initial sync: by creation time
        sim.store.activity(1800, creates=150, modifies=150)
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)          # live: by modification time
        sim.clock.advance(180)                                       # past the margin: everything is behind it
        sync_account(exchange_dsn, adapter, FAST_SETTINGS)
        live = [r for r in sim.requests if "modified_after" in r and r["modified_after"] > "2002"]
        assert live and all(r["dates_are_gmt"] == "true" and r["orderby"] == "id" and r["order"] == "asc"
                            and r["per_page"] == "100" for r in live), live[:3]
        # [a, b) asked as modified_after = a - 1 s and modified_before = b, both strict: no second between the
        # windows asked is left out
        spans = sorted((datetime.fromisoformat(r["modified_after"]) + timedelta(seconds=1),
                        datetime.fromisoformat(r["modified_before"])) for r in live if r.get("page") == "1")
        reach = spans[0][1]
        for lo, hi in spans[1:]:
            assert lo <= reach, (lo, reach)
            reach = max(reach, hi)
        assert any("after" in r and "modified_after" not in r for r in sim.requests)   # initial: creation time
        out = compare(sim, exchange_dsn, "site", "main")
        assert out.lost == 0 and out.stale == 0, out
        with psycopg.connect(exchange_dsn) as conn:
            row = conn.execute("select status, created_at, modified_at from marketplace_order"
                               " where marketplace = 'site' order by modified_at desc limit 1").fetchone()
        assert row[0] in ("pending", "processing", "completed", "cancelled") and row[2].tzinfo is not None
    finally:
        sim.stop()


def test_many_pages_are_proven_by_the_count_only_when_it_is_met(exchange_dsn):
    # X-WP-Total of page 1 proves a window of many pages at one call a page; a list that ignores its sort
    # (any order on every request) skips orders across pages: fewer distinct orders than the total, unproven
    for unsorted in (False, True):
        sim = start_sim("site", 5, unsorted=unsorted)
        try:
            sim.store.activity(600, creates=250, modifies=0)
            sim.clock.advance(300)
            adapter = make_adapter("site", sim)
            r = adapter.read(Window(datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 600, UTC)),
                             MODIFIED, whole=True)
            assert adapter.calls() == 3, adapter.calls()
            assert (r.complete, len(r.orders) == 250) == ((False, False) if unsorted else (True, True)), r.complete
        finally:
            sim.stop()
    # unproven windows are split until one answer holds each part: nothing lost
    out = run_rounds("site", exchange_dsn, seed=5, rounds=4, creates=300, modifies=100,
                     hostility={"unsorted": True, "churn_per_call": 1.0})
    assert out.lost == 0 and out.stale == 0 and out.failed_runs == 0, out


def _site_order(sim, lines: list[tuple[str, int, int]]):
    """One order made now on the website simulator, with these (sku, quantity, price) lines."""
    with sim.lock:
        o = sim.store.create()
        o.items = [{"offerId": sku, "count": q, "price": p} for sku, q, p in lines]
    return o


def test_a_website_order_reserves_on_every_channel_and_goes_to_1c(exchange_dsn, tmp_path, monkeypatch):
    from tests.test_onec_exchange import Server, documents, make_exchange, one_c, requisite
    from tests.test_reservations import seed, sellable, write_config

    cfg = write_config(tmp_path, monkeypatch, scheme="common")
    seed(exchange_dsn, {("A", "main"): 5, ("B", "main"): 5})
    # today's clock: reservations and the exchange leave out orders older than their max age
    sim = start_woocommerce_simulator(seed=7, hostility=Hostility(), clock=SimClock(start=time.time()))
    try:
        sync_account(exchange_dsn, make_adapter("site", sim), FAST_SETTINGS)      # an empty shop: initial sync
        order = _site_order(sim, [("A", 2, 1500), ("B", 1, 990)])
        sim.clock.advance(300)                     # past the margin
        sync_account(exchange_dsn, make_adapter("site", sim), FAST_SETTINGS)
        # the website's sale is what every channel may no longer sell (one common 1C warehouse)
        for subscriber in ("ozon_stock", "yandex_stock", "site"):
            assert sellable(exchange_dsn, cfg, subscriber) == {"A": 3, "B": 4}, subscriber
        with Server(make_exchange(exchange_dsn, max_order_age_days=None)) as server:
            docs = documents(one_c(server).exchange())
        key = f"site:main:{order.order_id}"
        assert set(docs) == {key}
        d = docs[key]
        ns = {"c": "urn:1C.ru:commerceml_2"}
        assert [(i.findtext("c:Артикул", namespaces=ns), i.findtext("c:Количество", namespaces=ns),
                 i.findtext("c:ЦенаЗаЕдиницу", namespaces=ns)) for i in d.findall("c:Товары/c:Товар", ns)] == \
            [("A", "2", "1500"), ("B", "1", "990")]
        assert d.findtext("c:Контрагенты/c:Контрагент/c:ОфициальноеНаименование", namespaces=ns) == "Интернет-магазин"
        assert requisite(d, "Маркетплейс") == "site" and requisite(d, "Статус маркетплейса") == "pending"
        with psycopg.connect(exchange_dsn) as conn:
            acked = conn.execute("select acked_at from onec_order where marketplace = 'site'").fetchone()[0]
        assert acked is not None
        # cancelled on the website: released at once, and 1C is told
        with sim.lock:
            o = sim.store.orders[order.order_id]
            while o.status != "CANCELLED":         # each change moves it one status on, or cancels it
                sim.store.modify(o)
        sim.clock.advance(300)
        sync_account(exchange_dsn, make_adapter("site", sim), FAST_SETTINGS)
        assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 5, "B": 5}
        with Server(make_exchange(exchange_dsn, max_order_age_days=None)) as server:
            again = documents(one_c(server).exchange())
        assert requisite(again[key], "Отменен") == "true"
    finally:
        sim.stop()


def test_website_orders_are_configured_like_the_other_accounts():
    from mpsync.airflow_glue.pools import POOLS
    from mpsync.orders.config import build_adapter, orders_config
    from mpsync.orders.woocommerce import WooCommerceAdapter

    cfg = orders_config()
    acc = cfg.account("site:main")
    assert acc.conn_id == "site_api" and "orders_site" in POOLS
    adapter = build_adapter(acc, cfg.client, "https://shop.example.ru", "ck_x", "cs_y")
    assert isinstance(adapter, WooCommerceAdapter) and adapter.marketplace == "site"
    assert adapter.client.session.headers["Authorization"].startswith("Basic ")
