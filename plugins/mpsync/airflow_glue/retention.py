"""The maintenance DAG's tasks: each a thin call into mpsync.retention with the connections and settings."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import psycopg
from airflow.sdk.exceptions import AirflowFailException

from mpsync import retention
from mpsync.airflow_glue.connections import exchange_dsn, ftp_params
from mpsync.settings import settings

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def make_partitions() -> int:
    rs = retention.RetentionSettings.from_settings(settings())
    with psycopg.connect(exchange_dsn(), autocommit=True) as conn:
        made = retention.ensure_partitions(conn, _now().date(), rs.partitions_ahead)
    log.info("history: %d day partition(s) made (today and %d days ahead)", made, rs.partitions_ahead)
    return made


def drop_old_history() -> int:
    rs = retention.RetentionSettings.from_settings(settings())
    before = retention.horizon(_now(), rs.history_days)
    with psycopg.connect(exchange_dsn(), autocommit=True) as conn:
        dropped = retention.drop_history(conn, before)
    log.info("history: %d day partition(s) before %s dropped (retention.history_days = %d)", dropped,
             before.date(), rs.history_days)
    return dropped


def trim_log_tables() -> dict[str, int]:
    rs = retention.RetentionSettings.from_settings(settings())
    before = retention.horizon(_now(), rs.log_days)
    with psycopg.connect(exchange_dsn(), autocommit=True) as conn:
        deleted = retention.trim_tables(conn, before)
    log.info("log tables: rows before %s deleted: %s", before.date(), deleted)
    return deleted


def trim_ftp_files() -> int:
    cfg = settings()
    rs = retention.RetentionSettings.from_settings(cfg)
    before = retention.horizon(_now(), rs.ftp_days)
    deleted, problems = retention.trim_ftp(ftp_params(cfg.ftp_conn_id), cfg.processed_folder,
                                           cfg.results_folder, before)
    log.info("FTP: %d archived or result file(s) from before %s deleted", deleted, before.date())
    if problems:        # all others were tried; a retry would hit the same: say so once
        raise AirflowFailException(f"{len(problems)} FTP path(s) could not be deleted: " + "; ".join(problems[:10]))
    return deleted
