"""Issue 17: cut rows, values beyond the database's types, failures that end every import with a result.

Real PostgreSQL and FTP (conftest); the imports' own prepare/apply/finish.
"""

from __future__ import annotations

import zipfile
from decimal import Decimal

import psycopg
import pytest
import yaml

from mpsync import results
from mpsync.ftp import FtpClient
from mpsync.imports import price, stock
from mpsync.onec.limits import ParseLimits
from mpsync.onec.value_limits import check_stock, cut_last_line
from mpsync.settings import load_settings
from tests.onec_files import write_price_xlsx
from tests.stock_helpers import add_products, drop, stock_snapshot, write_test_config
from tests.test_hostile_files import ftp_names, ledger_rows, result_of, run_import

ARTICLES = ["A-1", "A-2", "A-3", "A-4"]
HEAD = "Артикул;Склад 1;Склад 2;Склад 3\r\n"


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    return _config(tmp_path, monkeypatch)


def _config(tmp_path, monkeypatch, **sections):
    path = write_test_config(tmp_path / "mpsync.yaml")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw.update(sections)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return load_settings(path)


# ------------------------------------------------------------------ truncation


@pytest.mark.parametrize("tail", ["A-3;7;8;4", "A-3;7;8;"], ids=["cut-in-the-number", "cut-after-the-separator"])
def test_a_csv_cut_in_its_last_field_never_applies_a_cut_number_or_a_zero(exchange_dsn, ftp_params, cfg,
                                                                          work_dir, tmp_path, tail):
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", (HEAD + "A-1;1;1;1\r\nA-2;2;2;2\r\nA-3;7;8;45\r\n").encode())
    run_import(exchange_dsn, ftp_params, cfg)
    assert stock_snapshot(exchange_dsn)[("A-3", "yandex")] == 45
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", (HEAD + "A-1;5;5;5\r\nA-2;6;6;6\r\n" + tail).encode())
    summary = run_import(exchange_dsn, ftp_params, cfg)
    snap = stock_snapshot(exchange_dsn)
    assert snap[("A-3", "yandex")] == 45 and snap[("A-3", "sber")] == 7     # the cut row changed nothing
    assert snap[("A-1", "sber")] == 5 and summary.rejected == 1
    rows = result_of(ftp_params, tmp_path, "Ostatki_MP_2.csv")["rows"]
    assert any(r[1] == "A-3" and "файл не заканчивается переводом строки" in r[-1] for r in rows)   # staff: Russian


def test_cut_last_line_knows_files_that_end_with_a_line_break(tmp_path):
    for text, expected in (("a;1\r\nb;2\r\n", None), ("a;1\r\nb;2", 2), ("a;1\nb;2\n\n", None), ("a;1", 1),
                           ("a;1\rb;2", 2)):
        (tmp_path / "f.csv").write_bytes(text.encode())
        assert cut_last_line(tmp_path / "f.csv") == expected, text


def test_a_short_row_is_rejected_not_read_as_zeros(tmp_path):
    from mpsync.onec.stock import parse_stock

    path = tmp_path / "s.csv"
    path.write_text(HEAD + "A-1;1;2;3\r\nA-2;4\r\nA-3;5;6;7\r\n", encoding="utf-8")
    parsed = parse_stock(path, 3)
    check_stock(parsed, path, ParseLimits())
    assert parsed.articles == ["A-1", "A-3"]
    assert [r.row for r in parsed.rejects] == [3] and "truncated or shifted" in parsed.rejects[0].reason


# ------------------------------------------------------------------ values beyond the database's types


def test_stock_values_beyond_the_columns_are_rejected_rows_and_the_rest_applies(exchange_dsn, ftp_params, cfg,
                                                                                work_dir, tmp_path):
    long_article = "L" * 10_240
    add_products(exchange_dsn, ARTICLES)
    body = ("A-1;1;1;1\r\nA-2;99999999999.9995;1;1\r\n" + f"{long_article};1;1;1\r\n"
            + "A\x00-3;3;3;3\r\n" + "A-4;4;4;" + "9" * 200_000 + "\r\nA-3;2;2;2\r\n")
    drop(ftp_params, tmp_path, "Ostatki_MP_v.csv", (HEAD + body).encode())
    summary = run_import(exchange_dsn, ftp_params, cfg)
    assert summary.status == "applied"
    with psycopg.connect(exchange_dsn) as conn:
        rejects = dict(conn.execute("select row_no, column_name || ': ' || reason from import_reject"))
    assert "too large for the database (numeric(14, 3)" in rejects[3] and rejects[3].startswith("B")
    assert "article has 10240 characters, more than the 255 allowed" in rejects[4]
    assert "too large" in rejects[6]                                   # a 200 KB line, a 200,000-digit number
    snap = stock_snapshot(exchange_dsn)
    assert snap[("A-1", "sber")] == 1 and ("A-2", "sber") not in snap and ("A-4", "sber") not in snap


def test_prices_beyond_numeric_14_2_are_rejected_rows_naming_row_and_column(exchange_dsn, ftp_params, cfg,
                                                                            work_dir, tmp_path):
    add_products(exchange_dsn, ARTICLES)
    path = write_price_xlsx(tmp_path / "MP_PRICE.xlsx", [("A-1", 100, 120), ("A-2", 1e13, 120),
                                                         ("A-3", 1e30, None), ("A-4", 150, 1e30)])
    drop(ftp_params, tmp_path, "MP_PRICE.xlsx", path.read_bytes(), folder=cfg.drops["price"].folders[0])
    files = price.waiting_files(ftp_params, cfg, exchange_dsn)
    prepared = price.prepare(exchange_dsn, ftp_params, [f.to_dict() for f in files], cfg)
    for fragment in prepared.fragments:
        price.apply_fragment(exchange_dsn, fragment, cfg)
    price.finish(exchange_dsn, ftp_params, prepared, cfg)
    with psycopg.connect(exchange_dsn) as conn:
        rejects = {r[0]: r[1:] for r in conn.execute("select article, column_name, reason from import_reject")}
        prices = dict(conn.execute("select p.article, c.price from price c join product p using (product_id)"))
    assert prices == {"A-1": Decimal("100.00")}
    for article in ("A-2", "A-3", "A-4"):
        assert "too large for the database (numeric(14, 2)" in rejects[article][1], rejects[article]
        assert rejects[article][0]


def test_a_huge_commerceml_name_is_a_rejected_row(tmp_path):
    from mpsync.imports.catalog import parse_exchange
    from tests.commerceml_files import Goods, write_cml2

    files = write_cml2(tmp_path, [Goods("g1", "A-1", "Товар"), Goods("g2", "A-2", "Ы" * 1_000_000)], [])
    parsed = parse_exchange(files)
    assert [it.article for it in parsed.items] == ["A-1"]
    assert any(r.article == "A-2" and "name has 1000000 characters" in r.reason for r in parsed.rejects)


# ------------------------------------------------------------------ result files


def test_result_cells_are_text_never_formulas_and_any_character_is_written(tmp_path):
    path = results.write_result_xlsx(
        tmp_path / "r.xlsx", file_name='=HYPERLINK("http://x","y").csv', kind="stock",
        summary={"message": "bad\x0bchar\x00"}, header=["row", "article"],
        rows=[[2, "=1+2"], [3, "+7"], [4, "-3"], [5, "@SUM(A1)"], [6, "A\x0b\x1f-1"]], statuses=["applied"] * 5)
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml
    back = results.read_result_xlsx(path)
    assert [r[1] for r in back["rows"]] == ["=1+2", "+7", "-3", "@SUM(A1)", "A\ufffd\ufffd-1"]
    assert back["summary"]["Файл"] == '=HYPERLINK("http://x","y").csv'
    assert back["summary"]["Сообщение"] == "bad\ufffdchar\ufffd"
    from openpyxl import load_workbook

    ws = load_workbook(path)["Результат"]
    assert all(c.data_type == "s" and c.quotePrefix for c in ws["B"] if str(c.value).startswith(("=", "+", "@")))


# ------------------------------------------------------------------ every failure ends with a result


def _break_staging(dsn):
    with psycopg.connect(dsn) as conn:
        conn.execute("alter table stock_staging rename to stock_staging_gone")


def test_a_failure_on_the_last_attempt_ends_failed_moved_and_with_a_result(exchange_dsn, ftp_params, tmp_path,
                                                                          work_dir, monkeypatch):
    cfg = _config(tmp_path, monkeypatch, imports={"max_attempts": 2})
    add_products(exchange_dsn, ARTICLES)
    _break_staging(exchange_dsn)                       # a real failure that is not about the file's content
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", (HEAD + "A-1;1;1;1\r\n").encode())
    with pytest.raises(psycopg.errors.UndefinedTable):
        run_import(exchange_dsn, ftp_params, cfg)      # attempt 1: retried, the file stays
    assert ftp_names(ftp_params, "/1c/stock") == ["Ostatki_MP_1.csv"]
    assert ledger_rows(exchange_dsn)[0][1] == "parsed"                  # not final
    with pytest.raises(stock.StockFileRefused, match="import failed 2 time"):
        run_import(exchange_dsn, ftp_params, cfg)      # the sensor offers it again; attempt 2 gives up
    assert ftp_names(ftp_params, "/1c/stock") == []
    name, status, message = ledger_rows(exchange_dsn)[0]
    assert status == "failed" and "UndefinedTable" in message
    summary = result_of(ftp_params, tmp_path, "Ostatki_MP_1.csv")["summary"]
    assert summary["Итог"].startswith("НЕ ОБРАБОТАН") and "UndefinedTable" in summary["Причина отказа"]
    assert summary["_title"].startswith("Файл Ostatki_MP_1.csv не обработан") and "UndefinedTable" in summary["_title"]


def test_a_file_whose_import_died_is_offered_again_and_given_up_on_after_the_attempts(
        exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    from mpsync import dropfolder

    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", (HEAD + "A-1;1;1;1\r\n").encode())
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], cfg.stable_seconds)
    with psycopg.connect(exchange_dsn) as conn:          # what three killed attempts leave behind
        conn.execute("""insert into import_file (kind, ftp_path, name, size, modified_at, attempts)
                        values ('stock', %s, %s, %s, %s, 3)""",
                     (files[0].path, files[0].name, files[0].size, files[0].modified))
    again = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], cfg.stable_seconds)
    assert [f.name for f in again] == ["Ostatki_MP_1.csv"]             # was: skipped as known, forever
    with pytest.raises(stock.StockFileRefused, match="earlier attempts ended without finishing"):
        stock.prepare(exchange_dsn, ftp_params, again, cfg)
    assert ledger_rows(exchange_dsn)[0][1] == "failed" and ftp_names(ftp_params, "/1c/stock") == []
    assert result_of(ftp_params, tmp_path, "Ostatki_MP_1.csv")["summary"]["Итог"].startswith("НЕ ОБРАБОТАН")
    assert stock_snapshot(exchange_dsn) == {}
    assert dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], cfg.stable_seconds) == []
    with FtpClient(ftp_params) as ftp:
        assert ftp.list_files("/1c/stock") == []
