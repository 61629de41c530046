"""Catalog import against the real PostgreSQL and FTP: CommerceML full/partial, spreadsheet, guards, DAG."""

from __future__ import annotations

import posixpath
import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import yaml

from mpsync import dropfolder
from mpsync.imports import catalog
from mpsync.ftp import FtpClient
from mpsync.results import read_result_xlsx
from mpsync.settings import DEFAULT_CONFIG, settings
from tests.commerceml_files import PRICE_RETAIL, WH_MAIN, WH_SPB, Goods, Offer, write_cml2, write_cml31
from tests.conftest import shared_path
from tests.onec_files import write_catalog_xlsx

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "onec_catalog_import.py"


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["onec"].update({"stable_seconds": 0, "poke_seconds": 1, "timeout_seconds": 6})
    raw["catalog"]["max_deactivate_share"] = 0.5
    raw["commerceml"].update({"price_type": "Розничная", "brand_property": "Бренд", "size_class_property": "КГТ",
                              "warehouses": {"Основной склад": "ozon", WH_SPB: "yandex",
                                             "Москва": "sber"}})          # Москва: the MIT sample's warehouse
    path = tmp_path / "mpsync.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return settings()


def upload(params, paths: list[Path], folder="/1c/catalog") -> None:
    with FtpClient(params) as ftp:
        for p in paths:
            ftp.upload(p, f"{folder}/{p.name}")


def run(dsn, params, cfg):
    files = dropfolder.new_stable_files(dsn, params, cfg.drops["catalog"], 0)
    return catalog.run(dsn, params, [f.to_dict() for f in files], cfg)


def products(dsn) -> dict[str, dict]:
    with psycopg.connect(dsn) as conn:
        cur = conn.execute("select article, onec_code, name, brand, ean, size_class, active, updated_at, onec_id "
                           "from product")
        cols = [d.name for d in cur.description]
        return {r[0]: dict(zip(cols, r)) for r in cur.fetchall()}


def stock(dsn) -> dict[tuple[str, str], float]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select p.article, s.warehouse, s.quantity from stock s join product p using (product_id)")
        return {(a, w): float(q) for a, w, q in rows}


def default_prices(dsn) -> dict[str, Decimal]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select p.article, r.price from price r join product p using (product_id) "
                            "where r.price_list = 'default'")
        return dict(rows.fetchall())


GOODS = [Goods(f"g-{i}", f"ART-{i}", f"Товар {i}", code=str(1000 + i), brand_value_id="bv-1",
               kgt="КГТ" if i == 3 else "нет") for i in range(1, 6)]
OFFERS = [Offer(f"g-{i}", prices={PRICE_RETAIL: str(100 * i)}, stock={WH_MAIN: str(i), WH_SPB: "1"})
          for i in range(1, 6)]


def test_commerceml_full_then_full_without_one_then_partial(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    upload(ftp_params, write_cml2(tmp_path / "x1", GOODS, OFFERS))
    s1 = run(exchange_dsn, ftp_params, cfg)
    assert (s1.details["created"], s1.details["updated"], s1.details["deactivated"], s1.details["prices_changed"]) == (5, 0, 0, 5)
    assert s1.details["stock_changed"] == 10 and s1.status == "applied" and s1.details["partial"] is False
    p = products(exchange_dsn)
    assert p["ART-3"]["size_class"] == "kgt" and p["ART-1"]["brand"] == "Acme"
    assert p["ART-1"]["onec_code"] == "00000001001" and p["ART-1"]["onec_id"] == "g-1"
    assert default_prices(exchange_dsn)["ART-2"] == Decimal("200.00")
    assert stock(exchange_dsn)[("ART-4", "ozon")] == 4 and stock(exchange_dsn)[("ART-4", "yandex")] == 1
    with FtpClient(ftp_params) as ftp:
        assert ftp.list_files("/1c/catalog") == []              # archived
        [res_entry] = ftp.list_files("/1c/results")
        ftp.download(res_entry.path, tmp_path / "r1.xlsx")
    res = read_result_xlsx(tmp_path / "r1.xlsx")
    assert res["summary"]["Создано товаров"] == 5 and res["header"][:4] == ["Строка", "Артикул", "Код 1С",
                                                                          "Наименование"]
    assert {r[1]: r[-1] for r in res["rows"]}["ART-2"] == "применено: новый товар"
    assert "Строк с данными в файле (без заголовка)" not in res["summary"]     # CommerceML has no rows

    # Full file again, without ART-5 and with a new name for ART-1: ART-5 inactive (not deleted); only
    # ART-1's updated_at moves.
    goods2 = [Goods("g-1", "ART-1", "Новое имя", code="1001", brand_value_id="bv-1", kgt="нет")] + GOODS[1:4]
    upload(ftp_params, write_cml2(tmp_path / "x2", goods2, OFFERS[:4]))
    s2 = run(exchange_dsn, ftp_params, cfg)
    assert (s2.details["created"], s2.details["updated"], s2.details["deactivated"], s2.details["prices_changed"], s2.details["stock_changed"]) == (0, 1, 1, 0, 0)
    p2 = products(exchange_dsn)
    assert p2["ART-5"]["active"] is False and p2["ART-1"]["name"] == "Новое имя"
    assert p2["ART-1"]["updated_at"] > p["ART-1"]["updated_at"]
    assert p2["ART-2"]["updated_at"] == p["ART-2"]["updated_at"]

    # A partial exchange (3.1 split files) naming only ART-2 by Ид in prices/rests: absent items stay as
    # they are (ART-5 stays inactive, others active), ART-2's price and stock change.
    upload(ftp_params, write_cml31(tmp_path / "x3", [], [Offer("g-2", prices={PRICE_RETAIL: "250"},
                                                              stock={WH_MAIN: "9"})], partial=True))
    s3 = run(exchange_dsn, ftp_params, cfg)
    assert s3.details["partial"] is True and s3.details["deactivated"] == 0 and s3.details["created"] == 0
    p3 = products(exchange_dsn)
    assert [a for a, r in p3.items() if not r["active"]] == ["ART-5"]
    assert default_prices(exchange_dsn)["ART-2"] == Decimal("250.00")
    assert stock(exchange_dsn)[("ART-2", "ozon")] == 9 and stock(exchange_dsn)[("ART-1", "ozon")] == 1


def test_full_file_that_would_switch_off_the_catalog_is_refused(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    upload(ftp_params, write_cml2(tmp_path / "a", GOODS, OFFERS))
    run(exchange_dsn, ftp_params, cfg)
    before = products(exchange_dsn)
    upload(ftp_params, write_cml2(tmp_path / "b", GOODS[:1], OFFERS[:1]))      # 4 of 5 would go: truncated?
    with pytest.raises(catalog.CatalogFileRefused, match="switch off"):
        run(exchange_dsn, ftp_params, cfg)
    assert products(exchange_dsn) == before
    with FtpClient(ftp_params) as ftp:
        names = sorted(e.name for e in ftp.list_files("/1c/results"))
        ftp.download(posixpath.join("/1c/results", names[-1]), tmp_path / "r.xlsx")
    refused = read_result_xlsx(tmp_path / "r.xlsx")
    assert refused["summary"]["_title"].startswith("Файл import.xml") and "отклонён" in refused["summary"]["_title"]
    assert refused["summary"]["Итог"].startswith("ОТКЛОНЁН")


def test_spreadsheet_catalog_repairs_codes_and_checks_ean(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    items = [dict(article="0557722", code=15452, name="Коврик", brand="Acme", model="M1", ean=4600000000008,
                  size="КГТ", rrp=1999.9),
             dict(article="ART-X", code="00-00000003", name="Дрель", brand="Зубр", model="D", ean="4600000000019",
                  size="", rrp=None)]
    path = write_catalog_xlsx(tmp_path / "nomenclature.xlsx", items, code_as_number=True)
    upload(ftp_params, [path])
    s = run(exchange_dsn, ftp_params, cfg)
    assert s.details["created"] == 2
    p = products(exchange_dsn)
    assert p["0557722"]["onec_code"] == "00000015452" and p["0557722"]["ean"] == "4600000000008"
    assert p["0557722"]["size_class"] == "kgt" and p["ART-X"]["ean"] is None
    assert s.rejected >= 1                                   # the bad EAN is reported


def test_mit_sample_imports_articles_prices_and_stock(exchange_dsn, ftp_params, cfg, work_dir, tmp_path, monkeypatch):
    folder = shared_path("samples", "onec", "commerceml")
    raw = yaml.safe_load(Path(cfg.source).read_text(encoding="utf-8"))
    raw["commerceml"]["price_type"] = "BASE"
    path = tmp_path / "mit.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    local = tmp_path / "mit"
    local.mkdir()
    for n in ("dobromyslov__import0_1.xml", "dobromyslov__offers0_1.xml"):
        shutil.copy(folder / n, local / n)
    upload(ftp_params, sorted(local.iterdir()))
    s = run(exchange_dsn, ftp_params, settings())
    assert s.details["created"] == 36 and s.details["prices_changed"] == 36
    # 8 offers have no goods item: their own article is used, and it is not a product: rejected
    assert s.rejected >= 8
    p = products(exchange_dsn)
    assert p["PM-421-WP"]["ean"] == "8809288404089"
    assert default_prices(exchange_dsn)["PM-421-WP"] == Decimal("100.00")
    assert stock(exchange_dsn)[("PM-421-WP", "sber")] == 376      # Москва -> sber; other warehouses unmapped


# ---- the DAG, end to end (one dag.test()) ---------------------------------------------------------------

def test_dag_imports_a_commerceml_exchange(airflow_db, exchange_dsn, ftp_server, ftp_params, cfg, work_dir, tmp_path):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent
    from airflow.settings import Session

    upload(ftp_params, write_cml31(tmp_path / "x", GOODS, OFFERS, partial=False))
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["onec_catalog_import"]
    for t in dag.tasks:
        t.retry_delay = timedelta(seconds=0)
    with Session() as s:
        before = s.query(AssetEvent).count()
    run_ = dag.test()
    assert str(run_.state) == "success"
    assert sorted(products(exchange_dsn)) == [f"ART-{i}" for i in range(1, 6)]
    assert stock(exchange_dsn)[("ART-5", "ozon")] == 5
    with Session() as s:
        assert s.query(AssetEvent).count() == before + 1
