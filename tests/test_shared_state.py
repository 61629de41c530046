"""What one task writes and another reads, when tasks run on different workers (issue 21, docs/production.md
"What must be shared"). The stock import's kept last sheet is a per-worker cache: a worker without it (or with
an older one) parses in full and ends in the same database state. Feeds are published to one shared store that
the feed server serves, whichever worker published them."""

from __future__ import annotations

import itertools
import os
import shutil
from datetime import datetime, timedelta, timezone
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


# ---- feeds: one shared store, whichever worker publishes (mpsync.feeds.store) --------------------------------

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)


def _worker_feeds(folder: Path, store: Path):
    """The feeds configuration a worker with its own feeds folder and the shared store reads."""
    from mpsync.feeds.config import parse_feeds_config
    from mpsync.settings import settings
    from tests.feeds_data import FEEDS_SECTION

    return parse_feeds_config(FEEDS_SECTION, settings(), env={"MPSYNC_FEEDS_DIR": str(folder),
                                                              "MPSYNC_FEEDS_STORE": f"file://{store}"})


def _served(server, name: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    host, port = server.server_address[:2]
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/{name}", timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_a_feed_published_on_any_worker_is_what_the_feeds_server_serves(exchange_dsn, tmp_path):
    from mpsync.feeds.publish import publish_feed, published_feeds
    from mpsync.feeds.serve import serve_store
    from tests.feeds_data import insert_products

    insert_products(exchange_dsn)
    store = tmp_path / "store"
    a, b = _worker_feeds(tmp_path / "worker-a", store), _worker_feeds(tmp_path / "worker-b", store)
    assert a.store is not None and a.store.local_root() == store

    first = publish_feed(exchange_dsn, "ozon", config=a, now=NOW)
    assert first.published and (store / "ozon.xml").read_bytes() == (tmp_path / "worker-a" / "ozon.xml").read_bytes()
    # Served from the store: its folder as is (direct), or read through ObjectStoragePath (any other store).
    for direct in (True, False):
        server = serve_store(a.store, direct=direct)
        try:
            assert _served(server, "ozon.xml") == (200, (store / "ozon.xml").read_bytes())
            assert _served(server, ".ozon.xml.json")[0] == 404           # the record is not a feed
            assert b"ozon.xml" in _served(server, "")[1]
        finally:
            server.shutdown()
            server.server_close()

    # Worker B never published: it decides from the store's record, so the same data is not republished.
    again = publish_feed(exchange_dsn, "ozon", config=b, now=NOW + timedelta(hours=1))
    assert (again.changed, again.published, again.sha256) == (False, False, first.sha256)
    assert (tmp_path / "worker-b" / "ozon.xml").read_bytes() == (store / "ozon.xml").read_bytes()

    # B publishes a change; A, whose copy is now old, takes B's publication as the one to compare with.
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("update stock set quantity = 42 where product_id = (select product_id from product"
                     " where article = 'A-1')")
    changed = publish_feed(exchange_dsn, "ozon", config=b, now=NOW + timedelta(hours=2))
    assert changed.published and b'instock="42"' in (store / "ozon.xml").read_bytes()
    assert b'instock="42"' not in (tmp_path / "worker-a" / "ozon.xml").read_bytes()
    third = publish_feed(exchange_dsn, "ozon", config=a, now=NOW + timedelta(hours=3))
    assert (third.changed, third.published, third.sha256) == (False, False, changed.sha256)
    assert (tmp_path / "worker-a" / "ozon.xml").read_bytes() == (store / "ozon.xml").read_bytes()
    # What operators see (the Exchange page) is the store's record, from any worker.
    shown = published_feeds(_worker_feeds(tmp_path / "worker-c", store))
    assert shown["ozon"]["sha256"] == changed.sha256 and shown["ozon"]["size"] == len((store / "ozon.xml").read_bytes())
    assert shown["yandex"] == {"file": "yandex.xml", "exists": False}


def test_a_worker_copy_is_made_current_times_included_and_a_stale_leftover_never_counts(exchange_dsn, tmp_path):
    """The freshness check reads a worker's copy: pulled, it has the publication's time; a leftover file of a
    feed the store does not have is removed (it must not pass for published)."""
    import json

    from mpsync.feeds.publish import publish_feed

    from tests.feeds_data import insert_products

    insert_products(exchange_dsn)
    store = tmp_path / "store"
    publish_feed(exchange_dsn, "ozon", config=_worker_feeds(tmp_path / "worker-a", store), now=NOW)
    c = _worker_feeds(tmp_path / "worker-c", store)
    (c.folder).mkdir(parents=True)
    (c.folder / "yandex.xml").write_bytes(b"<old/>")
    c.store.pull(c.folder, "ozon.xml")
    c.store.pull(c.folder, "yandex.xml")
    record = json.loads((store / ".ozon.xml.json").read_text(encoding="utf-8"))
    assert (c.folder / "ozon.xml").read_bytes() == (store / "ozon.xml").read_bytes()
    assert abs((c.folder / "ozon.xml").stat().st_mtime - record["published_epoch"]) < 1e-3
    assert not (c.folder / "yandex.xml").exists()
