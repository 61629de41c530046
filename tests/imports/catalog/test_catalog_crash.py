"""The PostgreSQL server crashes (an immediate shutdown) inside a catalog fragment or inside its finish, then
the step is retried as Airflow retries it: the products, the ledger and the staff's result file equal a clean
run's (issue 22's promise, for the catalog now that it applies in fragments)."""

from __future__ import annotations

import posixpath

import psycopg
import pytest

from mpsync.ftp import FtpClient
from mpsync.imports import catalog
from mpsync.results import read_result_xlsx
from tests.imports.catalog.catalog_helpers import cfg, prepare_waiting, upload_sheet  # noqa: F401  (cfg: a fixture)
from tests.test_crash_recovery import comparable, crash_while, other_dsn, reset_ftp  # noqa: F401  (a fixture)

ARTICLES = [f"K-{i:02d}" for i in range(1, 10)]


def catalog_state(dsn: str) -> dict:
    with psycopg.connect(dsn) as conn:
        q = lambda sql: sorted(conn.execute(sql).fetchall())       # noqa: E731
        return {"products": q("select article, onec_code, name, brand, active from product"),
                "ledger": q("select name, status, items, changed, rejected, message from import_file"),
                "staging": q("select count(*) from catalog_staging")}


def one_exchange(dsn, ftp_params, cfg, tmp_path, name, articles, *, crash_in=None, pg_server=None) -> dict:
    upload_sheet(ftp_params, tmp_path, name, articles, suffix=f" ({name})")
    prepared = prepare_waiting(dsn, ftp_params, cfg)
    assert len(prepared.fragments) >= 3
    for i, f in enumerate(prepared.fragments):
        apply = lambda: catalog.apply_fragment(dsn, f, cfg)             # noqa: E731
        if crash_in == "fragment" and i == 1:
            assert isinstance(crash_while(pg_server, dsn, "product", "insert or update", apply),
                              psycopg.OperationalError)
        apply()
    finish = lambda: catalog.finish(dsn, ftp_params, prepared, cfg)       # noqa: E731
    if crash_in == "finish":
        assert isinstance(crash_while(pg_server, dsn, "sync", "insert or update", finish), psycopg.OperationalError)
    summary = finish()
    local = tmp_path / "got" / posixpath.basename(summary.result_file)
    with FtpClient(ftp_params) as ftp:
        ftp.download(summary.result_file, local)
    return {"summary": summary, "result": comparable(read_result_xlsx(local))}


@pytest.mark.parametrize("crash_in", ["fragment", "finish"])
def test_catalog_import_after_a_server_crash_equals_a_clean_run(pg_server, exchange_dsn, other_dsn, ftp_server,
                                                                ftp_params, cfg, work_dir, tmp_path, crash_in):
    runs = {}
    for dsn, crashing in ((other_dsn, False), (exchange_dsn, True)):
        reset_ftp(ftp_server)
        one_exchange(dsn, ftp_params, cfg, tmp_path, "nomenclature_1.xlsx", ARTICLES)
        # the second: renames every product and leaves one out of a full file (switched off in finish)
        end = one_exchange(dsn, ftp_params, cfg, tmp_path, "nomenclature_2.xlsx", ARTICLES[:-1],
                           crash_in=crash_in if crashing else None, pg_server=pg_server)
        runs[crashing] = (catalog_state(dsn), end["result"], end["summary"].changed)
    assert runs[True] == runs[False]
    assert runs[False][2] == len(ARTICLES) and runs[False][0]["staging"] == [(0,)]
