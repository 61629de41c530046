"""Wildberries pushes through the outbox, against the hostile WB simulator on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import psycopg
import pytest

from mpsync.outbox.clients import ApiParams, client_for
from mpsync.outbox.config import parse_push_settings
from mpsync.outbox.push import push_subscriber
from mpsync.outbox.sources import source_for
from mpsync.outbox.wildberries import wb_price
from mpsync.outbox.wildberries_cards import refresh_if_due
from mpsync.ratelimit import BucketLimit, TokenBucket
from mpsync.settings import settings
from mpsync.simulators.push_wildberries import WildberriesPushSimulator

SUBSCRIBERS = {
    "wb_stock": {"client": "wildberries_stocks", "warehouses": ["ozon"],
                 "warehouse_ids": {"normal": 1001, "kgt": 1002}},
    "wb_price": {"client": "wildberries_prices"},
}


def make_cfg(**overrides):
    section = {"max_failures": 3, "retry_base_seconds": 0, "request_retries": 2, "request_retry_seconds": 0.01,
               "scan_lookback_seconds": 60, "subscribers": SUBSCRIBERS}
    section.update(overrides)
    return parse_push_settings(section, settings())


def seed(dsn: str, n: int, kgt: tuple[int, ...] = ()) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "insert into product (article, name, size_class, ean)"
            " select 'A' || lpad(i::text, 4, '0'), 'Item ' || i, case when i = any(%s) then 'kgt' else 'normal' end,"
            "        '46000000' || lpad(i::text, 5, '0')"
            " from generate_series(1, %s) i", (list(kgt), n))
        conn.execute("insert into stock (product_id, warehouse, quantity)"
                     " select product_id, 'ozon', product_id * 10 from product")
        conn.execute("insert into price (product_id, price, old_price) select product_id, 100 + product_id,"
                     " 150 + product_id from product")


@pytest.fixture
def wb():
    sim = WildberriesPushSimulator().start()
    yield sim
    sim.stop()


def cards(sim, n: int, skip: tuple[int, ...] = ()) -> None:
    for i in range(1, n + 1):
        if i not in skip:
            sim.add_card(f"A{i:04d}", 700_000 + i, 900_000 + i, f"46000000{i:05d}")


def api(sim) -> ApiParams:
    return ApiParams(sim.url, "", "wb-token")


def run(dsn, cfg, name, sim, *, refresh=True, **kwargs):
    sub = cfg.subscriber(name)
    if refresh:
        refresh_if_due(dsn, api(sim), sub.account, sub.cards_refresh_hours, force=True)
    client = client_for(sub.client, api(sim), timeout=5)
    client.poll_every = 0.01
    try:
        return push_subscriber(dsn, sub, source_for(sub, settings()), client, cfg, sleep=lambda s: None, **kwargs)
    finally:
        client.close()


def rows(dsn, subscriber):
    with psycopg.connect(dsn) as conn:
        cur = conn.execute("select object_id, sync_updated, object_marker, failures, parked, last_error"
                           " from sync where subscriber = %s order by object_id", (subscriber,))
        return {r[0]: r[1:] for r in cur.fetchall()}


def test_stocks_batched_by_chrt_id_per_size_class_warehouse(exchange_dsn, wb):
    seed(exchange_dsn, 7, kgt=(7,))
    cards(wb, 7)
    counts = run(exchange_dsn, make_cfg(subscribers={**SUBSCRIBERS, "wb_stock": {**SUBSCRIBERS["wb_stock"],
                                                                                "batch_size": 3}}), "wb_stock", wb)
    assert (counts.sent, counts.acknowledged, counts.failed) == (7, 7, 0)
    puts = [r for r in wb.requests if r["method"] == "PUT"]
    assert all(len(r["keys"]) <= 3 for r in puts) and len(puts) >= 3
    assert wb.stocks[(1001, 900_001)] == 10 and wb.stocks[(1002, 900_007)] == 70   # KGT on its own warehouse
    assert (1001, 900_007) not in wb.stocks


def test_409_item_error_retries_only_that_object_and_parks_it_after_n(exchange_dsn, wb):
    seed(exchange_dsn, 5)
    cards(wb, 5)
    cfg = make_cfg()
    wb.fail_items = {"A0003": "cargo type"}
    first = run(exchange_dsn, cfg, "wb_stock", wb)
    assert (first.acknowledged, first.failed) == (4, 1)
    assert wb.conflicts == 1 and wb.stocks.get((1001, 900_003)) is None
    r = rows(exchange_dsn, "wb_stock")
    assert r["A0003"][2] == 1 and r["A0003"][4].startswith("CargoWarehouseRestrictionMGT")
    assert all(r[a][0] == r[a][1] for a in ("A0001", "A0002", "A0004", "A0005"))
    for attempt in (2, 3):
        wb.reset_log()
        run(exchange_dsn, cfg, "wb_stock", wb, refresh=False)
        assert wb.requested_keys() == ["A0003@1001"]           # only the failed object goes again
    assert rows(exchange_dsn, "wb_stock")["A0003"][3] is True   # parked after max_failures (3)
    wb.reset_log()
    run(exchange_dsn, cfg, "wb_stock", wb, refresh=False)
    assert wb.requested_keys() == []


def test_store_is_processing_409_is_retried_without_counting(exchange_dsn, wb):
    seed(exchange_dsn, 3)
    cards(wb, 3)
    wb.store_processing = 1
    counts = run(exchange_dsn, make_cfg(), "wb_stock", wb)
    assert (counts.acknowledged, counts.failed, counts.request_failures) == (3, 0, 1)
    assert all(v[2] == 0 for v in rows(exchange_dsn, "wb_stock").values())


def test_goods_without_a_card_are_not_sent_until_their_card_appears(exchange_dsn, wb):
    seed(exchange_dsn, 4)
    cards(wb, 4, skip=(2,))
    first = run(exchange_dsn, make_cfg(), "wb_stock", wb)
    assert first.acknowledged == 3 and "A0002" not in rows(exchange_dsn, "wb_stock")
    wb.add_card("A0002", 700_002, 900_002, "4600000000002")
    wb.reset_log()
    second = run(exchange_dsn, make_cfg(), "wb_stock", wb)
    assert wb.requested_keys() == ["A0002@1001"] and second.acknowledged == 1


def test_server_rate_limit_headers_are_honoured(exchange_dsn, wb):
    seed(exchange_dsn, 2)
    cards(wb, 2)
    run(exchange_dsn, make_cfg(), "wb_stock", wb, max_batches=0)       # cards only
    wb._buckets["marketplace"].tokens = -2       # another process spent the bucket: 429 + X-Ratelimit-Retry
    counts = run(exchange_dsn, make_cfg(), "wb_stock", wb, refresh=False)
    assert wb.rate_limited >= 1 and counts.acknowledged == 2 and counts.failed == 0


def test_price_task_is_polled_and_only_errored_goods_fail(exchange_dsn, wb):
    seed(exchange_dsn, 4)
    cards(wb, 4)
    wb.task_polls = 2                                 # two looks see it unprocessed
    wb.fail_items = {"A0004": "You can't change the item price"}
    counts = run(exchange_dsn, make_cfg(), "wb_price", wb)
    assert (counts.acknowledged, counts.failed) == (3, 1)
    looks = [r for r in wb.requests if r["path"].startswith("/api/v2/history/tasks")]
    assert len(looks) == 3
    assert wb.prices[700_001] == wb_price(101, 151) == (151, 33)
    assert rows(exchange_dsn, "wb_price")["A0004"][4] == "WB: You can't change the item price"
    wb.reset_log()
    wb.fail_items = {}
    again = run(exchange_dsn, make_cfg(), "wb_price", wb, refresh=False)
    assert wb.requested_keys() == ["A0004"] and again.acknowledged == 1


def test_unprocessed_price_task_leaves_goods_pending_without_a_failure(exchange_dsn, wb):
    seed(exchange_dsn, 2)
    cards(wb, 2)
    wb.task_polls = 10**6
    sub = make_cfg().subscriber("wb_price")
    refresh_if_due(exchange_dsn, api(wb), sub.account, 6, force=True)
    client = client_for(sub.client, api(wb), timeout=5)
    client.poll_every, client.poll_seconds = 0.01, 0.2
    counts = push_subscriber(exchange_dsn, sub, source_for(sub, settings()), client, make_cfg(), sleep=lambda s: None)
    client.close()
    assert (counts.acknowledged, counts.failed, counts.deferred) == (0, 0, 2)
    assert all(v[2] == 0 and v[0] is None for v in rows(exchange_dsn, "wb_price").values())


def test_wb_price_is_whole_roubles_and_percent():
    assert wb_price(1000, None) == (1000, 0)
    assert wb_price(999.6, 1000) == (1000, 0)
    assert wb_price(750, 1000) == (1000, 25)
    assert wb_price(1200, 1000) == (1200, 0)        # a crossed-out price below the price is ignored


def test_token_bucket_paces_at_the_interval_after_the_burst():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(BucketLimit.per_minute(300, 20), clock=lambda: now[0], sleep=sleep)
    for _ in range(25):
        bucket.acquire()
    assert slept[:1] and abs(sum(slept) - 5 * 0.2) < 1e-6      # 20 at once, then one per 200 ms
    bucket.charge(9)                                             # a 409 costs 10 in all
    bucket.acquire()
    assert abs(sum(slept) - 15 * 0.2) < 1e-6
    assert bucket.observe(429, {"X-Ratelimit-Retry": "3"}) == 3.0
    before = sum(slept)
    bucket.acquire()
    assert sum(slept) - before >= 3.0
