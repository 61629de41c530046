"""The staff's result file of a stock report, through the real import (PostgreSQL, FTP), read back with openpyxl:
1C's own column headers, the product's name, counts that match the file, problem rows first, a frozen header
and filters; English when configured."""

from __future__ import annotations

import posixpath
from pathlib import Path

import openpyxl
import pytest
import yaml

from mpsync.ftp import FtpClient
from mpsync.results import read_result_xlsx
from mpsync.settings import load_settings
from tests.stock_helpers import add_products, drop, run_import, stock_snapshot, write_test_config

WAREHOUSES = ["Склад Москва", "Склад Казань", "Склад Тверь"]
KNOWN = ["A-1", "A-2", "A-3", "A-4"]


def config(tmp_path: Path, monkeypatch, language: str | None = None):
    path = write_test_config(tmp_path / "mpsync.yaml")
    if language:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["results"] = {"language": language}
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return load_settings(path)


def report(path: Path, header: list, quantities: dict[str, tuple]) -> Path:
    """A 1C stock report: 3 title rows and a blank, the header (row 5), a group row (6), the first two rows
    given (7, 8), a blank row (9), the others (10...), Итого. Data rows: the rows given, nothing else."""
    wb = openpyxl.Workbook()
    ws = wb.active
    for line in ("Остатки товаров на складах", "Сформирован: 05.12.2026 10:00:00", "Отбор: Вид = Товар", None):
        ws.append([line])
    ws.append(header)
    ws.append(["Бытовая техника"])                            # a group row: no digits, no quantities
    items = list(quantities.items())
    for article, q in items[:2]:
        ws.append([article, *q])
    ws.append([])
    for article, q in items[2:]:
        ws.append([article, *q])
    ws.append(["Итого", 1, 1, 1])
    wb.save(path)
    return path


def result(ftp_params, tmp_path: Path, remote: str, **kw) -> dict:
    local = tmp_path / "got" / posixpath.basename(remote)
    with FtpClient(ftp_params) as ftp:
        ftp.download(remote, local)
    return read_result_xlsx(local, **kw)


ROWS = {"A-1": (5, 0, 1), "A-2": (2, 2, 2), "GONE-1": (1, 1, 1), "A-3": (3, "много", 3), "A-4": (0, 4, 0)}


def test_stock_result_has_1c_headers_names_right_counts_problems_first(exchange_dsn, ftp_params, work_dir,
                                                                        tmp_path, monkeypatch):
    cfg = config(tmp_path, monkeypatch)
    add_products(exchange_dsn, KNOWN)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.xlsx", report(tmp_path / "r1.xlsx", ["Артикул", *WAREHOUSES],
                                                           {"A-1": (1, 1, 1), "A-2": (2, 2, 2)}).read_bytes())
    run_import(exchange_dsn, ftp_params, cfg)
    drop(ftp_params, tmp_path, "Ostatki_MP_2.xlsx", report(tmp_path / "r2.xlsx", ["Артикул", *WAREHOUSES],
                                                           ROWS).read_bytes())
    summary = run_import(exchange_dsn, ftp_params, cfg)
    assert summary.status == "applied"
    got = result(ftp_params, tmp_path, summary.result_file, setup=True)
    s = got["summary"]
    assert s["_title"] == "Результат обработки файла Ostatki_MP_2.xlsx" and s["Итог"] == "применён"
    assert "Обработан (МСК)" in s                            # results.timezone's default: the staff's clock
    # 5 data rows (title, header, group, blank and Итого rows are not data): 2 applied + 1 unchanged + 2 rejected
    assert s["Строк с данными в файле (без заголовка)"] == len(ROWS) == 5
    assert (s["Применено"], s["Без изменений"], s["Отклонено"]) == (2, 1, 2)
    assert s["Изменено ячеек остатков"] == 3                # 5 and 0; A-4: 4 (its zeros are no change)
    # 1C's own column headers, never the internal warehouse codes; the product's name
    assert got["header"] == ["Строка", "Артикул", "Наименование", *WAREHOUSES, "Статус"]
    rows = [(r[0], r[1], r[2], r[-1]) for r in got["rows"]]
    assert rows == [
        (10, "GONE-1", None, "отклонено: неизвестный артикул: такого товара нет в каталоге (колонка A)"),
        (11, "A-3", None, rows[1][3]),
        (7, "A-1", "Товар A-1", "применено"), (8, "A-2", "Товар A-2", "без изменений"),
        (12, "A-4", "Товар A-4", "применено")]
    assert rows[1][3].startswith("отклонено: количество не число: 'много' (колонка C (Склад Казань))")
    assert got["rows"][2][3:6] == [5, 0, 1] and stock_snapshot(exchange_dsn)[("A-1", "sber")] == 5
    # the header row is frozen (title, 10 summary lines, blank: header at row 13), filters over the table
    assert got["freeze_panes"] == "A14" and got["auto_filter"] == "A13:G18"


def test_a_header_without_warehouse_names_shows_the_column_and_the_configured_warehouse(
        exchange_dsn, ftp_params, work_dir, tmp_path, monkeypatch):
    cfg = config(tmp_path, monkeypatch)
    add_products(exchange_dsn, KNOWN)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.xlsx",
         report(tmp_path / "r.xlsx", ["Артикул", "Количество", "Количество", "Количество"],
                {"A-1": (1, 2, 3)}).read_bytes())
    got = result(ftp_params, tmp_path, run_import(exchange_dsn, ftp_params, cfg).result_file)
    names = {w.code: w.name for w in cfg.warehouses}
    assert got["header"][3:6] == [f"{c} Количество: {names[w]}" for c, w in zip("BCD", cfg.stock_columns)]
    assert not set(cfg.stock_columns) & set(got["header"])


def test_a_refused_stock_file_says_why_in_a1_and_lists_its_rejected_rows(exchange_dsn, ftp_params, work_dir,
                                                                         tmp_path, monkeypatch):
    from mpsync.imports.contracts import ImportRefused

    cfg = config(tmp_path, monkeypatch)
    add_products(exchange_dsn, KNOWN)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.xlsx", report(tmp_path / "r.xlsx", ["Артикул", *WAREHOUSES],
                                                           {"X-1": (1, 1, 1), "X-2": (2, 2, 2)}).read_bytes())
    with pytest.raises(ImportRefused):
        run_import(exchange_dsn, ftp_params, cfg)
    assert stock_snapshot(exchange_dsn) == {}
    with FtpClient(ftp_params) as ftp:
        [entry] = ftp.list_files("/1c/results")
    got = result(ftp_params, tmp_path, entry.path)
    assert got["summary"]["_title"] == ("Файл Ostatki_MP_1.xlsx отклонён, из него ничего не применено. Причина: "
                                        "ни одного известного артикула среди 2 строк (отклонено: 2)")
    assert [(r[0], r[1]) for r in got["rows"]] == [(7, "X-1"), (8, "X-2")]
    assert all(r[-1].startswith("отклонено: неизвестный артикул") for r in got["rows"])


def test_english_result_when_configured(exchange_dsn, ftp_params, work_dir, tmp_path, monkeypatch):
    cfg = config(tmp_path, monkeypatch, language="en")
    add_products(exchange_dsn, KNOWN)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.xlsx", report(tmp_path / "r.xlsx", ["Артикул", *WAREHOUSES],
                                                           ROWS).read_bytes())
    got = result(ftp_params, tmp_path, run_import(exchange_dsn, ftp_params, cfg).result_file, setup=True)
    s = got["summary"]
    assert s["_title"] == "Result of processing Ostatki_MP_1.xlsx" and s["Status"] == "applied"
    assert s["Data rows in the file (header not counted)"] == 5 and (s["Applied"], s["Rejected"]) == (3, 2)
    assert got["header"] == ["Row", "Article", "Name", *WAREHOUSES, "Status"]
    assert [r[-1] for r in got["rows"]][0] == "rejected: unknown article: no such product in the catalog (column A)"
    assert got["freeze_panes"] == "A14"
