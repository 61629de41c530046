"""Marketplace notifications as sizing hints (orders/notices.py, webhook.py, windows.py `_Notices`).

The receiver answers as each spec asks, over real HTTP on the real database; notifications connected save
calls against the same world; lost, duplicated, late and wrongly timed ones never cost an order.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psycopg
import pytest
import requests
from psycopg.types.json import Jsonb

from mpsync.orders.model import UTC, Window
from mpsync.orders.notices import Notice, WrongEvent, pending, settle
from mpsync.orders.ozon import OzonAdapter
from mpsync.orders.webhook import WebhookReceiver
from mpsync.orders.windows import _Notices
from mpsync.orders.yandex import YandexAdapter
from mpsync.simulators.harness import run_rounds
from mpsync.simulators.notify import NoticeHostility

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _stored(dsn: str) -> list[dict]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("select body from order_webhook_inbox order by inbox_id")]


@pytest.fixture
def receiver(exchange_dsn):
    r = WebhookReceiver(exchange_dsn).start()
    yield r
    r.stop()


def test_yandex_notifications_are_answered_as_the_spec_asks(receiver, exchange_dsn):
    url = f"{receiver.url}/yandex/main/notification"
    ping = requests.post(url, json={"notificationType": "PING", "time": "2026-03-01T12:00:00+03:00"}, timeout=5)
    assert ping.status_code == 200 and set(ping.json()) == {"version", "name", "time"}
    changed = {"notificationType": "ORDER_STATUS_UPDATED", "campaignId": 1, "orderId": 42, "status": "PROCESSING",
               "substatus": "STARTED", "updatedAt": "2026-03-01T15:00:07+03:00"}
    assert requests.post(url, json=changed, timeout=5).status_code == 200
    chat = requests.post(url, json={"notificationType": "CHAT_CREATED", "chatId": 5}, timeout=5)
    assert chat.status_code == 200           # acknowledged, not an order: not stored
    for bad in ({"notificationType": "ORDER_CREATED", "campaignId": 1, "createdAt": "2026-03-01T12:00:00Z"},
                {"notificationType": "ORDER_STATUS_UPDATED", "orderId": 1, "updatedAt": "yesterday"},
                {"orderId": 1}):
        r = requests.post(url, json=bad, timeout=5)
        assert r.status_code == 400 and r.json()["error"]["type"] == "WRONG_EVENT_FORMAT", bad
    r = requests.post(url, data=b'{"notificationType": "ORD', headers={"Content-Type": "application/json"}, timeout=5)
    assert r.status_code == 400 and r.json()["error"]["type"] == "WRONG_EVENT_FORMAT"
    assert _stored(exchange_dsn) == [changed]
    assert YandexAdapter.notification(changed) == [Notice("42", datetime(2026, 3, 1, 12, 0, 7, tzinfo=UTC))]


def test_ozon_pushes_are_answered_as_the_spec_asks(receiver, exchange_dsn):
    url = f"{receiver.url}/ozon/main/notification"
    ping = requests.post(url, json={"message_type": "TYPE_PING", "time": "2026-03-01T12:00:00Z"}, timeout=5)
    assert ping.status_code == 200 and set(ping.json()) == {"version", "name", "time"}
    new = {"message_type": "TYPE_NEW_POSTING", "posting_number": "1-0001-1", "in_process_at": "2026-03-01T12:00:00Z"}
    assert requests.post(url, json=new, timeout=5).json() == {"result": True}
    r = requests.post(url, json={"message_type": "TYPE_STATE_CHANGED", "changed_state_date": "2026-03-01T12:00:00Z"},
                      timeout=5)
    assert r.status_code == 400 and r.json()["error"]["code"] == "ERROR_PARAMETER_VALUE_MISSED"
    assert _stored(exchange_dsn) == [new]


def test_a_notification_not_stored_is_answered_500_so_it_is_sent_again(exchange_dsn):
    down = WebhookReceiver("postgresql://nobody@127.0.0.1:1/none").start()    # nothing listens on port 1
    try:
        r = requests.post(f"{down.url}/yandex/main/notification", timeout=15, json={
            "notificationType": "ORDER_CREATED", "campaignId": 1, "orderId": 7, "createdAt": "2026-03-01T12:00:00Z"})
        assert r.status_code == 500 and r.json()["error"]["type"] == "UNKNOWN"
    finally:
        down.stop()


def test_pending_notices_keep_each_orders_latest_time_and_settle_once_behind_the_checkpoint(exchange_dsn):
    def body(oid, at):
        return {"notificationType": "ORDER_STATUS_UPDATED", "orderId": oid, "updatedAt": at.isoformat()}

    adapter = YandexAdapter.__new__(YandexAdapter)
    adapter.account = "main"
    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        for b in (body(1, T), body(1, T + timedelta(minutes=5)), body(2, T - timedelta(hours=1)),
                  body(3, T + timedelta(days=400)), {"notificationType": "ORDER_UPDATED"}):
            conn.execute("insert into order_webhook_inbox (marketplace, account, body) values ('yandex', 'main', %s)",
                         (Jsonb(b),))
        ids, times = pending(conn, adapter, T - timedelta(minutes=1))
        assert len(ids) == 5      # an unreadable body costs a hint, nothing else
        assert times == [T + timedelta(minutes=5), T + timedelta(days=400)]     # order 1 once, at its latest
        assert settle(conn, adapter, ids, T + timedelta(minutes=10)) == 4      # order 1's two, order 2's, the unreadable
        left = conn.execute("select body->>'orderId' from order_webhook_inbox where processed_at is null").fetchall()
        assert left == [("3",)]
        conn.execute("update order_webhook_inbox set received_at = now() - interval '2 days'")
        assert settle(conn, adapter, ids, T + timedelta(minutes=10)) == 5       # a day old: settled whatever it says


def test_a_notice_without_an_order_or_a_time_is_a_wrong_event():
    with pytest.raises(WrongEvent, match="orderId"):
        YandexAdapter.notification({"notificationType": "ORDER_CANCELLED", "cancelledAt": "2026-03-01T12:00:00Z"})
    with pytest.raises(WrongEvent, match="cancelledAt"):
        YandexAdapter.notification({"notificationType": "ORDER_CANCELLED", "orderId": 3})
    assert OzonAdapter.notification({"message_type": "TYPE_CHAT_NEW_MESSAGE"}) == []


def test_notices_place_a_window_where_a_page_is_full_and_stand_aside_when_they_explain_too_little():
    times = [T + timedelta(seconds=10 * i) for i in range(200)]        # one change every 10 s
    n = _Notices(times, page=50)
    length = n.place(T, timedelta(hours=1))
    held = n.count(T, T + length)
    assert 35 <= held < 50           # about a page, with room for the changes no notice told of
    n.learn(Window(T, T + length), listed=int(held * 1.3))     # the list held 30% more than notified
    fewer = n.count(T, T + n.place(T, timedelta(hours=1)))
    assert 20 <= fewer < held / 1.2         # each notice stands for more orders, with more room for the unknown
    n.learn(Window(T, T + length), listed=held * 5)   # most changes were not notified (notifications off)
    assert n.place(T, timedelta(hours=1)) is None     # the rate sizes the windows again


@pytest.mark.parametrize("kind", ["yandex", "ozon"])
def test_notifications_save_calls_and_hostile_ones_lose_nothing(kind, exchange_dsn):
    world = dict(rounds=6, creates=300, modifies=300, gap=900, skew=-1800, steady_rate=True, history_days=1,
                 hostility={"churn_per_call": 1.0, "create_per_call": 0.5, "visibility_lag_ms": 30_000})
    seeds = (11, 12)
    without = [run_rounds(kind, exchange_dsn, seed=s, account=f"none-{s}", **world) for s in seeds]
    clean = [run_rounds(kind, exchange_dsn, seed=s, account=f"clean-{s}", notices=NoticeHostility(), **world)
             for s in seeds]
    hostile = NoticeHostility(p_lost=0.3, p_dup=0.2, p_late=0.2, jitter=120)
    bad = [run_rounds(kind, exchange_dsn, seed=11, account="bad-11", notices=hostile, **world)]
    for o in without + clean + bad:
        assert (o.lost, o.stale) == (0, 0), o.lost_ids
    calls = {name: sum(o.steady_calls for o in runs) for name, runs in
             (("without", without), ("clean", clean), ("bad", bad))}
    # the same seeds, so the same activity between runs (our own calls' churn differs a little)
    ratio = {name: calls[name] / sum(o.steady_min for o in runs) for name, runs in
             (("without", without), ("clean", clean), ("bad", bad))}
    assert ratio["clean"] < ratio["without"] and ratio["clean"] <= 1.3, ratio
    with psycopg.connect(exchange_dsn) as conn:     # the window log says how many orders were notified
        listed, notified = conn.execute(
            "select sum(orders), sum(notified) from order_sync_window where account like 'clean-%%' and mode = 'live'"
            " and marketplace = %s", (kind,)).fetchone()
        assert 0.8 * listed <= notified <= listed, (listed, notified)


def test_the_api_servers_receiver_serves_configured_accounts_only(exchange_dsn):
    from mpsync.orders.receiver_app import create_app
    from tests.test_onec_exchange import Server

    configured, reads = {("yandex", "main"), ("megamarket", "main")}, []

    def accounts():
        reads.append(1)
        return set(configured)

    app = create_app(lambda: exchange_dsn, accounts, reread=3600)
    with Server(app=app, path="") as server:
        changed = {"notificationType": "ORDER_CREATED", "campaignId": 1, "orderId": 9,
                   "createdAt": "2026-03-01T12:00:00+03:00", "items": []}
        r = requests.post(f"{server.url}/yandex/main/notification", json=changed, timeout=10)
        assert r.status_code == 200 and set(r.json()) == {"version", "name", "time"}
        r = requests.post(f"{server.url}/yandex/main/notification", data=b"[" * 100_000, timeout=10)
        assert r.status_code == 400 and r.json()["error"]["type"] == "WRONG_EVENT_FORMAT"
        assert requests.post(f"{server.url}/yandex/other/notification", json=changed, timeout=10).status_code == 404
        assert requests.post(f"{server.url}/ozon/main/notification", json={}, timeout=10).status_code == 404
        assert len(reads) == 1       # strangers asking for made-up accounts: the config is not read again
        r = requests.post(f"{server.url}/megamarket/main/order/new", json={"data": {"shipments": []}}, timeout=10)
        assert r.json()["success"] == 1
    assert [b.get("orderId") for b in _stored(exchange_dsn)] == [9, None]


def test_an_account_added_to_the_config_is_served_without_a_restart(exchange_dsn):
    from mpsync.orders.receiver_app import create_app
    from tests.test_onec_exchange import Server

    configured, reads = {("yandex", "main")}, []

    def accounts():
        reads.append(1)
        return set(configured)

    ping = {"notificationType": "PING", "time": "2026-03-01T12:00:00+03:00"}
    with Server(app=create_app(lambda: exchange_dsn, accounts, reread=0.5), path="") as server:
        url = f"{server.url}/yandex/second/notification"
        assert requests.post(url, json=ping, timeout=10).status_code == 404
        configured.add(("yandex", "second"))      # the operator adds the account (the cabinet sends its PING)
        assert requests.post(url, json=ping, timeout=10).status_code == 404    # within REREAD of the last read
        time.sleep(0.6)
        r = requests.post(url, json=ping, timeout=10)
        assert r.status_code == 200 and set(r.json()) == {"version", "name", "time"}
        assert requests.post(f"{server.url}/yandex/main/notification", json=ping, timeout=10).status_code == 200
    assert len(reads) == 2


def test_the_api_server_reads_the_accounts_from_the_config_file_each_time(tmp_path, monkeypatch):
    """What the API server's receiver calls (airflow_glue): the file as it is now, not the process's cached
    settings, else an added account would wait for a restart after all."""
    import yaml

    from mpsync.airflow_glue.order_notifications import _accounts
    from mpsync.settings import DEFAULT_CONFIG, settings

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    path = tmp_path / "mpsync.yaml"

    def write(accounts):
        raw["orders"]["accounts"] = accounts
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    write([{"marketplace": "yandex", "account": "main"}])
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    settings()                                        # the process has read (and cached) the config once
    assert _accounts() == {("yandex", "main")}
    write([{"marketplace": "yandex", "account": "main"}, {"marketplace": "ozon", "account": "second"}])
    assert _accounts() == {("yandex", "main"), ("ozon", "second")}
