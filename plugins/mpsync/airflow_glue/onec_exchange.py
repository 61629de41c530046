"""1C's site exchange served by Airflow's API server: the FastAPI app the plugin mounts at /onec.

Why inside the API server and not a service of its own: it is already running in every deployment (./run's
standalone and the compose `api-server`), already listens on the one published HTTP port, and reads Airflow
Connections directly; the exchange is a handful of short requests an hour. Connections are read at the first
request (never at import: the scheduler and DAG processor load plugins too), the credentials at every
checkauth, so a changed password needs no restart.
"""

from __future__ import annotations

from urllib.parse import quote

from mpsync.onec_exchange.config import exchange_settings
from mpsync.onec_exchange.ftp_files import write_document
from mpsync.onec_exchange.http import create_app
from mpsync.onec_exchange.protocol import Credentials, Exchange

URL_PREFIX = "/onec"         # the exchange's address: <api server>/onec/exchange


def _connection(conn_id: str):
    # The API server is no task: read through the secrets backends (env AIRFLOW_CONN_*, then the metadata DB).
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)


def _dsn(conn_id: str) -> str:
    c = _connection(conn_id)
    auth = quote(c.login or "postgres", safe="")
    if c.password:
        auth += ":" + quote(c.password, safe="")
    return f"postgresql://{auth}@{c.host or '127.0.0.1'}:{c.port or 5432}/{c.schema or 'exchange'}"


def _ftp(conn_id: str):
    from mpsync.ftp import FtpParams

    c = _connection(conn_id)
    extra = c.extra_dejson or {}
    return FtpParams(host=c.host or "127.0.0.1", port=int(c.port or 21), user=c.login or "anonymous",
                     password=c.password or "", encoding=extra.get("encoding", "utf-8"),
                     passive=str(extra.get("passive", True)).lower() not in ("false", "0", "no"))


def exchange_from_airflow() -> Exchange:
    from mpsync.airflow_glue.connections import EXCHANGE_DB
    from mpsync.settings import settings

    base, cfg = settings(), exchange_settings()

    def credentials() -> Credentials:
        c = _connection(cfg.conn_id)
        return Credentials(c.login or "", c.password or "")

    def ftp_copy(body: bytes) -> None:
        write_document(_ftp(base.ftp_conn_id), cfg.ftp.folder, body)

    return Exchange(_dsn(EXCHANGE_DB), cfg, credentials, base.onec_timezone,
                    ftp_copy if cfg.ftp.copies_queries else None)


def fastapi_app():
    return create_app(exchange_from_airflow)
