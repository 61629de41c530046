"""Faults with the real services: a dropped FTP download, PostgreSQL restarting mid-fragment, the exchange
database unreachable at the start of a run."""

from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest
from pyftpdlib.filesystems import AbstractedFS

from mpsync import db, dropfolder, ledger
from mpsync.ftp import FtpError, FtpParams
from mpsync.imports import stock
from mpsync.local.ftpserver import LocalFtp
from mpsync.local.postgres import free_port
from mpsync.settings import load_settings
from tests.stock_helpers import add_products, drop, stock_csv, stock_snapshot, write_test_config

ARTICLES = [f"F-{i:03d}" for i in range(1, 41)]


class DropsFirstDownload(AbstractedFS):
    """Serves only the first 100 bytes of a file the first time it is downloaded, then closes the data
    connection: in FTP stream mode that is exactly what a connection dropped mid-download looks like."""

    served: set[str] = set()

    def open(self, filename, mode):
        fh = super().open(filename, mode)
        if "r" in mode and filename not in self.served:
            self.served.add(filename)
            data = fh.read(100)
            fh.close()
            import io

            short = io.BytesIO(data)
            short.name = filename
            return short
        return fh


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    path = write_test_config(tmp_path / "mpsync.yaml")
    monkeypatch.setenv("MPSYNC_CONFIG", str(path))
    return load_settings(path)


@pytest.fixture
def flaky_ftp(tmp_path):
    DropsFirstDownload.served = set()
    server = LocalFtp(tmp_path / "ftp-root", free_port(), fs_class=DropsFirstDownload).start()
    yield FtpParams("127.0.0.1", server.port, server.user, server.password, timeout=10)
    server.stop()


def test_dropped_download_fails_the_attempt_and_the_retry_reads_the_file_whole_once(
        exchange_dsn, flaky_ftp, cfg, work_dir, tmp_path):
    add_products(exchange_dsn, ARTICLES)
    rows = [(a, i, i, i) for i, a in enumerate(ARTICLES, 1)]
    drop(flaky_ftp, tmp_path, "Ostatki_MP_1.csv", stock_csv(rows))
    files = dropfolder.new_stable_files(exchange_dsn, flaky_ftp, cfg.drops["stock"], 0)
    with pytest.raises(FtpError, match="incomplete"):
        stock.prepare(exchange_dsn, flaky_ftp, files, cfg)
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*) from import_file").fetchone()[0] == 0   # nothing half-recorded
    prepared = stock.prepare(exchange_dsn, flaky_ftp, files, cfg)                # the task's retry
    for f in prepared.fragments:
        stock.apply_fragment(exchange_dsn, f, cfg)
    stock.finish(exchange_dsn, flaky_ftp, prepared, cfg)
    assert stock_snapshot(exchange_dsn) == {(a, w): float(i) for i, a in enumerate(ARTICLES, 1)
                                            for w in ("sber", "ozon", "yandex")}
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*), min(status) from import_file").fetchone() == (1, "applied")
    assert FtpError not in __import__("mpsync.airflow_glue.failures", fromlist=["REFUSALS"]).REFUSALS


def test_postgres_restart_mid_fragment_then_retry_equals_a_clean_run(
        pg_server, exchange_dsn, ftp_params, cfg, work_dir, tmp_path):
    add_products(exchange_dsn, ARTICLES)
    rows = [(a, i, 2 * i, 3 * i) for i, a in enumerate(ARTICLES, 1)]
    drop(ftp_params, tmp_path, "Ostatki_MP_1.csv", stock_csv(rows))
    files = dropfolder.new_stable_files(exchange_dsn, ftp_params, cfg.drops["stock"], 0)
    prepared = stock.prepare(exchange_dsn, ftp_params, files, cfg)
    first, rest = prepared.fragments[0], prepared.fragments[1:]
    with psycopg.connect(exchange_dsn) as conn:       # make the fragment slow enough to be caught mid-way
        conn.execute("create function slow() returns trigger language plpgsql as "
                     "$$ begin perform pg_sleep(3); return null; end $$")
        conn.execute("create trigger slow after insert on stock for each statement execute function slow()")
    errors = []

    def apply_first():
        try:
            stock.apply_fragment(exchange_dsn, first, cfg)
        except Exception as exc:           # what the task would see
            errors.append(exc)

    worker = threading.Thread(target=apply_first)
    worker.start()
    deadline = time.monotonic() + 30
    with psycopg.connect(exchange_dsn, autocommit=True) as watch:   # wait until it is really mid-fragment
        while time.monotonic() < deadline and not watch.execute(
                "select 1 from pg_stat_activity where wait_event = 'PgSleep' and pid <> pg_backend_pid()").fetchone():
            time.sleep(0.05)
    pg_server.restart()                    # fast shutdown: the fragment's transaction is cut
    worker.join(30)
    assert errors and isinstance(errors[0], psycopg.OperationalError)
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*) from stock").fetchone()[0] == 0           # rolled back whole
        conn.execute("drop trigger slow on stock")
    for f in [first, *rest]:                # the retry, then the remaining fragments
        stock.apply_fragment(exchange_dsn, f, cfg)
    stock.apply_fragment(exchange_dsn, first, cfg)    # and a needless re-run
    summary = stock.finish(exchange_dsn, ftp_params, prepared, cfg)
    assert stock_snapshot(exchange_dsn) == {(a, w): float(k * i) for i, a in enumerate(ARTICLES, 1)
                                            for k, w in ((1, "sber"), (2, "ozon"), (3, "yandex"))}
    assert summary.changed == len(ARTICLES) * 3


def test_unreachable_exchange_db_is_one_clear_line():
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/exchange"
    with pytest.raises(db.ExchangeDbUnreachable) as info:
        db.migrate(dsn)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("exchange database unreachable at 127.0.0.1:") and "/exchange" in message


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 192 KiB filesystem (tmpfs) for the feeds folder; skipped where mounting is not allowed."""
    import subprocess

    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_while_writing_a_feed_keeps_the_previous_feed(exchange_dsn, tiny_disk):
    import errno

    from mpsync.feeds.publish import publish_feed
    from tests.feeds_data import feeds_config, insert_products

    insert_products(exchange_dsn)
    cfg = feeds_config(tiny_disk)
    first = publish_feed(exchange_dsn, "yandex", config=cfg)
    assert first.published
    final = tiny_disk / cfg.feed("yandex").file
    good = final.read_bytes()
    # enough new offers to overflow the disk, each passing Yandex's rules (a name within its 256 characters)
    with psycopg.connect(exchange_dsn) as conn:
        conn.execute("""insert into product (article, name, category, active)
                        select 'BIG-' || g, repeat('Длинное название ', 8) || g, 'Кухня', true
                        from generate_series(1, 3000) g""")
        conn.execute("""insert into price (product_id, price_list, price)
                        select product_id, 'default', 100 from product where article like 'BIG-%'""")
    with pytest.raises(OSError) as info:
        publish_feed(exchange_dsn, "yandex", config=cfg)
    assert info.value.errno == errno.ENOSPC
    assert final.read_bytes() == good                       # still published, byte for byte
    assert not [p for p in tiny_disk.iterdir() if p.name.endswith(".tmp")]   # no half-written leftovers
