"""`python -m mpsync inspect --against-db`: a file compared with the last applied import in the real exchange
database, and the verdict the real import gives the same file."""

from __future__ import annotations

import json

import psycopg
import pytest

from mpsync import dropfolder
from mpsync.__main__ import main
from mpsync.ftp import FtpClient
from mpsync.imports import catalog, price, stock
from mpsync.settings import load_settings
from tests.onec_files import write_catalog_xlsx, write_price_xlsx
from tests.stock_helpers import add_products, drop, run_import, stock_csv, stock_snapshot, write_test_config

ARTICLES = [f"A-{i:02d}" for i in range(1, 11)]


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    path = write_test_config(tmp_path / "mpsync.yaml")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return load_settings(path)


def inspect(capsys, *args) -> tuple[int, dict, str]:
    code = main(["inspect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def db_state(dsn: str) -> dict[str, list]:
    """Every table inspect could have written to (it must write to none)."""
    with psycopg.connect(dsn) as conn:
        return {t: conn.execute(f"select * from {t} order by 1").fetchall()
                for t in ("import_file", "import_reject", "article_lookup", "stock", "stock_staging",
                          "stock_file_hashes", "price", "warehouse")}


def applied_full_report(dsn, ftp_params, cfg, tmp_path) -> None:
    add_products(dsn, [*ARTICLES, "NEW-1"])
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv([(a, 5, 5, 5) for a in ARTICLES]))
    assert run_import(dsn, ftp_params, cfg).status == "applied"


def test_a_three_row_file_would_be_refused_and_the_import_refuses_it_alike(exchange_dsn, ftp_params, cfg, work_dir,
                                                                           tmp_path, capsys):
    applied_full_report(exchange_dsn, ftp_params, cfg, tmp_path)
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv([(a, 1, 1, 1) for a in ARTICLES[:3]]))
    before = db_state(exchange_dsn)
    code, doc, err = inspect(capsys, tmp_path / "Ostatki_MP_2.csv", "--against-db")   # DSN from the environment
    assert code == 2
    reason = ("only 3 known articles vs 10 in the previous import (below the configured share 50%): "
              "truncated file?")
    assert doc["refused"] == reason and doc["against_db"]["verdict"] == f"would be refused: {reason}"
    assert err.rstrip().endswith(f"would be refused: {reason}")
    cmp = doc["against_db"]
    assert cmp["coverage"] == {"known_articles": 3, "last_import_articles": 10, "share": 0.3, "min_share": 0.5}
    assert cmp["last_import"]["file"] == "Ostatki_MP_1.csv" and cmp["last_import"]["articles"] == 10
    assert cmp["articles_gone"] == {"count": 7, "first": ARTICLES[3:]}
    assert cmp["articles_new"] == {"count": 0, "first": []}
    assert cmp["total_row"] == {"this_file": 7, "last_import": 14, "missing": False}
    assert doc["counts"]["items"] == 3                    # the parse summary is all still there
    assert db_state(exchange_dsn) == before               # read-only: not even the article lookup is remembered
    # The real import refuses the same file for the same reason, and stock stays as it was.
    snap = stock_snapshot(exchange_dsn)
    with pytest.raises(stock.StockFileRefused) as refused:
        run_import(exchange_dsn, ftp_params, cfg)
    assert refused.value.reason == reason
    assert stock_snapshot(exchange_dsn) == snap


def test_a_few_articles_gone_is_usable_and_they_are_listed(exchange_dsn, ftp_params, cfg, work_dir, tmp_path,
                                                           capsys):
    applied_full_report(exchange_dsn, ftp_params, cfg, tmp_path)
    rows = [(a, 2, 2, 2) for a in ARTICLES if a not in ("A-04", "A-09")] + [("NEW-1", 1, 0, 0), ("NOPE", 1, 1, 1)]
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv(rows))
    code, doc, err = inspect(capsys, tmp_path / "Ostatki_MP_2.csv", "--dsn", exchange_dsn, "--list", "1")
    assert code == 0 and "refused" not in doc
    cmp = doc["against_db"]
    assert cmp["verdict"] == "usable" and cmp["refused"] is None
    assert cmp["known_articles"] == 9 and cmp["unknown_articles"] == 1 and cmp["rejected"] == 1
    assert cmp["coverage"]["share"] == 0.9
    assert cmp["articles_gone"] == {"count": 2, "first": ["A-04"]}            # --list 1: counts stay complete
    assert cmp["articles_new"] == {"count": 1, "first": ["NEW-1"]}
    assert cmp["warnings"] == ["2 article(s) of Ostatki_MP_1.csv are not in this file: their stock stays as "
                               "that report left it"]
    assert err == f"warning: {cmp['warnings'][0]}\n"
    # The import agrees: the file is applied.
    assert run_import(exchange_dsn, ftp_params, cfg).status == "applied"


def test_a_report_without_its_total_row_is_reported(exchange_dsn, ftp_params, cfg, work_dir, tmp_path, capsys):
    applied_full_report(exchange_dsn, ftp_params, cfg, tmp_path)
    full = stock_csv([(a, 3, 3, 3) for a in ARTICLES])
    cut = full[:full.rindex("Итого".encode())]                 # the export stopped before 1C wrote the total
    path = tmp_path / "Ostatki_MP_2.csv"
    path.write_bytes(cut)
    code, doc, err = inspect(capsys, path, "--against-db")
    assert code == 0 and doc["layout"]["total_row"] is None
    assert doc["against_db"]["total_row"] == {"this_file": None, "last_import": 14, "missing": True}
    assert doc["against_db"]["warnings"] == [
        "no «Итого» row, though Ostatki_MP_1.csv had one (row 14): was the export cut off?"]
    assert "was the export cut off?" in err
    # With it, nothing is said.
    path.write_bytes(full)
    code, doc, err = inspect(capsys, path, "--against-db")
    assert code == 0 and doc["against_db"]["total_row"]["missing"] is False and err == ""


def test_nothing_to_compare_with_in_an_empty_database(exchange_dsn, cfg, tmp_path, capsys):
    path = tmp_path / "Ostatki_MP_1.csv"
    path.write_bytes(stock_csv([(a, 1, 1, 1) for a in ARTICLES[:3]]))
    # Not one product in the catalog: the import refuses every row's article, so the file.
    code, doc, err = inspect(capsys, path, "--against-db")
    assert code == 2 and doc["refused"] == "no known articles among 3 rows (3 rejected)"
    assert doc["against_db"]["last_import"] is None
    # Products, but no stock report applied yet: usable, and there is nothing to compare with.
    add_products(exchange_dsn, ARTICLES)
    code, doc, err = inspect(capsys, path, "--against-db")
    assert code == 0 and err == ""
    cmp = doc["against_db"]
    assert cmp["verdict"] == "usable" and cmp["last_import"] is None
    assert cmp["note"] == "no stock report has been applied yet: nothing to compare with"
    assert "coverage" not in cmp and "articles_gone" not in cmp


def test_without_against_db_the_json_says_no_comparison_was_made(exchange_dsn, cfg, tmp_path, capsys, monkeypatch):
    path = tmp_path / "Ostatki_MP_1.csv"
    path.write_bytes(stock_csv([("A-01", 1, 1, 1)]))
    code, doc, err = inspect(capsys, path)
    assert code == 0 and err == "" and doc["against_db"]["made"] is False
    monkeypatch.delenv("AIRFLOW_CONN_EXCHANGE_DB")
    code, doc, err = inspect(capsys, path, "--against-db")
    assert code == 1 and "AIRFLOW_CONN_EXCHANGE_DB is not set" in err and doc == {}
    code, _, err = inspect(capsys, path, "--dsn", "postgresql://nobody@127.0.0.1:1/none")
    assert code == 1 and "exchange database unreachable" in err
    code, _, err = inspect(capsys, path, "--dsn", exchange_dsn, "--warehouses", "2")
    assert code == 64 and "drop --warehouses" in err


def test_a_price_table_against_the_current_prices(exchange_dsn, ftp_params, cfg, work_dir, tmp_path, capsys):
    add_products(exchange_dsn, [*ARTICLES, "NEW-1"])
    first = write_price_xlsx(tmp_path / "MP_PRICE_1.xlsx", [(a, 100, None) for a in ARTICLES])
    with FtpClient(ftp_params) as ftp:
        ftp.upload(first, "/1c/price/MP_PRICE_1.xlsx")
    files = [f.to_dict() for f in price.waiting_files(ftp_params, cfg, exchange_dsn)]
    prepared = price.prepare(exchange_dsn, ftp_params, files, cfg)
    for fragment in prepared.fragments:
        price.apply_fragment(exchange_dsn, fragment, cfg)
    price.finish(exchange_dsn, ftp_params, prepared, cfg)
    rows = [(a, 105, None) for a in ARTICLES[:7]] + [("NEW-1", 50, None), ("NOPE", 10, None)]
    path = write_price_xlsx(tmp_path / "MP_PRICE_2.xlsx", rows)
    before = db_state(exchange_dsn)
    code, doc, err = inspect(capsys, path, "--against-db")
    assert code == 0 and doc["kind"] == "price"
    cmp = doc["against_db"]
    assert cmp["verdict"] == "usable" and cmp["usable_rows"] == 9
    assert cmp["known_articles"] == 8 and cmp["unknown_articles"] == 1
    assert cmp["last_import"]["file"] == "MP_PRICE_1.xlsx" and cmp["last_import"]["articles"] == 10
    assert cmp["coverage"] == {"priced_articles_in_file": 7, "priced_articles": 10, "share": 0.7}
    assert cmp["articles_gone"]["count"] == 3 and cmp["articles_gone"]["first"] == ARTICLES[7:]
    assert cmp["articles_new"]["count"] == 1 and cmp["articles_new"]["first"] == ["NEW-1"]
    assert err == "warning: 1 article(s) are not in the catalog: those rows will be rejected\n"
    assert db_state(exchange_dsn) == before
    # A table without one usable row: refused by the same parser in inspect and in the import, same reason.
    bad = write_price_xlsx(tmp_path / "MP_PRICE_3.xlsx", [("A-01", "abc", None), ("A-02", "", None)])
    code, doc, err = inspect(capsys, bad, "--against-db")
    assert code == 2 and doc["refused"].startswith("no price rows found")
    with FtpClient(ftp_params) as ftp:
        ftp.upload(bad, "/1c/price/MP_PRICE_3.xlsx")
    files = [f.to_dict() for f in price.waiting_files(ftp_params, cfg, exchange_dsn)]
    with pytest.raises(price.PriceFileRefused) as refused:
        price.prepare(exchange_dsn, ftp_params, files, cfg)
    assert refused.value.reason == doc["refused"]


def test_a_price_table_with_no_price_yet_has_nothing_to_compare_with(exchange_dsn, cfg, tmp_path, capsys):
    add_products(exchange_dsn, ARTICLES)
    path = write_price_xlsx(tmp_path / "MP_PRICE_1.xlsx", [(a, 100, None) for a in ARTICLES[:2]])
    code, doc, _ = inspect(capsys, path, "--against-db")
    assert code == 0 and doc["against_db"]["note"] == "no product has a price yet: nothing to compare with"
    assert doc["against_db"]["last_import"] is None and doc["against_db"]["known_articles"] == 2


def catalog_xlsx(path, articles):
    return write_catalog_xlsx(path, [dict(article=a, code=str(1000 + i), name=f"Товар {a}", brand="B", model="M",
                                          ean=None, size="", rrp=100) for i, a in enumerate(articles)])


def test_a_full_catalog_that_would_switch_off_too_much_is_refused_alike(exchange_dsn, ftp_params, cfg, work_dir,
                                                                        tmp_path, capsys):
    add_products(exchange_dsn, ARTICLES)                       # 10 active products
    share = cfg.section("catalog").get("max_deactivate_share", 0.2)
    assert share < 0.8
    path = catalog_xlsx(tmp_path / "nomenclature.xlsx", ARTICLES[:2])
    code, doc, err = inspect(capsys, path, "--against-db", "--list", "3")
    assert code == 2 and doc["kind"] == "catalog"
    cmp = doc["against_db"]
    assert cmp["switched_off"]["count"] == 8 and cmp["switched_off"]["active_products"] == 10
    assert cmp["switched_off"]["first"] == ARTICLES[2:5]
    assert doc["refused"].startswith("nomenclature.xlsx: a full catalog without 8 of 10 active products")
    assert err.rstrip().endswith(f"would be refused: {doc['refused']}")
    with FtpClient(ftp_params) as ftp:
        ftp.upload(path, "/1c/catalog/nomenclature.xlsx")
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["catalog"], 0)
    with pytest.raises(catalog.CatalogFileRefused) as refused:
        catalog.run(exchange_dsn, ftp_params, [f.to_dict() for f in files], cfg)
    assert refused.value.reason == doc["refused"]
    # One product left out of ten: usable, and named.
    path = catalog_xlsx(tmp_path / "nomenclature2.xlsx", [a for a in ARTICLES if a != "A-05"])
    code, doc, err = inspect(capsys, path, "--against-db")
    assert code == 0 and doc["against_db"]["verdict"] == "usable"
    assert doc["against_db"]["switched_off"]["first"] == ["A-05"]
    assert err == "warning: 1 active product(s) are not in this file: it switches them off\n"
