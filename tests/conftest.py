"""Shared fixtures: a real embedded PostgreSQL, a real FTP server on 127.0.0.1, and an Airflow home.

Airflow reads its configuration at import, so the environment is set here, before anything imports it.
Each pytest process (and each xdist worker) gets its own Airflow home, PostgreSQL cluster and FTP root.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
_WORK = Path(tempfile.mkdtemp(prefix="mpsync-test-"))

os.environ.update(
    {
        "AIRFLOW_HOME": str(_WORK / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_WORK / 'airflow' / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "MPSYNC_WORK_DIR": str(_WORK / "work"),
    }
)
(_WORK / "airflow").mkdir(parents=True, exist_ok=True)


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or skip the test: users do not have ../shared."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"sample not available: {path}")
    return path


@pytest.fixture(scope="session")
def pg_server():
    from mpsync.local.postgres import LocalPostgres, free_port

    server = LocalPostgres(_WORK / "pg", free_port()).start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def _template_db(pg_server):
    from mpsync import db

    dsn = pg_server.create_database("exchange_template")
    db.migrate(dsn)
    return "exchange_template"


_db_counter = itertools.count()


@pytest.fixture
def exchange_dsn(pg_server, _template_db, monkeypatch):
    """A fresh, migrated exchange database per test, also exposed as the `exchange_db` Airflow connection."""
    import psycopg

    name = f"exchange_t{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{_template_db}"')
    dsn = pg_server.dsn(name)
    monkeypatch.setenv("AIRFLOW_CONN_EXCHANGE_DB", dsn)
    return dsn


@pytest.fixture(scope="session")
def _ftp_server():
    from mpsync.local.ftpserver import LocalFtp
    from mpsync.local.postgres import free_port

    server = LocalFtp(_WORK / "ftp", free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def ftp_server(_ftp_server, monkeypatch):
    """The FTP server with an empty root, exposed as the `onec_ftp` Airflow connection."""
    for child in _ftp_server.root.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    monkeypatch.setenv("AIRFLOW_CONN_ONEC_FTP", _ftp_server.url())
    return _ftp_server


@pytest.fixture
def ftp_params(ftp_server):
    from mpsync.ftp import FtpParams

    return FtpParams("127.0.0.1", ftp_server.port, ftp_server.user, ftp_server.password)


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata database (SQLite), migrated once per session; needed by dag.test()."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=os.environ.copy()
    )
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture
def work_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MPSYNC_WORK_DIR", str(tmp_path / "work"))
    return tmp_path / "work"


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_WORK, ignore_errors=True)
