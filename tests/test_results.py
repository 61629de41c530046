"""The staff's result workbook (mpsync.results + mpsync.result_labels), read back with openpyxl: Russian by
default, English as an option, problem rows first, a frozen header with filters, a refusal's reason in A1,
the Excel row limit. The imports' own results are tested in tests/imports/ (stock: test_stock_result.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from mpsync import result_labels, results
from mpsync.settings import DEFAULT_CONFIG, ConfigError, parse_settings

HEADER = ["row", "article", "name", "Текущая цена"]
ROWS = [[2, "A-1", "Чайник", 100], [3, "A-2", "Лейка", 0], [4, "A-3", None, 5], [5, "A-4", "Коврик", 7],
        [6, "A-5", "Ведро", 1]]
STATUSES = ["applied", "held: price is zero", "rejected: unknown article (no such product in the catalog)",
            "unchanged", "rejected: duplicate article (also in row(s) 9)"]
SUMMARY = {"status": "applied", "rows_read": 5, "applied": 1, "unchanged": 1, "held": 1, "rejected": 2}


def write(tmp_path: Path, **kw) -> Path:
    args = dict(file_name="MP_PRICE.xlsx", kind="price", summary=SUMMARY, header=HEADER, rows=ROWS,
                statuses=STATUSES)
    return results.write_result_xlsx(tmp_path / "r.xlsx", **{**args, **kw})


def test_russian_by_default_problem_rows_first_with_a_frozen_header_and_filters(tmp_path):
    back = results.read_result_xlsx(write(tmp_path), setup=True)
    s = back["summary"]
    assert s["_title"] == "Результат обработки файла MP_PRICE.xlsx"
    assert (s["Файл"], s["Вид файла"], s["Итог"]) == ("MP_PRICE.xlsx", "цены", "применён")
    assert s["Строк с данными в файле (без заголовка)"] == 5 and s["Отклонено"] == 2
    assert s["Отложено (проверьте и пришлите снова или дождитесь решения)"] == 1 and "Обработан (МСК)" in s
    assert back["header"] == ["Строка", "Артикул", "Наименование", "Текущая цена", "Статус"]
    # rejected (file order), then held, then the rest (file order), each with its file row number
    assert [r[0] for r in back["rows"]] == [4, 6, 3, 2, 5]
    assert [r[-1] for r in back["rows"]] == [
        "отклонено: неизвестный артикул (такого товара нет в каталоге)",
        "отклонено: артикул повторяется (также в строках 9)", "отложено: цена равна нулю", "применено",
        "без изменений"]
    # title (1) + 9 summary lines + blank: the header is row 12; frozen below it, filters over the table
    assert back["freeze_panes"] == "A13"
    assert back["auto_filter"] == "A12:E17"
    from openpyxl import load_workbook

    ws = load_workbook(tmp_path / "r.xlsx").worksheets[0]
    assert ws.title == "Результат" and [c.value for c in ws[12]] == back["header"]
    assert ws["E13"].fill.fgColor.rgb.endswith("FFC7CE") and ws["E15"].fill.fgColor.rgb.endswith("FFEB9C")


def test_english_is_an_option(tmp_path):
    back = results.read_result_xlsx(write(tmp_path, language="en"), setup=True)
    s = back["summary"]
    assert s["_title"] == "Result of processing MP_PRICE.xlsx" and s["Status"] == "applied"
    assert s["Data rows in the file (header not counted)"] == 5 and s["Held back (check and re-send)"] == 1
    assert back["header"] == ["Row", "Article", "Name", "Текущая цена", "Status"]    # 1C's own header kept
    assert [r[-1] for r in back["rows"]][:3] == [
        "rejected: unknown article (no such product in the catalog)", "rejected: duplicate article (also in row(s) 9)",
        "held: price is zero"]
    assert back["freeze_panes"] == "A13"
    with pytest.raises(ValueError, match="must be one of"):
        write(tmp_path, language="de")


def test_a_refused_file_says_why_in_the_first_cell_and_the_table_is_not_left_empty(tmp_path):
    reason = ("only 3 known articles vs 36 in the previous import (below the configured share 50%): "
              "truncated file?")
    path = results.refused_result(tmp_path / "r.xlsx", file_name="Ostatki_MP.xlsx", kind="stock", reason=reason)
    back = results.read_result_xlsx(path, setup=True)
    assert back["summary"]["_title"] == (
        "Файл Ostatki_MP.xlsx отклонён, из него ничего не применено. Причина: только 3 известных артикулов "
        "против 36 в прошлом файле (меньше допустимой доли 50%): файл обрезан?")
    assert back["summary"]["Итог"] == "ОТКЛОНЁН: из файла ничего не применено"
    assert back["summary"]["Причина отказа"].startswith("только 3 известных артикулов")
    assert back["rows"] == [["Строк для показа нет: файл отклонён целиком."]]
    en = results.read_result_xlsx(results.refused_result(tmp_path / "e.xlsx", file_name="x.csv", kind="stock",
                                                         reason="the sheet is empty", language="en"))
    assert en["summary"]["_title"] == "x.csv was refused, nothing from it was applied. Reason: the sheet is empty"


@pytest.mark.parametrize("reason, russian", [
    ("no known articles among 3 rows (3 rejected)", "ни одного известного артикула среди 3 строк (отклонено: 3)"),
    ("no usable price rows among 5 rows read (5 rejected)",
     "ни одной годной строки цен среди 5 прочитанных (отклонено: 5)"),
    ("no quantity in any of 4 article row(s): refusing a file that would set all stock to zero",
     "ни в одной из 4 строк нет количества: такой файл обнулил бы все остатки"),
    ("no price table header in the first 30 rows: expected columns 'артикул', 'текущая цена'",
     "в первых 30 строках нет заголовка таблицы; ожидались колонки 'артикул', 'текущая цена'"),
    ("something no pattern knows", "something no pattern knows"),      # kept as it is, never lost
])
def test_refusal_reasons_in_russian(reason, russian):
    assert result_labels.reason_text(reason, "ru") == russian
    assert result_labels.reason_text(reason, "en") == reason


def test_statuses_of_several_price_lists_and_unknown_statuses():
    st = "held (ozon): +50% vs the current price 100.00 (allowed ±30%); held (yandex): price is zero"
    assert result_labels.status_text(st, "ru") == ("отложено (ozon): +50% к текущей цене 100.00 (допустимо ±30%); "
                                                   "отложено (yandex): цена равна нулю")
    assert result_labels.problem_rank(st) == 1 and result_labels.problem_rank("rejected (ozon): x") == 0
    assert result_labels.status_text("применена", "ru") == "применена"     # already staff text: as it is
    assert result_labels.problem_rank("применена") == 2


def test_rows_beyond_the_excel_limit_are_cut_with_a_note_and_problems_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "EXCEL_MAX_ROWS", 30)          # the real limit takes a million rows to reach
    rows = ([i, f"A-{i}", None, 1] for i in range(2, 102))    # an iterator: listed once, then ordered
    statuses = ["applied"] * 99 + ["rejected: unknown article"]
    back = results.read_result_xlsx(write(tmp_path, rows=rows, statuses=statuses, summary={}), setup=True)
    # header at row 6 (title, 3 lines, blank); 30 - 6 - 2 = 22 rows fit, the rejected one first
    assert back["rows"][0][:2] == [101, "A-101"] and len(back["rows"]) == 22 + 1
    assert back["rows"][-1][0] == ("Ещё 78 строк не показаны (в листе Excel не больше 1 048 576 строк); все строки "
                                   "есть в базе обмена (таблицы import_file, import_reject)")
    assert back["auto_filter"] == "A6:E28"


def test_rows_and_statuses_must_match(tmp_path):
    with pytest.raises(ValueError, match="5 rows but 4 statuses"):
        write(tmp_path, statuses=STATUSES[:4])


def test_the_language_is_a_checked_setting(tmp_path):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    assert parse_settings(raw, DEFAULT_CONFIG).results_language == "ru"
    assert parse_settings({**raw, "results": {"language": "en"}}, DEFAULT_CONFIG).results_language == "en"
    assert parse_settings({**raw, "results": None}, DEFAULT_CONFIG).results_language == "ru"
    with pytest.raises(ConfigError, match="'results.language' must be one of"):
        parse_settings({**raw, "results": {"language": "fr"}}, DEFAULT_CONFIG)


def test_times_are_the_staffs_wall_clock_in_the_configured_zone_named_in_the_label(tmp_path):
    aware = datetime(2026, 12, 5, 9, 30, tzinfo=timezone.utc)
    rows = [[2, "A-1", "Чайник", aware]]
    back = results.read_result_xlsx(write(tmp_path, rows=rows, statuses=["applied"]))
    s = back["summary"]
    assert "Обработан (UTC)" not in s
    moscow_now = datetime.now(ZoneInfo("Europe/Moscow")).replace(tzinfo=None)
    assert abs(datetime.strptime(s["Обработан (МСК)"], "%Y-%m-%d %H:%M:%S") - moscow_now) < timedelta(minutes=2)
    assert back["rows"][0][3] == datetime(2026, 12, 5, 12, 30)           # a time in a row: Moscow's, too
    # another zone: its own name in the label, its wall clock in the cells; English names Moscow in words
    other = results.read_result_xlsx(write(tmp_path, rows=rows, statuses=["applied"], timezone="Asia/Yekaterinburg"))
    ekb_now = datetime.now(ZoneInfo("Asia/Yekaterinburg")).replace(tzinfo=None)
    assert abs(datetime.strptime(other["summary"]["Обработан (Asia/Yekaterinburg)"], "%Y-%m-%d %H:%M:%S")
               - ekb_now) < timedelta(minutes=2)
    assert other["rows"][0][3] == datetime(2026, 12, 5, 14, 30)
    assert "Обработан (UTC)" in results.read_result_xlsx(write(tmp_path, timezone="UTC"))["summary"]
    assert "Processed at (Moscow time)" in results.read_result_xlsx(write(tmp_path, language="en"))["summary"]
    with pytest.raises(ValueError, match="IANA time zone"):
        write(tmp_path, timezone="Moscow")


def test_the_time_zone_is_a_checked_setting():
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    assert parse_settings(raw, DEFAULT_CONFIG).results_timezone == "Europe/Moscow"
    no_zone = {**raw, "results": {"language": "ru"}}
    assert parse_settings(no_zone, DEFAULT_CONFIG).results_timezone == "Europe/Moscow"        # the default
    assert parse_settings({**raw, "results": {"timezone": "Asia/Novosibirsk"}},
                          DEFAULT_CONFIG).results_timezone == "Asia/Novosibirsk"
    for bad in ("MSK", "Europe/Moskva", "../etc/passwd"):
        with pytest.raises(ConfigError, match=r"'results.timezone' must be an IANA time zone name such as "
                                              r"'Europe/Moscow' or 'UTC', got"):
            parse_settings({**raw, "results": {"timezone": bad}}, DEFAULT_CONFIG)
