"""The Exchange page (issue 19): its lists on the real PostgreSQL (keyset pages, searches, unpark), and the
page inside Airflow's own API app under uvicorn on 127.0.0.1, behind Airflow's authentication (simple auth
manager: real JWTs from /auth/token, the UI's `_token` cookie). In a real browser: tests/test_ui_in_browser.py."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import requests
import uvicorn
from psycopg.rows import tuple_row

from mpsync import exchange_page as ep
from mpsync.feeds.publish import _write_sidecar
from tests.feeds_data import feeds_config

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)


# --- data, inserted for real -------------------------------------------------------------------------

def add_file(conn, kind: str, name: str, *, status="applied", rejected=0, result=None) -> int:
    return conn.cursor(row_factory=tuple_row).execute(
        "insert into import_file (kind, ftp_path, name, size, modified_at, status, rows_read, items, rejected,"
        " changed, result_file, finished_at) values (%s, '/1c/' || %s, %s, 100, clock_timestamp(), %s, 10, 9,"
        " %s, 5, %s, now()) returning import_file_id", (kind, name, name, status, rejected, result)).fetchone()[0]


def add_rejects(conn, file_id: int, articles: list[str]) -> None:
    for i, a in enumerate(articles):
        conn.execute("insert into import_reject (import_file_id, row_no, column_name, article, reason)"
                     " values (%s, %s, 'Цена', %s, 'not a number')", (file_id, i + 2, a))


def park(conn, subscriber: str, object_id: str, at: datetime | None, object_type="stock_offer") -> None:
    conn.execute("insert into sync (object_type, object_id, subscriber, object_marker, failed_marker, failures,"
                 " last_error, parked, parked_at) values (%s, %s, %s, 'm1', 'm1', 3, 'HTTP 400: bad', true, %s)",
                 (object_type, object_id, subscriber, at))


def walk(fetch, key=lambda r: r) -> list:
    """Every row of a list, page by page through the cursors; also checks no page is empty but the last."""
    out, after = [], None
    while True:
        page = fetch(after)
        out += [key(r) for r in page.rows]
        if page.next is None:
            return out
        assert page.rows
        after = page.next


@pytest.fixture
def conn(exchange_dsn):
    with ep.connect(exchange_dsn) as c:
        yield c


# --- the domain lists ----------------------------------------------------------------------------------

def test_files_newest_first_per_kind_in_pages(conn):
    ids = [add_file(conn, "stock", f"S{i}.xlsx", result=f"/1c/results/S{i}.xlsx.result.xlsx") for i in range(7)]
    price = add_file(conn, "price", "P.xlsx", status="refused")
    got = walk(lambda after: ep.files_page(conn, "stock", after=after, limit=3), lambda r: r["import_file_id"])
    assert got == ids[::-1]
    first = ep.files_page(conn, "stock", limit=3)
    assert len(first.rows) == 3 and first.rows[0]["result_file"] == "/1c/results/S6.xlsx.result.xlsx"
    assert [r["import_file_id"] for r in ep.files_page(conn, "price").rows] == [price]
    assert ep.files_page(conn, "price").rows[0]["status"] == "refused"
    assert ep.files_page(conn, "catalog").rows == []
    assert ep.files_page(conn, "stock", limit=7).next is None      # exactly one page: no empty next page


def test_rejects_search_by_article_and_by_file(conn):
    a = add_file(conn, "price", "MP_PRICE.xlsx", rejected=3)
    b = add_file(conn, "price", "MP_PRICE.xlsx", rejected=2)          # the same name the next day
    c = add_file(conn, "stock", "MP_STOCK.xlsx", rejected=2)
    add_rejects(conn, a, ["X-1", "X-2", "X-1"])
    add_rejects(conn, b, ["X-1", "X-3"])
    add_rejects(conn, c, ["X-1", "X-4"])
    rows = walk(lambda after: ep.rejects_page(conn, after=after, limit=2), lambda r: (r["import_file_id"], r["row_no"]))
    assert rows == [(c, 2), (c, 3), (b, 2), (b, 3), (a, 2), (a, 3), (a, 4)]     # newest file first, rows in order
    by_article = walk(lambda after: ep.rejects_page(conn, article=" X-1 ", after=after, limit=1),
                      lambda r: (r["import_file_id"], r["row_no"]))
    assert by_article == [(c, 2), (b, 2), (a, 2), (a, 4)]
    by_name = walk(lambda after: ep.rejects_page(conn, file="MP_PRICE.xlsx", after=after, limit=3),
                   lambda r: r["import_file_id"])
    assert by_name == [b, b, a, a, a]
    assert [r["article"] for r in ep.rejects_page(conn, file_id=a).rows] == ["X-1", "X-2", "X-1"]
    both = ep.rejects_page(conn, article="X-1", file="MP_PRICE.xlsx")
    assert [(r["import_file_id"], r["name"]) for r in both.rows] == [(b, "MP_PRICE.xlsx"), (a, "MP_PRICE.xlsx"),
                                                                    (a, "MP_PRICE.xlsx")]
    missing = ep.rejects_page(conn, file="NOPE.xlsx")
    assert missing.rows == [] and "NOPE.xlsx" in missing.note
    assert ep.rejects_page(conn, file_id=c, file="MP_PRICE.xlsx").rows == []     # one entry, another name
    assert ep.rejects_page(conn, article="nothing").rows == []


def test_parked_pages_filters_and_unpark(conn, exchange_dsn):
    for i in range(5):
        park(conn, "ozon", f"A-{i}", T0 + timedelta(minutes=i))
    park(conn, "site", "A-1", T0 + timedelta(minutes=2))                 # ties with ozon A-2 on time
    park(conn, "yandex", "A-9", None)                                    # parked before parked_at existed
    park(conn, "ozon", "ck", T0, object_type="checkpoint")               # not an outbox type: not unparkable
    got = walk(lambda after: ep.parked_page(conn, after=after, limit=2), lambda r: (r["subscriber"], r["object_id"]))
    assert got == [("ozon", "A-4"), ("ozon", "A-3"), ("site", "A-1"), ("ozon", "A-2"), ("ozon", "A-1"),
                   ("ozon", "A-0"), ("yandex", "A-9")]
    assert [r["object_id"] for r in ep.parked_page(conn, subscriber="site").rows] == ["A-1"]
    assert [r["subscriber"] for r in ep.parked_page(conn, object_id="A-1").rows] == ["site", "ozon"]
    assert sorted(ep.unpark(exchange_dsn, "ozon", ["A-1", "A-3"])) == [("ozon", "stock_offer", "A-1"),
                                                                    ("ozon", "stock_offer", "A-3")]
    assert ep.unpark(exchange_dsn, "ozon", ["A-1", "ck"]) == []          # done already; a checkpoint never
    left = walk(lambda after: ep.parked_page(conn, after=after, limit=3), lambda r: (r["subscriber"], r["object_id"]))
    assert left == [("ozon", "A-4"), ("site", "A-1"), ("ozon", "A-2"), ("ozon", "A-0"), ("yandex", "A-9")]
    row = conn.execute("select parked, failures from sync where subscriber = 'ozon' and object_id = 'A-1'").fetchone()
    assert row == {"parked": False, "failures": 0}
    with pytest.raises(ep.BadCursor):
        ep.unpark(exchange_dsn, "ozon", [" "])


def test_order_accounts_checkpoint_lag_and_last_window(conn):
    now = datetime.now(timezone.utc)
    for account, behind in (("ozon:main", 5), ("yandex:shop", 120), ("site:main", 1)):
        conn.execute("insert into sync (object_type, object_id, subscriber, sync_updated, synced_at)"
                     " values ('order_checkpoint', %s, 'order_sync', %s, %s)",
                     (account, (now - timedelta(minutes=behind)).isoformat(), now))
    for orders, at in ((3, now - timedelta(minutes=20)), (7, now - timedelta(minutes=4))):
        conn.execute("insert into order_sync_window (marketplace, account, mode, dimension, orders, committed_at)"
                     " values ('ozon', 'main', 'live', 'modified', %s, %s)", (orders, at))
    rows = walk(lambda after: ep.order_accounts_page(conn, after=after, limit=2), lambda r: r)
    assert [r["account"] for r in rows] == ["ozon:main", "site:main", "yandex:shop"]
    ozon, site, yandex = rows
    assert ozon["window_orders"] == 7 and ozon["window_mode"] == "live" and site["window_at"] is None
    assert timedelta(minutes=119) < yandex["lag"] < timedelta(minutes=125)
    assert ep.human_age(yandex["lag"]).startswith("2 h")
    assert (ozon["day_orders"], ozon["day_listed"], ozon["notice_at"]) == (10, None, None)
    assert site["day_orders"] is None


def test_order_accounts_show_whether_notifications_arrive(exchange_dsn):
    """Yandex and Ozon notify changes (docs/orders.md); a seller who never gave the URL pays more calls for
    every change: the page says which accounts get notifications, how many of the changes, and which none."""
    from mpsync.airflow_glue.exchange_page import render

    now = datetime.now(timezone.utc)
    with psycopg.connect(exchange_dsn, autocommit=True) as c:
        for account in ("yandex:notified", "ozon:silent", "megamarket:main"):
            c.execute("insert into sync (object_type, object_id, subscriber, sync_updated, synced_at)"
                      " values ('order_checkpoint', %s, 'order_sync', %s, %s)", (account, now.isoformat(), now))
        windows = (("yandex", "notified", 40, 3, 36, 30), ("yandex", "notified", 10, 1, 9, 10),
                   ("yandex", "notified", 500, 20, 0, 60 * 30),     # older than a day: not counted
                   ("ozon", "silent", 80, 4, 0, 20), ("megamarket", "main", 5, 2, None, 15))
        for mp, account, orders, calls, notified, minutes in windows:
            c.execute("insert into order_sync_window (marketplace, account, mode, dimension, orders, api_calls,"
                      " notified, committed_at) values (%s, %s, 'live', 'modified', %s, %s, %s, %s)",
                      (mp, account, orders, calls, notified, now - timedelta(minutes=minutes)))
        for mp, account, minutes in (("yandex", "notified", 50), ("yandex", "notified", 7), ("megamarket", "main", 3)):
            c.execute("insert into order_webhook_inbox (marketplace, account, body, received_at)"
                      " values (%s, %s, '{}', %s)", (mp, account, now - timedelta(minutes=minutes)))
    with ep.connect(exchange_dsn) as c:
        rows = {r["account"]: r for r in ep.order_accounts_page(c).rows}
    notified, silent, megamarket = rows["yandex:notified"], rows["ozon:silent"], rows["megamarket:main"]
    assert (notified["day_orders"], notified["day_calls"], notified["day_notified"], notified["day_listed"]) == (50, 4, 45, 50)
    assert now - timedelta(minutes=8) < notified["notice_at"] < now - timedelta(minutes=6)
    assert (silent["day_notified"], silent["day_listed"], silent["notice_at"]) == (0, 80, None)
    assert megamarket["day_listed"] is None and megamarket["notice_at"] is not None

    html = render(exchange_dsn, None, {}, user="admin", may_unpark=False, path="/mpsync/exchange")
    cells = dict(re.findall(r"<tr><td>([a-z]+:[a-z]+)</td>.*?<td data-notifications>(.*?)</td>", html, re.S))
    assert cells["yandex:notified"].startswith("90% of the changes notified; last ")
    assert "none in the last day" in cells["ozon:silent"] and "docs/orders.md" in cells["ozon:silent"]
    assert cells["megamarket:main"].startswith("last webhook ")
    assert "50 orders, 4 API calls" in html


def test_feeds_age_size_offers_and_rejections(conn, tmp_path):
    cfg = feeds_config(tmp_path)
    names = list(cfg.feeds)
    published, missing = names[0], names[1]
    path = cfg.folder / cfg.feeds[published].file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"<yml_catalog/>" * 100)
    _write_sidecar(path, {"published_epoch": time.time() - 7200, "counts": {"offers_total": 42},
                          "last_run": {"at": "2026-03-01T10:00:00+00:00", "status": "published",
                                       "offers_rejected": 1, "reason": None}})
    for article, rule in (("B-1", "name_length"), ("B-1", "price_missing"), ("B-2", "name_length"), ("B-3", "x")):
        conn.execute("insert into feed_rejection (feed, article, offer_id, rule, message, wording, source, run_at)"
                     " values (%s, %s, %s, %s, 'too long', 'rule text', 'docs', now())", (published, article, article, rule))
    feeds = {f["feed"]: f for f in ep.feeds_summary(conn, cfg)}
    assert set(feeds) == set(names)
    f = feeds[published]
    assert f["exists"] and f["size"] == 1400 and f["offers"] == 42 and f["rejected"] == 3
    assert timedelta(minutes=119) < f["age"] < timedelta(minutes=121)
    assert not feeds[missing]["exists"] and feeds[missing]["age"] is None and feeds[missing]["size"] is None
    got = walk(lambda after: ep.feed_rejections_page(conn, published, after=after, limit=2),
               lambda r: (r["article"], r["rule"]))
    assert got == [("B-1", "name_length"), ("B-1", "price_missing"), ("B-2", "name_length"), ("B-3", "x")]
    assert [r["rule"] for r in ep.feed_rejections_page(conn, published, article="B-1").rows] == ["name_length",
                                                                                             "price_missing"]


@pytest.mark.parametrize("cursor", ["@@@", ep.encode_cursor(["x"]), ep.encode_cursor([1, 2]), ep.encode_cursor([True]),
                                    "e30"])
def test_bad_cursors_are_refused_not_sent_to_the_database(conn, cursor):
    with pytest.raises(ep.BadCursor):
        ep.files_page(conn, "stock", after=cursor)
    with pytest.raises(ep.BadCursor):
        ep.parked_page(conn, after=ep.encode_cursor(["not a time", "a", "b", "c"]))
    with pytest.raises(ep.BadCursor):
        ep.files_page(conn, "other")



def test_the_files_table_shows_the_counts_not_a_python_repr(exchange_dsn):
    """`items` is also a dict's method: the template must read the column (a screenshot showed
    "<built-in method items of dict object ...>" in the Items column)."""
    from mpsync.airflow_glue.exchange_page import render

    with psycopg.connect(exchange_dsn, autocommit=True) as c:
        fid = add_file(c, "price", "MP_PRICE_counts.xlsx")          # rows_read 10, items 9, rejected 0, changed 5
    html = render(exchange_dsn, None, {}, user="admin", may_unpark=False, path="/mpsync/exchange")
    row = re.search(r"<tr><td class=\"num\">%d</td>.*?</tr>" % fid, html, re.S)
    assert row, html[:2000]
    assert re.findall(r'<td class="num">([^<]*)</td>', row.group(0)) == [str(fid), "10", "9", "0", "5"]
    assert "built-in method" not in html


def hold(conn, file_id: int, article: str, decision: str | None = None) -> None:
    product = conn.execute("insert into product (article, name) values (%s, 'x') on conflict (article) do update"
                           " set name = excluded.name returning product_id", (article,)).fetchone()[0]
    conn.execute("insert into price_hold (import_file_id, product_id, price_list, price, current_price, reason,"
                 " decision) values (%s, %s, 'default', 10, 100, '-90%% vs the current price 100.00', %s)",
                 (file_id, product, decision))


def state_cell(html: str, file_id: int) -> str:
    row = re.search(r"<tr><td class=\"num\">%d</td>.*?</tr>" % file_id, html, re.S)
    assert row, html[:2000]
    return re.search(r'<td class="st-[^"]*" data-state="[^"]*">.*?</td>', row.group(0), re.S).group(0)


def test_a_price_file_whose_prices_all_wait_for_a_decision_is_held_not_unchanged(exchange_dsn):
    """Every row held: the ledger says 'unchanged' (nothing changed yet), the page must not show it green."""
    from mpsync.airflow_glue.exchange_page import render

    with psycopg.connect(exchange_dsn, autocommit=True) as c:
        all_held = add_file(c, "price", "MP_PRICE_held.xlsx", status="unchanged", rejected=2)
        for a in ("H-1", "H-2"):
            hold(c, all_held, a)
        some_held = add_file(c, "price", "MP_PRICE_some.xlsx", status="applied", rejected=1)
        hold(c, some_held, "H-3")
        decided = add_file(c, "price", "MP_PRICE_decided.xlsx", status="unchanged", rejected=1)
        hold(c, decided, "H-4", "kept")
        plain = add_file(c, "price", "MP_PRICE_plain.xlsx", status="unchanged")
    html = render(exchange_dsn, None, {}, user="admin", may_unpark=False, path="/mpsync/exchange")
    cell = state_cell(html, all_held)
    assert cell.startswith('<td class="st-held" data-state="held">held ') and "st-unchanged" not in cell
    assert "2 held price(s) wait for a decision" in cell
    assert ".st-held {" in html and ".st-held" not in html.split(".st-applied, .st-unchanged")[1].split("}")[0]
    # partly applied: applied, with the held ones called out; decided: as the ledger says, the holds noted
    cell = state_cell(html, some_held)
    assert cell.startswith('<td class="st-applied" data-state="applied">applied <span class="st-held">(1 held')
    assert state_cell(html, decided).startswith('<td class="st-unchanged" data-state="unchanged">unchanged '
                                                '<span class="muted">(1 held price(s) decided)')
    assert state_cell(html, plain) == '<td class="st-unchanged" data-state="unchanged">unchanged</td>'


# --- the page in Airflow's API server -----------------------------------------------------------------

class Server:
    def __init__(self, app):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def airflow_server(airflow_db, exchange_dsn, tmp_path, monkeypatch):
    """Airflow's own API app (every plugin mounted, the simple auth manager) with an admin and a viewer."""
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,viewer:viewer")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(tmp_path / "passwords.json"))
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    monkeypatch.setenv("MPSYNC_FEEDS_DIR", str(tmp_path / "feeds"))
    from airflow.api_fastapi.app import create_app

    with Server(create_app()) as server:
        server.passwords = json.loads((tmp_path / "passwords.json").read_text())
        yield server


def token(server, user: str) -> str:
    r = requests.post(f"{server.base}/auth/token", json={"username": user, "password": server.passwords[user]},
                      timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["access_token"]


def seed_page(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as c:
        fid = add_file(c, "stock", "MP_STOCK.xlsx", rejected=1, result="/1c/results/MP_STOCK.xlsx.result-x.xlsx")
        add_rejects(c, fid, ["<script>alert(1)</script>"])
        park(c, "ozon", "A-77", T0)
    return fid


def test_page_is_behind_airflow_login(airflow_server, exchange_dsn):
    seed_page(exchange_dsn)
    url = f"{airflow_server.base}/mpsync/exchange"
    r = requests.get(url, timeout=30)
    assert r.status_code == 401 and "MP_STOCK" not in r.text and "/auth/login" in r.text
    r = requests.get(url, cookies={"_token": "forged.jwt.value"}, timeout=30)
    assert r.status_code in (401, 403) and "MP_STOCK" not in r.text
    r = requests.post(f"{url}/unpark", data={"subscriber": "ozon", "object_id": "A-77"}, timeout=30)
    assert r.status_code == 401
    with psycopg.connect(exchange_dsn) as c:
        assert c.execute("select parked from sync where object_id = 'A-77'").fetchone() == (True,)

    admin = token(airflow_server, "admin")
    r = requests.get(url, cookies={"_token": admin}, timeout=30)          # the UI's login cookie
    assert r.status_code == 200, r.text
    assert "MP_STOCK.xlsx.result-x.xlsx" in r.text and "A-77" in r.text
    assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;" in r.text
    r = requests.get(url, headers={"Authorization": f"Bearer {admin}"}, params={"stock": "@@"}, timeout=30)
    assert r.status_code == 400


def test_unpark_button_needs_the_right_to_trigger_sync_push(airflow_server, exchange_dsn):
    seed_page(exchange_dsn)
    url = f"{airflow_server.base}/mpsync/exchange"
    viewer = {"_token": token(airflow_server, "viewer")}
    page = requests.get(url, cookies=viewer, timeout=30)
    assert page.status_code == 200 and "A-77" in page.text and ">Unpark</button>" not in page.text
    r = requests.post(f"{url}/unpark", data={"subscriber": "ozon", "object_id": "A-77"}, cookies=viewer, timeout=30)
    assert r.status_code == 403

    admin = {"_token": token(airflow_server, "admin")}
    page = requests.get(url, cookies=admin, timeout=30)
    form = re.search(r'<form class="inline" method="post" action="([^"]+)">(.*?)</form>', page.text, re.S)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(2)))
    assert fields["object_id"] == "A-77"
    r = requests.post(airflow_server.base + form.group(1), data=fields, cookies=admin,
                      headers={"Origin": "http://evil.example"}, timeout=30)
    assert r.status_code == 403                                           # a cross-site post
    r = requests.post(airflow_server.base + form.group(1), data=fields, cookies=admin, allow_redirects=False,
                      timeout=30)
    assert r.status_code == 303 and "unparked=1" in r.headers["location"]
    after = requests.get(airflow_server.base + r.headers["location"], cookies=admin, timeout=30)
    assert "Unparked 1 object" in after.text and "A-77" not in after.text
    with psycopg.connect(exchange_dsn) as c:
        assert c.execute("select parked from sync where object_id = 'A-77'").fetchone() == (False,)


def test_plugin_lists_the_page_in_the_ui_navigation(airflow_server):
    r = requests.get(f"{airflow_server.base}/api/v2/plugins",
                     headers={"Authorization": f"Bearer {token(airflow_server, 'admin')}"}, timeout=30)
    assert r.status_code == 200, r.text
    views = [v for p in r.json()["plugins"] for v in p["external_views"]]
    assert {"name": "Exchange", "href": "/mpsync/exchange", "url_route": "mpsync-exchange"}.items() <= \
        next(v for v in views if v["name"] == "Exchange").items()
