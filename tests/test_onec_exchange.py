"""1C's site exchange for orders (type=sale), driven by a scripted 1C (tests/onec_client.py) over real HTTP
against the real app under uvicorn on 127.0.0.1, on the real PostgreSQL. Orders go in through the order
sync's own store (orders.store.upsert_orders), so reservations are kept exactly as in production.
"""

from __future__ import annotations

import io
import secrets
import socket
import threading
import time
import zipfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest
import uvicorn
from lxml import etree

from mpsync.onec_exchange.config import ExchangeSettings, FtpCopy, exchange_settings
from mpsync.onec_exchange.http import create_app
from mpsync.onec_exchange.protocol import Credentials, Exchange
from mpsync.orders import store as orders_store
from mpsync.orders.model import Order
from mpsync.reservations import store as reservations
from mpsync.settings import load_settings
from tests.conftest import SHARED, shared_path
from tests.onec_client import ExchangeFailed, OneC

NS = {"c": "urn:1C.ru:commerceml_2"}
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
LOGIN, PASSWORD = "1c-обмен", "s3cret-пароль"
XSD = SHARED / "samples" / "onec" / "commerceml" / "dobromyslov__commerceml-{}.xsd"
_schemas: dict[str, etree.XMLSchema] = {}


def assert_valid(document: bytes, version: str = "2.10") -> etree._Element:
    """Parse a produced document; validate it against 1C's published XSD whenever ../shared has it."""
    root = etree.fromstring(document)
    path = XSD.with_name(XSD.name.format(version))
    if path.exists():
        schema = _schemas.setdefault(version, etree.XMLSchema(etree.parse(str(path))))
        assert schema.validate(root), schema.error_log
    return root


class Server:
    """The exchange app under uvicorn in a thread, on a free port of 127.0.0.1."""

    def __init__(self, exchange: Exchange | None = None, app=None, path: str = "/exchange"):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}{path}"
        app = app if app is not None else create_app(lambda: exchange)
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def make_exchange(dsn: str, **cfg) -> Exchange:
    settings = ExchangeSettings(**cfg)
    return Exchange(dsn, settings, lambda: Credentials(LOGIN, PASSWORD), load_settings().onec_timezone)


@pytest.fixture
def served(exchange_dsn):
    with Server(make_exchange(exchange_dsn, file_limit=4096)) as server:
        yield server


def one_c(server: Server, password: str = PASSWORD) -> OneC:
    return OneC(server.url, LOGIN, password)


def ozon(order_id: str, lines: list[tuple[str, int, str]], status: str = "awaiting_packaging",
         minutes: int = 0) -> Order:
    payload = {"posting_number": order_id, "status": status, "shipment_date": "2026-12-03T10:00:00Z",
               "products": [{"offer_id": a, "quantity": q, "price": p} for a, q, p in lines]}
    return Order(order_id, T0 + timedelta(minutes=minutes), status, T0, payload)


def put_orders(dsn: str, orders: list[Order], marketplace: str = "ozon", account: str = "main") -> None:
    with psycopg.connect(dsn) as conn:
        orders_store.upsert_orders(conn, marketplace, account, orders)


def seed_products(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute("insert into product (article, name, onec_id) values"
                     " ('0557722', 'Чайник электрический', 'bd72d8f9-55bc-11d9-848a-00112f43529a'),"
                     " ('МП00-007875', 'Фен 中文', null)")
        conn.execute("insert into stock (product_id, warehouse, quantity) select product_id, 'ozon', 10 from product")


def documents(document: bytes) -> dict[str, etree._Element]:
    root = assert_valid(document)
    return {d.findtext("c:Номер", namespaces=NS): d for d in root.findall("c:Документ", NS)}


def requisite(doc: etree._Element, name: str) -> str | None:
    for r in doc.findall("c:ЗначенияРеквизитов/c:ЗначениеРеквизита", NS):
        if r.findtext("c:Наименование", namespaces=NS) == name:
            return r.findtext("c:Значение", namespaces=NS)
    return None


def acked(dsn: str) -> dict[str, datetime | None]:
    with psycopg.connect(dsn) as conn:
        return {r[0]: r[1] for r in conn.execute(
            "select order_id, acked_modified from onec_order where acked_at is not null")}


def test_first_exchange_then_nothing_new(served, exchange_dsn):
    seed_products(exchange_dsn)
    put_orders(exchange_dsn, [ozon("111-1", [("0557722", 2, "1719.50"), ("МП00-007875", 1, "100")]),
                              ozon("222-1", [("0557722", 1, "1719.50")])])
    c = one_c(served)
    assert c.checkauth()[0] == "success" and c.sessid and c.sessid.startswith("sessid=")
    assert c.init()[:2] == ["zip=yes", "file_limit=4096"]
    document = c.query()
    assert document.startswith(b"<?xml version='1.0' encoding='windows-1251'?>")
    docs = documents(document)
    assert set(docs) == {"ozon:main:111-1", "ozon:main:222-1"}
    d = docs["ozon:main:111-1"]
    assert d.findtext("c:Ид", namespaces=NS) == "ozon:main:111-1"
    assert d.findtext("c:ХозОперация", namespaces=NS) == "Заказ товара"
    assert d.findtext("c:Сумма", namespaces=NS) == "3539"
    assert d.findtext("c:Контрагенты/c:Контрагент/c:Роль", namespaces=NS) == "Покупатель"
    items = d.findall("c:Товары/c:Товар", NS)
    assert [i.findtext("c:Ид", namespaces=NS) for i in items] == ["bd72d8f9-55bc-11d9-848a-00112f43529a", None]
    assert [i.findtext("c:Наименование", namespaces=NS) for i in items] == ["Чайник электрический", "Фен 中文"]
    assert [i.findtext("c:Количество", namespaces=NS) for i in items] == ["2", "1"]
    assert requisite(d, "Дата отгрузки") == "2026-12-03" and requisite(d, "Отменен") == "false"
    assert acked(exchange_dsn) == {}                   # nothing is 1C's before it confirms
    assert c.success() == ["success"]
    assert acked(exchange_dsn) == {"111-1": T0, "222-1": T0}
    assert documents(one_c(served).exchange()) == {}   # the next exchange: nothing new


def test_query_never_confirmed_loses_nothing(served, exchange_dsn):
    put_orders(exchange_dsn, [ozon("111-1", [("A", 1, "10")])])
    first = one_c(served)
    first.checkauth(), first.init()
    assert set(documents(first.query())) == {"ozon:main:111-1"}
    # 1C died before mode=success: the next exchange (a new session) gets the same order again
    again = one_c(served)
    assert set(documents(again.exchange())) == {"ozon:main:111-1"}
    assert acked(exchange_dsn) == {"111-1": T0}
    with psycopg.connect(exchange_dsn) as conn:
        failures = conn.execute("select failures from sync where subscriber = 'onec_orders'").fetchone()[0]
    assert failures == 0                              # the confirmation cleared the unconfirmed attempt
    assert first.success() == ["success"]             # a stale session's late success acknowledges nothing new
    assert acked(exchange_dsn) == {"111-1": T0}


def test_order_changed_between_query_and_success_is_sent_again(served, exchange_dsn):
    put_orders(exchange_dsn, [ozon("111-1", [("A", 1, "10")])])
    c = one_c(served)
    c.checkauth(), c.init()
    sent = documents(c.query())["ozon:main:111-1"]
    assert sent.findtext("c:Товары/c:Товар/c:Количество", namespaces=NS) == "1"
    put_orders(exchange_dsn, [ozon("111-1", [("A", 3, "10")], minutes=5)])   # changed while 1C loads
    assert c.success() == ["success"]
    assert acked(exchange_dsn) == {"111-1": T0}       # the version SENT, not the current one
    docs = documents(one_c(served).exchange())
    assert docs["ozon:main:111-1"].findtext("c:Товары/c:Товар/c:Количество", namespaces=NS) == "3"
    assert acked(exchange_dsn) == {"111-1": T0 + timedelta(minutes=5)}
    assert documents(one_c(served).exchange()) == {}


def test_cancelled_order_says_so(served, exchange_dsn):
    put_orders(exchange_dsn, [ozon("111-1", [("A", 1, "10")]), ozon("222-1", [("A", 1, "10")])])
    one_c(served).exchange()
    put_orders(exchange_dsn, [ozon("222-1", [("A", 1, "10")], status="cancelled", minutes=1)])
    docs = documents(one_c(served).exchange())
    assert set(docs) == {"ozon:main:222-1"}
    assert requisite(docs["ozon:main:222-1"], "Отменен") == "true"
    assert requisite(docs["ozon:main:222-1"], "Статус маркетплейса") == "cancelled"


def onec_document(orders: list[tuple[str, str, dict[str, str]]], encoding: str = "windows-1251") -> bytes:
    """1C's own orders document: Ид/Номер as we sent them, its number and status as requisites."""
    root = etree.Element("{urn:1C.ru:commerceml_2}КоммерческаяИнформация", nsmap={None: NS["c"]},
                         ВерсияСхемы="2.10", ДатаФормирования="2026-12-01T12:00:00")
    for key, number, req in orders:
        doc = etree.SubElement(root, "{urn:1C.ru:commerceml_2}Документ")
        for tag, text in (("Ид", key), ("Номер", number), ("Дата", "2026-12-01"), ("ХозОперация", "Заказ товара")):
            etree.SubElement(doc, f"{{urn:1C.ru:commerceml_2}}{tag}").text = text
        block = etree.SubElement(doc, "{urn:1C.ru:commerceml_2}ЗначенияРеквизитов")
        for name, value in req.items():
            r = etree.SubElement(block, "{urn:1C.ru:commerceml_2}ЗначениеРеквизита")
            etree.SubElement(r, "{urn:1C.ru:commerceml_2}Наименование").text = name
            etree.SubElement(r, "{urn:1C.ru:commerceml_2}Значение").text = value
    return etree.tostring(root, xml_declaration=True, encoding=encoding)


def onec_rows(dsn: str) -> dict[str, tuple]:
    with psycopg.connect(dsn) as conn:
        return {r[0]: tuple(r[1:]) for r in conn.execute(
            "select order_id, onec_number, onec_status, onec_shipped, onec_cancelled from onec_order"
            " where onec_updated_at is not null")}


def test_onec_file_with_numbers_and_statuses(served, exchange_dsn):
    put_orders(exchange_dsn, [ozon(f"{n}-1", [("A", 1, "10")]) for n in range(1, 40)])
    one_c(served).exchange()
    answers = [(f"ozon:main:{n}-1", f"ozon:main:{n}-1",
                {"Номер по 1С": f"ЗК-{n:06d}", "Статус заказа": "[N] Принят",
                 "Комментарий": secrets.token_hex(100),     # so the zip is larger than file_limit
                 "Проведен": "true", "Отменен": "false"}) for n in range(1, 40)]
    answers[0][2].update({"Номер отгрузки по 1С": "РТ-1", "Дата отгрузки по 1С": "2026-12-02 10:00:00"})
    answers[1][2].update({"Отменен": "true", "Статус заказа": "Отменен"})
    answers.append(("99999", "ЗК-99999", {"Номер по 1С": "ЗК-99999"}))   # an order of 1C's own: not ours
    c = one_c(served)
    c.checkauth(), c.init()
    document = onec_document(answers)
    assert len(document) > 2 * c.file_limit           # uploaded in several parts, zipped
    assert c.send_file("orders-1c.xml", document) == ["success"]
    assert len([u for u in c.log if "mode=file" in u]) > 1
    rows = onec_rows(exchange_dsn)
    assert len(rows) == 39 and "99999" not in rows
    assert rows["1-1"][:1] == ("ЗК-000001",) and rows["1-1"][2:] == (True, False)
    assert rows["2-1"] == ("ЗК-000002", "Отменен", False, True)
    assert rows["3-1"][2:] == (False, False)


@pytest.mark.parametrize("name,body,reason", [
    ("xxe.xml", ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                 '<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_2"><Документ><Номер>&x;</Номер>'
                 '</Документ></КоммерческаяИнформация>').encode("utf-8"), "DOCTYPE"),
    ("laughs.xml", b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
                   b'<r>&b;</r>', "DOCTYPE"),
    ("cut.xml", "<КоммерческаяИнформация><Документ><Ид>ozon:main:1-1</Ид>".encode("utf-8"), "well-formed"),
    ("other.xml", b"<html><body>hello</body></html>", "root element"),
    ("noid.xml", '<КоммерческаяИнформация><Документ><Дата>2026-12-01</Дата></Документ>'
                 '</КоммерческаяИнформация>'.encode("utf-8"), "neither"),
])
def test_broken_or_hostile_file_is_refused_and_changes_nothing(served, exchange_dsn, name, body, reason):
    put_orders(exchange_dsn, [ozon("1-1", [("A", 1, "10")])])
    c = one_c(served)
    c.checkauth(), c.init()
    good = onec_document([("ozon:main:1-1", "ozon:main:1-1", {"Номер по 1С": "ЗК-1"})])
    assert c.send_file("good.xml", good) == ["success"]
    c.zip = False                                      # send the hostile bytes as they are
    answer = c.send_file(name, body)
    assert answer[0] == "failure" and reason in answer[1], answer
    assert onec_rows(exchange_dsn) == {"1-1": ("ЗК-1", None, False, False)}


def test_zip_bomb_is_refused(exchange_dsn):
    put_orders(exchange_dsn, [ozon("1-1", [("A", 1, "10")])])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("orders.xml", b"<a>" + b" " * (3 * 1024 * 1024) + b"</a>")
    with Server(make_exchange(exchange_dsn, max_upload_bytes=1024 * 1024)) as server:
        c = one_c(server)
        c.checkauth(), c.init()
        c.zip = False
        answer = c.send_file("bomb.zip", buf.getvalue())
    assert answer[0] == "failure" and "exceeds" in answer[1]
    assert onec_rows(exchange_dsn) == {}


def test_wrong_password_and_no_session_change_nothing(served, exchange_dsn):
    put_orders(exchange_dsn, [ozon("1-1", [("A", 1, "10")])])
    with pytest.raises(ExchangeFailed, match="неверный логин или пароль"):
        one_c(served, password="wrong").checkauth()
    stranger = one_c(served)
    stranger.cookie = ("MPSYNC_1C", "forged")
    for call in (stranger.init, stranger.query, stranger.success):
        with pytest.raises(ExchangeFailed, match="нет сеанса обмена"):
            result = call()
            if isinstance(result, list) and result[0].startswith("failure"):
                raise ExchangeFailed("\n".join(result))
    c = one_c(served)
    c.checkauth()
    c.sessid = "sessid=forged"
    with pytest.raises(ExchangeFailed, match="sessid"):
        c.query()
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*) from sync where subscriber = 'onec_orders'").fetchone()[0] == 0
        assert conn.execute("select count(*) from onec_order").fetchone()[0] == 0


def test_ack_then_later_stock_report_releases_the_reservation(served, exchange_dsn):
    seed_products(exchange_dsn)
    put_orders(exchange_dsn, [ozon("111-1", [("0557722", 2, "1719.50")])])

    def open_units() -> Decimal:
        with psycopg.connect(exchange_dsn) as conn:
            return conn.execute("select coalesce(sum(quantity), 0) from reservation where released_at is null"
                                " and order_state <> 'cancelled'").fetchone()[0]

    def report(made: datetime) -> int:
        with psycopg.connect(exchange_dsn) as conn:
            conn.execute("insert into import_file (kind, ftp_path, name, size, status, report_time)"
                         " values ('stock', '/1c/stock/x', %s, 1, 'applied', %s)", (f"Ostatki_{made:%H%M%S%f}", made))
            return reservations.release_ready(conn)

    assert open_units() == 2
    one_c(served).exchange()
    with psycopg.connect(exchange_dsn) as conn:
        acked_at = conn.execute("select acked_at from onec_order where order_id = '111-1'").fetchone()[0]
    assert report(acked_at - timedelta(seconds=1)) == 0 and open_units() == 2   # made before 1C had it
    assert report(acked_at + timedelta(seconds=1)) == 1 and open_units() == 0


def test_documents_in_both_versions_and_encodings_validate(exchange_dsn):
    for version in ("2.10", "2.08"):
        shared_path("samples", "onec", "commerceml", f"dobromyslov__commerceml-{version}.xsd")
    seed_products(exchange_dsn)
    put_orders(exchange_dsn, [ozon("111-1", [("0557722", 2, "1719.50"), ("МП00-007875", 1, "100")])])
    for n, (version, encoding) in enumerate([("2.10", "utf-8"), ("2.08", "windows-1251"), ("2.08", "utf-8")]):
        put_orders(exchange_dsn, [ozon("111-1", [("0557722", 2 + n, "1719.50")], minutes=n + 1)])
        with Server(make_exchange(exchange_dsn, schema_version=version, encoding=encoding)) as server:
            document = one_c(server).exchange()
        assert f"encoding='{encoding.upper() if encoding == 'utf-8' else encoding}'".encode() in document[:60]
        root = assert_valid(document, version)
        assert root.get("ВерсияСхемы") == version and len(root) == 1


def test_query_document_copied_to_ftp(exchange_dsn, ftp_params, tmp_path):
    from mpsync.onec_exchange.ftp_files import write_document

    put_orders(exchange_dsn, [ozon("111-1", [("A", 1, "10")])])
    settings = ExchangeSettings(ftp=FtpCopy(enabled=True, folder="/1c/orders"))
    exchange = Exchange(exchange_dsn, settings, lambda: Credentials(LOGIN, PASSWORD), load_settings().onec_timezone,
                        ftp_copy=lambda body: write_document(ftp_params, settings.ftp.folder, body))
    with Server(exchange) as server:
        document = one_c(server).exchange()
    from mpsync.ftp import FtpClient

    with FtpClient(ftp_params) as ftp:
        files = ftp.list_files("/1c/orders")
        assert [f.name.endswith(".xml") for f in files] == [True]      # one file per exchange, no .part left
        local = ftp.download(files[0].path, tmp_path / "o.xml")
    assert local.read_bytes() == document


def test_config_section_is_read_and_checked(tmp_path):
    cfg = exchange_settings(load_settings())
    assert cfg.schema_version in ("2.08", "2.10") and cfg.conn_id == "onec_exchange"
    import yaml

    from mpsync.settings import DEFAULT_CONFIG, ConfigError, parse_settings

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["onec_exchange"] = {"schema_version": "3.1"}
    with pytest.raises(ConfigError, match="schema_version"):
        exchange_settings(parse_settings(raw, tmp_path / "x.yaml"))
    raw["onec_exchange"] = {"encoding": "koi8-r"}
    with pytest.raises(ConfigError, match="encoding"):
        exchange_settings(parse_settings(raw, tmp_path / "x.yaml"))


def test_served_by_the_airflow_api_server(airflow_db, exchange_dsn, monkeypatch):
    """The plugin mounts the exchange in Airflow's own API app; credentials come from the Airflow Connection."""
    import json

    monkeypatch.setenv("AIRFLOW_CONN_ONEC_EXCHANGE", json.dumps({"conn_type": "http", "login": LOGIN,
                                                                 "password": PASSWORD}))
    from airflow.api_fastapi.app import create_app as airflow_app

    put_orders(exchange_dsn, [ozon("111-1", [("A", 1, "10")])])
    with Server(app=airflow_app(), path="/onec/exchange") as server:
        with pytest.raises(ExchangeFailed, match="неверный логин"):
            one_c(server, password="wrong").checkauth()
        assert set(documents(one_c(server).exchange())) == {"ozon:main:111-1"}
    assert acked(exchange_dsn) == {"111-1": T0}
