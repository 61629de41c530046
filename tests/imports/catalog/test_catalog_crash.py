"""The PostgreSQL server crashes (an immediate shutdown) inside a catalog fragment or inside its finish, then
the step is retried as Airflow retries it: the products, the ledger and the staff's result file equal a clean
run's (issue 22's promise, for the catalog now that it applies in fragments)."""

from __future__ import annotations

import posixpath

import psycopg
import pytest
import yaml

from mpsync import dropfolder
from mpsync.ftp import FtpClient
from mpsync.imports import catalog
from mpsync.results import read_result_xlsx
from mpsync.settings import DEFAULT_CONFIG, settings
from tests.onec_files import write_catalog_xlsx
from tests.test_crash_recovery import comparable, crash_while, other_dsn, reset_ftp  # noqa: F401  (a fixture)

ARTICLES = [f"K-{i:02d}" for i in range(1, 10)]


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["onec"].update({"stable_seconds": 0})
    raw["catalog"].update({"min_fragment_rows": 3, "max_deactivate_share": 0.5})
    (tmp_path / "mpsync.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(tmp_path / "mpsync.yaml"))
    return settings()


def catalog_state(dsn: str) -> dict:
    with psycopg.connect(dsn) as conn:
        q = lambda sql: sorted(conn.execute(sql).fetchall())       # noqa: E731
        return {"products": q("select article, onec_code, name, brand, active from product"),
                "ledger": q("select name, status, items, changed, rejected, message from import_file"),
                "staging": q("select count(*) from catalog_staging")}


def one_exchange(dsn, ftp_params, cfg, tmp_path, name, articles, *, crash_in=None, pg_server=None) -> dict:
    items = [dict(article=a, code=f"00-{i:08d}", name=f"Товар {a} ({name})", brand="Acme", model="M", ean=None,
                  size="", rrp=None) for i, a in enumerate(articles, 1)]
    with FtpClient(ftp_params) as ftp:
        ftp.upload(write_catalog_xlsx(tmp_path / name, items), f"/1c/catalog/{name}")
    prepared = catalog.prepare(dsn, ftp_params, dropfolder.new_stable_files(dsn, ftp_params, cfg.drops["catalog"], 0),
                               cfg)
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
