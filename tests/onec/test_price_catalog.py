"""Price table and nomenclature sheet parsers on generated files."""

from __future__ import annotations

import zipfile
from decimal import Decimal

import openpyxl
import pytest

from mpsync.onec.catalog_sheet import parse_catalog_sheet, size_class
from mpsync.onec.model import FileRefused
from mpsync.onec.price import parse_price
from tests.onec_files import NBSP, write_catalog_xlsx, write_price_xlsx

PRICES = [
    ("0557722", 1719.9, 2000),
    ("МП-1", f"1{NBSP}719,00", None),          # 1C text number; no promotion
    ("X", None, 5),                            # missing price
    ("Y", "abc", 1),                           # non-numeric price
    ("D", 1, 1),
    ("D", 2, 2),                               # duplicate: both rejected
    ("Z", 0, None),                            # zero is parsed; the import holds it back, not the parser
    ("W", 10, "n/a"),                          # bad old price
]


def _check_prices(p):
    assert [(i.row, i.article, i.price, i.old_price) for i in p.items] == [
        (4, "0557722", Decimal("1719.90"), Decimal("2000.00")),
        (5, "МП-1", Decimal("1719.00"), None),
        (10, "Z", Decimal("0.00"), None),
    ]
    assert [(r.row, r.column, r.article, r.reason) for r in p.rejects] == [
        (6, "C (Текущая цена)", "X", "price is empty"),
        (7, "C (Текущая цена)", "Y", "price is not a number: 'abc'"),
        (8, None, "D", "duplicate article (also in row(s) 9)"),
        (9, None, "D", "duplicate article (also in row(s) 8)"),
        (11, "D (Цена без акции)", "W", "old price is not a number: 'n/a'"),
    ]
    assert p.layout["header_row"] == 3 and p.skipped_service_rows == 3 and p.rows_read == 11


def test_price_table(tmp_path):
    _check_prices(parse_price(write_price_xlsx(tmp_path / "MP_PRICE.xlsx", PRICES)))


def test_formula_cells_give_their_cached_values(tmp_path):
    path = write_price_xlsx(tmp_path / "MP_PRICE.xlsx", PRICES, formulas=True)
    with zipfile.ZipFile(path) as z:
        assert "<f>ROUND(1719.9*1,2)</f><v>1719.9</v>" in z.read("xl/worksheets/sheet1.xml").decode()
    assert openpyxl.load_workbook(path).active["C4"].value == "=ROUND(1719.9*1,2)"    # it IS a formula
    _check_prices(parse_price(path))


def test_headers_case_and_space_tolerant(tmp_path):
    path = write_price_xlsx(tmp_path / "p.xlsx", [("A1", 100, 120)],
                            header=("АРТИКУЛ ", "Наименование", " текущая  цена, руб.", "Цена без  акции"))
    p = parse_price(path)
    assert p.items[0].price == Decimal("100.00") and p.items[0].old_price == Decimal("120.00")


def test_override_columns(tmp_path):
    rows = [("A1", 100, 120, 95, None), ("A2", 200, None, None, None), ("A3", 300, None, "x", None)]
    path = write_price_xlsx(tmp_path / "p.xlsx", rows, overrides={"ozon": ("Цена OZON", "Старая цена OZON")})
    p = parse_price(path, overrides={"ozon": ("цена ozon", "старая цена ozon")})
    assert p.items[0].overrides == {"ozon": (Decimal("95.00"), None)}
    assert p.items[1].overrides == {}
    assert [(r.article, r.column) for r in p.rejects] == [("A3", "E (Цена OZON)")]
    assert "ozon: price is not a number" in p.rejects[0].reason
    with pytest.raises(FileRefused, match="'цена yandex'"):
        parse_price(path, overrides={"yandex": ("Цена Yandex", "Старая Yandex")})


def test_price_file_without_header_or_rows_is_refused(tmp_path):
    with pytest.raises(FileRefused, match="lacks column.*'текущая цена'"):
        parse_price(write_price_xlsx(tmp_path / "a.xlsx", [("A1", 1, 1)], header=("Артикул", "Имя", "Цена", "Старая")))
    with pytest.raises(FileRefused, match="no price rows.*price is empty"):
        parse_price(write_price_xlsx(tmp_path / "b.xlsx", [("A1", None, 1)]))


CATALOG = [
    dict(article="0557722", code="00000015452", name="Грунт 1л", brand="Dufa", model="RD314", ean=4260375481774,
         size="КГТ", rrp=1999.9),
    dict(article="МП00-007875", code="00-00000003", name="Эмаль", ean="4260375481775", size="обычный",
         rrp=f"1{NBSP}719,00"),                                     # bad check digit: EAN rejected, row kept
    dict(article="A3", code="15453", size="крупногабаритный"),
    dict(article="A4", code="12345678901234", rrp="дорого"),        # not a code, not a number
    dict(name="Без артикула", brand="X"),
    dict(article="DUP", name="a"),
    dict(article="DUP", name="b"),
]


@pytest.mark.parametrize("code_as_number", [False, True])
def test_catalog_sheet(tmp_path, code_as_number):
    p = parse_catalog_sheet(write_catalog_xlsx(tmp_path / "nom.xlsx", CATALOG, code_as_number=code_as_number))
    got = {i.article: i for i in p.items}
    assert list(got) == ["0557722", "МП00-007875", "A3", "A4"]
    a = got["0557722"]
    assert (a.row, a.onec_code, a.name, a.brand, a.model, a.ean, a.size_class, a.rrp) == (
        4, "00000015452", "Грунт 1л", "Dufa", "RD314", "4260375481774", "kgt", Decimal("1999.90"))
    b = got["МП00-007875"]
    assert (b.onec_code, b.ean, b.size_class, b.rrp) == ("00-00000003", None, "normal", Decimal("1719.00"))
    assert got["A3"].onec_code == "00000015453" and got["A3"].size_class == "kgt"
    assert got["A4"].onec_code is None and got["A4"].rrp is None
    reasons = [(r.row, r.column.split(" ")[0] if r.column else None, r.article, r.reason) for r in p.rejects]
    assert reasons == [
        (5, "F", "МП00-007875", "EAN 4260375481775 has a wrong check digit (expected 4); field left unchanged"),
        (7, "B", "A4", "1C code 12345678901234 is longer than 11 "
                       + ("digits" if code_as_number else "characters") + "; field left unchanged"),
        (7, "H", "A4", "RRP is not a number: 'дорого'; field left unchanged"),
        (8, "A", None, "row without an article"),
        (9, None, "DUP", "duplicate article (also in row(s) 10)"),
        (10, None, "DUP", "duplicate article (also in row(s) 9)"),
    ]


def test_size_class_words():
    assert size_class("КГТ") == size_class("kgt") == size_class("Крупногабаритный товар") == "kgt"
    assert size_class("обычный") == size_class(None) == "normal"
    assert size_class("да", flag_column=True) == "kgt" and size_class("", flag_column=True) == "normal"
