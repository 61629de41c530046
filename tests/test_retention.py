"""Data that stops growing (issue 21): day partitions of the history, retention by DROP, as_of within it,
the log tables and the FTP trimmed. On the real PostgreSQL and the real FTP server."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from mpsync import retention
from mpsync.settings import ConfigError, load_settings
from tests.stock_helpers import add_products, write_test_config

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def _partitions(conn, table: str) -> dict[str, int]:
    """{partition: rows} of a partitioned table."""
    names = [r[0] for r in conn.execute("select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
                                        " where i.inhparent = %s::regclass", (table,))]
    return {n: conn.execute(f'select count(*) from "{n}"').fetchone()[0] for n in names}


def _cell(conn, article: str, quantity: float, valid_from: datetime) -> int:
    pid = conn.execute("select product_id from product where article = %s", (article,)).fetchone()[0]
    conn.execute("insert into stock (product_id, warehouse, quantity, valid_from) values (%s, 'ozon', %s, %s)",
                 (pid, quantity, valid_from))
    return pid


def _replaced(conn, pid: int, quantity: float, valid_from: datetime, replaced_at: datetime) -> None:
    """What the trigger writes when a value is replaced, at a chosen moment (tests cannot wait days)."""
    conn.execute("insert into stock_history (product_id, warehouse, quantity, valid_from, recorded_at)"
                 " values (%s, 'ozon', %s, %s, %s)", (pid, quantity, valid_from, replaced_at))


def _as_of(conn, article: str, at: datetime):
    row = conn.execute("select quantity from stock_as_of(%s, %s) where warehouse = 'ozon'", (article, at)).fetchone()
    return None if row is None else float(row[0])


def test_the_history_is_partitioned_by_day_and_a_replaced_value_lands_in_todays_partition(exchange_dsn):
    add_products(exchange_dsn, ["A-1"])
    with psycopg.connect(exchange_dsn) as conn:
        pid = _cell(conn, "A-1", 5, _days_ago(1))
        conn.execute("update stock set quantity = 7 where product_id = %s", (pid,))     # the trigger's path
        parts = _partitions(conn, "stock_history")
    today = f"stock_history_{datetime.now(timezone.utc):%Y%m%d}"
    # the migration made today's partition and the week's ahead
    assert parts[today] == 1 and parts["stock_history_default"] == 0, parts
    assert len(parts) >= 1 + 8


def test_a_day_without_partition_goes_to_the_default_and_is_moved_out_when_its_day_is_made(exchange_dsn):
    add_products(exchange_dsn, ["A-1"])
    later = NOW + timedelta(days=30)                   # past the partitions made ahead: a maintenance run missed
    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        pid = _cell(conn, "A-1", 5, _days_ago(1))
        _replaced(conn, pid, 4, _days_ago(2), later)
        assert _partitions(conn, "stock_history")["stock_history_default"] == 1
        made = retention.ensure_partitions(conn, later.date() - timedelta(days=1), ahead=2)
        parts = _partitions(conn, "stock_history")
    assert made == 2 * 3                               # three days, both history tables
    assert parts["stock_history_default"] == 0 and parts[f"stock_history_{later:%Y%m%d}"] == 1


def test_retention_drops_whole_days_and_as_of_stays_exact_inside_it_and_refuses_before(exchange_dsn):
    """A value that became true long before the horizon but was replaced after it is kept: the history is
    partitioned by when a value ENDED, so every answer inside the retention is the one it was."""
    add_products(exchange_dsn, ["OLD", "RECENT"])
    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        retention.ensure_partitions(conn, _days_ago(200).date(), ahead=210)
        old = _cell(conn, "OLD", 9, _days_ago(5))
        _replaced(conn, old, 2, _days_ago(150), _days_ago(120))     # ended 120 days ago: goes
        _replaced(conn, old, 3, _days_ago(120), _days_ago(5))       # true from 120 to 5 days ago: stays
        recent = _cell(conn, "RECENT", 1, _days_ago(1))
        _replaced(conn, recent, 6, _days_ago(30), _days_ago(1))
        before = {"OLD": _as_of(conn, "OLD", _days_ago(50)), "RECENT": _as_of(conn, "RECENT", _days_ago(10))}

        dropped = retention.drop_history(conn, retention.horizon(NOW, 90))
        assert dropped >= 2 * 100                      # every day partition from 200 to ~91 days ago, both tables
        rows = conn.execute("select quantity from stock_history order by quantity").fetchall()
        assert [float(r[0]) for r in rows] == [3, 6]
        assert {"OLD": _as_of(conn, "OLD", _days_ago(50)), "RECENT": _as_of(conn, "RECENT", _days_ago(10))} \
            == before == {"OLD": 3, "RECENT": 6}
        assert _as_of(conn, "OLD", _days_ago(1)) == 9
        kept = retention.kept_from(conn, "stock_history")
        assert kept == retention.horizon(NOW, 90)
        with pytest.raises(psycopg.errors.DataException, match="stock_history before .* is not kept"):
            conn.execute("select * from stock_as_of('OLD', %s)", (_days_ago(130),))
        with pytest.raises(psycopg.errors.DataException, match="price_history before .* is not kept"):
            conn.execute("select * from price_as_of('OLD', %s)", (_days_ago(130),))
        # a second pass drops nothing more and moves the horizon nowhere back
        assert retention.drop_history(conn, retention.horizon(NOW, 90)) == 0
        retention.drop_history(conn, retention.horizon(NOW, 200))
        assert retention.kept_from(conn, "stock_history") == kept


def test_the_log_tables_lose_only_what_is_older_than_the_horizon(exchange_dsn):
    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        files = {}
        for label, finished in (("old", _days_ago(100)), ("new", _days_ago(3)), ("running", None)):
            files[label] = conn.execute(
                "insert into import_file (kind, ftp_path, name, size, status, finished_at)"
                " values ('stock', %s, %s, 1, 'applied', %s) returning import_file_id",
                (f"/1c/stock/{label}.csv", f"{label}.csv", finished)).fetchone()[0]
            conn.execute("insert into import_reject (import_file_id, row_no, reason) values (%s, 7, 'x')",
                         (files[label],))
        for when in (_days_ago(100), _days_ago(3)):
            conn.execute("insert into order_sync_window (marketplace, account, mode, dimension, orders, committed_at)"
                         " values ('ozon', 'main', 'live', 'modified', 1, %s)", (when,))
            conn.execute("insert into onec_exchange_log (at, mode, outcome) values (%s, 'query', 'ok')", (when,))
            conn.execute("insert into order_webhook_inbox (marketplace, account, body, processed_at)"
                         " values ('megamarket', 'main', '{}', %s)", (when,))
        conn.execute("insert into order_webhook_inbox (marketplace, account, body, received_at)"
                     " values ('megamarket', 'main', '{}', %s)", (_days_ago(300),))     # never processed: kept
        for when in (_days_ago(100), _days_ago(3)):     # notifications of an account that no longer syncs
            conn.execute("insert into order_webhook_inbox (marketplace, account, body, received_at)"
                         " values ('yandex', 'removed', '{}', %s)", (when,))

        deleted = retention.trim_tables(conn, retention.horizon(NOW, 90))
        left = conn.execute("select import_file_id from import_reject").fetchall()
        ledger = conn.execute("select count(*) from import_file").fetchone()[0]
        inbox = conn.execute("select count(*) from order_webhook_inbox").fetchone()[0]
    assert deleted == {"import_reject": 1, "order_sync_window": 1, "order_webhook_inbox": 2, "onec_exchange_log": 1}
    assert sorted(r[0] for r in left) == sorted([files["new"], files["running"]])
    assert ledger == 3 and inbox == 3


def test_the_ftp_archive_and_result_files_older_than_the_horizon_are_deleted(ftp_server, ftp_params):
    root = Path(ftp_server.root)
    old_day, new_day = _days_ago(100).date().isoformat(), _days_ago(2).date().isoformat()
    for day in (old_day, new_day):
        (root / "1c" / "processed" / day).mkdir(parents=True)
        (root / "1c" / "processed" / day / "Ostatki_MP.xlsx").write_bytes(b"x")
    (root / "1c" / "processed" / "not-a-day").mkdir()
    results = root / "1c" / "results"
    (results / "feeds").mkdir(parents=True)
    for name, age in (("old.result.xlsx", 100), ("new.result.xlsx", 2), ("feeds/yandex.xlsx", 100)):
        (results / name).write_bytes(b"r")
        stamp = _days_ago(age).timestamp()
        os.utime(results / name, (stamp, stamp))

    deleted, problems = retention.trim_ftp(ftp_params, "/1c/processed", "/1c/results", retention.horizon(NOW, 90))
    assert (deleted, problems) == (2, [])
    assert sorted(p.name for p in (root / "1c" / "processed").iterdir()) == sorted([new_day, "not-a-day"])
    assert sorted(p.name for p in results.iterdir()) == ["feeds", "new.result.xlsx"]
    assert (results / "feeds" / "yandex.xlsx").exists()      # replaced in place by every feed run: kept


def test_retention_settings_are_checked(tmp_path):
    cfg = load_settings(write_test_config(tmp_path / "c.yaml"))
    assert retention.RetentionSettings.from_settings(cfg) == retention.RetentionSettings(90, 90, 90, 7)
    import yaml

    raw = yaml.safe_load((tmp_path / "c.yaml").read_text(encoding="utf-8"))
    for bad, message in (({"history_days": 0}, "retention.history_days"), ({"ftp_days": "90"}, "retention.ftp_days"),
                         ({"keep": 3}, "unknown key")):
        raw["retention"] = bad
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            retention.RetentionSettings.from_settings(load_settings(tmp_path / "bad.yaml"))


def test_the_maintenance_dag_trims_everything_under_dag_test(exchange_dsn, ftp_server, ftp_params, airflow_db,
                                                             tmp_path, monkeypatch):
    import yaml
    from airflow.dag_processing.dagbag import DagBag

    from mpsync.settings import _cached
    from tests.test_order_sync_dag import _states

    config = write_test_config(tmp_path / "mpsync.yaml")
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["retention"] = {"history_days": 30, "log_days": 30, "ftp_days": 30}
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("MPSYNC_CONFIG", str(config))
    _cached.cache_clear()
    add_products(exchange_dsn, ["A-1"])
    with psycopg.connect(exchange_dsn, autocommit=True) as conn:
        retention.ensure_partitions(conn, _days_ago(60).date(), ahead=0)
        pid = _cell(conn, "A-1", 5, _days_ago(1))
        _replaced(conn, pid, 4, _days_ago(90), _days_ago(60))
        _replaced(conn, pid, 3, _days_ago(60), _days_ago(1))
        conn.execute("insert into order_sync_window (marketplace, account, mode, dimension, orders, committed_at)"
                     " values ('ozon', 'main', 'live', 'modified', 1, %s)", (_days_ago(40),))
    old = Path(ftp_server.root) / "1c" / "processed" / _days_ago(45).date().isoformat()
    old.mkdir(parents=True)
    (old / "Ostatki_MP.xlsx").write_bytes(b"x")

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags" / "exchange_maintenance.py"))
    assert not bag.import_errors, bag.import_errors
    run = bag.dags["exchange_maintenance"].test()
    assert str(run.state) == "success"
    assert {task for (task, _), (state, _) in _states(run).items() if state == "success"} == \
        {"make_partitions", "drop_old_history", "trim_log_tables", "trim_ftp_files"}
    with psycopg.connect(exchange_dsn) as conn:
        assert [float(r[0]) for r in conn.execute("select quantity from stock_history")] == [3]
        assert conn.execute("select count(*) from order_sync_window").fetchone()[0] == 0
        future = f"stock_history_{(NOW + timedelta(days=7)):%Y%m%d}"
        assert conn.execute("select to_regclass(%s)", (future,)).fetchone()[0] is not None
    assert not old.exists()
