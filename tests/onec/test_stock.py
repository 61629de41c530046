"""The stock report parser on generated files with every feature of ONEC.md, and on real 1C exports."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import openpyxl
import pytest
import xlrd

from mpsync.onec import reader as rd
from mpsync.onec.model import FileRefused
from mpsync.onec.report_layout import find_report_time
from mpsync.onec.stock import parse_stock
from mpsync.onec.stock_sheet import parse_sheet
from tests.conftest import shared_path
from tests.onec_files import NBSP, truncate, write_stock_csv, write_stock_xlsx

# One row per feature; the expected items below are what the stock must become.
QUIRKS = [
    ("0557722", 5, None, " "),                    # leading zero text article; empty and single space = 0
    "Магазин",                                    # group row
    ("МП00-007875", "> 1000", 2.5, f"1{NBSP}719,00"),   # cap, fraction, NBSP + decimal comma
    ("Б- 130005 ", 1, 2, 3),                      # inner space kept, trailing space trimmed
    ("DUP1", 1, 1, 1),
    ("BAD1", "abc", 1, 1),
    ("NEG1", -3, 1, 1),
    (None, 4, 4, 4),                              # numbers without an article
    ("DUP1", 2, 2, 2),
    ("ZERO1", None, None, None),                  # goods that are gone: zero everywhere, not a group
    ("A\u0421-1", 7, 0, 0),                       # Latin A + Cyrillic С look-alike, kept byte-exact
]
EXPECTED = {
    "0557722": [5, 0, 0],
    "МП00-007875": [1000, 2.5, 1719],
    "Б- 130005": [1, 2, 3],
    "ZERO1": [0, 0, 0],
    "A\u0421-1": [7, 0, 0],
}
EXPECTED_REJECTS = {  # (offset from the first data row, column, article, reason fragment)
    (4, None, "DUP1", "duplicate article (also in row(s) {r8})"),
    (5, "B", "BAD1", "quantity is not a number: 'abc'"),
    (6, "B", "NEG1", "negative quantity -3"),
    (7, "A", None, "quantities without an article"),
    (8, None, "DUP1", "duplicate article (also in row(s) {r4})"),
}


def check(parse, first_data_row: int):
    got = {a: q.tolist() for a, q in zip(parse.articles, parse.quantities)}
    assert got == EXPECTED
    assert parse.quantities.dtype == np.float64 and parse.quantities.shape == (5, 3)
    rows = dict(zip(parse.articles, parse.row_numbers))
    assert rows["0557722"] == first_data_row and rows["ZERO1"] == first_data_row + 9
    r = first_data_row
    want = {(r + off, col, art, reason.format(r4=r + 4, r8=r + 8)) for off, col, art, reason in EXPECTED_REJECTS}
    have = {(x.row, x.column.split(" ")[0] if x.column else None, x.article, x.reason) for x in parse.rejects}
    assert have == want
    assert all(x.file == parse.file for x in parse.rejects)


def test_xlsx_with_title_header_group_total(tmp_path):
    p = parse_stock(write_stock_xlsx(tmp_path / "Ostatki_MP.xlsx", QUIRKS), 3)
    check(p, first_data_row=8)
    assert p.layout["header_row"] == 7 and p.layout["article_column"] == "A"
    assert p.layout["quantity_columns"] == ["B (Остаток)", "C (Остаток)", "D (Остаток)"]
    assert p.skipped_service_rows == 6 + 1 + 1 + 1        # title block, header, group row, Итого
    assert p.rows_read == 19
    assert p.report_time == datetime(2025, 12, 19, 14, 0)
    notes = " | ".join(p.layout["notes"])
    assert "'> 1000' read as 1000" in notes and "group row" in notes and "'Магазин'" in notes
    assert "zero stock everywhere" in notes


def test_xlsx_two_row_merged_header_and_merged_group_rows(tmp_path):
    p = parse_stock(write_stock_xlsx(tmp_path / "s.xlsx", QUIRKS, two_row_header=True, merge_article=True), 3)
    check(p, first_data_row=9)
    assert p.skipped_service_rows == 6 + 2 + 1 + 1


def test_xlsx_without_header_starts_at_row_1(tmp_path):
    p = parse_stock(write_stock_xlsx(tmp_path / "s.xlsx", QUIRKS, title=False, header=False, total=False), 3)
    check(p, first_data_row=1)
    assert p.layout["header_row"] is None and p.report_time is None


def test_excel_number_articles_become_text(tmp_path):
    p = parse_stock(write_stock_xlsx(tmp_path / "s.xlsx", [(557722, 1, 1), (12.0, 2, 2)], title=False), 2)
    assert p.articles == ["557722", "12"]
    assert any("were numbers" in n for n in p.layout["notes"])


@pytest.mark.parametrize("encoding, bom, delimiter", [("cp1251", False, ";"), ("utf-8", True, ";"),
                                                      ("utf-8", False, ";"), ("utf-8", False, "\t")])
def test_csv_same_rules(tmp_path, encoding, bom, delimiter):
    path = write_stock_csv(tmp_path / "Ostatki_MP.csv", QUIRKS, encoding=encoding, bom=bom, delimiter=delimiter,
                           title=True, total=True)
    p = parse_stock(path, 3)
    check(p, first_data_row=8)
    assert p.layout["reader"] == "pyarrow" and p.layout["encoding"].replace("-sig", "") == encoding
    assert p.skipped_service_rows == 9 and p.report_time == datetime(2025, 12, 19, 14, 0)


def test_csv_without_header(tmp_path):
    p = parse_stock(write_stock_csv(tmp_path / "s.csv", QUIRKS, header=False, encoding="cp1251"), 3)
    check(p, first_data_row=1)


def test_csv_truncated_last_row_is_rejected_not_zeroed(tmp_path):
    path = write_stock_csv(tmp_path / "s.csv", [("A1", 1, 2, 3), ("A2", 4, 5, 6)])
    path.write_bytes(path.read_bytes() + b"A3;7")                 # upload cut inside the row
    p = parse_stock(path, 3)
    assert p.articles == ["A1", "A2"]
    assert [(r.row, r.article) for r in p.rejects] == [(4, "A3")]
    assert "truncated" in p.rejects[0].reason


def test_csv_rows_after_odd_rows_keep_their_numbers(tmp_path):
    rows = [("A1", 1, 1, 1), ("A2", 1, 1, 1), ("A3", 5, 5, 5)]
    path = write_stock_csv(tmp_path / "s.csv", rows)
    lines = path.read_text().splitlines()
    lines.insert(2, "")                  # blank line
    lines.insert(3, "X;1;2;3;4;5")       # too many fields: still read, by position
    path.write_text("\n".join(lines) + "\n")
    p = parse_stock(path, 3)
    assert dict(zip(p.articles, p.row_numbers)) == {"A1": 2, "X": 4, "A2": 5, "A3": 6}


def test_stock_caps_fast_and_slow_paths_agree(tmp_path):
    rows = [(f"A{i}", i, f"{i},5", "" if i % 2 else "> 1000") for i in range(1, 50)]
    a = parse_stock(write_stock_csv(tmp_path / "s.csv", rows), 3)
    b = parse_stock(write_stock_xlsx(tmp_path / "s.xlsx", rows), 3)
    assert a.articles == b.articles
    assert np.array_equal(a.quantities, b.quantities)


def test_wrong_column_count_is_refused(tmp_path):
    path = write_stock_csv(tmp_path / "s.csv", [("A1", 1, 2)])
    with pytest.raises(FileRefused, match="expects 3 warehouse"):
        parse_stock(path, 3)
    with pytest.raises(FileRefused, match="expects 3 warehouse"):
        parse_stock(write_stock_xlsx(tmp_path / "s.xlsx", [("A1", 1, 2)]), 3)


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", "Артикул;Остаток\r\n".encode("cp1251"),
                                     "Остатки\r\nИтого;0\r\n".encode("utf-8")])
def test_files_without_stock_are_refused(tmp_path, content):
    path = tmp_path / "Ostatki_MP.csv"
    path.write_bytes(content)
    with pytest.raises(FileRefused):
        parse_stock(path, 1)


def test_all_rows_bad_is_refused_with_first_reason(tmp_path):
    path = write_stock_xlsx(tmp_path / "s.xlsx", [("A1", "x", 1), ("A2", -1, 1)], title=False)
    with pytest.raises(FileRefused, match="no stock rows.*2 rejected.*not a number"):
        parse_stock(path, 2)


def test_truncated_xlsx_is_refused(tmp_path):
    path = truncate(write_stock_xlsx(tmp_path / "s.xlsx", [(f"A{i}", i, i, i) for i in range(3000)]), 0.7)
    with pytest.raises(FileRefused, match="truncated or corrupt"):
        parse_stock(path, 3)


def test_report_time_from_period(tmp_path):
    path = write_stock_xlsx(tmp_path / "s.xlsx", [("A1", 1, 1)], report_date="")
    assert parse_stock(path, 2).report_time == datetime(2025, 12, 19)


# ---- real 1C exports, when ../shared is present

def test_real_xls_caps_and_numbers():
    path = shared_path("samples", "onec", "xls", "1c8_ostatki_multisklad_shtrihkod_artikul__belka_2021.xls")
    p = parse_stock(path, 4)                     # Артикул (with a trailing space) in C, 2 x 2 columns after it
    assert p.layout["article_column"] == "C" and p.layout["header_row"] == 1
    assert p.skipped_service_rows == 2          # header and its second row
    sheet = xlrd.open_workbook(str(path)).sheet_by_index(0)
    assert p.items > 700
    for article, row, qty in zip(p.articles, p.row_numbers, p.quantities):
        assert article == sheet.cell_value(row - 1, 2).strip()          # byte-exact but for the padding
        for k in range(4):
            cell = sheet.cell(row - 1, 3 + k)
            if cell.ctype == xlrd.XL_CELL_NUMBER:
                assert qty[k] == cell.value
            elif isinstance(cell.value, str) and cell.value.startswith(">"):
                assert qty[k] == float(cell.value[1:])
            else:
                assert qty[k] == 0
    assert p.articles[:2] == ["25S39R5E14", "25S45GL10E14"]
    assert p.quantities[1].tolist() == [50, 1334, 5000, 2198]


def test_xlsx_quantities_formatted_as_dates_come_back_as_numbers(tmp_path):
    """The ONEC.md DANGER in an .xlsx: calamine returns dates for numeric cells with a date format; 59 and
    60 both come back as 1900-02-28, so those are re-read from the sheet XML."""
    values = [1, 59, 60, 61, 3160, 35.51, 0.5]
    path = write_stock_xlsx(tmp_path / "s.xlsx", [(f"A{i}", v, v) for i, v in enumerate(values)], title=False,
                            total=False)
    wb = openpyxl.load_workbook(path)
    for row in wb.active.iter_rows(min_row=2):
        row[1].number_format = "dd.mm.yyyy"
        row[2].number_format = "[h]:mm:ss"
    wb.save(path)
    p = parse_stock(path, 2)
    assert p.quantities[:, 0] == pytest.approx(values) and p.quantities[:, 1] == pytest.approx(values)
    assert p.quantities[2].tolist() == [60.0, 60.0]
    assert any("date" in n for n in p.layout["notes"])


def test_report_time_texts():
    assert find_report_time(["Параметры: Период: 01.12.2025 - 19.12.2025", "Сформирован: 19.12.2025 14:05:07"]) \
        == datetime(2025, 12, 19, 14, 5, 7)
    assert find_report_time(["Остатки на 19.12.2025 г. 14:00"]) == datetime(2025, 12, 19, 14, 0)
    assert find_report_time(["Период: 01.11.2025 - 19.12.2025"]) == datetime(2025, 12, 19)
    assert find_report_time(["19.11.23", "По всех складах"]) is None


@pytest.mark.parametrize("quirks", [True, False], ids=["odd-rows-between", "all-plain"])
def test_xlsx_block_path_reads_exactly_what_row_by_row_reads(tmp_path, quirks):
    """Below the first rows, sheet rows are read a block at a time, column-wise; every quirk must come out
    the same as read one row at a time: long enough to pass the header scan, with odd rows in between."""
    rows = [(f"A{i}", float(i % 7), None, i * 0.5) for i in range(200)]
    if quirks:
        rows[40:40] = QUIRKS                              # text caps, NBSP numbers, bad, negative, duplicates ...
        rows[120] = (557722, 1, 2, 3)                     # a numeric article
        rows[121] = ("D1", datetime(1900, 1, 5), 1, 1)    # a quantity Excel shows as a date
        rows[122] = (None, None, None, None)              # blank
        rows[123] = ("  ", 1, 1, 1)                       # an article of spaces: quantities without an article
        rows[124] = ("Группа товаров", None, None, None)  # a group row
        rows[125] = ("ВСЕГО по складу", 9, 9, 9)          # a service row
    path = write_stock_xlsx(tmp_path / "long.xlsx", rows)
    blockwise = parse_sheet(rd.open_sheet(path), 3)
    reference = parse_sheet(rd.open_sheet(path), 3, column_wise=False)
    assert blockwise.articles == reference.articles and len(reference.articles) >= 200
    assert blockwise.row_numbers == reference.row_numbers
    assert np.array_equal(blockwise.quantities, reference.quantities)
    assert [(r.row, r.column, r.article, r.reason) for r in blockwise.rejects] == \
           [(r.row, r.column, r.article, r.reason) for r in reference.rejects]
    assert blockwise.skipped_service_rows == reference.skipped_service_rows
    assert blockwise.layout["notes"] == reference.layout["notes"]
    if quirks:
        assert {r.reason.split(" ")[0] for r in blockwise.rejects} >= {"duplicate", "quantity", "negative"}


@pytest.mark.parametrize("padded_share", [0.01, 1.0], ids=["a-few-padded-cells", "every-number-padded"])
def test_csv_padded_numbers_read_the_same_as_plain(tmp_path, padded_share):
    """Plain digits are read column-wise as written; padded cells are few (looked at one by one) or the whole
    column is padded (trimmed once): either way the numbers are the same as in a clean file."""
    rows = [(f"A{i}", i % 9, "" if i % 3 else i * 0.5, 7) for i in range(400)]
    step = max(1, round(1 / padded_share))
    padded = [(a, *(f" {v} " if (i % step == 0 and v != "") else v for v in q))
              for i, (a, *q) in enumerate(rows)]
    clean = parse_stock(write_stock_csv(tmp_path / "clean.csv", rows), 3)
    other = parse_stock(write_stock_csv(tmp_path / "padded.csv", padded), 3)
    assert other.articles == clean.articles and other.rejects == [] and clean.rejects == []
    assert np.array_equal(other.quantities, clean.quantities)
    assert other.quantities[3].tolist() == [3, 1.5, 7]


@pytest.mark.parametrize("odd_cell", ["2.5", "-3", "> 10", "1 000", "  "], ids=["decimal", "negative", "text-cap",
                                                                          "nbsp-less-thousands", "spaces"])
def test_csv_whole_numbers_read_typed_and_any_other_cell_reads_as_text(tmp_path, odd_cell):
    """A file of whole numbers and empty cells is converted by pyarrow itself; one cell of anything else sends
    the whole file down the text path, and every other cell reads the same either way."""
    rows = [(f"A{i}", i % 9, "" if i % 3 else i, 7) for i in range(300)]
    plain = parse_stock(write_stock_csv(tmp_path / "plain.csv", rows), 3)
    assert plain.layout.get("quantities") == "whole numbers" and plain.rejects == []
    rows[150] = (rows[150][0], odd_cell, rows[150][2], 7)
    other = parse_stock(write_stock_csv(tmp_path / "odd.csv", rows), 3)
    assert "quantities" not in other.layout
    assert {r.article for r in other.rejects} <= {"A150"}
    theirs = {a: q.tolist() for a, q in zip(other.articles, other.quantities)}
    ours = {a: q.tolist() for a, q in zip(plain.articles, plain.quantities)}
    assert theirs.pop("A150", None) in (None, [float(odd_cell.replace(">", "").replace(" ", "") or 0), 150, 7])
    ours.pop("A150")
    assert theirs == ours


def _offset_sheet(path):
    """A report that starts at B2 (title) with the header at row 4, like a sheet someone tidied by hand."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["B2"] = "Остатки на 19.12.2025 14:00"
    for j, v in enumerate(["Артикул", "Склад 1", "Склад 2"]):
        ws.cell(4, 2 + j, v)
    for i in range(40):
        ws.append([None, f"Z-{i}", i if i % 4 else None, i / 4])
    wb.save(path)
    return path


@pytest.mark.parametrize("variant, reader", [
    ("plain", "fastexcel"), ("offset", "fastexcel"), ("text-digit-articles", "fastexcel"),
    ("text-number", "fastexcel"), ("numeric-article", "python-calamine"), ("text-cap", "python-calamine"),
    ("date-cell", "python-calamine"), ("boolean", "python-calamine"), ("negative", "python-calamine"),
    ("two-row-header", "python-calamine"),
])
def test_xlsx_read_column_wise_equals_row_by_row(tmp_path, variant, reader):
    """A plain .xlsx is read by fastexcel column-wise; anything the column path can't vouch for goes to the
    row-by-row reader. Either way the result is the row-by-row reader's, to the row number and the note."""
    rows = [(f"A{i}", float(i % 7), None if i % 3 else 2.5, i * 0.5) for i in range(120)]
    if variant == "text-digit-articles":
        rows = [(f"0{i:06d}", *q) for i, (_, *q) in enumerate(rows)]
    if variant == "numeric-article":
        rows[30] = (557722, 1, 2, 3)
    if variant == "text-cap":
        rows[30] = ("T-1", "> 1000", 2, 3)
    if variant == "text-number":
        rows[30] = ("T-1", "7", 2, 3)                     # a number typed as text reads as the number
    if variant == "date-cell":
        rows[30] = ("T-1", datetime(1900, 1, 5), 2, 3)
    if variant == "boolean":
        rows[30] = ("T-1", True, 2, 3)
    if variant == "negative":
        rows[30] = ("T-1", -4, 2, 3)
    if variant == "offset":
        path = _offset_sheet(tmp_path / "s.xlsx")
        w = 2
    else:
        path = write_stock_xlsx(tmp_path / "s.xlsx", rows, two_row_header=variant == "two-row-header",
                                groups={50: "Обувь"})
        w = 3
    got = parse_stock(path, w)
    want = parse_sheet(rd.open_sheet(path, path.name), w)
    assert got.layout["reader"] == reader
    assert got.articles == want.articles and len(got.articles) >= 40
    assert got.row_numbers == want.row_numbers
    assert np.array_equal(got.quantities, want.quantities)
    assert [(r.row, r.column, r.article, r.reason) for r in got.rejects] == \
           [(r.row, r.column, r.article, r.reason) for r in want.rejects]
    assert (got.rows_read, got.skipped_service_rows, got.report_time) == \
           (want.rows_read, want.skipped_service_rows, want.report_time)
    assert got.layout["notes"] == want.layout["notes"]
    assert {k: got.layout[k] for k in ("header_row", "article_column", "quantity_columns")} == \
           {k: want.layout[k] for k in ("header_row", "article_column", "quantity_columns")}


# ---- the total row (`Итого`/`Всего`), recorded by every way of reading a report

PLAIN = [(f"P{i}", float(i % 5), 1.0, 2.0) for i in range(40)]


@pytest.mark.parametrize("total", [True, False], ids=["with-total", "without-total"])
def test_csv_total_row_is_recorded(tmp_path, total):
    p = parse_stock(write_stock_csv(tmp_path / "s.csv", PLAIN, title=True, total=total), 3)
    assert p.layout["reader"] == "pyarrow"
    assert p.layout["total_row"] == (8 + len(PLAIN) if total else None)


def test_csv_total_row_of_fewer_fields_is_recorded(tmp_path):
    """A total row cut short (`Итого;5`) is split by Python, not pyarrow: still the total row."""
    path = write_stock_csv(tmp_path / "s.csv", PLAIN, title=True)
    path.write_bytes(path.read_bytes() + "Итого;5\r\n".encode())
    p = parse_stock(path, 3)
    assert p.layout["total_row"] == 8 + len(PLAIN) and p.rejects == []


@pytest.mark.parametrize("total", [True, False], ids=["with-total", "without-total"])
def test_xlsx_column_wise_total_row_is_recorded(tmp_path, total):
    p = parse_stock(write_stock_xlsx(tmp_path / "s.xlsx", PLAIN, total=total), 3)
    assert p.layout["reader"] == "fastexcel"
    assert p.layout["total_row"] == (8 + len(PLAIN) if total else None)


@pytest.mark.parametrize("total", [True, False], ids=["with-total", "without-total"])
def test_xlsx_row_by_row_total_row_is_recorded(tmp_path, total):
    """QUIRKS send the sheet row by row; a subtotal near the top (read one row at a time) is not the report's
    total, the last `Итого` (in a block read column-wise) is."""
    rows = [*QUIRKS, ("Всего по группе", 1, 1, 1), *PLAIN]
    p = parse_stock(write_stock_xlsx(tmp_path / "s.xlsx", rows, total=total), 3)
    assert p.layout["reader"] == "python-calamine"
    assert p.layout["total_row"] == (8 + len(rows) if total else 8 + len(QUIRKS))
    for column_wise in (True, False):
        sheet = parse_sheet(rd.open_sheet(path := tmp_path / "s.xlsx"), 3, column_wise=column_wise)
        assert sheet.layout["total_row"] == p.layout["total_row"], path
