"""Task body of the onec_orders_files DAG: connections and config in, one call into mpsync.onec_exchange.folder."""

from __future__ import annotations

import logging

from mpsync.airflow_glue.connections import exchange_dsn, ftp_params

log = logging.getLogger(__name__)


def write_orders_file() -> dict:
    from airflow.sdk.exceptions import AirflowSkipException

    from mpsync.onec_exchange.config import exchange_settings
    from mpsync.onec_exchange.folder import write_pending_orders
    from mpsync.onec_exchange.ftp_files import write_document
    from mpsync.settings import settings

    base, cfg = settings(), exchange_settings()
    if not cfg.ftp.writes_files:
        raise AirflowSkipException("onec_exchange.ftp is not in mode 'files' (enabled: true, mode: files): 1C takes "
                                   "orders over HTTP at /onec/exchange")
    params = ftp_params(base.ftp_conn_id)
    done = write_pending_orders(exchange_dsn(), cfg, base.onec_timezone,
                                lambda body: write_document(params, cfg.ftp.folder, body))
    if done.path is None:
        raise AirflowSkipException("no order is new or changed since the last file")
    return {"path": done.path, "orders": done.orders}
