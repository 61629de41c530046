"""What one task writes and another reads, when tasks run on different workers (issue 21, docs/production.md
"What must be shared"). The stock import's kept last sheet is a per-worker cache: a worker without it (or with
an older one) parses in full and ends in the same database state. Feeds are published to one shared store that
the feed server serves, whichever worker published them."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import psycopg
import pytest

from mpsync import dropfolder
from mpsync.imports import stock
from mpsync.settings import load_settings
from tests.stock_helpers import add_products, drop, write_test_config

ARTICLES = [f"A-{i:03d}" for i in range(1, 41)]
_dbs = itertools.count()


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    path = write_test_config(tmp_path / "mpsync.yaml")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return load_settings(path)


def _fresh_db(pg_server, template: str) -> str:
    name = f"shared_state_{os.getpid()}_{next(_dbs)}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{template}"')
    return pg_server.dsn(name)


def _import(dsn, params, cfg, tmp_path, name, rows, work: Path, monkeypatch) -> dict:
    """One stock report through prepare, its fragments and finish, on a 'worker' whose work folder is `work`."""
    from tests.onec_files import write_stock_xlsx

    monkeypatch.setenv("MPSYNC_WORK_DIR", str(work))
    drop(params, tmp_path, name, write_stock_xlsx(tmp_path / name, rows).read_bytes())
    files = dropfolder.new_stable_files(dsn, params, cfg.drops["stock"], cfg.stable_seconds)
    prepared = stock.prepare(dsn, params, files, cfg)
    for fragment in prepared.fragments:
        stock.apply_fragment(dsn, fragment, cfg)
    stock.finish(dsn, params, prepared, cfg)
    return {"reparsed": prepared.details.get("reparsed")}


def _end_state(dsn: str) -> dict:
    """Everything an import leaves that a person or a later run reads (ids and times aside)."""
    with psycopg.connect(dsn) as conn:
        q = lambda sql: conn.execute(sql).fetchall()                         # noqa: E731
        return {
            "stock": q("select p.article, s.warehouse, s.quantity from stock s join product p using (product_id) "
                       "order by 1, 2"),
            "ledger": q("select name, status, rows_read, items, rejected, changed from import_file order by name"),
            "rejects": q("select f.name, r.row_no, r.column_name, r.article, r.reason from import_reject r "
                         "join import_file f using (import_file_id) order by 1, 2, 3"),
            "history": q("select p.article, h.warehouse, h.quantity, f.name from stock_history h "
                         "join product p using (product_id) join import_file f using (import_file_id) "
                         "order by 1, 2, 4"),
        }


def test_a_worker_without_the_kept_last_sheet_ends_in_the_same_state(pg_server, _template_db, ftp_server,
                                                                     ftp_params, cfg, tmp_path, monkeypatch):
    """The same three hourly reports, imported (1) all on one worker, which keeps the last sheet and parses
    only the changed rows, and (2) each on another worker: the second with an empty cache, the third with a
    cache from the first report (an older sheet). Same stock, ledger, rejected rows and history."""
    first = [(a, i, None, i % 3) for i, a in enumerate(ARTICLES, 1)] + [("NO-SUCH", 1, 1, 1)]
    second = list(first)
    second[4] = (second[4][0], 99, 1, 2)
    second[20] = (second[20][0], None, None, None)
    third = list(second)
    third[7] = (third[7][0], 0, 0, 7)
    third[30] = (third[30][0], 1000000000000, 1, 1)         # beyond numeric(14, 3): a rejected row
    reports = [("Ostatki_MP_20251219_1400.xlsx", first), ("Ostatki_MP_20251219_1500.xlsx", second),
               ("Ostatki_MP_20251219_1600.xlsx", third)]

    one = _fresh_db(pg_server, _template_db)
    add_products(one, ARTICLES)
    kept = tmp_path / "worker-a"
    reparsed = [_import(one, ftp_params, cfg, tmp_path, n, rows, kept, monkeypatch)["reparsed"] for n, rows in reports]
    assert reparsed[0] is None and reparsed[1] and reparsed[2]      # the cache was really used: only changed rows

    ftp_server.root.joinpath("1c").exists() and shutil.rmtree(ftp_server.root / "1c")
    many = _fresh_db(pg_server, _template_db)
    add_products(many, ARTICLES)
    a, b, c = tmp_path / "w1", tmp_path / "w2", tmp_path / "w3"
    assert _import(many, ftp_params, cfg, tmp_path, *reports[0], a, monkeypatch)["reparsed"] is None
    assert _import(many, ftp_params, cfg, tmp_path, *reports[1], b, monkeypatch)["reparsed"] is None   # no cache
    shutil.copytree(a, c)                                   # a cache one report behind
    assert _import(many, ftp_params, cfg, tmp_path, *reports[2], c, monkeypatch)["reparsed"]

    got, want = _end_state(many), _end_state(one)
    assert want["rejects"] and want["history"] and len(want["ledger"]) == 3
    assert got == want
