"""The foundation: migrations are ordered and idempotent; local services are real and reachable."""

import psycopg

from mpsync import db
from mpsync.ftp import FtpClient


def test_migrate_is_idempotent_and_creates_the_domain_tables(pg_server):
    dsn = pg_server.create_database("migrate_check")
    first = db.migrate(dsn)
    assert first and first[0] == "0001_foundation"
    assert db.migrate(dsn) == []
    with psycopg.connect(dsn) as conn:
        tables = {r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'public'")}
    assert {"product", "stock", "price", "sync", "marketplace_order", "import_file", "warehouse"} <= tables


def test_ftp_round_trip(ftp_params, tmp_path):
    local = tmp_path / "a.csv"
    local.write_bytes(b"x;1\n")
    with FtpClient(ftp_params) as ftp:
        ftp.upload(local, "/1c/stock/Ostatki_MP.csv")
        [entry] = ftp.list_files("/1c/stock")
        assert (entry.name, entry.size) == ("Ostatki_MP.csv", 4)
        assert entry.modified_at is not None
        ftp.download(entry.path, tmp_path / "b.csv", expected_size=4)
        assert ftp.list_files("/no/such/folder") == []
    assert (tmp_path / "b.csv").read_bytes() == b"x;1\n"


def test_migrate_command_reads_the_airflow_connection(pg_server, monkeypatch):
    import subprocess
    import sys

    dsn = pg_server.create_database("migrate_cmd_check")
    monkeypatch.setenv("AIRFLOW_CONN_EXCHANGE_DB", dsn.replace("postgresql://", "postgres://"))
    first = subprocess.run([sys.executable, "-m", "mpsync", "migrate"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "applied: 0001_foundation" in first.stderr
    again = subprocess.run([sys.executable, "-m", "mpsync", "migrate"], capture_output=True, text=True)
    assert again.returncode == 0 and "up to date" in again.stderr
