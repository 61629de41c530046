"""Freshness checks against the real exchange database and a real feeds folder: each check on both sides
(stale -> a finding; fresh -> none; outside business hours -> none), the re-alert memory, the configuration,
and one dag.test() of the watcher DAG mailing one alert that lists everything stale.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from mpsync import freshness
from mpsync.freshness import decide, parse_freshness_settings
from mpsync.freshness_checks import (Finding, check_feeds, check_held, check_notifications, check_orders, check_parked,
                                     check_stock)
from mpsync.orders import store as order_store
from mpsync.settings import ConfigError
from tests.test_alerts import (  # noqa: F401  (smtp_inbox is a fixture)
    body_of,
    run_failure_callback_in_dag_processor,
    smtp_inbox,
    write_config,
)

MSK = ZoneInfo("Europe/Moscow")
CFG = parse_freshness_settings({}, "test")          # the defaults: 90 min, 07:30-22:00 every day, 26 h...


def msk(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in March 2026 given in Moscow time (2 March 2026 is a Monday)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=MSK)


def add_stock_file(dsn: str, name: str, received: datetime, status: str = "applied") -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "insert into import_file (kind, ftp_path, name, size, modified_at, received_at, status)"
            " values ('stock', %s, %s, 100, %s, %s, %s)",
            (f"/1c/stock/{name}", name, received, received, status),
        )


def stock_findings(dsn: str, now: datetime, cfg=CFG):
    with psycopg.connect(dsn) as conn:
        return check_stock(conn, cfg, now)


@pytest.fixture(autouse=True)
def in_service_long_ago(request):
    """The exchange database these checks judge has been in service since long before the tests' March 2026."""
    if "exchange_dsn" in request.fixturenames:
        in_service_since(request.getfixturevalue("exchange_dsn"), datetime(2025, 1, 1, tzinfo=timezone.utc))


def in_service_since(dsn: str, when: datetime) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("update schema_migration set applied_at = %s", (when,))


def test_a_first_start_is_not_silence(exchange_dsn, tmp_path):
    """Issue 19: at its first start the watcher failed ('no stock file ever received', every feed missing)
    before any data could have arrived. Silence counts from when the exchange database came into service."""
    in_service_since(exchange_dsn, msk(2, 11))
    assert stock_findings(exchange_dsn, msk(2, 12)) == []
    assert check_feeds(tmp_path, {"yandex": "yandex.xml"}, CFG, msk(2, 12), msk(2, 11)) == []
    [f] = stock_findings(exchange_dsn, msk(2, 12, 31))
    assert "no stock file ever received" in f.message and "1 h 31 min" in f.message
    [g] = check_feeds(tmp_path, {"yandex": "yandex.xml"}, CFG, msk(3, 14), msk(2, 11))
    assert "not published (missing)" in g.message


# ---- stock: business hours -------------------------------------------------------------------------------

def test_stock_silence_in_business_hours_is_a_finding(exchange_dsn):
    add_stock_file(exchange_dsn, "Ostatki_MP_1000.xlsx", msk(2, 10))
    [f] = stock_findings(exchange_dsn, msk(2, 12))
    assert f.key == "stock"
    assert "no stock file from 1C for 2 h 00 min of business hours (limit 1 h 30 min" in f.message
    assert "Ostatki_MP_1000.xlsx received 2026-03-02 10:00 MSK" in f.message


def test_a_recent_stock_file_is_fresh_and_any_status_counts_as_arrived(exchange_dsn):
    add_stock_file(exchange_dsn, "Ostatki_MP_1100.xlsx", msk(2, 11), status="refused")
    assert stock_findings(exchange_dsn, msk(2, 12)) == []
    assert stock_findings(exchange_dsn, msk(2, 12, 30)) == []          # exactly the limit: still fine
    assert len(stock_findings(exchange_dsn, msk(2, 12, 31))) == 1


def test_outside_business_hours_nothing_is_checked(exchange_dsn):
    add_stock_file(exchange_dsn, "Ostatki_MP_1800.xlsx", msk(2, 18))
    assert stock_findings(exchange_dsn, msk(2, 23)) == []               # night: 5 h of silence, no alert
    assert stock_findings(exchange_dsn, msk(3, 7, 29)) == []            # before opening
    assert len(stock_findings(exchange_dsn, msk(2, 21, 59))) == 1        # still open at 21:59: stale


def test_the_night_does_not_count_as_silence(exchange_dsn):
    add_stock_file(exchange_dsn, "Ostatki_MP_2100.xlsx", msk(2, 21))
    assert stock_findings(exchange_dsn, msk(3, 8, 0)) == []              # 30 min since opening
    assert stock_findings(exchange_dsn, msk(3, 9, 0)) == []              # 90 min: the limit
    [f] = stock_findings(exchange_dsn, msk(3, 9, 15))                    # 07:30 drop and 08:30 drop missed
    assert "1 h 45 min" in f.message


def test_no_stock_file_ever_and_closed_days(exchange_dsn):
    [f] = stock_findings(exchange_dsn, msk(2, 12))
    assert "no stock file ever received" in f.message
    weekdays = parse_freshness_settings(
        {"stock": {"business_hours": {"days": ["mon", "tue", "wed", "thu", "fri"]}}}, "test")
    assert stock_findings(exchange_dsn, msk(1, 12), weekdays) == []      # 1 March 2026 is a Sunday
    assert len(stock_findings(exchange_dsn, msk(2, 12), weekdays)) == 1


# ---- feeds ------------------------------------------------------------------------------------------------

def test_feed_age(tmp_path):
    now = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
    for name, hours_old in (("yandex.xml", 1), ("ozon.xml", 30)):
        path = tmp_path / name
        path.write_text("<yml_catalog/>", encoding="utf-8")
        stamp = (now - timedelta(hours=hours_old)).timestamp()
        os.utime(path, (stamp, stamp))
    feeds = {"yandex": "yandex.xml", "ozon": "ozon.xml", "megamarket": "megamarket.xml"}
    findings = {f.key: f.message for f in check_feeds(tmp_path, feeds, CFG, now)}
    assert sorted(findings) == ["feed:megamarket", "feed:ozon"]          # yandex, 1 h old, is fresh
    assert "1 d 6 h ago (limit 1 d 2 h)" in findings["feed:ozon"]
    assert "not published (missing)" in findings["feed:megamarket"]
    assert check_feeds(tmp_path, {"yandex": "yandex.xml"}, CFG, now) == []


# ---- orders -----------------------------------------------------------------------------------------------

def test_order_checkpoint_stall(exchange_dsn):
    with psycopg.connect(exchange_dsn) as conn:
        # Written the way the order sync writes them (synced_at = when the checkpoint last moved).
        order_store.write_mark(conn, order_store.CHECKPOINT, "ozon:main", datetime(2026, 3, 2, 9, tzinfo=timezone.utc))
        order_store.write_mark(conn, order_store.CHECKPOINT, "yandex:main", datetime(2026, 3, 2, 9, tzinfo=timezone.utc))
        order_store.write_mark(conn, order_store.CHECKPOINT, "ozon:old", datetime(2025, 1, 1, tzinfo=timezone.utc))
        order_store.note_failure(conn, "ozon:main", "HTTP 403 from Ozon: invalid Api-Key\ntrace...")
        conn.commit()
        moved = conn.execute("select max(synced_at) from sync where object_type = 'order_checkpoint'").fetchone()[0]
        accounts = ["ozon:main", "yandex:main"]              # ozon:old is no longer configured: ignored
        assert check_orders(conn, CFG, moved + timedelta(minutes=89), accounts) == []
        findings = check_orders(conn, CFG, moved + timedelta(hours=3), accounts)
        # The forward-only writer does not move a checkpoint backwards, and does not count as moving.
        order_store.write_mark(conn, order_store.CHECKPOINT, "yandex:main", datetime(2026, 3, 1, tzinfo=timezone.utc))
        conn.commit()
        assert len(check_orders(conn, CFG, moved + timedelta(hours=3), accounts)) == 2
        assert len(check_orders(conn, CFG, moved + timedelta(hours=3), None)) == 3
    by_key = {f.key: f.message for f in findings}
    assert sorted(by_key) == ["order:ozon:main", "order:yandex:main"]
    assert "checkpoint 2026-03-02T09:00:00+00:00 has not moved for 3 h 00 min" in by_key["order:ozon:main"]
    assert "1 failed runs, last error: HTTP 403 from Ozon: invalid Api-Key" in by_key["order:ozon:main"]


def test_notifications_that_stopped_are_alerted_ones_never_set_up_are_not(exchange_dsn):
    now = datetime.now(timezone.utc)
    # account: (changes listed in the last 2 h, of them notified, when the last notification came: hours ago)
    world = {"yandex:stopped": (30, 0, 3), "ozon:stopped": (25, 0, 30), "ozon:never": (50, 0, None),
             "yandex:quiet": (10, 0, 3), "ozon:fine": (30, 25, 0.1), "yandex:long_ago": (40, 0, 24 * 10),
             "yandex:removed": (30, 0, 3)}
    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        for key, (listed, notified, last) in world.items():
            mp, account = key.split(":")
            for part, minutes in ((listed // 2, 100), (listed - listed // 2, 10)):
                conn.execute("insert into order_sync_window (marketplace, account, mode, dimension, orders,"
                             " notified, committed_at) values (%s, %s, 'live', 'modified', %s, %s, %s)",
                             (mp, account, part, notified if minutes == 10 else 0, now - timedelta(minutes=minutes)))
            if last is not None:
                conn.execute("insert into order_webhook_inbox (marketplace, account, body, received_at)"
                             " values (%s, %s, '{}', %s)", (mp, account, now - timedelta(hours=last)))
        conn.execute("insert into order_sync_window (marketplace, account, mode, dimension, orders, notified,"
                     " committed_at) values ('yandex', 'stopped', 'live', 'modified', 90, 0, %s)",
                     (now - timedelta(hours=5),))           # before the silence: not counted
        accounts = [k for k in world if k != "yandex:removed"]
        findings = check_notifications(conn, CFG, now, accounts)
        assert len(check_notifications(conn, CFG, now, None)) == 3        # no accounts configured: all of them
        assert check_notifications(conn, CFG, now, []) == []
        shorter = parse_freshness_settings({"notifications": {"max_silence_minutes": 30}}, "test")
        assert check_notifications(conn, shorter, now, accounts) == []     # 15 changes in 30 min: too few to say
    by_key = {f.key: f.message for f in findings}
    assert sorted(by_key) == ["notices:ozon:stopped", "notices:yandex:stopped"]
    assert "30 changes listed in the last 2 h 00 min, none notified" in by_key["notices:yandex:stopped"]
    assert "notification URL" in by_key["notices:yandex:stopped"]
    assert "no order is lost" in by_key["notices:ozon:stopped"]


# ---- parked -----------------------------------------------------------------------------------------------

def park(dsn: str, subscriber: str, object_type: str, object_id: str, error: str, minutes_ago: int) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "insert into sync (object_type, object_id, subscriber, object_marker, failures, last_error, parked,"
            " parked_at) values (%s, %s, %s, 'm1', 5, %s, true, now() - make_interval(mins => %s))",
            (object_type, object_id, subscriber, error, minutes_ago),
        )


def test_parked_objects_over_the_threshold(exchange_dsn):
    with psycopg.connect(exchange_dsn) as conn:
        assert check_parked(conn, CFG) == []
    park(exchange_dsn, "site", "stock", "SKU-1", "400 invalid sku", 30)
    park(exchange_dsn, "site", "stock", "SKU-2", "400 invalid sku", 20)
    park(exchange_dsn, "ozon_price", "price", "SKU-3", "price too low\nmore", 5)
    with psycopg.connect(exchange_dsn) as conn:
        [f] = check_parked(conn, CFG)
        assert check_parked(conn, parse_freshness_settings({"parked": {"max_objects": 3}}, "test")) == []
        assert len(check_parked(conn, parse_freshness_settings({"parked": {"max_objects": 2}}, "test"))) == 1
    assert f.message == ("parked: 3 sync objects parked (limit 0): site/stock 2, ozon_price/price 1; "
                         "newest ozon_price/price SKU-3: price too low")


# ---- re-alerting: new -> alert; same within realert -> quiet; later, or something new -> alert -------------

def test_held_prices_are_a_finding_per_file_until_decided(exchange_dsn):
    with psycopg.connect(exchange_dsn) as conn:
        pids = [conn.execute("insert into product (article, name) values (%s, 'x') returning product_id",
                             (f"P-{i}",)).fetchone()[0] for i in range(7)]
        file_id = conn.execute("insert into import_file (kind, ftp_path, name, size, status) values"
                               " ('price', '/1c/price/MP_PRICE.xlsx', 'MP_PRICE.xlsx', 1, 'applied')"
                               " returning import_file_id").fetchone()[0]
        assert check_held(conn) == []
        for pid in pids:
            conn.execute("insert into price_hold (import_file_id, product_id, price_list, price, current_price,"
                         " reason) values (%s, %s, 'default', 3000, 1000, 'jump')", (file_id, pid))
        [f] = check_held(conn)
        assert f.key == f"held:{file_id}" and f.message.startswith("held: 7 price(s) of MP_PRICE.xlsx wait for a "
                                                                  "decision (Airflow: Required actions")
        assert "P-0 1000.00 -> 3000.00" in f.message and f.message.endswith(", ...")
        conn.execute("update price_hold set decision = 'kept', decided_at = now()")
        assert check_held(conn) == []


def test_realert_memory(exchange_dsn):
    t0 = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    a = Finding("feed:ozon", "feed ozon", "feed ozon: old")
    b = Finding("parked", "parked objects", "parked: 3")

    def run(findings, now):
        with psycopg.connect(exchange_dsn) as conn:
            return decide(conn, findings, CFG, now)

    assert run([a], t0).alert
    quiet = run([a], t0 + timedelta(minutes=15))
    assert not quiet.alert and quiet.alerted_at == {"feed:ozon": t0}
    both = run([a, b], t0 + timedelta(minutes=30))                      # something new: alert, listing both
    assert both.alert and both.summary().splitlines() == ["2 stale: feed ozon, parked objects",
                                                          "- feed ozon: old", "- parked: 3"]
    assert not run([a, b], t0 + timedelta(minutes=45)).alert
    assert run([a, b], t0 + timedelta(minutes=30 + 120)).alert          # realert_minutes later
    assert not run([], t0 + timedelta(hours=3)).alert                   # all fresh: memory cleared...
    assert run([a], t0 + timedelta(hours=3, minutes=15)).alert          # ...so a relapse alerts at once


# ---- configuration ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, key", [
    ({"timezone": "Mars/Olympus"}, "alerts.freshness.timezone"),
    ({"stock": {"max_silence_minutes": 0}}, "alerts.freshness.stock.max_silence_minutes"),
    ({"stock": {"business_hours": {"start": "7:30"}}}, "alerts.freshness.stock.business_hours.start"),
    ({"stock": {"business_hours": {"start": "22:00", "end": "07:30"}}}, "alerts.freshness.stock.business_hours.end"),
    ({"stock": {"business_hours": {"days": ["monday"]}}}, "alerts.freshness.stock.business_hours.days"),
    ({"feeds": {"max_age_hours": 20}}, "alerts.freshness.feeds.max_age_hours"),   # below the re-date interval
    ({"orders": {"max_stall_minutes": "soon"}}, "alerts.freshness.orders.max_stall_minutes"),
    ({"parked": {"max_objects": -1}}, "alerts.freshness.parked.max_objects"),
    ({"realert_minutes": None}, "alerts.freshness.realert_minutes"),
    ({"orders": {"enabled": "no"}}, "alerts.freshness.orders.enabled"),
    ({"notifications": {"max_silence_minutes": 10}}, "alerts.freshness.notifications.max_silence_minutes"),
])
def test_bad_freshness_config_names_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_freshness_settings(raw, "mpsync.yaml", feeds_republish_hours=24)


# ---- all together: evaluate() with the shipped configuration, then the watcher DAG under dag.test() --------

def publish_feeds(folder: Path, age: timedelta) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (datetime.now(timezone.utc) - age).timestamp()
    for name in ("yandex.xml", "ozon.xml", "ozon_kgt.xml", "megamarket.xml"):
        (folder / name).write_text("<yml_catalog/>", encoding="utf-8")
        os.utime(folder / name, (stamp, stamp))


def test_evaluate_all_fresh_then_stale(exchange_dsn, tmp_path, monkeypatch):
    monkeypatch.setenv("MPSYNC_FEEDS_DIR", str(tmp_path / "feeds"))
    publish_feeds(tmp_path / "feeds", timedelta(hours=1))
    now = msk(2, 12)
    add_stock_file(exchange_dsn, "Ostatki_MP_1130.xlsx", msk(2, 11, 30))
    verdict = freshness.evaluate(exchange_dsn, now=now)
    assert verdict.findings == [] and not verdict.alert and verdict.summary() == "all fresh"

    park(exchange_dsn, "site", "stock", "SKU-9", "400", 1)
    (tmp_path / "feeds" / "ozon_kgt.xml").unlink()
    verdict = freshness.evaluate(exchange_dsn, now=now + timedelta(hours=2))
    assert verdict.alert
    assert verdict.summary().splitlines()[0] == "3 stale: stock file, feed ozon_kgt, parked objects"

    # A check switched off (e.g. stock comes only through CommerceML) is not run.
    write_config(tmp_path, monkeypatch, {"freshness": {"stock": {"enabled": False}, "parked": {"enabled": False}}})
    verdict = freshness.evaluate(exchange_dsn, now=now + timedelta(hours=2))
    assert [f.key for f in verdict.findings] == ["feed:ozon_kgt"]


def test_watcher_dag_fails_once_with_everything_stale_in_one_mail(airflow_db, exchange_dsn, smtp_inbox, tmp_path,
                                                                   monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    write_config(tmp_path, monkeypatch, {"notifier": "smtp", "recipients": ["ops@shop.example"]})
    monkeypatch.setenv("MPSYNC_FEEDS_DIR", str(tmp_path / "feeds"))
    publish_feeds(tmp_path / "feeds", timedelta(hours=1))
    (tmp_path / "feeds" / "megamarket.xml").unlink()
    park(exchange_dsn, "site", "stock", "SKU-1", "400 invalid sku", 3)
    with psycopg.connect(exchange_dsn) as conn:
        order_store.write_mark(conn, order_store.CHECKPOINT, "ozon:main", datetime(2026, 3, 2, tzinfo=timezone.utc))
        conn.execute("update sync set synced_at = now() - interval '5 hours' where object_id = 'ozon:main'")

    dag_file = Path(__file__).resolve().parents[1] / "dags" / "exchange_freshness.py"
    bag = DagBag(dag_folder=str(dag_file))
    assert not bag.import_errors, bag.import_errors
    run = bag.dags["exchange_freshness"].test()

    assert str(run.state) == "failed"
    # dag.test() runs the DAG callback without the Task SDK's XCom channel: one mail, naming the task
    assert [m["Subject"] for m in smtp_inbox.messages] == \
        ["[mpsync] DAG exchange_freshness failed: task check_freshness failed (task_failure; see the log)"]
    # the same callback as the dag-processor runs it in production: the one mail lists everything stale
    run_failure_callback_in_dag_processor(run, tmp_path, dag_file)
    assert len(smtp_inbox.messages) == 2, [m["Subject"] for m in smtp_inbox.messages]
    msg = smtp_inbox.messages[1]
    # The stock check depends on the wall clock (business hours), so it may or may not be listed.
    assert msg["Subject"].startswith("[mpsync] DAG exchange_freshness failed: ")
    assert "feed megamarket, order account ozon:main, parked objects" in msg["Subject"]
    body = body_of(msg)
    assert "feed megamarket:" in body and "not published (missing)" in body
    assert "order account ozon:main: checkpoint" in body and "has not moved for 5 h" in body
    assert "parked: 1 sync objects parked (limit 0): site/stock 1" in body
    assert "check_freshness" in body and "/dags/exchange_freshness/runs/" in body
