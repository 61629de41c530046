"""Reader choice by content, encodings, delimiters, and real 1C files (when ../shared is present)."""

from __future__ import annotations

import pytest

from mpsync.onec.model import FileRefused
from mpsync.onec.reader import detect_delimiter, detect_encoding, open_sheet, sniff
from tests.conftest import shared_path
from tests.onec_files import truncate, write_stock_csv, write_stock_xlsx

XLS = ("samples", "onec", "xls")


def test_reader_is_chosen_by_content_not_name(tmp_path):
    xlsx = write_stock_xlsx(tmp_path / "Ostatki_MP.csv", [("A1", 1, 2, 3)], title=False)   # an .xlsx named .csv
    csvf = write_stock_csv(tmp_path / "Ostatki_MP.xlsx", [("A1", 1, 2, 3)])
    assert sniff(xlsx) == "xlsx" and sniff(csvf) == "csv"
    assert open_sheet(xlsx).layout["reader"] == "python-calamine"
    assert open_sheet(csvf).layout["container"] == "csv"


@pytest.mark.parametrize("encoding, bom, expected", [
    ("cp1251", False, "cp1251"), ("utf-8", False, "utf-8"), ("utf-8", True, "utf-8-sig")])
def test_csv_encodings(tmp_path, encoding, bom, expected):
    path = write_stock_csv(tmp_path / "s.csv", [("МП00-007875", 1, 2, 3)], encoding=encoding, bom=bom)
    sheet = open_sheet(path)
    rows = [cells for _, cells in sheet.rows()]
    assert sheet.layout["encoding"] == expected
    assert rows[0][0] == "Артикул " and rows[1][0] == "МП00-007875"


def test_encoding_sniff_tolerates_a_cut_character():
    assert detect_encoding("Артикул".encode()[:-1]) == "utf-8"
    assert detect_encoding("Артикул".encode("cp1251")) == "cp1251"


@pytest.mark.parametrize("delim", [";", ",", "\t"])
def test_delimiters(delim):
    text = "\n".join(delim.join(["A", "1", "2,5" if delim != "," else '"2,5"']) for _ in range(5))
    assert detect_delimiter(text) == delim


def test_csv_cells_stay_text(tmp_path):
    path = write_stock_csv(tmp_path / "s.csv", [("0557722", "007", "1e3", " ")])
    rows = [cells for _, cells in open_sheet(path).rows()]
    assert rows[1] == ["0557722", "007", "1e3", " "]


def test_empty_file_is_refused(tmp_path):
    (tmp_path / "e.xlsx").write_bytes(b"")
    with pytest.raises(FileRefused, match="empty"):
        open_sheet(tmp_path / "e.xlsx")


def test_truncated_xlsx_is_refused(tmp_path):
    path = truncate(write_stock_xlsx(tmp_path / "t.xlsx", [(f"A{i}", i, i, i) for i in range(2000)]), 0.6)
    with pytest.raises(FileRefused, match="truncated or corrupt"):
        list(open_sheet(path).rows())


def test_xml_is_not_a_sheet(tmp_path):
    (tmp_path / "import.xml").write_text('<?xml version="1.0"?><КоммерческаяИнформация/>', encoding="utf-8")
    assert sniff(tmp_path / "import.xml") == "xml"
    with pytest.raises(FileRefused, match="XML"):
        open_sheet(tmp_path / "import.xml")


# ---- real 1C exports (reference samples; skipped without ../shared)

def test_real_1c_xls_quantities_are_numbers_never_dates():
    for name in ("1c8_vedomost_po_tovaram_na_skladah__dom-pivovara_2025-12.xls",
                 "1c8_vedomost_po_tovaram_na_skladah__dom-pivovara_2026-01.xls"):
        rows = dict(open_sheet(shared_path(*XLS, name)).rows())
        # The name is merged over A:D (value in A only); unit in E, quantity in F.
        assert [c for c in rows[8] if c] == ["Номенклатура", "Ед. изм.", "Конечный остаток"]
        assert rows[8][5] == "Конечный остаток"
        values = [cells[5] for r, cells in rows.items() if r > 9 and len(cells) > 5 and cells[5] is not None]
        assert values and all(type(v) is float for v in values)
        if name.endswith("2025-12.xls"):
            assert rows[10][5] == 1.0 and rows[12][5] == 5.0
        else:
            assert any(v != int(v) for v in values)                      # fractional quantities survive
            assert rows[10][0].endswith("4кг ")                           # text byte-exact, trailing space kept


def test_biff5_without_codepage_decodes_cyrillic():
    sheet = open_sheet(shared_path(*XLS, "1c_biff5_zalishki_tovariv_no_codepage__eurotec_2023.xls"))
    rows = dict(sheet.rows())
    assert sheet.layout["biff_version"] == 70
    assert rows[3][0] == "Залишки товарів на складах"
    assert rows[12][0] == "Bosch PGP6B6O93R, арт. PGP6B6O93R (шт.)"
    assert rows[12][1] == " " and rows[12][2] == 1.0


def test_native_1c_xlsx():
    rows = dict(open_sheet(shared_path(*XLS, "1c8_ostatki_i_dostupnost_tovarov_native_xlsx__deploy1.xlsx")).rows())
    assert rows[7][3] == "Артикул" and rows[7][8] == "В наличии"     # column letters are the sheet's own
    assert rows[11][3] == "МП00-007875"
    assert rows[11][8] == 1.0 and type(rows[11][8]) is float
