"""What every import kind gets from the one lifecycle (mpsync.imports.pipeline), on the real PostgreSQL and FTP:
the staff's result file recorded in the ledger (import_file.result_file, read by the Exchange page) whatever
the end, a dry run that writes nothing but its result file, the stale check, archiving by the day made."""

from __future__ import annotations

import posixpath

import psycopg
import pytest
import yaml

from mpsync import dropfolder
from mpsync.ftp import FtpClient
from mpsync.imports import price
from mpsync.imports.contracts import ImportRefused
from mpsync.results import read_result_xlsx
from mpsync.settings import DEFAULT_CONFIG, load_settings, settings
from tests.imports.price.test_price_import import OVERRIDES, drop_price, seed
from tests.stock_helpers import add_products, drop, run_import, stock_csv, stock_snapshot, write_test_config

ARTICLES = [f"L-{i}" for i in range(1, 6)]


@pytest.fixture
def stock_cfg(tmp_path, monkeypatch):
    path = write_test_config(tmp_path / "mpsync.yaml")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return load_settings(path)


def ledger_rows(dsn: str) -> dict[str, tuple]:
    with psycopg.connect(dsn) as conn:
        return {r[0]: r[1:] for r in conn.execute("select name, status, result_file from import_file")}


def result_on_ftp(ftp_params, tmp_path, remote: str) -> dict:
    local = tmp_path / "got" / posixpath.basename(remote)
    with FtpClient(ftp_params) as ftp:
        ftp.download(remote, local)
    return read_result_xlsx(local)


def test_stock_records_its_result_file_applied_stale_refused_and_given_up(exchange_dsn, ftp_params, stock_cfg,
                                                                          work_dir, tmp_path, monkeypatch):
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv([(a, 1, 2, 3) for a in ARTICLES], made="01.12.2026 10:00"))
    applied = run_import(exchange_dsn, ftp_params, stock_cfg)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv([(a, 5, 5, 5) for a in ARTICLES], made="01.12.2026 09:00"))
    stale = run_import(exchange_dsn, ftp_params, stock_cfg)
    assert (applied.status, stale.status) == ("applied", "stale")
    drop(ftp_params, tmp_path, "Ostatki_MP_3.csv", stock_csv([("NO-SUCH", 1, 1, 1)]))
    with pytest.raises(ImportRefused, match="no known articles"):
        run_import(exchange_dsn, ftp_params, stock_cfg)
    # given up: the database refuses every stock write, the import fails on each of its attempts
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("create function no_stock() returns trigger language plpgsql as "
                     "$$ begin raise exception 'stock is read-only today'; end $$")
        conn.execute("create trigger no_stock before insert on stock_staging for each statement "
                     "execute function no_stock()")
    drop(ftp_params, tmp_path, "Ostatki_MP_4.csv", stock_csv([(a, 9, 9, 9) for a in ARTICLES], made="01.12.2026 11:00"))
    with pytest.raises(Exception):
        run_import(exchange_dsn, ftp_params, stock_cfg)
    with pytest.raises(Exception):
        run_import(exchange_dsn, ftp_params, stock_cfg)
    with pytest.raises(ImportRefused, match="given up"):
        run_import(exchange_dsn, ftp_params, stock_cfg)
    rows = ledger_rows(exchange_dsn)
    assert {n: s for n, (s, _) in rows.items()} == {"Ostatki_MP_2.csv": "applied", "Ostatki_MP_1.csv": "stale",
                                                    "Ostatki_MP_3.csv": "refused", "Ostatki_MP_4.csv": "failed"}
    assert rows["Ostatki_MP_2.csv"][1] == applied.result_file and rows["Ostatki_MP_1.csv"][1] == stale.result_file
    for name, (_, remote) in rows.items():
        assert remote and posixpath.basename(remote).startswith(name + ".result-"), name
        summary = result_on_ftp(ftp_params, tmp_path, remote)["summary"]
        assert summary["Файл"] == name
    assert result_on_ftp(ftp_params, tmp_path, rows["Ostatki_MP_1.csv"][1])["summary"]["Итог"] == "устарел: не применён"
    refused = result_on_ftp(ftp_params, tmp_path, rows["Ostatki_MP_3.csv"][1])
    assert refused["summary"]["_title"] == ("Файл Ostatki_MP_3.csv отклонён, из него ничего не применено. Причина: "
                                            "ни одного известного артикула среди 1 строк (отклонено: 1)")
    # the rows rejected on the way are listed under the reason
    assert refused["header"] == ["Строка", "Артикул", "Колонка", "Статус"]
    assert [r[1] for r in refused["rows"]] == ["NO-SUCH"] and refused["rows"][0][-1].startswith("отклонено: ")
    failed = result_on_ftp(ftp_params, tmp_path, rows["Ostatki_MP_4.csv"][1])["summary"]
    assert failed["Итог"].startswith("НЕ ОБРАБОТАН")
    assert failed["_title"].startswith("Файл Ostatki_MP_4.csv не обработан, из него ничего не применено. Причина: "
                                       "импорт не удался (попыток: 3), попытки прекращены: ")


def test_a_stock_dry_run_writes_only_its_result_file(exchange_dsn, ftp_params, stock_cfg, work_dir, tmp_path):
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv([(a, 1, 1, 1) for a in ARTICLES]))
    run_import(exchange_dsn, ftp_params, stock_cfg)
    before = stock_snapshot(exchange_dsn)
    rows = [(a, 1, 1, 1) for a in ARTICLES] + [("NO-SUCH", 1, 1, 1)]
    rows[1] = (rows[1][0], 7, 1, 1)
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv(rows))
    summary = run_import(exchange_dsn, ftp_params, stock_cfg, dry_run=True)
    assert summary.status == "dry run" and summary.changed == 0
    assert stock_snapshot(exchange_dsn) == before
    assert list(ledger_rows(exchange_dsn)) == ["Ostatki_MP_1.csv"]          # not even in the ledger
    with FtpClient(ftp_params) as ftp:
        assert [e.name for e in ftp.list_files("/1c/stock")] == ["Ostatki_MP_2.csv"]     # stays for the real run
    result = result_on_ftp(ftp_params, tmp_path, summary.result_file)
    assert "dry-run" in summary.result_file and "ПРОБНЫЙ ПРОГОН" in result["summary"]
    statuses = {r[1]: r[-1] for r in result["rows"]}
    assert statuses[ARTICLES[1]] == "будет применено" and statuses[ARTICLES[0]] == "без изменений"
    assert statuses["NO-SUCH"].startswith("отклонено: неизвестный артикул")
    assert result["rows"][0][1] == "NO-SUCH"                                    # problems first
    assert (result["summary"]["Будет применено"], result["summary"]["Без изменений"]) == (1, len(ARTICLES) - 1)
    assert result["summary"]["Строк с данными в файле (без заголовка)"] == len(rows)
    assert result["summary"]["Отклонено"] == 1
    assert run_import(exchange_dsn, ftp_params, stock_cfg).changed == 1            # the real run applies it


def price_run(dsn, params, cfg, **kw):
    prepared = price.prepare(dsn, params, [f.to_dict() for f in price.waiting_files(params, cfg, dsn)], cfg, **kw)
    for f in prepared.fragments:
        price.apply_fragment(dsn, f, cfg)
    return price.finish(dsn, params, prepared, cfg)


@pytest.fixture
def price_cfg(tmp_path, monkeypatch):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["onec"].update({"stable_seconds": 0})
    raw["prices"].update({"min_fragment_rows": 2, "overrides": {"ozon": {"price": OVERRIDES["ozon"][0],
                                                                         "old_price": OVERRIDES["ozon"][1]}}})
    (tmp_path / "price.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(tmp_path / "price.yaml"))
    return settings()


def test_price_records_its_result_file_applied_unchanged_refused_and_given_up(exchange_dsn, ftp_params, price_cfg,
                                                                              work_dir, tmp_path):
    cfg = price_cfg
    seed(exchange_dsn)
    drop_price(ftp_params, tmp_path, "MP_PRICE_1.xlsx")
    applied = price_run(exchange_dsn, ftp_params, cfg)
    drop_price(ftp_params, tmp_path, "MP_PRICE_2.xlsx")                     # the same content again
    same = price_run(exchange_dsn, ftp_params, cfg)
    assert (applied.status, same.status) == ("applied", "unchanged")
    (tmp_path / "MP_PRICE_3.csv").write_text("это не таблица цен\n", encoding="utf-8")
    with FtpClient(ftp_params) as ftp:
        ftp.upload(tmp_path / "MP_PRICE_3.csv", "/1c/price/MP_PRICE_3.csv")
    with pytest.raises(ImportRefused, match="MP_PRICE_3.csv refused, prices untouched"):
        price_run(exchange_dsn, ftp_params, cfg)
    with psycopg.connect(exchange_dsn) as conn:           # the staging refuses every row from now on
        conn.execute("create function no_price() returns trigger language plpgsql as "
                     "$$ begin raise exception 'prices are read-only today'; end $$")
        conn.execute("create trigger no_price before insert on price_staging for each statement "
                     "execute function no_price()")
    drop_price(ftp_params, tmp_path, "MP_PRICE_4.xlsx", rows=[("P-1", 120, None, None, None)])
    for _ in range(2):
        with pytest.raises(psycopg.Error):
            price_run(exchange_dsn, ftp_params, cfg)
    with pytest.raises(ImportRefused, match="given up"):
        price_run(exchange_dsn, ftp_params, cfg)
    rows = ledger_rows(exchange_dsn)
    assert {n: s for n, (s, _) in rows.items()} == {"MP_PRICE_1.xlsx": "applied", "MP_PRICE_2.xlsx": "unchanged",
                                                    "MP_PRICE_3.csv": "refused", "MP_PRICE_4.xlsx": "failed"}
    assert rows["MP_PRICE_1.xlsx"][1] == applied.result_file and rows["MP_PRICE_2.xlsx"][1] == same.result_file
    for name, (_, remote) in rows.items():
        assert remote and posixpath.basename(remote).startswith(name + ".result-"), name
        assert result_on_ftp(ftp_params, tmp_path, remote)["summary"]["Файл"] == name
    refused = result_on_ftp(ftp_params, tmp_path, rows["MP_PRICE_3.csv"][1])["summary"]
    assert refused["Итог"].startswith("ОТКЛОНЁН") and refused["_title"].startswith("Файл MP_PRICE_3.csv отклонён")


def catalog_items(names: list[str]) -> list[dict]:
    return [dict(article=a, code=f"00-{i:08d}", name=f"Товар {a}", brand="Acme", model="M", ean=None, size="",
                 rrp=None) for i, a in enumerate(names, 1)]


def test_catalog_dry_run_result_files_refusal_and_archive_by_the_day_made(exchange_dsn, ftp_params, stock_cfg,
                                                                         work_dir, tmp_path):
    from datetime import datetime

    from mpsync.imports import catalog
    from tests.onec_files import write_catalog_xlsx

    def upload(name: str, articles: list[str]) -> None:
        path = write_catalog_xlsx(tmp_path / name, catalog_items(articles))
        with FtpClient(ftp_params) as ftp:
            ftp.upload(path, f"/1c/catalog/{name}")

    def run(**kw):
        found = dropfolder.new_stable_files(exchange_dsn, ftp_params, stock_cfg.drops["catalog"], 0)
        return catalog.run(exchange_dsn, ftp_params, found, stock_cfg, **kw)

    upload("nomenclature_1.xlsx", ARTICLES)
    dry = run(dry_run=True)
    assert dry.status == "dry run" and "dry-run" in dry.result_file and ledger_rows(exchange_dsn) == {}
    result = result_on_ftp(ftp_params, tmp_path, dry.result_file)
    assert "ПРОБНЫЙ ПРОГОН" in result["summary"] and {r[-1] for r in result["rows"]} == {"будет применено: новый товар"}
    assert result["summary"]["Строк с данными в файле (без заголовка)"] == len(ARTICLES)
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*) from product").fetchone()[0] == 0
    applied = run()
    assert applied.status == "applied" and applied.details["created"] == len(ARTICLES)
    with FtpClient(ftp_params) as ftp:                    # no time in the sheet: the day of its FTP time
        day = datetime.now(stock_cfg.onec_timezone).strftime("%Y-%m-%d")
        assert [e.name for e in ftp.list_files(f"/1c/processed/{day}")] == ["nomenclature_1.xlsx"]
    upload("nomenclature_2.xlsx", ARTICLES[:1])           # a full file switching off 80% of the catalog
    with pytest.raises(ImportRefused, match="nomenclature_2.xlsx refused, catalog untouched"):
        run()
    rows = ledger_rows(exchange_dsn)
    assert {n: s for n, (s, _) in rows.items()} == {"nomenclature_1.xlsx": "applied",
                                                    "nomenclature_2.xlsx": "refused"}
    assert rows["nomenclature_1.xlsx"][1] == applied.result_file
    for name, (_, remote) in rows.items():
        assert remote and posixpath.basename(remote).startswith(name + ".result-"), name
    refused = result_on_ftp(ftp_params, tmp_path, rows["nomenclature_2.xlsx"][1])["summary"]
    assert refused["Итог"].startswith("ОТКЛОНЁН")
    assert "сняла бы с продажи больше" in refused["_title"] and "nomenclature_2.xlsx отклонён" in refused["_title"]
