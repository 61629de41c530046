"""Orders to 1C as files only (`onec_exchange.ftp.mode: files`), on the real FTP server and PostgreSQL: one file per
exchange, written atomically, an order sent again only when it changed, a failed upload loses nothing, and a
file is not 1C's acknowledgment (no reservation is released by it). Plus the DAG under dag.test().
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import yaml

from mpsync.ftp import FtpClient, FtpParams
from mpsync.onec_exchange.config import ExchangeSettings, FtpCopy
from mpsync.onec_exchange.folder import write_pending_orders
from mpsync.onec_exchange.ftp_files import write_document
from mpsync.reservations import store as reservations
from mpsync.settings import DEFAULT_CONFIG, load_settings
from tests.test_onec_exchange import documents, ozon, put_orders, seed_products
from tests.test_order_sync_dag import _states

FOLDER = "/1c/orders"
CFG = ExchangeSettings(max_order_age_days=None, ftp=FtpCopy(enabled=True, folder=FOLDER, mode="files"))


def _write(dsn: str, params: FtpParams):
    return write_pending_orders(dsn, CFG, load_settings().onec_timezone,
                                lambda body: write_document(params, FOLDER, body))


def _files(params: FtpParams, tmp_path: Path) -> dict[str, bytes]:
    with FtpClient(params) as ftp:
        entries = ftp.list_files(FOLDER)
        return {e.name: ftp.download(e.path, tmp_path / e.name).read_bytes() for e in entries}


def test_one_file_per_exchange_only_what_is_new_and_nothing_lost(exchange_dsn, ftp_params, tmp_path):
    seed_products(exchange_dsn)
    put_orders(exchange_dsn, [ozon("111-1", [("0557722", 2, "1719.50")]), ozon("222-1", [("0557722", 1, "10")])])
    first = _write(exchange_dsn, ftp_params)
    files = _files(ftp_params, tmp_path)
    assert first.orders == 2 and list(files) == [first.path.rsplit("/", 1)[-1]]     # one file, no .part left
    assert set(documents(files[first.path.rsplit("/", 1)[-1]])) == {"ozon:main:111-1", "ozon:main:222-1"}

    assert _write(exchange_dsn, ftp_params).path is None          # nothing new: no file
    assert len(_files(ftp_params, tmp_path)) == 1

    # a changed order while the FTP is unreachable: the upload fails, nothing is marked sent
    put_orders(exchange_dsn, [ozon("222-1", [("0557722", 3, "10")], minutes=5)])
    down = FtpParams("127.0.0.1", 1, ftp_params.user, ftp_params.password)
    with pytest.raises(OSError):
        _write(exchange_dsn, down)
    again = _write(exchange_dsn, ftp_params)                      # the next exchange carries it
    files = _files(ftp_params, tmp_path)
    assert again.orders == 1 and len(files) == 2
    docs = documents(files[again.path.rsplit("/", 1)[-1]])
    assert set(docs) == {"ozon:main:222-1"}
    ns = {"c": "urn:1C.ru:commerceml_2"}
    assert docs["ozon:main:222-1"].findtext("c:Товары/c:Товар/c:Количество", namespaces=ns) == "3"
    with psycopg.connect(exchange_dsn) as conn:
        logged = conn.execute("select count(*), sum(orders) from onec_exchange_log where mode = 'ftp_file'").fetchone()
    assert logged == (2, 3)


def test_a_file_is_not_1c_taking_the_order(exchange_dsn, ftp_params):
    seed_products(exchange_dsn)
    put_orders(exchange_dsn, [ozon("111-1", [("0557722", 2, "1719.50")])])
    _write(exchange_dsn, ftp_params)
    with psycopg.connect(exchange_dsn) as conn:
        assert conn.execute("select count(*) from onec_order where acked_at is not null").fetchone()[0] == 0
        # a stock report made after the file was written may predate 1C loading it: the order stays reserved
        conn.execute("insert into import_file (kind, ftp_path, name, size, status, report_time)"
                     " values ('stock', '/1c/stock/x', 'Ostatki_x', 1, 'applied', now() + interval '1 minute')")
        reservations.release_ready(conn)
        open_units = conn.execute("select sum(quantity) from reservation where released_at is null").fetchone()[0]
    assert open_units == 2


def test_the_dag_writes_the_file_when_switched_on_and_skips_otherwise(exchange_dsn, ftp_server, ftp_params,
                                                                      airflow_db, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from mpsync.settings import _cached

    put_orders(exchange_dsn, [ozon("111-1", [("A", 1, "10")])])
    dag_file = Path(__file__).resolve().parents[1] / "dags" / "onec_orders_files.py"
    for mode, files in (("copy", 0), ("files", 1)):
        raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
        raw["onec_exchange"].update(max_order_age_days=None, ftp={"enabled": True, "folder": FOLDER, "mode": mode})
        path = tmp_path / f"mpsync-{mode}.yaml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        monkeypatch.setenv("MPSYNC_CONFIG", str(path))
        _cached.cache_clear()
        bag = DagBag(dag_folder=str(dag_file))
        assert not bag.import_errors, bag.import_errors
        run = bag.dags["onec_orders_files"].test()
        assert str(run.state) == "success"
        assert _states(run)[("write_file", -1)][0] == ("success" if files else "skipped"), mode
        assert len(_files(ftp_params, tmp_path)) == files, mode
