"""Airflow Connections -> plain parameters for the domain code (credentials never leave Connections)."""

from __future__ import annotations

from urllib.parse import quote

from mpsync.ftp import FtpParams

EXCHANGE_DB = "exchange_db"
ONEC_FTP = "onec_ftp"


def _get(conn_id: str):
    from airflow.sdk import Connection

    return Connection.get(conn_id)


def exchange_dsn(conn_id: str = EXCHANGE_DB) -> str:
    c = _get(conn_id)
    auth = quote(c.login or "postgres", safe="")
    if c.password:
        auth += ":" + quote(c.password, safe="")
    return f"postgresql://{auth}@{c.host or '127.0.0.1'}:{c.port or 5432}/{c.schema or 'exchange'}"


def ftp_params(conn_id: str = ONEC_FTP) -> FtpParams:
    c = _get(conn_id)
    extra = c.extra_dejson or {}
    return FtpParams(
        host=c.host or "127.0.0.1",
        port=int(c.port or 21),
        user=c.login or "anonymous",
        password=c.password or "",
        passive=str(extra.get("passive", True)).lower() not in ("false", "0", "no"),
        encoding=extra.get("encoding", "utf-8"),
    )
