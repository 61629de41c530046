"""The outbox with the real database and real HTTP simulators on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from mpsync.outbox import store
from mpsync.outbox.clients import ApiParams, client_for
from mpsync.outbox.config import parse_push_settings
from mpsync.outbox.push import SubscriberUnavailable, push_subscriber
from mpsync.outbox.sources import TableSource, source_for
from mpsync.settings import ConfigError, settings
from mpsync.simulators.push_megamarket import start_megamarket_simulator
from mpsync.simulators.push_ozon import start_ozon_simulator
from mpsync.simulators.push_site import start_site_simulator
from mpsync.simulators.push_yandex import start_yandex_simulator

SUBSCRIBERS = {
    "site": {"client": "woocommerce", "batch_size": 100, "warehouses": "all"},
    "yandex_stock": {"client": "yandex_stocks"},
    "yandex_price": {"client": "yandex_prices"},
    "ozon_stock": {"client": "ozon_stocks", "warehouse_ids": {"normal": 111, "kgt": 222}},
    "ozon_price": {"client": "ozon_prices"},
    "megamarket_stock": {"client": "megamarket_stocks"},
    "megamarket_price": {"client": "megamarket_prices"},
}


def make_cfg(**overrides):
    section = {"max_failures": 3, "retry_base_seconds": 0, "request_retries": 2, "request_retry_seconds": 0.01,
               "scan_lookback_seconds": 60, "subscribers": SUBSCRIBERS}
    section.update(overrides)
    return parse_push_settings(section, settings())


def seed(dsn: str, n: int = 10, kgt: tuple[int, ...] = ()) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "insert into product (article, name, size_class, onec_code)"
            " select 'A' || lpad(i::text, 4, '0'), 'Item ' || i, case when i = any(%s) then 'kgt' else 'normal' end,"
            "        case when i = 1 then '00000000001' end"
            " from generate_series(1, %s) i", (list(kgt), n))
        conn.execute("insert into stock (product_id, warehouse, quantity)"
                     " select product_id, w, product_id * 10 from product, unnest(array['sber','ozon','yandex']) w")
        conn.execute("insert into price (product_id, price, old_price) select product_id, 100 + product_id, 150 + product_id"
                     " from product")


def set_stock(dsn: str, article: str, warehouse: str, qty) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("update stock set quantity = %s, updated_at = now() from product p"
                     " where stock.product_id = p.product_id and p.article = %s and stock.warehouse = %s",
                     (qty, article, warehouse))


def run(dsn, cfg, name, sim, **kwargs):
    sub = cfg.subscriber(name)
    extra = {"campaign_id": 1001, "business_id": 2002}
    password = getattr(sim, "token", "secret")
    client = client_for(sub.client, ApiParams(sim.url, "client", password, extra), timeout=kwargs.pop("timeout", 5))
    try:
        return push_subscriber(dsn, sub, source_for(sub, settings()), client, cfg, sleep=lambda s: None, **kwargs)
    finally:
        client.close()


def rows(dsn, subscriber):
    with psycopg.connect(dsn) as conn:
        cur = conn.execute("select object_id, sync_updated, object_marker, failures, parked, last_error, claim_token"
                           " from sync where subscriber = %s order by object_id", (subscriber,))
        return {r[0]: r[1:] for r in cur.fetchall()}


@pytest.fixture
def site():
    sim = start_site_simulator()
    yield sim
    sim.stop()


def test_object_changed_in_flight_is_sent_again_next_cycle(exchange_dsn, site):
    seed(exchange_dsn, 5)
    cfg = make_cfg()

    def change_while_in_flight(keys):
        if "A0002" in keys and not site.requests:
            set_stock(exchange_dsn, "A0002", "ozon", 999)

    site.on_request = change_while_in_flight
    first = run(exchange_dsn, cfg, "site", site)
    assert (first.sent, first.acknowledged) == (5, 5)
    sent_first = dict(site.received)["A0002"]["stock_quantity"]
    assert sent_first == 20 * 3                          # the value read when the batch was built
    r = rows(exchange_dsn, "site")
    assert r["A0002"][0] == dict(site.received)["A0002"]["updated"]  # acknowledged with the ECHOED marker

    site.reset_log()
    site.on_request = None
    second = run(exchange_dsn, cfg, "site", site)
    assert site.received_keys() == ["A0002"]             # only the object that changed in flight
    assert site.state["A0002"]["stock_quantity"] == 20 + 20 + 999
    assert (second.changed, second.acknowledged) == (1, 1)
    site.reset_log()
    third = run(exchange_dsn, cfg, "site", site)
    assert site.received_keys() == [] and third.sent == 0


def test_only_failed_objects_are_resent(exchange_dsn, site):
    seed(exchange_dsn, 6)
    cfg = make_cfg()
    site.fail_items = {"A0003": "image missing", "A0005": "bad category"}
    first = run(exchange_dsn, cfg, "site", site)
    assert (first.sent, first.acknowledged, first.failed, first.parked) == (6, 4, 2, 0)
    r = rows(exchange_dsn, "site")
    assert r["A0003"][2:5] == (1, False, "woocommerce_rest_invalid_product: image missing")
    assert r["A0001"][0] == r["A0001"][1] and r["A0001"][2] == 0

    site.reset_log()
    site.fail_items = {}
    second = run(exchange_dsn, cfg, "site", site)
    assert sorted(site.received_keys()) == ["A0003", "A0005"]
    assert (second.acknowledged, second.failed) == (2, 0)
    assert all(v[2] == 0 and v[4] is None and v[0] == v[1] for v in rows(exchange_dsn, "site").values())


def test_failed_object_waits_for_its_backoff(exchange_dsn, site):
    seed(exchange_dsn, 2)
    cfg = make_cfg(retry_base_seconds=3600)
    site.fail_items = {"A0001": "nope"}
    run(exchange_dsn, cfg, "site", site)
    site.reset_log()
    counts = run(exchange_dsn, cfg, "site", site)
    assert site.received_keys() == [] and (counts.pending_due, counts.pending_waiting) == (0, 1)


def test_poison_object_is_parked_after_n_failures_and_comes_back_when_it_changes(exchange_dsn, site):
    seed(exchange_dsn, 3)
    cfg = make_cfg(max_failures=3)
    site.fail_items = {"A0002": "poison"}
    parked_runs = [run(exchange_dsn, cfg, "site", site).parked for _ in range(3)]
    assert parked_runs == [0, 0, 1]
    assert rows(exchange_dsn, "site")["A0002"][2:4] == (3, True)

    site.reset_log()
    idle = run(exchange_dsn, cfg, "site", site)
    assert site.requested_keys() == [] and idle.parked_total == 1   # parked: not resent forever
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select object_id, last_error from sync_parked").fetchall() == [("A0002", "woocommerce_rest_invalid_product: poison")]

    set_stock(exchange_dsn, "A0002", "sber", 5)      # it changes: it comes back by itself
    back = run(exchange_dsn, cfg, "site", site)
    assert back.revived == 1 and site.requested_keys() == ["A0002"]
    assert rows(exchange_dsn, "site")["A0002"][2:4] == (1, False)    # a fresh set of attempts

    for _ in range(2):
        run(exchange_dsn, cfg, "site", site)
    assert rows(exchange_dsn, "site")["A0002"][3] is True
    site.fail_items = {}
    site.reset_log()
    assert store.unpark(psycopg.connect(exchange_dsn, autocommit=True), subscribers=["site"], object_ids=["A0002"]) \
        == [("site", "site_product", "A0002")]
    after = run(exchange_dsn, cfg, "site", site)
    assert site.received_keys() == ["A0002"] and after.acknowledged == 1 and after.parked_total == 0


def test_subscribers_progress_independently(exchange_dsn, site):
    seed(exchange_dsn, 4)
    cfg = make_cfg()
    yandex = start_yandex_simulator()
    try:
        site.queue_fault(status=503, times=10)          # the website is down
        with pytest.raises(SubscriberUnavailable) as down:
            run(exchange_dsn, cfg, "site", site)
        assert down.value.counts.request_failures == 3 and down.value.counts.acknowledged == 0
        # A whole-request failure changes no row: nothing failed, nothing claimed, all still pending.
        assert all(v[0] is None and v[2] == 0 and v[5] is None for v in rows(exchange_dsn, "site").values())

        ok = run(exchange_dsn, cfg, "yandex_stock", yandex)
        assert ok.acknowledged == 4
        assert yandex.state["00000000001"]["items"][0]["count"] == 10   # Yandex knows A0001 by its 1C code
        assert yandex.state["A0002"]["items"][0]["count"] == 20          # only the warehouse bound to yandex

        site.faults.clear()
        assert run(exchange_dsn, cfg, "site", site).acknowledged == 4
    finally:
        yandex.stop()


def test_two_concurrent_runs_never_double_send(exchange_dsn, site):
    seed(exchange_dsn, 300)
    cfg = make_cfg(subscribers={"site": {"client": "woocommerce", "batch_size": 10, "warehouses": "all"}})
    run(exchange_dsn, cfg, "site", site, max_batches=0)   # the scan only: 300 pending
    site.delay = 0.02
    results, errors = [], []

    def worker():
        try:
            results.append(run(exchange_dsn, cfg, "site", site))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    keys = site.received_keys()
    assert len(keys) == len(set(keys)) == 300
    assert all(r.acknowledged > 0 for r in results)       # both runs really worked
    assert sum(r.acknowledged for r in results) == 300


def test_reimporting_identical_stock_publishes_nothing(exchange_dsn, site):
    seed(exchange_dsn, 20)
    cfg = make_cfg()
    assert run(exchange_dsn, cfg, "site", site).acknowledged == 20
    with psycopg.connect(exchange_dsn) as conn:   # a re-import touches every row with the same values
        conn.execute("update stock set quantity = quantity, updated_at = now()")
        conn.execute("update price set price = price, updated_at = now()")
    site.reset_log()
    again = run(exchange_dsn, cfg, "site", site)
    assert (again.scan_full, again.changed, again.sent) == (False, 0, 0) and site.requests == []


def test_whole_request_failures_retry_the_batch(exchange_dsn, site):
    seed(exchange_dsn, 3)
    cfg = make_cfg(request_retries=3)
    site.queue_fault(status=429, retry_after=0)
    site.queue_fault(timeout=1.5)
    site.queue_fault(status=500)
    counts = run(exchange_dsn, cfg, "site", site, timeout=0.5)
    assert (counts.request_failures, counts.acknowledged, counts.failed) == (3, 3, 0)
    assert sorted(site.received_keys()) == ["A0001", "A0002", "A0003"]


def test_yandex_refused_batch_is_split_to_the_bad_item(exchange_dsn):
    seed(exchange_dsn, 8)
    cfg = make_cfg()
    with start_yandex_simulator() as yandex:
        yandex.fail_items = {"A0006": "offer not found"}
        counts = run(exchange_dsn, cfg, "yandex_price", yandex)
        assert (counts.acknowledged, counts.failed) == (7, 1)
        assert rows(exchange_dsn, "yandex_price")["A0006"][4].endswith("offer not found\"}]}")
        assert yandex.state["A0003"]["price"] == {"value": 103.0, "currencyId": "RUR", "discountBase": 153.0}


def test_ozon_pairs_follow_size_class_and_item_pacing_is_not_a_failure(exchange_dsn):
    seed(exchange_dsn, 4, kgt=(4,))
    cfg = make_cfg()
    with start_ozon_simulator() as ozon:
        sub = cfg.subscribers["ozon_stock"]
        assert sub.batch_size == 100 and sub.min_resend_seconds == 30
        assert run(exchange_dsn, cfg, "ozon_stock", ozon).acknowledged == 4
        assert set(ozon.state) == {"A0001@111", "A0002@111", "A0003@111", "A0004@222"}
        assert ozon.state["A0002@111"]["stock"] == 20
        set_stock(exchange_dsn, "A0002", "ozon", 7)
        ozon.reset_log()
        counts = run(exchange_dsn, cfg, "ozon_stock", ozon)
        assert ozon.requests == [] and counts.sent == 0 and counts.pending_due == 1  # synced < 30 s ago: waits
        fast = make_cfg(subscribers={"ozon_stock": {**SUBSCRIBERS["ozon_stock"], "min_resend_seconds": 0}})
        counts = run(exchange_dsn, fast, "ozon_stock", ozon)
        assert (counts.sent, counts.deferred, counts.failed) == (1, 1, 0)   # Ozon said "not within 30 s"
        assert rows(exchange_dsn, "ozon_stock")["A0002"][2] == 0
        assert run(exchange_dsn, cfg, "ozon_price", ozon).acknowledged == 4
        assert ozon.state["A0001"] == {"offer_id": "A0001", "price": "101.00", "old_price": "151.00", "currency_code": "RUB"}


def test_megamarket_stock_and_price(exchange_dsn):
    seed(exchange_dsn, 3)
    cfg = make_cfg()
    with start_megamarket_simulator() as mm:
        mm.queue_fault(status=500)
        assert run(exchange_dsn, cfg, "megamarket_stock", mm).acknowledged == 3
        assert mm.state["A0003"] == {"offerId": "A0003", "quantity": 30}   # warehouse 'sber' only
        mm.fail_items = {"A0002": "price below minimum"}
        counts = run(exchange_dsn, cfg, "megamarket_price", mm)
        assert (counts.acknowledged, counts.failed) == (2, 1)


def test_any_table_with_a_marker_is_a_source(exchange_dsn, site):
    seed(exchange_dsn, 3)
    cfg = make_cfg()
    source = TableSource(object_type="site_product", relation="product", id_column="article",
                         marker_column="updated_at", cursor_column="updated_at")
    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        from datetime import timedelta
        r = store.scan(conn, "catalog_copy", source, lookback=timedelta(0), full_every=timedelta(hours=1))
        assert (r.full, r.marked) == (True, 3)
        conn.execute("update product set name = 'new', updated_at = now() where article = 'A0001'")
        r = store.scan(conn, "catalog_copy", source, lookback=timedelta(0), full_every=timedelta(hours=1))
        assert (r.full, r.marked) == (False, 1)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"sync_push.subscribers.ozon_stock.warehouse_ids"):
        make_cfg(subscribers={"ozon_stock": {"client": "ozon_stocks"}})
    with pytest.raises(ConfigError, match=r"sync_push.subscribers.y.batch_size' 2001 exceeds"):
        make_cfg(subscribers={"y": {"client": "yandex_stocks", "batch_size": 2001}})
    with pytest.raises(ConfigError, match=r"sync_push.subscribers.s.client"):
        make_cfg(subscribers={"s": {"client": "ftp"}})


def test_pushes_send_the_offer_ids_the_feeds_use_and_leave_out_clashes(exchange_dsn):
    """Megamarket ids are transliterated articles and Yandex knows goods by their 1C code: the push must name a
    product exactly as the feed does (table offer_id), or the marketplace gets stock for an offer it does not
    have. Two products wanting one id are in neither."""
    from mpsync.feeds.offer_ids import megamarket_id

    seed(exchange_dsn, 2)
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("insert into product (article, name, onec_code) values ('Кружка синяя 0,5 л', 'Кружка', null),"
                     " ('B-1', 'Clash one', 'SAME'), ('B-2', 'Clash two', 'SAME')")
        conn.execute("insert into stock (product_id, warehouse, quantity) select product_id, w, 5 from product"
                     " cross join unnest(array['sber','yandex']) w where article in ('Кружка синяя 0,5 л', 'B-1', 'B-2')")
    cfg = make_cfg()
    mug = megamarket_id("Кружка синяя 0,5 л")
    assert mug != "Кружка синяя 0,5 л"
    with start_megamarket_simulator() as mm:
        assert run(exchange_dsn, cfg, "megamarket_stock", mm).acknowledged == 5
        assert mm.state[mug] == {"offerId": mug, "quantity": 5}
        assert "Кружка синяя 0,5 л" not in mm.state
    with start_yandex_simulator() as yandex:
        run(exchange_dsn, cfg, "yandex_stock", yandex)
        sent = set(yandex.requested_keys())
        assert "00000000001" in sent and "A0002" in sent          # A0001 by its 1C code, as in the feed
        assert "SAME" not in sent and "B-1" not in sent and "B-2" not in sent
        # the clash fixed in 1C: B-2 gets its own code; the next push sends both, under their ids
        with psycopg.connect(exchange_dsn) as conn:
            conn.execute("update product set onec_code = 'OTHER' where article = 'B-2'")
            conn.execute("insert into offer_id_pending (marketplace, product_id) select 'yandex', product_id"
                         " from product where article = 'B-2'")
        yandex.reset_log()
        run(exchange_dsn, cfg, "yandex_stock", yandex)
        assert set(yandex.requested_keys()) == {"SAME", "OTHER"}


def test_the_scan_reaches_new_offer_ids_through_their_index(exchange_dsn):
    """Each incremental scan asks for the offer ids given since the last scan (issue 20). With a catalog's worth
    of ids the planner must reach the few new ones through offer_id_assigned_idx (migration 0027), not read
    every id of the marketplace through the primary key."""
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("insert into product (article, name, created_at, updated_at)"
                     " select 'A' || g, 'Item ' || g, now() - (50000 - g) * interval '10 minutes',"
                     "        now() - (50000 - g) * interval '10 minutes' from generate_series(1, 50000) g")
        conn.execute("insert into offer_id (marketplace, product_id, offer_id, assigned_at)"
                     " select m, product_id, article, created_at + interval '5 minutes'"
                     " from product cross join unnest(array['yandex', 'ozon', 'megamarket']) m")
        conn.execute("analyze offer_id")
        sql = source_for(make_cfg().subscriber("yandex_price"), settings()).changed_keys_sql
        assert "from offer_id where marketplace" in sql
        params = {"marketplace": "yandex", "price_list": "yandex", "since": conn.execute(
            "select now() - interval '1 hour'").fetchone()[0]}
        plan = str(conn.execute("explain (format json) " + sql, params).fetchone()[0])
        assert len(conn.execute(sql, params).fetchall()) == 7     # made in the last hour: 0..60 min ago
    assert "offer_id_assigned_idx" in plan, plan


def test_claim_reads_pending_rows_only(exchange_dsn):
    """A claim goes through the pending rows' partial index, not the whole table (issue 20's bench: a
    sequential scan per claim made a run's claims cost the table's size times the batches)."""
    from datetime import timedelta

    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("insert into sync (object_type, object_id, subscriber, object_marker, sync_updated)"
                     " select 'offer_price', 'A' || i, 'ozon_price', case when i % 1000 = 0 then 'new' else 'm' end, 'm'"
                     " from generate_series(1, 200000) i")
        conn.execute("analyze sync")
    with psycopg.connect(exchange_dsn) as conn:       # one transaction: its own table statistics
        got = []
        while ids := store.claim(conn, "ozon_price", "offer_price", "t", 50, lease=timedelta(minutes=5)):
            got += ids
        seq = conn.execute("select seq_scan from pg_stat_xact_user_tables where relname = 'sync'").fetchone()[0]
    assert sorted(got) == sorted(f"A{i}" for i in range(1000, 200001, 1000)) and seq == 0
