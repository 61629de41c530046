"""The run command's parts without Airflow: demo 1C drops the parsers accept as they are, LocalSystem services
started and stopped programmatically (what the end-to-end test builds on), and the simulator router."""

from __future__ import annotations

import ftplib
import json
import shutil
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import requests

from mpsync.local import demo
from mpsync.local.processes import port_open
from mpsync.local.system import LocalSystem, Ports


def test_ean13_check_digit():
    assert demo.ean13("400638133393") == "4006381333931"       # a published example
    assert demo.ean13_valid("4006381333931")
    assert not demo.ean13_valid("4006381333932")
    with pytest.raises(ValueError):
        demo.ean13("12345")


def test_demo_products_are_realistic_and_stable():
    products = demo.demo_products()
    assert products == demo.demo_products()                    # seeded: tests can compute expectations
    articles = [p.article for p in products]
    assert len(set(articles)) == len(articles) >= 30
    assert all(demo.ean13_valid(p.ean) for p in products)
    assert {p.size_class for p in products} == {"normal", "kgt"}
    assert len({p.brand for p in products}) >= 4
    codes = [p.onec_code for p in products if p.onec_code]
    assert codes and all(len(c) == 11 and c.isdigit() for c in codes)
    assert any(a.startswith("0") for a in articles) and any("МП" in a for a in articles)
    assert all(p.price <= p.old_price for p in products)
    assert any(0 in p.stock for p in products)                 # zero = an empty cell in the report


def test_demo_files_parse_cleanly(tmp_path):
    from mpsync.onec.catalog_sheet import parse_catalog_sheet
    from mpsync.onec.price import parse_price
    from mpsync.onec.stock import parse_stock

    products = demo.demo_products()
    catalog, stock, price = demo.seed_ftp(tmp_path, products=products)
    by_article = {p.article: p for p in products}

    c = parse_catalog_sheet(catalog)
    assert not c.rejects and len(c.items) == len(products)
    for item in c.items:
        p = by_article[item.article]
        assert (item.onec_code, item.name, item.brand, item.model, item.ean, item.size_class) == \
            (p.onec_code, p.name, p.brand, p.model, p.ean, p.size_class)
        assert Decimal(item.rrp) == p.rrp

    s = parse_stock(stock, 3)
    assert not s.rejects and s.articles == [p.article for p in products]
    assert s.quantities.tolist() == [list(map(float, p.stock)) for p in products]
    assert s.report_time is not None                           # from the 'Сформирован:' title row

    pr = parse_price(price)
    assert not pr.rejects
    assert {(i.article, i.price, i.old_price) for i in pr.items} == \
        {(p.article, p.price, p.old_price) for p in products}


_BEFORE: set = set()


def _threads() -> set[str]:
    """Names of threads started since the test began (the session's own FTP server is also 'local-ftp')."""
    return {t.name for t in threading.enumerate() if t not in _BEFORE}


@pytest.fixture
def own_dir():
    """Not tmp_path: pytest sessions running side by side prune each other's numbered tmp folders, and a
    PostgreSQL cluster must outlive the whole test."""
    path = Path(tempfile.mkdtemp(prefix="mpsync-localrun-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_local_system_services_start_stop_and_reuse(own_dir):
    tmp_path = own_dir
    _BEFORE.clear()
    _BEFORE.update(threading.enumerate())
    ports = Ports.free()
    system = LocalSystem(tmp_path / "var", ports=ports, airflow=False, log=lambda _: None)
    system.start()
    try:
        with psycopg.connect(system.exchange_dsn) as conn:
            assert conn.execute("select count(*) from schema_migration").fetchone()[0] >= 1
        creds = system.secrets()
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", ports.ftp)
        ftp.login("onec", creds["ftp_password"])
        # First start: only the catalog; stock and price follow once the catalog is in the database.
        assert ftp.nlst("/1c/catalog") == [demo.CATALOG_FILE]
        assert ftp.nlst("/1c/stock") == []
        ftp.quit()
        assert system.connections["exchange_db"] == system.exchange_dsn
        assert system.connections["onec_ftp"].startswith(f"ftp://onec:{creds['ftp_password']}@127.0.0.1:")
        env = system.airflow_env()
        assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
        assert env["AIRFLOW_CONN_ONEC_FTP"] == system.connections["onec_ftp"]
        onec_exchange = json.loads(env["AIRFLOW_CONN_ONEC_EXCHANGE"])      # 1C's site exchange (orders)
        assert (onec_exchange["login"], onec_exchange["password"]) == ("onec", creds["onec_exchange_password"])
        assert system.onec_exchange_url == f"http://127.0.0.1:{ports.airflow}/onec/exchange"
        assert env["AIRFLOW_HOME"] == str(system.airflow_home)
        assert (Path(env["PATH"].split(":")[0]) / "airflow").is_file()   # venv bin first: components find `airflow`

        # The catalog "arrives" in the database (the import DAG's job): the demo drops stock and price.
        with psycopg.connect(system.exchange_dsn) as conn:
            conn.execute("insert into product (article) values (%s)", (demo.demo_products()[0].article,))
        deadline = time.monotonic() + 20
        marker = system.var_dir / ".ftp-seeded"      # says "all" once both files are written
        while time.monotonic() < deadline and not marker.read_text().startswith("all"):
            time.sleep(0.3)
        assert [p.name for p in (system.ftp_root / "1c" / "price").iterdir()] == [demo.PRICE_FILE]
        assert len(list((system.ftp_root / "1c" / "stock").glob("Ostatki_MP_*.xlsx"))) == 1

        sim_ports = [int(url.rsplit(":", 1)[1]) for url in system.simulator_urls.values()]
        if "ozon_api" in system.connections:
            _check_one_connection_per_marketplace(json.loads(system.connections["ozon_api"]))
    finally:
        system.stop()
    assert not port_open(ports.ftp) and not port_open(ports.postgres) and not port_open(ports.feeds)
    assert not [p for p in sim_ports if port_open(p)]
    assert "local-ftp" not in _threads() and "demo-drops" not in _threads()

    # Second start on the same folder: same credentials, data kept, no second seeding.
    again = LocalSystem(tmp_path / "var", ports=ports, airflow=False, simulators=False, log=lambda _: None)
    again.start()
    try:
        assert again.secrets() == creds
        with psycopg.connect(again.exchange_dsn) as conn:
            assert conn.execute("select count(*) from product").fetchone()[0] == 1
        assert (again.var_dir / ".ftp-seeded").read_text().startswith("all")
    finally:
        again.stop()
    assert (tmp_path / "var" / "secrets.json").stat().st_mode & 0o077 == 0


def _check_one_connection_per_marketplace(conn: dict) -> None:
    """An order call reaches the order simulator and a stock push the push simulator, through the one address
    of the `ozon_api` connection, with the generated demo credentials; the server's Date header comes through."""
    base, auth = conn["extra"]["base_url"], {"Client-Id": conn["login"], "Api-Key": conn["password"]}
    r = requests.post(base + "/v4/posting/fbs/list", headers=auth, timeout=10,
                      json={"filter": {"since": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}, "limit": 10})
    assert r.status_code == 200 and "postings" in r.json()["result"] and r.headers.get("Date")
    r = requests.post(base + "/v2/products/stocks", headers=auth, timeout=10,
                      json={"stocks": [{"offer_id": "A-1", "stock": 3, "warehouse_id": 1}]})
    assert r.status_code == 200 and r.json()["result"][0]["offer_id"] == "A-1"
    r = requests.post(base + "/v4/posting/fbs/list", headers={"Client-Id": "x", "Api-Key": "y"}, timeout=10,
                      json={"filter": {}, "limit": 10})
    assert r.status_code == 403                             # the demo credentials are really checked


def test_the_run_commands_database_cache_follows_the_data(tmp_path, monkeypatch):
    from mpsync.local.postgres import data_sized_buffers_mb, shared_buffers_mb

    monkeypatch.delenv("MPSYNC_PG_SHARED_BUFFERS_MB", raising=False)
    assert data_sized_buffers_mb(tmp_path / "none") == 128               # a new cluster: the demo's size
    (tmp_path / "pg" / "base" / "1").mkdir(parents=True)
    with open(tmp_path / "pg" / "base" / "1" / "16384", "wb") as f:      # 60 MB of table (sparse)
        f.truncate(60 * 2**20)
    assert data_sized_buffers_mb(tmp_path / "pg") == min(shared_buffers_mb(), 128 + 120)
    with open(tmp_path / "pg" / "base" / "1" / "16385", "wb") as f:      # grown far past the machine's quarter
        f.truncate(1 << 40)
    assert data_sized_buffers_mb(tmp_path / "pg") == shared_buffers_mb()
    monkeypatch.setenv("MPSYNC_PG_SHARED_BUFFERS_MB", "300")
    assert data_sized_buffers_mb(tmp_path / "none") == 300


def test_the_demo_report_time_is_1c_wall_clock_in_its_zone():
    """1C writes "Сформирован:" in Moscow time and the import reads it so: the demo must not write UTC."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    moscow_now = datetime.now(timezone.utc).astimezone(ZoneInfo("Europe/Moscow")).replace(tzinfo=None)
    assert abs((demo.onec_now() - moscow_now).total_seconds()) < 5


def test_the_console_shows_each_new_alert_line_once_and_only_whole_lines(tmp_path):
    import threading

    from mpsync.local.alerts_console import follow

    path = tmp_path / "alerts.log"
    path.write_text("old alert from an earlier run\n", encoding="utf-8")
    shown: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=follow, args=(path, shown.append, stop, 0.05), daemon=True)
    thread.start()
    time.sleep(0.2)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("first alert\nsecond, half-writ")
    time.sleep(0.3)
    assert shown == ["first alert"]
    with path.open("a", encoding="utf-8") as fh:
        fh.write("ten\n")
    time.sleep(0.3)
    path.write_text("after it was emptied\n", encoding="utf-8")
    time.sleep(0.3)
    stop.set()
    thread.join(timeout=2)
    assert shown == ["first alert", "second, half-written", "after it was emptied"]
