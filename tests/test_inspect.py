"""`python -m mpsync inspect`: the JSON a person sees, checked field by field on generated files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mpsync.__main__ import main
from tests.conftest import ROOT, shared_path
from tests.onec_files import NBSP, write_catalog_xlsx, write_price_xlsx, write_stock_csv, write_stock_xlsx
from tests.onec.test_stock import QUIRKS


def inspect(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["inspect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def test_stock_xlsx_every_quirk(tmp_path, capsys):
    path = write_stock_xlsx(tmp_path / "Ostatki_MP_2025-12-19.xlsx", QUIRKS)
    code, doc, err = inspect(capsys, path)
    assert code == 0 and err == ""
    assert doc["file"] == "Ostatki_MP_2025-12-19.xlsx"
    assert doc["kind"] == "stock" and doc["kind_detected_by"] == "file name matches 'Ostatki_MP*'"
    assert doc["report_time"] == "2025-12-19T14:00:00"
    layout = doc["layout"]
    assert layout["container"] == "xlsx" and layout["reader"] == "python-calamine"
    assert layout["header_row"] == 7 and layout["article_column"] == "A" and layout["warehouse_count"] == 3
    assert any("'> 1000' read as 1000" in n for n in layout["notes"])
    assert doc["counts"] == {"rows_read": 19, "items": 5, "skipped_service_rows": 9, "rejected": 5, "cleaned": 0}
    assert doc["items"] == [
        {"row": 8, "article": "0557722", "warehouses": {"sber": 5, "ozon": 0, "yandex": 0}},
        {"row": 10, "article": "МП00-007875", "warehouses": {"sber": 1000, "ozon": 2.5, "yandex": 1719}},
        {"row": 11, "article": "Б- 130005", "warehouses": {"sber": 1, "ozon": 2, "yandex": 3}},
        {"row": 17, "article": "ZERO1", "warehouses": {"sber": 0, "ozon": 0, "yandex": 0}},
        {"row": 18, "article": "A\u0421-1", "warehouses": {"sber": 7, "ozon": 0, "yandex": 0}},
    ]
    assert doc["rejects"] == [
        {"row": 12, "column": None, "article": "DUP1", "reason": "duplicate article (also in row(s) 16)"},
        {"row": 13, "column": "B (Остаток)", "article": "BAD1", "reason": "quantity is not a number: 'abc'"},
        {"row": 14, "column": "B (Остаток)", "article": "NEG1", "reason": "negative quantity -3"},
        {"row": 15, "column": "A (Артикул)", "article": None, "reason": "quantities without an article"},
        {"row": 16, "column": None, "article": "DUP1", "reason": "duplicate article (also in row(s) 12)"},
    ]


def test_stock_csv_cp1251_detected_by_header(tmp_path, capsys):
    path = write_stock_csv(tmp_path / "report.csv", [("0557722", 1, f"1{NBSP}719,00"), ("A2", "> 5000", "")],
                           encoding="cp1251")
    code, doc, _ = inspect(capsys, path, "--warehouses", "2")
    assert code == 0
    assert doc["kind"] == "stock" and doc["kind_detected_by"].startswith("header in row 1")
    assert doc["layout"]["encoding"] == "cp1251" and doc["layout"]["delimiter"] == ";"
    # --warehouses differs from the configured 3 columns: warehouses are named by position
    assert doc["items"] == [{"row": 2, "article": "0557722", "warehouses": {"column_1": 1, "column_2": 1719}},
                            {"row": 3, "article": "A2", "warehouses": {"column_1": 5000, "column_2": 0}}]
    assert doc["counts"] == {"rows_read": 3, "items": 2, "skipped_service_rows": 1, "rejected": 0, "cleaned": 0}


def test_price(tmp_path, capsys):
    path = write_price_xlsx(tmp_path / "prices.xlsx", [("0557722", 1719.9, 2000), ("X", "abc", 1)], formulas=True)
    code, doc, _ = inspect(capsys, path)
    assert code == 0 and doc["kind"] == "price" and doc["kind_detected_by"] == "header in row 3 has a price column"
    assert doc["layout"]["columns"] == {"article": "A (Артикул)", "price": "C (Текущая цена)",
                                        "old_price": "D (Цена без акции)", "name": "B (Наименование)"}
    assert doc["counts"] == {"rows_read": 5, "items": 1, "skipped_service_rows": 3, "rejected": 1, "cleaned": 0}
    assert doc["items"] == [{"row": 4, "article": "0557722", "price": 1719.9, "old_price": 2000}]
    assert doc["rejects"] == [{"row": 5, "column": "C (Текущая цена)", "article": "X",
                               "reason": "price is not a number: 'abc'"}]


def test_catalog(tmp_path, capsys):
    items = [dict(article="A1", code="15452", name="Грунт", brand="Dufa", model="M", ean=4260375481774, size="КГТ",
                  rrp=1999.9)]
    code, doc, _ = inspect(capsys, write_catalog_xlsx(tmp_path / "nom.xlsx", items, code_as_number=True))
    assert code == 0 and doc["kind"] == "catalog"
    assert doc["items"] == [{"row": 4, "article": "A1", "onec_code": "00000015452", "name": "Грунт", "brand": "Dufa",
                             "model": "M", "ean": "4260375481774", "size_class": "kgt", "rrp": 1999.9,
                             "group": None,
                             "offer_ids": {"yandex": "00000015452", "ozon": "A1", "megamarket": "A1"}}]
    assert doc["counts"]["items"] == 1 and doc["rejects"] == []


def test_kind_can_be_forced(tmp_path, capsys):
    path = write_stock_xlsx(tmp_path / "MP_PRICE.xlsx", [("A1", 1, 2, 3)])     # misnamed stock report
    code, doc, err = inspect(capsys, path)
    assert code == 2 and doc["kind"] == "price" and "no price table header" in err
    code, doc, _ = inspect(capsys, path, "--kind", "stock")
    assert code == 0 and doc["kind_detected_by"] == "--kind" and doc["counts"]["items"] == 1


def test_refused_file_exit_2_with_reason(tmp_path, capsys):
    path = tmp_path / "Ostatki_MP.xlsx"
    path.write_bytes(b"PK\x03\x04 truncated upload")
    code, doc, err = inspect(capsys, path)
    assert code == 2
    assert doc["refused"].startswith("cannot read as .xlsx (truncated or corrupt?)")
    assert err.startswith("refused: Ostatki_MP.xlsx: cannot read as .xlsx")
    code, _, err = inspect(capsys, tmp_path / "missing.csv")
    assert code == 2 and "file not found" in err


def test_max_items(tmp_path, capsys):
    path = write_stock_csv(tmp_path / "Ostatki_MP.csv", [(f"A{i}", i, i, i) for i in range(1, 11)])
    code, doc, _ = inspect(capsys, path, "--max-items", "2")
    assert code == 0 and len(doc["items"]) == 2 and doc["items_truncated"] and doc["counts"]["items"] == 10


def test_commerceml_goes_to_the_commerceml_parser(capsys):
    path = shared_path("samples", "onec", "commerceml", "dobromyslov__import0_1.xml")
    pytest.importorskip("mpsync.onec.commerceml")
    code, doc, _ = inspect(capsys, path, shared_path("samples", "onec", "commerceml", "dobromyslov__offers0_1.xml"))
    assert code == 0 and doc["kind"] == "catalog" and doc["kind_detected_by"] == "content: XML (CommerceML)"
    assert doc["counts"]["items"] > 0 and "partial" in doc


def test_real_entry_point(tmp_path):
    """`python -m mpsync inspect` as a person runs it, from the project root."""
    path = write_stock_csv(tmp_path / "Ostatki_MP.csv", [("A1", 1, 2, 3)])
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    done = subprocess.run([sys.executable, "-m", "mpsync", "inspect", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["items"] == [{"row": 2, "article": "A1",
                                                 "warehouses": {"sber": 1, "ozon": 2, "yandex": 3}}]
    usage = subprocess.run([sys.executable, "-m", "mpsync", "inspect"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert usage.returncode == 64 and "usage:" in usage.stderr
    assert Path(ROOT / "plugins" / "mpsync" / "__main__.py").exists()
