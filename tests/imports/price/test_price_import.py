"""Price import against the real PostgreSQL and FTP: guards, dry run, result file, refusal, and the DAG."""

from __future__ import annotations

import posixpath
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import yaml

from mpsync.ftp import FtpClient
from mpsync.imports import price
from mpsync.imports.fragments import StagingLost
from mpsync.imports.price.stage import status_counts
from mpsync.results import read_result_xlsx
from mpsync.settings import DEFAULT_CONFIG, settings
from tests.onec_files import write_price_xlsx

DAG_FILE = Path(__file__).resolve().parents[3] / "dags" / "onec_price_import.py"
OVERRIDES = {"ozon": ("Текущая цена OZON", "Цена без акции OZON")}
CURRENT = {"P-1": "100", "P-2": "200", "P-3": "300", "P-4": "400", "P-5": "1000", "P-7": "700"}
# (article, price, old price, ozon price, ozon old)
ROWS = [
    ("P-1", 110, 150, 105, None),        # +10%: applied, plus an ozon override
    ("P-2", 200, None, None, None),      # same: unchanged
    ("P-3", 0, None, None, None),        # zero: held
    ("P-4", 0.5, None, None, None),      # below the floor (1): held
    ("P-5", 100, None, None, None),      # -90% (a typo): held
    ("P-6", 600, 0, None, None),         # no price yet: applied; old price 0 = no promotion
    ("NOPE", 50, None, None, None),      # unknown article: rejected
    ("P-7", "abc", None, None, None),    # not a number: rejected by the parser
]


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["onec"].update({"stable_seconds": 0, "poke_seconds": 1, "timeout_seconds": 6})
    raw["prices"].update({"min_fragment_rows": 2, "floor": 1, "max_change_share": 0.5,
                          "overrides": {"ozon": {"price": OVERRIDES["ozon"][0], "old_price": OVERRIDES["ozon"][1]}}})
    path = tmp_path / "mpsync.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return settings()


def seed(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        for a in [*CURRENT, "P-6"]:
            pid = conn.execute("insert into product (article, name) values (%s, %s) returning product_id",
                               (a, f"Товар {a}")).fetchone()[0]
            if a in CURRENT:
                conn.execute("insert into price (product_id, price) values (%s, %s)", (pid, CURRENT[a]))


def prices(dsn: str) -> dict[tuple[str, str], tuple]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("select p.article, r.price_list, r.price, r.old_price from price r "
                            "join product p using (product_id)").fetchall()
    return {(a, pl): (p, o) for a, pl, p, o in rows}


def drop_price(params, tmp_path: Path, name: str, rows=ROWS, folder="/1c/price") -> None:
    local = write_price_xlsx(tmp_path / name, rows, overrides=OVERRIDES, formulas=True)
    with FtpClient(params) as ftp:
        ftp.upload(local, f"{folder}/{name}")


def result_files(params, folder="/1c/results") -> list[str]:
    with FtpClient(params) as ftp:
        return [e.name for e in ftp.list_files(folder)]


def fetch_result(params, tmp_path: Path, name: str) -> dict:
    local = tmp_path / "got" / name
    with FtpClient(params) as ftp:
        ftp.download(posixpath.join("/1c/results", name), local)
    return read_result_xlsx(local)


def db_counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("price", "import_file", "import_reject", "price_staging", "import_fragment", "sync")}


def run_import(dsn, params, cfg) -> dict:
    files = [f.to_dict() for f in price.waiting_files(params, cfg, dsn)]
    prepared = price.prepare(dsn, params, files, cfg)
    for fragment in prepared.fragments:
        price.apply_fragment(dsn, fragment, cfg)
    return {"prepared": prepared, "summary": price.finish(dsn, params, prepared, cfg)}


def test_suspicious_prices_are_held_and_reported_good_ones_applied(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    seed(exchange_dsn)
    drop_price(ftp_params, tmp_path, "MP_PRICE_0105.xlsx")
    out = run_import(exchange_dsn, ftp_params, cfg)
    prepared, summary = out["prepared"], out["summary"]
    assert len(prepared.fragments) >= 3

    got = prices(exchange_dsn)
    assert got[("P-1", "default")] == (Decimal("110.00"), Decimal("150.00"))
    assert got[("P-1", "ozon")] == (Decimal("105.00"), None)
    assert got[("P-6", "default")] == (Decimal("600.00"), None)
    for held in ("P-3", "P-4", "P-5"):                        # untouched
        assert got[(held, "default")] == (Decimal(CURRENT[held]), None)
    assert got[("P-7", "default")] == (Decimal("700"), None)
    assert summary.changed == 3 and summary.status == "applied"
    assert summary.details["rows"] == {"applied": 2, "unchanged": 1, "held": 3, "rejected": 1}

    # The staff's result file: summary on top, then every row with its status; it matches the database.
    [name] = result_files(ftp_params)
    assert name.startswith("MP_PRICE_0105.xlsx.result-")
    res = read_result_xlsx_from_ftp(ftp_params, tmp_path, name)
    # Counted by file row, as staff count them: 8 rows under the header = 2 + 1 + 3 + 2.
    assert res["summary"]["Строк с данными в файле (без заголовка)"] == len(ROWS) == 8
    assert res["summary"]["Применено"] == 2 and res["summary"]["Без изменений"] == 1
    assert res["summary"]["Отложено (проверьте и пришлите снова или дождитесь решения)"] == 3
    assert res["summary"]["Отклонено"] == 2 and res["summary"]["Итог"] == "применён"
    assert res["summary"]["_title"] == "Результат обработки файла MP_PRICE_0105.xlsx"
    assert res["header"][:5] == ["Строка", "Артикул", "Наименование", "Текущая цена", "Цена без акции"]
    assert res["header"][-2:] == ["Цена до этого файла", "Статус"]
    status = {r[1]: r[-1] for r in res["rows"]}
    assert status["P-1"] == "применено" and status["P-2"] == "без изменений" and status["P-6"] == "применено"
    assert status["P-3"] == "отложено: цена равна нулю"
    assert status["P-4"].startswith("отложено: цена 0.50 ниже минимальной")
    assert status["P-5"].startswith("отложено: -90% к текущей цене 1000")
    assert status["NOPE"].startswith("отклонено: неизвестный артикул")
    assert status["P-7"].startswith("отклонено:") and "abc" in status["P-7"]
    # Problem rows first (rejected, then held), each group in file order, each with its file row number.
    # (the table's header is the file's row 3, under two title rows)
    assert [(r[0], r[1]) for r in res["rows"]] == [(10, "NOPE"), (11, "P-7"), (6, "P-3"), (7, "P-4"), (8, "P-5"),
                                                   (4, "P-1"), (5, "P-2"), (9, "P-6")]
    names = {r[1]: r[2] for r in res["rows"]}
    # the table's own Наименование (write_price_xlsx: "Товар <article>"), even for an article the catalog lacks
    assert names["P-1"] == "Товар P-1" and names["NOPE"] == "Товар NOPE"
    for r in res["rows"]:                                      # applied rows carry what the DB now holds
        if r[-1] == "применено":
            assert Decimal(str(r[3])) == got[(r[1], "default")][0]
    # The ledger keeps held and rejected rows for operators; the file is archived.
    with psycopg.connect(exchange_dsn) as conn:
        status_, changed, rejected = conn.execute("select status, changed, rejected from import_file").fetchone()
        reasons = [r[0] for r in conn.execute("select reason from import_reject order by row_no")]
        assert conn.execute("select count(*) from price_staging").fetchone()[0] == 0
    assert (status_, changed, rejected) == ("applied", 3, 5)
    assert sum(r.startswith("held") for r in reasons) == 3
    with FtpClient(ftp_params) as ftp:
        assert ftp.list_files("/1c/price") == []


def read_result_xlsx_from_ftp(params, tmp_path, name):
    return fetch_result(params, tmp_path, name)


def test_fragment_retry_is_idempotent(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    seed(exchange_dsn)
    drop_price(ftp_params, tmp_path, "MP_PRICE_0106.xlsx")
    files = [f.to_dict() for f in price.waiting_files(ftp_params, cfg, exchange_dsn)]
    prepared = price.prepare(exchange_dsn, ftp_params, files, cfg)

    def apply(f) -> dict:           # the fragment's status counts after it ran
        price.apply_fragment(exchange_dsn, f, cfg)
        with psycopg.connect(exchange_dsn) as conn:
            return status_counts(conn, f.import_file_id, f.first_seq, f.last_seq)

    first = [apply(f) for f in prepared.fragments]
    after_first = prices(exchange_dsn)
    again = [apply(f) for f in prepared.fragments]
    assert again == first and prices(exchange_dsn) == after_first
    assert price.finish(exchange_dsn, ftp_params, prepared, cfg).changed == 3


def test_a_fragment_whose_staged_rows_are_not_all_there_writes_nothing(exchange_dsn, ftp_params, cfg, work_dir,
                                                                       tmp_path):
    """Issue 22: a price fragment counts and digests the staged rows it reads (one read) and writes nothing
    when a row is gone or other than prepare staged it."""
    seed(exchange_dsn)
    drop_price(ftp_params, tmp_path, "MP_PRICE_0107.xlsx")
    files = [f.to_dict() for f in price.waiting_files(ftp_params, cfg, exchange_dsn)]
    prepared = price.prepare(exchange_dsn, ftp_params, files, cfg)
    first = prepared.fragments[0]
    before = prices(exchange_dsn)
    with psycopg.connect(exchange_dsn) as conn:
        kept = conn.execute("select * from price_staging where import_file_id = %s and seq = %s "
                            "and price_list = 'default'", (first.import_file_id, first.first_seq)).fetchone()
        assert kept is not None
        conn.execute("delete from price_staging where import_file_id = %s and seq = %s and price_list = 'default'",
                     (first.import_file_id, first.first_seq))
    with pytest.raises(StagingLost, match=r"of the \d+ staged rows are there"):
        price.apply_fragment(exchange_dsn, first, cfg)
    with psycopg.connect(exchange_dsn) as conn:          # all rows there again, one of them changed
        columns = [c.name for c in conn.execute("select * from price_staging limit 0").description]
        conn.execute(f"insert into price_staging ({', '.join(columns)}) values ({', '.join(['%s'] * len(columns))})",
                     [*kept[:columns.index("price")], kept[columns.index("price")] + 1,
                      *kept[columns.index("price") + 1:]])
    with pytest.raises(StagingLost, match="differ from what prepare staged"):
        price.apply_fragment(exchange_dsn, first, cfg)
    assert prices(exchange_dsn) == before


def test_dry_run_writes_nothing_and_reports_what_would_change(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    seed(exchange_dsn)
    drop_price(ftp_params, tmp_path, "CHECK_prices.xlsx")       # not the sensor's pattern: a preview upload
    before_db, before_prices = db_counts(exchange_dsn), prices(exchange_dsn)
    choice = price.choose_file(ftp_params, cfg, "CHECK_prices.xlsx", exchange_dsn)
    prepared = price.prepare(exchange_dsn, ftp_params, [choice], cfg, dry_run=True)
    summary = price.finish(exchange_dsn, ftp_params, prepared, cfg)
    assert summary.changed == 0 and summary.status == "dry run"
    assert db_counts(exchange_dsn) == before_db and prices(exchange_dsn) == before_prices
    with FtpClient(ftp_params) as ftp:
        assert [e.name for e in ftp.list_files("/1c/price")] == ["CHECK_prices.xlsx"]    # still waiting
    [name] = result_files(ftp_params)
    assert ".dry-run-" in name
    res = fetch_result(ftp_params, tmp_path, name)
    assert res["summary"]["ПРОБНЫЙ ПРОГОН"].startswith("ничего не записано")
    assert res["summary"]["Вид файла"] == "цены (пробный прогон)"
    assert res["summary"]["Строк с данными в файле (без заголовка)"] == len(ROWS)
    assert (res["summary"]["Будет применено"], res["summary"]["Без изменений"]) == (2, 1)
    status = {r[1]: r[-1] for r in res["rows"]}
    assert status["P-1"] == "будет применено" and status["P-3"] == "отложено: цена равна нулю"
    assert status["P-2"] == "без изменений"


def test_wrong_file_choice_lists_the_waiting_files(exchange_dsn, ftp_params, cfg, tmp_path):
    drop_price(ftp_params, tmp_path, "MP_PRICE_a.xlsx")
    drop_price(ftp_params, tmp_path, "MP_PRICE_b.xlsx")
    with pytest.raises(price.PriceFileChoiceError, match="MP_PRICE_a.xlsx, MP_PRICE_b.xlsx"):
        price.choose_file(ftp_params, cfg, "MP_PRICE_c.xlsx", exchange_dsn)
    assert price.choose_file(ftp_params, cfg, "", exchange_dsn) is None
    assert price.choose_file(ftp_params, cfg, "mp_price_b.xlsx", exchange_dsn)["name"] == "MP_PRICE_b.xlsx"


def test_refused_file_gets_a_result_explaining_why(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    seed(exchange_dsn)
    before = prices(exchange_dsn)
    local = tmp_path / "MP_PRICE_bad.csv"
    local.write_text("это не таблица цен\nвообще\n", encoding="utf-8")
    with FtpClient(ftp_params) as ftp:
        ftp.upload(local, "/1c/price/MP_PRICE_bad.csv")
    files = [f.to_dict() for f in price.waiting_files(ftp_params, cfg, exchange_dsn)]
    with pytest.raises(price.PriceFileRefused, match="MP_PRICE_bad.csv refused"):
        price.prepare(exchange_dsn, ftp_params, files, cfg)
    assert prices(exchange_dsn) == before
    [name] = result_files(ftp_params)
    res = fetch_result(ftp_params, tmp_path, name)
    # Why, in the first cell, in Russian; and that no price was applied.
    assert res["summary"]["_title"].startswith("Файл MP_PRICE_bad.csv отклонён, из него ничего не применено. "
                                               "Причина: ")
    assert "нет заголовка таблицы" in res["summary"]["_title"]
    assert res["summary"]["Итог"] == "ОТКЛОНЁН: ни одна цена из файла не применена"
    assert res["summary"]["Причина отказа"]
    with FtpClient(ftp_params) as ftp:
        assert ftp.list_files("/1c/price") == []                # out of the drop folder: not retried forever
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select status from import_file").fetchone()[0] == "refused"


# ---- the DAG, end to end (one dag.test(): ~15 s) --------------------------------------------------------

def test_dag_manual_pick_applies_and_emits_catalog_changed(airflow_db, exchange_dsn, ftp_server, ftp_params, cfg,
                                                            work_dir, tmp_path):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.settings import Session

    def events(name: str) -> int:
        with Session() as s:
            return s.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).filter(
                AssetModel.name == name).count()

    seed(exchange_dsn)
    drop_price(ftp_params, tmp_path, "MP_PRICE_0107.xlsx")
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["onec_price_import"]
    for t in dag.tasks:
        t.retry_delay = timedelta(seconds=0)
    changed_before, held_before = events("catalog_changed"), events("prices_held")
    run = dag.test(run_conf={"file": "MP_PRICE_0107.xlsx", "dry_run": False})
    assert str(run.state) == "success"
    from airflow.models import TaskInstance

    with Session() as s:
        states = {ti.task_id: str(ti.state) for ti in
                  s.query(TaskInstance).filter_by(run_id=run.run_id, dag_id=dag.dag_id)}
    assert states["wait_for_price_file"] == "skipped"          # the operator's pick skips the sensor
    assert states["finish_price_import"] == "success"
    assert prices(exchange_dsn)[("P-1", "default")] == (Decimal("110.00"), Decimal("150.00"))
    assert events("catalog_changed") == changed_before + 1      # a price really changed
    # the file's held prices (P-4 below the floor, P-5 at -90%) are announced for an operator's decision
    assert events("prices_held") == held_before + 1
    assert len(result_files(ftp_params)) == 1


def set_ftp_time(params, path: str, when: str) -> None:
    """Set a file's modification time on the FTP (MFMT), e.g. a table made yesterday but uploaded now."""
    with FtpClient(params) as ftp:
        ftp.ftp.sendcmd(f"MFMT {when} {path}")


def test_older_price_table_arriving_late_never_rolls_back(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    seed(exchange_dsn)
    drop_price(ftp_params, tmp_path, "MP_PRICE_new.xlsx", rows=[("P-1", 110, None, None, None)])
    assert run_import(exchange_dsn, ftp_params, cfg)["summary"].status == "applied"
    before = prices(exchange_dsn)
    drop_price(ftp_params, tmp_path, "MP_PRICE_old.xlsx", rows=[("P-1", 120, None, None, None)])
    set_ftp_time(ftp_params, "/1c/price/MP_PRICE_old.xlsx", "20250101090000")
    summary = run_import(exchange_dsn, ftp_params, cfg)["summary"]
    assert summary.status == "stale"
    assert prices(exchange_dsn) == before
    with psycopg.connect(exchange_dsn) as conn:
        message, = conn.execute("select message from import_file where name = 'MP_PRICE_old.xlsx'").fetchone()
    assert "older than the already applied MP_PRICE_new.xlsx" in message


def test_backfill_restores_price_history_without_rolling_back(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    from datetime import datetime, timezone

    seed(exchange_dsn)
    drop_price(ftp_params, tmp_path, "MP_PRICE_10.xlsx", rows=[("P-1", 110, None, None, None)])
    set_ftp_time(ftp_params, "/1c/price/MP_PRICE_10.xlsx", "20251220100000")
    run_import(exchange_dsn, ftp_params, cfg)
    drop_price(ftp_params, tmp_path, "MP_PRICE_12.xlsx", rows=[("P-1", 120, None, None, None)])
    set_ftp_time(ftp_params, "/1c/price/MP_PRICE_12.xlsx", "20251220120000")
    run_import(exchange_dsn, ftp_params, cfg)
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("delete from price_history")          # history lost
    current = prices(exchange_dsn)
    start = datetime(2025, 12, 20, 9, 0, tzinfo=timezone.utc)
    summary = price.reprocess_archive(exchange_dsn, ftp_params, cfg, start, start + timedelta(hours=2))
    assert [f["file"] for f in summary.files] == ["MP_PRICE_10.xlsx"]
    price.reprocess_archive(exchange_dsn, ftp_params, cfg, start, start + timedelta(hours=2))      # again
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*) from price_history").fetchone()[0] == 1     # not twice
    assert prices(exchange_dsn) == current                  # current prices untouched
    with psycopg.connect(exchange_dsn) as conn:
        at_11 = conn.execute("select price, file_name from price_as_of('P-1', '2025-12-20 11:00+00') "
                             "where price_list = 'default'").fetchone()
    assert (at_11[0], at_11[1]) == (Decimal("110.00"), "MP_PRICE_10.xlsx")


def names_table(path: Path, rows: list[tuple], *, with_names: bool = True) -> Path:
    """A price table as staff type it: their own Наименование per row (None: left empty)."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Артикул", *(["Наименование"] if with_names else []), "Текущая цена", "Цена без акции",
               *OVERRIDES["ozon"]])
    for article, name, price_ in rows:
        ws.append([article, *([name] if with_names else []), price_, None, None, None])
    wb.save(path)
    return path


def names_in_result(params, tmp_path: Path, local: Path, dsn, cfg, *, dry_run: bool = False) -> dict:
    with FtpClient(params) as ftp:
        ftp.upload(local, f"/1c/price/{local.name}")
    if dry_run:
        choice = price.choose_file(params, cfg, local.name, dsn)
        price.finish(dsn, params, price.prepare(dsn, params, [choice], cfg, dry_run=True), cfg)
    else:
        run_import(dsn, params, cfg)
    tag = ".dry-run-" if dry_run else ".result-"
    [name] = [n for n in result_files(params) if n.startswith(local.name + tag)]
    return {r[1]: r[2] for r in fetch_result(params, tmp_path, name)["rows"]}


def test_the_result_shows_the_name_staff_typed_in_the_file_else_the_catalogs(exchange_dsn, ftp_params, cfg,
                                                                              work_dir, tmp_path):
    seed(exchange_dsn)                                   # the catalog calls them "Товар P-1", ...
    rows = [("P-1", "Чайник стальной 1,7 л", 110),      # applied: the file's name
            ("P-2", None, 200),                          # no name typed: the catalog's
            ("P-3", "Лейка\ufdd0 садовая", 0),           # held: the file's name, its non-character dropped
            ("NOPE", "Коврик из файла", 50),             # unknown article: only the file knows its name
            ("P-7", "Ведро", "abc")]                     # rejected by the parser: not staged, the catalog's
    table = names_table(tmp_path / "MP_PRICE_names.xlsx", rows)
    expected = {"P-1": "Чайник стальной 1,7 л", "P-2": "Товар P-2", "P-3": "Лейка садовая",
                "NOPE": "Коврик из файла", "P-7": "Товар P-7"}
    assert names_in_result(ftp_params, tmp_path, table, exchange_dsn, cfg, dry_run=True) == expected
    assert names_in_result(ftp_params, tmp_path, table, exchange_dsn, cfg) == expected
    # a table without a Наименование column: the catalog's names, as before
    plain = names_table(tmp_path / "MP_PRICE_plain.xlsx", [("P-1", None, 110), ("P-2", None, 210)], with_names=False)
    assert names_in_result(ftp_params, tmp_path, plain, exchange_dsn, cfg) == {"P-1": "Товар P-1",
                                                                                "P-2": "Товар P-2"}
