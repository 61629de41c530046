"""Reservation rules (issue 14, docs/reservations.md), each with a test that fails when the rule is broken.

Orders go in through the order sync's own store (orders.store.upsert_orders), stock through `stock`, and what a
channel may sell is read through the very queries the API pushes and the feeds use, on the real PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import yaml

from mpsync.orders import store
from mpsync.orders.model import Order
from mpsync.outbox.config import parse_push_settings
from mpsync.outbox.sources import source_for
from mpsync.reservations import store as reservations
from mpsync.reservations.config import channel_rules
from mpsync.settings import DEFAULT_CONFIG, ConfigError, load_settings

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
SUBSCRIBERS = {"yandex_stock": {"client": "yandex_stocks"}, "ozon_stock": {"client": "ozon_stocks",
               "warehouse_ids": {"normal": 1, "kgt": 2}}, "site": {"client": "woocommerce", "warehouses": "all"},
               "megamarket_stock": {"client": "megamarket_stocks"}}


def write_config(tmp_path, monkeypatch, scheme: str = "per_marketplace", availability: dict | None = None):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    if scheme == "common":
        raw["warehouses"] = {"scheme": "common", "stock_columns": ["main"],
                             "list": [{"code": "main", "name": "Общий", "marketplaces": ["yandex", "ozon", "megamarket"]}]}
    raw["availability"] = availability or {}
    path = tmp_path / "mpsync.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    from mpsync.settings import _cached

    _cached.cache_clear()
    return load_settings(path)


def seed(dsn: str, stock: dict[tuple[str, str], int]) -> None:
    with psycopg.connect(dsn) as conn:
        for article in sorted({a for a, _ in stock}):
            conn.execute("insert into product (article, name, onec_code) values (%s, %s, %s)",
                         (article, f"Товар {article}", f"1C-{article}"))
        for (article, warehouse), q in stock.items():
            conn.execute("insert into stock (product_id, warehouse, quantity) select product_id, %s, %s "
                         "from product where article = %s", (warehouse, q, article))


def ozon_order(order_id: str, lines: list[tuple[str, int]], status: str = "awaiting_packaging",
               minutes: int = 0) -> Order:
    payload = {"posting_number": order_id, "status": status,
               "products": [{"offer_id": a, "quantity": q} for a, q in lines]}
    return Order(order_id, T0 + timedelta(minutes=minutes), status, T0, payload)


def yandex_order(order_id: str, lines: list[tuple[str, int]], status: str = "PROCESSING", minutes: int = 0) -> Order:
    payload = {"orderId": order_id, "status": status, "items": [{"offerId": a, "count": q} for a, q in lines]}
    return Order(order_id, T0 + timedelta(minutes=minutes), status, T0, payload)


def put(dsn: str, marketplace: str, *orders: Order, account: str = "main") -> None:
    with psycopg.connect(dsn) as conn:          # one transaction, as the order sync commits a window
        store.upsert_orders(conn, marketplace, account, orders)


def sellable(dsn: str, cfg, subscriber: str) -> dict[str, int]:
    """What the push sends to a subscriber now: the subscriber's own source query."""
    push = parse_push_settings({"subscribers": SUBSCRIBERS}, cfg)
    src = source_for(push.subscriber(subscriber), cfg)
    with psycopg.connect(dsn, autocommit=True) as conn:
        src.prepare(conn)                       # as each push run does: new products get their offer ids
        rows = conn.execute(src.sql("all"), {**src.params, "since": None}).fetchall()
    return {oid: payload["quantity"] for oid, _, payload in rows}


def stock_report(dsn: str, made: datetime) -> None:
    """A stock report made at `made` was applied (what the stock import's finish records), then its release."""
    with psycopg.connect(dsn) as conn:
        conn.execute("insert into import_file (kind, ftp_path, name, size, status, report_time, content_sha256)"
                     " values ('stock', '/x', %s, 1, 'applied', %s, %s)", (f"r{made:%H%M}", made, str(made)))
        reservations.release_ready(conn)


def test_an_order_reserves_on_its_own_channel_and_the_same_version_twice_counts_once(exchange_dsn, tmp_path,
                                                                                     monkeypatch):
    cfg = write_config(tmp_path, monkeypatch)
    seed(exchange_dsn, {("A", "ozon"): 5, ("A", "yandex"): 5})
    order = ozon_order("P-1", [("A", 2)])
    put(exchange_dsn, "ozon", order)
    put(exchange_dsn, "ozon", order)                    # read again by an overlapping window
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 3}
    assert sellable(exchange_dsn, cfg, "yandex_stock") == {"A": 5}     # per-marketplace warehouses
    assert sellable(exchange_dsn, cfg, "site") == {"A": 8}             # the site sells from both


def test_in_the_common_scheme_a_sale_on_one_channel_reduces_every_other(exchange_dsn, tmp_path, monkeypatch):
    cfg = write_config(tmp_path, monkeypatch, scheme="common")
    seed(exchange_dsn, {("A", "main"): 4})
    put(exchange_dsn, "ozon", ozon_order("P-1", [("A", 3)]))
    assert sellable(exchange_dsn, cfg, "yandex_stock") == {"A": 1}
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 1}


def test_quantity_change_removed_line_and_cancellation_adjust_and_release(exchange_dsn, tmp_path, monkeypatch):
    cfg = write_config(tmp_path, monkeypatch)
    seed(exchange_dsn, {("A", "ozon"): 10, ("B", "ozon"): 10})
    put(exchange_dsn, "ozon", ozon_order("P-1", [("A", 2), ("B", 3)]))
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 8, "B": 7}
    put(exchange_dsn, "ozon", ozon_order("P-1", [("A", 4)], minutes=5))            # newer version
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 6, "B": 10}
    put(exchange_dsn, "ozon", ozon_order("P-1", [("A", 1)], minutes=1))            # an OLDER version: ignored
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 6, "B": 10}
    put(exchange_dsn, "ozon", ozon_order("P-1", [("A", 4)], status="cancelled", minutes=9))
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 10, "B": 10}


def test_released_only_by_a_stock_report_made_after_1c_took_the_order(exchange_dsn, tmp_path, monkeypatch):
    cfg = write_config(tmp_path, monkeypatch, availability={"default": {"release_after_shipment": False}})
    seed(exchange_dsn, {("A", "ozon"): 10})
    put(exchange_dsn, "ozon", ozon_order("P-1", [("A", 2)]))
    acked = T0 + timedelta(minutes=30)
    stock_report(exchange_dsn, acked - timedelta(minutes=10))       # made before 1C had it: still reserved
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 8}
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("insert into onec_order (marketplace, account, order_id, acked_at) values "
                     "('ozon', 'main', 'P-1', %s)", (acked,))
    stock_report(exchange_dsn, acked - timedelta(minutes=5))        # still a report made before the ack
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 8}
    # 1C's report made after it took the order already counts the sale: 8 left in 1C, nothing reserved
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("update stock set quantity = 8")
    stock_report(exchange_dsn, acked + timedelta(minutes=5))
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 8}    # no double subtraction
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select released_at is not null, release_reason like 'in 1C stock report%%' "
                            "from reservation").fetchall() == [(True, True)]


def test_without_the_exchange_a_shipped_order_is_released_by_the_next_report(exchange_dsn, tmp_path, monkeypatch):
    cfg = write_config(tmp_path, monkeypatch)
    seed(exchange_dsn, {("A", "yandex"): 6})
    put(exchange_dsn, "yandex", yandex_order("Y-1", [("A", 1)]))
    stock_report(exchange_dsn, datetime.now(timezone.utc))          # not shipped yet: stays
    assert sellable(exchange_dsn, cfg, "yandex_stock") == {"A": 5}
    put(exchange_dsn, "yandex", yandex_order("Y-1", [("A", 1)], status="DELIVERY", minutes=5))
    assert sellable(exchange_dsn, cfg, "yandex_stock") == {"A": 5}   # shipped, but no report after it yet
    stock_report(exchange_dsn, datetime.now(timezone.utc) + timedelta(seconds=1))
    assert sellable(exchange_dsn, cfg, "yandex_stock") == {"A": 6}


def test_orders_older_than_the_max_age_are_released(exchange_dsn, tmp_path, monkeypatch):
    cfg = write_config(tmp_path, monkeypatch, availability={"channels": {"ozon": {"max_age_hours": 1}}})
    seed(exchange_dsn, {("A", "ozon"): 6})
    old, new = ozon_order("P-old", [("A", 1)]), ozon_order("P-new", [("A", 2)])
    old.created_at = datetime.now(timezone.utc) - timedelta(hours=2)
    new.created_at = datetime.now(timezone.utc) - timedelta(minutes=10)
    put(exchange_dsn, "ozon", old, new)
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 4}      # P-new only


def test_an_unknown_article_reserves_nothing_and_is_listed(exchange_dsn, tmp_path, monkeypatch, caplog):
    cfg = write_config(tmp_path, monkeypatch)
    seed(exchange_dsn, {("A", "ozon"): 3})
    with caplog.at_level("WARNING"):
        put(exchange_dsn, "ozon", ozon_order("P-1", [("A", 1), ("NOPE", 1)]))
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 2}
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select order_id, offer_ids from reservation_unknown").fetchall() == [("P-1", ["NOPE"])]
    assert any("NOPE" in r.getMessage() and "P-1" in r.getMessage() for r in caplog.records)
    caplog.clear()                              # the same order read again: reported once, not every run
    with caplog.at_level("WARNING"):
        put(exchange_dsn, "ozon", ozon_order("P-1", [("A", 1), ("NOPE", 2)]))
    assert not [r for r in caplog.records if "NOPE" in r.getMessage()]


def test_a_line_names_its_goods_by_the_offer_id_the_marketplace_was_given(exchange_dsn, tmp_path, monkeypatch):
    """Megamarket knows a Cyrillic article by its transliterated offer id (feeds/offer_ids.py): its orders
    name that id, and it must reserve the product, not be an unknown article."""
    from mpsync.feeds.offer_ids import megamarket_id

    cfg = write_config(tmp_path, monkeypatch)
    seed(exchange_dsn, {("Кружка синяя", "sber"): 4})
    assert sellable(exchange_dsn, cfg, "megamarket_stock") == {"Кружка синяя": 4}     # gives it its id
    offer = megamarket_id("Кружка синяя")
    payload = {"shipmentId": "M-1", "status": "NEW", "items": [{"offerId": offer, "quantity": 3}]}
    put(exchange_dsn, "megamarket", Order("M-1", T0, "NEW", T0, payload))
    assert sellable(exchange_dsn, cfg, "megamarket_stock") == {"Кружка синяя": 1}


def test_yandex_names_goods_by_their_1c_code(exchange_dsn, tmp_path, monkeypatch):
    cfg = write_config(tmp_path, monkeypatch)
    seed(exchange_dsn, {("A", "yandex"): 3})
    put(exchange_dsn, "yandex", yandex_order("Y-1", [("1C-A", 2)]))
    assert sellable(exchange_dsn, cfg, "yandex_stock") == {"A": 1}


def test_channel_rules_safety_min_show_stop_sales_and_never_below_zero(exchange_dsn, tmp_path, monkeypatch):
    cfg = write_config(tmp_path, monkeypatch, availability={
        "default": {"safety_stock": 1}, "channels": {"yandex": {"min_show": 3}},
        "stop_sales": {"ozon": ["C"]}})
    seed(exchange_dsn, {("A", "ozon"): 4, ("A", "yandex"): 4, ("B", "ozon"): 1, ("C", "ozon"): 9,
                        ("C", "yandex"): 9})
    put(exchange_dsn, "ozon", ozon_order("P-1", [("B", 5)]))                      # more than there is
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 3, "B": 0, "C": 0}
    assert sellable(exchange_dsn, cfg, "yandex_stock") == {"A": 3, "B": 0, "C": 8}
    put(exchange_dsn, "yandex", yandex_order("Y-1", [("A", 1)]))                  # 4 - 1 - 1 = 2 < min_show 3
    assert sellable(exchange_dsn, cfg, "yandex_stock")["A"] == 0


def test_the_feeds_send_the_same_numbers_as_the_pushes(exchange_dsn, tmp_path, monkeypatch):
    from mpsync.feeds.config import feeds_config
    from mpsync.feeds.offers import OfferCounts, iter_offers

    cfg = write_config(tmp_path, monkeypatch, availability={"default": {"safety_stock": 1}})
    seed(exchange_dsn, {("A", "yandex"): 7, ("B", "yandex"): 2})
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("insert into price (product_id, price) select product_id, 100 from product")
    put(exchange_dsn, "yandex", yandex_order("Y-1", [("1C-A", 2)]))
    fc = feeds_config(cfg)
    with psycopg.connect(exchange_dsn) as conn:
        feed = {row[1]: row[11] for row in iter_offers(conn, fc, fc.feed("yandex"), OfferCounts())}
    assert feed == sellable(exchange_dsn, cfg, "yandex_stock") == {"A": 4, "B": 1}


def test_a_reservation_makes_the_push_send_the_product_again(exchange_dsn, tmp_path, monkeypatch):
    """A reservation is a stock change for the outbox's incremental scan: only that product becomes pending."""
    from mpsync.outbox import store as outbox

    cfg = write_config(tmp_path, monkeypatch)
    seed(exchange_dsn, {("A", "ozon"): 5, ("B", "ozon"): 5})
    push = parse_push_settings({"subscribers": SUBSCRIBERS}, cfg)
    src = source_for(push.subscriber("ozon_stock"), cfg)
    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        src.prepare(conn)                # the push gives new goods their offer ids first
        first = outbox.scan(conn, "ozon_stock", src, lookback=timedelta(0), full_every=timedelta(days=1))
        conn.execute("update sync set sync_updated = object_marker where subscriber = 'ozon_stock'")
        put(exchange_dsn, "ozon", ozon_order("P-1", [("B", 1)]))
        second = outbox.scan(conn, "ozon_stock", src, lookback=timedelta(0), full_every=timedelta(days=1))
        pending = [r[0] for r in conn.execute("select object_id from sync where subscriber = 'ozon_stock' "
                                              "and object_marker is distinct from sync_updated")]
    assert (first.marked, second.full, second.marked, pending) == (2, False, 1, ["B"])


def test_available_explain_says_why_a_channel_got_its_number(exchange_dsn, tmp_path, monkeypatch):
    cfg = write_config(tmp_path, monkeypatch, availability={"default": {"safety_stock": 1}})
    seed(exchange_dsn, {("A", "ozon"): 6})
    put(exchange_dsn, "ozon", ozon_order("P-7", [("A", 2)]))
    with psycopg.connect(exchange_dsn) as conn:
        rows = conn.execute("select item, detail, quantity from available_explain('A', 'ozon')").fetchall()
    items = {(i, float(q) if q is not None else None) for i, _, q in rows}
    assert ("stock", 6.0) in items and ("reserved", -2.0) in items and ("sent", 3.0) in items
    assert any(i == "reserved" and "P-7" in d for i, d, _ in rows)
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 3}


def test_availability_config_errors_name_the_key(tmp_path, monkeypatch):
    cfg = write_config(tmp_path, monkeypatch, availability={"channels": {"wildberriez": {"safety_stock": 1}}})
    with pytest.raises(ConfigError, match="wildberriez"):
        channel_rules(cfg)
    cfg = write_config(tmp_path, monkeypatch, availability={"default": {"safety_stock": -1}})
    with pytest.raises(ConfigError, match="safety_stock"):
        channel_rules(cfg)


def test_the_order_sync_dag_announces_changed_reservations_once_a_run_and_only_then(tmp_path, monkeypatch,
                                                                                   airflow_db, exchange_dsn):
    """dag.test() of order_sync against two Yandex accounts (two simulators): both accounts' orders reserve
    stock, and the run announces catalog_changed once, from its one announcer after the syncs, never from the
    mapped sync tasks (concurrent announcements of one asset can deadlock in Airflow's database and fail a
    task whose orders committed); a run that changes no reservation announces nothing."""
    import json

    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent
    from airflow.settings import Session

    from mpsync.simulators import SimClock, start_yandex_simulator
    from tests.test_order_sync_dag import DAG_FILE, _states, _world

    cfg = write_config(tmp_path, monkeypatch)
    raw = yaml.safe_load((tmp_path / "mpsync.yaml").read_text(encoding="utf-8"))
    raw["orders"].update({"margin_minutes": 0.05, "lookback_minutes": 1, "max_attempts": 2,
                          "backoff_seconds": 0.01, "timeout_seconds": 5, "initial_days": 3})
    raw["orders"]["marketplaces"] = {"yandex": {"calls_per_second": 0, "business_id": 7001}}
    raw["orders"]["accounts"] = [{"marketplace": "yandex", "account": "main"},
                                 {"marketplace": "yandex", "account": "second", "conn_id": "yandex_market_second"}]
    (tmp_path / "mpsync.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    seed(exchange_dsn, {(f"SKU-{i:05d}", "yandex"): 1000 for i in range(1, 501)})
    sims = {"YANDEX_MARKET_API": start_yandex_simulator(seed=4, clock=SimClock()),
            "YANDEX_MARKET_SECOND": start_yandex_simulator(seed=5, clock=SimClock())}
    try:
        for conn, sim in sims.items():
            _world(sim, 2, 20)
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn}", json.dumps(
                {"conn_type": "http", "host": "127.0.0.1", "port": sim.server_address[1], "password": sim.api_key}))
        bag = DagBag(dag_folder=str(DAG_FILE))
        dag = bag.dags["order_sync"]

        def events() -> list[AssetEvent]:
            with Session() as s:
                return list(s.query(AssetEvent).filter(AssetEvent.source_dag_id == "order_sync"))

        def reserved_by_account() -> dict[str, int]:
            with psycopg.connect(exchange_dsn) as conn:
                return dict(conn.execute("select account, count(*) from reservation group by account").fetchall())

        before = len(events())
        run = dag.test()
        assert str(run.state) == "success", _states(run)
        assert set(reserved_by_account()) == {"main", "second"}           # both accounts changed reservations
        after = events()
        assert len(after) == before + 1, [(e.source_task_id, e.source_map_index) for e in after[before:]]
        assert after[-1].source_task_id == "announce_reservations"
        assert after[-1].extra["source"] == "orders" and after[-1].extra["reservations"]
        with psycopg.connect(exchange_dsn) as conn:
            reserved = conn.execute("select coalesce(sum(quantity), 0) from reserved_stock").fetchone()[0]
        assert reserved > 0
        assert sum(sellable(exchange_dsn, cfg, "yandex_stock").values()) == 500 * 1000 - reserved
        run = dag.test()                                   # nothing changed on the marketplaces meanwhile
        assert str(run.state) == "success" and _states(run)[("announce_reservations", -1)][0] == "success"
        assert len(events()) == len(after)
    finally:
        for sim in sims.values():
            sim.shutdown()


def test_a_line_whose_goods_the_catalog_learns_later_then_reserves(exchange_dsn, tmp_path, monkeypatch):
    cfg = write_config(tmp_path, monkeypatch)
    seed(exchange_dsn, {("A", "ozon"): 5})
    put(exchange_dsn, "ozon", ozon_order("P-1", [("B", 2)]))                   # B is not in the catalog yet
    seed(exchange_dsn, {("B", "ozon"): 5})                                     # the next catalog import has it
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 5, "B": 5}
    stock_report(exchange_dsn, T0)                                             # any later release pass
    assert sellable(exchange_dsn, cfg, "ozon_stock") == {"A": 5, "B": 3}


def test_an_order_with_unknown_goods_is_one_freshness_finding(exchange_dsn, tmp_path, monkeypatch):
    from mpsync.freshness_checks import check_reservations

    write_config(tmp_path, monkeypatch)
    seed(exchange_dsn, {("A", "ozon"): 3})
    put(exchange_dsn, "ozon", ozon_order("P-1", [("NOPE", 1), ("NADA", 2)]), ozon_order("P-2", [("A", 1)]))
    with psycopg.connect(exchange_dsn) as conn:
        [f] = check_reservations(conn)
    assert f.key == "unknown:ozon:main:P-1" and "NOPE, NADA" in f.message


def test_a_report_and_the_release_it_brings_are_one_step_for_every_reader(exchange_dsn, ftp_params, work_dir,
                                                                          tmp_path, monkeypatch):
    # Between a stock report's fragments (new stock committed) and its finish, a push reading the stock
    # must not see the report's figure (the sale counted by 1C) AND the sale's reservation: both or neither.
    from mpsync import dropfolder
    from mpsync.imports import stock as stock_import
    from mpsync.settings import _cached
    from tests.stock_helpers import add_products, drop, stock_csv, write_test_config

    monkeypatch.setenv("MPSYNC_CONFIG", str(write_test_config(tmp_path / "mpsync.yaml")))
    _cached.cache_clear()
    cfg = load_settings()
    add_products(exchange_dsn, ["A", "B", "C", "D"])

    def report(name: str, made: str, ozon_a: int) -> None:
        drop(ftp_params, tmp_path, name, stock_csv([("A", 0, ozon_a, 0), ("B", 1, 1, 1), ("C", 1, 1, 1),
                                                    ("D", 1, 1, 1)], made=made))
        files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], cfg.stable_seconds)
        prepared = stock_import.prepare(exchange_dsn, ftp_params, files, cfg)
        for fragment in prepared.fragments:
            stock_import.apply_fragment(exchange_dsn, fragment, cfg)
            seen.append(sellable(exchange_dsn, cfg, "ozon_stock")["A"])      # what a push would read now
        stock_import.finish(exchange_dsn, ftp_params, prepared, cfg)
        seen.append(sellable(exchange_dsn, cfg, "ozon_stock")["A"])

    seen: list[int] = []
    report("Ostatki_MP_1.csv", "01.12.2026 11:00", 10)
    put(exchange_dsn, "ozon", ozon_order("P-1", [("A", 2)]))              # created 12:00 Moscow (T0)
    assert sellable(exchange_dsn, cfg, "ozon_stock")["A"] == 8
    with psycopg.connect(exchange_dsn) as conn:                           # 1C took it at 12:30 Moscow
        conn.execute("insert into onec_order (marketplace, account, order_id, acked_at) values "
                     "('ozon', 'main', 'P-1', %s)", (T0 + timedelta(minutes=30),))
    seen.clear()
    report("Ostatki_MP_2.csv", "01.12.2026 13:00", 8)                     # 1C's figure counts the sale
    assert seen and set(seen) == {8}, seen                                # never 6: never subtracted twice
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*) from reservation where released_at is null").fetchone()[0] == 0
