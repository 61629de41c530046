"""What the catalog now has like the other kinds (issue 18), on the real PostgreSQL and FTP: a CommerceML
exchange made before the catalog already applied is stale (recorded, not applied) and archived by the day it
was made, with its result file in the ledger; a backfill reads the archived exchanges' prices into history."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from mpsync import dropfolder
from mpsync.ftp import FtpClient
from mpsync.imports import catalog
from mpsync.imports.contracts import ImportRefused
from tests.commerceml_files import write_cml2
from tests.imports.catalog.test_catalog_import import GOODS, OFFERS, cfg, default_prices, products, upload  # noqa: F401
from tests.onec_files import write_catalog_xlsx

MADE_DAY = "2026-01-05"          # ДатаФормирования of the test exchanges: 2026-01-05T10:30 in 1C's zone


def run(dsn, params, cfg):
    return catalog.run(dsn, params, dropfolder.new_stable_files(dsn, params, cfg.drops["catalog"], 0), cfg)


def test_an_exchange_made_before_the_applied_catalog_is_stale_and_archived_by_its_day(exchange_dsn, ftp_params,
                                                                                      cfg, work_dir, tmp_path):
    items = [dict(article=g.article, code=None, name=f"Из таблицы {g.article}", brand="Acme", model="M", ean=None,
                  size="", rrp=None) for g in GOODS]
    upload(ftp_params, [write_catalog_xlsx(tmp_path / "nomenclature.xlsx", items)])     # made now (FTP time)
    assert run(exchange_dsn, ftp_params, cfg).status == "applied"
    before = products(exchange_dsn)
    files = write_cml2(tmp_path / "x", GOODS, OFFERS)
    upload(ftp_params, files)
    stale = run(exchange_dsn, ftp_params, cfg)
    assert stale.status == "stale" and "older than the already applied nomenclature.xlsx" in stale.message
    assert products(exchange_dsn) == before and default_prices(exchange_dsn) == {}
    with FtpClient(ftp_params) as ftp:
        assert ftp.list_files("/1c/catalog") == []
        assert sorted(e.name for e in ftp.list_files(f"/1c/processed/{MADE_DAY}")) == sorted(p.name for p in files)
    with psycopg.connect(exchange_dsn) as conn:
        rows = conn.execute("select name, status, result_file from import_file where name <> 'nomenclature.xlsx'"
                            ).fetchall()
    assert {r[0] for r in rows} == {p.name for p in files}
    assert {r[2] for r in rows} == {stale.result_file} and all(r[1] == "stale" for r in rows)


def test_backfill_reads_the_archived_exchanges_prices_into_history(exchange_dsn, ftp_params, cfg, work_dir,
                                                                   tmp_path):
    upload(ftp_params, write_cml2(tmp_path / "x", GOODS, OFFERS))
    assert run(exchange_dsn, ftp_params, cfg).details["prices_changed"] == len(GOODS)
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("delete from price_history")              # history lost (say, an old backup restored)
    current = default_prices(exchange_dsn)
    start = datetime(2026, 1, 5, 0, 0, tzinfo=timezone.utc)
    summary = catalog.reprocess_archive(exchange_dsn, ftp_params, cfg, start, start + timedelta(days=1))
    assert summary.history_rows == len(GOODS)
    assert default_prices(exchange_dsn) == current              # current prices untouched
    with psycopg.connect(exchange_dsn) as conn:
        at = conn.execute("select price from price_as_of('ART-2', '2026-01-05 12:00+03') "
                          "where price_list = 'default'").fetchone()
    assert at[0] == current["ART-2"]
    later = catalog.reprocess_archive(exchange_dsn, ftp_params, cfg, start + timedelta(days=1),
                                      start + timedelta(days=2))
    assert later.history_rows == 0 and later.files == ()


def test_an_exchange_that_keeps_failing_is_given_up_with_its_result_file(exchange_dsn, ftp_params, cfg, work_dir,
                                                                         tmp_path):
    with psycopg.connect(exchange_dsn) as conn:          # the staging refuses every row, on every attempt
        conn.execute("create function no_catalog() returns trigger language plpgsql as "
                     "$$ begin raise exception 'the catalog is read-only today'; end $$")
        conn.execute("create trigger no_catalog before insert on catalog_staging for each statement "
                     "execute function no_catalog()")
    files = write_cml2(tmp_path / "x", GOODS, OFFERS)
    upload(ftp_params, files)
    for _ in range(2):
        with pytest.raises(psycopg.Error):
            run(exchange_dsn, ftp_params, cfg)
    with pytest.raises(ImportRefused, match="given up"):
        run(exchange_dsn, ftp_params, cfg)
    with FtpClient(ftp_params) as ftp:
        assert ftp.list_files("/1c/catalog") == []             # every file of the exchange out of the drop
    with psycopg.connect(exchange_dsn) as conn:
        main = conn.execute("select status, result_file from import_file where name = %s",
                            (files[0].name,)).fetchone()
    assert main[0] == "failed" and main[1].startswith("/1c/results/" + files[0].name + ".result-")
    assert products(exchange_dsn) == {}
