"""The PostgreSQL server itself crashes (an immediate shutdown: what a power cut or an OOM kill does) inside an
import, then the steps are retried as Airflow retries them: the end state equals a clean run's, cell by cell,
or the run fails and says so (issue 22). Never a green run with wrong data.

Each scenario runs the same files twice: once cleanly into one database, once with the crash into another, and
compares stock (or prices), their history, the ledger and the staff's result file. A real crash is proven by
what it does to unlogged tables: PostgreSQL empties them in crash recovery (a clean restart keeps them).
"""

from __future__ import annotations

import itertools
import os
import posixpath
import threading
import time
from pathlib import Path

import psycopg
import pytest

from mpsync import dropfolder
from mpsync.imports import price as price_import
from mpsync.imports import stock as stock_import
from mpsync.imports.fragments import StagingLost
from mpsync.ftp import FtpClient
from mpsync.results import read_result_xlsx
from mpsync.settings import load_settings
from tests.stock_helpers import add_products, drop, stock_csv, write_test_config

ARTICLES = [f"C-{i:03d}" for i in range(1, 31)]
FIRST = [(a, i, 2 * i, 0) for i, a in enumerate(ARTICLES, 1)]
SECOND = [(a, q1 + (1 if i % 4 == 0 else 0), q2, 5 if i % 7 == 0 else q3) for i, (a, q1, q2, q3) in enumerate(FIRST)]
_dbs = itertools.count()


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    path = write_test_config(tmp_path / "mpsync.yaml")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return load_settings(path)


@pytest.fixture
def other_dsn(pg_server, _template_db):
    """A second fresh exchange database: the clean run goes there."""
    name = f"exchange_clean{os.getpid()}_{next(_dbs)}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{_template_db}"')
    return pg_server.dsn(name)


# ---------------------------------------------------------------- the crash
def crash_while(pg_server, dsn: str, table: str, event: str, call) -> BaseException | None:
    """Run call(); when it is inside a statement on `table` (a trigger sleeps there, in its transaction), stop
    the server with an immediate shutdown and start it again. Returns what call() raised."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create or replace function crash_point() returns trigger language plpgsql as "
                     "$$ begin perform pg_sleep(60); return null; end $$")
        conn.execute(f"create trigger crash_point after {event} on {table} "
                     "for each statement execute function crash_point()")
    raised: list[BaseException] = []

    def run():
        try:
            call()
        except BaseException as exc:      # what the task would see
            raised.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 30
    with psycopg.connect(dsn, autocommit=True) as watch:
        while not watch.execute("select 1 from pg_stat_activity where wait_event = 'PgSleep' "
                                "and datname = current_database()").fetchone():
            assert time.monotonic() < deadline, "the call never reached the crash point"
            time.sleep(0.02)
    crash(pg_server)
    worker.join(60)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"drop trigger crash_point on {table}")
    return raised[0] if raised else None


def crash(pg_server) -> None:
    pg_server.stop(mode="immediate")
    pg_server.start()


# ---------------------------------------------------------------- stock
def stock_state(dsn: str) -> dict:
    with psycopg.connect(dsn) as conn:
        q = lambda sql: sorted(conn.execute(sql).fetchall())       # noqa: E731
        return {
            "stock": q("select p.article, s.warehouse, s.quantity, s.valid_from from stock s join product p using (product_id)"),
            "history": q("select p.article, h.warehouse, h.quantity, h.valid_from from stock_history h "
                         "join product p using (product_id)"),
            "ledger": q("select name, status, items, changed, rejected from import_file"),
            "hashes": q("select f.name, h.complete from stock_file_hashes h join import_file f using (import_file_id)"),
            "staging": q("select count(*) from stock_staging"),
        }


def result_of(ftp_params, tmp_path: Path, summary) -> dict:
    local = tmp_path / "got" / posixpath.basename(summary.result_file)
    with FtpClient(ftp_params) as ftp:
        ftp.download(summary.result_file, local)
    return comparable(read_result_xlsx(local))


def comparable(result: dict) -> dict:
    for key in list(result["summary"]):                                     # when, not what
        if key == "_title" or str(key).startswith(("Обработан (", "Processed at (")):
            result["summary"].pop(key)
    return result


def reset_ftp(ftp_server) -> None:
    import shutil

    for child in ftp_server.root.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def stock_report(dsn, ftp_params, cfg, tmp_path, name, rows, made, *, crash_in=None, pg_server=None):
    """One stock report through prepare, fragments and finish as the DAG runs them; `crash_in` names where
    the server crashes once ("prepare", "fragment", "after_commit", "finish"), then the step is retried."""
    drop(ftp_params, tmp_path, name, stock_csv(rows, made=made))
    files = dropfolder.new_stable_files(dsn, ftp_params, cfg.drops["stock"], 0)
    prepare = lambda: stock_import.prepare(dsn, ftp_params, files, cfg)        # noqa: E731
    if crash_in == "prepare":
        assert isinstance(crash_while(pg_server, dsn, "stock_staging", "insert", prepare), psycopg.OperationalError)
    prepared = prepare()
    fragments = prepared.fragments
    assert len(fragments) >= 3
    for i, f in enumerate(fragments):
        apply = lambda: stock_import.apply_fragment(dsn, f, cfg)     # noqa: E731
        if crash_in == "fragment" and i == 1:
            assert isinstance(crash_while(pg_server, dsn, "stock", "update or insert", apply),
                              psycopg.OperationalError)
            assert unlogged_emptied(dsn)
        elif crash_in == "after_commit" and i == 1:
            apply()                        # the task succeeded: Airflow does not run it again
            crash(pg_server)
            assert unlogged_emptied(dsn)
            continue
        apply()
    finish = lambda: stock_import.finish(dsn, ftp_params, prepared, cfg)          # noqa: E731
    if crash_in == "finish":
        assert isinstance(crash_while(pg_server, dsn, "sync", "insert or update", finish), psycopg.OperationalError)
    return finish()


def unlogged_emptied(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("select count(*) from stock_file_row").fetchone()[0] == 0


@pytest.mark.parametrize("crash_in", ["prepare", "fragment", "after_commit", "finish"])
@pytest.mark.parametrize("report", ["first", "one_percent"])
def test_stock_import_after_a_server_crash_equals_a_clean_run(pg_server, exchange_dsn, other_dsn, ftp_server,
                                                              ftp_params, cfg, work_dir, tmp_path, report, crash_in):
    runs = {}
    for dsn, crashing in ((other_dsn, False), (exchange_dsn, True)):
        reset_ftp(ftp_server)
        add_products(dsn, ARTICLES)
        summaries = []
        if report == "one_percent":
            summaries.append(stock_report(dsn, ftp_params, cfg, tmp_path, "Ostatki_MP_1.csv", FIRST,
                                          "01.12.2026 09:00"))
        rows = SECOND if report == "one_percent" else FIRST
        summaries.append(stock_report(dsn, ftp_params, cfg, tmp_path, "Ostatki_MP_2.csv", rows, "01.12.2026 10:00",
                                      crash_in=crash_in if crashing else None, pg_server=pg_server))
        runs[crashing] = (stock_state(dsn), result_of(ftp_params, tmp_path, summaries[-1]), summaries[-1])
    clean, crashed = runs[False], runs[True]
    assert crashed[0] == clean[0]                                   # stock, history, ledger: cell by cell
    assert crashed[1] == clean[1]                                   # the staff's result file
    assert crashed[2].changed == clean[2].changed > 0
    assert clean[0]["staging"] == [(0,)]


def test_the_next_report_heals_a_report_whose_run_failed_after_a_crash(pg_server, exchange_dsn, ftp_params, cfg,
                                                                        work_dir, tmp_path):
    """Report 2 crashes mid-fragment and its run is never retried (the run failed). Its row hashes were never
    complete and the crash emptied the remembered rows, so report 3 compares every row: stock ends exactly
    as report 3 says, with no row skipped as "equal to the last report"."""
    add_products(exchange_dsn, ARTICLES)
    stock_report(exchange_dsn, ftp_params, cfg, tmp_path, "Ostatki_MP_1.csv", FIRST, "01.12.2026 09:00")
    drop(ftp_params, tmp_path, "Ostatki_MP_2.csv", stock_csv(SECOND, made="01.12.2026 10:00"))
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], 0)
    prepared = stock_import.prepare(exchange_dsn, ftp_params, files, cfg)
    stock_import.apply_fragment(exchange_dsn, prepared.fragments[0], cfg)
    err = crash_while(pg_server, exchange_dsn, "stock", "update or insert",
                      lambda: stock_import.apply_fragment(exchange_dsn, prepared.fragments[1], cfg))
    assert isinstance(err, psycopg.OperationalError)
    third = [(a, q1, q2 + 3, q3) for a, q1, q2, q3 in SECOND]
    stock_report(exchange_dsn, ftp_params, cfg, tmp_path, "Ostatki_MP_3.csv", third, "01.12.2026 11:00")
    with psycopg.connect(exchange_dsn) as conn:
        got = {(a, w): float(q) for a, w, q in conn.execute(
            "select p.article, s.warehouse, s.quantity from stock s join product p using (product_id)")}
    want = {(r[0], w): float(q) for r in third for w, q in zip(("sber", "ozon", "yandex"), r[1:]) if q}
    assert got == want


def test_a_fragment_whose_staging_is_gone_writes_nothing_and_fails_loudly(exchange_dsn, ftp_params, cfg,
                                                                          work_dir, tmp_path):
    """Staged rows deleted behind the import's back: the fragment raises StagingLost and writes nothing
    (before issue 22 it recorded an empty success); clearing prepare stages the file again and the import
    completes as a clean run would."""
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv(FIRST, made="01.12.2026 09:00"))
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], 0)
    prepared = stock_import.prepare(exchange_dsn, ftp_params, files, cfg)
    first = prepared.fragments[0]
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("delete from stock_staging where seq = %s", (first.first_seq + 1,))
    with pytest.raises(StagingLost, match="clear the prepare task"):
        stock_import.apply_fragment(exchange_dsn, first, cfg)
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*) from stock").fetchone()[0] == 0
        # all rows there again, but one of them other than prepare staged it: the digest tells
        conn.execute("insert into stock_staging (import_file_id, row_no, seq, product_id, quantities) "
                     "select import_file_id, row_no + 1, %s, product_id + 1, quantities from stock_staging "
                     "where seq = %s", (first.first_seq + 1, first.first_seq))
    with pytest.raises(StagingLost, match="differ from what prepare staged"):
        stock_import.apply_fragment(exchange_dsn, first, cfg)
    prepared = stock_import.prepare(exchange_dsn, ftp_params, files, cfg)     # the operator clears prepare
    for f in prepared.fragments:
        stock_import.apply_fragment(exchange_dsn, f, cfg)
    summary = stock_import.finish(exchange_dsn, ftp_params, prepared, cfg)
    assert summary.status == "applied"
    with psycopg.connect(exchange_dsn) as conn:
        got = {(a, w): float(q) for a, w, q in conn.execute(
            "select p.article, s.warehouse, s.quantity from stock s join product p using (product_id)")}
    assert got == {(r[0], w): float(q) for r in FIRST for w, q in zip(("sber", "ozon", "yandex"), r[1:]) if q}


def test_finish_applies_a_planned_fragment_whose_record_was_lost(exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    """What a lost asynchronous commit leaves: a planned fragment without a record (and without its rows).
    finish applies it from the staging before it marks the file applied."""
    add_products(exchange_dsn, ARTICLES)
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv(FIRST, made="01.12.2026 09:00"))
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], 0)
    prepared = stock_import.prepare(exchange_dsn, ftp_params, files, cfg)
    for f in prepared.fragments[1:]:                       # the first one's commit "lost"
        stock_import.apply_fragment(exchange_dsn, f, cfg)
    summary = stock_import.finish(exchange_dsn, ftp_params, prepared, cfg)
    assert summary.status == "applied" and summary.changed == sum(1 for r in FIRST for q in r[1:] if q)


# ---------------------------------------------------------------- price
def price_state(dsn: str) -> dict:
    with psycopg.connect(dsn) as conn:
        q = lambda sql: sorted(conn.execute(sql).fetchall())       # noqa: E731
        return {"price": q("select p.article, r.price_list, r.price, r.old_price from price r "
                           "join product p using (product_id)"),
                "ledger": q("select name, status, items, changed, rejected, message from import_file"),
                "rejects": q("select row_no, article, reason from import_reject"),
                "staging": q("select count(*) from price_staging")}


PRICE_ARTICLES = [f"P-{i}" for i in range(1, 13)]


def seed_prices(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        for i, a in enumerate(PRICE_ARTICLES, 1):
            pid = conn.execute("insert into product (article, name) values (%s, %s) returning product_id",
                               (a, f"Товар {a}")).fetchone()[0]
            if i % 2:
                conn.execute("insert into price (product_id, price) values (%s, %s)", (pid, 100 * i))


@pytest.mark.parametrize("crash_in", ["prepare", "fragment", "after_commit", "finish"])
def test_price_import_after_a_server_crash_equals_a_clean_run(pg_server, exchange_dsn, other_dsn, ftp_server,
                                                              ftp_params, tmp_path, work_dir, monkeypatch, crash_in):
    from tests.onec_files import write_price_xlsx
    from tests.test_price_import import OVERRIDES

    import yaml

    from mpsync.settings import DEFAULT_CONFIG, settings

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["onec"].update({"stable_seconds": 0})
    raw["prices"].update({"min_fragment_rows": 3,
                          "overrides": {"ozon": {"price": OVERRIDES["ozon"][0], "old_price": OVERRIDES["ozon"][1]}}})
    (tmp_path / "mpsync.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(tmp_path / "mpsync.yaml"))
    cfg = settings()
    rows = [(a, 100 * i + 10, 200 * i if i % 3 == 0 else None, 90 * i if i % 4 == 0 else None, None)
            for i, a in enumerate(PRICE_ARTICLES, 1)]
    rows[4] = (rows[4][0], 1, None, None, None)                  # held: -98%
    runs = {}
    for dsn, crashing in ((other_dsn, False), (exchange_dsn, True)):
        reset_ftp(ftp_server)
        seed_prices(dsn)
        local = write_price_xlsx(tmp_path / "MP_PRICE.xlsx", rows, overrides=OVERRIDES)
        with FtpClient(ftp_params) as ftp:
            ftp.upload(local, "/1c/price/MP_PRICE.xlsx")
        files = [f.to_dict() for f in price_import.waiting_files(ftp_params, cfg, dsn)]
        prepare = lambda: price_import.prepare(dsn, ftp_params, files, cfg)        # noqa: E731
        if crashing and crash_in == "prepare":
            assert isinstance(crash_while(pg_server, dsn, "price_staging", "insert", prepare),
                              psycopg.OperationalError)
        prepared = prepare()
        assert len(prepared.fragments) >= 3
        for i, f in enumerate(prepared.fragments):
            apply = lambda: price_import.apply_fragment(dsn, f, cfg)      # noqa: E731
            if crashing and crash_in == "fragment" and i == 1:
                assert isinstance(crash_while(pg_server, dsn, "price", "insert or update", apply),
                                  psycopg.OperationalError)
            elif crashing and crash_in == "after_commit" and i == 1:
                apply()                    # the task succeeded: Airflow does not run it again
                crash(pg_server)
                continue
            apply()
        finish = lambda: price_import.finish(dsn, ftp_params, prepared, cfg)     # noqa: E731
        if crashing and crash_in == "finish":
            assert isinstance(crash_while(pg_server, dsn, "sync", "insert or update", finish),
                              psycopg.OperationalError)
        summary = finish()
        local = tmp_path / "got" / posixpath.basename(summary.result_file)
        with FtpClient(ftp_params) as ftp:
            ftp.download(summary.result_file, local)
        runs[crashing] = (price_state(dsn), comparable(read_result_xlsx(local)), summary.changed)
    assert runs[True] == runs[False]
    assert runs[False][2] > 0 and runs[False][0]["staging"] == [(0,)]


# ---------------------------------------------------------------- the outbox push
def test_push_after_a_server_crash_between_the_answer_and_the_ack_equals_a_clean_run(pg_server, exchange_dsn,
                                                                                      other_dsn):
    """The website accepted a batch, then the database crashed before the acknowledgment: nothing is marked
    sent, the claims expire, and the next run sends those objects again (the receiver takes a value twice,
    harmlessly); the receiver and the sync table end as after a clean run."""
    from mpsync.simulators.push_site import start_site_simulator
    from tests.test_sync_push import make_cfg, rows, run, seed

    cfg = make_cfg(claim_lease_seconds=1)
    ends = {}
    for dsn, crashing in ((other_dsn, False), (exchange_dsn, True)):
        seed(dsn, 12)
        with start_site_simulator() as site:
            crashed, restarted = [], threading.Event()

            def crash_after_accepting(keys):
                if crashing and not crashed:
                    crashed.append(keys)
                    crash(pg_server)          # the receiver has the batch; the answer goes out after this
                    restarted.set()

            site.on_request = crash_after_accepting
            first = None
            try:
                first = run(dsn, cfg, "site", site)
            except psycopg.OperationalError:
                assert crashing
                # the push saw its connection drop while the receiver's thread still restarts the server
                assert restarted.wait(120), "the server did not come back"
            if crashing:
                assert first is None and crashed
                assert all(r[0] is None for r in rows(dsn, "site").values())    # nothing acknowledged
                time.sleep(1.2)                                                 # the claims' lease ends
                again = run(dsn, cfg, "site", site)
                assert again.acknowledged == 12
            state = {k: {f: v for f, v in item.items() if f != "updated"} for k, item in site.state.items()}
            sync = rows(dsn, "site")
        assert all(r[0] == r[1] and r[2:] == (0, False, None, None) for r in sync.values()), sync
        ends[crashing] = (state, sorted(sync))
    assert ends[True] == ends[False] and len(ends[False][0]) == 12
